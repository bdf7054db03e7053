"""``info``: the signer's certificate, and the usages and expiry of a profile."""

from __future__ import annotations

from cfsslpy.cli.command import Command, Options
from cfsslpy.cli.common import load_config, local_signer, no_more_args, pem_text, print_json
from cfsslpy.cli.context import IO
from cfsslpy.errors import PlainError
from cfsslpy.gojson import format_duration


def run(opts: Options, args: list[str], io: IO) -> int:
    no_more_args(args)
    if not opts.config and not (opts.ca and opts.ca_key):
        raise PlainError("Either -remote or -config must be given. Refer to cfssl info -h for usage.")
    config = load_config(opts)
    signer = local_signer(opts, io, config)
    profile = signer.policy.profile(opts.profile)
    assert signer.certificate is not None
    expiry = profile.expiry_string or format_duration(profile.expiry)
    out = {"certificate": pem_text(signer.certificate).rstrip("\n"), "usages": list(profile.usages), "expiry": expiry}
    print_json(io, {"certificate": out["certificate"], "usages": out["usages"], "expiry": out["expiry"]}, newline=False)
    return 0


COMMAND = Command(
    name="info",
    summary="get info about a signer",
    usage="cfsslpy info -config config -ca cert -ca-key key [-profile profile]",
    flags=["config", "ca", "ca-key", "profile", "label"],
    example="cfsslpy info -ca ca.pem -ca-key ca-key.pem -profile www -config config.json",
    run=run,
)
