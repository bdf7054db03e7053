"""``ocsprefresh``: sign fresh OCSP responses for every unexpired certificate in the certdb."""

from __future__ import annotations

import logging
import os
from typing import Protocol

from cfsslpy.cli.command import ArgumentError, Command, Options
from cfsslpy.cli.common import no_more_args, open_certdb
from cfsslpy.cli.context import IO
from cfsslpy.cli.ocspsign import critical, interval_flag
from cfsslpy.cli.progress import progress_bar
from cfsslpy.errors import Category, CfsslError, PlainError, Reason
from cfsslpy.ocsp import OCSPSigner, load_signer, refresh

log = logging.getLogger(__name__)


class OcsprefreshOptions(Options):
    ca: str
    responder: str
    responder_key: str
    db_config: str
    interval: str
    progress: bool


def split_list(spec: str) -> list[str]:
    """A comma-separated list of files (one per issuer); a single existing path containing a comma is kept."""
    if "," not in spec or os.path.exists(spec):
        return [spec]
    return [item.strip() for item in spec.split(",")]


class RefreshFlags(Protocol):
    db_config: str
    responder: str
    responder_key: str
    ca: str


def require_refresh_flags(opts: RefreshFlags) -> None:
    """cfssl ocsprefresh's four required flags, checked in its order and reported in its words (ocsppublish
    needs the same four)."""
    if not opts.db_config:
        raise ArgumentError("need DB config file (provide with -db-config)")
    if not opts.responder:
        raise ArgumentError("need responder certificate (provide with -responder)")
    if not opts.responder_key:
        raise ArgumentError("need responder key (provide with -responder-key)")
    if not opts.ca:
        raise ArgumentError("need CA certificate (provide with -ca)")


def run(opts: OcsprefreshOptions, args: list[str], io: IO) -> int:
    # bind and validate: cfssl's four required flags, in its order and words
    no_more_args(args)
    require_refresh_flags(opts)
    interval_flag(opts)
    # several issuers at once: item i of -ca, -responder and -responder-key belong together
    cas, responders, keys = split_list(opts.ca), split_list(opts.responder), split_list(opts.responder_key)
    if not len(cas) == len(responders) == len(keys):
        raise PlainError(
            f"-ca, -responder and -responder-key must list the same number of files (got {len(cas)}, {len(responders)}, {len(keys)})"
        )
    signers: list[OCSPSigner] = []
    for ca, responder, key in zip(cas, responders, keys, strict=True):
        with critical("Unable to create OCSP signer"):
            signers.append(load_signer(ca, responder, key, opts.interval, stdin=io.stdin, environ=io.environ))
    # one core call
    with open_certdb(opts.db_config, io) as db, progress_bar(io, "OCSP responses signed", wanted=opts.progress) as bar:
        report = refresh(db, signers, progress=bar)
    # emit: no stdout, a log line with the counts
    log.info(
        "refreshed %d OCSP response(s); %d certificate(s) of other issuers skipped; %d failed",
        report.refreshed,
        report.no_signer,
        report.failed,
    )
    if report.failed:
        raise CfsslError(
            Category.OCSP, Reason.INVALID_STATUS, f"{report.failed} OCSP response(s) could not be signed; first: {report.errors[0]}"
        )
    return 0


COMMAND = Command(
    name="ocsprefresh",
    summary="refreshes the ocsp_responses table with new OCSP responses",
    usage="cfsslpy ocsprefresh -db-config db-config -ca cert -responder cert -responder-key key [-interval 96h]",
    options=OcsprefreshOptions,
    example="cfsslpy ocsprefresh -db-config db.json -ca ca.pem -responder ocsp.pem -responder-key ocsp-key.pem",
    run=run,
    description="Sign a response for every unexpired certificate in the database, with its status (good, or revoked\n"
    "with its reason and time), valid for -interval, and store it in ocsp_responses. Several CAs at once:\n"
    "-ca, -responder and -responder-key each take a comma-separated list of the same length (item i of each\n"
    "belong together); certificates of CAs not listed are counted and skipped.",
)
