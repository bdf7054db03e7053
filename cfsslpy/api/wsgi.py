"""The WSGI side of :mod:`cfsslpy.api.server`: PEP 3333's environ for a parsed request, and one call of the
application collected into a :class:`~cfsslpy.api.connection.Response`.

The request body has been read whole (and de-chunked) by the connection, so ``wsgi.input`` is a ``BytesIO``
and ``CONTENT_LENGTH`` its length. Header names containing ``_`` are dropped (``X_Forwarded_For`` could pose
as ``X-Forwarded-For``; waitress and nginx drop them too). With TLS, ``HTTPS`` is ``on`` and, with client
certificates, :data:`CLIENT_CN` holds the client's CN.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable, Iterable
from io import BytesIO
from typing import TYPE_CHECKING, Any

import httptools

from cfsslpy.api.connection import Request, Response
from cfsslpy.errors import logfmt

if TYPE_CHECKING:
    from cfsslpy.api.connection import Connection

log = logging.getLogger("cfsslpy.api.server")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# environ keys this server adds for the application (and for its own mutual-TLS CN check)
CLIENT_CN = "cfsslpy.tls.client_cn"  # the client certificate's CN ("" without one); absent without mTLS


def environ_for(connection: Connection, request: Request, multiprocess: bool) -> dict[str, Any]:
    """PEP 3333's environ for a request whose body has been read (and de-chunked) already."""
    target = request.target
    if not target.startswith(b"/"):
        try:
            url = httptools.parse_url(target)
            path, query = url.path or b"/", url.query or b""
        except httptools.HttpParserInvalidURLError:
            path, query = target, b""
    else:
        path, _, query = target.partition(b"?")
    host, port = connection.local
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": urllib.parse.unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query.decode("latin-1"),
        "SERVER_NAME": host,
        "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": f"HTTP/{request.version}",
        "REMOTE_ADDR": connection.remote[0],
        "REMOTE_PORT": str(connection.remote[1]),
        "REQUEST_URI": target.decode("latin-1"),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": connection.scheme,
        "wsgi.input": BytesIO(request.body),
        "wsgi.input_terminated": True,
        "wsgi.errors": _LogStream(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
    }
    for name, value in request.headers:
        key = name.decode("latin-1").upper()
        if "_" in key:  # X_Forwarded_For could otherwise pose as X-Forwarded-For (waitress and nginx drop them)
            continue
        text = value.decode("latin-1")
        if key == "CONTENT-TYPE":
            environ["CONTENT_TYPE"] = text
        elif key == "CONTENT-LENGTH" or key == "TRANSFER-ENCODING":
            continue  # the body is read whole: its length is set below
        else:
            wsgi_key = "HTTP_" + key.replace("-", "_")
            environ[wsgi_key] = environ[wsgi_key] + "," + text if wsgi_key in environ else text
    if request.body or request.header(b"content-length") is not None or request.header(b"transfer-encoding") is not None:
        environ["CONTENT_LENGTH"] = str(len(request.body))
    if connection.scheme == "https":
        environ["HTTPS"] = "on"
        if connection.peercert is not None:
            environ[CLIENT_CN] = last_cn(connection.peercert)
    return environ


def last_cn(peer: dict[str, Any] | None) -> str:
    """The CN of a ``getpeercert()`` subject; the last one when there are several (Go's pkix.Name does that)."""
    cn = ""
    for rdn in (peer or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                cn = value
    return cn


class _LogStream:
    """``wsgi.errors``: what an application writes there goes to the log, one line per write."""

    def write(self, text: str) -> None:
        text = text.rstrip("\n")
        if text:
            log.warning("%s", logfmt(text))

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass


def call_wsgi(app: WSGIApp, environ: dict[str, Any]) -> Response:
    """Run ``app`` for one request and collect its whole response (bodies here are small)."""
    state: dict[str, Any] = {}
    written: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None and "status" in state and written:
            raise exc_info[1].with_traceback(exc_info[2])
        for name, value in headers:
            if "\n" in name or "\r" in name or "\n" in value or "\r" in value:
                raise ValueError(f"header {name!r} contains a line break")
        state["status"], state["headers"] = status, headers
        return written.append

    result = app(environ, start_response)
    try:
        for chunk in result:
            if chunk:
                written.append(chunk)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if "status" not in state:
        raise RuntimeError("the application did not call start_response")
    return Response(state["status"], state["headers"], b"".join(written))
