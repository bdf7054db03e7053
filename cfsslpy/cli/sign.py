"""``sign``: sign a CSR with a CA certificate and key."""

from __future__ import annotations

from cfsslpy.cli.command import Command, Options
from cfsslpy.cli.common import load_config, local_signer, no_more_args, pem_text, pop_arg, print_cert, read_arg, require_ca, split_hosts
from cfsslpy.cli.context import IO
from cfsslpy.errors import PlainError
from cfsslpy.gojson import JSONDecodeError, loads
from cfsslpy.signer import SignRequest, SubjectOverride


def run(opts: Options, args: list[str], io: IO) -> int:
    require_ca(opts)
    csr_spec = opts.csr
    if not csr_spec:
        csr_spec, args = pop_arg(args)
    subject: SubjectOverride | None = None
    if args:
        subject_file, args = pop_arg(args)
        no_more_args(args)
        try:
            subject = SubjectOverride.from_json(loads(read_arg(subject_file, io)))
        except JSONDecodeError as exc:
            raise PlainError(str(exc)) from None
    config = load_config(opts)
    csr = read_arg(csr_spec, io)
    signer = local_signer(opts, io, config)
    req = SignRequest(request=csr, hosts=split_hosts(opts.hostname), subject=subject, profile=opts.profile, label=opts.label)
    cert = signer.sign(req)
    print_cert(io, cert=pem_text(cert), csr=csr.decode("utf-8", "replace"))
    return 0


COMMAND = Command(
    name="sign",
    summary="signs a client cert with a host name by a given CA and CA key",
    usage="cfsslpy sign -ca cert -ca-key key [-config config] [-profile profile] [-hostname hostname] CSR [SUBJECT]",
    flags=["hostname", "csr", "ca", "ca-key", "config", "profile", "label"],
    example="cfsslpy sign -ca ca.pem -ca-key ca-key.pem -hostname www.example.com server.csr | cfsslpy json-split -bare server",
    run=run,
)
