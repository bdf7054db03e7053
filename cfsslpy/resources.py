"""Access to the shipped ``assets/`` (embedded in the executable), through importlib.resources."""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable


def asset(*parts: str) -> Traversable:
    """The asset at ``assets/<parts...>``; works installed, from a source checkout and inside the pyz."""
    root = resources.files("cfsslpy_assets")
    for part in parts:
        root = root.joinpath(part)
    return root


def read_asset(*parts: str) -> bytes:
    return asset(*parts).read_bytes()
