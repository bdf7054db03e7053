"""The Go-isms of cfssl's JSON and durations that users can observe (reference §0, §1.1, §3.4).

* Output: compact, ``<``/``>``/``&`` escaped as ``\\u003c``..., non-ASCII raw, PEM strings as they are.
* Input: object keys match struct fields exactly or, failing that, case-insensitively (Go's
  encoding/json), later keys overwrite earlier ones; type mismatches produce Go's error wording.
* Durations: Go ``time.ParseDuration`` syntax and ``Duration.String()`` formatting.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from cfsslpy.errors import go_json_dumps

__all__ = [
    "go_json_dumps",
    "loads",
    "JSONDecodeError",
    "fold_keys",
    "type_error",
    "parse_duration",
    "format_duration",
    "NANOSECOND",
    "SECOND",
    "MINUTE",
    "HOUR",
]


class JSONDecodeError(ValueError):
    """A JSON document that cannot be decoded; ``str()`` is Go-like wording."""


def loads(data: bytes | str) -> Any:
    """Parse JSON, rejecting NaN/Infinity and duplicate-free semantics as Go does (last key wins)."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONDecodeError("invalid character in JSON input (not UTF-8)") from exc
    else:
        text = data
    if text.startswith("\ufeff"):
        raise JSONDecodeError("invalid character 'ï' looking for beginning of value")
    if not text.strip():
        raise JSONDecodeError("unexpected end of JSON input")

    def _no_constants(name: str) -> Any:
        raise JSONDecodeError(f"invalid character '{name[0]}' looking for beginning of value")

    try:
        return json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            raise JSONDecodeError("unexpected end of JSON input") from None
        char = text[exc.pos]
        raise JSONDecodeError(
            f"invalid character {_go_quote_char(char)} {_go_context(exc.msg)} (offset {exc.pos + 1})"
        ) from None
    except RecursionError:
        raise JSONDecodeError("exceeded max depth") from None


def _go_quote_char(char: str) -> str:
    if char == "'":
        return "'\\''"
    if char == '"':
        return "'\"'"
    if char.isprintable():
        return f"'{char}'"
    return repr(char)


def _go_context(msg: str) -> str:
    if "property name" in msg:
        return "looking for beginning of object key string"
    if "delimiter" in msg:
        return "after object key:value pair" if "','" in msg else "after object key"
    return "looking for beginning of value"


_GO_TYPE_NAMES = {
    str: "string",
    bool: "bool",
    int: "number",
    float: "number",
    list: "array",
    dict: "object",
    type(None): "null",
}


def type_error(value: Any, struct: str, fieldname: str, go_type: str) -> JSONDecodeError:
    """Go's ``json: cannot unmarshal X into Go struct field S.f of type T``."""
    kind = _GO_TYPE_NAMES.get(type(value), "value")
    return JSONDecodeError(f"json: cannot unmarshal {kind} into Go struct field {struct}.{fieldname} of type {go_type}")


def fold_keys(obj: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """Map the keys of a decoded JSON object onto canonical field names, Go style.

    A key equal to a field name wins; otherwise a case-insensitive match is used. Keys that match no field
    are dropped (Go ignores unknown keys). When several keys land on one field, the later one wins.
    """
    names = list(fields)
    exact = set(names)
    folded = {name.casefold(): name for name in reversed(names)}
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key in exact:
            out[key] = value
            continue
        name = folded.get(key.casefold())
        if name is not None:
            out[name] = value
    return out


# ---------------------------------------------------------------------------------------------------------
# Durations (integer nanoseconds, like Go's time.Duration)

NANOSECOND = 1
MICROSECOND = 1000 * NANOSECOND
MILLISECOND = 1000 * MICROSECOND
SECOND = 1000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
_MAX_DURATION = (1 << 63) - 1

_UNITS = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "µs": MICROSECOND,  # U+00B5
    "μs": MICROSECOND,  # U+03BC
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}
_COMPONENT = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")


def parse_duration(text: str) -> int:
    """Go's ``time.ParseDuration``: returns nanoseconds; raises ValueError with Go's message."""
    original = text
    invalid = ValueError(f'time: invalid duration "{original}"')
    neg = False
    if text[:1] in ("-", "+"):
        neg = text[0] == "-"
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        raise invalid
    total = 0
    while text:
        match = _COMPONENT.match(text)
        if match is None:
            raise invalid
        whole, frac, unit = match.group(1), match.group(2), match.group(3)
        if not whole and not frac:
            raise invalid
        if not unit:
            raise ValueError(f'time: missing unit in duration "{original}"')
        # the unit ends at the next digit or dot; _COMPONENT's [^\d.]* already stops there
        if unit not in _UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{original}"')
        scale = _UNITS[unit]
        value = int(whole or "0") * scale
        if frac:
            value += int(frac) * scale // (10 ** len(frac))
        total += value
        if total > _MAX_DURATION + (1 if neg else 0):
            raise invalid
        text = text[match.end() :]
    return -total if neg else total


def format_duration(ns: int) -> str:
    """Go's ``Duration.String()``: ``43800h0m0s``, ``1.5s``, ``100ms``, ``0s``."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < SECOND:
        if u < MICROSECOND:
            return f"{sign}{u}ns"
        if u < MILLISECOND:
            return f"{sign}{_frac(u, MICROSECOND)}µs"
        return f"{sign}{_frac(u, MILLISECOND)}ms"
    hours, rest = divmod(u, HOUR)
    minutes, rest = divmod(rest, MINUTE)
    seconds = _frac(rest, SECOND)
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{sign}{minutes}m{seconds}s"
    return f"{sign}{seconds}s"


def _frac(value: int, unit: int) -> str:
    whole, rest = divmod(value, unit)
    if not rest:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{str(rest).rjust(digits, '0').rstrip('0')}"
