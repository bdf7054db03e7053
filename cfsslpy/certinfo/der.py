"""A minimal DER walker with Go ``encoding/asn1``'s strictness (definite, minimal lengths), and Go's decoding
of an ASN.1 value into ``interface{}`` (attribute values in names and CSR attributes).

Errors are :class:`ASN1Error` whose text follows Go's wording where it is known; the callers in this package
turn them into cfssl's typed errors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cfsslpy.golang.strconv import quote
from cfsslpy.x509util import b64


class ASN1Error(ValueError):
    """Malformed DER, or a value Go's decoder refuses; the text follows Go's wording where it is known."""


UNIVERSAL, APPLICATION, CONTEXT, PRIVATE = 0, 1, 2, 3

TAG_BOOLEAN = 1
TAG_INTEGER = 2
TAG_BIT_STRING = 3
TAG_OCTET_STRING = 4
TAG_OID = 6
TAG_UTF8_STRING = 12
TAG_SEQUENCE = 16
TAG_SET = 17
TAG_NUMERIC_STRING = 18
TAG_PRINTABLE_STRING = 19
TAG_T61_STRING = 20
TAG_IA5_STRING = 22
TAG_UTC_TIME = 23
TAG_GENERALIZED_TIME = 24
TAG_BMP_STRING = 30


@dataclass(frozen=True)
class TLV:
    cls: int
    constructed: bool
    tag: int
    content: bytes
    raw: bytes

    def is_universal(self, tag: int) -> bool:
        return self.cls == UNIVERSAL and self.tag == tag


def read_tlv(data: bytes, pos: int = 0) -> tuple[TLV, int]:
    start = pos
    if pos >= len(data):
        raise ASN1Error("asn1: syntax error: sequence truncated")
    first = data[pos]
    pos += 1
    cls, constructed, tag = first >> 6, bool(first & 0x20), first & 0x1F
    if tag == 0x1F:
        tag = 0
        while True:
            if pos >= len(data):
                raise ASN1Error("asn1: syntax error: data truncated")
            byte = data[pos]
            pos += 1
            tag = (tag << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
    if pos >= len(data):
        raise ASN1Error("asn1: syntax error: data truncated")
    length = data[pos]
    pos += 1
    if length & 0x80:
        count = length & 0x7F
        if count == 0:
            raise ASN1Error("asn1: syntax error: indefinite length found (not DER)")
        if pos + count > len(data):
            raise ASN1Error("asn1: syntax error: data truncated")
        if data[pos] == 0:
            raise ASN1Error("asn1: structure error: superfluous leading zeros in length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
        if length < 0x80:
            raise ASN1Error("asn1: structure error: non-minimal length")
    end = pos + length
    if end > len(data):
        raise ASN1Error("asn1: syntax error: data truncated")
    return TLV(cls, constructed, tag, data[pos:end], data[start:end]), end


def children(content: bytes) -> list[TLV]:
    out: list[TLV] = []
    pos = 0
    while pos < len(content):
        tlv, pos = read_tlv(content, pos)
        out.append(tlv)
    return out


def one(data: bytes, what: str = "data") -> TLV:
    tlv, end = read_tlv(data)
    if end != len(data):
        raise ASN1Error("asn1: syntax error: trailing data")
    return tlv


def expect(tlv: TLV, tag: int, what: str) -> TLV:
    if not tlv.is_universal(tag):
        raise ASN1Error(f"asn1: structure error: tags don't match ({tag} vs tag {tlv.tag} class {tlv.cls}) {what}")
    return tlv


def sequence(tlv: TLV, what: str, minimum: int) -> list[TLV]:
    items = children(expect(tlv, TAG_SEQUENCE, what).content)
    if len(items) < minimum:
        raise ASN1Error("asn1: syntax error: sequence truncated")
    return items


def parse_oid(content: bytes) -> list[int]:
    """Go's parseObjectIdentifier: base-128 arcs, minimal, each within int32."""
    if not content:
        raise ASN1Error("asn1: syntax error: zero length OBJECT IDENTIFIER")
    arcs: list[int] = []
    value, shifted = 0, 0
    for index, byte in enumerate(content):
        if shifted == 0 and byte == 0x80:
            raise ASN1Error("asn1: syntax error: integer is not minimally encoded")
        value = (value << 7) | (byte & 0x7F)
        shifted += 1
        if shifted == 5 and byte & 0x80:
            raise ASN1Error("asn1: structure error: base 128 integer too large")
        if not byte & 0x80:
            if value > 0x7FFFFFFF:
                raise ASN1Error("asn1: structure error: base 128 integer too large")
            if not arcs:
                first = min(value // 40, 2)
                arcs.extend((first, value - 40 * first))
            else:
                arcs.append(value)
            value, shifted = 0, 0
        elif index == len(content) - 1:
            raise ASN1Error("asn1: syntax error: truncated base 128 integer")
    return arcs


def integer(content: bytes, *, bits: int | None = 64) -> int:
    """A DER INTEGER; ``bits`` bounds it like Go's int64/int32 targets (None: big.Int)."""
    if not content:
        raise ASN1Error("asn1: syntax error: empty integer")
    if len(content) > 1 and ((content[0] == 0 and not content[1] & 0x80) or (content[0] == 0xFF and content[1] & 0x80)):
        raise ASN1Error("asn1: structure error: integer not minimally-encoded")
    if bits is not None and len(content) > bits // 8:
        raise ASN1Error("asn1: structure error: integer too large")
    return int.from_bytes(content, "big", signed=True)


def bit_string(content: bytes) -> tuple[bytes, int]:
    """(bytes, bit length) with Go's checks on the padding."""
    if not content:
        raise ASN1Error("asn1: syntax error: zero length BIT STRING")
    padding = content[0]
    if padding > 7 or (len(content) == 1 and padding > 0) or (padding and content[-1] & ((1 << padding) - 1)):
        raise ASN1Error("asn1: syntax error: invalid padding bits in BIT STRING")
    return content[1:], (len(content) - 1) * 8 - padding


def right_align(data: bytes, bit_length: int) -> bytes:
    """Go's ``BitString.RightAlign``: drop the padding by shifting the bits right."""
    shift = 8 - bit_length % 8
    if shift == 8 or not data:
        return data
    value = int.from_bytes(data, "big") >> shift
    return value.to_bytes(len(data), "big")


NULL = b"\x05\x00"  # a DER NULL (absent algorithm parameters)


def dotted(arcs: list[int]) -> str:
    return ".".join(str(arc) for arc in arcs)


# --------------------------------------------------------------------------------------------------------------
# Go's decoding of an ASN.1 value into ``interface{}`` (attribute values in names and CSR attributes).

_PRINTABLE_EXTRA = set(b" '()+,-./:=?*&")


def _printable(content: bytes) -> str:
    for byte in content:
        if not (chr(byte).isascii() and chr(byte).isalnum()) and byte not in _PRINTABLE_EXTRA:
            raise ASN1Error("asn1: syntax error: PrintableString contains invalid character")
    return content.decode("ascii")


def _ia5(content: bytes) -> str:
    if any(byte >= 0x80 for byte in content):
        raise ASN1Error("asn1: syntax error: IA5String contains invalid character")
    return content.decode("ascii")


def _numeric(content: bytes) -> str:
    if any(not (0x30 <= byte <= 0x39 or byte == 0x20) for byte in content):
        raise ASN1Error("asn1: syntax error: NumericString contains invalid character")
    return content.decode("ascii")


def _utf8(content: bytes) -> str:
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        raise ASN1Error("asn1: syntax error: invalid UTF-8 string") from None


def _bmp(content: bytes) -> str:
    if len(content) % 2:
        raise ASN1Error("pkcs12: odd-length BMP string")
    if content.endswith(b"\x00\x00"):
        content = content[:-2]
    return content.decode("utf-16-be", errors="replace")


_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def go_text(text: str) -> str:
    """A Go string's bytes as encoding/json sees them: each byte that is not UTF-8 becomes U+FFFD.

    ``text`` carries such bytes as surrogate escapes. Go writes the replacement as the escape ``\\ufffd``
    where we produce the character itself: the same JSON value, and safe for every encoder.
    """
    return _ESCAPED_BYTE.sub("\ufffd", text)


def _go_string(content: bytes) -> str:
    """A Go string holding arbitrary bytes (T61String: Go keeps them as they are)."""
    return go_text(content.decode("utf-8", errors="surrogateescape"))


_UTC_TIME = re.compile(r"(\d{10})(\d{2})?(.*)", re.DOTALL)
_GENERALIZED_TIME = re.compile(r"(\d{14})(\.\d+)?(.*)", re.DOTALL)
_TIME_ZONE = re.compile(r"Z|[+-]\d{4}")


def _asn1_time(content: bytes, generalized: bool) -> str:
    """UTCTime / GeneralizedTime as Go's encoding/asn1 accepts them and time.Time marshals them (RFC 3339).

    Go parses with the layout ``[20]060102150405Z0700`` (UTCTime seconds optional) and rejects any value
    that does not format back identically: so no fractions and no ``+0000``.
    """
    text = content.decode("ascii", errors="replace")
    layout = "20060102150405Z0700" if generalized else "0601021504Z0700"
    match = (_GENERALIZED_TIME if generalized else _UTC_TIME).fullmatch(text)
    if match is None or not _TIME_ZONE.fullmatch(match.group(3)):
        raise ASN1Error(f"parsing time {quote(text)} as {quote(layout)}: cannot parse")
    digits, extra, zone = match.groups()
    try:
        if generalized:
            stamp = datetime.strptime(digits, "%Y%m%d%H%M%S")
        else:
            stamp = datetime.strptime(digits + (extra or ""), "%y%m%d%H%M%S" if extra else "%y%m%d%H%M")
    except ValueError:
        raise ASN1Error(f"parsing time {quote(text)}: out of range") from None
    offset = 0 if zone == "Z" else (int(zone[1:3]) * 60 + int(zone[3:5])) * (1 if zone[0] == "+" else -1)
    serialized = (digits if generalized else digits + (extra or "")) + ("Z" if offset == 0 else zone)
    if serialized != text:
        raise ASN1Error(
            f"asn1: time did not serialize back to the original value and may be invalid: given {quote(text)}, "
            f"but serialized as {quote(serialized)}"
        )
    if not generalized and stamp.year >= 2050:
        stamp = stamp.replace(year=stamp.year - 100)
    suffix = "Z" if offset == 0 else f"{zone[0]}{zone[1:3]}:{zone[3:5]}"
    return f"{stamp.year:04d}-{stamp.month:02d}-{stamp.day:02d}T{stamp.hour:02d}:{stamp.minute:02d}:{stamp.second:02d}{suffix}"


def go_any(tlv: TLV) -> Any:
    """Go ``encoding/asn1`` unmarshalling into an empty interface, then marshalled to JSON by encoding/json.

    Strings become strings, INTEGER an int64, OBJECT IDENTIFIER a list of ints, BIT STRING Go's
    ``{"Bytes","BitLength"}``, OCTET STRING base64, times RFC 3339; every other type (BOOLEAN, SEQUENCE,
    context tags, ...) is left nil, i.e. JSON null.
    """
    if tlv.constructed or tlv.cls != UNIVERSAL:
        return None
    decoder = _ANY_DECODERS.get(tlv.tag)
    return None if decoder is None else decoder(tlv.content)


def _any_bit_string(content: bytes) -> dict[str, Any]:
    data, bits = bit_string(content)
    return {"Bytes": b64(data), "BitLength": bits}


_ANY_DECODERS: dict[int, Callable[[bytes], Any]] = {
    TAG_PRINTABLE_STRING: _printable,
    TAG_NUMERIC_STRING: _numeric,
    TAG_IA5_STRING: _ia5,
    TAG_T61_STRING: _go_string,  # Go keeps the raw bytes
    TAG_UTF8_STRING: _utf8,
    TAG_INTEGER: integer,  # int64
    TAG_BIT_STRING: _any_bit_string,
    TAG_OID: parse_oid,
    TAG_UTC_TIME: lambda content: _asn1_time(content, generalized=False),
    TAG_GENERALIZED_TIME: lambda content: _asn1_time(content, generalized=True),
    TAG_OCTET_STRING: b64,
    TAG_BMP_STRING: _bmp,
}
