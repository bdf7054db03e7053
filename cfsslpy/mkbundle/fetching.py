"""mkbundle's outbound HTTP: one CRL GET or OCSP POST, bounded in time and size, its failures classified."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import urllib.request

FETCH_TIMEOUT = 5.0  # seconds per CRL or OCSP request
MAX_RESPONSE = 64 << 20  # a CRL larger than this is treated as a failed fetch


class FetchError(Exception):
    """A CRL or OCSP fetch that failed (unreachable, HTTP error, garbage): the check is inconclusive."""


class Unreachable(FetchError):
    """The server could not be reached at all: no other request goes to it in this run."""


def _opener_for(url: str) -> urllib.request.OpenerDirector:
    import urllib.parse
    import urllib.request

    host = urllib.parse.urlsplit(url).hostname or ""
    if host in ("localhost", "127.0.0.1", "::1"):  # Go's ProxyFromEnvironment never proxies loopback
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()


def http_fetch(url: str, body: bytes | None = None, content_type: str = "", timeout: float = FETCH_TIMEOUT) -> bytes:
    """GET ``url`` (or POST ``body``); the response body, or :class:`FetchError`."""
    import urllib.error  # lazily: most bundles need no network (urllib costs ~30 ms to import)
    import urllib.request

    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with _opener_for(url).open(request, timeout=timeout) as response:
            payload: bytes = response.read(MAX_RESPONSE + 1)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise FetchError(f"{url}: HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        raise Unreachable(f"{url}: {exc.reason}") from None
    except (OSError, TimeoutError, ValueError) as exc:
        raise Unreachable(f"{url}: {str(exc) or type(exc).__name__}") from None
    if len(payload) > MAX_RESPONSE:
        raise FetchError(f"{url}: response larger than {MAX_RESPONSE} bytes")
    return payload


Fetch = Callable[..., bytes]
