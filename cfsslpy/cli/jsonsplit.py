"""``cfssljson`` / ``cfsslpy json-split``: flags in Go's syntax, then one call into :mod:`cfsslpy.jsonsplit`.

``cfssljson [-f file] [-bare] [-stdout] [-version] [BASENAME]``. Go ``flag`` rules: ``-f x``, ``-f=x``,
``--f x``; booleans as ``-bare`` or ``-bare=true``; parsing stops at the first non-flag argument or ``--``.
An undefined flag prints ``flag provided but not defined: -x`` and the usage (exit 2); ``-h``/``-help``
prints the usage (exit 0).
"""

from __future__ import annotations

from dataclasses import dataclass

from cfsslpy.cli.context import IO
from cfsslpy.cli.version import version_text
from cfsslpy.jsonsplit import DEFAULT_BASENAME, read_source, render_stdout, split, write_outputs

# Go's flag.PrintDefaults layout, flags sorted by name, then an example.
USAGE = """Usage of cfssljson:
  -bare
    \tthe response from CFSSL is not wrapped in the API standard response
  -f string
    \tJSON input (default "-")
  -stdout
    \toutput the response instead of saving to a file
  -version
    \tprint version and exit

cfssljson [-f file] [-bare] [-stdout] [-version] [BASENAME]   (BASENAME defaults to "cert")
Writes BASENAME.pem, BASENAME-key.pem (0600), BASENAME.csr, ... from cfssl's JSON output.
Example: cfssl gencert -initca ca-csr.json | cfssljson -bare ca
"""


@dataclass(frozen=True)
class Args:
    input: str = "-"
    bare: bool = False
    stdout: bool = False
    version: bool = False
    basename: str = DEFAULT_BASENAME


class _Usage(Exception):
    """A flag error (exit 2) or a help request (exit 0); printed by :func:`run_cfssljson`."""

    def __init__(self, message: str | None) -> None:
        self.message = message
        super().__init__(message)


_BOOLS = ("bare", "stdout", "version")


def _parse_bool(name: str, text: str) -> bool:
    # Go's strconv.ParseBool
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise _Usage(f'invalid boolean value "{text}" for -{name}: parse error')


def parse_args(argv: list[str]) -> Args:
    """Go ``flag.Parse`` for cfssljson's four flags; raises ``_Usage`` (message None means help)."""
    values: dict[str, str | bool] = {}
    rest = list(argv)
    while rest:
        arg = rest[0]
        if len(arg) < 2 or arg[0] != "-":
            break
        dashes = 2 if arg[1] == "-" else 1
        if arg == "--":
            rest.pop(0)
            break
        name = arg[dashes:]
        if not name or name[0] in "-=":
            raise _Usage(f"bad flag syntax: {arg}")
        rest.pop(0)
        name, has_value, value = name.partition("=")
        if name in _BOOLS:
            values[name] = _parse_bool(name, value) if has_value else True
        elif name == "f":
            if not has_value:
                if not rest:
                    raise _Usage("flag needs an argument: -f")
                value = rest.pop(0)
            values["f"] = value
        elif name in ("h", "help"):
            raise _Usage(None)
        else:
            raise _Usage(f"flag provided but not defined: -{name}")
    if values.get("version"):
        return Args(version=True)
    if len(rest) > 1:
        # cfssljson ignores these, so `cfssljson -bare ca -f x.json` silently reads stdin.
        raise _Usage(f"unexpected arguments after BASENAME {rest[0]!r}: {' '.join(rest[1:])} (flags go before BASENAME)")
    if rest and rest[0] == "":
        raise _Usage("BASENAME must not be empty")
    return Args(
        input=str(values.get("f", "-")),
        bare=bool(values.get("bare", False)),
        stdout=bool(values.get("stdout", False)),
        version=bool(values.get("version", False)),
        basename=rest[0] if rest else DEFAULT_BASENAME,
    )


def run_cfssljson(argv: list[str], io: IO) -> int:
    """Bind flags, read the input, plan every output, then print them or write them all."""
    try:
        args = parse_args(argv)
    except _Usage as exc:
        if exc.message is None:
            io.err(USAGE)
            return 0
        io.err(f"{exc.message}\n{USAGE}")
        return 2
    if args.version:
        io.out(version_text())
        return 0
    data = read_source(args.input, io.stdin)
    outputs = split(data, basename=args.basename, bare=args.bare)
    if args.stdout:
        io.out(render_stdout(outputs))
    else:
        write_outputs(outputs)
    return 0
