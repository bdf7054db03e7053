"""The program names that select a face other than cfssl's (cfssljson, mkbundle), and how argv[0] is read.

Imports nothing but ``os``: :mod:`cfsslpy.cli.entry` reads it before deciding whether to load the CLI at all,
and :mod:`cfsslpy.cli.main` dispatches on it.
"""

from __future__ import annotations

import os

JSONSPLIT_NAMES = ("cfssljson", "cfssljson-py", "json-split")
MKBUNDLE_NAMES = ("mkbundle", "cfssl-mkbundle", "mkbundle-py")  # links that run mkbundle with its own flag set
MULTIROOTCA_NAMES = ("multirootca", "cfssl-multirootca", "multirootca-py")  # links that run multirootca

# argv[0] names that run one command (cfsslpy.cli.main.COMMANDS) with its own flag set instead of cfssl's command line
PROGRAMS: dict[str, str] = {
    **dict.fromkeys(JSONSPLIT_NAMES, "json-split"),
    **dict.fromkeys(MKBUNDLE_NAMES, "mkbundle"),
    **dict.fromkeys(MULTIROOTCA_NAMES, "multirootca"),
}


def program_name(argv0: str) -> str:
    """The base name of ``argv0`` without a Windows ``.exe``."""
    name = os.path.basename(argv0)
    return name[:-4] if name.endswith(".exe") else name
