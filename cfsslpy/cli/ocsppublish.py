"""``ocsppublish``: write every current OCSP response and each issuer's CRL as static files (issue 15).

Its own flag set: cfssl's ``-db-config``, ``-ca``, ``-ca-key``, ``-responder``, ``-responder-key``,
``-interval``, ``-expiry``, ``-path`` and ``-loglevel`` as in every command, and ``-dir``, ``-loop`` and
``-nginx``, which cfssl has no use for. ``-interval`` keeps its meaning from ``ocsprefresh`` and
``ocspsign`` (how long each response is valid); ``-loop`` is how often to publish again.
"""

from __future__ import annotations

import datetime as dt
import logging
import os

from cfsslpy.cli.command import Command, Options
from cfsslpy.cli.common import no_more_args, open_certdb
from cfsslpy.cli.context import IO
from cfsslpy.cli.flags import FLAGS
from cfsslpy.cli.goflag import Flag
from cfsslpy.cli.ocsprefresh import require_refresh_flags, split_list
from cfsslpy.cli.ocspsign import critical, interval_flag
from cfsslpy.crl import load_crl_issuer
from cfsslpy.errors import Category, CfsslError, PlainError, Reason, UsageError
from cfsslpy.golang.json import format_duration, parse_duration
from cfsslpy.ocsp import OCSPSigner, load_signer, parse_interval
from cfsslpy.publish import CRLIssuer, Issuer, PublishReport, nginx_snippet, publish, repeat, responder_crl_issuer
from cfsslpy.publish.files import write_if_changed

log = logging.getLogger(__name__)

_OURS = [
    Flag("dir", "", "directory to publish into (ocsp/, crl/, index.json)", "ocsp"),
    Flag("loop", "0", "publish again every DURATION (Go duration; 0 = once, for cron or a systemd timer)", "ocsp"),
    Flag("nginx", "", "write an nginx config snippet serving the tree to this file ('-' = stdout)", "ocsp"),
]
FLAGSET: dict[str, Flag] = {
    **{name: FLAGS[name] for name in ("db-config", "ca", "ca-key", "responder", "responder-key", "interval", "expiry", "path")},
    **{flag.name: flag for flag in _OURS},
    "loglevel": FLAGS["loglevel"],
}


class OcsppublishOptions(Options, flagset=FLAGSET):
    db_config: str
    ca: str
    ca_key: str
    responder: str
    responder_key: str
    interval: str
    expiry: str
    path: str
    dir: str
    loop: str
    nginx: str
    loglevel: int  # applied by the runner


