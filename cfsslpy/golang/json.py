"""The Go-isms of cfssl's JSON and durations that users can observe (reference §0, §1.1, §3.4).

* Output: compact, ``<``/``>``/``&`` escaped as ``\\u003c``..., non-ASCII raw, PEM strings as they are.
* Input: object keys match struct fields exactly or, failing that, case-insensitively (Go's
  encoding/json), later keys overwrite earlier ones; type mismatches produce Go's error wording.
* Durations: Go ``time.ParseDuration`` syntax and ``Duration.String()`` formatting.
* Times: Go's ``time.Time`` JSON form (strict RFC 3339), parsed the same way on every Python version.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from itertools import accumulate
from typing import Any

from cfsslpy.errors import go_json_dumps

__all__ = [
    "go_json_dumps",
    "loads",
    "JSONDecodeError",
    "MAX_DEPTH",
    "too_deep",
    "fold_keys",
    "type_error",
    "parse_duration",
    "parse_time",
    "parse_date",
    "format_duration",
    "NANOSECOND",
    "SECOND",
    "MINUTE",
    "HOUR",
]


class JSONDecodeError(ValueError):
    """A JSON document that cannot be decoded; ``str()`` is Go-like wording.

    ``offset`` is Go's ``SyntaxError.Offset`` when known: the bytes read when the error was found (the bad
    byte is the last of them; at the end of the input, the input's length). :mod:`cfsslpy.golang.jsonpos`
    turns it into a line and column.
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


def _no_constants(name: str) -> Any:
    raise ValueError(name)  # NaN / Infinity are not JSON: Go's scanner words the error


# One decoder for every document: json.loads with any keyword builds a new JSONDecoder per call.
_DECODER = json.JSONDecoder(parse_constant=_no_constants)


def loads(data: bytes | str) -> Any:
    """Parse JSON as Go's ``json.Unmarshal`` would: same accepted syntax, same error wording.

    NaN/Infinity are rejected; duplicate keys keep the last value; invalid UTF-8 inside strings becomes
    U+FFFD, and so does a ``\\u`` escape of a lone UTF-16 surrogate (Go replaces both; a Python string
    holding a surrogate cannot be encoded to UTF-8 later). On a syntax error the document is re-scanned
    with Go's scanner rules so the message is Go's (``invalid character 'x' looking for beginning of
    value``, ``unexpected end of JSON input``), without Python's offsets.

    Nesting deeper than :data:`MAX_DEPTH` is refused before Python's recursive decoder sees the document
    (``invalid character '[' exceeded max depth``, Go's wording; Go's own limit is 10000).
    """
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    if too_deep(raw):
        raise _syntax_error(raw, "exceeded max depth")
    text = raw.decode("utf-8", "replace")
    if _SURROGATE_ESCAPE.search(text):
        text = _LONE_SURROGATE.sub(_surrogate_replacement, text)

    try:
        if text.startswith("\ufeff"):
            raise ValueError("BOM")  # Go has no BOM exception: the scanner below words the error
        return _DECODER.decode(text)
    except ValueError:  # json.JSONDecodeError included
        raise _syntax_error(raw, "unexpected end of JSON input") from None
    except RecursionError:  # not reached after too_deep(); a last line of defence, never a traceback
        raise JSONDecodeError("exceeded max depth") from None


# Python's json module recurses once per nesting level and fails with RecursionError near 1000 levels
# (fewer when the caller's stack is already deep: a WSGI handler, a thread). No cfssl document nests
# beyond 5, so 512 leaves room for any real input and for the caller's own frames.
MAX_DEPTH = 512

# A JSON string (its closing quote optional, so an unterminated string swallows the rest as Go's scanner
# would), for blanking strings out before the brackets are counted.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_BRACKET_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def too_deep(raw: bytes) -> bool:
    """Whether arrays and objects in ``raw`` nest deeper than :data:`MAX_DEPTH`, judged without recursion.

    Linear and mostly in C: a document with at most MAX_DEPTH opening brackets is accepted at once;
    otherwise strings are blanked out and the running depth of the remaining brackets is measured. For a
    malformed document the answer only decides who words the error: :func:`go_syntax_error` then
    reports whichever of the syntax error and the depth comes first, as Go's scanner does.
    """
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0) > MAX_DEPTH


# "\uD8xx" style escapes. Left to right, an escaped backslash is consumed whole, so "\\ud800" (a
# backslash, then the letters ud800) is not mistaken for an escape.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile(r"\\\\|\\u[dD][89abAB][0-9a-fA-F]{2}(?:\\u[dD][c-fC-F][0-9a-fA-F]{2})?|\\u[dD][c-fC-F][0-9a-fA-F]{2}")


