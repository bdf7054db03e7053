"""``version``: the cfssl version we are compatible with, our own version and the runtime."""

from __future__ import annotations

from cfsslpy.cli.command import Command, Options
from cfsslpy.cli.context import IO
from cfsslpy.versioninfo import CFSSL_COMPAT_VERSION, version_text

__all__ = ["CFSSL_COMPAT_VERSION", "COMMAND", "VersionOptions", "version_text"]


class VersionOptions(Options):
    verbose: bool


def run(opts: VersionOptions, args: list[str], io: IO) -> int:
    io.out(version_text())
    if opts.verbose:
        from cfsslpy.selfcheck import bundled_text

        io.out(bundled_text())
    return 0


COMMAND = Command(
    name="version",
    summary="print the version",
    usage="cfsslpy version [-verbose]",
    options=VersionOptions,
    example="cfsslpy version",
    run=run,
)
