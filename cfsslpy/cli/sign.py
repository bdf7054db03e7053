"""``sign``: sign a CSR with a CA certificate and key, or have a remote cfssl server sign it."""

from __future__ import annotations

from cfsslpy.cli.command import Command, Options
from cfsslpy.cli.common import (
    REMOTE_FLAGS,
    build_signer,
    check_remote_flags,
    load_config,
    no_more_args,
    pem_text,
    pop_arg,
    print_cert,
    read_arg,
    read_subject,
    require_ca,
    require_signer_flags,
    split_hosts,
)
from cfsslpy.cli.context import IO
from cfsslpy.signer import SignRequest, SubjectOverride


def run(opts: Options, args: list[str], io: IO) -> int:
    # bind and validate: arguments and flags first, nothing read yet
    csr_spec = opts.csr
    if not csr_spec:
        csr_spec, args = pop_arg(args)
    subject_spec = ""
    if args:
        subject_spec, args = pop_arg(args)
        no_more_args(args)
    check_remote_flags(opts)
    if not opts.remote and not opts.config:
        require_ca(opts)  # with -config, whether the CA is needed depends on its profiles
    # read the inputs (stdin at most once), then one core call
    config = load_config(opts)
    require_signer_flags(opts, config)
    csr = read_arg(csr_spec, io)
    subject: SubjectOverride | None = read_subject(subject_spec, io) if subject_spec else None
    signer = build_signer(opts, io, config)
    req = SignRequest(request=csr, hosts=split_hosts(opts.hostname), subject=subject, profile=opts.profile, label=opts.label)
    cert = signer.sign(req)
    # emit: the CSR is echoed byte for byte, as cfssl does
    print_cert(io, cert=pem_text(cert), csr=csr.decode("utf-8", "replace"))
    return 0


COMMAND = Command(
    name="sign",
    summary="signs a client cert with a host name by a given CA and CA key",
    usage=(
        "cfsslpy sign -ca cert -ca-key key [-config config] [-profile profile] [-hostname hostname] CSR [SUBJECT]\n"
        "       cfsslpy sign -remote host[:port][,host2...] [-config config] [-profile profile] [-label label] [-hostname hostname]"
        " CSR [SUBJECT]"
    ),
    flags=["hostname", "csr", "ca", "ca-key", "config", "profile", "label", "db-config", *REMOTE_FLAGS],
    example="cfsslpy sign -ca ca.pem -ca-key ca-key.pem -hostname www.example.com server.csr | cfsslpy json-split -bare server",
    run=run,
    description="Sign the CSR (a file, '-' for stdin, or -csr) with the CA. SUBJECT is an optional JSON file whose\n"
    "CN/names/SerialNumber override the CSR's subject. -hostname replaces every SAN of the CSR.\n"
    "With -remote (or remote profiles in -config) a cfssl server signs instead: a comma-separated list is\n"
    "tried in order; host alone means http://host:8888; https:// remotes are verified with -tls-remote-ca\n"
    "(else the system roots).",
)