def _surrogate_replacement(match: re.Match[str]) -> str:
    """Go's unquote: a high surrogate followed by a low one is a pair; any other surrogate is U+FFFD."""
    escape = match.group(0)
    return escape if len(escape) in (2, 12) else "\\ufffd"


_WS = b" \t\r\n"
_HEX = b"0123456789abcdefABCDEF"
_DIGITS = b"0123456789"


class _Syntax(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


def go_syntax_error(data: bytes) -> str | None:
    """The message Go's ``encoding/json`` scanner gives for ``data``, or None when the syntax is valid."""
    found = go_syntax_error_at(data)
    return found[0] if found else None


def go_syntax_error_at(data: bytes) -> tuple[str, int] | None:
    """Go's scanner message for ``data`` and its ``Offset`` (bytes read, the bad one included), or None.

    Iterative, like Go's scanner (a stack of open containers, no recursion), so any depth is safe; past
    :data:`MAX_DEPTH` the opening bracket is refused as Go refuses its 10001st.
    """
    try:
        _scan_document(data)
    except _Syntax as exc:
        return str(exc), exc.offset
    except IndexError:
        return "unexpected end of JSON input", len(data)
    return None


def _syntax_error(raw: bytes, fallback: str) -> JSONDecodeError:
    found = go_syntax_error_at(raw)
    return JSONDecodeError(*found) if found else JSONDecodeError(fallback)


def _skip_ws(data: bytes, i: int) -> int:
    while i < len(data) and data[i] in _WS:
        i += 1
    return i


def _bad(data: bytes, i: int, context: str, *, eof_as_space: bool = False) -> _Syntax:
    """A syntax error at ``data[i]``. At the end of the input Go's scanner is fed one space, which is
    still an error inside a literal, number or escape (``eof_as_space``), else "unexpected end"."""
    if i >= len(data):
        if eof_as_space:
            return _Syntax(f"invalid character ' ' {context}", len(data))
        return _Syntax("unexpected end of JSON input", len(data))
    return _Syntax(f"invalid character {_go_quote_byte(data[i])} {context}", i + 1)


_VALUE = "looking for beginning of value"


def _scan_document(data: bytes) -> None:
    """Scan one JSON value and trailing whitespace; _Syntax (Go's wording) at the first error."""
    open_containers = bytearray()  # b"[" or b"{" per level, innermost last
    i = _skip_ws(data, 0)
    while True:
        # A value starts at i.
        if i < len(data) and data[i] in b"[{":
            open_containers.append(data[i])
            if len(open_containers) > MAX_DEPTH:
                raise _bad(data, i, "exceeded max depth")
            close = ord("]") if data[i] == ord("[") else ord("}")
            i = _skip_ws(data, i + 1)
            if i < len(data) and data[i] == close:
                open_containers.pop()
                i += 1
            elif close == ord("}"):
                i = _scan_key(data, i)
                continue
            else:
                continue
        else:
            i = _scan_scalar(data, i)
        # A value ended at i: close containers until one continues with a comma.
        while True:
            i = _skip_ws(data, i)
            if not open_containers:
                if i < len(data):
                    raise _Syntax(f"invalid character {_go_quote_byte(data[i])} after top-level value", i + 1)
                return
            in_array = open_containers[-1] == ord("[")
            if i < len(data) and data[i] == (ord("]") if in_array else ord("}")):
                open_containers.pop()
                i += 1
                continue
            if i >= len(data) or data[i] != ord(","):
                raise _bad(data, i, "after array element" if in_array else "after object key:value pair")
            i = _skip_ws(data, i + 1)
            if not in_array:
                i = _scan_key(data, i)
            break


def _scan_key(data: bytes, i: int) -> int:
    """An object key and its colon at ``data[i]``; returns where the value starts."""
    if i >= len(data) or data[i] != ord('"'):
        raise _bad(data, i, "looking for beginning of object key string")
    i = _skip_ws(data, _scan_string(data, i + 1))
    if i >= len(data) or data[i] != ord(":"):
        raise _bad(data, i, "after object key")
    return _skip_ws(data, i + 1)


def _scan_scalar(data: bytes, i: int) -> int:
    if i >= len(data):
        raise _Syntax("unexpected end of JSON input", len(data))
    c = data[i]
    if c == ord('"'):
        return _scan_string(data, i + 1)
    if c == ord("-") or c in _DIGITS:
        return _scan_number(data, i)
    for word in (b"true", b"false", b"null"):
        if c == word[0]:
            for k in range(1, len(word)):
                if i + k >= len(data) or data[i + k] != word[k]:
                    expected = chr(word[k])
                    raise _bad(data, i + k, f"in literal {word.decode()} (expecting '{expected}')", eof_as_space=True)
            return i + len(word)
    raise _bad(data, i, _VALUE)


def _scan_string(data: bytes, i: int) -> int:
    while True:
        c = data[i]
        if c == ord('"'):
            return i + 1
        if c < 0x20:
            raise _bad(data, i, "in string literal")
        if c == ord("\\"):
            i += 1
            if i < len(data) and data[i] == ord("u"):
                for k in range(1, 5):
                    if i + k >= len(data) or data[i + k] not in _HEX:
                        raise _bad(data, i + k, "in \\u hexadecimal character escape", eof_as_space=True)
                i += 5
                continue
            if i >= len(data) or data[i] not in b'"\\/bfnrt':
                raise _bad(data, i, "in string escape code", eof_as_space=True)
        i += 1


def _scan_number(data: bytes, i: int) -> int:
    if data[i] == ord("-"):
        i += 1
        if i >= len(data) or data[i] not in _DIGITS:
            raise _bad(data, i, "in numeric literal", eof_as_space=True)
    if data[i] == ord("0"):
        i += 1
    else:
        while i < len(data) and data[i] in _DIGITS:
            i += 1
    if i < len(data) and data[i] == ord("."):
        i += 1
        if i >= len(data) or data[i] not in _DIGITS:
            raise _bad(data, i, "after decimal point in numeric literal", eof_as_space=True)
        while i < len(data) and data[i] in _DIGITS:
            i += 1
    if i < len(data) and data[i] in b"eE":
        i += 1
        if i < len(data) and data[i] in b"+-":
            i += 1
        if i >= len(data) or data[i] not in _DIGITS:
            raise _bad(data, i, "in exponent of numeric literal", eof_as_space=True)
        while i < len(data) and data[i] in _DIGITS:
            i += 1
    return i


def _go_quote_byte(byte: int) -> str:
    return _go_quote_char(chr(byte))


def _go_quote_char(char: str) -> str:
    """Go's ``quoteChar``: the offending byte as a rune in single quotes, escaped like strconv.Quote."""
    if char == "'":
        return "'\\''"
    if char == '"':
        return "'\"'"
    escapes = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v", "\\": "\\\\"}
    if char in escapes:
        return f"'{escapes[char]}'"
    code = ord(char)
    if code < 0x20 or code == 0x7F:
        return f"'\\x{code:02x}'"
    if 0x80 <= code <= 0xA0 or code == 0xAD:
        return f"'\\u{code:04x}'"
    return f"'{char}'"


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
    """Go's ``json: cannot unmarshal X into Go struct field S.f of type T``.

    ``fieldname`` is the dotted JSON path of the field from the document root (Go >= 1.14 wording), and
    ``struct`` the Go struct that declares its last element. With no field (the document itself has the
    wrong type) the wording is ``... into Go value of type T``. A non-integral number into an integer type
    shows the number, as Go does (``number 1.5``).
    """
    kind = _GO_TYPE_NAMES.get(type(value), "value")
    if kind == "number" and go_type in _GO_INT_TYPES and (isinstance(value, float) and not value.is_integer()):
        kind = f"number {value!r}"
    if not fieldname:
        return JSONDecodeError(f"json: cannot unmarshal {kind} into Go value of type {go_type}")
    return JSONDecodeError(f"json: cannot unmarshal {kind} into Go struct field {struct}.{fieldname} of type {go_type}")


_GO_INT_TYPES = frozenset({"int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "time.Duration"})


class KeyFolder:
    """Go's matching of a JSON object's keys to a struct's fields, for one set of field names (its tables made
    once): a key equal to a field name wins; otherwise a case-insensitive match (the first declared field of
    that spelling); keys that match no field are dropped (Go ignores unknown keys). When several keys land on
    one field, the later one wins."""

    __slots__ = ("exact", "folded")

    def __init__(self, fields: Iterable[str]) -> None:
        names = list(fields)
        self.exact = frozenset(names)
        self.folded = {name.casefold(): name for name in reversed(names)}

    def fold(self, obj: dict[str, Any]) -> dict[str, Any]:
        exact, folded = self.exact, self.folded
        out: dict[str, Any] = {}
        for key, value in obj.items():
            if key in exact:
                out[key] = value
                continue
            name = folded.get(key.casefold())
            if name is not None:
                out[name] = value
        return out


def fold_keys(obj: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """Map the keys of a decoded JSON object onto canonical field names, Go style (see :class:`KeyFolder`)."""
    return KeyFolder(fields).fold(obj)


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
_DIGIT = frozenset("0123456789")


def _go_quote(text: str) -> str:
    """``time``'s own quote(): ASCII as is (``"`` and ``\\`` escaped), anything else as ``\\xNN`` bytes."""
    out = ['"']
    for char in text:
        if char < " " or ord(char) >= 0x80:
            out.extend(f"\\x{byte:02x}" for byte in char.encode("utf-8", "surrogatepass"))
        elif char in '"\\':
            out.append("\\" + char)
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def parse_duration(text: str) -> int:
    """Go's ``time.ParseDuration``, step for step: returns nanoseconds; ValueError with Go's message.

    ``[-+]?([0-9]*(\\.[0-9]*)?[a-z]+)+`` with units ns, us, µs, μs, ms, s, m, h; "0" alone needs no unit;
    fractions are scaled in float64 exactly as Go does; overflow past int64 is an invalid duration.
    """
    invalid = ValueError(f"time: invalid duration {_go_quote(text)}")
    s = text
    neg = False
    if s and s[0] in "-+":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise invalid
    total = 0
    while s:
        if not (s[0] == "." or s[0] in _DIGIT):
            raise invalid
        # leadingInt: [0-9]* (overflow past 1<<63 is an error)
        i = 0
        whole = 0
        while i < len(s) and s[i] in _DIGIT:
            whole = whole * 10 + int(s[i])
            if whole > 1 << 63:
                raise invalid
            i += 1
        pre = i > 0
        s = s[i:]
        frac, scale, post = 0, 1.0, False
        if s and s[0] == ".":
            s = s[1:]
            # leadingFraction: digits past int64 precision are consumed but ignored
            i, overflow = 0, False
            while i < len(s) and s[i] in _DIGIT:
                if not overflow:
                    if frac > ((1 << 63) - 1) // 10:
                        overflow = True
                    else:
                        candidate = frac * 10 + int(s[i])
                        if candidate > 1 << 63:
                            overflow = True
                        else:
                            frac = candidate
                            scale *= 10
                i += 1
            post = i > 0
            s = s[i:]
        if not pre and not post:
            raise invalid  # no digits, e.g. ".s"
        i = 0
        while i < len(s) and s[i] != "." and s[i] not in _DIGIT:
            i += 1
        if i == 0:
            raise ValueError(f"time: missing unit in duration {_go_quote(text)}")
        unit_name, s = s[:i], s[i:]
        unit = _UNITS.get(unit_name)
        if unit is None:
            raise ValueError(f"time: unknown unit {_go_quote(unit_name)} in duration {_go_quote(text)}")
        if whole > (1 << 63) // unit:
            raise invalid
        value = whole * unit
        if frac > 0:
            value += int(float(frac) * (float(unit) / scale))
            if value > 1 << 63:
                raise invalid
        total += value
        if total > 1 << 63:
            raise invalid
    if neg:
        return -total
    if total > _MAX_DURATION:
        raise invalid
    return total


# Go's parseStrictRFC3339: four-digit year, "T", seconds required, "." and any number of fraction digits
# (nanoseconds kept, the rest ignored), then "Z" or a numeric "+hh:mm" zone.
_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:Z|([+-])(\d{2}):(\d{2}))", re.ASCII)


def parse_time(text: str) -> dt.datetime:
    """Go's ``time.Time`` ``UnmarshalJSON`` (strict RFC 3339) as an aware UTC datetime, truncated to microseconds.

    Written out rather than left to ``datetime.fromisoformat``, which accepts far more than RFC 3339 from
    Python 3.11 on and far less (no ``Z``, only 3 or 6 fraction digits) on 3.10. JSONDecodeError with Go's
    wording when ``text`` is not RFC 3339 or names a day, time or zone that does not exist.
    """
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise JSONDecodeError(f"parsing time {text!r} as RFC 3339")
    year, month, day, hour, minute, second, fraction, sign, zone_hour, zone_minute = m.groups()
    offset = dt.timedelta(0)
    if sign:
        if int(zone_hour) >= 24 or int(zone_minute) >= 60:
            raise JSONDecodeError(f"parsing time {text!r}: time zone offset out of range")
        offset = dt.timedelta(hours=int(zone_hour), minutes=int(zone_minute)) * (-1 if sign == "-" else 1)
    micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
    try:
        local = dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, dt.timezone(offset))
        return local.astimezone(dt.timezone.utc)
    except (ValueError, OverflowError):  # Feb 30, hour 24, or beyond datetime's years 1..9999 once in UTC
        raise JSONDecodeError(f"parsing time {text!r}: out of range") from None


_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)


def parse_date(text: str) -> dt.datetime:
    """Go's ``time.Parse("2006-01-02", text)``: that day's midnight, UTC; ValueError for anything else.

    Not ``date.fromisoformat``, which from Python 3.11 on also takes ``20240102`` and ``2024-W01-1``.
    """
    m = _DATE.fullmatch(text)
    if m is None:
        raise ValueError(f'parsing time {text!r} as "2006-01-02"')
    year, month, day = (int(part) for part in m.groups())
    return dt.datetime(year, month, day, tzinfo=dt.timezone.utc)  # ValueError for a day that does not exist


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
