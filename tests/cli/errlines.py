"""Reading the CLI's stderr: the error line is the last line that is not a ``hint:`` (cfsslpy's hints, and a
command's usage after an argument error, follow the error as ``hint:`` lines)."""

from __future__ import annotations


def error_line(stderr: str) -> str:
    """The error line: the last line of stderr before its trailing ``hint:`` lines."""
    lines = stderr.strip().splitlines()
    while len(lines) > 1 and lines[-1].startswith("hint: "):
        lines.pop()
    return lines[-1] if lines else ""


def hints(stderr: str) -> list[str]:
    """The trailing ``hint:`` lines, without their prefix."""
    lines = stderr.strip().splitlines()
    out: list[str] = []
    while len(lines) > 1 and lines[-1].startswith("hint: "):
        out.insert(0, lines.pop().removeprefix("hint: "))
    return out


def without_hints(stderr: str) -> str:
    """``stderr`` as cfssl would print it: cfsslpy's trailing ``hint:`` lines removed (the rest byte for byte)."""
    lines = stderr.splitlines(keepends=True)
    while len(lines) > 1 and lines[-1].startswith("hint: "):
        lines.pop()
    return "".join(lines)
