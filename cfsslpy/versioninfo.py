"""Version text, importable without any other module (the ``version`` fast path uses it)."""

from __future__ import annotations

import sys

from cfsslpy import __version__

CFSSL_COMPAT_VERSION = "1.6.5"  # the cfssl release whose CLI and API cfsslpy follows


def version_text() -> str:
    """``Version`` is the cfssl compatibility level, ``Revision`` our own release, ``Runtime`` the interpreter."""
    v = sys.version_info
    return f"Version: {CFSSL_COMPAT_VERSION}\nRevision: cfsslpy-{__version__}\nRuntime: python{v.major}.{v.minor}.{v.micro}\n"
