"""``multirootca``: an authenticated signer for several CA keys (cfssl's ``cmd/multirootca``), on the serving
stack of ``serve`` (:mod:`cfsslpy.api.server`).

Flags (cfssl's, then serve's): ``-a`` listening address (default ``:8888``, every interface), ``-roots`` the
roots file (required), ``-l`` the default label (an empty ``label`` in a request means it; it must name a root),
``-tls-cert``/``-tls-key`` (HTTPS), ``-loglevel`` (0 debug .. 5 fatal), ``-mutual-tls-ca``/``-mutual-tls-cn``
(client certificates required, CN matched against a regex), ``-min-tls-version``, ``-workers`` (pre-forked
processes, 0 = one per core).

Every root of the roots file is loaded before the socket is bound: one unusable root stops the start-up with
an error naming it, and nothing is served. SIGHUP re-reads the roots file in every worker process (and in the
parent, which starts replacement workers with it); a bad file leaves the roots in force and logs the error.
SIGTERM or SIGINT stop the server gracefully.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cfsslpy.cli.context import IO
from cfsslpy.errors import PlainError, UsageError

if TYPE_CHECKING:
    import ssl

    from cfsslpy.api.multiroot import MultirootApp
    from cfsslpy.api.server import ServerOptions, Supervisor, TLSOptions
    from cfsslpy.multiroot import Authority

log = logging.getLogger("cfsslpy.cli")

DEFAULT_ADDRESS = ":8888"


@dataclass(frozen=True)
class MultirootOptions:
    """The flags ``multirootca`` reads, typed (cfssl's names in the comments)."""

    address: str = DEFAULT_ADDRESS  # -a
    roots: str = ""  # -roots
    label: str = ""  # -l
    tls_cert: str = ""  # -tls-cert
    tls_key: str = ""  # -tls-key
    loglevel: int = 1  # -loglevel (cfssl's default, info); applied by the CLI's logging set-up
    mutual_tls_ca: str = ""  # -mutual-tls-ca
    mutual_tls_cn: str = ""  # -mutual-tls-cn
    min_tls_version: str = ""  # -min-tls-version
    workers: int = 1  # -workers


# For the command's registration: (flag, MultirootOptions field, help). cfssl's five, then serve's.
FLAGS: tuple[tuple[str, str, str], ...] = (
    ("a", "address", "listening address (host:port; :port listens on every interface)"),
    ("roots", "roots", "configuration file specifying root keys"),
    ("l", "label", "the default label: an authsign or info request without a label uses this root"),
    ("tls-cert", "tls_cert", "server certificate (HTTPS)"),
    ("tls-key", "tls_key", "server private key (HTTPS)"),
    ("loglevel", "loglevel", "log level (0 = DEBUG, 5 = FATAL)"),
    ("mutual-tls-ca", "mutual_tls_ca", "require client certificates issued by the CAs in this file"),
    ("mutual-tls-cn", "mutual_tls_cn", "regular expression the client certificate's CN must match (403 otherwise)"),
    ("min-tls-version", "min_tls_version", "minimum TLS version: 1.2 (default) or 1.3"),
    ("workers", "workers", "worker processes (0 = one per core)"),
)
SUMMARY = "an authenticated signer for several CA keys (cfssl's multirootca)"
USAGE = (
    "cfsslpy multirootca -roots roots.conf [-a :8888] [-l label] [-workers n]\n"
    "                    [-tls-cert cert -tls-key key [-min-tls-version 1.2|1.3] [-mutual-tls-ca ca [-mutual-tls-cn regex]]]"
)
EXAMPLE = "cfsslpy multirootca -a 127.0.0.1:8888 -roots roots.conf -l primary -workers 2"
DESCRIPTION = (
    "Serve POST /api/v1/cfssl/authsign for the roots of the roots file (cfssl's ini format: a [label] section per\n"
    "root with private = file://key.pem or a pkcs11: URI, certificate, config whose profiles all need an auth_key,\n"
    "and optional nets (CIDR allow-list of peer addresses) and dbconfig (a certdb per root); paths relative to\n"
    "the roots file). The request's label picks the root, an empty one means -l. Also /api/v1/cfssl/info by\n"
    "label, /api/v1/cfssl/health, and /metrics for loopback clients. Every root is loaded before listening:\n"
    "an unusable one stops the start-up, naming it. SIGHUP re-reads the roots file (a bad one changes nothing);\n"
    "SIGTERM or SIGINT stop gracefully."
)


@dataclass(frozen=True)
class _Plan:
    """What the flags decide before anything is read."""

    host: str
    port: int
    workers: int
    tls: TLSOptions | None


def run(opts: MultirootOptions, io: IO) -> int:
    """Serve until SIGTERM/SIGINT (exit status 0). Errors raised before serving: :class:`UsageError` for flags,
    :class:`PlainError` (a :class:`~cfsslpy.multiroot.RootsError` naming the file, line, root and key) for
    the roots."""
    plan = _plan(opts)  # 1. flags, nothing read
    from cfsslpy.api.server import tls_context

    context = tls_context(plan.tls) if plan.tls is not None else None  # 2. TLS files, then every root
    with _runtime_dir(plan.workers) as runtime:
        authority = _authority(opts, runtime)
        try:
            return _serve(authority, plan, context, runtime)  # 3. bind and serve
        finally:
            authority.close()


def split_address(address: str) -> tuple[str, int]:
    """Go's ``host:port`` (``:8888`` every interface, ``[::1]:8888``); a bad one is a usage error."""
    host, sep, port_text = address.rpartition(":")
    if not sep:
        raise UsageError(f"-a {address!r}: missing port in address (host:port, or :port for every interface)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise UsageError(f"-a {address!r}: too many colons in address (write an IPv6 address as [addr]:port)")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise UsageError(f"-a {address!r}: invalid port {port_text!r}")
    return host, int(port_text)


def _plan(opts: MultirootOptions) -> _Plan:
    from cfsslpy.api.server import TLSOptions, worker_count

    if not opts.roots:
        raise PlainError("no root file specified")  # cfssl's log.Fatal text
    host, port = split_address(opts.address)
    if bool(opts.tls_cert) != bool(opts.tls_key):
        raise UsageError("-tls-cert and -tls-key go together")
    tls = None
    if opts.tls_cert:
        if opts.mutual_tls_cn and not opts.mutual_tls_ca:
            raise UsageError("-mutual-tls-cn needs -mutual-tls-ca")
        tls = TLSOptions(opts.tls_cert, opts.tls_key, opts.mutual_tls_ca, opts.mutual_tls_cn, opts.min_tls_version)
    elif opts.mutual_tls_ca or opts.mutual_tls_cn or opts.min_tls_version:
        raise UsageError("-mutual-tls-ca, -mutual-tls-cn and -min-tls-version need HTTPS (-tls-cert and -tls-key)")
    return _Plan(host, port, worker_count(opts.workers), tls)


def _authority(opts: MultirootOptions, runtime: str | None) -> Authority:
    from cfsslpy.multiroot import Authority, file_guards, memory_guards

    guards = file_guards(runtime) if runtime else memory_guards
    authority = Authority(opts.roots, opts.label, guards=guards)
    labels = ", ".join(authority.roots.roots)
    log.info("roots %s from %s%s", labels, opts.roots, f" (default label {opts.label})" if opts.label else "")
    return authority


def _options(authority: Authority, plan: _Plan, max_body: int) -> ServerOptions:
    """Where each request runs: info, health and metrics on the event loop; authsign on the loop too while no
    root can wait (file keys, no database, no replay guard), else in the ``sign`` pool (a token, a database)."""
    from cfsslpy.api.endpoints import API_PREFIX
    from cfsslpy.api.multiroot import METRICS_PATH
    from cfsslpy.api.server import PoolSpec, ServerOptions

    authsign = API_PREFIX + "authsign"
    cheap = frozenset({API_PREFIX + "info", API_PREFIX + "health", METRICS_PATH})

    def inline(method: str, path: str) -> bool:
        return path in cheap or (path == authsign and authority.roots.never_wait)  # the roots in force now

    return ServerOptions(
        workers=plan.workers,
        tls=plan.tls,
        max_body=max_body,
        inline=inline,
        route=lambda method, path: "sign" if path == authsign else "default",
        pools={"sign": PoolSpec(threads=4, queue=64, queue_timeout=10.0)},
    )


def _serve(authority: Authority, plan: _Plan, context: ssl.SSLContext | None, runtime: str | None) -> int:
    from cfsslpy.api.multiroot import create_multiroot_app
    from cfsslpy.api.server import Supervisor, Worker, bind, listen_url

    metrics_dir = os.path.join(runtime, "metrics") if runtime else None
    if metrics_dir:
        os.mkdir(metrics_dir, 0o700)
    app = create_multiroot_app(authority, metrics_dir=metrics_dir)
    options = _options(authority, plan, app.max_body)
    listener = bind(plan.host, plan.port)
    with contextlib.closing(listener):
        url = listen_url(listener, context is not None)
        mode = "with mutual TLS " if plan.tls is not None and plan.tls.client_ca else ""

        def ready(where: str) -> None:
            log.info("Now listening %son %s (%d worker process%s)", mode, where, plan.workers, "" if plan.workers == 1 else "es")

        # the supervisor exists before SIGHUP is handled: a reload in the parent never runs in a thread
        sup = Supervisor(app, options, listener, context, plan.workers, app.metrics.flush) if plan.workers > 1 else None
        previous = signal.signal(signal.SIGHUP, _reload_handler(authority, sup))
        try:
            if sup is None:
                Worker(app, options, listener, context, multiprocess=False, on_exit=app.metrics.flush).run(lambda: ready(url))
                log.info("stopped")
                return 0
            return sup.run(url, ready)
        finally:
            signal.signal(signal.SIGHUP, previous)
            _close_app(app)


def _close_app(app: MultirootApp) -> None:
    with contextlib.suppress(Exception):
        app.metrics.close()


def _reload_handler(authority: Authority, sup: Supervisor | None) -> Callable[[int, Any], None]:
    """SIGHUP: the parent of pre-forked workers reloads its own copy (replacement workers start from it), then
    passes the signal to every worker; a worker (or a single-process server) reloads in a thread, so its event
    loop goes on answering with the roots in force until the new ones are swapped in."""
    parent = os.getpid()

    def handler(signum: int, frame: Any) -> None:
        if sup is not None and os.getpid() == parent:
            log.info("SIGHUP: reloading the roots, then in %d worker(s)", len(sup.workers))
            authority.reload(grace=0)  # this process serves no request
            for pid in list(sup.workers):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGHUP)
            return
        threading.Thread(target=authority.reload, name="cfsslpy-reload", daemon=True).start()

    return handler


@contextlib.contextmanager
def _runtime_dir(workers: int) -> Iterator[str | None]:
    """A private directory (0700) the worker processes share (metrics, replay guards), removed afterwards."""
    if workers == 1:
        yield None
        return
    path = tempfile.mkdtemp(prefix="cfsslpy-multirootca-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


__all__ = ["DEFAULT_ADDRESS", "DESCRIPTION", "EXAMPLE", "FLAGS", "SUMMARY", "USAGE", "MultirootOptions", "run", "split_address"]
