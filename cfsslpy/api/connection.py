"""One HTTP/1.1 connection of :mod:`cfsslpy.api.server`: an asyncio protocol, parsed by httptools (llhttp).

The connection owns everything that happens between the bytes of a socket and one call of the application:

* **Parsing** is httptools's (the parser of Node.js); nothing here reads HTTP syntax by hand. A request the
  parser refuses (binary garbage, a header without a colon, both Content-Length and Transfer-Encoding, a NUL
  in the method, a bad chunk size, an HTTP/2 preface) is answered 400 with cfssl's error envelope, and the
  connection is closed.
* **Limits**: request line and headers up to ``max_header`` bytes (431 beyond), a body up to ``max_body``
  bytes (413 beyond, decided from Content-Length before the body is read, or while a chunked body arrives).
  ``Expect: 100-continue`` is answered with ``100 Continue`` only for a body within the limit.
* **Deadlines** (checked by the worker's sweep, :meth:`Connection.overdue`): headers within
  ``header_timeout`` of a request's first byte, the whole request within ``request_timeout``, an idle
  keep-alive connection closed after ``idle_timeout``, and a client that stops reading its responses cut
  off after ``request_timeout``.
* **Lingering close**: when the server closes a connection after an error (400, 413, 431), the client may
  still be writing its request; closing a socket with unread data makes the kernel send a reset, which
  destroys the response before the client reads it. So the connection first shuts down its sending side
  (after the response), then reads and discards for at most ``LINGER_TIME`` seconds (``LINGER_IDLE`` without
  data), as nginx's ``lingering_close`` does.
* **Pipelining** is served in order, one request at a time. Received bytes are parsed a slice at a time and
  only while no complete request waits; reading pauses meanwhile, so a client that pipelines thousands of
  requests in one write holds one socket read and one slice's requests, not thousands of parsed requests.
* **Failures**: an exception from the application is answered 500 (cfssl's ``internal server error``
  envelope, code 0) and logged in one line; an exception in this module's own code closes this connection
  only and is logged in one line. Nothing here ends the worker.

Where a request runs is the worker's decision (:class:`Dispatch`): on the event-loop thread, or in one of
the bounded thread pools.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any, Protocol

import httptools

from cfsslpy.api.wire import ERROR_HEADERS, INTERNAL_MESSAGE, UNTYPED_CODE, error_envelope
from cfsslpy.errors import logfmt as _logfmt

log = logging.getLogger("cfsslpy.api.server")
access_log = logging.getLogger("cfsslpy.api.access")

# After an error response: discard what the client still sends for at most this long in all...
LINGER_TIME = 10.0
# ...and give up earlier when it sends nothing for this long.
LINGER_IDLE = 2.0
# Received bytes are parsed this much at a time, and only while no complete request is waiting: a client
# that pipelines thousands of tiny requests in one read cannot queue them all (memory per connection stays
# about one read of the socket, and at most the requests of one slice).
_FEED_SLICE = 8 * 1024

_STATUS_TEXT = {
    400: "Bad Request",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def access_line(level: int, method: str, path: str, status: int, size: int, seconds: float, remote: str, error: str | None = None) -> None:
    """One access-log line, every field through :func:`~cfsslpy.errors.logfmt`; never raises (it runs on error paths)."""
    try:
        access_log.log(
            level,
            "method=%s path=%s status=%d bytes=%d duration_ms=%.2f remote=%s%s",
            _logfmt(method),
            _logfmt(path),
            status,
            size,
            seconds * 1000,
            _logfmt(remote),
            "" if error is None else " error=" + _logfmt(error),
        )
    except Exception:  # a broken handler must not turn one bad request into a dead worker
        pass


@dataclass
class Request:
    """One parsed request, body included (bodies are small and bounded: they are read whole)."""

    method: str
    target: bytes
    version: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    keep_alive: bool
    started: float  # time.monotonic() of its first byte

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    @property
    def path(self) -> str:
        """The path (percent-encoded, as sent), for routing and logs."""
        target = self.target
        if not target.startswith(b"/"):
            try:
                target = httptools.parse_url(target).path or b"/"
            except httptools.HttpParserInvalidURLError:
                return target.decode("latin-1")
        return target.split(b"?", 1)[0].decode("latin-1")


@dataclass
class Response:
    status: str  # "200 OK"
    headers: list[tuple[str, str]]
    body: bytes = b""
    close: bool = False  # close the connection after it (the application's "Connection: close", or an error)
    linger: bool = False  # close with a lingering close (the client may still be sending)
    log_line: tuple[int, str] | None = field(default=None)  # (level, error) for a server-made response's log line


def error_response(status: int, message: str, *, code: int | None = None, linger: bool = True) -> Response:
    """A server-made error (cfssl's envelope), closing the connection afterwards."""
    body = error_envelope(status if code is None else code, message)
    response = Response(f"{status} {_STATUS_TEXT.get(status, 'Error')}", list(ERROR_HEADERS), body, close=True, linger=linger)
    response.log_line = (logging.INFO, message)  # one access-log line, with the reason
    return response


class Dispatch(Protocol):
    """The worker's side of a connection (see :class:`cfsslpy.api.server.Worker`)."""

    def handle(self, connection: Connection, request: Request) -> Response | None:
        """Answer now (on the loop thread), or return None after arranging for :meth:`Connection.finish`."""

    def opened(self, connection: Connection) -> None: ...

    def closed(self, connection: Connection) -> None: ...


@dataclass(frozen=True)
class Limits:
    max_header: int
    max_body: int
    header_timeout: float
    request_timeout: float
    idle_timeout: float


class _Refused(Exception):
    """Raised from a parser callback to stop parsing: the request is answered with ``response``."""

    def __init__(self, response: Response) -> None:
        self.response = response


_date_cache: list[Any] = [0, ""]


def http_date() -> str:
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0], _date_cache[1] = now, formatdate(now, usegmt=True)
    return str(_date_cache[1])


