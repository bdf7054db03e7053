"""``genkey``: generate a private key and a CSR (or, with -initca, a self-signed CA)."""

from __future__ import annotations

from cfsslpy.cli.command import Command, Options
from cfsslpy.cli.common import ONLY_ONE, key_text, load_config, no_more_args, pem_text, pop_arg, print_cert, read_csr_json
from cfsslpy.cli.context import IO
from cfsslpy.csr import new_key_and_csr
from cfsslpy.initca import new_ca, profile_from_config


class GenkeyOptions(Options):
    initca: bool
    config: str
    profile: str


def run(opts: GenkeyOptions, args: list[str], io: IO) -> int:
    spec, args = pop_arg(args)
    no_more_args(args, ONLY_ONE)
    config = load_config(opts)
    profile = profile_from_config(config, opts.profile) if opts.initca else None
    req = read_csr_json(spec, io)
    if opts.initca:
        cert, csr, key = new_ca(req, profile)
        print_cert(io, cert=pem_text(cert), csr=pem_text(csr), key=key_text(key))
        return 0
    # Without -initca cfssl validates nothing: an empty subject is allowed (reference §3.6).
    csr, key = new_key_and_csr(req)
    print_cert(io, csr=pem_text(csr), key=key_text(key))
    return 0


COMMAND = Command(
    name="genkey",
    summary="generate a private key and a certificate request",
    usage="cfsslpy genkey [-initca] CSRJSON",
    options=GenkeyOptions,
    example="cfsslpy genkey csr.json | cfsslpy json-split -bare server",
    run=run,
    description='Generate a private key (ECDSA P-256 unless CSRJSON\'s "key" says otherwise) and a CSR for it;\n'
    "with -initca, a self-signed CA instead (like gencert -initca).",
)
