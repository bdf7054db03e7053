"""``certinfo``: describe a certificate (file, stdin or a TLS server) or a CSR as indented JSON.

Precedence is cfssl's: ``-cert`` > ``-csr`` > ``-domain`` > ``-serial`` + ``-aki`` (looked up in the
``-db-config`` certificate database). Output is Go's ``json.MarshalIndent(v, "", "  ")`` plus a newline.

Unlike cfssl, extra positional arguments are an error instead of being ignored silently, and ``-serial`` +
``-aki`` without ``-db-config`` says so (cfssl falls through to its "Must specify certinfo target" error).
"""

from __future__ import annotations

from typing import Any

from cfsslpy import certinfo
from cfsslpy.cli.command import ArgumentError, Command, Options
from cfsslpy.cli.common import no_more_args, open_certdb, read_arg
from cfsslpy.cli.context import IO
from cfsslpy.errors import go_json_dumps

NO_TARGET = "Must specify certinfo target through -cert, -csr, -domain or -serial + -aki"
NO_DB = "cannot lookup certificate from serial without db access (provide -db-config)"


class CertinfoOptions(Options):
    cert: str
    csr: str
    domain: str
    ip: str
    serial: str
    aki: str
    db_config: str


def go_json_indent(value: Any) -> str:
    """Go's ``json.MarshalIndent(value, "", "  ")``: cfssl certinfo's output format."""
    return go_json_dumps(value, indent=2)


def run(opts: CertinfoOptions, args: list[str], io: IO) -> int:
    no_more_args(args)
    info: dict[str, Any]
    if opts.cert:
        info = certinfo.describe_certificate_pem(read_arg(opts.cert, io))
    elif opts.csr:
        info = certinfo.describe_csr_pem(read_arg(opts.csr, io))
    elif opts.domain:
        info = certinfo.describe_domain(opts.domain, opts.ip)
    elif opts.serial and opts.aki:
        if not opts.db_config:
            raise ArgumentError(NO_DB)

        with open_certdb(opts.db_config, io) as db:
            info = certinfo.describe_serial(db, opts.serial, opts.aki)
    else:
        raise ArgumentError(NO_TARGET)
    io.out(go_json_indent(info) + "\n")
    return 0


COMMAND = Command(
    name="certinfo",
    summary="output certinfo about the given cert",
    usage="cfsslpy certinfo (-cert file | -csr file | -domain host[:port] [-ip address] | -serial S -aki A -db-config file)",
    options=CertinfoOptions,
    example="cfsslpy certinfo -domain www.example.com:443",
    run=run,
    description=(
        "Describe a certificate (-cert file, '-' for stdin), a certificate request (-csr: a dump of Go's "
        "x509.CertificateRequest) or the leaf certificate a TLS server presents (-domain host[:port], port 443 "
        "by default; the server is not verified; -ip dials that address instead of resolving the host), "
        "or a certificate recorded in the certificate database (-serial decimal serial, -aki hex authority key "
        "identifier, colons and case ignored, -db-config the database configuration). "
        "The first of -cert, -csr, -domain, -serial + -aki given wins."
    ),
)
