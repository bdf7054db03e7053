"""The one outbound HTTP exchange: :func:`fetch` and :func:`fetch_body` (rules in :mod:`cfsslpy.net`)."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cfsslpy.errors import CfsslError
from cfsslpy.net.address import Connect, is_ip
from cfsslpy.net.proxy import proxy_authorization, proxy_for

if TYPE_CHECKING:
    import http.client
    import ssl

REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))
_CHUNK = 65536


class FetchError(Exception):
    """A fetch that produced no response: ``message`` says why; ``cause`` is the underlying exception."""

    def __init__(self, url: str, message: str, cause: BaseException | None = None) -> None:
        super().__init__(f"{url}: {message}")
        self.url = url
        self.message = message
        self.cause = cause


class Refused(FetchError):
    """Not fetched by rule: a scheme not allowed (a redirect's included), or serve's fetch policy."""


class Unreachable(FetchError):
    """No answer: DNS, connect, TLS, proxy or timeout failure, or a broken HTTP exchange (``cause``)."""


class TooLarge(FetchError):
    """The response body is longer than ``max_bytes`` (announced or read)."""


class BadStatus(FetchError):
    """:func:`fetch_body`: the server answered, with a status outside 2xx."""

    def __init__(self, url: str, status: int) -> None:
        super().__init__(url, f"HTTP {status}")
        self.status = status


@dataclass(frozen=True)
class Response:
    """An HTTP answer of any status: the final ``url`` (after redirects), ``status``, ``headers`` (lower-case
    names) and the whole ``body``."""

    url: str
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


def fetch(
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    schemes: tuple[str, ...] = ("http", "https"),
    redirects: int = 10,
    proxies: bool = True,
    method: str = "GET",
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    connect: Connect | None = None,
    tls: ssl.SSLContext | None = None,
) -> Response:
    """One HTTP exchange, redirects followed (see the module docstring for every rule): the response, whatever
    its status, or :class:`Refused` / :class:`Unreachable` / :class:`TooLarge`.

    ``connect`` is serve's :meth:`FetchPolicy.connect` (then no proxy is used); ``tls`` the context for
    ``https`` (the system's verifying default when None); ``proxies=False`` ignores the environment.
    """
    send_headers = dict(headers or {})
    for _hop in range(redirects + 1):
        parts = _check_url(url, schemes)
        response = _exchange(parts, method, body, send_headers, max_bytes, timeout, connect, tls, proxies and connect is None)
        location = response.headers.get("location", "")
        if response.status not in REDIRECT_STATUSES or not location or _hop == redirects:
            return response
        url = urllib.parse.urljoin(url, location)
        if response.status in (301, 302, 303) and method not in ("GET", "HEAD"):
            method, body = "GET", None
            send_headers = {k: v for k, v in send_headers.items() if k.lower() not in ("content-type", "content-length")}
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns on its last hop


def fetch_body(
    url: str, body: bytes | None = None, content_type: str = "", *, max_bytes: int, timeout: float, redirects: int = 10
) -> bytes:
    """POST ``body`` as ``content_type`` (or GET when there is no body) to an http(s) URL with environment proxies,
    the way Go's ``http.Get`` / ``http.Post`` do: the body of a 2xx answer, else :class:`BadStatus` (or any other
    :class:`FetchError`)."""
    response = fetch(
        url,
        method="GET" if body is None else "POST",
        body=body,
        headers={"Content-Type": content_type} if content_type else None,
        max_bytes=max_bytes,
        timeout=timeout,
        redirects=redirects,
    )
    if not 200 <= response.status < 300:
        raise BadStatus(response.url, response.status)
    return response.body


def _check_url(url: str, schemes: tuple[str, ...]) -> urllib.parse.SplitResult:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in schemes:
        raise Refused(url, f"only {' or '.join(s + '://' for s in schemes)} URLs are fetched")
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise Refused(url, "invalid port") from None
    if not parts.hostname:
        raise Refused(url, "no host")
    return parts


def _exchange(
    parts: urllib.parse.SplitResult,
    method: str,
    body: bytes | None,
    headers: dict[str, str],
    max_bytes: int,
    timeout: float,
    connect: Connect | None,
    tls: ssl.SSLContext | None,
    proxies: bool,
) -> Response:
    """One request on a fresh connection, bounded by ``timeout`` as a whole."""
    import http.client

    url = parts.geturl()
    deadline = time.monotonic() + timeout
    proxy = proxy_for(url) if proxies else None
    try:
        conn, target, extra = _connection(http.client, parts, proxy, timeout, connect, tls)
        try:
            conn.request(method, target, body=body, headers={**headers, **extra})
            response = conn.getresponse()
            try:
                payload = _read(conn, response, url, max_bytes, deadline)
                return Response(url, response.status, payload, {k.lower(): v for k, v in response.getheaders()})
            finally:
                response.close()
        finally:
            conn.close()
    except CfsslError as exc:  # serve's policy refused every address
        raise Refused(url, exc.message, exc) from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise Unreachable(url, str(exc) or type(exc).__name__, exc) from None


def _connection(
    http_client: Any,
    parts: urllib.parse.SplitResult,
    proxy: str | None,
    timeout: float,
    connect: Connect | None,
    tls: ssl.SSLContext | None,
) -> tuple[http.client.HTTPConnection, str, dict[str, str]]:
    """The connection for one request, the request target and extra headers: direct, through ``connect``, or
    through an HTTP proxy (absolute-form target for http, a CONNECT tunnel for https)."""
    https = parts.scheme.lower() == "https"
    host, port = parts.hostname or "", parts.port or (443 if https else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if https and tls is None:
        import ssl

        tls = ssl.create_default_context()
    if proxy is not None:
        pparts = urllib.parse.urlsplit(proxy)
        if pparts.scheme.lower() != "http" or not pparts.hostname:
            raise ValueError(f"proxyconnect: unsupported proxy {proxy!r}")
        auth = proxy_authorization(pparts)
        if not https:
            return http_client.HTTPConnection(pparts.hostname, pparts.port or 80, timeout=timeout), parts.geturl(), auth
        conn = http_client.HTTPSConnection(pparts.hostname, pparts.port or 80, timeout=timeout, context=tls)
        conn.set_tunnel(host, port, headers=auth)
        return conn, path, {}
    base = http_client.HTTPSConnection if https else http_client.HTTPConnection
    if connect is None:
        extra_kw = {"context": tls} if https else {}
        return base(host, port, timeout=timeout, **extra_kw), path, {}
    return _policy_connection(base, https, host, port, timeout, connect, tls), path, {}


def _policy_connection(
    base: type[http.client.HTTPConnection],
    https: bool,
    host: str,
    port: int,
    timeout: float,
    connect: Connect,
    tls: ssl.SSLContext | None,
) -> http.client.HTTPConnection:
    """An ``http.client`` connection whose socket comes from ``connect`` (``HTTPConnection.connect`` is the
    documented hook for how the socket is made)."""

    class PolicyConnection(base):  # type: ignore[valid-type,misc]
        def connect(self) -> None:
            sock = connect((self.host, self.port), self.timeout)
            self.sock = tls.wrap_socket(sock, server_hostname=None if is_ip(self.host) else self.host) if https and tls else sock

    return PolicyConnection(host, port, timeout=timeout)


def _read(conn: http.client.HTTPConnection, response: http.client.HTTPResponse, url: str, max_bytes: int, deadline: float) -> bytes:
    """The body, at most ``max_bytes``: refused up front when its announced length is larger, read a chunk at a
    time otherwise, each read bounded by what is left of the deadline."""
    length = response.getheader("Content-Length", "")
    if length.strip().isdigit() and int(length) > max_bytes:
        raise TooLarge(url, f"response larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    while size <= max_bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out")
        if conn.sock is not None:
            conn.sock.settimeout(remaining)
        chunk = response.read1(min(_CHUNK, max_bytes + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > max_bytes:
        raise TooLarge(url, f"response larger than {max_bytes} bytes")
    return b"".join(chunks)
