"""The API's response envelope and its one error wrapper (reference §2.2).

Success: HTTP 200, ``Content-Type: application/json``, body ``{"success":true,"result":...,"errors":[],
"messages":[...]}`` + ``"\\n"`` (Go's JSON encoder escaping). Failure: the same envelope with
``success:false``, ``result:null`` and one error, sent as cfssl does through Go's ``http.Error``
(``Content-Type: text/plain; charset=utf-8``, ``X-Content-Type-Options: nosniff``).

:func:`wrap` is the only place where an endpoint's exceptions become HTTP statuses, through
:func:`cfsslpy.api.wire.describe_failure` (the one mapping, shared with bottle's error handler); the bytes of
every envelope come from :func:`cfsslpy.api.wire.envelope`. A failure's hint is logged, never sent.

A POST endpoint first checks the body's Content-Type (:func:`cfsslpy.api.guard.check_content_type`: 415,
code 415, for a type a web page could send cross-site). Request bodies are read here too: Content-Length is checked against the limit before anything is read
(413 when larger), a body without a length is read up to the limit + 1 byte, invalid UTF-8 is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import bottle

from cfsslpy.api.guard import check_content_type
from cfsslpy.api.wire import ERROR_HEADERS, JSON_TYPE, describe_failure, envelope, error_envelope
from cfsslpy.errors import ApiError as ApiError  # re-exported: the API modules import it from here
from cfsslpy.errors import Error, log_value
from cfsslpy.golang.json import loads

log = logging.getLogger("cfsslpy.api")

# environ key where the error code of a failure is left for the access log and the metrics
ERROR_CODE_KEY = "cfsslpy.error_code"


@dataclass
class Reply:
    """A successful result and its envelope ``messages`` (``(code, text)`` pairs)."""

    result: Any
    messages: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class RawReply:
    """A successful response that is not an envelope (``/metrics``)."""

    body: bytes
    content_type: str


@dataclass
class ApiRequest:
    """What a handler sees: the method, the raw body (already bounded) and the WSGI environ."""

    method: str
    body: bytes
    environ: dict[str, Any]

    def json(self) -> Any:
        """The body decoded as Go's encoding/json would; JSONDecodeError (Go's wording) when it is not JSON.

        Invalid UTF-8 is refused outright (400) instead of being replaced with U+FFFD as Go does.
        """
        return decode_json(self.body)


Handler = Callable[[ApiRequest], Reply | RawReply]


def decode_json(data: bytes) -> Any:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "request body is not valid UTF-8") from None
    return loads(data)


# ---------------------------------------------------------------------------------------------------------
# Responses


def success_response(reply: Reply | RawReply) -> bottle.HTTPResponse:
    if isinstance(reply, RawReply):
        return bottle.HTTPResponse(reply.body, 200, {"Content-Type": reply.content_type})
    body = envelope(True, reply.result, [], reply.messages)
    return bottle.HTTPResponse(body, 200, {"Content-Type": JSON_TYPE})


def error_response(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> bottle.HTTPResponse:
    """A failure as Go's ``http.Error`` sends it; the code is left in the environ for the access log."""
    bottle.request.environ[ERROR_CODE_KEY] = code
    all_headers = {**dict(ERROR_HEADERS), **(headers or {})}
    return bottle.HTTPResponse(error_envelope(code, message), status, all_headers)


def method_not_allowed(method: str, allowed: str) -> ApiError:
    """cfssl's ``Method is not allowed:"GET"`` (Go's %q of the method), plus the Allow header RFC 9110 asks for.

    The one spelling of a 405, for the endpoint wrapper and for bottle's own (the web UI's routes).
    """
    from cfsslpy.golang.strconv import quote  # lazily: the certinfo package costs the OCSP app's start-up

    return ApiError(405, f"Method is not allowed:{quote(method)}", {"Allow": allowed})


# ---------------------------------------------------------------------------------------------------------
# Request bodies


def read_body(environ: dict[str, Any], max_body: int) -> bytes:
    """The request body, at most ``max_body`` bytes (413 beyond), without trusting the client's framing."""
    stream = environ.get("wsgi.input")
    length_text = (environ.get("CONTENT_LENGTH") or "").strip()
    if length_text:
        if not length_text.isdigit():
            raise ApiError(400, "invalid Content-Length")
        length = int(length_text)
        if length > max_body:
            raise _too_large(max_body)
        return _read_up_to(stream, length)
    if "chunked" in (environ.get("HTTP_TRANSFER_ENCODING") or "").lower():
        return _read_chunked(stream, max_body)
    if environ.get("wsgi.input_terminated") and stream is not None:
        data = _read_up_to(stream, max_body + 1)
        if len(data) > max_body:
            raise _too_large(max_body)
        return data
    return b""  # PEP 3333: without a length the application must not read


def _too_large(max_body: int) -> ApiError:
    return ApiError(413, f"request body too large (limit {max_body} bytes)")


def _read_up_to(stream: Any, length: int) -> bytes:
    if stream is None or length <= 0:
        return b""
    chunks: list[bytes] = []
    remaining = length
    while remaining > 0:
        chunk = stream.read(min(remaining, 65536))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _read_chunked(stream: Any, max_body: int) -> bytes:
    """Decode a chunked body straight from the socket stream (servers that pass it through undecoded)."""
    if stream is None:
        return b""
    out = bytearray()
    while True:
        line = stream.readline(1024)
        if not line.endswith(b"\n"):
            raise ApiError(400, "malformed chunked request body")
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ApiError(400, "malformed chunked request body") from None
        if size == 0:
            while stream.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(out)
        if len(out) + size > max_body:
            raise _too_large(max_body)
        data = _read_up_to(stream, size)
        if len(data) != size or stream.read(2) not in (b"\r\n",):
            raise ApiError(400, "malformed chunked request body")
        out += data


# ---------------------------------------------------------------------------------------------------------
# The wrapper


def wrap(name: str, method: str, handler: Handler, max_body: int) -> Callable[[], bottle.HTTPResponse]:
    """A bottle route callback for one endpoint: method check, bounded body, handler, envelope, errors."""
    return _Endpoint(name, method, handler, max_body)


class _Endpoint:
    """The route callback, as an object rather than a closure: bottle's ``Route.__repr__`` follows
    ``__closure__`` chains to find the "undecorated" function and loops forever on some closures."""

    def __init__(self, name: str, method: str, handler: Handler, max_body: int) -> None:
        self.name, self.method, self.handler, self.max_body = name, method, handler, max_body
        self.__name__ = f"api_{name}"

    def __call__(self) -> bottle.HTTPResponse:
        environ: dict[str, Any] = bottle.request.environ
        try:
            requested = environ.get("REQUEST_METHOD", "")
            if requested != self.method:
                raise method_not_allowed(requested, self.method)
            if self.method == "POST":
                check_content_type(self.name, environ)
            body = read_body(environ, self.max_body) if self.method == "POST" else b""
            return success_response(self.handler(ApiRequest(requested, body, environ)))
        except Exception as exc:
            status, code, message, headers = describe_failure(exc)
            hint = f" hint={log_value(exc.hint)}" if isinstance(exc, Error) and exc.hint else ""
            if status >= 500:
                if isinstance(exc, Error):
                    log.warning("%s: %s%s", self.name, log_value(message), hint)
                else:
                    log.error("%s: internal error", self.name, exc_info=exc)
            else:
                log.debug("%s: %d %s%s", self.name, code, log_value(message), hint)
            return error_response(status, code, message, headers)
