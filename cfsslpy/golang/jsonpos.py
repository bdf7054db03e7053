"""Where in a JSON document an ``encoding/json`` error is: a line and a column for a person to look at.

Go's errors carry a byte offset (``SyntaxError.Offset``) and, for a value of the wrong type, a field path
(``Go struct field S.a.b``); neither is useful to someone with an editor. :func:`error_position` turns the
message of either kind, given the document it came from, into a 1-based (line, column), columns counted in
characters. It only looks at documents that already failed, so it favours clarity over speed; it never
recurses (a hostile document may nest deeply).
"""

from __future__ import annotations

import json
import re

from cfsslpy.golang.json import go_syntax_error_at

_WS = b" \t\r\n"
_TYPE_ERROR = re.compile(r"json: cannot unmarshal (\w+)(?: [^ ]+)? into Go (?:struct field ([^ ]+)|value) of type")


def line_column(data: bytes, index: int) -> tuple[int, int]:
    """The 1-based line and column (in characters) of byte ``index`` of ``data``."""
    index = max(0, min(index, len(data)))
    start = data.rfind(b"\n", 0, index) + 1
    return data.count(b"\n", 0, index) + 1, len(data[start:index].decode("utf-8", "replace")) + 1


def syntax_position(data: bytes) -> tuple[int, int] | None:
    """Where Go's scanner stops on ``data`` (the bad byte, or the end of the input), or None when it is valid."""
    found = go_syntax_error_at(data)
    if found is None:
        return None
    message, offset = found
    # at the end of the input Go's scanner reports the end, or a space it feeds itself there
    at_end = message == "unexpected end of JSON input" or (message.startswith("invalid character ' '") and offset == len(data))
    return line_column(data, len(data) if at_end else offset - 1)


def error_position(data: bytes, message: str) -> tuple[int, int] | None:
    """The position of the JSON error that ``message`` contains (Go's wording), or None if it names none.

    A syntax error is located by scanning ``data`` again (when its message is the one in ``message``); a
    type error by its field path: the first value of that JSON kind whose object keys end with the path
    (Go's path skips array indices, and older Go gives only the last field).
    """
    found = go_syntax_error_at(data)
    if found is not None:
        return syntax_position(data) if found[0] in message else None
    match = _TYPE_ERROR.search(message)
    if match is None:
        return None
    kind, field = match.groups()
    if not field:  # "into Go value of type T": the document itself
        root = _skip(data, 0)
        return line_column(data, root) if root < len(data) and _kind(data[root]) == kind else None
    index = locate(data, field.split(".")[1:], kind)
    return None if index is None else line_column(data, index)


def _kind(byte: int) -> str:
    if byte == ord('"'):
        return "string"
    if byte == ord("{"):
        return "object"
    if byte == ord("["):
        return "array"
    if byte in b"tf":
        return "bool"
    if byte == ord("n"):
        return "null"
    return "number"


def locate(data: bytes, path: list[str], kind: str) -> int | None:
    """Byte offset of the first value of ``kind`` whose object keys (from the root) end with ``path``.

    ``data`` is valid JSON. A walk with an explicit stack: each open container holds the key path of its
    values.
    """
    keys: list[str | None] = []  # per open container: the current key (None in an array)
    closers = bytearray()
    i = _skip(data, 0)
    while i < len(data):
        c = data[i]
        if c in b",:":
            if c == ord(",") and closers[-1] == ord("}"):
                keys[-1] = None  # a key comes next
            i = _skip(data, i + 1)
            continue
        if c in b"]}":
            closers.pop()
            keys.pop()
            i = _skip(data, i + 1)
            continue
        if closers and closers[-1] == ord("}") and keys[-1] is None:  # an object key
            end = _string_end(data, i)
            keys[-1] = json.loads(data[i:end].decode("utf-8", "replace"))
            i = _skip(data, end)
            continue
        named = [key for key in keys if key is not None]
        if _kind(c) == kind and (not path or named[-len(path) :] == path):
            return i
        if c in b"[{":
            closers.append(ord("]") if c == ord("[") else ord("}"))
            keys.append(None)
            i = _skip(data, i + 1)
            continue
        i = _skip(data, _scalar_end(data, i))
    return None


def _skip(data: bytes, i: int) -> int:
    while i < len(data) and data[i] in _WS:
        i += 1
    return i


def _string_end(data: bytes, i: int) -> int:
    """Past the closing quote of the string opening at ``data[i]``."""
    i += 1
    while data[i] != ord('"'):
        i += 2 if data[i] == ord("\\") else 1
    return i + 1


def _scalar_end(data: bytes, i: int) -> int:
    if data[i] == ord('"'):
        return _string_end(data, i)
    while i < len(data) and data[i] not in b",]} \t\r\n":
        i += 1
    return i
