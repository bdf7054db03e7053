"""``selfsign``: a self-signed certificate for testing."""

from __future__ import annotations

from cfsslpy.cli.command import Command, Options
from cfsslpy.cli.common import key_text, load_config, no_more_args, pem_text, pop_arg, print_cert, read_csr_json, split_hosts
from cfsslpy.cli.context import IO
from cfsslpy.errors import PlainError
from cfsslpy.selfsign import WARNING, policy_from_config, selfsign


class SelfsignOptions(Options):
    hostname: str
    config: str
    profile: str


def run(opts: SelfsignOptions, args: list[str], io: IO) -> int:
    hostname = opts.hostname
    if not hostname:
        # cfssl also skips HOSTNAME under -initca, a flag selfsign otherwise ignores; we always take it.
        hostname, args = pop_arg(args)
    spec, args = pop_arg(args)
    no_more_args(args)
    config = load_config(opts)
    policy = policy_from_config(config, opts.profile)
    hosts = split_hosts(hostname)
    req = read_csr_json(spec, io)
    if req.ca is not None:
        raise PlainError("ca section only permitted in initca")
    if hosts is not None:
        # cfssl reads HOSTNAME and ignores it; we use it as the SAN list (README, compatibility).
        req.hosts = hosts
    cert, csr, key = selfsign(req, policy, opts.profile)
    io.err(WARNING.rstrip("\n") + "\n\n")  # cfssl's block ends with an empty line
    print_cert(io, cert=pem_text(cert), csr=pem_text(csr), key=key_text(key))
    return 0


COMMAND = Command(
    name="selfsign",
    summary="generate a self-signed certificate (testing only)",
    usage="cfsslpy selfsign HOSTNAME CSRJSON\n       cfsslpy selfsign -hostname HOSTNAME CSRJSON",
    options=SelfsignOptions,
    example="cfsslpy selfsign www.example.com csr.json | cfsslpy json-split -bare selfsigned",
    run=run,
    description="A self-signed leaf certificate for HOSTNAME (comma-separated SANs), valid 2190h without -config.\n"
    "Self-signed certificates are for testing only.",
)
