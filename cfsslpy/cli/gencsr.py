"""``gencsr``: a CSR for an existing private key, from CSR JSON or from an existing certificate."""

from __future__ import annotations

from cfsslpy.cli.command import ArgumentError, Command, Options
from cfsslpy.cli.common import ONLY_ONE, no_more_args, pem_text, pop_arg, print_cert, read_arg, read_csr_json, split_hosts
from cfsslpy.cli.context import IO
from cfsslpy.csr import CertificateRequest, extract_request, generate_csr
from cfsslpy.keys import is_pkcs11_uri, load_key_spec, load_private_key
from cfsslpy.pem import parse_certificate_pem


class GencsrOptions(Options):
    key: str
    hostname: str
    cert: str


def run(opts: GencsrOptions, args: list[str], io: IO) -> int:
    if not opts.key:
        raise ArgumentError("private key file is required through '-key', please check with usage")
    spec = ""
    if opts.cert:
        no_more_args(args, "no argument is accepted with '-cert', please check with usage")
    else:
        spec, args = pop_arg(args)
        no_more_args(args, ONLY_ONE)
    hosts = split_hosts(opts.hostname)
    # a pkcs11: key stays on its token: no "key" in the output (the URI may hold a pin-value)
    key_pem = None if is_pkcs11_uri(opts.key) else read_arg(opts.key, io, prefixes=True)
    key = load_private_key(key_pem, allow_password=False) if key_pem is not None else load_key_spec(opts.key, environ=io.environ)
    req: CertificateRequest
    if opts.cert:
        req = extract_request(parse_certificate_pem(read_arg(opts.cert, io, prefixes=True)))
    else:
        req = read_csr_json(spec, io)
    if hosts is not None:
        req.hosts = hosts
    csr = generate_csr(req, key)
    # cfssl prints the key file's bytes as they were read
    print_cert(io, csr=pem_text(csr), key=None if key_pem is None else key_pem.decode("utf-8", "replace"))
    return 0


COMMAND = Command(
    name="gencsr",
    summary="generate a certificate request for an existing private key",
    usage="cfsslpy gencsr -key private_key_file [-hostname hostname] CSRJSON\n"
    "       cfsslpy gencsr -key private_key_file [-hostname hostname] -cert certificate_file",
    options=GencsrOptions,
    example="cfsslpy gencsr -key server-key.pem csr.json | cfsslpy json-split -bare server",
    run=run,
    description="Make a new CSR for -key from CSRJSON, or from -cert (subject, SANs and CA constraints copied).",
)
