"""CRLs (reference §4.7): every field of a CRL we made, parsed back with cryptography, and the errors."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from integration.helpers import key as shared_key

from cfsslpy.certdb import CertDB, CertificateRecord, DBConfig
from cfsslpy.crl import (
    DEFAULT_LIFETIME,
    RevokedEntry,
    crl_from_db,
    crl_number,
    encode,
    gencrl,
    generate_crl,
    parse_lifetime,
    parse_serial_list,
)
from cfsslpy.errors import CfsslError, PlainError
from cfsslpy.keys import PrivateKey, encode_private_key

NOW = dt.datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=dt.timezone.utc)
NOW_S = NOW.replace(microsecond=0)
WEEK = dt.timedelta(days=7)


def make_ca(
    key: PrivateKey,
    name: str = "CRL Test CA",
    *,
    ca: bool | None = True,
    crl_sign: bool | None = True,
    ski: bool = True,
) -> x509.Certificate:
    """A self-signed certificate with exactly the extensions the checks look at (None = extension absent)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"), x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=365))  # the CA signs CRLs at NOW - 60 days too
        .not_valid_after(dt.datetime(2051, 1, 1, tzinfo=dt.timezone.utc))  # and in 2049
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    if crl_sign is not None:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=crl_sign,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if ski:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    return builder.sign(key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256())


def make_leaf(ca_cert: x509.Certificate, ca_key: PrivateKey, serial: int, *, expires: dt.datetime | None = None) -> x509.Certificate:
    key = shared_key("p256#leaf")
    aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
        ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    )
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"leaf {serial}")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOW - dt.timedelta(days=2))
        .not_valid_after(expires or NOW + dt.timedelta(days=365))
        .add_extension(aki, critical=False)
        .sign(ca_key, None if isinstance(ca_key, ed25519.Ed25519PrivateKey) else hashes.SHA256())
    )


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def ski_of(cert: x509.Certificate) -> bytes:
    return bytes(cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest)


def reason_of(entry: x509.RevokedCertificate) -> x509.ReasonFlags | None:
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return None


def crl_number_of(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


# ---------------------------------------------------------------------------------------------------------
# generate_crl: the CRL's fields


# (key kind, signature hash name): Go's CRL rule, RSA always SHA-256 whatever the key size
ALGORITHMS = [("rsa2048", "sha256"), ("rsa4096", "sha256"), ("p256", "sha256"), ("p384", "sha384"), ("p521", "sha512"), ("ed25519", None)]


@pytest.mark.parametrize(("kind", "hash_name"), ALGORITHMS)
def test_generate_crl_fields(kind: str, hash_name: str | None) -> None:
    key = shared_key(kind)
    cert = make_ca(key)
    revoked_at = dt.datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=dt.timezone.utc)
    entries = [
        RevokedEntry(123, revoked_at),
        RevokedEntry(2**158 + 5, revoked_at + dt.timedelta(hours=1), 1),
        RevokedEntry(77, revoked_at, 6),
    ]
    der = generate_crl(cert, key, entries, lifetime=dt.timedelta(hours=36), number=42, now=NOW)
    crl = x509.load_der_x509_crl(der)

    assert crl.issuer == cert.subject
    assert crl.last_update_utc == NOW_S  # second precision
    assert crl.next_update_utc == NOW_S + dt.timedelta(hours=36)
    assert [(e.serial_number, e.revocation_date_utc, reason_of(e)) for e in crl] == [
        (123, revoked_at.replace(microsecond=0), None),
        (2**158 + 5, revoked_at.replace(microsecond=0) + dt.timedelta(hours=1), x509.ReasonFlags.key_compromise),
        (77, revoked_at.replace(microsecond=0), x509.ReasonFlags.certificate_hold),
    ]
    # CRL extensions: AKI (keyIdentifier only, = the CA's SKI) and the CRL number, both non-critical
    assert [(e.oid, e.critical) for e in crl.extensions] == [
        (x509.AuthorityKeyIdentifier.oid, False),
        (x509.CRLNumber.oid, False),
    ]
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski_of(cert)
    assert aki.authority_cert_issuer is None and aki.authority_cert_serial_number is None
    assert crl_number_of(crl) == 42
    algorithm = crl.signature_hash_algorithm
    assert (algorithm.name if algorithm else None) == hash_name
    assert crl.is_signature_valid(cert.public_key())  # type: ignore[arg-type]
    assert not crl.is_signature_valid(shared_key("p256#other").public_key())


