"""``gencrl``: a CRL revoking a list of serial numbers, signed by a CA certificate and key."""

from __future__ import annotations

from cfsslpy.cli.command import Command, Options
from cfsslpy.cli.common import no_more_args, pop_arg, read_arg
from cfsslpy.cli.context import IO
from cfsslpy.cli.progress import MANY_ROWS, progress_bar
from cfsslpy.crl import encode, gencrl
from cfsslpy.errors import PlainError
from cfsslpy.keys import is_pkcs11_uri, load_key_spec


class GencrlOptions(Options):
    pem: bool
    progress: bool


def run(opts: GencrlOptions, args: list[str], io: IO) -> int:
    # bind and validate: INPUTFILE CERT KEY [TIME], nothing read yet
    serials_spec, args = pop_arg(args)
    cert_spec, args = pop_arg(args)
    key_spec, args = pop_arg(args)
    lifetime = ""
    if args:
        lifetime, args = pop_arg(args)
        no_more_args(args)
    if [serials_spec, cert_spec, key_spec].count("-") > 1:
        raise PlainError("only one of INPUTFILE, CERT and KEY can be read from standard input ('-')")
    # read the inputs, then one core call
    serials = read_arg(serials_spec, io)
    cert = read_arg(cert_spec, io, prefixes=True)
    key = load_key_spec(key_spec, environ=io.environ) if is_pkcs11_uri(key_spec) else read_arg(key_spec, io, prefixes=True)
    with progress_bar(io, "CRL entries", wanted=opts.progress, min_total=MANY_ROWS) as bar:
        der = gencrl(serials, cert, key, lifetime, environ=io.environ, progress=bar)
    io.out(encode(der, opts.pem))
    return 0


COMMAND = Command(
    name="gencrl",
    summary="generate a new Certificate Revocation List",
    usage="cfsslpy gencrl [-pem] INPUTFILE CERT KEY [TIME]",
    options=GencrlOptions,
    example="cfsslpy gencrl revoked-serials.txt ca.pem ca-key.pem 86400 | base64 -d > ca.crl",
    run=run,
    description="Make a CRL of the CA (CERT, KEY) revoking every serial number in INPUTFILE (one decimal serial\n"
    "per line, blank lines skipped; a line may also be 'SERIAL REASON' with a reason name or number), all\n"
    "revoked now. TIME is the CRL lifetime in seconds (0x.. hex and 0.. octal work; default 7 days).\n"
    "INPUTFILE, CERT or KEY may be '-' for standard input (one of them); CERT and KEY also take env:VAR and\n"
    "file:path. The CA key may be encrypted with CFSSL_CA_PK_PASSWORD. Output: the DER CRL in base64 and a\n"
    "newline, as cfssl prints it, or a PEM 'X509 CRL' block with -pem.",
)
