"""Go's ``strconv.Quote``: how Go's error messages print a string with ``%q``."""

from __future__ import annotations

_GO_QUOTE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def quote(text: str) -> str:
    """Go's ``strconv.Quote`` (``%q`` in Go's error messages)."""
    out = []
    for c in text:
        if c in _GO_QUOTE_ESCAPES:
            out.append(_GO_QUOTE_ESCAPES[c])
        elif c.isprintable():
            out.append(c)
        elif ord(c) < 0x80:
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}")
    return '"' + "".join(out) + '"'