def test_empty_crl_and_time_encoding() -> None:
    key = shared_key("p256")
    cert = make_ca(key)
    crl = x509.load_der_x509_crl(generate_crl(cert, key, [], lifetime=WEEK, number=0, now=NOW))
    assert len(crl) == 0 and crl_number_of(crl) == 0
    assert crl.next_update_utc == NOW_S + WEEK
    # Go's (and RFC 5280's) rule: UTCTime until 2049, GeneralizedTime from 2050
    late = dt.datetime(2049, 12, 31, 12, tzinfo=dt.timezone.utc)
    der = generate_crl(cert, key, [RevokedEntry(1, late)], lifetime=dt.timedelta(days=2), number=1, now=late)
    crl = x509.load_der_x509_crl(der)
    assert crl.last_update_utc == late and crl.next_update_utc == late + dt.timedelta(days=2)
    assert b"\x17\x0d491231120000Z" in der  # thisUpdate and revocationDate as UTCTime
    assert b"\x18\x0f20500102120000Z" in der  # nextUpdate as GeneralizedTime


def test_aki_computed_when_the_ca_has_no_ski() -> None:
    key = shared_key("p384")
    cert = make_ca(key, ski=False)
    crl = x509.load_der_x509_crl(generate_crl(cert, key, [], lifetime=WEEK, number=1, now=NOW))
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest


def test_ca_without_basic_constraints_or_key_usage_is_accepted(caplog: pytest.LogCaptureFixture) -> None:
    key = shared_key("p256")
    cert = make_ca(key, ca=None, crl_sign=None)
    crl = x509.load_der_x509_crl(generate_crl(cert, key, [], lifetime=WEEK, number=1, now=NOW))
    assert crl.is_signature_valid(key.public_key())
    assert "no basicConstraints" in caplog.text


@pytest.mark.parametrize(
    ("ca_kwargs", "key_kind", "code", "message"),
    [
        ({"ca": False}, "p256", 5300, "the CA certificate is not a CA (basicConstraints CA:FALSE)"),
        ({"crl_sign": False}, "p256", 5300, "the CA certificate's key usage does not allow CRL signing (no cRLSign)"),
        ({}, "p256#other", 2300, "Private key does not match public key"),
    ],
)
def test_generate_crl_refuses_unfit_issuers(ca_kwargs: dict[str, bool], key_kind: str, code: int, message: str) -> None:
    cert = make_ca(shared_key("p256"), **ca_kwargs)  # type: ignore[arg-type]
    with pytest.raises(CfsslError) as info:
        generate_crl(cert, shared_key(key_kind), [], lifetime=WEEK, number=1, now=NOW)
    assert (info.value.code, info.value.message) == (code, message)


