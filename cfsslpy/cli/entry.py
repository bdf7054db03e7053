"""Process entry points (console scripts, ``python -m cfsslpy``, the executable's launcher).

Kept free of imports so ``version`` answers without loading the CLI, and ending with ``os._exit`` once
stdout and stderr are flushed: every file the CLI writes is closed (atomically renamed) before ``main``
returns, so the interpreter's teardown (tens of milliseconds of garbage collection) buys nothing.
"""

from __future__ import annotations

import os
import sys

from cfsslpy.cli.progs import PROGRAMS, program_name

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~8 ms at startup
if TYPE_CHECKING:
    from typing import NoReturn


def _finish(status: int) -> NoReturn:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            status = status or 1
    os._exit(status)


def entry() -> NoReturn:
    if sys.argv[1:] == ["version"] and program_name(sys.argv[0]) not in PROGRAMS:
        from cfsslpy.versioninfo import version_text

        sys.stdout.write(version_text())
        _finish(0)
    from cfsslpy.cli.main import main

    _finish(main())


def entry_jsonsplit() -> NoReturn:
    from cfsslpy.cli.main import main

    _finish(main(prog="cfssljson"))
