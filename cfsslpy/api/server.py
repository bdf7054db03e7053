"""The production HTTP(S) server under ``serve`` and ``ocspserve``: asyncio, httptools, pre-forked workers.

**Why this server.** cfsslpy owns its serving layer (this module and :mod:`cfsslpy.api.connection`) and
builds it only on public interfaces: asyncio's ``Protocol``, ``loop.connect_accepted_socket`` and
``ssl.SSLContext``, and httptools's ``HttpRequestParser`` (llhttp, the parser of Node.js) for HTTP syntax.
The earlier server extended waitress's private channel and task classes, and one malformed packet could end
a worker through them. Measured with ``bench/server_choice.py`` (a trivial app, one process, ``wrk -t1
-c8``): see bench/README.md for the table behind this choice.

What it does:

* One **event loop per worker** accepts connections itself (so it can shed idle ones and share the load with
  sibling workers), reads and buffers whole requests, and answers them in order.
* **Where a request runs**: ``ServerOptions.direct`` may answer it on the loop before any WSGI work (stored
  OCSP responses); ``inline(method, path)`` names cheap, never-blocking requests run on the loop thread
  (signing with a local key, health, metrics: no thread hand-off, which costs a quarter to a third of the
  CPU time of a sign); everything else runs in the bounded pool that ``route(method, path)`` names
  (:mod:`cfsslpy.api.pools`), one pool per kind of blocking work, so blocking work cannot starve signing.
* **Idle connections are shed before a new one is refused**: at ``connection_limit`` open connections (and
  when the process runs out of file descriptors) the connection idle the longest is closed to make room. The
  soft ``RLIMIT_NOFILE`` is raised to the hard limit, as Go does.
* **TLS**: ``ssl_handshake_timeout`` is ``header_timeout``; a failed handshake is logged in one WARNING line.
  Minimum version TLS 1.2 (``-min-tls-version 1.3`` raises it); client certificates are required and
  verified against ``-mutual-tls-ca``; ``-mutual-tls-cn REGEX`` answers 403 ``Invalid CN`` to a client whose
  leaf CN does not match (regex search), as cfssl does.
* **Pre-fork**: the parent binds the socket, forks the workers, restarts a worker that dies, and forwards
  SIGTERM/SIGINT; a worker stops when its parent dies. Workers share connections evenly (a shared listening
  socket alone gave splits like 48/16), through each worker's connection count in shared memory.
* **Graceful shutdown** (SIGTERM or SIGINT): stop accepting, close idle connections, let requests in progress
  finish (answering them with ``Connection: close``) for at most ``graceful_timeout``, exit 0.
* **Failures never stop a worker**: see :mod:`cfsslpy.api.connection`; the event loop's own error reports
  are logged in one line, never with a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import mmap
import os
import re
import resource
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cfsslpy.api.connection import (
    CLIENT_CN,
    Connection,
    Limits,
    Request,
    Response,
    WSGIApp,
    call_wsgi,
    envelope,
    environ_for,
    internal_error,
)
from cfsslpy.api.pools import Busy, Pools, PoolSpec
from cfsslpy.api.state import MAX_BODY
from cfsslpy.errors import LOG_FIELD_LIMIT, PlainError, UsageError
from cfsslpy.errors import logfmt as _logfmt

__all__ = ["CLIENT_CN", "PoolSpec", "ServerOptions", "TLSOptions", "Worker", "bind", "serve", "tls_context", "worker_count"]

log = logging.getLogger(__name__)

_TLS_VERSIONS = {"": ssl.TLSVersion.TLSv1_2, "1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
# A worker slot without a live worker, in the shared connection counts.
_NO_WORKER = 2**31 - 1
# How often a worker that declined new connections (Worker._declined) looks again.
_BALANCE_TICK = 0.01
# The worker checks deadlines and its stop flag at least this often.
_TICK = 0.25
# Connections accepted per wake-up of the listening socket (then other work gets its turn).
_ACCEPT_BATCH = 32
# File descriptors kept free for everything else a worker opens (database, key files, outbound dials).
_FD_RESERVE = 64
# accept() errors that mean "no file descriptor or memory now": shed an idle connection or wait a moment
_RESOURCE_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


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
    health, metrics): those run on the worker's event-loop thread instead of being handed to a pool thread,
    which saves the GIL hand-offs between threads (a quarter to a third of the CPU time of a sign request).
    Anything that may wait (a remote signer, key generation, a database, an outbound dial) must run in a
    pool, or it would stall every connection of the worker meanwhile: ``route(method, path)`` names the pool
    (``default``, ``threads`` threads, when it returns a name not in ``pools``). ``direct(request, remote)``
    may answer a request on the loop before any of that (None: not mine).
    """

    workers: int = 1
    threads: int = 4
    tls: TLSOptions | None = None
    max_body: int = MAX_BODY
    max_header: int = 64 * 1024
    header_timeout: float = 10.0
    request_timeout: float = 60.0
    idle_timeout: float = 30.0
    connection_limit: int = 4096
    graceful_timeout: float = 10.0
    backlog: int = 1024
    inline: Callable[[str, str], bool] | None = None
    route: Callable[[str, str], str] | None = None
    pools: dict[str, PoolSpec] = field(default_factory=dict)
    direct: Callable[[Request, str], Response | None] | None = None


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
# One worker: an event loop that accepts, sheds, balances, enforces deadlines and drains


