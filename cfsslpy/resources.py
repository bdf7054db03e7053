"""Access to the shipped ``assets/`` (embedded in the executable), through importlib.resources."""

from __future__ import annotations

import sys
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only annotations use it; importlib.abc.Traversable warns from 3.12 on, its new home is 3.11+
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable


def asset(*parts: str) -> Traversable:
    """The asset at ``assets/<parts...>``; works installed, from a source checkout and inside the pyz."""
    root = resources.files("cfsslpy_assets")
    for part in parts:
        root = root.joinpath(part)
    return root


def read_asset(*parts: str) -> bytes:
    return asset(*parts).read_bytes()
