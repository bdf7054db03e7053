"""``cfssljson`` / ``cfsslpy json-split``: flags in Go's syntax, then one call into :mod:`cfsslpy.jsonsplit`.

``cfssljson [-f file] [-bare] [-stdout] [-version] [BASENAME]``: cfssljson's own flag set, parsed by the one
Go ``flag`` parser (:mod:`cfsslpy.cli.goflag`): ``-f x``, ``-f=x``, ``--f x``; booleans as ``-bare`` or
``-bare=true``; parsing stops at the first non-flag argument or ``--``. An undefined flag prints
``flag provided but not defined: -x`` and the usage (exit 2); ``-h``/``-help`` prints the usage (exit 0).
"""

from __future__ import annotations

from cfsslpy.cli.command import Command, Options
from cfsslpy.cli.context import IO
from cfsslpy.cli.goflag import Flag, print_defaults
from cfsslpy.cli.jsonhints import json_location
from cfsslpy.cli.version import version_text
from cfsslpy.errors import UsageError
from cfsslpy.jsonsplit import DEFAULT_BASENAME, read_source, render_stdout, split, write_outputs

FLAGSET = {
    flag.name: flag
    for flag in (
        Flag("f", "-", "JSON input"),
        Flag("bare", False, "the response from CFSSL is not wrapped in the API standard response"),
        Flag("stdout", False, "output the response instead of saving to a file"),
        Flag("version", False, "print version and exit"),
    )
}

# Go's flag.PrintDefaults layout, flags sorted by name, then an example.
USAGE = (
    "Usage of cfssljson:\n"
    + print_defaults(FLAGSET)
    + """
cfssljson [-f file] [-bare] [-stdout] [-version] [BASENAME]   (BASENAME defaults to "cert")
Writes BASENAME.pem, BASENAME-key.pem (0600), BASENAME.csr, ... from cfssl's JSON output.
Example: cfssl gencert -initca ca-csr.json | cfssljson -bare ca
"""
)


class JsonSplitOptions(Options, flagset=FLAGSET):
    f: str
    bare: bool
    stdout: bool
    version: bool


def run(opts: JsonSplitOptions, args: list[str], io: IO) -> int:
    """Bind flags, read the input, plan every output, then print them or write them all."""
    if opts.version:
        io.out(version_text())
        return 0
    if len(args) > 1:
        # cfssljson ignores these, so `cfssljson -bare ca -f x.json` silently reads stdin.
        # a flag among them gets the runner's hint: move it before BASENAME
        raise UsageError(f"unexpected arguments after BASENAME {args[0]!r}: {' '.join(args[1:])}")
    if args and args[0] == "":
        raise UsageError("BASENAME must not be empty")
    data = read_source(opts.f, io.stdin)
    with json_location(opts.f, data):
        outputs = split(data, basename=args[0] if args else DEFAULT_BASENAME, bare=opts.bare)
    if opts.stdout:
        io.out(render_stdout(outputs))
    else:
        write_outputs(outputs)
    return 0


COMMAND = Command(
    name="json-split",
    summary="split cfssl's JSON output into files (cfssljson)",
    usage="cfssljson [-f file] [-bare] [-stdout] [-version] [BASENAME]",
    options=JsonSplitOptions,
    example="cfssl gencert -initca ca-csr.json | cfssljson -bare ca",
    run=run,
    help=lambda prog: USAGE,
)
