"""``ocspsign``: sign one OCSP response for a certificate with an issuer and a responder."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from cfsslpy.cli.command import Command, Options
from cfsslpy.cli.common import no_more_args, print_json, read_arg
from cfsslpy.cli.context import IO
from cfsslpy.errors import Error, PlainError, UsageError
from cfsslpy.ocsp import load_signer, parse_interval, sign_request
from cfsslpy.pem import parse_certificate_pem

log = logging.getLogger(__name__)


class OcspsignOptions(Options):
    ca: str
    responder: str
    responder_key: str
    key: str
    cert: str
    reason: str
    status: str
    revoked_at: str
    interval: str


class IntervalFlag(Protocol):
    interval: str


@contextmanager
def critical(what: str, hint: Callable[[], str] = lambda: "") -> Iterator[None]:
    """cfssl logs each ocspsign failure at CRITICAL with what it was doing, then returns the error."""
    try:
        yield
    except Error as exc:
        log.critical("%s: %s%s", what, exc.message, hint())
        raise


def interval_flag(opts: IntervalFlag) -> None:
    """-interval is a Go duration flag: a bad value is a usage error, as Go's flag package reports it."""
    try:
        parse_interval(opts.interval)
    except PlainError:
        raise UsageError(f'invalid value "{opts.interval}" for flag -interval: parse error') from None


def run(opts: OcspsignOptions, args: list[str], io: IO) -> int:
    # bind and validate, in cfssl's order: the certificate, the revocation details, then the signer
    no_more_args(args)
    interval_flag(opts)
    responder_key = opts.responder_key or opts.key  # cfssl: -key is the fallback
    with critical("Unable to read certificate", lambda: "" if opts.cert else " (provide one with -cert)"):
        pem = read_arg(opts.cert, io)
    with critical("Unable to parse certificate"):
        cert = parse_certificate_pem(pem)
    # cfssl's -reason default "0" makes every "-status revoked" without -reason fail; a missing reason
    # is "unspecified" here (reason 0 is then omitted from the response, as Go does)
    reason = opts.reason if "reason" in opts.given else ""
    with critical("Invalid revocation details"):
        req = sign_request(cert, opts.status, reason, opts.revoked_at)
    with critical("Unable to create OCSP signer"):
        signer = load_signer(opts.ca, opts.responder, responder_key, opts.interval, stdin=io.stdin, environ=io.environ)
    # one core call, then emit
    with critical("Unable to sign OCSP response"):
        der = signer.sign(req)
    print_json(io, {"ocspResponse": base64.b64encode(der).decode("ascii")})
    return 0


COMMAND = Command(
    name="ocspsign",
    summary="signs an OCSP response for a given CA, cert, and status",
    usage=(
        "cfsslpy ocspsign -ca cert -responder cert -responder-key key -cert cert [-status status]"
        " [-reason code] [-revoked-at YYYY-MM-DD] [-interval 96h]"
    ),
    options=OcspsignOptions,
    example="cfsslpy ocspsign -ca ca.pem -responder ocsp.pem -responder-key ocsp-key.pem -cert server.pem | cfsslpy json-split -bare server",
    run=run,
    description="Sign an OCSP response saying -status (good, revoked or unknown) about -cert, a certificate issued by\n"
    "-ca. The responder is the CA itself or a certificate the CA issued with the OCSP Signing usage;\n"
    "-responder-key (or -key) is its key. A revoked status takes -reason (a name such as keyCompromise, or\n"
    "a number; unspecified when absent) and -revoked-at (now, or a date: UTC midnight). The response is\n"
    'valid from the current hour for -interval. Output: {"ocspResponse": base64 DER}.',
)
