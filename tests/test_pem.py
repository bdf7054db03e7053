"""PEM framing (Go's pem.Decode rules) and certificate / CSR parsing with cfssl's error codes (reference §7.8, §3.8)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from cfsslpy.errors import Category, CfsslError
from cfsslpy.pem import (
    all_blocks,
    decode_pem,
    encode_pem,
    lenient_body_der,
    parse_certificate_pem,
    parse_certificates_pem,
    parse_csr_pem,
    pem_blocks,
    pem_spans,
    plain_certificate_ders,
)

KEY = ec.generate_private_key(ec.SECP256R1())


def make_cert(cn: str = "pem test") -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(KEY.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(KEY, hashes.SHA256())
    )


def make_csr() -> x509.CertificateSigningRequest:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pem csr")])
    return x509.CertificateSigningRequestBuilder().subject_name(name).sign(KEY, hashes.SHA256())


CERT = make_cert()
CERT_PEM = CERT.public_bytes(serialization.Encoding.PEM)
CSR = make_csr()
CSR_PEM = CSR.public_bytes(serialization.Encoding.PEM)
CSR_DER = CSR.public_bytes(serialization.Encoding.DER)


def code_of(exc: pytest.ExceptionInfo[CfsslError]) -> tuple[int, str]:
    return exc.value.code, exc.value.message


# -- framing ------------------------------------------------------------------------------------------------


def test_encode_pem_uses_64_character_lines_and_a_trailing_newline() -> None:
    der = bytes(range(256))
    pem = encode_pem("TEST", der)
    lines = pem.decode().splitlines()
    assert lines[0] == "-----BEGIN TEST-----" and lines[-1] == "-----END TEST-----"
    assert all(len(line) == 64 for line in lines[1:-2]) and 0 < len(lines[-2]) <= 64
    assert pem.endswith(b"-----\n") and b"\r" not in pem
    assert base64.b64decode("".join(lines[1:-1])) == der


def test_decode_round_trip_and_rest() -> None:
    block, rest = decode_pem(b"junk before\n" + encode_pem("A", b"one") + encode_pem("B", b"two"))
    assert block is not None and (block.label, block.data) == ("A", b"one")
    second, tail = decode_pem(rest)
    assert second is not None and (second.label, second.data) == ("B", b"two")
    assert decode_pem(tail) == (None, tail)


def test_any_label_is_accepted_like_go() -> None:
    block, _ = decode_pem(encode_pem("Ed25519 PRIVATE KEY", b"k"))
    assert block is not None and block.label == "Ed25519 PRIVATE KEY"


def test_crlf_line_endings() -> None:
    block, _ = decode_pem(encode_pem("CERTIFICATE", b"abc").replace(b"\n", b"\r\n"))
    assert block is not None and block.data == b"abc"


def test_headers_are_parsed() -> None:
    text = b"-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nYWJj\n-----END EC PRIVATE KEY-----\n"
    block, _ = decode_pem(text)
    assert block is not None
    assert block.headers == {"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00"}
    assert block.data == b"abc"
    assert block.raw == text


def test_mismatched_end_label_is_not_a_block() -> None:
    assert decode_pem(b"-----BEGIN A-----\nYWJj\n-----END B-----\n")[0] is None


def test_bad_base64_is_skipped_for_the_next_block() -> None:
    blocks = all_blocks(b"-----BEGIN A-----\n!!!!\n-----END A-----\n" + encode_pem("B", b"ok"))
    assert [(b.label, b.data) for b in blocks] == [("B", b"ok")]


def test_all_blocks() -> None:
    assert [b.label for b in all_blocks(CERT_PEM + CSR_PEM + CERT_PEM)] == ["CERTIFICATE", "CERTIFICATE REQUEST", "CERTIFICATE"]
    assert all_blocks(b"no pem here") == []


# -- the find-based framer (pools, mkbundle's walk) ---------------------------------------------------------

CERT_DER = CERT.public_bytes(serialization.Encoding.DER)
OTHER_PEM = make_cert("other").public_bytes(serialization.Encoding.PEM)


def test_pem_spans_give_the_label_and_where_the_body_lies() -> None:
    data = b"junk-----BEGIN A-----x\nYWJj\n-----END A-----"
    ((label, head_end, end),) = pem_spans(data)
    assert (label, data[head_end:end]) == (b"A", b"x\nYWJj\n")


def test_pem_spans_skip_a_label_that_runs_past_its_line_and_stop_at_a_missing_end() -> None:
    assert [s[0] for s in pem_spans(b"-----BEGIN A\n-----BEGIN B-----\nYQ==\n-----END B-----\n")] == [b"B"]
    assert [s[0] for s in pem_spans(b"-----BEGIN A-----\nYQ==\n" + encode_pem("B", b"b"))] == []


def test_pem_blocks_number_every_block_and_take_the_body_from_the_next_line() -> None:
    data = encode_pem("KEY", b"k") + b"-----BEGIN CERTIFICATE----- trailing\nYWJj\n-----END CERTIFICATE-----\n"
    assert list(pem_blocks(data)) == [(1, b"KEY", b"aw==\n"), (2, b"CERTIFICATE", b"YWJj\n")]
    assert list(pem_blocks(b"-----BEGIN A-----YWJj-----END A-----")) == []  # no line after the BEGIN line


def test_lenient_body_der_drops_headers_and_ignores_stray_characters() -> None:
    assert lenient_body_der(b"Proc-Type: 4\nDEK-Info: x\n\nYW Jj!\n") == b"abc"
    assert lenient_body_der(b"Proc-Type: 4\r\n\r\nYWJj\r\n") == b"abc"
    with pytest.raises(binascii.Error):
        lenient_body_der(b"YWJ")


def test_plain_certificate_ders_of_a_plain_bundle() -> None:
    text = b"# a comment: kept out of the blocks\n" + CERT_PEM + b"\n" + OTHER_PEM.strip()
    assert plain_certificate_ders(text) == [CERT_DER, x509.load_pem_x509_certificate(OTHER_PEM).public_bytes(serialization.Encoding.DER)]


@pytest.mark.parametrize(
    "text",
    [
        b"",
        CERT_PEM,  # does not end with the END line (the caller strips)
        (CERT_PEM + CSR_PEM).strip(),  # another label
        CERT_PEM.replace(b"-----\n", b"-----\nA: b\n\n", 1).strip(),  # headers
        CERT_PEM.replace(b"-----END CERTIFICATE-----\n", b"") + CERT_PEM.strip(),  # an END after the next BEGIN
        CERT_PEM.replace(b"-----END CERTIFICATE-----\n", b"-----END CERTIFICATE") + CERT_PEM.strip(),  # shared dashes
        b"-----BEGIN CERTIFICATE-----END CERTIFICATE-----",  # an END inside the BEGIN line's dashes
        b"-----BEGIN CERTIFICATE-----\nYWJ\n-----END CERTIFICATE-----",  # base64 that does not decode
    ],
)
def test_plain_certificate_ders_refuse_anything_unusual(text: bytes) -> None:
    assert plain_certificate_ders(text) is None


# -- certificates ---------------------------------------------------------------------------------------------


def test_parse_one_certificate_with_surrounding_whitespace() -> None:
    assert parse_certificate_pem(b"\n\n  " + CERT_PEM + b"\n\n") == CERT


@pytest.mark.parametrize(
    ("data", "code", "message"),
    [
        (b"", 1002, "Failed to decode certificate"),
        (b"not pem", 1002, "Failed to decode certificate"),
        (CERT.public_bytes(serialization.Encoding.DER), 1002, "Failed to decode certificate"),
        (encode_pem("CERTIFICATE", b"\x30\x03\x02\x01\x00"), 1003, "Failed to parse certificate"),
        (encode_pem("CERTIFICATE", CERT.public_bytes(serialization.Encoding.DER)[:100]), 1003, "Failed to parse certificate"),
        (CSR_PEM, 1003, "Failed to parse certificate"),  # the label is not checked; the DER is not a certificate
        (CERT_PEM + CERT_PEM, 1003, "the PEM file should contain only one object"),
        (CERT_PEM + b"trailing garbage", 1003, "the PEM file should contain only one object"),
    ],
    ids=["empty", "no-pem", "der", "bad-der", "truncated", "csr", "two-certs", "trailing-data"],
)
def test_parse_certificate_errors(data: bytes, code: int, message: str) -> None:
    with pytest.raises(CfsslError) as info:
        parse_certificate_pem(data)
    assert code_of(info) == (code, message)


@pytest.mark.parametrize(("category", "code"), [(Category.INTERMEDIATES, 3002), (Category.ROOT, 4002)])
def test_category_selects_the_code_family(category: Category, code: int) -> None:
    with pytest.raises(CfsslError) as info:
        parse_certificate_pem(b"", category)
    assert info.value.code == code


def test_pkcs7_with_one_certificate() -> None:
    p7 = pkcs7.serialize_certificates([CERT], serialization.Encoding.DER)
    assert parse_certificate_pem(encode_pem("PKCS7", p7)) == CERT


def test_pkcs7_with_two_certificates() -> None:
    p7 = pkcs7.serialize_certificates([CERT, make_cert("other")], serialization.Encoding.DER)
    with pytest.raises(CfsslError) as info:
        parse_certificate_pem(encode_pem("PKCS7", p7))
    assert code_of(info) == (1003, "the PKCS7 object in the PEM file should contain only one certificate")


def test_parse_certificates_pem() -> None:
    other = make_cert("other")
    text = CERT_PEM + CSR_PEM + other.public_bytes(serialization.Encoding.PEM)
    assert parse_certificates_pem(text) == [CERT, other]
    with pytest.raises(CfsslError) as info:
        parse_certificates_pem(CSR_PEM, Category.ROOT)
    assert info.value.code == 4002
    with pytest.raises(CfsslError) as info:
        parse_certificates_pem(encode_pem("CERTIFICATE", b"\x30\x00"), Category.INTERMEDIATES)
    assert info.value.code == 3003


# -- CSRs -------------------------------------------------------------------------------------------------------


def test_parse_csr() -> None:
    assert parse_csr_pem(CSR_PEM) == CSR
    assert parse_csr_pem(encode_pem("NEW CERTIFICATE REQUEST", CSR_DER)) == CSR


@pytest.mark.parametrize(
    ("data", "code", "message"),
    [
        (b"", 9002, "CSR Decode failed"),
        (CSR_DER, 9002, "CSR Decode failed"),
        (CERT_PEM, 9300, "not a csr"),
        (encode_pem("CERTIFICATE REQUEST", b"\x30\x03\x02\x01\x00"), 9003, None),
        (encode_pem("CERTIFICATE REQUEST", CSR_DER[: len(CSR_DER) // 2]), 9003, None),
        (encode_pem("CERTIFICATE REQUEST", CSR_DER[:-1] + bytes([CSR_DER[-1] ^ 1])), 9300, "x509: signature verification failure"),
    ],
    ids=["empty", "der", "certificate", "garbage", "truncated", "bad-signature"],
)
def test_parse_csr_errors(data: bytes, code: int, message: str | None) -> None:
    with pytest.raises(CfsslError) as info:
        parse_csr_pem(data)
    assert info.value.code == code
    if message is not None:
        assert info.value.message == message


def test_signature_check_can_be_skipped() -> None:
    bad = encode_pem("CERTIFICATE REQUEST", CSR_DER[:-1] + bytes([CSR_DER[-1] ^ 1]))
    assert parse_csr_pem(bad, check_signature=False).subject == CSR.subject
