"""The production HTTP(S) server under ``serve``: waitress, TLS on accepted sockets, pre-forked workers.

**Why waitress.** Measured on the 2-core build machine (Python 3.11, a trivial WSGI app, a Python client
at concurrency 16 over keep-alive connections; then the latency of one normal request while 32 other
clients send request headers at 1 byte/s), one process each:

    server                         throughput     normal request during the slow-header attack
    waitress 3.0.2, 8 threads      2916 req/s     1.1 ms
    gunicorn 27 gthread, 8 thr.    1802 req/s     no answer within 8 s (every thread reads a slow client)
    cheroot 11.1, 8 threads        2534 req/s     no answer within 8 s (same)

(Reproduce with ``bench/server_choice.py``; a later run gave 2443 / 1497 / 2141 req/s and the same verdicts.)

waitress reads and buffers each whole request in its event loop before a worker thread sees it, so slow
clients cost a socket and a buffer, not a thread; gunicorn and cheroot hand the socket to a thread that
then blocks in ``recv``. waitress is pure Python with no dependencies, and speaks HTTP/1.1 keep-alive,
pipelining, chunked bodies and ``Expect: 100-continue``; it bounds header and body sizes itself.
End to end (``bench/serve.py``, same machine, both cores): EC CA 1,801 sign/s against cfssl's 2,939
(0.61x), RSA CA 763/s against 761 (1.00x), with a lower p99 than cfssl's in every cell.

**What waitress lacks, added here** (through its channel and task classes, not by parsing HTTP):

* TLS: each accepted socket is served through an in-memory ``ssl.SSLObject`` (``SSLContext.wrap_bio``),
  so the handshake and record layer run inside waitress's non-blocking event loop and a client that stalls
  the handshake holds no thread. Minimum version TLS 1.2 (``-min-tls-version 1.3`` raises it); client
  certificates are required and verified against ``-mutual-tls-ca``; ``-mutual-tls-cn REGEX`` answers 403
  ``Invalid CN`` to a client whose leaf CN does not match (regex search), as cfssl does.
* Deadlines: a TLS handshake and a request's headers must arrive within ``header_timeout`` of their first
  byte, the whole request within ``request_timeout`` (waitress only closes connections that are silent, so a
  client sending one byte a second would otherwise keep its connection forever); idle keep-alive
  connections are closed after ``idle_timeout``.
* Pre-fork: the parent binds the socket, forks the workers (each a waitress event loop with its own
  threads), restarts a worker that dies, and forwards SIGTERM/SIGINT; a worker stops when its parent dies.
  Workers share keep-alive connections evenly (a shared listening socket alone gave splits like 48/16).
* Cheap requests on the event-loop thread: signing with a local key, health and metrics run where the
  request was read instead of being handed to a waitress thread (``ServerOptions.inline``). The hand-off
  costs GIL switches between threads: per EC sign request, 1.4-1.5 ms of CPU with it, 1.0-1.1 ms without.
  Anything that may wait (remote signer, key generation) stays on the threads.
* Graceful shutdown (SIGTERM or SIGINT): stop accepting, close idle connections, let requests in progress
  finish (answering them with ``Connection: close``) for at most ``graceful_timeout``, exit 0.
* Transport-level errors (body or headers too large, malformed request) are answered with cfssl's JSON
  error envelope, like every other error of the API.
* Failures never stop a worker: an exception from the application is answered 500 (the envelope's
  ``internal server error``) and logged in one access-log line; one that escapes waitress's own handling
  closes that connection only. Every log field is cut to 256 characters and quoted when not plain, so a
  path or a client certificate's CN cannot forge or flood log lines.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import mmap
import os
import re
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from waitress import wasyncore
from waitress.channel import ClientDisconnected, HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ErrorTask, WSGITask

from cfsslpy.api.state import MAX_BODY
from cfsslpy.errors import LOG_FIELD_LIMIT, PlainError, UsageError, go_json_dumps
from cfsslpy.errors import logfmt as _logfmt

log = logging.getLogger(__name__)
access_log = logging.getLogger("cfsslpy.api.access")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# environ keys this server adds for the application (and for its own mutual-TLS CN check)
CLIENT_CN = "cfsslpy.tls.client_cn"  # the client certificate's CN ("" without one); absent without mTLS

_TLS_VERSIONS = {"": ssl.TLSVersion.TLSv1_2, "1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
# Ciphertext waiting for the socket beyond which the TLS channel stops taking plaintext (back-pressure).
_TLS_HIGH_WATER = 256 * 1024
# How long a closing TLS connection may take to hand its last bytes to a client that does not read.
_CLOSE_LINGER = 5.0
# A worker slot without a live worker, in the shared connection counts.
_NO_WORKER = 2**31 - 1
# How often a worker that declined new connections (Worker._balance) looks again.
_BALANCE_TICK = 0.01
# The event loop wakes at least this often to check deadlines and the stop flag.
_TICK = 0.25


@dataclass(frozen=True)
class TLSOptions:
    """HTTPS settings (``-tls-cert``, ``-tls-key``, ``-mutual-tls-ca``, ``-mutual-tls-cn``, ``-min-tls-version``)."""

    cert: str
    key: str
    client_ca: str = ""
    client_cn: str = ""
    min_version: str = ""


@dataclass(frozen=True)
class ServerOptions:
    """How to serve on a bound socket (:func:`bind`). ``workers`` processes (0: one per available core) of ``threads`` threads each.

    Security-relevant defaults: request bodies up to ``max_body`` bytes (413 beyond), request line and
    headers up to ``max_header`` bytes (431 beyond), ``header_timeout`` seconds for a TLS handshake or a
    request's headers, ``request_timeout`` for a whole request, ``idle_timeout`` for an idle keep-alive
    connection, at most ``connection_limit`` open connections per worker (further ones wait in the
    listen backlog), ``graceful_timeout`` for requests in progress at shutdown.

    ``inline(method, path)`` names the requests that are cheap and never block (signing with a local key,
    health, metrics): those run on the worker's event-loop thread instead of being handed to one of the
    ``threads``, which saves the GIL hand-offs between threads (a quarter to a third of the CPU time of a
    sign request). Anything that may wait (a remote signer, key generation, a database) must stay on the
    threads, or it would stall every connection of the worker meanwhile.
    """

    workers: int = 1
    threads: int = 4
    tls: TLSOptions | None = None
    max_body: int = MAX_BODY
    max_header: int = 64 * 1024
    header_timeout: float = 10.0
    request_timeout: float = 60.0
    idle_timeout: float = 30.0
    connection_limit: int = 512
    graceful_timeout: float = 10.0
    backlog: int = 1024
    inline: Callable[[str, str], bool] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # more waitress adjustments (tests, tuning)


def worker_count(requested: int) -> int:
    """``-workers``: N as given, 0 for one per CPU this process may run on."""
    if requested < 0:
        raise UsageError("-workers must be 0 (one per core) or more")
    if requested == 0:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not Linux
            return max(1, os.cpu_count() or 1)
    return requested


# ---------------------------------------------------------------------------------------------------------
# TLS


def tls_context(options: TLSOptions) -> ssl.SSLContext:
    """The server's SSLContext; every file is read now, so a bad one fails at startup, not at the first client.

    cfssl maps an unknown ``-min-tls-version`` (even ``1.3``) to TLS 1.0; we accept ``1.2`` and ``1.3``
    only and refuse anything below TLS 1.2.
    """
    if options.min_version not in _TLS_VERSIONS:
        if options.min_version in ("1.0", "1.1"):
            raise UsageError(f"-min-tls-version {options.min_version}: TLS versions below 1.2 are not supported")
        raise UsageError(f"-min-tls-version must be 1.2 or 1.3, not {options.min_version!r}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _TLS_VERSIONS[options.min_version]
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_SINGLE_ECDH_USE
    try:
        context.load_cert_chain(options.cert, options.key)
    except (OSError, ssl.SSLError) as exc:
        raise PlainError(f"failed to load the TLS certificate {options.cert} and key {options.key}: {_reason(exc)}") from None
    if options.client_ca:
        try:
            context.load_verify_locations(cafile=options.client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise PlainError(f"failed to load mutual TLS CA file: {_reason(exc)}") from None
        context.verify_mode = ssl.CERT_REQUIRED
    elif options.client_cn:
        raise UsageError("-mutual-tls-cn needs -mutual-tls-ca")
    return context


def compile_cn_pattern(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise PlainError(f"malformed CN regex: {exc}") from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).lower().replace("_", " ")
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]  # Go's wording: "bind: address already in use"
    return str(exc)


def _last_cn(peer: dict[str, Any] | None) -> str:
    """The CN of a ``getpeercert()`` subject; the last one when there are several (Go's pkix.Name does that)."""
    cn = ""
    for rdn in (peer or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                cn = value
    return cn


def require_client_cn(app: WSGIApp, pattern: re.Pattern[str]) -> WSGIApp:
    """cfssl's ``-mutual-tls-cn``: 403 ``Invalid CN`` (plain text, as Go's http.Error) unless the CN matches."""
    body = b"Invalid CN\n"
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("X-Content-Type-Options", "nosniff"),
        ("Content-Length", str(len(body))),
    ]

    def check(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        cn = environ.get(CLIENT_CN)
        if cn is not None and pattern.search(cn):
            return app(environ, start_response)
        cn_text = json.dumps((cn or "")[:LOG_FIELD_LIMIT])  # always quoted (an empty CN shows as "")
        log.warning("Rejected client cert CN %s does not match regex %s", cn_text, _logfmt(pattern.pattern))
        start_response("403 Forbidden", list(headers))
        return [body]

    return check


# ---------------------------------------------------------------------------------------------------------
# waitress extensions: task (environ, draining, error envelope) and channels (deadlines, TLS)


class _Task(WSGITask):  # type: ignore[misc]
    wrote_header: bool  # waitress's attributes this class uses (annotations only: no new class attributes)
    complete: bool
    content_length: int | None
    content_bytes_written: int
    chunked_response: bool

    def get_environment(self) -> dict[str, Any]:
        if self.environ is not None:
            return self.environ  # type: ignore[no-any-return]
        environ: dict[str, Any] = super().get_environment()
        channel = self.channel
        environ["wsgi.multiprocess"] = channel.server.cfsslpy_multiprocess
        if isinstance(channel, _TLSChannel):
            environ["HTTPS"] = "on"
            if channel.client_cn is not None:
                environ[CLIENT_CN] = channel.client_cn
        return environ

    def write(self, data: bytes) -> None:
        """waitress sends the header and the body with two ``send`` calls (two wake-ups of the client); the
        usual response here is one body chunk with a Content-Length, which goes out with its header in one."""
        if self.wrote_header or not self.complete:
            super().write(data)
            return
        header = self.build_response_header()
        self.wrote_header = True
        length = self.content_length
        if data and self.has_body and not self.chunked_response and length is not None and len(data) <= length - self.content_bytes_written:
            self.content_bytes_written += len(data)
            self.channel.write_soon(header + data)
        else:
            self.channel.write_soon(header)
            super().write(data)

    def build_response_header(self) -> bytes:
        if self.channel.server.cfsslpy_draining:
            self.set_close_on_finish()  # shutting down: tell the client not to reuse this connection
        return super().build_response_header()  # type: ignore[no-any-return]

    def execute(self) -> None:
        """The application's failures end here: answered 500 (when nothing was sent yet) with the error
        envelope, logged in one access-log line, the connection closed afterwards. waitress would log a
        multi-line traceback and answer through the error task; an exception there would end the worker."""
        try:
            super().execute()
        except ClientDisconnected:
            raise
        except Exception as exc:
            sent = 0
            if not self.wrote_header:
                body = _envelope(0, "internal server error")  # the API's wording for every unexpected failure
                self.status = "500 Internal Server Error"
                self.response_headers = [("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff")]
                self.content_length = len(body)
                self.complete = True
                self.set_close_on_finish()
                self.write(body)
                sent = len(body)
            else:  # cut short: no chunked terminator (finish() would write one), so it cannot pass for complete
                self.chunked_response = False
            self.close_on_finish = True  # a response cut short, or an application in an unknown state
            environ = self.environ or {}
            _access_line(
                logging.ERROR,
                str(environ.get("REQUEST_METHOD") or getattr(self.request, "command", None) or "-"),
                str(getattr(self.request, "path", None) or "-"),
                500,
                sent,
                time.time() - self.start_time,
                _remote(self.channel),
                error=f"{type(exc).__name__}: {exc}",
            )


class _ErrorTask(ErrorTask):  # type: ignore[misc]
    """waitress's own errors (413, 431, 400...) as cfssl's error envelope, sent like Go's http.Error, with the
    API's wording for the size limits; logged like the application's access log lines.

    waitress also sends the 500 for an application failure it caught through this task, with a request that
    was never parsed (no method, no path): nothing here may assume a parsed request, and nothing may raise
    (waitress calls it with "must not fail", and an exception would end the worker)."""

    def execute(self) -> None:
        error = self.request.error
        code = int(getattr(error, "code", 500) or 500)
        reason = str(getattr(error, "reason", "") or "Internal Server Error")
        try:
            adj = self.channel.adj
            if code == 413:
                message = f"request body too large (limit {adj.max_request_body_size} bytes)"
            elif code == 431:
                message = f"request headers too large (limit {adj.max_request_header_size} bytes)"
            elif code == 500:  # the API's own wording (code 0); never waitress's text, which may carry a traceback
                message = "internal server error"
            else:
                message = f"{reason}: {error.body}" if getattr(error, "body", "") else reason
        except Exception:
            message = reason
        body = _envelope(0 if code == 500 else code, message)
        self.status = f"{code} {reason}"
        self.response_headers.extend([("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff")])
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)
        _access_line(
            logging.INFO,
            str(getattr(self.request, "command", None) or "-"),
            str(getattr(self.request, "path", None) or "-"),
            code,
            len(body),
            time.time() - getattr(self, "start_time", time.time()),
            _remote(self.channel),
        )


def _envelope(code: int, message: str) -> bytes:
    return (
        go_json_dumps({"success": False, "result": None, "errors": [{"code": code, "message": message}], "messages": []}) + "\n"
    ).encode()


def _remote(channel: Any) -> str:
    try:
        return str(channel.addr[0])
    except Exception:
        return "-"


def _access_line(level: int, method: str, path: str, status: int, size: int, seconds: float, remote: str, error: str | None = None) -> None:
    """One access-log line, every field through :func:`_logfmt`; never raises (it runs on error paths)."""
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


class _Channel(HTTPChannel):  # type: ignore[misc]
    """An HTTP connection with deadlines for the request being received."""

    task_class = _Task
    error_task_class = _ErrorTask

    def __init__(self, server: Any, sock: socket.socket, addr: Any, adj: Any, map: Any = None) -> None:
        self.opened = time.monotonic()
        self.request_started: float | None = None  # first byte of the request now being received
        super().__init__(server, sock, addr, adj, map)

    def received(self, data: bytes) -> bool:
        if self.request is None:
            self.request_started = time.monotonic()
        result: bool = super().received(data)
        if self.request is None:
            self.request_started = None
        return result

    def overdue(self, now: float, options: ServerOptions) -> str | None:
        """Why this connection must be closed now, or None."""
        request = self.request
        if self.request_started is None or request is None:
            return None
        elapsed = now - self.request_started
        if not request.headers_finished and elapsed > options.header_timeout:
            return f"request headers not complete after {options.header_timeout:g}s"
        if elapsed > options.request_timeout:
            return f"request not complete after {options.request_timeout:g}s"
        return None

    def busy(self) -> bool:
        """A request is being received, processed or answered (graceful shutdown waits for it)."""
        request = self.request
        return bool(self.requests or self.total_outbufs_len or (request is not None and not request.empty))

    def close_now(self) -> None:
        self.handle_close()


class _TLSChannel(_Channel):
    """TLS through ``SSLContext.wrap_bio``: ciphertext moves between the socket and two memory BIOs in the
    event loop; waitress reads and writes plaintext. Lock order: waitress's outbuf lock, then ``_tls_lock``;
    ``handle_close`` (which takes the outbuf lock) is never called while ``_tls_lock`` is held.
    """

    context: ssl.SSLContext  # set on the per-server subclass

    def __init__(self, server: Any, sock: socket.socket, addr: Any, adj: Any, map: Any = None) -> None:
        self._tls_lock = threading.Lock()
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = self.context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._ciphertext = bytearray()  # encrypted bytes the socket has not taken yet
        self._established = False
        self._peer_gone = False
        self._closing_since: float | None = None
        self.client_cn: str | None = None
        super().__init__(server, sock, addr, adj, map)

    # -- reading (event loop thread) ------------------------------------------------------------------------

    def handle_read(self) -> None:
        try:
            raw = self.socket.recv(self.adj.recv_bytes)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            raw = b""
        if not raw:
            self._peer_gone = True
            self.handle_close()
            return
        failure: ssl.SSLError | None = None
        with self._tls_lock:
            self._incoming.write(raw)
            try:
                plaintext = self._decrypt()
            except ssl.SSLError as exc:
                plaintext, failure = b"", exc
            self._push()
        self.last_activity = time.time()
        if failure is not None:
            self._handshake_failed(failure)
            return
        if self._peer_gone:
            self.handle_close()
            return
        if plaintext:
            self.received(plaintext)

    def _decrypt(self) -> bytes:
        if not self._established:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                return b""
            self._established = True
            self._on_established()
        chunks = []
        while True:
            try:
                chunk = self._tls.read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:  # the client's close_notify
                self._peer_gone = True
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def _on_established(self) -> None:
        if self.context.verify_mode == ssl.CERT_REQUIRED:
            self.client_cn = _last_cn(self._tls.getpeercert())

    def _handshake_failed(self, exc: ssl.SSLError) -> None:
        # cfssl (Go's http.Server) logs "http: TLS handshake error from ADDR: ..." for these.
        # A refused client certificate is worth a WARNING; scanners and plain-HTTP clients only an INFO.
        client_auth = self.context.verify_mode == ssl.CERT_REQUIRED and not self._established
        level = logging.WARNING if client_auth or isinstance(exc, ssl.SSLCertVerificationError) else logging.INFO
        where = "TLS handshake" if not self._established else "TLS"
        log.log(level, "%s error from %s:%s: %s", where, self.addr[0], self.addr[1], _reason(exc))
        self._peer_gone = True  # nothing more to say to this client (its alert was already pushed)
        self.handle_close()

    # -- writing (event loop thread, or a task thread holding waitress's outbuf lock) -----------------------

    def _push(self) -> None:
        """Move the TLS layer's output to the socket as far as it takes it (``_tls_lock`` held)."""
        out = self._outgoing.read()
        if out:
            self._ciphertext += out
        while self._ciphertext and not self._peer_gone and self.socket is not None:
            try:
                sent = self.socket.send(self._ciphertext)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._peer_gone = True
                return
            del self._ciphertext[:sent]

    def send(self, data: bytes, do_close: bool = True) -> int:
        """waitress's plaintext ``send``: returns how much plaintext was taken (0 = try again later)."""
        with self._tls_lock:
            if len(self._ciphertext) >= _TLS_HIGH_WATER:
                self._push()
            if self.socket is None or self._peer_gone or len(self._ciphertext) >= _TLS_HIGH_WATER:
                taken = 0
            else:
                try:
                    taken = self._tls.write(data)
                except ssl.SSLError:
                    self._peer_gone = True
                    taken = 0
                self._push()
        if self._peer_gone and do_close:
            self.handle_close()
        return taken

    def writable(self) -> bool:
        return bool(self._ciphertext) or bool(super().writable())

    def readable(self) -> bool:
        return self._closing_since is None and bool(super().readable())

    def handle_write(self) -> None:
        with self._tls_lock:
            self._push()
            blocked = bool(self._ciphertext)
        if self._peer_gone:
            self.handle_close()
        elif not blocked:
            super().handle_write()

    def handle_close(self) -> None:
        """Close after the last ciphertext has reached the socket (with close_notify), or at once if the
        client is gone; a client that does not read gets ``_CLOSE_LINGER`` seconds."""
        if self.socket is None:
            return
        if not self._peer_gone:
            with self._tls_lock:
                if self._established and self._closing_since is None:
                    with contextlib.suppress(ssl.SSLError):
                        self._tls.unwrap()  # queue our close_notify
                self._push()
                pending = bool(self._ciphertext) and not self._peer_gone
            if pending and (self._closing_since is None or time.monotonic() - self._closing_since < _CLOSE_LINGER):
                if self._closing_since is None:
                    self._closing_since = time.monotonic()
                self.will_close = True
                return
        super().handle_close()

    def overdue(self, now: float, options: ServerOptions) -> str | None:
        if self._closing_since is not None and now - self._closing_since > _CLOSE_LINGER:
            return "client does not read the end of its response"
        if not self._established and now - self.opened > options.header_timeout:
            return f"TLS handshake not complete after {options.header_timeout:g}s"
        return super().overdue(now, options)

    def busy(self) -> bool:
        return bool(self._ciphertext) or super().busy()

    def close_now(self) -> None:
        self._peer_gone = True
        self.handle_close()


# ---------------------------------------------------------------------------------------------------------
# The listening socket


def bind(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """Bind and listen on ``host:port`` (port 0: any free port); errors read like Go's ``net.Listen``."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise PlainError(f"listen tcp {where}: lookup {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if not host else 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise PlainError(f"listen tcp {where}: bind: {_reason(exc)}") from None
    sock.set_inheritable(False)
    return sock


def listen_url(sock: socket.socket, tls: bool) -> str:
    host, port = sock.getsockname()[:2]
    return f"{'https' if tls else 'http'}://{f'[{host}]' if ':' in host else host}:{port}"


# ---------------------------------------------------------------------------------------------------------
# One worker: a waitress event loop with deadlines, a stop flag and graceful draining


class _Dispatcher:
    """waitress's task dispatcher, except that requests ``inline`` accepts wait in ``pending`` and run on the
    event-loop thread (:meth:`run_pending`, after each turn of the loop) instead of on a worker thread.

    ``add_task`` is called by waitress with the channel whose first queued request is due, from the loop
    thread or from a worker thread (the next pipelined request); a worker thread wakes the loop afterwards
    (waitress pulls its trigger at the end of every request), so a pending request never waits for a poll
    timeout.

    Every channel is served through :func:`_service`: an exception that escapes waitress's own handling is
    logged in one line and the connection closed, where it would otherwise end the worker (on the loop
    thread) or leave the connection open forever (on a waitress thread, which logs and forgets it).
    """

    def __init__(self, threaded: Any, inline: Callable[[str, str], bool] | None) -> None:
        self.threaded = threaded
        self.inline = inline
        self.pending: collections.deque[Any] = collections.deque()

    def add_task(self, channel: Any) -> None:
        request = channel.requests[0] if channel.requests else None
        if self.inline is not None and request is not None and request.error is None and self.inline(request.command, request.path):
            self.pending.append(channel)
        else:
            self.threaded.add_task(_Guarded(channel))

    def run_pending(self) -> None:
        while self.pending:
            _service(self.pending.popleft())

    def set_thread_count(self, count: int) -> None:
        self.threaded.set_thread_count(count)

    def shutdown(self, cancel_pending: bool = True, timeout: float = 5) -> bool:
        return bool(self.threaded.shutdown(cancel_pending=cancel_pending, timeout=timeout))


@dataclass(frozen=True)
class _Guarded:
    """A channel as a task of waitress's thread pool (which calls ``service``, or ``cancel`` at shutdown),
    served by :func:`_service`."""

    channel: Any

    def service(self) -> None:
        _service(self.channel)

    def cancel(self) -> None:
        self.channel.cancel()


def _service(channel: Any) -> None:
    """``channel.service()`` (waitress answers the channel's first request), which must never raise: an
    exception is logged in one line and the connection closed once what was already queued is sent."""
    try:
        channel.service()
    except Exception as exc:
        request = channel.requests[0] if channel.requests else None
        _access_line(
            logging.ERROR,
            str(getattr(request, "command", None) or "-"),
            str(getattr(request, "path", None) or "-"),
            500,
            0,
            0.0,
            _remote(channel),
            error=f"{type(exc).__name__}: {exc}",
        )
        with contextlib.suppress(Exception):
            with channel.requests_lock:
                for pending in channel.requests:
                    pending.close()
                channel.requests = []
                channel.close_when_flushed = True
            channel.server.pull_trigger()


class Worker:
    """Serves ``app`` on an already listening socket until :meth:`stop` (or SIGTERM/SIGINT in the main thread)."""

    def __init__(
        self,
        app: WSGIApp,
        options: ServerOptions,
        listener: socket.socket,
        context: ssl.SSLContext | None,
        *,
        multiprocess: bool,
        on_exit: Callable[[], None] | None = None,
        balance: tuple[memoryview, int] | None = None,
    ) -> None:
        self.options = options
        self.on_exit = on_exit
        self._declined = False  # see _balance
        self._recheck: Callable[[], None] | None = None
        self.listener = listener
        self.context = context
        self._stop = threading.Event()
        self._parent = os.getppid() if multiprocess else None
        self._map: dict[int, Any] = {}
        if options.tls and options.tls.client_cn:
            app = require_client_cn(app, compile_cn_pattern(options.tls.client_cn))
        adjustments: dict[str, Any] = {
            "threads": options.threads,
            "url_scheme": "https" if context is not None else "http",
            "max_request_body_size": options.max_body,
            "max_request_header_size": options.max_header,
            "channel_timeout": max(1, int(options.idle_timeout)),
            "cleanup_interval": max(1, int(min(options.idle_timeout, 30) / 2)),
            "connection_limit": options.connection_limit,
            "backlog": options.backlog,
            "asyncore_use_poll": True,
            "log_socket_errors": False,
            "expose_tracebacks": False,
            "ident": "",
            "clear_untrusted_proxy_headers": True,
            **options.extra,
        }
        self.server: BaseWSGIServer = create_server(app, map=self._map, sockets=[listener], **adjustments)
        if context is not None:
            self.server.channel_class = type("TLSChannel", (_TLSChannel,), {"context": context})
        else:
            self.server.channel_class = _Channel
        self.server.cfsslpy_draining = False
        self.server.cfsslpy_multiprocess = multiprocess
        if balance is not None:
            self._balance(*balance)
        self.dispatcher = _Dispatcher(self.server.task_dispatcher, options.inline)
        self.server.task_dispatcher = self.dispatcher
        if options.inline is not None:
            # waitress wakes the event loop through a pipe at the end of every request; a request answered on
            # the loop thread itself needs no wake-up (the loop polls again right after it): one write, one
            # read and one turn of the loop less per request.
            wake = self.server.pull_trigger
            self._loop_thread = threading.get_ident()

            def pull_trigger() -> None:
                if threading.get_ident() != self._loop_thread:
                    wake()

            self.server.pull_trigger = pull_trigger

    def _balance(self, loads: memoryview, index: int) -> None:
        """Accept new connections only while no sibling worker has clearly fewer open ones (two fewer, or a
        quarter fewer with many; ``loads``: every worker's count, in memory the processes share). A listening socket shared by several processes hands
        each connection to whichever wakes first, so keep-alive clients can pile up on one worker while
        another idles. A worker that declines re-checks every ``_BALANCE_TICK`` (its siblings' counts
        change without waking it), so a new connection waits at most that long in the rare case where every
        worker has just declined."""
        server = self.server
        channels = server.active_channels
        accepting = server.readable  # waitress's: connection limit, and the idle-connection sweep
        loads[index] = 0

        def recheck() -> None:  # before each turn of the loop, which chooses its poll timeout by the result
            mine = len(channels)
            loads[index] = mine
            least = min(loads)
            self._declined = mine > least + 1 + least // 4  # within one, or a quarter for many connections

        def readable() -> bool:
            return bool(accepting()) and not self._declined

        self._recheck = recheck
        server.readable = readable

    def stop(self) -> None:
        """Ask the loop to shut down gracefully (thread-safe, async-signal-safe)."""
        self._stop.set()

    def run(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve until stopped; ``on_ready`` runs once the signal handlers are in place."""
        self._loop_thread = threading.get_ident()
        with self._signals():
            if on_ready is not None:
                on_ready()
            next_check = 0.0
            while not self._stop.is_set():
                if self._recheck is not None:
                    self._recheck()
                wasyncore.loop(timeout=_BALANCE_TICK if self._declined else _TICK, map=self._map, use_poll=True, count=1)
                self.dispatcher.run_pending()
                now = time.monotonic()
                if now < next_check:  # under load the loop turns thousands of times a second
                    continue
                next_check = now + _TICK
                self._enforce_deadlines()
                if self._parent is not None and os.getppid() != self._parent:
                    log.warning("worker %d: the server process is gone; shutting down", os.getpid())
                    break
            self._drain()
        if self.on_exit is not None:
            try:
                self.on_exit()
            except Exception:
                log.exception("worker %d: exit hook failed", os.getpid())

    def _channels(self) -> list[_Channel]:
        return [c for c in list(self._map.values()) if isinstance(c, _Channel)]

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for channel in self._channels():
            why = channel.overdue(now, self.options)
            if why is not None:
                log.info("closing the connection from %s:%s: %s", channel.addr[0], channel.addr[1], why)
                channel.close_now()

    def _drain(self) -> None:
        server = self.server
        server.cfsslpy_draining = True
        server.accepting = False
        server.del_channel()  # stop accepting; the trigger stays for the task threads
        self.listener.close()  # new connections are refused once every process has closed its copy
        deadline = time.monotonic() + self.options.graceful_timeout
        busy_at_start = sum(1 for channel in self._channels() if channel.busy())
        log.log(
            logging.DEBUG if self._parent is not None else logging.INFO,
            "shutting down: no longer accepting connections; %d request(s) in progress (waiting up to %gs)",
            busy_at_start,
            self.options.graceful_timeout,
        )
        while True:
            busy = []
            for channel in self._channels():
                if channel.busy():
                    busy.append(channel)
                else:
                    channel.close_now()
            if not busy:
                break
            if time.monotonic() >= deadline:
                log.warning("%d connection(s) still busy after %gs; closing them", len(busy), self.options.graceful_timeout)
                for channel in busy:
                    channel.close_now()
                break
            wasyncore.loop(timeout=_TICK / 5, map=self._map, use_poll=True, count=1)
            self.dispatcher.run_pending()
            self._enforce_deadlines()
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=max(1.0, deadline - time.monotonic()))
        wasyncore.close_all(self._map)

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: FrameType | None) -> None:
            self._stop.set()

        saved = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, previous in saved.items():
                signal.signal(s, previous)


# ---------------------------------------------------------------------------------------------------------
# The server: one worker in this process, or a supervisor of pre-forked workers


@contextlib.contextmanager
def _waitress_logging() -> Iterator[None]:
    """waitress's own log lines go where cfsslpy's go, at cfsslpy's level; its queue-depth warnings (normal
    under load: requests wait for a thread) only at DEBUG."""
    ours = logging.getLogger("cfsslpy")
    loggers = [logging.getLogger("waitress"), logging.getLogger("waitress.queue")]
    saved = [(lg, list(lg.handlers), lg.level, lg.propagate) for lg in loggers]
    level = ours.getEffectiveLevel()
    for lg in loggers:
        lg.handlers = list(ours.handlers)
        lg.propagate = not ours.handlers
        lg.setLevel(level)
    loggers[1].setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        for lg, handlers, lvl, propagate in saved:
            lg.handlers = handlers
            lg.setLevel(lvl)
            lg.propagate = propagate


def serve(
    app: WSGIApp,
    options: ServerOptions,
    listener: socket.socket,
    *,
    context: ssl.SSLContext | None = None,
    on_ready: Callable[[str], None] | None = None,
    on_worker_exit: Callable[[], None] | None = None,
) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit status (0 after a graceful shutdown).

    ``listener`` is bound and listening (:func:`bind`); it is closed on return. ``context`` is the TLS
    context for ``options.tls`` (built here when not given). ``on_ready(url)`` runs once the workers are
    started; ``on_worker_exit()`` runs in each worker after it has drained (e.g. to flush metrics). With
    ``options.workers`` above 1 the workers are forked from this process, which must not be running other
    threads.
    """
    with contextlib.closing(listener):
        if context is None and options.tls is not None:
            context = tls_context(options.tls)
        if options.tls and options.tls.client_cn:
            compile_cn_pattern(options.tls.client_cn)
        workers = worker_count(options.workers)
        url = listen_url(listener, context is not None)
        with _waitress_logging():
            if workers == 1:
                worker = Worker(app, options, listener, context, multiprocess=False, on_exit=on_worker_exit)
                worker.run(None if on_ready is None else lambda: on_ready(url))
                log.info("stopped")
                return 0
            return Supervisor(app, options, listener, context, workers, on_worker_exit).run(url, on_ready)


class Supervisor:
    """The parent of pre-forked workers: starts them, replaces any that dies, stops them on SIGTERM/SIGINT."""

    def __init__(
        self,
        app: WSGIApp,
        options: ServerOptions,
        listener: socket.socket,
        context: ssl.SSLContext | None,
        count: int,
        on_worker_exit: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.on_worker_exit = on_worker_exit
        self.options = options
        self.listener = listener
        self.context = context
        self.count = count
        self.workers: dict[int, tuple[int, float]] = {}  # pid -> (slot, start time (monotonic))
        self._restart_delay = 0.0
        # Each worker's number of open connections (see Worker._balance); a slot without a live worker
        # holds _NO_WORKER so that it never looks the least loaded.
        self._shared = mmap.mmap(-1, 4 * count)
        self.loads = memoryview(self._shared).cast("i")
        for slot in range(count):
            self.loads[slot] = _NO_WORKER

    def run(self, url: str, on_ready: Callable[[str], None] | None) -> int:
        signals = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}
        previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
        try:
            for slot in range(self.count):
                self._spawn(previous_mask, slot)
            if on_ready is not None:
                on_ready(url)
            stopping_at: float | None = None
            while self.workers or stopping_at is None:
                info = signal.sigtimedwait(signals, _TICK * 4)
                if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT) and stopping_at is None:
                    log.info("shutting down: stopping %d worker(s)", len(self.workers))
                    stopping_at = time.monotonic()
                    self._signal_all(signal.SIGTERM)
                    self.listener.close()
                self._reap(previous_mask, restart=stopping_at is None)
                if stopping_at is not None and self.workers and time.monotonic() - stopping_at > self.options.graceful_timeout + 5:
                    log.warning("worker(s) %s did not stop in time; killing them", ", ".join(map(str, self.workers)))
                    self._signal_all(signal.SIGKILL)
            log.info("stopped")
            return 0
        finally:
            if self.workers:  # an unexpected error in this loop: do not leave orphans behind
                self._signal_all(signal.SIGKILL)
                for pid in list(self.workers):
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, 0)
            signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)

    def _spawn(self, mask: Iterable[int | signal.Signals], slot: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker; it never returns into the caller's code
            status = 1
            try:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                worker = Worker(
                    self.app,
                    self.options,
                    self.listener,
                    self.context,
                    multiprocess=True,
                    on_exit=self.on_worker_exit,
                    balance=(self.loads, slot),
                )
                worker.run()
                status = 0
            except BaseException:
                log.exception("worker %d failed", os.getpid())
            finally:
                for handler in logging.getLogger("cfsslpy").handlers:
                    with contextlib.suppress(Exception):
                        handler.flush()
                os._exit(status)
        self.workers[pid] = (slot, time.monotonic())
        log.info("worker %d started", pid)

    def _signal_all(self, signum: int) -> None:
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _reap(self, mask: Iterable[int | signal.Signals], *, restart: bool) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            entry = self.workers.pop(pid, None)
            if entry is None:
                continue
            slot, started = entry
            self.loads[slot] = _NO_WORKER
            how = (
                f"killed by signal {-os.waitstatus_to_exitcode(status)}"
                if os.WIFSIGNALED(status)
                else f"exit status {os.waitstatus_to_exitcode(status)}"
            )
            if not restart:
                log.debug("worker %d stopped (%s)", pid, how)
                continue
            log.warning("worker %d died (%s); starting a new one", pid, how)
            # A worker that dies right after starting would make a fork loop: back off, up to 10 s.
            self._restart_delay = min(10.0, max(0.5, self._restart_delay * 2)) if time.monotonic() - started < 1.0 else 0.0
            if self._restart_delay:
                time.sleep(self._restart_delay)
            self._spawn(mask, slot)