@pytest.mark.parametrize(
    ("entries", "lifetime", "number", "message"),
    [
        ([], dt.timedelta(0), 1, "invalid CRL lifetime 0s: must be positive"),
        ([], dt.timedelta(seconds=-1), 1, "invalid CRL lifetime -1s: must be positive"),
        ([], WEEK, -1, "invalid CRL number -1: must be 0 .. 2^159-1"),
        ([], WEEK, 2**159, f"invalid CRL number {2**159}: must be 0 .. 2^159-1"),
        ([RevokedEntry(5, NOW, 7)], WEEK, 1, "serial 5: invalid revocation reason 7"),
        ([RevokedEntry(5, NOW, 11)], WEEK, 1, "serial 5: invalid revocation reason 11"),
        ([RevokedEntry(5, NOW, 8)], WEEK, 1, "serial 5: reason removeFromCRL (8) belongs in delta CRLs only"),
    ],
)
def test_generate_crl_refuses_bad_values(entries: list[RevokedEntry], lifetime: dt.timedelta, number: int, message: str) -> None:
    key = shared_key("p256")
    with pytest.raises(CfsslError) as info:
        generate_crl(make_ca(key), key, entries, lifetime=lifetime, number=number, now=NOW)
    assert (info.value.code, info.value.message) == (1300, message)


def test_crl_number_is_time_based_and_strictly_increasing() -> None:
    assert crl_number(dt.datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=dt.timezone.utc)) == 1_000_005
    assert crl_number(NOW) == int(NOW.timestamp()) * 1_000_000 + 890123
    numbers = [crl_number() for _ in range(1000)]
    assert all(b > a for a, b in zip(numbers, numbers[1:], strict=False))
    assert numbers[0] >= crl_number(dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5))


def test_encode() -> None:
    der = b"\x30\x03\x02\x01\x01" * 20
    assert encode(der, False) == base64.b64encode(der).decode() + "\n"
    text = encode(der, True)
    lines = text.splitlines()
    assert lines[0] == "-----BEGIN X509 CRL-----" and lines[-1] == "-----END X509 CRL-----" and text.endswith("\n")
    assert all(len(line) <= 64 for line in lines[1:-1])
    assert base64.b64decode("".join(lines[1:-1])) == der


# ---------------------------------------------------------------------------------------------------------
# gencrl: cfssl's serial list / PEM inputs


def ca_files(kind: str = "p256") -> tuple[x509.Certificate, PrivateKey, bytes, bytes]:
    key = shared_key(kind)
    cert = make_ca(key)
    return cert, key, pem(cert), encode_private_key(key)


def test_gencrl_lists_every_serial_revoked_now() -> None:
    cert, key, cert_pem, key_pem = ca_files()
    serials = b"123\n\n  \n456 keyCompromise\r\n0x1f 6\n789 superseded\n99 0\n"
    crl = x509.load_der_x509_crl(gencrl(serials, cert_pem, key_pem, "3600", now=NOW))
    assert [(e.serial_number, e.revocation_date_utc, reason_of(e)) for e in crl] == [
        (123, NOW_S, None),
        (456, NOW_S, x509.ReasonFlags.key_compromise),
        (31, NOW_S, x509.ReasonFlags.certificate_hold),
        (789, NOW_S, x509.ReasonFlags.superseded),
        (99, NOW_S, None),
    ]
    assert crl.last_update_utc == NOW_S and crl.next_update_utc == NOW_S + dt.timedelta(hours=1)
    assert crl_number_of(crl) == crl_number(NOW)
    assert crl.is_signature_valid(key.public_key())  # type: ignore[arg-type]
    assert crl.issuer == cert.subject


def test_gencrl_numbers_increase_between_runs() -> None:
    _, _, cert_pem, key_pem = ca_files()
    first = x509.load_der_x509_crl(gencrl(b"1\n", cert_pem, key_pem))
    second = x509.load_der_x509_crl(gencrl(b"1\n", cert_pem, key_pem))
    assert crl_number_of(second) > crl_number_of(first)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", DEFAULT_LIFETIME),
        ("0", DEFAULT_LIFETIME),
        ("  0x0  ", DEFAULT_LIFETIME),
        ("86400", dt.timedelta(days=1)),
        ("0x10", dt.timedelta(seconds=16)),
        ("010", dt.timedelta(seconds=8)),  # Go's base 0: a leading 0 is octal
        ("0b11", dt.timedelta(seconds=3)),
        ("1_000", dt.timedelta(seconds=1000)),
        ("2147483647", dt.timedelta(seconds=2147483647)),
    ],
)
def test_parse_lifetime(text: str, expected: dt.timedelta) -> None:
    assert parse_lifetime(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", 'strconv.ParseInt: parsing "abc": invalid syntax'),
        ("08", 'strconv.ParseInt: parsing "08": invalid syntax'),
        ("1h", 'strconv.ParseInt: parsing "1h": invalid syntax'),
        ("2147483648", 'strconv.ParseInt: parsing "2147483648": value out of range'),
    ],
)
def test_parse_lifetime_go_errors(text: str, message: str) -> None:
    with pytest.raises(PlainError) as info:
        parse_lifetime(text)
    assert info.value.message == message


