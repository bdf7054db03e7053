"""One worker process of :mod:`cfsslpy.api.server`: an asyncio event loop that accepts connections itself,
sheds idle ones, shares the load with its siblings, runs each request where it belongs (on the loop, or in a
bounded pool of :mod:`cfsslpy.api.pools`), enforces the deadlines and drains gracefully on stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import resource
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cfsslpy.api.connection import Connection, Limits, Request, Response, internal_error
from cfsslpy.api.pools import Busy, Pools, PoolSpec
from cfsslpy.api.state import MAX_BODY
from cfsslpy.api.tls import TLSOptions, compile_cn_pattern, reason, require_client_cn
from cfsslpy.api.wire import ERROR_HEADERS, error_envelope
from cfsslpy.api.wsgi import WSGIApp, call_wsgi, environ_for
from cfsslpy.errors import logfmt

log = logging.getLogger("cfsslpy.api.server")

# How often a worker that declined new connections (Worker._declined) looks again.
_BALANCE_TICK = 0.01
# The worker checks deadlines and its stop flag at least this often.
TICK = 0.25
# Connections accepted per wake-up of the listening socket (then other work gets its turn).
_ACCEPT_BATCH = 32
# File descriptors kept free for everything else a worker opens (database, key files, outbound dials).
_FD_RESERVE = 64
# accept() errors that mean "no file descriptor or memory now": shed an idle connection or wait a moment
_RESOURCE_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


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
        loop.set_exception_handler(loop_error)
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
                await asyncio.wait_for(self._wake.wait(), TICK)
            try:
                self._sweep()
            except Exception as exc:  # a bug in the sweep must not end the worker: one line, next tick again
                loop_error(asyncio.get_running_loop(), {"message": "deadline sweep failed", "exception": exc})
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
            answer(unavailable(f"waited {waited:.1f}s for a {pool.name} thread"))

        try:
            pool.submit(lambda: answer(self._run(connection, request)), late)
        except Busy:
            return unavailable(f"every {pool.name} thread busy and its queue full")
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
                        log.warning("cannot accept a connection: %s; closing idle connections", reason(exc))
                    if not self._shed():
                        self._pause_accept(0.1)
                    return
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EPERM):
                    continue
                log.error("accept failed: %s", reason(exc))
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
                log.warning("TLS handshake error from %s:%s: %s", logfmt(str(host)), port, logfmt(reason(exc) or type(exc).__name__))

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


def unavailable(why: str) -> Response:
    return Response(
        "503 Service Unavailable",
        [*ERROR_HEADERS, ("Retry-After", "1")],
        error_envelope(503, "server busy, retry later"),
        log_line=(logging.WARNING, why),
    )


def loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The event loop's own error reports, in one line each (never a traceback)."""
    exc = context.get("exception")
    message = str(context.get("message") or "event loop error")
    detail = f": {type(exc).__name__}: {exc}" if exc is not None else ""
    log.error("%s", logfmt(message + detail))
