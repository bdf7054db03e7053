"""``selfcheck``: verify the single executable's unpacked files against its manifest, or print its SBOM."""

from __future__ import annotations

from cfsslpy.cli.command import Command, Options
from cfsslpy.cli.context import IO
from cfsslpy.errors import PlainError
from cfsslpy.selfcheck import check, sbom_json


class SelfcheckOptions(Options):
    sbom: bool


def run(opts: SelfcheckOptions, args: list[str], io: IO) -> int:
    if opts.sbom:
        io.out(sbom_json() + "\n")
        return 0
    report = check()
    io.out(report.json() + "\n")
    if report.problems:
        raise PlainError(f"{len(report.problems)} problem(s) with the unpacked files in {report.bundle.tree}: {report.problems[0]}")
    return 0


COMMAND = Command(
    name="selfcheck",
    summary="verify the executable's unpacked libraries against its manifest (or print its SBOM)",
    usage="cfsslpy selfcheck [-sbom]",
    options=SelfcheckOptions,
    example="cfsslpy selfcheck",
    run=run,
)
