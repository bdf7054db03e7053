"""``crl``: a CRL of the revoked, unexpired certificates a CA issued, from the certificate database."""

from __future__ import annotations

import datetime as dt

from cfsslpy.cli.command import ArgumentError, Command, Options
from cfsslpy.cli.common import no_more_args, open_certdb, require_ca
from cfsslpy.cli.context import IO
from cfsslpy.cli.progress import MANY_ROWS, progress_bar
from cfsslpy.crl import crl_from_db, encode, load_crl_issuer
from cfsslpy.errors import UsageError
from cfsslpy.golang.json import parse_duration


class CrlOptions(Options):
    db_config: str
    ca: str
    ca_key: str
    expiry: str
    pem: bool
    progress: bool


def run(opts: CrlOptions, args: list[str], io: IO) -> int:
    # bind and validate, in cfssl's order (-ca, -ca-key, -db-config); nothing read yet. cfssl only logs
    # the missing flag and prints an empty line with exit status 0; we fail (exit status 1).
    no_more_args(args)
    require_ca(opts)
    if not opts.db_config:
        raise ArgumentError("need a certificate database (provide one with -db-config)")
    try:
        expiry = dt.timedelta(microseconds=parse_duration(opts.expiry) // 1000)
    except ValueError:  # Go's flag package reports a bad -expiry duration this way (exit status 2)
        raise UsageError(f'invalid value "{opts.expiry}" for flag -expiry: parse error') from None
    # read the inputs, then one core call
    cert, key = load_crl_issuer(opts.ca, opts.ca_key, stdin=io.stdin, environ=io.environ)
    with open_certdb(opts.db_config, io) as db, progress_bar(io, "CRL entries", wanted=opts.progress, min_total=MANY_ROWS) as bar:
        der = crl_from_db(db, cert, key, expiry, progress=bar)
    io.out(encode(der, opts.pem))
    return 0


COMMAND = Command(
    name="crl",
    summary="generate a CRL from the certificate database",
    usage="cfsslpy crl -db-config db.json -ca cert -ca-key key [-expiry 168h] [-pem]",
    options=CrlOptions,
    example="cfsslpy crl -db-config certdb.json -ca ca.pem -ca-key ca-key.pem -expiry 24h -pem > ca.crl",
    run=run,
    description="Make a CRL of the CA (-ca, -ca-key) listing the revoked, unexpired certificates the database holds\n"
    "for this CA (by authority key identifier), with their revocation times and reasons. -expiry is the CRL\n"
    "lifetime (a Go duration such as 168h). Each CRL gets a larger CRL number than the last one. Output: the\n"
    "DER CRL in base64 and a newline, as cfssl prints it, or a PEM 'X509 CRL' block with -pem.",
)
