"""``ocspserve``: an OCSP responder (reference §1.3, §4.5) on serve's production server (:mod:`cfsslpy.api.server`)."""

from __future__ import annotations

import logging

from cfsslpy.cli.command import ArgumentError, Command, Options
from cfsslpy.cli.common import NO_ARGUMENTS, ignored, no_more_args, open_certdb
from cfsslpy.cli.context import IO
from cfsslpy.cli.ocsprefresh import split_list
from cfsslpy.cli.ocspsign import interval_flag
from cfsslpy.errors import PlainError, UsageError
from cfsslpy.ocspresponder import MAX_REQUEST, DBSource, FileSource, LiveSource, Responder, Source

log = logging.getLogger("cfsslpy.cli")

NO_SOURCE = "no response file or db-config provided, please set the one of these using either -responses or -db-config flags"
LIVE_FLAGS = ("ca", "responder", "responder-key")


class OcspserveOptions(Options):
    address: str
    port: int
    path: str
    workers: int
    responses: str
    db_config: str
    ca: str
    responder: str
    responder_key: str
    interval: str
    cache_ttl: str


def run(opts: OcspserveOptions, args: list[str], io: IO) -> int:
    from cfsslpy.api.ocspapp import OCSPApp
    from cfsslpy.api.server import ServerOptions, bind, serve, worker_count

    # bind and validate: nothing is read before the flags are known to make sense
    no_more_args(args, NO_ARGUMENTS)
    workers = worker_count(opts.workers)
    if not 0 <= opts.port <= 65535:
        raise UsageError(f"-port {opts.port} is out of range")
    if not opts.responses and not opts.db_config:
        raise ArgumentError(NO_SOURCE)
    live = _live_flags(opts)
    cache_ttl = _cache_ttl(opts) if live is not None else 0.0

    source = _source(opts, io, live, cache_ttl)
    memo = 4 * len(source.responses) + 1024 if isinstance(source, FileSource) else 0
    # a responses file never changes: answers are remembered by the exact request (up to 4 per response
    # and 1,024 more: SHA-1 and SHA-256 CertIDs, GET and POST), and every request is answered straight on
    # the event-loop thread (no WSGI environ, no thread hand-off); a database source may wait, so its
    # requests run in the worker's pool through WSGI
    app = OCSPApp(Responder(source, memo=memo), opts.path)
    listener = bind(opts.address, opts.port)
    options = ServerOptions(workers=workers, max_body=MAX_REQUEST, direct=app.direct if memo else None)

    def ready(url: str) -> None:
        mount = "" if app.path == "/" else app.path
        log.info("Now listening on %s%s (%d worker process%s)", url, mount, workers, "" if workers == 1 else "es")

    return serve(app, options, listener, on_ready=ready)


def _live_flags(opts: OcspserveOptions) -> list[tuple[str, str, str]] | None:
    """-ca/-responder/-responder-key (comma-separated, one entry per issuer) for live signing; None without them."""
    given = [name for name in LIVE_FLAGS if getattr(opts, name.replace("-", "_"))]
    if opts.responses:  # cfssl: the responses file wins
        ignored(opts, ["db-config", *LIVE_FLAGS, "interval", "cache-ttl"], "with -responses")
        return None
    if not given:
        ignored(opts, ["interval", "cache-ttl"], "without -ca, -responder and -responder-key")
        return None
    missing = [f"-{name}" for name in LIVE_FLAGS if name not in given]
    if missing:
        raise UsageError(f"live signing needs -ca, -responder and -responder-key: missing {', '.join(missing)}")
    interval_flag(opts)
    # several issuers, as ocsprefresh takes them: item i of each list belong together
    cas, responders, keys = split_list(opts.ca), split_list(opts.responder), split_list(opts.responder_key)
    if not len(cas) == len(responders) == len(keys):
        raise PlainError(
            f"-ca, -responder and -responder-key must list the same number of files (got {len(cas)}, {len(responders)}, {len(keys)})"
        )
    return list(zip(cas, responders, keys, strict=True))


def _cache_ttl(opts: OcspserveOptions) -> float:
    """-cache-ttl: a Go duration between 0 (sign every request) and 24h."""
    from cfsslpy.golang.json import parse_duration

    try:
        nanoseconds = parse_duration(opts.cache_ttl)
    except ValueError:
        nanoseconds = -1
    if not 0 <= nanoseconds <= 86400 * 10**9:
        raise UsageError(f'invalid value "{opts.cache_ttl}" for flag -cache-ttl: want a duration between 0s and 24h')
    return nanoseconds / 1e9


def _source(opts: OcspserveOptions, io: IO, live: list[tuple[str, str, str]] | None, cache_ttl: float) -> Source:
    if opts.responses:
        return FileSource.load(opts.responses, stdin=io.stdin, environ=io.environ)

    db = open_certdb(opts.db_config, io)
    if live is None:
        return DBSource(db)
    from cfsslpy.ocsp import load_signer

    signers = [load_signer(ca, responder, key, opts.interval, stdin=io.stdin, environ=io.environ) for ca, responder, key in live]
    for signer in signers:  # a responder that cannot sign now stops the server (1211), as an unreadable one does
        signer.check_valid()
    log.info("signing OCSP responses on demand for %d issuer%s", len(signers), "" if len(signers) == 1 else "s")
    return LiveSource(db, signers, cache_ttl=cache_ttl)


COMMAND = Command(
    name="ocspserve",
    summary="set up an HTTP server that handles OCSP requests from a file or a certificate database",
    usage=(
        "cfsslpy ocspserve [-address address] [-port port] [-path path] [-workers n]\n"
        "                  -responses file | -db-config config [-ca cert -responder cert -responder-key key [-interval 96h]]"
    ),
    options=OcspserveOptions,
    example="cfsslpy ocspdump -db-config db.json > responses && cfsslpy ocspserve -port 8889 -responses responses",
    run=run,
    description=(
        "Answer OCSP requests (GET and POST, RFC 6960/5019) at -path. Responses come from -responses (a file of\n"
        "base64 DER responses, as ocspdump writes; it wins over -db-config), or from the certificate database's\n"
        "stored responses (-db-config, written by ocsprefresh), or are signed on demand from the database's\n"
        "current status (-db-config with -ca, -responder and -responder-key; comma-separated lists serve several\n"
        "issuers). Signed responses are reused for at most -cache-ttl (default 60s; 0 = never) so\n"
        "a revocation shows within a minute. -workers N pre-forks N processes (0 = one per core).\n"
        "SIGTERM or SIGINT stop it gracefully."
    ),
)
