"""``info``: the signer's certificate, and the usages and expiry of a profile (local or remote)."""

from __future__ import annotations

from cfsslpy.cli.command import ArgumentError, Command
from cfsslpy.cli.common import (
    NO_ARGUMENTS,
    SignerOptions,
    build_signer,
    check_remote_flags,
    load_config,
    no_more_args,
    print_json,
    require_signer_flags,
)
from cfsslpy.cli.context import IO
from cfsslpy.universal import check_profile


class InfoOptions(SignerOptions):
    """info reads the signer's flags and no others (not -db-config: it records nothing)."""


def run(opts: InfoOptions, args: list[str], io: IO) -> int:
    no_more_args(args, NO_ARGUMENTS + ".")
    # cfssl needs -config (or -remote); we also accept -ca/-ca-key alone, with the default profile.
    if not opts.remote and not opts.config and not (opts.ca and opts.ca_key):
        raise ArgumentError("Either -remote or -config must be given. Refer to cfssl info -h for usage.")
    check_remote_flags(opts)
    config = load_config(opts)
    require_signer_flags(opts, config)
    check_profile(config, opts.remote, opts.profile)  # 5400 before the CA is read
    with build_signer(opts, io, config) as signer:
        info = signer.info(opts.profile, opts.label)
    # Go struct order (certificate, usages, expiry), compact, and no trailing newline: cfssl's info output.
    print_json(io, info.to_json(), newline=False)
    return 0


COMMAND = Command(
    name="info",
    summary="get info about a signer",
    usage="cfsslpy info -config config -ca cert -ca-key key [-profile profile]\n       cfsslpy info -remote host[:port] [-label label] [-profile profile]",
    options=InfoOptions,
    example="cfsslpy info -ca ca.pem -ca-key ca-key.pem -profile www -config config.json",
    run=run,
    description="Print the CA certificate and the usages and expiry of a profile (the default one without -profile),\n"
    "of the local CA or, with -remote, of a cfssl server. A -profile the configuration does not define is an\n"
    "error (5400) locally; a remote server decides for itself.",
)
