"""The production HTTP(S) server under ``serve`` and ``ocspserve``: asyncio, httptools, pre-forked workers.

**Why this server.** cfsslpy owns its serving layer (this module: binding, the pre-fork supervisor and
:func:`serve`; :mod:`cfsslpy.api.worker`: one worker's event loop; :mod:`cfsslpy.api.connection`: one HTTP
connection; :mod:`cfsslpy.api.wsgi`: the application side; :mod:`cfsslpy.api.tls`; :mod:`cfsslpy.api.pools`) and
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

import contextlib
import logging
import mmap
import os
import shutil
import signal
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from cfsslpy.api.pools import PoolSpec
from cfsslpy.api.tls import TLSOptions, compile_cn_pattern, reason, require_client_cn, tls_context
from cfsslpy.api.worker import TICK, ServerOptions, Worker, loop_error
from cfsslpy.api.wsgi import CLIENT_CN, WSGIApp
from cfsslpy.errors import PlainError, UsageError

__all__ = [
    "CLIENT_CN",
    "PoolSpec",
    "ServerOptions",
    "TLSOptions",
    "Worker",
    "bind",
    "listen_url",
    "loop_error",
    "require_client_cn",
    "runtime_dir",
    "serve",
    "tls_context",
    "worker_count",
]

log = logging.getLogger(__name__)

# A worker slot without a live worker, in the shared connection counts.
_NO_WORKER = 2**31 - 1


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
        raise PlainError(f"listen tcp {where}: bind: {reason(exc)}") from None
    sock.set_inheritable(False)
    return sock


@contextlib.contextmanager
def runtime_dir(workers: int, prefix: str) -> Iterator[str | None]:
    """A private directory (0700) that the worker processes of one run share (metrics, replay guards, ...),
    removed afterwards; None for a single process, which keeps such state in memory."""
    if workers == 1:
        yield None
        return
    path = tempfile.mkdtemp(prefix=prefix)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def listen_url(sock: socket.socket, tls: bool) -> str:
    host, port = sock.getsockname()[:2]
    return f"{'https' if tls else 'http'}://{f'[{host}]' if ':' in host else host}:{port}"


def serve(
    app: WSGIApp,
    options: ServerOptions,
    listener: socket.socket,
    *,
    context: ssl.SSLContext | None = None,
    on_ready: Callable[[str], None] | None = None,
    on_worker_exit: Callable[[], None] | None = None,
    on_hangup: Callable[[bool], None] | None = None,
) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit status (0 after a graceful shutdown).

    ``listener`` is bound and listening (:func:`bind`); it is closed on return. ``context`` is the TLS
    context for ``options.tls`` (built here when not given). ``on_ready(url)`` runs once the workers are
    started; ``on_worker_exit()`` runs in each worker after it has drained (e.g. to flush metrics). With
    ``options.workers`` above 1 the workers are forked from this process, which must not be running other
    threads.

    ``on_hangup(in_parent)`` is what SIGHUP does (e.g. re-read a configuration). The parent of pre-forked
    workers calls it with True in its main thread (it serves no request, and the workers it starts later
    inherit the result), then passes the signal on to every worker; a worker, or a single-process server,
    calls it with False in a thread of its own, so that its event loop goes on answering meanwhile.
    """
    with contextlib.closing(listener):
        if context is None and options.tls is not None:
            context = tls_context(options.tls)
        if options.tls and options.tls.client_cn:
            compile_cn_pattern(options.tls.client_cn)
        workers = worker_count(options.workers)
        url = listen_url(listener, context is not None)
        supervisor = Supervisor(app, options, listener, context, workers, on_worker_exit) if workers > 1 else None
        with _hangup(on_hangup, supervisor):
            if supervisor is not None:
                return supervisor.run(url, on_ready)
            worker = Worker(app, options, listener, context, multiprocess=False, on_exit=on_worker_exit)
            worker.run(None if on_ready is None else lambda: on_ready(url))
            log.info("stopped")
            return 0


@contextlib.contextmanager
def _hangup(on_hangup: Callable[[bool], None] | None, supervisor: Supervisor | None) -> Iterator[None]:
    """SIGHUP runs ``on_hangup`` (see :func:`serve`) while serving; the previous handler is restored after."""
    if on_hangup is None:
        yield
        return
    parent = os.getpid()
    hangup = on_hangup

    def handler(signum: int, frame: Any) -> None:
        if supervisor is not None and os.getpid() == parent:
            log.info("SIGHUP: reloading, then in %d worker(s)", len(supervisor.workers))
            hangup(True)
            for pid in list(supervisor.workers):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGHUP)
            return
        threading.Thread(target=hangup, args=(False,), name="cfsslpy-hangup", daemon=True).start()

    previous = signal.signal(signal.SIGHUP, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)


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
                info = signal.sigtimedwait(signals, TICK * 4)
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
