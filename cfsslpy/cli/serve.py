"""``serve``: the cfssl HTTP API (reference §2) on a production server (:mod:`cfsslpy.api.server`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cfsslpy.cli.command import Command
from cfsslpy.cli.common import (
    NO_ARGUMENTS,
    RemoteOptions,
    check_remote_flags,
    config_file,
    ignored,
    load_config,
    needs_ca,
    no_more_args,
    open_certdb,
    require_ca,
    signer_for,
)
from cfsslpy.cli.context import IO
from cfsslpy.config import Config
from cfsslpy.errors import CfsslError, PlainError, UsageError
from cfsslpy.signer import LocalSigner, Recorder, Signer

if TYPE_CHECKING:
    import ssl

    from cryptography import x509

    from cfsslpy.api.guard import HostPolicy
    from cfsslpy.api.pools import PoolSpec
    from cfsslpy.api.server import TLSOptions
    from cfsslpy.api.state import ApiState
    from cfsslpy.auth import TokenStore
    from cfsslpy.bundler import Bundler
    from cfsslpy.certdb import CertDB
    from cfsslpy.certinfo import FetchPolicy
    from cfsslpy.keys import PrivateKey
    from cfsslpy.ocsp import OCSPSigner

log = logging.getLogger("cfsslpy.cli")


class ServeOptions(RemoteOptions):
    address: str
    port: int
    workers: int
    ca: str
    ca_key: str
    config: str
    datadir: str
    tls_cert: str
    tls_key: str
    mutual_tls_ca: str
    mutual_tls_cn: str
    min_tls_version: str
    db_config: str
    responder: str
    responder_key: str
    key: str
    interval: str
    ca_bundle: str
    int_bundle: str
    int_dir: str
    metadata: str
    disable: str
    allowed_hosts: str
    fetch_allow: str


@dataclass
class _Plan:
    """What the flags decide before anything is read (step 1 of :func:`run`)."""

    workers: int
    tls: TLSOptions | None
    disable: frozenset[str]
    hosts: HostPolicy
    fetch: FetchPolicy


def run(opts: ServeOptions, args: list[str], io: IO) -> int:
    plan = _plan(opts, args)  # 1. flags and their conflicts; nothing read yet
    from cfsslpy.api.server import runtime_dir, tls_context

    # 2. the inputs: the TLS files first (a typo there should not wait for a CA to be created), then the CA
    context = tls_context(plan.tls) if plan.tls is not None else None
    inputs = _inputs(opts, io, plan)
    with runtime_dir(plan.workers, "cfsslpy-serve-") as runtime:  # 3. the app, then serve it
        return _serve(opts, plan, context, inputs, runtime)


def _plan(opts: ServeOptions, args: list[str]) -> _Plan:
    from cfsslpy.api.guard import HostPolicy, is_loopback_bind
    from cfsslpy.api.server import worker_count
    from cfsslpy.certinfo import FetchPolicy

    no_more_args(args, NO_ARGUMENTS)
    workers = worker_count(opts.workers)
    datadir = opts.datadir
    if datadir:
        clash = [f"-{name}" for name in ("ca", "ca-key", "config", "remote") if name in opts.given]
        if clash:
            raise UsageError(f"-datadir brings its own CA and signing config: it cannot be used with {', '.join(clash)}")
    if not 0 <= opts.port <= 65535:
        raise UsageError(f"-port {opts.port} is out of range")
    tls = _tls_options(opts)
    check_remote_flags(opts)
    _check_ocsp_flags(opts)
    disable = frozenset(name.strip() for name in opts.disable.split(",") if name.strip())
    hosts = HostPolicy.for_bind(opts.address, opts.allowed_hosts)
    try:
        fetch = FetchPolicy.parse(opts.fetch_allow)
    except CfsslError as exc:
        raise UsageError(exc.message) from None
    if hosts.any_host:
        log.warning("-allowed-hosts *: any Host header is accepted (no protection against DNS rebinding)")
    if datadir and "db-config" not in opts.given and not is_loopback_bind(opts.address) and "revoke" not in disable:
        # revoke has no authentication in cfssl: -datadir turns it on for local clients only
        log.warning(
            "revoke is disabled: -datadir enables it only on a loopback address (-address %s); "
            "give -db-config %s to enable it for every client that can reach this server",
            opts.address,
            os.path.join(datadir, "certdb.json"),
        )
        disable = disable | {"revoke"}
    return _Plan(workers, tls, disable, hosts, fetch)


@dataclass
class _Inputs:
    """What serve read (step 2 of :func:`run`)."""

    config: Config | None
    db: CertDB | None
    signer: Signer | None
    ocsp_signer: OCSPSigner | None
    bundler: Bundler | None
    sign_bundle: bool


def _inputs(opts: ServeOptions, io: IO, plan: _Plan) -> _Inputs:
    datadir = opts.datadir
    ca, ca_key, config = opts.ca, opts.ca_key, load_config(opts)
    db_config = opts.db_config
    if datadir:
        from cfsslpy.datadir import ensure_ca, ensure_certdb

        ca, ca_key, config_path = ensure_ca(datadir)
        config = config_file(config_path)
        db_config = db_config or ensure_certdb(datadir)
    db = _open_db(db_config, io)
    recorder: Recorder | None = None
    if db is not None:
        from cfsslpy.certdb import recorder as certdb_recorder

        recorder = certdb_recorder(db)
    # -ca with -responder and no -ca-key is the issuer of an ocspsign-only server (both cfssl versions serve it)
    asked = bool(datadir or opts.ca_key or opts.remote or (opts.ca and not opts.responder))
    signer = _signer(opts, io, config, ca, ca_key, given=asked, recorder=recorder)
    ocsp_signer = _ocsp_signer(opts, io, ca)
    bundler, sign_bundle = _bundler(opts, plan.disable)
    if bundler is not None:
        bundler.connect = plan.fetch.connect  # AIA and the remote dial follow -fetch-allow too
        bundler.fetch_aia = bundler.fetch_aia and not plan.fetch.disabled
    return _Inputs(config, db, signer, ocsp_signer, bundler, sign_bundle)


def _serve(opts: ServeOptions, plan: _Plan, context: ssl.SSLContext | None, inputs: _Inputs, runtime: str | None) -> int:
    from cfsslpy.api.app import create_app
    from cfsslpy.api.server import ServerOptions, bind, serve
    from cfsslpy.api.state import ApiState

    state = ApiState(
        signer=inputs.signer,
        policy=(inputs.config or Config.default()).signing,
        config=inputs.config,
        disable=plan.disable,
        metrics_dir=os.path.join(runtime, "metrics") if runtime else None,
        replay_db=_replay_db(opts.datadir, runtime),
        replay_store=_replay_store(inputs.db),
        db=inputs.db,
        ocsp_signer=inputs.ocsp_signer,
        crl_issuer=_crl_issuer(inputs.signer),
        bundler=inputs.bundler,
        sign_bundle=inputs.sign_bundle,
    )
    if state.metrics_dir:
        os.mkdir(state.metrics_dir, 0o700)
    app = create_app(state, hosts=plan.hosts, fetch=plan.fetch)
    if "revoke" in getattr(app, "endpoint_names", ()):
        log.warning("revoke is enabled without authentication: any client that can reach %s can revoke certificates", opts.address)
    names = sorted(getattr(app, "endpoint_names", ()))
    log.info("endpoints: %s; web UI at /", ", ".join(names) if names else "(none)")
    listener = bind(opts.address, opts.port)
    options = ServerOptions(
        workers=plan.workers,
        tls=plan.tls,
        max_body=state.max_body,
        inline=_inline_requests(state),
        route=_pool_of(state),
        pools=_pools(),
    )
    metrics = getattr(app, "metrics", None)
    tls, workers = plan.tls, plan.workers

    def ready(url: str) -> None:
        mode = "with mutual TLS " if tls is not None and tls.client_ca else ""
        log.info("Now listening %son %s (%d worker process%s)", mode, url, workers, "" if workers == 1 else "es")

    return serve(
        app,
        options,
        listener,
        context=context,
        on_ready=ready,
        on_worker_exit=metrics.flush if metrics is not None and hasattr(metrics, "flush") else None,
    )


def _tls_options(opts: ServeOptions) -> TLSOptions | None:
    """-tls-cert/-tls-key and the mutual-TLS flags; combinations cfssl silently ignores are usage errors here."""
    from cfsslpy.api.server import TLSOptions

    if bool(opts.tls_cert) != bool(opts.tls_key):
        raise UsageError("-tls-cert and -tls-key go together")
    if not opts.tls_cert:
        # cfssl serves plain HTTP in both cases: clients would not be authenticated although it was asked for.
        if opts.mutual_tls_ca or opts.mutual_tls_cn:
            raise UsageError("-mutual-tls-ca and -mutual-tls-cn need HTTPS (-tls-cert and -tls-key)")
        ignored(opts, ["min-tls-version"], "without -tls-cert and -tls-key")
        return None
    if opts.mutual_tls_cn and not opts.mutual_tls_ca:
        raise UsageError("-mutual-tls-cn needs -mutual-tls-ca")
    return TLSOptions(opts.tls_cert, opts.tls_key, opts.mutual_tls_ca, opts.mutual_tls_cn, opts.min_tls_version)


def _signer(
    opts: ServeOptions, io: IO, config: Config | None, ca: str, ca_key: str, *, given: bool, recorder: Recorder | None = None
) -> Signer | None:
    """The signer, built as ``sign`` builds it (reference §2.1 step 2).

    cfssl only logs a WARNING when it cannot build one and serves without the signing endpoints. We do the
    same when no signer was asked for (no -ca, -ca-key, -remote or -datadir, and the policy signs locally),
    but a CA, key or remote that was given and does not work is an error: a server that silently cannot
    sign is worse than one that does not start.
    """
    log.info("Initializing signer")
    if not given and needs_ca(opts, config):
        log.warning('couldn\'t initialize signer: {"code":2000,"message":"Unknown private key error"}')
        return None
    if opts.remote:
        ignored(opts, ["ca", "ca-key"], "with -remote")
    elif needs_ca(opts, config) and not (ca and ca_key):
        require_ca(opts)  # one of the two was given: cfssl's message for the missing one
    return signer_for(opts, io, config, ca, ca_key, recorder)


def _check_ocsp_flags(opts: ServeOptions) -> None:
    """-responder-key (or -key) and -interval mean something only with -responder (cfssl ignores them)."""
    if not opts.responder:
        if opts.responder_key:
            raise UsageError("-responder-key needs -responder")
        ignored(opts, ["key", "interval"], "without -responder")


def _open_db(spec: str, io: IO) -> CertDB | None:
    """The certificate database (reference §2.1 step 1). cfssl only logs a WARNING when it cannot open it and
    serves without recording what it signs; a database that was asked for and does not work stops the server.
    The connection is re-made in each pre-forked worker (CertDB is fork-safe)."""
    if not spec:
        return None

    try:
        db = open_certdb(spec, io)
    except (CfsslError, PlainError) as exc:
        log.error("cannot use the certificate database (-db-config %s): %s", spec, exc.message)
        raise
    log.info("certificate database: %s %s", db.config.driver, db.config.redacted())
    return db


def _ocsp_signer(opts: ServeOptions, io: IO, ca: str) -> OCSPSigner | None:
    """The OCSP signer behind ``ocspsign`` (reference §2.1 step 3): the issuer ``-ca``, ``-responder`` and
    ``-responder-key`` (``-key`` as cfssl's fallback), ``-interval``. cfssl only logs a WARNING when they do not
    work; given and unusable stops the server here."""
    if not opts.responder:
        return None
    key = opts.responder_key or opts.key
    if not ca:
        raise PlainError("need CA certificate (provide with -ca)")
    if not key:
        raise PlainError("need responder key (provide with -responder-key)")
    from cfsslpy.ocsp import load_signer

    try:
        signer = load_signer(ca, opts.responder, key, opts.interval, stdin=io.stdin, environ=io.environ)
        signer.check_valid()  # expired or not yet valid: 1211 now rather than on every request
        return signer
    except (CfsslError, PlainError) as exc:
        log.error("cannot build the OCSP signer (-ca, -responder, -responder-key): %s", exc.message)
        raise


def _bundler(opts: ServeOptions, disable: frozenset[str]) -> tuple[Bundler | None, bool]:
    """The bundler behind ``bundle`` and the ``bundle`` option of sign, authsign and newcert (reference §2.1).

    Roots come from ``-ca-bundle`` (else the system roots), intermediates from ``-int-bundle``; ``-int-dir``
    keeps intermediates fetched through AIA, ``-metadata`` lists the platforms the ubiquitous flavor ranks
    by. The sign option exists only when both ``-ca-bundle`` and ``-int-bundle`` are given, as in cfssl.
    cfssl disables the endpoints (with a WARNING) when a bundle file is unreadable and stops on a bad
    ``-metadata``; any bundle file that was given and does not load stops the server here.
    """
    sign_bundle = bool(opts.ca_bundle and opts.int_bundle)
    if not sign_bundle and (opts.ca_bundle or opts.int_bundle):
        log.info("the bundle option of sign, authsign and newcert needs both -ca-bundle and -int-bundle")
    if "bundle" in disable and not sign_bundle:
        return None, False
    from cfsslpy.bundler import Bundler, load_metadata

    try:
        # the core only logs a -metadata that does not load (cfssl's bundle command); serve stops on it
        platforms = load_metadata(opts.metadata) if opts.metadata else []
        bundler = Bundler.from_files(opts.ca_bundle, opts.int_bundle, opts.int_dir)
    except (CfsslError, PlainError) as exc:
        log.error("cannot build the bundler (-ca-bundle, -int-bundle, -int-dir, -metadata): %s", exc.message)
        raise
    bundler.platforms = platforms
    return bundler, sign_bundle


def _crl_issuer(signer: Signer | None) -> tuple[x509.Certificate, PrivateKey] | None:
    """The CA certificate and key of the local signer (``GET /crl`` signs with them); None without one."""
    local = getattr(signer, "local", signer)  # a UniversalSigner's local half
    if isinstance(local, LocalSigner) and local.issuer.cert is not None:
        return local.issuer.cert, local.issuer.key
    return None


def _inline_requests(state: ApiState) -> Callable[[str, str], bool]:
    """The requests a worker answers on its event-loop thread (:class:`~cfsslpy.api.server.ServerOptions`
    ``inline``): bounded CPU work that never waits. Signing qualifies only with a local key, no certificate
    database, no CT log submission (network) and, for authsign, no replay guard (a database shared by the
    workers), and never with the bundle option available (the bundler may fetch intermediates); key
    generation (newkey, newcert, init_ca: seconds for RSA 4096), certinfo (it may dial a host) and bundle
    never do."""
    from cfsslpy.api.endpoints import API_PREFIX
    from cfsslpy.api.endpoints.metrics import PATH as METRICS_PATH

    paths = {API_PREFIX + "health", METRICS_PATH}
    signer = state.signer
    # the bundle option may fetch intermediates over the network
    if isinstance(signer, LocalSigner) and signer.recorder is None and not state.sign_bundle and not _on_token(signer):
        profiles = [signer.policy.default, *signer.policy.profiles.values()]
        if not any(p.ct_log_servers for p in profiles):
            paths |= {API_PREFIX + "sign", API_PREFIX + "info"}
            if not any(p.auth_replay_window for p in profiles):
                paths.add(API_PREFIX + "authsign")
    cheap = frozenset(paths)
    return lambda method, path: path in cheap


# One bounded pool per kind of blocking work (cfsslpy.api.pools), per worker: a silent host that certinfo or
# the bundler dials, a key generation that takes seconds, a database or a token that stalls fills its own pool
# (then 503 Retry-After), never the threads that sign.
def _pools() -> dict[str, PoolSpec]:
    from cfsslpy.api.endpoints import MAX_OUTBOUND
    from cfsslpy.api.pools import PoolSpec

    return {
        # certinfo -domain, signing with "bundle" (AIA fetches): as many threads as outbound slots
        # (MAX_OUTBOUND), none waiting: a request beyond them is 503 at once instead of queueing behind dials
        "outbound": PoolSpec(threads=MAX_OUTBOUND, queue=0),
        "keygen": PoolSpec(threads=2, queue=32, queue_timeout=30.0),  # newkey, newcert, init_ca
        "db": PoolSpec(threads=4, queue=64, queue_timeout=10.0),  # the certdb and the replay guard
        "token": PoolSpec(threads=2, queue=64, queue_timeout=10.0),  # a PKCS#11 key
    }


def _on_token(signer: object) -> bool:
    """Whether ``signer`` signs with a PKCS#11 key (each call waits on the token)."""
    import sys

    module = sys.modules.get("cfsslpy.pkcs11")  # imported whenever a token key was loaded
    key = getattr(getattr(signer, "issuer", None), "key", None)
    return (
        module is not None
        and isinstance(signer, LocalSigner)
        and isinstance(key, (module.TokenRSAKey, module.TokenECKey, module.TokenEd25519Key))
    )


def _pool_of(state: ApiState) -> Callable[[str, str], str]:
    """The pool each non-inline request runs in (see _pools); ``default`` for the rest (a remote signer, the UI)."""
    from cfsslpy.api.endpoints import API_PREFIX

    signer = state.signer
    local = getattr(signer, "local", signer)
    signing = "default"
    if _on_token(local):
        signing = "token"
    elif state.sign_bundle:
        signing = "outbound"
    elif (isinstance(local, LocalSigner) and local.recorder is not None) or state.replay_db:
        signing = "db"
    routes = {
        "certinfo": "outbound",
        # bundle: the default pool; it holds an outbound slot only while AIA fetching may dial
        "bundle": "default",
        "scan": "outbound",
        "newkey": "keygen",
        "newcert": "keygen",
        "init_ca": "keygen",
        "revoke": "db",
        "certadd": "db",
        "crl": "db",
        "gencrl": "token" if signing == "token" else "default",
        "ocspsign": "token" if signing == "token" else "db",
        "sign": signing,
        "authsign": signing,
        "info": signing,
    }
    table = {API_PREFIX + name: pool for name, pool in routes.items()}
    return lambda method, path: table.get(path, "default")


def _replay_store(db: CertDB | None) -> TokenStore | None:
    """With a PostgreSQL certdb, authsign's replay guard keeps its tokens there: every serve instance sharing
    the database accepts a token once between them (:mod:`cfsslpy.certdb.replay`). None: the SQLite file of
    :func:`_replay_db` (one host)."""
    if db is None or db.config.driver != "postgres":
        return None
    from cfsslpy.certdb.replay import PostgresTokens

    return PostgresTokens(db.config, busy_timeout=db.busy_timeout)


def _replay_db(datadir: str, runtime: str | None) -> str | None:
    """Where authsign's replay guard keeps the tokens it has seen: the data directory (so a restart does not
    forget them), else the run's private directory when several workers must share them, else memory."""
    if datadir:
        return os.path.join(os.path.abspath(datadir), "authsign-replay.db")
    if runtime:
        return os.path.join(runtime, "authsign-replay.db")
    return None


COMMAND = Command(
    name="serve",
    summary="set up an HTTP server that handles cfssl API requests",
    usage=(
        "cfsslpy serve [-address address] [-port port] [-workers n] [-ca cert -ca-key key | -datadir dir] [-config config]\n"
        "              [-remote remote_host] [-tls-cert cert -tls-key key [-min-tls-version 1.2|1.3]\n"
        "              [-mutual-tls-ca ca [-mutual-tls-cn regex]]] [-db-config file]\n"
        "              [-responder cert -responder-key key [-interval 96h]] [-ca-bundle file] [-int-bundle file]\n"
        "              [-int-dir dir] [-metadata file] [-disable endpoint,...] [-allowed-hosts name,...]\n"
        "              [-fetch-allow none|cidr,host,...]"
    ),
    options=ServeOptions,
    example='cfsslpy serve -datadir ./cfsslpy-data   # then: curl -H "Content-Type: application/json" -d \'{"certificate_request": "..."}\' http://127.0.0.1:8888/api/v1/cfssl/sign',
    run=run,
    description=(
        "Serve the cfssl API (/api/v1/cfssl/sign, authsign, info, newkey, newcert, init_ca, certinfo, bundle,\n"
        "gencrl, crl, revoke, ocspsign, certadd, health), /metrics and the web UI at /. -datadir DIR creates a\n"
        "CA, a signing config and a SQLite certificate database in DIR on the first run and reuses them\n"
        "afterwards.\n"
        "With -db-config every certificate issued is recorded before it is returned (revoke, crl, certadd and\n"
        "certinfo's serial lookup use the database); -responder and -responder-key (or -key) with -ca enable\n"
        "ocspsign (-ca-key is then optional: without it only ocspsign and the endpoints that need no signer are\n"
        "served). With -db-config, ocspsign refuses a status that contradicts the database unless the request is\n"
        "authenticated like authsign (token under the default profile's auth_key). Without a CA (-ca/-ca-key,\n"
        "-datadir) or -remote, only the endpoints that need no signer are served (as cfssl); a CA, key, remote,\n"
        "database or responder that is given but unusable stops the server.\n"
        "bundle builds chains from -ca-bundle (else the system roots) and -int-bundle (-int-dir keeps fetched\n"
        "intermediates, -metadata ranks platforms); with both -ca-bundle and -int-bundle, sign, authsign and\n"
        'newcert also return the chain when asked ("bundle": true).\n'
        "Browser-borne requests are refused: POSTs to sign, authsign, newkey, newcert, init_ca, revoke, certadd,\n"
        "ocspsign and gencrl need Content-Type: application/json (curl -H 'Content-Type: application/json'), a\n"
        "cross-site Origin or Sec-Fetch-Site is 403, and the Host header must name the server (loopback names,\n"
        "the bound address, the host name; -allowed-hosts adds names, * any). -datadir enables the\n"
        "unauthenticated revoke only on a loopback -address (or with an explicit -db-config).\n"
        "certinfo and bundle dial other hosts (domain, AIA) only where -fetch-allow permits: by default never\n"
        "loopback or link-local addresses (cloud metadata); none = never; CIDRs and names = only those. At most\n"
        "2 such requests wait per worker (5 s deadline), others get 503.\n"
        "-workers N pre-forks N processes (0 = one per core). SIGTERM or SIGINT stop it gracefully."
    ),
)
