"""``revoke``: mark a certificate revoked in the certdb (by serial and AKI, or from the certificate itself)."""

from __future__ import annotations

import logging

from cfsslpy.cli.command import ArgumentError, Command, Options
from cfsslpy.cli.common import NO_ARGUMENTS, no_more_args, open_certdb, read_arg
from cfsslpy.cli.context import IO
from cfsslpy.errors import UsageError
from cfsslpy.revocation import REASON_NAMES, normalize_aki, parse_reason, parse_serial

log = logging.getLogger("cfsslpy.cli")


class RevokeOptions(Options):
    db_config: str
    serial: str
    aki: str
    cert: str
    reason: str


def run(opts: RevokeOptions, args: list[str], io: IO) -> int:
    # bind and validate, in cfssl's order: arguments, serial, AKI, db-config, then the reason
    no_more_args(args, NO_ARGUMENTS)
    if opts.cert and ("serial" in opts.given or "aki" in opts.given):
        raise UsageError("-cert names the certificate: it cannot be used with -serial or -aki")
    serial_text, aki_text = opts.serial, opts.aki
    if not opts.cert:
        if not serial_text:
            raise ArgumentError("serial number is required but not provided")
        if not aki_text:
            raise ArgumentError("authority key id is required but not provided")
    if not opts.db_config:
        raise ArgumentError("need DB config file (provide with -db-config)")
    # cfssl fails without -reason (its default "0" is refused); a missing reason means unspecified here
    reason = parse_reason(opts.reason) if "reason" in opts.given else 0
    if opts.cert:
        from cfsslpy.certdb import key_id_hex
        from cfsslpy.pem import parse_certificate_pem

        cert = parse_certificate_pem(read_arg(opts.cert, io))
        serial, aki = str(cert.serial_number), key_id_hex(cert)
    else:
        serial, aki = str(parse_serial(serial_text)), normalize_aki(aki_text)

    with open_certdb(opts.db_config, io) as db:
        record = db.revoke(serial, aki, reason)
    if record.status == "revoked":
        log.info("revoked certificate %s of issuer %s (%s)", serial, aki, REASON_NAMES.get(record.reason, record.reason))
    else:
        log.info("released certificate %s of issuer %s from hold", serial, aki)
    return 0


COMMAND = Command(
    name="revoke",
    summary="revoke a certificate in the certificate database",
    usage="cfsslpy revoke -db-config config -serial serial -aki authority_key_id [-reason reason]\n"
    "       cfsslpy revoke -db-config config -cert cert.pem [-reason reason]",
    options=RevokeOptions,
    example="cfsslpy revoke -db-config db.json -serial 1234567890 -aki 0a1b2c... -reason keyCompromise",
    run=run,
    description=(
        "Mark the certificate (decimal -serial, hex -aki as certinfo prints it, colons allowed; or -cert)\n"
        "revoked in the certdb. -reason: a name (keyCompromise, superseded, cessationOfOperation, ...,\n"
        "case-insensitive) or its number 0-10; absent means unspecified. Revoking again changes the reason\n"
        "and keeps the first revocation time; removeFromCRL releases a certificate on certificateHold.\n"
        "Nothing is printed on success. OCSP responses follow on the next ocsprefresh (or at once with\n"
        "ocspserve's live mode); CRLs on the next crl."
    ),
)
