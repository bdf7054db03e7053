"""``ocspserve``'s HTTP face: a plain WSGI app that hands each request to :class:`cfsslpy.ocspresponder.Responder`.

The responder is mounted at ``-path`` (default ``/``). A POST goes to the mount point itself (``/ocsp`` or
``/ocsp/``), a GET carries the base64 request below it (``/ocsp/MEIw...``). cfssl registers its handler on
Go's default mux, which does not strip the prefix, so its GET only works with ``-path /``; here the prefix
is stripped and GET works under any path. Go's mux also 301-redirects paths containing ``//`` (which a base64
request may contain); we do not. Other paths get Go's plain-text ``404 page not found``.

Request bodies are bounded (:data:`~cfsslpy.ocspresponder.MAX_REQUEST`, 16 KiB): larger ones get 413 with
no body, before being read. Every request produces one access-log line on ``cfsslpy.api.access``, in
``serve``'s format (method, path, status, bytes, duration, remote address): at DEBUG for a request answered
with a response (200 or 304), at INFO for everything else (unknown certificates, malformed requests,
failures). cfssl logs none of them.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from cfsslpy.api.envelope import ApiError, read_body
from cfsslpy.api.wire import ERROR_HEADERS
from cfsslpy.errors import logfmt
from cfsslpy.ocspresponder import INTERNAL_ERROR, MAX_REQUEST, NO_CACHE, UNAUTHORIZED, Reply, Responder

if TYPE_CHECKING:
    from cfsslpy.api.connection import Request, Response

access_log = logging.getLogger("cfsslpy.api.access")

StartResponse = Callable[..., Any]

_REASONS = {
    200: "OK",
    304: "Not Modified",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Request Entity Too Large",
    500: "Internal Server Error",
}
_REFUSALS = (UNAUTHORIZED, INTERNAL_ERROR)
_NOT_FOUND = Reply(
    404,
    list(ERROR_HEADERS),
    b"404 page not found\n",
)


def mount_point(path: str) -> str:
    """``-path`` normalised: a leading ``/``, no trailing one (``/`` stays ``/``)."""
    path = "/" + path.strip().strip("/")
    return path


class OCSPApp:
    """The WSGI application: ``OCSPApp(Responder(source), "/ocsp")``."""

    def __init__(self, responder: Responder, path: str = "/", *, max_body: int = MAX_REQUEST) -> None:
        self.responder = responder
        self.path = mount_point(path)
        self.max_body = max_body

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        start = time.perf_counter()
        reply = self._reply(environ)
        headers = [*reply.headers, ("Content-Length", str(len(reply.body)))]
        start_response(f"{reply.status} {_REASONS.get(reply.status, 'Unknown')}", headers)
        path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
        _log(str(environ.get("REQUEST_METHOD", "")), path, str(environ.get("REMOTE_ADDR", "-")), reply, time.perf_counter() - start)
        return [reply.body]

    def direct(self, request: Request, remote: str) -> Response:
        """The same answer as through WSGI, straight from the server's parsed request (``ServerOptions.direct``):
        no environ, no framework. For an in-memory source only (it runs on the event-loop thread)."""
        from cfsslpy.api.connection import Response

        start = time.perf_counter()
        method = request.method.upper()
        path = request.path
        if "%" in path:
            path = urllib.parse.unquote_to_bytes(path).decode("latin-1")  # as PATH_INFO
        rest = self.below_mount(path or "/")
        if rest is None:
            reply = _NOT_FOUND
        else:
            tag = request.header(b"if-none-match")
            body = request.body if method == "POST" else b""
            reply = self.responder.respond(method, rest, body, None if tag is None else tag.decode("latin-1"))
        _log(request.method, path, remote, reply, time.perf_counter() - start)
        return Response(f"{reply.status} {_REASONS.get(reply.status, 'Unknown')}", reply.headers, reply.body)

    def below_mount(self, path: str) -> str | None:
        """The part of ``path`` below the mount point (None when the path is not under it)."""
        if self.path == "/":
            return path if path.startswith("/") else None
        if path == self.path:
            return ""
        if path.startswith(self.path + "/"):
            return path[len(self.path) :]
        return None

    def _reply(self, environ: dict[str, Any]) -> Reply:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
        rest = self.below_mount(path or "/")
        if rest is None:
            return _NOT_FOUND
        body = b""
        if method == "POST":
            try:
                body = read_body(environ, self.max_body)  # serve's reader: Content-Length, chunked, bounded
            except ApiError as exc:
                return Reply(exc.status, [("Cache-Control", NO_CACHE)])
        return self.responder.respond(method, rest, body, environ.get("HTTP_IF_NONE_MATCH"))


def _log(method: str, path: str, remote: str, reply: Reply, seconds: float) -> None:
    # answers (200 with a response, 304) at DEBUG, as cfssl, which logs none: at OCSP request rates one
    # line each costs a seventh of the throughput; refusals and failures stay at INFO
    level = logging.DEBUG if reply.status in (200, 304) and reply.body not in _REFUSALS else logging.INFO
    if not access_log.isEnabledFor(level):
        return
    access_log.log(
        level,
        "method=%s path=%s status=%d bytes=%d duration_ms=%.2f remote=%s",
        logfmt(method),
        logfmt(path),
        reply.status,
        len(reply.body),
        seconds * 1000,
        logfmt(remote),
    )
