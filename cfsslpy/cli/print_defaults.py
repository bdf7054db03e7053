"""``print-defaults``: cfssl's example config and CSR JSON, byte for byte."""

from __future__ import annotations

from cfsslpy.cli.command import Command, Options
from cfsslpy.cli.common import pop_arg
from cfsslpy.cli.context import IO
from cfsslpy.resources import read_asset

TEMPLATES = ("config", "csr")


def run(opts: Options, args: list[str], io: IO) -> int:
    name, _ = pop_arg(args)
    if name not in TEMPLATES:
        io.out("Default configurations are available for:\n" + "".join(f"\t{t}\n" for t in TEMPLATES))
        return 0
    io.out(read_asset("defaults", f"{name}.json").decode("utf-8") + "\n")
    return 0


COMMAND = Command(
    name="print-defaults",
    summary="print default configurations",
    usage="cfsslpy print-defaults TYPE   (TYPE: list, config, csr)",
    flags=[],
    example="cfsslpy print-defaults csr > csr.json",
    run=run,
)
