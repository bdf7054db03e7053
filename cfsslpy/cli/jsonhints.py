"""Where in a JSON document an error is: the ``FILE:LINE:COLUMN`` hint the CLI adds to JSON errors.

A module of its own, light to import: cfssljson's face (``json-split``) uses it, and must start without
loading cryptography.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from cfsslpy.cli.context import IO
from cfsslpy.errors import Error
from cfsslpy.inputs import read_input


@contextmanager
def json_location(spec: str, data: bytes | None = None, io: IO | None = None) -> Iterator[None]:
    """An error raised in the block about the JSON document ``spec`` (its bytes ``data``, or the file read
    again) gets the hint ``FILE:LINE:COLUMN``: where the syntax error is, or the value of the wrong type.

    The error line itself is unchanged (cfssl's wording); stdin is named ``<stdin>``.
    """
    try:
        yield
    except Error as exc:
        if not exc.hint:
            exc.hint = json_hint(spec, data, exc.message, io)
        raise


def json_hint(spec: str, data: bytes | None, message: str, io: IO | None = None) -> str | None:
    """``FILE:LINE:COLUMN`` of the JSON error in ``message``, or None when it names none in that document."""
    if "json" not in message.lower() and "invalid character" not in message:
        return None
    if data is None:
        if spec in ("", "-"):
            return None
        try:
            data = read_input(spec, environ=io.environ if io else None, allow_prefixes=True)
        except (Error, OSError):
            return None
    if not data.strip():
        return None  # nothing to point at
    from cfsslpy.golang.jsonpos import error_position

    position = error_position(data, message)
    if position is None:
        return None
    name = "<stdin>" if spec == "-" else spec.removeprefix("file:")
    return f"{name}:{position[0]}:{position[1]}"
