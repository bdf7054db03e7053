"""Process entry points (console scripts, ``python -m cfsslpy``, the executable's launcher).

Kept free of imports so ``version`` answers without loading the CLI, and ending with ``os._exit`` once
stdout and stderr are flushed: every file the CLI writes is closed (atomically renamed) before ``main``
returns, so the interpreter's teardown (tens of milliseconds of garbage collection) buys nothing.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~8 ms at startup
if TYPE_CHECKING:
    from typing import NoReturn

JSONSPLIT_NAMES = ("cfssljson", "cfssljson-py", "json-split")
MKBUNDLE_NAMES = ("mkbundle", "cfssl-mkbundle", "mkbundle-py")  # links that run mkbundle with its own flag set


def _finish(status: int) -> NoReturn:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            status = status or 1
    os._exit(status)


def _prog() -> str:
    name = os.path.basename(sys.argv[0])
    return name[:-4] if name.endswith(".exe") else name


def entry() -> NoReturn:
    if sys.argv[1:] == ["version"] and _prog() not in JSONSPLIT_NAMES + MKBUNDLE_NAMES:
        from cfsslpy.versioninfo import version_text

        sys.stdout.write(version_text())
        _finish(0)
    from cfsslpy.cli.main import main

    _finish(main())


def entry_jsonsplit() -> NoReturn:
    from cfsslpy.cli.main import main

    _finish(main(prog="cfssljson"))
