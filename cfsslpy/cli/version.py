"""``version``: the cfssl version we are compatible with, our own version and the runtime."""

from __future__ import annotations

import platform

from cfsslpy import __version__
from cfsslpy.cli.command import Command, Options
from cfsslpy.cli.context import IO

CFSSL_COMPAT_VERSION = "1.6.5"


def version_text() -> str:
    return f"Version: {CFSSL_COMPAT_VERSION}\nRevision: cfsslpy-{__version__}\nRuntime: python{platform.python_version()}\n"


def run(opts: Options, args: list[str], io: IO) -> int:
    io.out(version_text())
    return 0


COMMAND = Command(name="version", summary="print the version", usage="cfsslpy version", flags=[], example="cfsslpy version", run=run)