def _duration(flag: str, text: str) -> dt.timedelta:
    """A Go duration flag; a bad value is a usage error, as Go's flag package reports it."""
    try:
        value = dt.timedelta(microseconds=parse_duration(text) // 1000)
    except ValueError:
        raise UsageError(f'invalid value "{text}" for flag -{flag}: parse error') from None
    if value < dt.timedelta(0):
        raise UsageError(f'invalid value "{text}" for flag -{flag}: must not be negative')
    return value


def _validate(opts: OcsppublishOptions, args: list[str]) -> tuple[dt.timedelta, dt.timedelta]:
    """ocsprefresh's required flags in its words, then ours; (CRL lifetime, loop period)."""
    no_more_args(args)
    require_refresh_flags(opts)
    if not opts.dir:
        raise PlainError("need an output directory (provide with -dir)")
    interval_flag(opts)
    expiry = _duration("expiry", opts.expiry)
    if expiry <= dt.timedelta(0):
        raise UsageError(f'invalid value "{opts.expiry}" for flag -expiry: must be positive')
    period = _duration("loop", opts.loop)
    # the snippet's max-age (half the refresh margin, a quarter of -interval) holds only if the next run comes
    # within it (cfsslpy.publish.publisher.response_max_age)
    bound = parse_interval(opts.interval) / 4
    if period > bound:
        limit = format_duration(int(bound.total_seconds()) * 10**9)
        raise UsageError(
            f"-loop {opts.loop} is longer than {limit}, a quarter of -interval: cached responses could outlive their nextUpdate"
        )
    return expiry, period


def _crl_issuer(signer: OCSPSigner, ca: str, ca_key: str, expiry: dt.timedelta, io: IO) -> CRLIssuer | None:
    """The CA key for the CRL: -ca-key, or the responder's key when the responder is the CA itself."""
    if ca_key:
        cert, key = load_crl_issuer(ca, ca_key, stdin=io.stdin, environ=io.environ)
        return CRLIssuer(cert, key, expiry)
    return responder_crl_issuer(signer, expiry)


def _issuers(opts: OcsppublishOptions, expiry: dt.timedelta, io: IO) -> list[Issuer]:
    # several issuers at once: item i of -ca, -responder, -responder-key (and -ca-key) belong together
    cas, responders, keys = split_list(opts.ca), split_list(opts.responder), split_list(opts.responder_key)
    ca_keys = split_list(opts.ca_key) if opts.ca_key else [""] * len(cas)
    if not len(cas) == len(responders) == len(keys) == len(ca_keys):
        raise PlainError(
            "-ca, -responder, -responder-key (and -ca-key when given) must list the same number of files "
            f"(got {len(cas)}, {len(responders)}, {len(keys)}{f', {len(ca_keys)}' if opts.ca_key else ''})"
        )
    issuers = []
    for ca, responder, key, ca_key in zip(cas, responders, keys, ca_keys, strict=True):
        with critical("Unable to create OCSP signer"):
            signer = load_signer(ca, responder, key, opts.interval, stdin=io.stdin, environ=io.environ)
        issuers.append(Issuer(signer, _crl_issuer(signer, ca, ca_key, expiry, io)))
    return issuers


def _emit(opts: OcsppublishOptions, report: PublishReport, io: IO) -> None:
    log.info(
        "published %d certificate(s): %d response file(s) written, %d kept, %d removed; %d skipped (other issuers), "
        "%d failed; index %s; Cache-Control max-age %ds",
        report.certificates,
        report.written,
        report.kept,
        report.removed,
        report.no_signer,
        report.failed,
        "updated" if report.index_changed else "unchanged",
        report.max_age,
    )
    for crl in report.crls:
        log.info("CRL %s: number %d, next update %s (%s)", crl.der_path, crl.number, crl.next_update, "new" if crl.remade else "kept")
    if opts.nginx:
        snippet = nginx_snippet(opts.dir, max_age=report.max_age, crl_max_age=report.crl_max_age, path=opts.path)
        if opts.nginx == "-":
            io.out(snippet)
        elif write_if_changed(os.path.abspath(opts.nginx), snippet.encode("utf-8")):
            log.info("wrote the nginx snippet %s: reload nginx", opts.nginx)
    if report.failed:
        raise CfsslError(
            Category.OCSP,
            Reason.INVALID_STATUS,
            f"{report.failed} certificate(s) could not be published; first: {report.errors[0]}",
        )


def run(opts: OcsppublishOptions, args: list[str], io: IO) -> int:
    expiry, period = _validate(opts, args)
    issuers = _issuers(opts, expiry, io)
    with open_certdb(opts.db_config, io) as db:
        if not period:
            _emit(opts, publish(db, issuers, opts.dir), io)
            return 0
        repeat(period, lambda: publish(db, issuers, opts.dir), report=lambda r: _report_quietly(opts, r, io))
    return 0


def _report_quietly(opts: OcsppublishOptions, report: PublishReport, io: IO) -> None:
    """In a loop, rows that could not be published are logged (above) and the loop goes on."""
    try:
        _emit(opts, report, io)
    except CfsslError as exc:
        log.error("%s", exc.message)


COMMAND = Command(
    name="ocsppublish",
    summary="publish every current OCSP response and each CA's CRL as static files for a web server",
    usage="cfsslpy ocsppublish -db-config db-config -ca cert -responder cert -responder-key key -dir DIR [-loop 5m] [-nginx FILE]",
    options=OcsppublishOptions,
    example="cfsslpy ocsppublish -db-config db.json -ca ca.pem -responder ocsp.pem -responder-key ocsp-key.pem -dir /srv/ocsp -nginx -",
    run=run,
    description="Write under -dir every unexpired certificate's OCSP response, signed for -interval, once per CertID hash\n"
    "(SHA-1 and SHA-256), each stored under the RFC 5019 GET path of its request (ocsp/<base64 request>, its '/'\n"
    "being directories); each CA's CRL as crl/<key id>.crl and .pem (with -ca-key, or when the responder is the\n"
    "CA, valid for -expiry); and index.json. Only what changed is written (a response is re-signed when its\n"
    "status changed or half its validity is gone; a CRL when its entries changed or half its lifetime is gone),\n"
    "atomically; files of expired certificates are removed. -nginx writes the server configuration (locations\n"
    "-path and /crl/ with Content-Type, Cache-Control max-age and ETag). Runs once (cron, systemd timer), or\n"
    "every -loop. Several CAs: comma-separated lists, item i of each belonging together.",
)
