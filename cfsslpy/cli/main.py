"""Entry point: choose the program (cfssl, cfssljson, mkbundle) and the command, then run it (:mod:`cfsslpy.cli.runner`).

Adding a command: a module ``cfsslpy/cli/NAME.py`` with

- an :class:`~cfsslpy.cli.command.Options` subclass declaring the flags it reads, one typed annotation each
  (``ca_key: str`` reads ``-ca-key``), from cfssl's table (:mod:`cfsslpy.cli.flags`; a new cfssl flag is one
  row there) or, for a program with flags of its own (cfssljson, mkbundle), from its own flag set:
  ``class XOptions(Options, flagset={f.name: f for f in (Flag("a", ":8888", "..."), ...)})``;
- a handler ``run(opts, args, io) -> int`` (bind, validate, one core call, emit) and ``COMMAND = Command(...)``
  (``help=`` for a program that prints its own usage);

then one line in :data:`COMMANDS`, and its executable names in :data:`cfsslpy.cli.progs.PROGRAMS` if links
to it run it directly.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from cfsslpy.cli.command import Command
from cfsslpy.cli.context import IO
from cfsslpy.cli.goflag import HelpRequested, parse
from cfsslpy.cli.progs import PROGRAMS, program_name
from cfsslpy.cli.runner import ExitStatus as ExitStatus  # re-exported: the exit statuses live with the runner
from cfsslpy.cli.runner import guard, run_command
from cfsslpy.errors import PlainError

# name -> module under cfsslpy.cli (imported lazily so `version` stays fast)
COMMANDS: dict[str, str] = {
    "sign": "sign",
    "gencert": "gencert",
    "genkey": "genkey",
    "gencsr": "gencsr",
    "selfsign": "selfsign",
    "bundle": "bundle",
    "certinfo": "certinfo",
    "info": "info",
    "serve": "serve",
    "ocspsign": "ocspsign",
    "ocspserve": "ocspserve",
    "ocsprefresh": "ocsprefresh",
    "ocspdump": "ocspdump",
    "ocsppublish": "ocsppublish",
    "revoke": "revoke",
    "gencrl": "gencrl",
    "crl": "crl",
    "token": "token",
    "ceremony": "ceremony",
    "print-defaults": "print_defaults",
    "version": "version",
    "selfcheck": "selfcheck",
    "json-split": "jsonsplit",
    "mkbundle": "mkbundle",
    "multirootca": "multirootca",
}


def load_command(name: str) -> Command[Any] | None:
    """The command's module, imported on demand; None when this build does not ship it."""
    module_name = f"cfsslpy.cli.{COMMANDS[name]}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return None
    command: Command[Any] = module.COMMAND
    return command


def usage_text() -> str:
    """The top-level usage: each command with its one-line summary (commands in a fixed order here; cfssl's
    come in Go map order), and the flags that mean something before a command (only ``-h``: cfssl's top
    level defines no flag; each command's flags go after its name)."""
    commands = [(name, command.summary) for name in COMMANDS if (command := load_command(name)) is not None]
    width = max(len(name) for name, _ in commands) + 2
    lines = ["Usage:", "  cfsslpy COMMAND [-flag value ...] [ARGUMENTS]", "Available commands:"]
    lines += [f"  {name:<{width}}{summary}" for name, summary in commands]
    lines += [
        "Top-level flags:",
        f"  {'-h, -help':<{width}}print this list",
        "Each command's flags go after its name and before its arguments; -loglevel N (0 debug .. 5 fatal)",
        "applies to every command. 'cfsslpy help COMMAND' (or 'cfsslpy COMMAND -h') shows a command's usage and flags.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None, io: IO | None = None, prog: str | None = None) -> int:
    """Run one invocation; returns the exit status. ``prog`` (argv[0]) selects cfssljson or mkbundle."""
    io = io or IO()
    words: list[str] = list(sys.argv[1:] if argv is None else argv)
    prog = program_name(prog if prog is not None else sys.argv[0])
    if prog in PROGRAMS:  # cfssljson, mkbundle: one command with its own flag set
        return guard(lambda: _run_named(PROGRAMS[prog], words, io, prog), io, usage_text)
    return guard(lambda: _cfssl(words, io), io, usage_text)


def _cfssl(words: list[str], io: IO) -> int:
    """cfssl's command line: the top level, parsed with Go's flag package and no flags (only ``-h`` and ``--``
    mean something there), then the command and its own arguments."""
    _, words = parse(words, {})
    if not words:
        raise PlainError("No command is given.\n" + usage_text().rstrip("\n"))
    name, rest = words[0], words[1:]
    if name == "help":  # not in cfssl, which says "Command help is not defined."
        if not rest or rest[0] in ("-h", "-help", "--h", "--help"):
            raise HelpRequested()
        name, rest = rest[0], ["-h"]  # help CMD is CMD -h: the same text, stream and status
    return _run_named(name, rest, io, f"cfsslpy {name}")


def _run_named(name: str, argv: list[str], io: IO, prog: str) -> int:
    command = load_command(name) if name in COMMANDS else None
    if command is None:
        raise PlainError(f"Command {name} is not defined.\n" + usage_text().rstrip("\n"))
    return run_command(command, argv, io, prog)


__all__ = ["COMMANDS", "ExitStatus", "load_command", "main", "usage_text"]
