"""mkbundle's outbound HTTP: one CRL GET or OCSP POST through :func:`cfsslpy.net.fetch`, bounded in time and size
(environment proxies honoured, loopback never proxied, up to 10 redirects as Go's client), failures classified."""

from __future__ import annotations

from collections.abc import Callable

from cfsslpy import net

FETCH_TIMEOUT = 5.0  # seconds per CRL or OCSP request
MAX_RESPONSE = 64 << 20  # a CRL larger than this is treated as a failed fetch


class FetchError(Exception):
    """A CRL or OCSP fetch that failed (unreachable, HTTP error, garbage): the check is inconclusive."""


class Unreachable(FetchError):
    """The server could not be reached at all: no other request goes to it in this run."""


def http_fetch(url: str, body: bytes | None = None, content_type: str = "", timeout: float = FETCH_TIMEOUT) -> bytes:
    """GET ``url`` (or POST ``body``); the response body, or :class:`FetchError`."""
    try:
        return net.fetch_body(url, body, content_type, max_bytes=MAX_RESPONSE, timeout=timeout)
    except net.TooLarge:
        raise FetchError(f"{url}: response larger than {MAX_RESPONSE} bytes") from None
    except net.BadStatus as exc:
        raise FetchError(f"{url}: HTTP {exc.status}") from None
    except net.FetchError as exc:
        raise Unreachable(f"{url}: {exc.message}") from None


Fetch = Callable[..., bytes]
