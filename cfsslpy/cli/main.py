"""Entry point: dispatch to a subcommand and turn every outcome into an exit status, in one place.

Exit statuses (:class:`ExitStatus`): 0 success, 1 error (cfssl JSON or plain text on stderr), 2 usage,
130 interrupted. Tracebacks are shown only with ``CFSSLPY_DEBUG=1``.
"""

from __future__ import annotations

import enum
import importlib
import logging
import sys
import traceback
from collections.abc import Callable

from cfsslpy.cli.command import Command, Options
from cfsslpy.cli.context import IO
from cfsslpy.cli.flags import FLAGS, HelpRequested, help_parser, tokenize
from cfsslpy.cli.logs import cli_logging as cli_logging  # re-exported: cfssl's -loglevel, in cfsslpy.cli.logs
from cfsslpy.cli.progs import JSONSPLIT_NAMES, MKBUNDLE_NAMES, program_name
from cfsslpy.errors import CfsslError, PlainError, UsageError


class ExitStatus(enum.IntEnum):
    SUCCESS = 0
    ERROR = 1
    USAGE = 2
    INTERRUPTED = 130


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
}


def load_command(name: str) -> Command | None:
    """The command's module, imported on demand; None when this build does not ship it."""
    module_name = f"cfsslpy.cli.{COMMANDS[name]}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return None
    command: Command = module.COMMAND
    return command


def usage_text() -> str:
    """cfssl's top-level usage (commands in a fixed order here; cfssl's come in Go map order)."""
    lines = ["Usage:", "Available commands:"]
    for name in COMMANDS:
        lines.append(f"\t{name}")
    lines.append("Top-level flags:")
    for name, flag in FLAGS.items():
        lines.append(f"  -{name}\n    \t{flag.help}")
    return "\n".join(lines) + "\n"


def command_help(command: Command) -> str:
    parser = help_parser(
        f"cfsslpy {command.name}", command.description or command.summary, command.usage, command.flags + ["loglevel"], command.example
    )
    return parser.format_help()


def main(argv: list[str] | None = None, io: IO | None = None, prog: str | None = None) -> int:
    """Run one invocation; returns the exit status. ``prog`` (argv[0]) selects cfssljson mode."""
    io = io or IO()
    words: list[str] = list(sys.argv[1:] if argv is None else argv)
    prog = program_name(prog if prog is not None else sys.argv[0])
    if prog in JSONSPLIT_NAMES:
        from cfsslpy.cli.jsonsplit import run_cfssljson

        return _guard(lambda: run_cfssljson(words, io), io)
    if prog in MKBUNDLE_NAMES:
        from cfsslpy.cli.mkbundle import run_mkbundle

        return _guard(lambda: run_mkbundle(words, io, prog), io)
    # cfssl parses the top level with Go's flag package and no flags: only -h and -- are understood there.
    try:
        _, words = tokenize(words, {})
    except HelpRequested:
        io.err(usage_text())
        return ExitStatus.SUCCESS
    except UsageError as exc:
        io.err(f"{exc.message}\n{usage_text()}")
        return ExitStatus.USAGE
    if not words:
        io.err("No command is given.\n" + usage_text())
        return ExitStatus.ERROR
    name, rest = words[0], words[1:]
    if name == "help":  # not in cfssl, which says "Command help is not defined."
        io.err(usage_text())
        return ExitStatus.SUCCESS
    if name == "json-split":  # cfssljson as a subcommand; it parses its own flags
        from cfsslpy.cli.jsonsplit import run_cfssljson

        return _guard(lambda: run_cfssljson(rest, io), io)
    if name == "mkbundle":  # cfssl-mkbundle as a subcommand; it parses its own flags
        from cfsslpy.cli.mkbundle import run_mkbundle

        return _guard(lambda: run_mkbundle(rest, io), io)
    command = load_command(name) if name in COMMANDS else None
    if command is None:
        io.err(f"Command {name} is not defined.\n" + usage_text())
        return ExitStatus.ERROR
    try:
        values, args = tokenize(rest)
    except HelpRequested:
        io.err(command_help(command))
        return ExitStatus.SUCCESS
    except UsageError as exc:
        io.err(f"{exc.message}\n{command_help(command)}")
        return ExitStatus.USAGE
    opts = Options.from_values(values)
    with cli_logging(io, opts.loglevel):
        log = logging.getLogger("cfsslpy.cli")
        for flag in sorted(opts.given - set(command.flags) - {"loglevel"}):
            log.warning("flag -%s has no effect on %s", flag, command.name)
        return _guard(lambda: command.run(opts, args, io), io, command)


def _guard(run: Callable[[], int], io: IO, command: Command | None = None) -> int:
    """The one place exceptions become output and exit statuses (:class:`ExitStatus`)."""
    try:
        return int(run())
    except CfsslError as exc:
        io.err(exc.to_json() + "\n")
    except PlainError as exc:
        io.err(exc.message + "\n")
    except UsageError as exc:
        io.err(exc.message + "\n" + (command_help(command) if command else ""))
        return ExitStatus.USAGE
    except KeyboardInterrupt:
        io.err("interrupted\n")
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:
        return ExitStatus.ERROR
    except Exception as exc:  # a bug: say so in one line; the traceback only on request
        if io.environ.get("CFSSLPY_DEBUG"):
            io.err(traceback.format_exc())
        io.err(f"internal error: {type(exc).__name__}: {exc} (set CFSSLPY_DEBUG=1 for a traceback)\n")
    return ExitStatus.ERROR
