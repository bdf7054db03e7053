"""``certinfo``: describe a certificate (file, stdin or a TLS server) or a CSR as indented JSON.

Precedence is cfssl's: ``-cert`` > ``-csr`` > ``-domain``. cfssl's ``-serial``/``-aki``/``-db-config`` lookup
needs the certificate database and is not offered yet. Output is Go's ``json.MarshalIndent(v, "", "  ")``
plus a newline.

Unlike cfssl, extra positional arguments are an error instead of being ignored silently.
"""

from __future__ import annotations

import json
import re
from typing import Any

from cfsslpy import certinfo
from cfsslpy.cli.command import Command, Options
from cfsslpy.cli.common import no_more_args, read_arg
from cfsslpy.cli.context import IO
from cfsslpy.errors import PlainError

NO_TARGET = "Must specify certinfo target through -cert, -csr, -domain or -serial + -aki"

_ESCAPE = re.compile(r"\\(.)")
_GO_ESCAPES = {"b": "\\u0008", "f": "\\u000c"}


def go_json_indent(value: Any) -> str:
    """Go's ``json.MarshalIndent(value, "", "  ")``: 2-space indent, ``<>&`` and U+2028/2029 escaped.

    Go spells backspace and form feed ``\\u0008``/``\\u000c`` where Python writes ``\\b``/``\\f``; every
    backslash in JSON text starts a two-character escape, so rewriting escape pairs left to right is exact.
    """
    text = json.dumps(value, indent=2, ensure_ascii=False)
    text = _ESCAPE.sub(lambda m: _GO_ESCAPES.get(m.group(1), m.group(0)), text)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def run(opts: Options, args: list[str], io: IO) -> int:
    no_more_args(args)
    info: dict[str, Any]
    if opts.cert:
        info = certinfo.describe_certificate_pem(read_arg(opts.cert, io))
    elif opts.csr:
        info = certinfo.describe_csr_pem(read_arg(opts.csr, io))
    elif opts.domain:
        info = certinfo.describe_domain(opts.domain, opts.ip)
    else:
        raise PlainError(NO_TARGET)
    io.out(go_json_indent(info) + "\n")
    return 0


COMMAND = Command(
    name="certinfo",
    summary="output certinfo about the given cert",
    usage="cfsslpy certinfo (-cert file | -csr file | -domain host[:port] [-ip address])",
    flags=["cert", "csr", "domain", "ip"],
    example="cfsslpy certinfo -domain www.example.com:443",
    run=run,
    description=(
        "Describe a certificate (-cert file, '-' for stdin), a certificate request (-csr: a dump of Go's "
        "x509.CertificateRequest) or the leaf certificate a TLS server presents (-domain host[:port], port 443 "
        "by default; the server is not verified; -ip dials that address instead of resolving the host). "
        "The first of -cert, -csr, -domain given wins."
    ),
)
