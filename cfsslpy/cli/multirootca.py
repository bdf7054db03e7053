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
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cfsslpy.cli.command import Command, Options
from cfsslpy.cli.common import NO_ARGUMENTS, no_more_args
from cfsslpy.cli.context import IO
from cfsslpy.cli.flags import FLAGS
from cfsslpy.cli.goflag import Flag
from cfsslpy.errors import PlainError, UsageError

if TYPE_CHECKING:
    import ssl

    from cfsslpy.api.server import ServerOptions, TLSOptions
    from cfsslpy.multiroot import Authority

log = logging.getLogger("cfsslpy.cli")

DEFAULT_ADDRESS = ":8888"


# multirootca's own flag set: cfssl's five (-a, -roots, -l, -tls-cert, -tls-key) and -loglevel, then serve's
# mutual-TLS flags and -workers. -a and -l are read as ``address`` and ``label``.
FLAGSET: dict[str, Flag] = {
    flag.name: flag
    for flag in (
        Flag("a", DEFAULT_ADDRESS, "listening address (host:port; :port listens on every interface)", group="server", attr="address"),
        Flag("roots", "", "configuration file specifying root keys", group="server"),
        Flag("l", "", "the default label: an authsign or info request without a label uses this root", group="server", attr="label"),
        Flag("tls-cert", "", "server certificate (HTTPS)", group="server"),
        Flag("tls-key", "", "server private key (HTTPS)", group="server"),
        FLAGS["loglevel"],
        Flag("mutual-tls-ca", "", "require client certificates issued by the CAs in this file", group="server"),
        Flag("mutual-tls-cn", "", "regular expression the client certificate's CN must match (403 otherwise)", group="server"),
        Flag("min-tls-version", "", "minimum TLS version: 1.2 (default) or 1.3", group="server"),
        Flag("workers", 1, "worker processes (0 = one per core)", group="server"),
    )
}


class MultirootOptions(Options, flagset=FLAGSET):
    """The flags ``multirootca`` reads, typed."""

    address: str
    roots: str
    label: str
    tls_cert: str
    tls_key: str
    loglevel: int  # applied by the runner, as for every command
    mutual_tls_ca: str
    mutual_tls_cn: str
    min_tls_version: str
    workers: int


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
    from cfsslpy.api.server import runtime_dir, tls_context

    context = tls_context(plan.tls) if plan.tls is not None else None  # 2. TLS files, then every root
    with runtime_dir(plan.workers, "cfsslpy-multirootca-") as runtime:
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
    from cfsslpy.api.server import bind, serve

    metrics_dir = os.path.join(runtime, "metrics") if runtime else None
    if metrics_dir:
        os.mkdir(metrics_dir, 0o700)
    app = create_multiroot_app(authority, metrics_dir=metrics_dir)
    options = _options(authority, plan, app.max_body)
    mode = "with mutual TLS " if plan.tls is not None and plan.tls.client_ca else ""

    def ready(where: str) -> None:
        log.info("Now listening %son %s (%d worker process%s)", mode, where, plan.workers, "" if plan.workers == 1 else "es")

    def reload(in_parent: bool) -> None:
        if in_parent:  # the parent of pre-forked workers serves no request: the old roots' databases close at once
            authority.reload(grace=0)
        else:
            authority.reload()

    try:
        return serve(
            app, options, bind(plan.host, plan.port), context=context, on_ready=ready, on_worker_exit=app.metrics.flush, on_hangup=reload
        )
    finally:
        with contextlib.suppress(Exception):
            app.metrics.close()


def _run(opts: MultirootOptions, args: list[str], io: IO) -> int:
    no_more_args(args, NO_ARGUMENTS + ".")  # the roots file is -roots
    return run(opts, io)


COMMAND = Command(
    name="multirootca",
    summary=SUMMARY,
    usage=USAGE,
    options=MultirootOptions,
    example=EXAMPLE,
    run=_run,
    description=DESCRIPTION,
)


__all__ = [
    "COMMAND",
    "DEFAULT_ADDRESS",
    "DESCRIPTION",
    "EXAMPLE",
    "FLAGSET",
    "SUMMARY",
    "USAGE",
    "MultirootOptions",
    "run",
    "split_address",
]