def test_negative_lifetime_is_refused() -> None:
    with pytest.raises(CfsslError) as info:
        parse_lifetime("-60")
    assert (info.value.code, info.value.message) == (1300, "invalid CRL lifetime '-60': want a positive number of seconds")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"1\nabc\n", "serial list line 2: invalid serial number 'abc': want a decimal integer"),
        (b"\n\n-5\n", "serial list line 3: invalid serial number '-5': out of range"),
        (b"0\n", "serial list line 1: invalid serial number '0': out of range"),
        (b"12 keycompromise extra\n", "serial list line 1: '12 keycompromise extra': want SERIAL [REASON]"),
        (b"12 nosuchreason\n", "serial list line 1: unknown revocation reason 'nosuchreason'"),
        (b"12 7\n", "serial list line 1: unknown revocation reason '7'"),
        (b"12 removefromcrl\n", "serial list line 1: reason removeFromCRL belongs in delta CRLs only"),
        (b"12 1\n13\n12 2\n", "serial list line 3: serial 12 already listed on line 1 with another reason"),
        (b"\xff\n", "serial list: not UTF-8 text"),
    ],
)
def test_serial_list_errors_name_the_line(data: bytes, message: str) -> None:
    with pytest.raises(CfsslError) as info:
        parse_serial_list(data, NOW)
    assert (info.value.code, info.value.message) == (1300, message)


def test_serial_list_repeats_are_listed_once(caplog: pytest.LogCaptureFixture) -> None:
    entries = parse_serial_list(b"12 superseded\n13\n12 4\n", NOW)
    assert entries == [RevokedEntry(12, NOW, 4), RevokedEntry(13, NOW, 0)]
    assert "serial list line 3: serial 12 already listed on line 1; listed once" in caplog.text