class Connection(asyncio.Protocol):
    """One client connection (see the module docstring)."""

    def __init__(self, dispatch: Dispatch, limits: Limits, scheme: str) -> None:
        self.dispatch = dispatch
        self.limits = limits
        self.scheme = scheme
        self.transport: asyncio.Transport | None = None
        self.remote = ("-", 0)
        self.local = ("", 0)
        self.peercert: dict[str, Any] | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.queue: collections.deque[Request] = collections.deque()
        self.busy = False  # a request is being handled (on the loop thread or in a pool)
        self.closing = False  # no more requests: answering the last one, lingering, or closed
        self.draining = False  # the worker is shutting down: answer what is in progress, then close
        self.lingering_until = 0.0
        self.reading_paused = False
        self.writing_paused_at: float | None = None
        self.last_active = time.monotonic()
        self.opened_at = self.last_active
        self._refusal: Response | None = None
        self._pending = b""  # received, not yet parsed (see _FEED_SLICE)
        self._reset_message()

    # --- state -------------------------------------------------------------------------------------------

    def _reset_message(self) -> None:
        self.started: float | None = None  # first byte of the request being received
        self.headers_done = False
        self.head_size = 0
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.header_total = 0
        self.body: list[bytes] = []
        self.body_size = 0

    @property
    def idle(self) -> bool:
        """Nothing in progress: no request being received, handled or waiting (a candidate for shedding)."""
        return not self.busy and not self.queue and (self.started is None or not self.headers_done)

    def overdue(self, now: float) -> str | None:
        """Why this connection must be closed now, or None (called by the worker's periodic sweep)."""
        limits = self.limits
        if self.lingering_until:
            if now > self.lingering_until or now - self.last_active > LINGER_IDLE:
                return "lingering close done"
            return None
        if self.writing_paused_at is not None and now - self.writing_paused_at > limits.request_timeout:
            return f"client did not read its response for {limits.request_timeout:g}s"
        if self.started is not None:
            elapsed = now - self.started
            if not self.headers_done and elapsed > limits.header_timeout:
                return f"request headers not complete after {limits.header_timeout:g}s"
            if elapsed > limits.request_timeout:
                return f"request not complete after {limits.request_timeout:g}s"
            return None
        if not self.busy and not self.queue and now - self.last_active > limits.idle_timeout:
            return "idle"
        return None

    def close(self, why: str = "") -> None:
        """Close now (deadline, shedding, shutdown)."""
        if why and why not in ("idle", "lingering close done"):
            log.info("closing the connection from %s:%s: %s", _logfmt(str(self.remote[0])), self.remote[1], why)
        self.closing = True
        if self.transport is not None:
            if self.lingering_until or why.startswith("client did not read"):
                self.transport.abort()
            else:
                self.transport.close()

    def drain(self) -> None:
        """The worker is shutting down: close now when idle, else after the response in progress."""
        self.draining = True
        if self.idle and self.started is None:
            self.close()

    # --- asyncio.Protocol --------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport (uvloop's are not subclasses)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.remote = (str(peer[0]), int(peer[1]))
        local = transport.get_extra_info("sockname")
        if isinstance(local, tuple) and len(local) >= 2:
            self.local = (str(local[0]), int(local[1]))
        if self.scheme == "https":
            self.peercert = transport.get_extra_info("peercert")
        self.dispatch.opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.queue.clear()
        self.dispatch.closed(self)

    def pause_writing(self) -> None:
        self.writing_paused_at = time.monotonic()

    def resume_writing(self) -> None:
        self.writing_paused_at = None
        self._pump()

    def eof_received(self) -> bool | None:
        # a half-closed client gets the answers to the requests it completed, then the connection closes
        if self.lingering_until or (not self.busy and not self.queue):
            return None  # asyncio closes the transport
        self.closing = True
        return True

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        if self.closing:
            return  # lingering (or closing): discard
        self._pending = self._pending + data if self._pending else data
        self._pump()

    def _pump(self) -> None:
        """Parse and answer in turn: a slice is parsed only when no complete request is waiting; reading
        pauses while unparsed bytes or waiting requests remain, and resumes once both are gone."""
        while True:
            try:
                while self._pending and not self.queue and not self.closing:
                    chunk, self._pending = self._pending[:_FEED_SLICE], self._pending[_FEED_SLICE:]
                    if self.started is None and not chunk.strip(b"\r\n"):
                        continue  # CRLFs between requests (RFC 9112 allows them) do not start a request
                    self._feed(chunk)
            except Exception as exc:  # a bug here closes this connection, and only this one
                access_line(logging.ERROR, "-", "-", 500, 0, 0.0, self.remote[0], error=f"{type(exc).__name__}: {exc}")
                self.closing = True
                self._pending = b""
                if self.transport is not None:
                    self.transport.abort()
                return
            self._next()
            if not (self._pending and not self.queue and not self.busy and not self.closing and self.writing_paused_at is None):
                break
        if self.closing:
            self._pending = b""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        behind = bool(self._pending or self.queue) and not self.closing
        if behind and not self.reading_paused:
            self.reading_paused = True
            transport.pause_reading()
        elif not behind and self.reading_paused and not self.lingering_until:
            self.reading_paused = False
            transport.resume_reading()

    def _feed(self, data: bytes) -> None:
        if self.started is None:
            self.started = self.last_active
        if not self.headers_done:
            self.head_size += len(data)
        try:
            self.parser.feed_data(data)
        except _Refused as refused:
            self._refuse(refused.response)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__ or exc.__cause__
            if isinstance(cause, _Refused):
                self._refuse(cause.response)
            else:
                raise
        except httptools.HttpParserUpgrade:
            # Upgrade/CONNECT: not supported; what was complete is answered, then the connection closes
            self.closing = True
        except httptools.HttpParserError as exc:
            self._refuse(error_response(400, f"malformed HTTP request: {_parser_reason(exc)}"))
        else:
            if not self.headers_done and self.head_size > self.limits.max_header:
                self._refuse(_too_large_headers(self.limits))

    def _refuse(self, response: Response) -> None:
        """Stop reading requests: answer ``response`` once the requests before it are answered."""
        self.closing = True
        method = "-"
        if self.headers_done:
            try:
                method = self.parser.get_method().decode("latin-1", "replace")
            except Exception:  # nothing parsed yet
                method = "-"
        request = Request(method, self.url or b"-", "1.1", [], b"", False, self.started or time.monotonic())
        self.queue.append(request)
        self._refusal = response

    # --- httptools callbacks -----------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.started is None:
            self.started = time.monotonic()

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > self.limits.max_header:
            raise _Refused(_too_large_headers(self.limits))

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        self.header_total += len(name) + len(value) + 4
        if len(self.url) + self.header_total > self.limits.max_header:
            raise _Refused(_too_large_headers(self.limits))

    def on_headers_complete(self) -> None:
        self.headers_done = True
        length = expect = None
        for key, value in self.headers:
            lowered = key.lower()
            if lowered == b"content-length":
                length = value
            elif lowered == b"expect":
                expect = value
        limit = self.limits.max_body
        if length is not None and length.strip().isdigit() and int(length) > limit:
            raise _Refused(error_response(413, f"request body too large (limit {limit} bytes)"))
        if expect is not None:
            if expect.strip().lower() != b"100-continue":
                raise _Refused(error_response(417, "unsupported expectation"))
            if self.parser.get_http_version() == "1.1" and self.transport is not None and not self.closing:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.body_size += len(body)
        if self.body_size > self.limits.max_body:
            raise _Refused(error_response(413, f"request body too large (limit {self.limits.max_body} bytes)"))
        self.body.append(body)

    def on_message_complete(self) -> None:
        parser = self.parser
        request = Request(
            parser.get_method().decode("latin-1"),
            self.url,
            parser.get_http_version(),
            self.headers,
            b"".join(self.body),
            bool(parser.should_keep_alive()),
            self.started or time.monotonic(),
        )
        self.queue.append(request)
        self._reset_message()

    # --- answering ---------------------------------------------------------------------------------------

    def _next(self) -> None:
        """Answer waiting requests in order while nothing blocks (a request in progress, a full send buffer)."""
        while not self.busy and self.queue and self.writing_paused_at is None and self.transport is not None:
            request = self.queue.popleft()
            refusal = self._refusal
            if refusal is not None and not self.queue:  # the refused request: always the last in the queue
                self._send(request, refusal)
                return
            self.busy = True
            try:
                response = self.dispatch.handle(self, request)
            except Exception as exc:
                response = internal_error(request, self.remote[0], exc)
            if response is None:
                return  # runs elsewhere; finish() continues
            self.busy = False
            self._send(request, response)

    def finish(self, request: Request, response: Response) -> None:
        """The answer of a request that ran in a pool (called on the loop thread)."""
        self.busy = False
        if self.transport is None or self.transport.is_closing():
            return
        self._send(request, response)
        self._pump()

    def _send(self, request: Request, response: Response) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self.last_active = time.monotonic()
        close = response.close or not request.keep_alive or self.draining or (self.closing and not self.queue)
        headers = response.headers
        names = {name.lower() for name, _ in headers}
        if "connection" in names:
            close = close or any(n.lower() == "connection" and v.strip().lower() == "close" for n, v in headers)
            headers = [(n, v) for n, v in headers if n.lower() != "connection"]
        head = [f"HTTP/1.1 {response.status}\r\n", *[f"{name}: {value}\r\n" for name, value in headers]]
        body = response.body
        code = response.status[:3]
        bodyless = code in ("204", "304") or code.startswith("1")
        if "content-length" not in names and not bodyless:
            head.append(f"Content-Length: {len(body)}\r\n")
        if "date" not in names:
            head.append(f"Date: {http_date()}\r\n")
        if close:
            head.append("Connection: close\r\n")
        elif request.version == "1.0":
            head.append("Connection: keep-alive\r\n")
        head.append("\r\n")
        try:
            data = "".join(head).encode("latin-1")
        except UnicodeEncodeError:
            response = error_response(500, INTERNAL_MESSAGE, code=UNTYPED_CODE, linger=False)
            data = _head_of(response) + response.body
            close = True
            body = b""
        if request.method == "HEAD" or bodyless:
            body = b""
        transport.write(data + body if len(body) < 65536 else data)
        if len(body) >= 65536:
            transport.write(body)
        if response.log_line is not None:
            level, error = response.log_line
            access_line(
                level,
                request.method,
                request.path,
                int(code),
                len(response.body),
                time.monotonic() - request.started,
                self.remote[0],
                error or None,
            )
        if close:
            self._close_after(response.linger)

    def _close_after(self, linger: bool) -> None:
        self.closing = True
        self.queue.clear()
        transport = self.transport
        if transport is None:
            return
        if not linger:
            transport.close()
            return
        # lingering close: stop sending (the client sees the end of the response), keep discarding input
        self.lingering_until = time.monotonic() + LINGER_TIME
        self.last_active = time.monotonic()
        if transport.can_write_eof():
            transport.write_eof()
        if self.reading_paused:
            self.reading_paused = False
            transport.resume_reading()


def _head_of(response: Response) -> bytes:
    lines = [f"HTTP/1.1 {response.status}\r\n", *(f"{k}: {v}\r\n" for k, v in response.headers)]
    lines += [f"Content-Length: {len(response.body)}\r\n", f"Date: {http_date()}\r\n", "Connection: close\r\n\r\n"]
    return "".join(lines).encode("latin-1")


def _too_large_headers(limits: Limits) -> Response:
    return error_response(431, f"request headers too large (limit {limits.max_header} bytes)")


def _parser_reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:120]


def internal_error(request: Request, remote: str, exc: BaseException) -> Response:
    """An unexpected failure while handling ``request``: 500, logged in one line by :meth:`Connection._send`."""
    response = error_response(500, INTERNAL_MESSAGE, code=UNTYPED_CODE, linger=False)
    response.log_line = (logging.ERROR, f"{type(exc).__name__}: {exc}")
    return response