def raise_fd_limit() -> int:
    """Raise the soft limit on open files to the hard limit (as Go's runtime does); returns the soft limit."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        return int(soft) if soft != resource.RLIM_INFINITY else 1 << 20
    except (ValueError, OSError):
        return 1024


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
        if options.tls and options.tls.client_cn:
            app = require_client_cn(app, compile_cn_pattern(options.tls.client_cn))
        self.app = app
        self.options = options
        self.listener = listener
        self.context = context
        self.multiprocess = multiprocess
        self.on_exit = on_exit
        self.balance = balance
        self.scheme = "https" if context is not None else "http"
        self.limits = Limits(options.max_header, options.max_body, options.header_timeout, options.request_timeout, options.idle_timeout)
        self.limit = max(8, min(options.connection_limit, raise_fd_limit() - _FD_RESERVE))
        self.pools = Pools({"default": PoolSpec(options.threads), **options.pools})
        self.connections: set[Connection] = set()
        self.handshakes: dict[asyncio.Task[None], tuple[float, socket.socket]] = {}
        self._stop = threading.Event()
        self._parent = os.getppid() if multiprocess else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._accepting = False
        self._stopping = False
        self._resource_warned = 0.0

    # --- control -----------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the worker to shut down gracefully (thread-safe; from a signal handler too)."""
        self._stop.set()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended meanwhile
                loop.call_soon_threadsafe(wake.set)

    def run(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve until stopped; ``on_ready`` runs once the signal handlers are in place."""
        try:
            asyncio.run(self._main(on_ready))
        finally:
            self.pools.shutdown()
            if self.on_exit is not None:
                try:
                    self.on_exit()
                except Exception:
                    log.exception("worker %d: exit hook failed", os.getpid())

    async def _main(self, on_ready: Callable[[], None] | None) -> None:
        loop = asyncio.get_running_loop()
        self._loop, self._wake = loop, asyncio.Event()
        loop.set_exception_handler(_loop_error)
        self.listener.setblocking(False)
        self._resume_accept()
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self.stop)
        if self._stop.is_set():
            self._wake.set()
        if on_ready is not None:
            on_ready()
        while not self._stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), _TICK)
            self._sweep()
            if self._parent is not None and os.getppid() != self._parent:
                log.warning("worker %d: the server process is gone; shutting down", os.getpid())
                break
        await self._drain()

    # --- connection.Dispatch -----------------------------------------------------------------------------

    def opened(self, connection: Connection) -> None:
        self.connections.add(connection)

    def closed(self, connection: Connection) -> None:
        self.connections.discard(connection)
        if not self._accepting and not self._stopping:
            self._resume_accept()

    def handle(self, connection: Connection, request: Request) -> Response | None:
        options = self.options
        if options.direct is not None:
            response = options.direct(request, connection.remote[0])
            if response is not None:
                return response
        method, path = request.method, request.path
        if options.inline is not None and options.inline(method, path):
            return self._run(connection, request)
        pool = self.pools.get(options.route(method, path) if options.route is not None else "default")
        loop = self._loop
        assert loop is not None

        def answer(response: Response) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has ended (shutdown timed out)
                loop.call_soon_threadsafe(connection.finish, request, response)

        def late(waited: float) -> None:
            answer(_unavailable(f"waited {waited:.1f}s for a {pool.name} thread"))

        try:
            pool.submit(lambda: answer(self._run(connection, request)), late)
        except Busy:
            return _unavailable(f"every {pool.name} thread busy and its queue full")
        return None

    def _run(self, connection: Connection, request: Request) -> Response:
        try:
            return call_wsgi(self.app, environ_for(connection, request, self.multiprocess))
        except Exception as exc:
            return internal_error(request, connection.remote[0], exc)

    # --- accepting ---------------------------------------------------------------------------------------

    def _resume_accept(self) -> None:
        if self._accepting or self._stopping or self._loop is None:
            return
        self._loop.add_reader(self.listener.fileno(), self._on_acceptable)
        self._accepting = True

    def _pause_accept(self, retry: float | None) -> None:
        if self._accepting and self._loop is not None:
            self._loop.remove_reader(self.listener.fileno())
            self._accepting = False
        if retry is not None and self._loop is not None:
            self._loop.call_later(retry, self._resume_accept)

    def _open(self) -> int:
        return len(self.connections) + len(self.handshakes)

    def _declined(self) -> bool:
        """Leave new connections to a sibling worker that has clearly fewer (two fewer, or a quarter fewer with
        many). A worker that declines looks again after ``_BALANCE_TICK``: its siblings' counts change
        without waking it, and a new connection must never wait long when every worker has just declined."""
        if self.balance is None:
            return False
        loads, index = self.balance
        mine = self._open()
        loads[index] = mine
        least = min(loads)
        return mine > least + 1 + least // 4

    def _on_acceptable(self) -> None:
        for _ in range(_ACCEPT_BATCH):
            if self._declined():
                self._pause_accept(_BALANCE_TICK)
                return
            if self._open() >= self.limit and not self._shed():
                self._pause_accept(None)  # resumed when a connection closes
                return
            try:
                sock, address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _RESOURCE_ERRORS:
                    now = time.monotonic()
                    if now - self._resource_warned > 10:
                        self._resource_warned = now
                        log.warning("cannot accept a connection: %s; closing idle connections", _reason(exc))
                    if not self._shed():
                        self._pause_accept(0.1)
                    return
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EPERM):
                    continue
                log.error("accept failed: %s", _reason(exc))
                self._pause_accept(0.1)
                return
            self._start(sock, address)

    def _start(self, sock: socket.socket, address: Any) -> None:
        assert self._loop is not None
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = self._loop.create_task(self._connect(sock, address))
        self.handshakes[task] = (time.monotonic(), sock)
        task.add_done_callback(self._handshake_done)

    async def _connect(self, sock: socket.socket, address: Any) -> None:
        assert self._loop is not None
        try:
            await self._loop.connect_accepted_socket(
                lambda: Connection(self, self.limits, self.scheme),
                sock,
                ssl=self.context,
                ssl_handshake_timeout=self.options.header_timeout if self.context is not None else None,
            )
        except asyncio.CancelledError:
            sock.close()
        except Exception as exc:  # a failed or timed-out TLS handshake, a connection reset meanwhile
            sock.close()
            if self.context is not None:
                host, port = (address[0], address[1]) if isinstance(address, tuple) else ("-", 0)
                log.warning("TLS handshake error from %s:%s: %s", _logfmt(str(host)), port, _logfmt(_reason(exc) or type(exc).__name__))

    def _handshake_done(self, task: asyncio.Task[None]) -> None:
        self.handshakes.pop(task, None)
        if not self._accepting and not self._stopping:
            self._resume_accept()

    def _shed(self) -> bool:
        """Close the connection idle the longest (a lingering or idle keep-alive one, or one still in its TLS
        handshake, oldest first) to make room for a new one; False when every connection is busy."""
        victim: Connection | None = None
        for connection in self.connections:
            if (connection.idle or connection.lingering_until) and (victim is None or connection.last_active < victim.last_active):
                victim = connection
        if victim is not None:
            self.connections.discard(victim)
            victim.closing = True
            if victim.transport is not None:
                victim.transport.abort()
            return True
        if self.handshakes:
            task = min(self.handshakes, key=lambda t: self.handshakes[t][0])
            self.handshakes.pop(task, None)
            task.cancel()
            return True
        return False

    # --- deadlines and shutdown --------------------------------------------------------------------------

    def _sweep(self) -> None:
        now = time.monotonic()
        for connection in list(self.connections):
            why = connection.overdue(now)
            if why is not None:
                connection.close(why)
        if self.balance is not None:
            self._declined()  # keep this worker's published count current while it is quiet

    async def _drain(self) -> None:
        self._stopping = True
        self._pause_accept(None)
        self.listener.close()  # new connections are refused once every process has closed its copy
        for task in list(self.handshakes):
            task.cancel()
        for connection in list(self.connections):
            connection.drain()
        busy = [c for c in self.connections if not c.closing]
        log.log(
            logging.DEBUG if self._parent is not None else logging.INFO,
            "shutting down: no longer accepting connections; %d request(s) in progress (waiting up to %gs)",
            len(busy),
            self.options.graceful_timeout,
        )
        deadline = time.monotonic() + self.options.graceful_timeout
        while any(not c.closing or c.busy for c in self.connections) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            self._sweep()
        left = [c for c in self.connections if not c.closing or c.busy]
        if left:
            log.warning("%d connection(s) still busy after %gs; closing them", len(left), self.options.graceful_timeout)
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.abort()
        await asyncio.sleep(0)  # let the transports report their closing


def _unavailable(why: str) -> Response:
    return Response(
        "503 Service Unavailable",
        [("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff"), ("Retry-After", "1")],
        envelope(503, "server busy, retry later"),
        log_line=(logging.WARNING, why),
    )


def _loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The event loop's own error reports, in one line each (never a traceback)."""
    exc = context.get("exception")
    message = str(context.get("message") or "event loop error")
    detail = f": {type(exc).__name__}: {exc}" if exc is not None else ""
    log.error("%s", _logfmt(message + detail))


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