@pytest.mark.parametrize(
    ("cert_pem", "key_pem", "code", "message"),
    [
        # cfssl's CLI (both versions) prints these; its API answers "malformed certificate" / "malformed Private Key"
        (b"not a pem", None, 1002, "Failed to decode certificate"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", None, 1003, "Failed to parse certificate"),
        (None, b"not a key", 2002, "Failed to decode private key"),
        (None, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", 2003, "Failed to parse private key"),
    ],
)
def test_gencrl_malformed_inputs(cert_pem: bytes | None, key_pem: bytes | None, code: int, message: str) -> None:
    _, _, good_cert, good_key = ca_files()
    with pytest.raises(CfsslError) as info:
        gencrl(b"1\n", cert_pem or good_cert, key_pem or good_key)
    assert (info.value.code, info.value.message) == (code, message)


def test_gencrl_checks_in_cfssl_order() -> None:
    # lifetime first, then the certificate, then the serial list, then the key
    with pytest.raises(PlainError):
        gencrl(b"bad\n", b"bad", b"bad", "bad")
    with pytest.raises(CfsslError) as info:
        gencrl(b"bad\n", b"bad", b"bad", "60")
    assert info.value.code == 1002
    _, _, cert_pem, key_pem = ca_files()
    with pytest.raises(CfsslError) as info:
        gencrl(b"bad\n", cert_pem, b"bad", "60")
    assert info.value.code == 1300
    with pytest.raises(CfsslError) as info:
        gencrl(b"1\n", cert_pem, encode_private_key(shared_key("p256#other")), "60")
    assert info.value.code == 2300


def test_gencrl_encrypted_key_uses_cfssl_ca_pk_password() -> None:
    cert, key, cert_pem, _ = ca_files("rsa2048")
    assert isinstance(key, rsa.RSAPrivateKey)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.BestAvailableEncryption(b"s3cret")
    )
    with pytest.raises(CfsslError) as info:
        gencrl(b"1\n", cert_pem, encrypted, environ={})
    assert (info.value.code, info.value.message) == (2100, "Private key is encrypted.")
    crl = x509.load_der_x509_crl(gencrl(b"1\n", cert_pem, encrypted, environ={"CFSSL_CA_PK_PASSWORD": "s3cret"}))
    assert crl.is_signature_valid(key.public_key())
    with pytest.raises(CfsslError) as info:
        gencrl(b"1\n", cert_pem, encrypted, environ={"CFSSL_CA_PK_PASSWORD": "hunter2"})
    assert (info.value.code, info.value.message) == (2003, "failed to decrypt private key (wrong password?)")


# ---------------------------------------------------------------------------------------------------------
# crl_from_db: the certdb's revoked, unexpired certificates of one CA


@pytest.fixture
def db(tmp_path: Path) -> Iterator[CertDB]:
    with CertDB(DBConfig("sqlite3", str(tmp_path / "certs.db"))) as database:
        yield database


def record(cert: x509.Certificate) -> CertificateRecord:
    return CertificateRecord.from_certificate(cert, pem=pem(cert).decode())


def test_crl_from_db_lists_this_issuers_revoked_unexpired_certificates(db: CertDB) -> None:
    key1, key2 = shared_key("p256"), shared_key("ed25519")
    ca1, ca2 = make_ca(key1, "CA one"), make_ca(key2, "CA two")
    aki1, aki2 = ski_of(ca1).hex(), ski_of(ca2).hex()
    for serial in (11, 12, 13, 14):
        db.insert_certificate(record(make_leaf(ca1, key1, serial)))
    db.insert_certificate(record(make_leaf(ca1, key1, 15, expires=NOW - dt.timedelta(days=1))))  # expired
    # a row written by cfssl 2016: empty AKI column, matched through its certificate
    db.insert_certificate(dataclasses.replace(record(make_leaf(ca1, key1, 16)), aki=""))
    for serial in (11, 21):  # CA two: one serial equal to one of CA one's
        db.insert_certificate(record(make_leaf(ca2, key2, serial)))
    t1, t2 = NOW - dt.timedelta(hours=5), NOW - dt.timedelta(hours=3)
    db.revoke("11", aki1, 1, now=t1)
    db.revoke("12", aki1, 0, now=t2)
    db.revoke("15", aki1, 4, now=t2)
    db.revoke("16", aki1, 5, now=t2)
    db.revoke("11", aki2, 3, now=t1)
    db.revoke("21", aki2, 9, now=t2)

    crl = x509.load_der_x509_crl(crl_from_db(db, ca1, key1, dt.timedelta(hours=12), now=NOW))
    listed = sorted((e.serial_number, e.revocation_date_utc, reason_of(e)) for e in crl)
    assert listed == [
        (11, t1.replace(microsecond=0), x509.ReasonFlags.key_compromise),
        (12, t2.replace(microsecond=0), None),
        (16, t2.replace(microsecond=0), x509.ReasonFlags.cessation_of_operation),
    ]
    assert crl.issuer == ca1.subject and crl.is_signature_valid(key1.public_key())
    assert crl.last_update_utc == NOW_S and crl.next_update_utc == NOW_S + dt.timedelta(hours=12)
    assert crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == ski_of(ca1)

    crl2 = x509.load_der_x509_crl(crl_from_db(db, ca2, key2, WEEK, now=NOW))
    assert sorted((e.serial_number, reason_of(e)) for e in crl2) == [
        (11, x509.ReasonFlags.affiliation_changed),
        (21, x509.ReasonFlags.privilege_withdrawn),
    ]
    assert crl2.signature_hash_algorithm is None and crl2.is_signature_valid(key2.public_key())


def test_crl_from_db_numbers_increase_across_runs_and_clocks(db: CertDB, tmp_path: Path) -> None:
    key = shared_key("p256")
    ca = make_ca(key)

    def number(at: dt.datetime | None, database: CertDB = db) -> int:
        return crl_number_of(x509.load_der_x509_crl(crl_from_db(database, ca, key, WEEK, now=at)))

    first = number(NOW)
    assert first == crl_number(NOW)  # the time floor
    second = number(NOW - dt.timedelta(days=30))  # the clock went back: the database still counts up
    assert second == first + 1
    third = number(None)
    assert third >= crl_number(NOW) and third > second
    # another database (another serve instance) at a later time still gets a larger number
    with CertDB(DBConfig("sqlite3", str(tmp_path / "other.db"))) as other:
        assert number(None, other) > third
    # a second handle on the same database (another process) continues the sequence
    with CertDB(DBConfig("sqlite3", str(tmp_path / "certs.db"))) as again:
        assert number(NOW - dt.timedelta(days=60), again) > max(third, second)


def test_crl_from_db_refuses_bad_rows_and_values(db: CertDB, caplog: pytest.LogCaptureFixture) -> None:
    key = shared_key("p256")
    ca = make_ca(key)
    with pytest.raises(CfsslError) as info:
        crl_from_db(db, ca, key, dt.timedelta(0), now=NOW)
    assert info.value.code == 1300
    with pytest.raises(CfsslError) as info:
        crl_from_db(db, ca, shared_key("p256#other"), WEEK, now=NOW)
    assert info.value.code == 2300
    # a revoked row whose serial is not a number: the whole CRL fails rather than leaving it out
    bad = dataclasses.replace(record(make_leaf(ca, key, 5)), serial="5x", status="revoked", revoked_at=NOW)
    db.insert_certificate(bad)
    with pytest.raises(CfsslError) as info:
        crl_from_db(db, ca, key, WEEK, now=NOW)
    assert (info.value.code, info.value.message) == (11000, "certificate record with serial '5x': not a decimal serial number")


def test_crl_from_db_cfssl_rows_with_odd_reasons(db: CertDB, caplog: pytest.LogCaptureFixture) -> None:
    # cfssl's revoke stores removeFromCRL (8) as a revocation; a row revoked by hand may lack a time
    key = shared_key("p256")
    ca = make_ca(key)
    db.insert_certificate(dataclasses.replace(record(make_leaf(ca, key, 7)), status="revoked", reason=8, revoked_at=NOW))
    db.insert_certificate(dataclasses.replace(record(make_leaf(ca, key, 8)), status="revoked", reason=2, revoked_at=None))
    crl = x509.load_der_x509_crl(crl_from_db(db, ca, key, WEEK, now=NOW))
    assert sorted((e.serial_number, e.revocation_date_utc, reason_of(e)) for e in crl) == [
        (7, NOW_S, None),
        (8, NOW_S, x509.ReasonFlags.ca_compromise),
    ]
    assert "reason 8, not valid in a CRL" in caplog.text and "without a revocation time" in caplog.text


def test_ec_keys_sign_by_curve() -> None:
    # the CA's own signature hash (SHA-256 here) does not matter: P-521 CRLs use SHA-512
    key = shared_key("p521")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    crl = x509.load_der_x509_crl(generate_crl(make_ca(key), key, [], lifetime=WEEK, number=1, now=NOW))
    assert isinstance(crl.signature_hash_algorithm, hashes.SHA512)
