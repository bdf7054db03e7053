"""``print-defaults``: cfssl's example config and CSR JSON, byte for byte."""

from __future__ import annotations

from cfsslpy.cli.command import ArgumentError, Command, Options
from cfsslpy.cli.common import pop_arg
from cfsslpy.cli.context import IO
from cfsslpy.errors import PlainError
from cfsslpy.resources import read_asset

TEMPLATES = ("config", "csr")
LIST = "Default configurations are available for:\n" + "".join(f"\t{t}\n" for t in TEMPLATES)


class NoFlags(Options):
    """print-defaults reads no flag."""


def run(opts: NoFlags, args: list[str], io: IO) -> int:
    try:
        name, _ = pop_arg(args)  # cfssl ignores any further argument
    except ArgumentError as exc:
        exc.hint = "default configurations are available for: " + ", ".join(TEMPLATES) + " ('list' lists them)"
        raise
    if name == "list":
        io.out(LIST)
        return 0
    if name not in TEMPLATES:
        # cfssl prints the list on stdout and exits 0, so `print-defaults cofnig > config.json` "works".
        raise PlainError(f"unknown default configuration {name!r}; " + LIST.rstrip("\n"))
    # The template ends with a newline and cfssl adds one more (fmt.Println).
    io.out(read_asset("defaults", f"{name}.json").decode("utf-8") + "\n")
    return 0


COMMAND = Command(
    name="print-defaults",
    summary="print default configurations",
    usage="cfsslpy print-defaults TYPE   (TYPE: list, config, csr)",
    options=NoFlags,
    example="cfsslpy print-defaults csr > csr.json",
    run=run,
)
