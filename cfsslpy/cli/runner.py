"""Run one command: Go's flag parsing, its typed options, ``-loglevel``, the handler, and every outcome turned
into output and an exit status, in one place (:func:`guard`).

Exit statuses (:class:`ExitStatus`): 0 success, 1 error (cfssl JSON or plain text on stderr), 2 usage,
130 interrupted. Tracebacks are shown only with ``CFSSLPY_DEBUG=1``.

What follows an error on stderr is ``hint:`` lines only (the error's hint; after an :class:`ArgumentError`
the command's usage), so the error stays the last line that is not a hint. A usage error (exit 2) is
followed by the command's whole ``-h``, as Go's flag package prints its usage.
"""

from __future__ import annotations

import enum
import logging
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from cfsslpy.cli.command import ArgumentError, Command
from cfsslpy.cli.context import IO
from cfsslpy.cli.flags import FLAGS, help_parser
from cfsslpy.cli.goflag import HelpRequested, parse
from cfsslpy.cli.logs import cli_logging
from cfsslpy.errors import CfsslError, Error, PlainError, UsageError


class ExitStatus(enum.IntEnum):
    SUCCESS = 0
    ERROR = 1
    USAGE = 2
    INTERRUPTED = 130


def command_help(command: Command[Any], prog: str) -> str:
    """The command's ``-h``: its own text, or its flags in groups with their defaults and an example."""
    if command.help is not None:
        return command.help(prog)
    flagset = command.options.flagset
    names = command.flags + [name for name in ("loglevel",) if name in flagset and name not in command.flags]
    flags = [flagset[name] for name in names]
    description = command.description or command.summary
    return help_parser(prog, description, command.usage, flags, command.example, cfssl=flagset is FLAGS).format_help()


def usage_line(command: Command[Any], prog: str) -> str:
    """The command's usage line(s), shown after an argument error, and where its flags are listed: hint lines,
    so that the error stays the last line that is not a hint (what scripts and cfssl-parity checks read)."""
    lines = command.usage.splitlines()
    return f"hint: usage: {lines[0]}\n" + "".join(f"hint: {line}\n" for line in lines[1:]) + f"hint: '{prog} -h' lists its flags\n"


def stray_flags(args: list[str], flagset: Mapping[str, Any]) -> list[str]:
    """The flags given after the first positional argument, where Go's parser no longer reads flags."""
    stray = []
    for arg in args[1:]:
        if arg == "--":
            break
        name = arg.lstrip("-").partition("=")[0]
        if arg.startswith("-") and (name in flagset or name in ("h", "help")):
            stray.append("-" + name)
    return stray


def run_command(command: Command[Any], argv: list[str], io: IO, prog: str) -> int:
    """Parse ``argv`` with the command's flag set, bind its options, then run it under ``-loglevel``.

    In cfssl's flag set every flag is accepted by every command: one the command does not read gets a WARNING.
    A flag after the arguments is read as an argument (Go stops at the first one): when the command then
    fails, the error's hint says to move it.
    """

    def invoke() -> int:
        values, args = parse(argv, command.options.flagset)
        opts = command.options.from_values(values)
        with cli_logging(io, int(values.get("loglevel", FLAGS["loglevel"].default))):
            log = logging.getLogger("cfsslpy.cli")
            for name in sorted(set(values) - set(command.options.flag_names) - {"loglevel"}):
                log.warning("flag -%s has no effect on %s", name, command.name)
            try:
                return command.run(opts, args, io)
            except Error as exc:
                stray = [] if command.flags_anywhere else stray_flags(args, command.options.flagset)
                if stray and not exc.hint:
                    exc.hint = f"flags must come before arguments: move {', '.join(stray)} before {args[0]}"
                raise

    return guard(invoke, io, lambda: command_help(command, prog), lambda: usage_line(command, prog))


def guard(run: Callable[[], int], io: IO, usage: Callable[[], str] = str, brief: Callable[[], str] = str) -> int:
    """The one place exceptions become output and exit statuses (:class:`ExitStatus`); ``usage`` follows a
    usage error, ``brief`` (the usage line) an argument error."""
    try:
        return int(run())
    except HelpRequested:
        io.err(usage())
        return ExitStatus.SUCCESS
    except ArgumentError as exc:
        io.err(_lines(exc.message, exc) + brief())
    except CfsslError as exc:
        io.err(_lines(exc.to_json(), exc))
    except PlainError as exc:
        io.err(_lines(exc.message, exc))
    except UsageError as exc:
        io.err(_lines(exc.message, exc) + usage())
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


def _lines(text: str, exc: Error) -> str:
    """The error line, then its hint (if any) on a line of its own."""
    hint = exc.render_hint()
    return f"{text}\n{hint}\n" if hint else f"{text}\n"
