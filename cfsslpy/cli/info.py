"""``info``: the signer's certificate, and the usages and expiry of a profile."""

from __future__ import annotations

from cfsslpy.cli.command import Command, Options
from cfsslpy.cli.common import load_config, local_signer, no_more_args, print_json, require_ca
from cfsslpy.cli.context import IO
from cfsslpy.errors import PlainError


def run(opts: Options, args: list[str], io: IO) -> int:
    no_more_args(args, "argument is provided but not defined; please refer to the usage by flag -h.")
    # cfssl needs -config (or -remote); we also accept -ca/-ca-key alone, with the default profile.
    if not opts.config and not (opts.ca and opts.ca_key):
        raise PlainError("Either -remote or -config must be given. Refer to cfssl info -h for usage.")
    require_ca(opts)
    config = load_config(opts)
    signer = local_signer(opts, io, config)
    # Go struct order (certificate, usages, expiry), compact, and no trailing newline: cfssl's info output.
    print_json(io, signer.info(opts.profile, opts.label).to_json(), newline=False)
    return 0


COMMAND = Command(
    name="info",
    summary="get info about a signer",
    usage="cfsslpy info -config config -ca cert -ca-key key [-profile profile]",
    flags=["config", "ca", "ca-key", "profile", "label"],
    example="cfsslpy info -ca ca.pem -ca-key ca-key.pem -profile www -config config.json",
    run=run,
    description="Print the CA certificate and the usages and expiry of a profile (the default one without -profile).",
)
