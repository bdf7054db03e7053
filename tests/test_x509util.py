"""cfsslpy.x509util: the typed extension getter, key identifiers, UTC and Go time text."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cfsslpy import x509util

UTC = dt.timezone.utc
KEY = ec.derive_private_key(424242, ec.SECP256R1())


def certificate(*extensions: tuple[x509.ExtensionType, bool]) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x509util test")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(KEY.public_key())
        .serial_number(7)
        .not_valid_before(dt.datetime(2026, 1, 1, tzinfo=UTC))
        .not_valid_after(dt.datetime(2036, 1, 1, tzinfo=UTC))
    )
    for value, critical in extensions:
        builder = builder.add_extension(value, critical=critical)
    return builder.sign(KEY, hashes.SHA256())


def test_extension_is_typed_and_none_when_absent() -> None:
    cert = certificate((x509.BasicConstraints(ca=True, path_length=2), True))
    bc = x509util.extension(cert, x509.BasicConstraints)
    assert bc is not None and bc.ca and bc.path_length == 2
    assert x509util.extension(cert, x509.KeyUsage) is None


def test_a_malformed_extension_list_propagates_unless_lenient() -> None:
    # two SubjectKeyIdentifier extensions: cryptography refuses the list when it is parsed
    cert = certificate((x509.SubjectKeyIdentifier(b"\x01" * 20), False))
    ext_der = bytes.fromhex("301d0603551d0e04160414") + b"\x01" * 20  # the same extension again
    duplicated = _with_extra_extension(cert.public_bytes(serialization.Encoding.DER), ext_der)
    bad = x509.load_der_x509_certificate(duplicated)
    with pytest.raises(x509.DuplicateExtension):
        x509util.extension(bad, x509.SubjectKeyIdentifier)
    with pytest.raises(x509.DuplicateExtension):
        x509util.extension(bad, x509.BasicConstraints)  # the whole list is refused, whatever is asked for
    assert x509util.extension(bad, x509.BasicConstraints, lenient=True) is None
    assert x509util.subject_key_id(bad, lenient=True) == b""


def _with_extra_extension(der: bytes, extension_der: bytes) -> bytes:
    """The certificate's TBS with one more extension appended (the signature no longer matters here)."""

    def tlv(data: bytes, at: int) -> tuple[int, int, int]:  # tag position -> (header length, content length, end)
        first = data[at + 1]
        if first < 0x80:
            return 2, first, at + 2 + first
        n = first & 0x7F
        length = int.from_bytes(data[at + 2 : at + 2 + n], "big")
        return 2 + n, length, at + 2 + n + length

    def encode(tag: int, content: bytes) -> bytes:
        n = len(content)
        if n < 0x80:
            return bytes([tag, n]) + content
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        return bytes([tag, 0x80 | len(raw)]) + raw + content

    hdr, _, _ = tlv(der, 0)
    tbs_at = hdr
    tbs_hdr, _, tbs_end = tlv(der, tbs_at)
    pos = tbs_at + tbs_hdr
    parts: list[bytes] = []
    while pos < tbs_end:
        h, n, end = tlv(der, pos)
        if der[pos] == 0xA3:  # [3] Extensions
            inner = der[pos + h : end]
            ih, _, _ = tlv(inner, 0)
            seq = inner[ih:] + extension_der
            parts.append(encode(0xA3, encode(0x30, seq)))
        else:
            parts.append(der[pos:end])
        pos = end
    tbs = encode(0x30, b"".join(parts))
    rest = der[tbs_end:]
    return encode(0x30, tbs + rest)


def test_key_identifiers() -> None:
    with_ski = certificate(
        (x509.SubjectKeyIdentifier(b"\xab" * 20), False),
        (x509.AuthorityKeyIdentifier(b"\xcd" * 20, None, None), False),
    )
    assert x509util.subject_key_id(with_ski) == b"\xab" * 20
    assert x509util.authority_key_id(with_ski) == b"\xcd" * 20
    assert x509util.key_identifier(with_ski) == b"\xab" * 20  # the SKI when there is one
    bare = certificate()
    assert x509util.subject_key_id(bare) == b"" and x509util.authority_key_id(bare) == b""
    # RFC 5280 method 1: SHA-1 of the subjectPublicKey BIT STRING's bytes (the uncompressed EC point here)
    point = KEY.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert x509util.key_identifier(bare) == hashlib.sha1(point).digest()  # noqa: S324
    issuer_only = certificate((x509.AuthorityKeyIdentifier(None, [x509.DirectoryName(bare.subject)], 7), False))
    assert x509util.authority_key_id(issuer_only) == b""


def test_utc_takes_naive_times_as_utc() -> None:
    naive = dt.datetime(2026, 5, 6, 7, 8, 9, 500)
    assert x509util.utc(naive) == dt.datetime(2026, 5, 6, 7, 8, 9, 500, tzinfo=UTC)
    plus_two = dt.datetime(2026, 5, 6, 9, 8, 9, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert x509util.utc(plus_two) == dt.datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert x509util.utc(plus_two).tzinfo is UTC
    assert x509util.utc_seconds(naive) == dt.datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "nano", "seconds"),
    [
        (dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05Z", "2026-01-02T03:04:05Z"),
        (dt.datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=UTC), "2026-01-02T03:04:05.5Z", "2026-01-02T03:04:05Z"),
        (dt.datetime(2026, 1, 2, 3, 4, 5, 120, tzinfo=UTC), "2026-01-02T03:04:05.00012Z", "2026-01-02T03:04:05Z"),
        (dt.datetime(2026, 1, 2, 5, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))), "2026-01-02T03:04:05Z", "2026-01-02T03:04:05Z"),
        (dt.datetime(2026, 1, 2, 3, 4, 5), "2026-01-02T03:04:05Z", "2026-01-02T03:04:05Z"),  # naive = UTC
        (dt.datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),  # Go's zero time
    ],
)
def test_go_time_and_rfc3339(value: dt.datetime, nano: str, seconds: str) -> None:
    assert x509util.go_time(value) == nano
    assert x509util.rfc3339(value) == seconds


def test_b64() -> None:
    assert x509util.b64(b"\x00\xff\xfe") == "AP/+"
    assert x509util.b64(b"") == ""
