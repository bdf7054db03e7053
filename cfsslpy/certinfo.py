"""``certinfo``: describe a certificate or a certificate request the way cfssl does (reference §1.3).

Two output shapes, both plain JSON-ready dicts whose key order is cfssl's:

* a certificate becomes cfssl's ``certinfo.Certificate`` object (:func:`certificate_info`): subject and issuer
  (omitempty fields, multi-values joined with ``,``, ``names`` = every attribute value in RDN order), the
  decimal serial, DNS-then-IP ``sans``, RFC 3339 UTC validity, the signature name, the key identifiers and
  the re-encoded PEM;
* a CSR becomes a dump of Go's ``x509.CertificateRequest`` struct as Go 1.19 (the toolchain of the reference
  build) marshals it (:func:`csr_info`): byte fields as base64, algorithms as Go enum integers, the public key
  as Go's key struct, the subject as ``pkix.Name``, SAN fields parsed with Go's rules.

cryptography validates certificates and supplies serial and validity; names, SANs, key identifiers, algorithm
identifiers and the whole CSR are read with a small DER walker that applies Go's ``encoding/asn1`` and
``crypto/x509`` rules, so odd attribute types, string encodings and URIs come out (or fail) as Go prints them.

Deliberate differences from cfssl (each is noted where it happens):

* key identifiers use the newest cfssl format, ``%02X`` per byte; the 2016 build printed ``%X`` (``0B`` as ``B``);
* the CSR signature is not checked (as cfssl), but a CSR that does not parse is a typed 9003 error where cfssl
  returns Go's untyped ``asn1: ...`` text, and a dial failure is a typed 6000 error where cfssl returns Go's
  untyped ``dial tcp ...`` text (the message keeps Go's wording);
* bytes of a T61String or a %-escaped URI that are not UTF-8 become U+FFFD characters, which Go's JSON encoder
  writes as the escape ``\\ufffd``: the decoded JSON is the same;
* PKCS#7 bundles are read with cryptography (in :mod:`cfsslpy.pem`), which also accepts bundles without a CRL
  field (``openssl crl2pkcs7 -nocrl``) that cfssl's own PKCS#7 parser rejects with 1003.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cfsslpy.errors import Category, CfsslError, Reason
from cfsslpy.pem import decode_pem, encode_pem, parse_certificate_pem

if TYPE_CHECKING:
    from cfsslpy.certdb import CertDB

log = logging.getLogger(__name__)

__all__ = [
    "certificate_info",
    "csr_info",
    "describe_certificate_pem",
    "describe_csr_pem",
    "describe_domain",
    "describe_serial",
    "fetch_certificate",
    "FetchPolicy",
    "format_key_id",
    "go_ip_string",
    "go_signature_algorithm",
    "private_key_is_dsa",
    "subject_public_key_info",
    "signature_name",
    "SIGNATURE_NAMES",
]


# --------------------------------------------------------------------------------------------------------------
# A minimal DER walker with Go encoding/asn1's strictness (definite, minimal lengths).


class _ASN1Error(ValueError):
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
class _TLV:
    cls: int
    constructed: bool
    tag: int
    content: bytes
    raw: bytes

    def is_universal(self, tag: int) -> bool:
        return self.cls == UNIVERSAL and self.tag == tag


def _read_tlv(data: bytes, pos: int = 0) -> tuple[_TLV, int]:
    start = pos
    if pos >= len(data):
        raise _ASN1Error("asn1: syntax error: sequence truncated")
    first = data[pos]
    pos += 1
    cls, constructed, tag = first >> 6, bool(first & 0x20), first & 0x1F
    if tag == 0x1F:
        tag = 0
        while True:
            if pos >= len(data):
                raise _ASN1Error("asn1: syntax error: data truncated")
            byte = data[pos]
            pos += 1
            tag = (tag << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
    if pos >= len(data):
        raise _ASN1Error("asn1: syntax error: data truncated")
    length = data[pos]
    pos += 1
    if length & 0x80:
        count = length & 0x7F
        if count == 0:
            raise _ASN1Error("asn1: syntax error: indefinite length found (not DER)")
        if pos + count > len(data):
            raise _ASN1Error("asn1: syntax error: data truncated")
        if data[pos] == 0:
            raise _ASN1Error("asn1: structure error: superfluous leading zeros in length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
        if length < 0x80:
            raise _ASN1Error("asn1: structure error: non-minimal length")
    end = pos + length
    if end > len(data):
        raise _ASN1Error("asn1: syntax error: data truncated")
    return _TLV(cls, constructed, tag, data[pos:end], data[start:end]), end


def _children(content: bytes) -> list[_TLV]:
    out: list[_TLV] = []
    pos = 0
    while pos < len(content):
        tlv, pos = _read_tlv(content, pos)
        out.append(tlv)
    return out


def _one(data: bytes, what: str = "data") -> _TLV:
    tlv, end = _read_tlv(data)
    if end != len(data):
        raise _ASN1Error("asn1: syntax error: trailing data")
    return tlv


def _expect(tlv: _TLV, tag: int, what: str) -> _TLV:
    if not tlv.is_universal(tag):
        raise _ASN1Error(f"asn1: structure error: tags don't match ({tag} vs tag {tlv.tag} class {tlv.cls}) {what}")
    return tlv


def _sequence(tlv: _TLV, what: str, minimum: int) -> list[_TLV]:
    items = _children(_expect(tlv, TAG_SEQUENCE, what).content)
    if len(items) < minimum:
        raise _ASN1Error("asn1: syntax error: sequence truncated")
    return items


def _oid(content: bytes) -> list[int]:
    """Go's parseObjectIdentifier: base-128 arcs, minimal, each within int32."""
    if not content:
        raise _ASN1Error("asn1: syntax error: zero length OBJECT IDENTIFIER")
    arcs: list[int] = []
    value, shifted = 0, 0
    for index, byte in enumerate(content):
        if shifted == 0 and byte == 0x80:
            raise _ASN1Error("asn1: syntax error: integer is not minimally encoded")
        value = (value << 7) | (byte & 0x7F)
        shifted += 1
        if shifted == 5 and byte & 0x80:
            raise _ASN1Error("asn1: structure error: base 128 integer too large")
        if not byte & 0x80:
            if value > 0x7FFFFFFF:
                raise _ASN1Error("asn1: structure error: base 128 integer too large")
            if not arcs:
                first = min(value // 40, 2)
                arcs.extend((first, value - 40 * first))
            else:
                arcs.append(value)
            value, shifted = 0, 0
        elif index == len(content) - 1:
            raise _ASN1Error("asn1: syntax error: truncated base 128 integer")
    return arcs


def _integer(content: bytes, *, bits: int | None = 64) -> int:
    """A DER INTEGER; ``bits`` bounds it like Go's int64/int32 targets (None: big.Int)."""
    if not content:
        raise _ASN1Error("asn1: syntax error: empty integer")
    if len(content) > 1 and ((content[0] == 0 and not content[1] & 0x80) or (content[0] == 0xFF and content[1] & 0x80)):
        raise _ASN1Error("asn1: structure error: integer not minimally-encoded")
    if bits is not None and len(content) > bits // 8:
        raise _ASN1Error("asn1: structure error: integer too large")
    return int.from_bytes(content, "big", signed=True)


def _bit_string(content: bytes) -> tuple[bytes, int]:
    """(bytes, bit length) with Go's checks on the padding."""
    if not content:
        raise _ASN1Error("asn1: syntax error: zero length BIT STRING")
    padding = content[0]
    if padding > 7 or (len(content) == 1 and padding > 0) or (padding and content[-1] & ((1 << padding) - 1)):
        raise _ASN1Error("asn1: syntax error: invalid padding bits in BIT STRING")
    return content[1:], (len(content) - 1) * 8 - padding


def _right_align(data: bytes, bit_length: int) -> bytes:
    """Go's ``BitString.RightAlign``: drop the padding by shifting the bits right."""
    shift = 8 - bit_length % 8
    if shift == 8 or not data:
        return data
    value = int.from_bytes(data, "big") >> shift
    return value.to_bytes(len(data), "big")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --------------------------------------------------------------------------------------------------------------
# Go's decoding of an ASN.1 value into ``interface{}`` (attribute values in names and CSR attributes).

_PRINTABLE_EXTRA = set(b" '()+,-./:=?*&")


def _printable(content: bytes) -> str:
    for byte in content:
        if not (chr(byte).isascii() and chr(byte).isalnum()) and byte not in _PRINTABLE_EXTRA:
            raise _ASN1Error("asn1: syntax error: PrintableString contains invalid character")
    return content.decode("ascii")


def _ia5(content: bytes) -> str:
    if any(byte >= 0x80 for byte in content):
        raise _ASN1Error("asn1: syntax error: IA5String contains invalid character")
    return content.decode("ascii")


def _numeric(content: bytes) -> str:
    if any(not (0x30 <= byte <= 0x39 or byte == 0x20) for byte in content):
        raise _ASN1Error("asn1: syntax error: NumericString contains invalid character")
    return content.decode("ascii")


def _utf8(content: bytes) -> str:
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        raise _ASN1Error("asn1: syntax error: invalid UTF-8 string") from None


def _bmp(content: bytes) -> str:
    if len(content) % 2:
        raise _ASN1Error("pkcs12: odd-length BMP string")
    if content.endswith(b"\x00\x00"):
        content = content[:-2]
    return content.decode("utf-16-be", errors="replace")


_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def _go_text(text: str) -> str:
    """A Go string's bytes as encoding/json sees them: each byte that is not UTF-8 becomes U+FFFD.

    ``text`` carries such bytes as surrogate escapes. Go writes the replacement as the escape ``\\ufffd``
    where we produce the character itself: the same JSON value, and safe for every encoder.
    """
    return _ESCAPED_BYTE.sub("\ufffd", text)


def _go_string(content: bytes) -> str:
    """A Go string holding arbitrary bytes (T61String: Go keeps them as they are)."""
    return _go_text(content.decode("utf-8", errors="surrogateescape"))


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
        raise _ASN1Error(f"parsing time {_go_quote(text)} as {_go_quote(layout)}: cannot parse")
    digits, extra, zone = match.groups()
    try:
        if generalized:
            stamp = datetime.strptime(digits, "%Y%m%d%H%M%S")
        else:
            stamp = datetime.strptime(digits + (extra or ""), "%y%m%d%H%M%S" if extra else "%y%m%d%H%M")
    except ValueError:
        raise _ASN1Error(f"parsing time {_go_quote(text)}: out of range") from None
    offset = 0 if zone == "Z" else (int(zone[1:3]) * 60 + int(zone[3:5])) * (1 if zone[0] == "+" else -1)
    serialized = (digits if generalized else digits + (extra or "")) + ("Z" if offset == 0 else zone)
    if serialized != text:
        raise _ASN1Error(
            f"asn1: time did not serialize back to the original value and may be invalid: given {_go_quote(text)}, "
            f"but serialized as {_go_quote(serialized)}"
        )
    if not generalized and stamp.year >= 2050:
        stamp = stamp.replace(year=stamp.year - 100)
    suffix = "Z" if offset == 0 else f"{zone[0]}{zone[1:3]}:{zone[3:5]}"
    return f"{stamp.year:04d}-{stamp.month:02d}-{stamp.day:02d}T{stamp.hour:02d}:{stamp.minute:02d}:{stamp.second:02d}{suffix}"


def _go_any(tlv: _TLV) -> Any:
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
    data, bits = _bit_string(content)
    return {"Bytes": _b64(data), "BitLength": bits}


_ANY_DECODERS: dict[int, Callable[[bytes], Any]] = {
    TAG_PRINTABLE_STRING: _printable,
    TAG_NUMERIC_STRING: _numeric,
    TAG_IA5_STRING: _ia5,
    TAG_T61_STRING: _go_string,  # Go keeps the raw bytes
    TAG_UTF8_STRING: _utf8,
    TAG_INTEGER: _integer,  # int64
    TAG_BIT_STRING: _any_bit_string,
    TAG_OID: _oid,
    TAG_UTC_TIME: lambda content: _asn1_time(content, generalized=False),
    TAG_GENERALIZED_TIME: lambda content: _asn1_time(content, generalized=True),
    TAG_OCTET_STRING: _b64,
    TAG_BMP_STRING: _bmp,
}


# --------------------------------------------------------------------------------------------------------------
# Names (pkix.Name)

# pkix.Name's known attributes: OID arc under 2.5.4 -> (field, multi-valued)
_NAME_FIELDS: dict[int, tuple[str, bool]] = {
    3: ("CommonName", False),
    5: ("SerialNumber", False),
    6: ("Country", True),
    7: ("Locality", True),
    8: ("Province", True),
    9: ("StreetAddress", True),
    10: ("Organization", True),
    11: ("OrganizationalUnit", True),
    17: ("PostalCode", True),
}


@dataclass
class _Name:
    """Go's ``pkix.Name`` after ``FillFromRDNSequence``."""

    attributes: list[tuple[list[int], Any]]  # Names: (type, value) in RDN order
    single: dict[str, str]
    multi: dict[str, list[str]]


def _parse_name(tlv: _TLV) -> _Name:
    name = _Name([], {}, {})
    for rdn in _sequence(tlv, "RDNSequence", 0):
        if not rdn.is_universal(TAG_SET):
            raise _ASN1Error("asn1: structure error: tags don't match (17) RelativeDistinguishedNameSET")
        for atv in _children(rdn.content):
            parts = _sequence(atv, "AttributeTypeAndValue", 2)
            oid = _oid(_expect(parts[0], TAG_OID, "AttributeTypeAndValue.Type").content)
            value = _go_any(parts[1])
            name.attributes.append((oid, value))
            if not isinstance(value, str) or len(oid) != 4 or oid[:3] != [2, 5, 4] or oid[3] not in _NAME_FIELDS:
                continue
            field, multi = _NAME_FIELDS[oid[3]]
            if multi:
                name.multi.setdefault(field, []).append(value)
            else:
                name.single[field] = value  # the last one wins, as in Go
    return name


_CERTINFO_NAME_KEYS = (
    ("common_name", "CommonName"),
    ("serial_number", "SerialNumber"),
    ("country", "Country"),
    ("organization", "Organization"),
    ("organizational_unit", "OrganizationalUnit"),
    ("locality", "Locality"),
    ("province", "Province"),
    ("street_address", "StreetAddress"),
    ("postal_code", "PostalCode"),
)


def _certinfo_name(name: _Name) -> dict[str, Any]:
    """cfssl's ``certinfo.Name``: every field omitempty, multi-values joined with ``,``."""
    out: dict[str, Any] = {}
    for key, field in _CERTINFO_NAME_KEYS:
        value = name.single.get(field) if field in ("CommonName", "SerialNumber") else ",".join(name.multi.get(field, []))
        if value:
            out[key] = value
    if name.attributes:
        out["names"] = [value for _, value in name.attributes]
    return out


def _pkix_name(name: _Name) -> dict[str, Any]:
    """Go's ``pkix.Name`` struct as encoding/json prints it (nil slices are null)."""

    def multi(field: str) -> list[str] | None:
        return name.multi.get(field)

    return {
        "Country": multi("Country"),
        "Organization": multi("Organization"),
        "OrganizationalUnit": multi("OrganizationalUnit"),
        "Locality": multi("Locality"),
        "Province": multi("Province"),
        "StreetAddress": multi("StreetAddress"),
        "PostalCode": multi("PostalCode"),
        "SerialNumber": name.single.get("SerialNumber", ""),
        "CommonName": name.single.get("CommonName", ""),
        "Names": [{"Type": oid, "Value": value} for oid, value in name.attributes] or None,
        "ExtraNames": None,
    }


# --------------------------------------------------------------------------------------------------------------
# Algorithms

#: Go's ``x509.SignatureAlgorithm`` values -> cfssl's ``helpers.SignatureString`` (reference §7.4 item 15).
#: RSA-PSS (13-15) and everything unknown print as ``Unknown Signature``.
SIGNATURE_NAMES: dict[int, str] = {
    1: "MD2WithRSA",
    2: "MD5WithRSA",
    3: "SHA1WithRSA",
    4: "SHA256WithRSA",
    5: "SHA384WithRSA",
    6: "SHA512WithRSA",
    7: "DSAWithSHA1",
    8: "DSAWithSHA256",
    9: "ECDSAWithSHA1",
    10: "ECDSAWithSHA256",
    11: "ECDSAWithSHA384",
    12: "ECDSAWithSHA512",
    16: "Ed25519",
}
UNKNOWN_SIGNATURE = "Unknown Signature"

_SIGNATURE_OIDS: dict[str, int] = {
    "1.2.840.113549.1.1.2": 1,
    "1.2.840.113549.1.1.4": 2,
    "1.2.840.113549.1.1.5": 3,
    "1.3.14.3.2.29": 3,
    "1.2.840.113549.1.1.11": 4,
    "1.2.840.113549.1.1.12": 5,
    "1.2.840.113549.1.1.13": 6,
    "1.2.840.10040.4.3": 7,
    "2.16.840.1.101.3.4.3.2": 8,
    "1.2.840.10045.4.1": 9,
    "1.2.840.10045.4.3.2": 10,
    "1.2.840.10045.4.3.3": 11,
    "1.2.840.10045.4.3.4": 12,
    "1.3.101.112": 16,
}
_OID_RSA_PSS = "1.2.840.113549.1.1.10"
_OID_MGF1 = "1.2.840.113549.1.1.8"
_PSS_HASHES = {"2.16.840.1.101.3.4.2.1": (13, 32), "2.16.840.1.101.3.4.2.2": (14, 48), "2.16.840.1.101.3.4.2.3": (15, 64)}
_NULL = b"\x05\x00"

_PUBLIC_KEY_ALGORITHMS = {"1.2.840.113549.1.1.1": 1, "1.2.840.10040.4.1": 2, "1.2.840.10045.2.1": 3, "1.3.101.112": 4}
_CURVES: dict[str, ec.EllipticCurve] = {
    "1.3.132.0.33": ec.SECP224R1(),
    "1.2.840.10045.3.1.7": ec.SECP256R1(),
    "1.3.132.0.34": ec.SECP384R1(),
    "1.3.132.0.35": ec.SECP521R1(),
}


def _dotted(arcs: list[int]) -> str:
    return ".".join(str(arc) for arc in arcs)


def _algorithm_identifier(tlv: _TLV) -> tuple[str, bytes]:
    """(dotted OID, full bytes of the parameters or b"")."""
    parts = _sequence(tlv, "AlgorithmIdentifier", 1)
    oid = _dotted(_oid(_expect(parts[0], TAG_OID, "AlgorithmIdentifier.Algorithm").content))
    return oid, parts[1].raw if len(parts) > 1 else b""


def _pss_algorithm(params: bytes) -> int:
    """Go's PSS bucket: hash == MGF1 hash, salt length == hash size, trailer 1; else unknown (0)."""
    try:
        fields = {item.tag: item for item in _sequence(_one(params), "pssParameters", 0) if item.cls == CONTEXT}
        if 0 not in fields or 1 not in fields or 2 not in fields:
            return 0
        hash_oid, hash_params = _algorithm_identifier(_one(fields[0].content))
        mgf_oid, mgf_params = _algorithm_identifier(_one(fields[1].content))
        salt = _integer(_expect(_one(fields[2].content), TAG_INTEGER, "SaltLength").content)
        trailer = _integer(_expect(_one(fields[3].content), TAG_INTEGER, "TrailerField").content) if 3 in fields else 1
        mgf_hash_oid, mgf_hash_params = _algorithm_identifier(_one(mgf_params))
    except _ASN1Error:
        return 0
    if (
        hash_params not in (b"", _NULL)
        or mgf_oid != _OID_MGF1
        or mgf_hash_oid != hash_oid
        or mgf_hash_params not in (b"", _NULL)
        or trailer != 1
    ):
        return 0
    algorithm, salt_length = _PSS_HASHES.get(hash_oid, (0, -1))
    return algorithm if salt == salt_length else 0


def _signature_algorithm(tlv: _TLV) -> int:
    oid, params = _algorithm_identifier(tlv)
    if oid == "1.3.101.112" and params:
        return 0  # RFC 8410: Ed25519 parameters must be absent
    if oid == _OID_RSA_PSS:
        return _pss_algorithm(params)
    return _SIGNATURE_OIDS.get(oid, 0)


def go_signature_algorithm(algorithm_identifier_der: bytes) -> int:
    """Go's ``x509.SignatureAlgorithm`` enum value for a DER AlgorithmIdentifier (0 when unknown)."""
    try:
        return _signature_algorithm(_one(algorithm_identifier_der))
    except _ASN1Error:
        return 0


_ID_DSA = "1.2.840.10040.4.1"


def private_key_is_dsa(der: bytes) -> bool:
    """True for a DER DSA private key: PKCS#8 with the id-dsa algorithm, or OpenSSL's traditional
    ``DSA PRIVATE KEY`` (a SEQUENCE of six INTEGERs). Read without loading the key, which cryptography 51
    deprecates for DSA; anything unreadable is "not DSA" and left to the key loader's own errors.
    """
    try:
        items = _sequence(_one(der, "private key"), "PrivateKey", 2)
        if len(items) == 6 and all(item.is_universal(TAG_INTEGER) for item in items):
            return True
        return items[1].is_universal(TAG_SEQUENCE) and _algorithm_identifier(items[1])[0] == _ID_DSA
    except _ASN1Error:
        return False


def _certificate_parts(der: bytes) -> tuple[list[_TLV], _TLV]:
    """(TBSCertificate fields, outer signatureAlgorithm)."""
    outer = _sequence(_one(der, "certificate"), "Certificate", 3)
    return _sequence(outer[0], "TBSCertificate", 6), outer[1]


def _tbs_index(tbs: list[_TLV]) -> int:
    """Where serialNumber sits in the TBSCertificate: 1 after an explicit [0] version, else 0."""
    return 1 if tbs[0].cls == CONTEXT and tbs[0].tag == 0 else 0


def subject_public_key_info(cert: x509.Certificate) -> bytes:
    """The SubjectPublicKeyInfo as encoded in the certificate (Go's ``RawSubjectPublicKeyInfo``), read without
    loading the key (``public_key()`` warns for DSA keys from cryptography 51 on)."""
    tbs, _ = _certificate_parts(cert.public_bytes(serialization.Encoding.DER))
    return tbs[_tbs_index(tbs) + 5].raw


def signature_name(cert: x509.Certificate) -> str:
    """cfssl's name for the certificate's signature algorithm (``SHA256WithRSA``, ``Ed25519``, ...).

    The 2016 build predates Ed25519 and prints ``Unknown Signature`` for it; RSA-PSS is unknown in both.
    """
    _, algorithm = _certificate_parts(cert.public_bytes(serialization.Encoding.DER))
    return SIGNATURE_NAMES.get(_signature_algorithm(algorithm), UNKNOWN_SIGNATURE)


def _public_key(algorithm: int, params: bytes, key: bytes) -> Any:
    """Go 1.19 ``parsePublicKey`` -> the key struct as encoding/json prints it."""
    if algorithm == 1:
        if params != _NULL:
            raise _ASN1Error("x509: RSA key missing NULL parameters")
        parts = _sequence(_one(key, "RSA public key"), "pkcs1PublicKey", 2)
        n = _integer(_expect(parts[0], TAG_INTEGER, "N").content, bits=None)
        e = _integer(_expect(parts[1], TAG_INTEGER, "E").content)
        if n <= 0:
            raise _ASN1Error("x509: RSA modulus is not a positive number")
        if e <= 0:
            raise _ASN1Error("x509: RSA public exponent is not a positive number")
        return {"N": n, "E": e}
    if algorithm == 3:
        try:
            curve_oid = _dotted(_oid(_expect(_one(params), TAG_OID, "namedCurve").content))
        except _ASN1Error:
            raise _ASN1Error("x509: invalid ECDSA parameters") from None
        curve = _CURVES.get(curve_oid)
        if curve is None:
            raise _ASN1Error("x509: unsupported elliptic curve")
        size = (curve.key_size + 7) // 8
        # Go's elliptic.Unmarshal takes the uncompressed form only, and checks the point is on the curve.
        if len(key) != 1 + 2 * size or key[0] != 4:
            raise _ASN1Error("x509: failed to unmarshal elliptic curve point")
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(curve, key)
        except ValueError:
            raise _ASN1Error("x509: failed to unmarshal elliptic curve point") from None
        # The Curve interface holds a struct with unexported fields only: {}.
        return {"Curve": {}, "X": int.from_bytes(key[1 : 1 + size], "big"), "Y": int.from_bytes(key[1 + size :], "big")}
    if algorithm == 4:
        if params:
            raise _ASN1Error("x509: Ed25519 key encoded with illegal parameters")
        if len(key) != 32:
            raise _ASN1Error("x509: wrong Ed25519 public key size")
        return _b64(key)  # ed25519.PublicKey is a []byte
    if algorithm == 2:
        y = _integer(_expect(_one(key, "DSA public key"), TAG_INTEGER, "Y").content, bits=None)
        try:
            p, q, g = (
                _integer(_expect(item, TAG_INTEGER, "DSA parameter").content, bits=None)
                for item in _sequence(_one(params), "dsaParameters", 3)[:3]
            )
        except _ASN1Error:
            raise _ASN1Error("x509: invalid DSA parameters") from None
        if min(y, p, q, g) <= 0:
            raise _ASN1Error("x509: zero or negative DSA parameter")
        return {"P": p, "Q": q, "G": g, "Y": y}  # dsa.PublicKey embeds Parameters: encoding/json flattens it
    return None


# --------------------------------------------------------------------------------------------------------------
# Subject alternative names, IPs and URIs the way Go parses and prints them


def go_ip_string(raw: bytes) -> str:
    """Go's ``net.IP.String()``: dotted quad for 4-byte and IPv4-mapped 16-byte addresses, RFC 5952 otherwise."""
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    if len(raw) == 16:
        address = ipaddress.IPv6Address(raw)
        mapped = address.ipv4_mapped
        return str(mapped) if mapped is not None else str(address)
    if not raw:
        return "<nil>"
    return "?" + raw.hex()


@dataclass
class _SANs:
    dns: list[str]
    emails: list[str]
    ips: list[str]
    uris: list[dict[str, Any]]


def _parse_sans(value: bytes) -> _SANs:
    """Go 1.19 ``parseSANExtension``: DNS, email, IP, URI; other name types are skipped."""
    sans = _SANs([], [], [], [])
    try:
        names = _children(_expect(_read_tlv(value)[0], TAG_SEQUENCE, "SAN").content)
    except _ASN1Error:
        raise _ASN1Error("x509: invalid subject alternative names") from None
    for name in names:
        if name.cls != CONTEXT or name.constructed:
            continue
        if name.tag == 1:
            sans.emails.append(_ia5_san(name.content, "rfc822Name"))
        elif name.tag == 2:
            sans.dns.append(_ia5_san(name.content, "dNSName"))
        elif name.tag == 6:
            text = _ia5_san(name.content, "uniformResourceIdentifier")
            try:
                uri = _GoURL.parse(text)
            except _ASN1Error as exc:
                raise _ASN1Error(f"x509: cannot parse URI {_go_quote(text)}: {exc}") from None
            if uri.host and not _valid_uri_host(uri.host):
                raise _ASN1Error(f"x509: cannot parse URI {_go_quote(text)}: invalid domain")
            sans.uris.append(uri.to_json())
        elif name.tag == 7:
            if len(name.content) not in (4, 16):
                raise _ASN1Error(f"x509: cannot parse IP address of length {len(name.content)}")
            sans.ips.append(go_ip_string(name.content))
    return sans


def _ia5_san(content: bytes, what: str) -> str:
    if any(byte >= 0x80 for byte in content):
        raise _ASN1Error(f"x509: SAN {what} is malformed")
    return content.decode("ascii")


def _valid_uri_host(host: str) -> bool:
    """Go's ``domainToReverseLabels`` check on a URI SAN host (the port is just part of a label)."""
    labels = host.split(".")
    return all(label and all(33 <= ord(c) <= 126 for c in label) for label in labels)


_GO_QUOTE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def _go_quote(text: str) -> str:
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


_HEX = "0123456789abcdefABCDEF"
_PATH, _HOST, _ZONE, _USER, _FRAGMENT = "path", "host", "zone", "user", "fragment"


def _should_escape(c: str, mode: str) -> bool:
    """Go ``net/url`` shouldEscape for the modes URL parsing uses."""
    if c.isascii() and c.isalnum():
        return False
    if mode in (_HOST, _ZONE) and c in "!$&'()*+,;=:[]<>\"":
        return False
    if c in "-_.~":
        return False
    if c in "$&+,/:;=?@":
        if mode == _PATH:
            return c == "?"
        if mode == _USER:
            return c in "@/?:"
        if mode == _FRAGMENT:
            return False
    if mode == _FRAGMENT and c in "!()*":
        return False
    return True


def _unescape(s: str, mode: str) -> str:
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == "%":
            if i + 2 >= len(s) or s[i + 1] not in _HEX or s[i + 2] not in _HEX:
                raise _ASN1Error(f"invalid URL escape {_go_quote(s[i : i + 3])}")
            value = int(s[i + 1 : i + 3], 16)
            if mode == _HOST and value < 0x80 and s[i : i + 3] != "%25":
                raise _ASN1Error(f"invalid URL escape {_go_quote(s[i : i + 3])}")
            if mode == _ZONE and s[i : i + 3] != "%25" and value != 0x20 and _should_escape(chr(value), _HOST):
                raise _ASN1Error(f"invalid URL escape {_go_quote(s[i : i + 3])}")
            out.append(value)
            i += 3
            continue
        if mode in (_HOST, _ZONE) and ord(c) < 0x80 and _should_escape(c, mode):
            raise _ASN1Error(f"invalid character {_go_quote(c)} in host name")
        out.extend(c.encode("utf-8"))
        i += 1
    return bytes(out).decode("utf-8", errors="surrogateescape")


def _escape(s: str, mode: str) -> str:
    out = []
    for byte in s.encode("utf-8", errors="surrogateescape"):
        c = chr(byte)
        out.append(f"%{byte:02X}" if _should_escape(c, mode) else c)
    return "".join(out)


def _valid_port(port: str) -> bool:
    return port == "" or (port[0] == ":" and all(c.isdigit() and c.isascii() for c in port[1:]))


@dataclass
class _GoURL:
    """The fields of Go 1.19's ``url.URL`` as ``url.Parse`` fills them."""

    scheme: str = ""
    opaque: str = ""
    user: bool = False
    host: str = ""
    path: str = ""
    raw_path: str = ""
    omit_host: bool = False
    force_query: bool = False
    raw_query: str = ""
    fragment: str = ""
    raw_fragment: str = ""

    @classmethod
    def parse(cls, raw: str) -> _GoURL:
        """Go's ``url.Parse``; errors read like Go's ``*url.Error`` (``parse "<url>": <reason>``)."""
        text, _, frag = raw.partition("#")
        try:
            url = cls._parse(text)
        except _ASN1Error as exc:
            raise _ASN1Error(f"parse {_go_quote(text)}: {exc}") from None
        if frag:
            try:
                url.fragment = _unescape(frag, _FRAGMENT)
            except _ASN1Error as exc:
                raise _ASN1Error(f"parse {_go_quote(raw)}: {exc}") from None
            url.raw_fragment = "" if _escape(url.fragment, _FRAGMENT) == frag else frag
        return url

    @classmethod
    def _parse(cls, raw: str) -> _GoURL:
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
            raise _ASN1Error("net/url: invalid control character in URL")
        url = cls()
        if raw == "*":
            url.path = "*"
            return url
        rest = raw
        for index, c in enumerate(raw):
            if c.isascii() and c.isalpha():
                continue
            if c.isascii() and (c.isdigit() or c in "+-."):
                if index == 0:
                    break
                continue
            if c == ":":
                if index == 0:
                    raise _ASN1Error("missing protocol scheme")
                url.scheme, rest = raw[:index].lower(), raw[index + 1 :]
            break
        if rest.endswith("?") and rest.count("?") == 1:
            url.force_query, rest = True, rest[:-1]
        else:
            rest, _, url.raw_query = rest.partition("?")
        if not rest.startswith("/"):
            if url.scheme:
                url.opaque = rest
                return url
            if ":" in rest.partition("/")[0]:
                raise _ASN1Error("first path segment in URL cannot contain colon")
        if rest.startswith("//") and (url.scheme or not rest.startswith("///")):
            authority, slash, path = rest[2:].partition("/")
            rest = slash + path
            url._parse_authority(authority)
        elif url.scheme and rest.startswith("/"):
            url.omit_host = True
        url.path = _unescape(rest, _PATH)
        url.raw_path = "" if _escape(url.path, _PATH) == rest else rest
        return url

    def _parse_authority(self, authority: str) -> None:
        at = authority.rfind("@")
        self.host = _parse_host(authority[at + 1 :])
        if at < 0:
            return
        userinfo = authority[:at]
        allowed = "-._:~!$&'()*+,;=%@"
        if not all((c.isascii() and c.isalnum()) or c in allowed for c in userinfo):
            raise _ASN1Error("net/url: invalid userinfo")
        username, _, password = userinfo.partition(":")
        _unescape(username, _USER)
        _unescape(password, _USER)
        self.user = True

    def to_json(self) -> dict[str, Any]:
        return {
            "Scheme": self.scheme,
            "Opaque": self.opaque,
            "User": {} if self.user else None,  # *url.Userinfo has unexported fields only
            "Host": _go_text(self.host),
            "Path": _go_text(self.path),
            "RawPath": self.raw_path,
            "OmitHost": self.omit_host,
            "ForceQuery": self.force_query,
            "RawQuery": self.raw_query,
            "Fragment": _go_text(self.fragment),
            "RawFragment": self.raw_fragment,
        }


def _parse_host(host: str) -> str:
    if host.startswith("["):
        end = host.rfind("]")
        if end < 0:
            raise _ASN1Error("missing ']' in host")
        if not _valid_port(host[end + 1 :]):
            raise _ASN1Error(f"invalid port {_go_quote(host[end + 1 :])} after host")
        zone = host.find("%25", 0, end)
        if zone >= 0:
            return _unescape(host[:zone], _HOST) + _unescape(host[zone:end], _ZONE) + _unescape(host[end:], _HOST)
    elif (colon := host.rfind(":")) >= 0 and not _valid_port(host[colon:]):
        raise _ASN1Error(f"invalid port {_go_quote(host[colon:])} after host")
    return _unescape(host, _HOST)


# --------------------------------------------------------------------------------------------------------------
# Certificates


def format_key_id(key_id: bytes) -> str:
    """Uppercase hex bytes joined by ``:`` with ``%02X`` padding (newest cfssl).

    The 2016 build formatted each byte with ``%X``, so ``0B`` printed as ``B`` (``D9:82:B:2A``).
    """
    return ":".join(f"{byte:02X}" for byte in key_id)


def _go_time(stamp: datetime) -> str:
    stamp = stamp.astimezone(timezone.utc)
    text = f"{stamp.year:04d}-{stamp.month:02d}-{stamp.day:02d}T{stamp.hour:02d}:{stamp.minute:02d}:{stamp.second:02d}"
    if stamp.microsecond:
        text += "." + f"{stamp.microsecond:06d}".rstrip("0")
    return text + "Z"


@dataclass
class _CertFields:
    issuer: _Name
    subject: _Name
    signature_algorithm: int
    sans: _SANs
    authority_key_id: bytes
    subject_key_id: bytes


def _extension(tlv: _TLV) -> tuple[list[int], bool, bytes]:
    """pkix.Extension: (id, critical, value); ``critical`` is an optional DER BOOLEAN."""
    items = _sequence(tlv, "Extension", 2)
    oid = _oid(_expect(items[0], TAG_OID, "Extension.Id").content)
    rest, critical = items[1:], False
    if rest[0].is_universal(TAG_BOOLEAN):
        if rest[0].content not in (b"\x00", b"\xff"):
            raise _ASN1Error("asn1: syntax error: invalid boolean")
        critical, rest = rest[0].content == b"\xff", rest[1:]
    if not rest:
        raise _ASN1Error("asn1: syntax error: sequence truncated")
    return oid, critical, _expect(rest[0], TAG_OCTET_STRING, "Extension.Value").content


_OID_SAN = "2.5.29.17"
_OID_AKI = "2.5.29.35"
_OID_SKI = "2.5.29.14"


def _certificate_fields(der: bytes) -> _CertFields:
    tbs, algorithm = _certificate_parts(der)
    index = _tbs_index(tbs)
    issuer, subject = _parse_name(tbs[index + 2]), _parse_name(tbs[index + 4])
    fields = _CertFields(issuer, subject, _signature_algorithm(algorithm), _SANs([], [], [], []), b"", b"")
    for item in tbs[index + 6 :]:
        if item.cls != CONTEXT or item.tag != 3:
            continue
        for extension in _sequence(_one(item.content, "extensions"), "Extensions", 0):
            arcs, _critical, value = _extension(extension)
            oid = _dotted(arcs)
            if oid == _OID_SAN:
                fields.sans = _parse_sans(value)
            elif oid == _OID_SKI:
                fields.subject_key_id = _expect(_read_tlv(value)[0], TAG_OCTET_STRING, "SubjectKeyId").content
            elif oid == _OID_AKI:
                for part in _sequence(_read_tlv(value)[0], "AuthorityKeyId", 0):
                    if part.cls == CONTEXT and part.tag == 0:
                        fields.authority_key_id = part.content
    return fields


def certificate_info(cert: x509.Certificate) -> dict[str, Any]:
    """cfssl's ``certinfo.Certificate`` for ``cert``, keys in cfssl's order.

    ``sans`` holds DNS names then IP addresses only (no emails or URIs) and is left out when empty;
    the key identifiers are empty strings when the extensions are absent (self-signed roots have no AKI).
    """
    der = cert.public_bytes(serialization.Encoding.DER)
    try:
        fields = _certificate_fields(der)
    except _ASN1Error as exc:
        raise CfsslError(Category.CERTIFICATE, Reason.PARSE_FAILED, str(exc)) from exc
    out: dict[str, Any] = {
        "subject": _certinfo_name(fields.subject),
        "issuer": _certinfo_name(fields.issuer),
        "serial_number": str(cert.serial_number),
    }
    sans = fields.sans.dns + fields.sans.ips
    if sans:
        out["sans"] = sans
    out["not_before"] = _go_time(cert.not_valid_before_utc)
    out["not_after"] = _go_time(cert.not_valid_after_utc)
    out["sigalg"] = SIGNATURE_NAMES.get(fields.signature_algorithm, UNKNOWN_SIGNATURE)
    out["authority_key_id"] = format_key_id(fields.authority_key_id)
    out["subject_key_id"] = format_key_id(fields.subject_key_id)
    out["pem"] = encode_pem("CERTIFICATE", der).decode("ascii")
    return out


def _load_der_certificate(der: bytes) -> x509.Certificate:
    cert = x509.load_der_x509_certificate(der)
    # cryptography parses lazily; touch what certinfo reads so a malformed certificate fails here.
    _ = cert.subject, cert.issuer, cert.extensions, cert.serial_number, cert.not_valid_after_utc
    _certificate_fields(der)
    return cert


def describe_certificate_pem(data: bytes) -> dict[str, Any]:
    """``certinfo -cert``: exactly one certificate (or a one-certificate PKCS#7), described.

    Parsing is cfssl's ``helpers.ParseCertificatePEM`` (:func:`cfsslpy.pem.parse_certificate_pem`): no PEM ->
    1002; a first block that is neither a certificate nor PKCS#7 (the PEM type is not checked) -> 1003
    ``Failed to parse certificate``; anything after it -> 1003 ``the PEM file should contain only one object``.
    """
    return certificate_info(parse_certificate_pem(data))


# --------------------------------------------------------------------------------------------------------------
# Certificate requests

_OID_EXTENSION_REQUEST = [1, 2, 840, 113549, 1, 9, 14]


def _raw_attributes(tlv: _TLV) -> list[dict[str, Any]] | None:
    """Go's ``parseRawAttributes``: attributes whose values are SETs of SEQUENCEs of (OID, any) pairs.

    Anything else (challengePassword, unstructuredName, ...) is skipped silently, as Go does; a critical
    extension's BOOLEAN lands in ``Value`` as null.
    """
    out: list[dict[str, Any]] = []
    for attribute in _children(tlv.content):
        try:
            parts = _sequence(attribute, "AttributeTypeAndValueSET", 2)
            oid = _oid(_expect(parts[0], TAG_OID, "Type").content)
            values: list[list[dict[str, Any]]] = []
            for value in _children(_expect(parts[1], TAG_SET, "Value").content):
                entries = []
                for entry in _sequence(value, "[]AttributeTypeAndValue", 0):
                    pair = _sequence(entry, "AttributeTypeAndValue", 2)
                    entries.append({"Type": _oid(_expect(pair[0], TAG_OID, "Type").content), "Value": _go_any(pair[1])})
                values.append(entries)
        except _ASN1Error:
            continue
        out.append({"Type": oid, "Value": values})
    return out or None


def _csr_extensions(tlv: _TLV) -> list[tuple[list[int], bool, bytes]]:
    """Go's ``parseCSRExtensions``: every extension of every extensionRequest attribute, in order."""
    extensions: list[tuple[list[int], bool, bytes]] = []
    for attribute in _children(tlv.content):
        try:
            parts = _sequence(attribute, "pkcs10Attribute", 2)
            oid = _oid(_expect(parts[0], TAG_OID, "Id").content)
            values = _children(_expect(parts[1], TAG_SET, "Values").content)
        except _ASN1Error:
            continue
        if oid != _OID_EXTENSION_REQUEST or not values:
            continue
        seen: set[str] = set()
        for extension in _sequence(values[0], "Extensions", 0):
            ext_oid, critical, value = _extension(extension)
            key = _dotted(ext_oid)
            if key in seen:
                raise _ASN1Error("x509: certificate request contains duplicate requested extensions")
            seen.add(key)
            extensions.append((ext_oid, critical, value))
    return extensions


def _csr_struct(der: bytes) -> dict[str, Any]:
    outer = _sequence(_one(der, "certificate request"), "certificateRequest", 3)
    tbs = _sequence(outer[0], "tbsCertificateRequest", 4)
    version = _integer(_expect(tbs[0], TAG_INTEGER, "Version").content)
    subject_tlv, spki_tlv, attributes_tlv = tbs[1], tbs[2], tbs[3]
    if attributes_tlv.cls != CONTEXT or attributes_tlv.tag != 0 or not attributes_tlv.constructed:
        raise _ASN1Error("asn1: structure error: tags don't match (0) RawAttributes")
    spki = _sequence(spki_tlv, "publicKeyInfo", 2)
    key_oid, key_params = _algorithm_identifier(spki[0])
    key_bits, key_bit_length = _bit_string(_expect(spki[1], TAG_BIT_STRING, "PublicKey").content)
    signature_bits, signature_length = _bit_string(_expect(outer[2], TAG_BIT_STRING, "SignatureValue").content)
    key_algorithm = _PUBLIC_KEY_ALGORITHMS.get(key_oid, 0)
    public_key = _public_key(key_algorithm, key_params, _right_align(key_bits, key_bit_length))
    subject = _parse_name(subject_tlv)
    extensions = _csr_extensions(attributes_tlv)
    sans = _SANs([], [], [], [])
    for oid, _critical, value in extensions:
        if _dotted(oid) == _OID_SAN:
            sans = _parse_sans(value)
    return {
        "Raw": _b64(der),
        "RawTBSCertificateRequest": _b64(outer[0].raw),
        "RawSubjectPublicKeyInfo": _b64(spki_tlv.raw),
        "RawSubject": _b64(subject_tlv.raw),
        "Version": version,
        "Signature": _b64(_right_align(signature_bits, signature_length)),
        "SignatureAlgorithm": _signature_algorithm(outer[1]),
        "PublicKeyAlgorithm": key_algorithm,
        "PublicKey": public_key,
        "Subject": _pkix_name(subject),
        "Attributes": _raw_attributes(attributes_tlv),
        "Extensions": [{"Id": oid, "Critical": critical, "Value": _b64(value)} for oid, critical, value in extensions] or None,
        "ExtraExtensions": None,
        "DNSNames": sans.dns or None,
        "EmailAddresses": sans.emails or None,
        "IPAddresses": sans.ips or None,
        "URIs": sans.uris or None,
    }


def csr_info(csr: bytes | x509.CertificateSigningRequest) -> dict[str, Any]:
    """The Go 1.19 ``x509.CertificateRequest`` struct dump cfssl prints for ``certinfo -csr``.

    ``csr`` is DER or a parsed request. The signature is not checked (cfssl doesn't either). Go version
    dependent: ``URIs`` entries carry Go 1.19's ``url.URL`` fields (``OmitHost`` is new in 1.19); a
    P-224/256/384/521 ``Curve`` prints as ``{}``. A request Go would not parse raises 9003 with Go's reason.
    """
    der = csr if isinstance(csr, bytes) else csr.public_bytes(serialization.Encoding.DER)
    try:
        return _csr_struct(der)
    except _ASN1Error as exc:
        raise CfsslError(Category.CSR, Reason.PARSE_FAILED, str(exc)) from exc


def describe_csr_pem(data: bytes) -> dict[str, Any]:
    """``certinfo -csr``: the first PEM block, whatever its type (cfssl doesn't check it), as :func:`csr_info`.

    No PEM block -> 9002 ``CSR Decode failed`` (newest cfssl; the 2016 build crashes on a nil block).
    """
    block, _ = decode_pem(data)
    if block is None:
        raise CfsslError(Category.CSR, Reason.DECODE_FAILED)
    return csr_info(block.data)


# --------------------------------------------------------------------------------------------------------------
# Remote certificates


def _split_host_port(domain: str) -> tuple[str, str]:
    """Go ``net.SplitHostPort``, falling back to (domain, "443") like cfssl when it fails."""
    if domain.startswith("["):
        end = domain.find("]")
        if end > 0 and domain[end + 1 : end + 2] == ":" and ":" not in domain[end + 2 :]:
            return domain[1:end], domain[end + 2 :]
        return (domain[1:end] if end > 0 and end == len(domain) - 1 else domain), "443"
    if domain.count(":") == 1:
        host, _, port = domain.partition(":")
        return host, port
    return domain, "443"


def _join_host_port(host: str, port: str) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# OpenSSL reasons whose Go crypto/tls wording is known.
_TLS_ERRORS = {
    "WRONG_VERSION_NUMBER": "tls: first record does not look like a TLS handshake",
    "UNEXPECTED_EOF_WHILE_READING": "EOF",
    "EOF": "EOF",
}


def _dial_error(message: str) -> CfsslError:
    return CfsslError(Category.DIAL, Reason.NONE, message)


Connect = Callable[[tuple[str, int], float], Any]  # socket.create_connection's shape: ((host, port), timeout) -> socket


@dataclass(frozen=True)
class FetchPolicy:
    """Which addresses a server may open outbound connections to when a network client asks it to (serve's
    ``certinfo`` ``domain``, ``bundle`` ``domain`` and AIA fetches; ``-fetch-allow``).

    The default refuses loopback (127.0.0.0/8, ::1), link-local (169.254.0.0/16 with the cloud metadata
    address 169.254.169.254, fe80::/10) and unspecified addresses, IPv4-mapped ones included: a client must not
    reach the services of the server's own host. ``networks`` and ``names`` (an allow-list) replace that default:
    only addresses in ``networks``, or any address of a host name in ``names``, are dialled. ``disabled``
    refuses every fetch. The check is made on each address the name resolves to, and the connection is made to
    that checked address, so a DNS answer cannot swap in another one. The CLI does not use it.
    """

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    names: frozenset[str] = frozenset()
    disabled: bool = False

    @classmethod
    def parse(cls, text: str) -> FetchPolicy:
        """``-fetch-allow``: empty = the default, ``none`` = no fetches, else comma-separated CIDRs, addresses
        and host names."""
        entries = [e.strip() for e in text.split(",") if e.strip()]
        if not entries:
            return cls()
        if [e.lower() for e in entries] == ["none"]:
            return cls(disabled=True)
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        names: set[str] = set()
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                if entry.lower() == "none" or not re.fullmatch(r"[A-Za-z0-9_.-]{1,253}", entry):
                    raise CfsslError(Category.DIAL, Reason.NONE, f"invalid -fetch-allow entry {entry!r}") from None
                names.add(entry.lower().rstrip("."))
        return cls(tuple(networks), frozenset(names))

    @property
    def restricted(self) -> bool:
        return bool(self.networks or self.names)

    def permits(self, name: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """Whether ``address`` (one that ``name`` resolved to, or ``name`` itself) may be dialled."""
        if self.disabled:
            return False
        if self.restricted:
            return name.lower().rstrip(".") in self.names or any(address in net for net in self.networks)
        mapped = getattr(address, "ipv4_mapped", None)
        plain = mapped if mapped is not None else address
        return not (plain.is_loopback or plain.is_link_local or plain.is_unspecified)

    def connect(self, address: tuple[str, int], timeout: float) -> Any:
        """A connected socket to ``address`` (host, port), tried address by address as resolved, skipping the
        ones this policy refuses. Raises 6000 when none is permitted, or the resolver's / the last connect's
        ``OSError`` (which callers report in Go's words)."""
        import socket

        host, port = address
        if self.disabled:
            raise _dial_error(f"dial tcp {_join_host_port(host, str(port))}: outbound connections are disabled (serve -fetch-allow none)")
        refused: list[str] = []
        last: OSError | None = None
        for family, kind, proto, _name, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
            ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if not self.permits(host, ip):
                refused.append(str(ip))
                continue
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(timeout)
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                last = exc
                continue
            return sock
        if last is not None:
            raise last
        raise _dial_error(
            f"dial tcp {_join_host_port(host, str(port))}: refusing to connect to {', '.join(refused) or host}: "
            "not permitted by the server's fetch policy (serve -fetch-allow)"
        )


def fetch_certificate(domain: str, ip: str = "", timeout: float = 10.0, connect: Connect | None = None) -> x509.Certificate:
    """The leaf certificate served by ``domain`` (``host[:port]``, port 443 by default).

    Like cfssl: a TLS handshake **without verification** (InsecureSkipVerify) and a ``timeout`` that covers
    the TCP connect and the handshake. ``ip`` (the ``-ip`` flag) dials that address instead of resolving the
    host, which is still sent as SNI; cfssl's certinfo ignores ``-ip`` (only ``bundle`` uses it). Failures are
    6000 errors whose message follows Go's (``dial tcp 127.0.0.1:1: connect: connection refused``).
    ``connect`` (a :meth:`FetchPolicy.connect`) replaces ``socket.create_connection``.
    """
    import socket  # here, not at the top: every key load imports this module, and only -domain dials
    import ssl

    host, port = _split_host_port(domain)
    dial_host = ip or host
    address = _join_host_port(dial_host, port)
    deadline = time.monotonic() + timeout
    try:
        port_number = int(port) if port.isdigit() else socket.getservbyname(port, "tcp")
    except OSError:
        raise _dial_error(f"dial tcp: lookup tcp/{port}: unknown port") from None
    try:
        sock = (connect or socket.create_connection)((dial_host, port_number), timeout)
    except socket.gaierror as exc:
        raise _dial_error(f"dial tcp: lookup {dial_host}: no such host") from exc
    except TimeoutError as exc:
        raise _dial_error(f"dial tcp {address}: i/o timeout") from exc
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise _dial_error(f"dial tcp {address}: connect: {reason}") from exc
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with sock:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            with context.wrap_socket(sock, server_hostname=None if _is_ip(host) else host) as conn:
                der = conn.getpeercert(binary_form=True)
    except TimeoutError as exc:
        raise _dial_error(f"dial tcp {address}: i/o timeout") from exc
    except ssl.SSLError as exc:
        raise _dial_error(_TLS_ERRORS.get(exc.reason or "", f"tls: {str(exc.reason or exc).lower()}")) from exc
    except OSError as exc:
        raise _dial_error(f"read tcp {address}: {(exc.strerror or str(exc)).lower()}") from exc
    if not der:
        raise _dial_error("received no server certificates")
    try:
        return _load_der_certificate(der)
    except Exception as exc:  # cryptography raises several types for malformed input
        raise _dial_error(f"tls: failed to parse certificate from server: {exc}") from exc


def describe_domain(domain: str, ip: str = "", timeout: float = 10.0, connect: Connect | None = None) -> dict[str, Any]:
    """``certinfo -domain``: :func:`fetch_certificate` then :func:`certificate_info`."""
    return certificate_info(fetch_certificate(domain, ip, timeout, connect))


# --------------------------------------------------------------------------------------------------------------
# Certificates recorded in the certificate database

NOT_FOUND = "no certificate found"


def describe_serial(db: CertDB, serial: str, aki: str) -> dict[str, Any]:
    """``certinfo -serial S -aki A -db-config F`` and the API's serial lookup: the recorded certificate,
    described as :func:`describe_certificate_pem` describes it.

    The serial is decimal (``0x…`` hex accepted), the AKI hex with or without colons, any case (cfssl
    lower-cases it and strips the colons). A row written by cfssl 2016 (empty AKI column) is found through
    its certificate's AKI. Not recorded -> 11200 ``no certificate found`` (cfssl: an untyped error with this
    text, a 500 through the API).
    """
    from cfsslpy.certdb import with_aki
    from cfsslpy.revocation import normalize_aki, parse_serial

    serial_text, aki_hex = str(parse_serial(serial)), normalize_aki(aki)
    records = db.get_certificate(serial_text, aki_hex)
    if not records:
        records = [r for r in db.certificates_by_serial(serial_text) if not r.aki and with_aki(r).aki == aki_hex]
    if not records:
        raise CfsslError(Category.CERT_STORE, Reason.RECORD_NOT_FOUND, NOT_FOUND)
    return describe_certificate_pem(records[0].pem.encode("utf-8"))
