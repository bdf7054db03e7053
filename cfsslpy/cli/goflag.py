"""Go's ``flag`` package: the one flag parser of cfssl, cfssljson and mkbundle (reference §1.1).

Rules: ``-f v``, ``-f=v``, ``--f v``, ``--f=v``; booleans only as ``-f`` or ``-f=false`` (never the next word);
parsing stops at the first non-flag argument (``-`` alone is an argument) or after ``--``; ``-h``/``-help``
ask for the usage; an undefined flag is a usage error (``flag provided but not defined: -x``). No
abbreviations: ``-ca-k`` is undefined, not ``-ca-key``. Each program has its own flag set (a mapping of
name to :class:`Flag`); cfssl has one for all its commands.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from cfsslpy.errors import UsageError


class Flag(NamedTuple):
    """One flag; its kind (``str``, ``bool`` or ``int``: Go's ``flag.String``, ``Bool``, ``Int``) is its default's type.

    A named tuple: cfssl's table makes about 80 of them at every start, and a tuple is the cheapest to make.
    """

    name: str
    default: Any
    help: str
    group: str = "other"  # the -h section (cfsslpy.cli.flags.GROUP_TITLES)
    attr: str = ""  # the options attribute, when not the name with "_" for "-" (multirootca's -a: "address")

    @property
    def kind(self) -> type:
        return type(self.default)

    @property
    def attribute(self) -> str:
        return self.attr or self.name.replace("-", "_")


FlagSet = Mapping[str, Flag]


class HelpRequested(Exception):
    """``-h`` / ``-help``: the program prints its usage on stderr and exits 0 (as Go's flag package)."""


def parse(argv: list[str], flags: FlagSet) -> tuple[dict[str, Any], list[str]]:
    """Go ``FlagSet.Parse``: (values of the flags given, by name; the arguments after the flags).

    Raises :class:`HelpRequested` for ``-h``/``-help`` and :class:`UsageError` with Go's message otherwise.
    """
    values: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if len(arg) < 2 or arg[0] != "-":
            break
        i += 1
        if arg == "--":
            break
        name = arg[2:] if arg.startswith("--") else arg[1:]
        if not name or name[0] in "-=":
            raise UsageError(f"bad flag syntax: {arg}")
        name, has_value, value = name.partition("=")
        flag = flags.get(name)
        if flag is None:
            if name in ("h", "help"):
                raise HelpRequested()
            raise UsageError(f"flag provided but not defined: -{name}")
        if flag.kind is bool:
            values[name] = _parse_bool(name, value) if has_value else True
            continue
        if not has_value:
            if i >= len(argv):
                raise UsageError(f"flag needs an argument: -{name}")
            value = argv[i]
            i += 1
        values[name] = _parse_int(name, value) if flag.kind is int else value
    return values, argv[i:]


def print_defaults(flags: FlagSet) -> str:
    """Go's ``FlagSet.PrintDefaults``: each flag by name, its type and help, and a default that is not zero.

    String defaults are quoted as Go's ``%q`` does for plain ASCII (every default here is).
    """
    out = []
    for name in sorted(flags):
        flag = flags[name]
        head = f"  -{name}" + ("" if flag.kind is bool else f" {'int' if flag.kind is int else 'string'}")
        text = head + ("\t" if len(head) <= 4 else "\n    \t") + flag.help
        if flag.default not in ("", False, 0):
            text += f' (default "{flag.default}")' if flag.kind is str else f" (default {str(flag.default).lower()})"
        out.append(text + "\n")
    return "".join(out)


def _parse_bool(name: str, text: str) -> bool:
    # Go's strconv.ParseBool
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise UsageError(f'invalid boolean value "{text}" for -{name}: parse error')


_GO_INT = re.compile(r"[+-]?(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9_]*)")


def _parse_int(name: str, text: str) -> int:
    """Go's ``strconv.ParseInt(s, 0, 64)``: 0x / 0o / 0b prefixes, a leading 0 means octal, ``_`` separators."""
    if not _GO_INT.fullmatch(text) or "__" in text or text.rstrip("_") != text:
        raise UsageError(f'invalid value "{text}" for flag -{name}: parse error')
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-").replace("_", "")
    if len(body) > 1 and body[0] == "0" and body[1] in "0123456789":
        value = int(body, 8)
    else:
        value = int(body, 0)
    value *= sign
    if not -(1 << 63) <= value < (1 << 63):
        raise UsageError(f'invalid value "{text}" for flag -{name}: value out of range')
    return value
