"""certinfo core: the certificate description, the Go x509.CertificateRequest dump, PEM errors, TLS fetch (§1.3)."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import tls_server
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import AttributeOID, NameOID, ObjectIdentifier

from cfsslpy import certinfo
from cfsslpy.errors import Category, CfsslError, Reason

A = x509.NameAttribute
NOT_BEFORE = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
NOT_AFTER = dt.datetime(2051, 6, 7, 8, 9, 10, tzinfo=dt.timezone.utc)  # GeneralizedTime from 2050 on


def rdn(*attrs: x509.NameAttribute[Any]) -> x509.RelativeDistinguishedName:
    return x509.RelativeDistinguishedName(list(attrs))


SUBJECT = x509.Name(
    [
        rdn(A(NameOID.COUNTRY_NAME, "US")),
        rdn(A(NameOID.STATE_OR_PROVINCE_NAME, "California")),
        rdn(A(NameOID.LOCALITY_NAME, "San Francisco")),
        rdn(A(NameOID.STREET_ADDRESS, "1 Main St")),
        rdn(A(NameOID.POSTAL_CODE, "94107")),
        rdn(A(NameOID.ORGANIZATION_NAME, "Org A"), A(NameOID.ORGANIZATION_NAME, "Org B")),  # one multi-valued RDN
        rdn(A(NameOID.ORGANIZATIONAL_UNIT_NAME, "Ops")),
        rdn(A(NameOID.COMMON_NAME, "leaf.example.com")),
        rdn(A(NameOID.SERIAL_NUMBER, "S-1")),
        rdn(A(NameOID.EMAIL_ADDRESS, "ops@example.com")),
    ]
)
ISSUER = x509.Name(
    [rdn(A(NameOID.COUNTRY_NAME, "US")), rdn(A(NameOID.ORGANIZATION_NAME, "Test CA Org")), rdn(A(NameOID.COMMON_NAME, "Test CA"))]
)
SKI = bytes([0x00, 0x01, 0x0A, 0xAB, 0xFF])
AKI = bytes([0x0F, 0x10, 0x00])


def build_cert(
    *,
    key: Any = None,
    signer: Any = None,
    subject: x509.Name = SUBJECT,
    issuer: x509.Name = ISSUER,
    extensions: list[tuple[x509.ExtensionType, bool]] | None = None,
    serial: int = 0x00DEADBEEF,
    hash_alg: Any = None,
    rsa_padding: Any = None,
) -> x509.Certificate:
    key = key or ec.generate_private_key(ec.SECP256R1())
    signer = signer or key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
    )
    for ext, critical in extensions or []:
        builder = builder.add_extension(ext, critical)
    if isinstance(signer, ed25519.Ed25519PrivateKey):
        return builder.sign(signer, None)
    extra = {"rsa_padding": rsa_padding} if rsa_padding is not None else {}
    return builder.sign(signer, hash_alg or hashes.SHA256(), **extra)


def build_csr(
    key: Any,
    subject: x509.Name,
    *,
    extensions: list[tuple[x509.ExtensionType, bool]] | None = None,
    attributes: list[tuple[ObjectIdentifier, bytes]] | None = None,
) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    for ext, critical in extensions or []:
        builder = builder.add_extension(ext, critical)
    for oid, value in attributes or []:
        builder = builder.add_attribute(oid, value)
    return builder.sign(key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256())


def pem(obj: x509.Certificate | x509.CertificateSigningRequest) -> bytes:
    return obj.public_bytes(serialization.Encoding.PEM)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


SANS = x509.SubjectAlternativeName(
    [
        x509.DNSName("leaf.example.com"),
        x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
        x509.RFC822Name("ops@example.com"),
        x509.UniformResourceIdentifier("spiffe://example.com/ns/a"),
        x509.DNSName("www.example.com"),
        x509.IPAddress(ipaddress.ip_address("2001:db8::1")),
        x509.IPAddress(ipaddress.ip_address("::ffff:192.0.2.7")),  # Go prints IPv4-mapped addresses dotted
    ]
)


# ---------------------------------------------------------------------------------------------------- certificates


def test_certificate_info_every_field() -> None:
    issuer_key = ec.generate_private_key(ec.SECP384R1())
    cert = build_cert(
        signer=issuer_key,
        hash_alg=hashes.SHA384(),
        extensions=[
            (SANS, False),
            (x509.SubjectKeyIdentifier(SKI), False),
            (x509.AuthorityKeyIdentifier(AKI, None, None), False),
        ],
    )
    info = certinfo.certificate_info(cert)
    # DER sorts the values of the multi-valued RDN; names follow the encoding
    orgs = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert list(info) == [
        "subject",
        "issuer",
        "serial_number",
        "sans",
        "not_before",
        "not_after",
        "sigalg",
        "authority_key_id",
        "subject_key_id",
        "pem",
    ]
    assert info["subject"] == {
        "common_name": "leaf.example.com",
        "serial_number": "S-1",
        "country": "US",
        "organization": ",".join(orgs),
        "organizational_unit": "Ops",
        "locality": "San Francisco",
        "province": "California",
        "street_address": "1 Main St",
        "postal_code": "94107",
        "names": [
            "US",
            "California",
            "San Francisco",
            "1 Main St",
            "94107",
            *orgs,
            "Ops",
            "leaf.example.com",
            "S-1",
            "ops@example.com",  # non-standard attributes are in names only
        ],
    }
    assert list(info["subject"]) == [
        "common_name",
        "serial_number",
        "country",
        "organization",
        "organizational_unit",
        "locality",
        "province",
        "street_address",
        "postal_code",
        "names",
    ]
    assert info["issuer"] == {
        "common_name": "Test CA",
        "country": "US",
        "organization": "Test CA Org",
        "names": ["US", "Test CA Org", "Test CA"],
    }
    assert info["serial_number"] == str(0xDEADBEEF)
    # DNS names then IPs; no email, no URI
    assert info["sans"] == ["leaf.example.com", "www.example.com", "10.0.0.1", "2001:db8::1", "192.0.2.7"]
    assert info["not_before"] == "2026-01-02T03:04:05Z"
    assert info["not_after"] == "2051-06-07T08:09:10Z"
    assert info["sigalg"] == "ECDSAWithSHA384"
    assert info["authority_key_id"] == "0F:10:00"  # zero-padded (newest cfssl; 2016 printed F:10:0)
    assert info["subject_key_id"] == "00:01:0A:AB:FF"
    assert info["pem"] == pem(cert).decode()
    assert info["pem"].endswith("-----END CERTIFICATE-----\n")


def test_certificate_info_minimal_certificate_omits_empty_fields() -> None:
    cert = build_cert(subject=x509.Name([]), issuer=x509.Name([]), serial=1)
    info = certinfo.certificate_info(cert)
    # Go's omitempty does not apply to structs: empty names are {} and stay; empty sans go away.
    assert info["subject"] == {} and info["issuer"] == {}
    assert "sans" not in info
    assert info["serial_number"] == "1"
    assert info["authority_key_id"] == "" and info["subject_key_id"] == ""


def test_certificate_info_repeated_single_valued_attributes_last_wins() -> None:
    subject = x509.Name(
        [
            rdn(A(NameOID.COMMON_NAME, "first")),
            rdn(A(NameOID.COMMON_NAME, "second")),
            rdn(A(NameOID.COUNTRY_NAME, "US")),
            rdn(A(NameOID.COUNTRY_NAME, "DE")),
        ]
    )
    info = certinfo.certificate_info(build_cert(subject=subject))
    assert info["subject"] == {"common_name": "second", "country": "US,DE", "names": ["first", "second", "US", "DE"]}


def test_certificate_info_string_types_decoded_like_go() -> None:
    subject = x509.Name(
        [
            rdn(A(NameOID.COMMON_NAME, "bmp é", _type=_ASN1Type.BMPString)),
            rdn(A(NameOID.LOCALITY_NAME, "t61", _type=_ASN1Type.T61String)),
            rdn(A(NameOID.ORGANIZATION_NAME, "ia5", _type=_ASN1Type.IA5String)),
            rdn(A(ObjectIdentifier("1.2.3.4"), "custom")),
        ]
    )
    info = certinfo.certificate_info(build_cert(subject=subject))
    assert info["subject"] == {"common_name": "bmp é", "organization": "ia5", "locality": "t61", "names": ["bmp é", "t61", "ia5", "custom"]}


def test_format_key_id() -> None:
    assert certinfo.format_key_id(b"") == ""
    assert certinfo.format_key_id(bytes([0, 0x0B, 0xD9])) == "00:0B:D9"


@pytest.mark.parametrize(
    ("key", "hash_alg", "rsa_padding", "name"),
    [
        ("rsa", hashes.SHA256(), None, "SHA256WithRSA"),
        ("rsa", hashes.SHA384(), None, "SHA384WithRSA"),
        ("rsa", hashes.SHA512(), None, "SHA512WithRSA"),
        ("p256", hashes.SHA256(), None, "ECDSAWithSHA256"),
        ("p256", hashes.SHA512(), None, "ECDSAWithSHA512"),
        ("ed25519", None, None, "Ed25519"),
        ("rsa", hashes.SHA256(), "pss", "Unknown Signature"),  # cfssl has no names for RSA-PSS
        ("rsa", hashes.SHA224(), None, "Unknown Signature"),  # Go has no SHA-224 algorithms
    ],
)
def test_signature_name(key: str, hash_alg: hashes.HashAlgorithm | None, rsa_padding: str | None, name: str) -> None:
    signer: Any = {"rsa": rsa_key(), "p256": ec.generate_private_key(ec.SECP256R1()), "ed25519": ed25519.Ed25519PrivateKey.generate()}[key]
    pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32) if rsa_padding else None
    cert = build_cert(signer=signer, hash_alg=hash_alg, rsa_padding=pad)
    assert certinfo.signature_name(cert) == name
    assert certinfo.certificate_info(cert)["sigalg"] == name


_RSA: list[rsa.RSAPrivateKey] = []


def rsa_key() -> rsa.RSAPrivateKey:
    if not _RSA:
        _RSA.append(rsa.generate_private_key(65537, 2048))
    return _RSA[0]


def _alg_id(oid: str, params: bytes = b"") -> bytes:
    body = _der_oid(oid) + params
    return b"\x30" + bytes([len(body)]) + body


def _der_oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return b"\x06" + bytes([len(out)]) + bytes(out)


def _ctx(tag: int, body: bytes) -> bytes:
    return bytes([0xA0 | tag, len(body)]) + body


def _pss(hash_oid: str, mgf_hash_oid: str, salt: int, trailer: int | None = None) -> bytes:
    body = (
        _ctx(0, _alg_id(hash_oid, b"\x05\x00"))
        + _ctx(1, _alg_id("1.2.840.113549.1.1.8", _alg_id(mgf_hash_oid, b"\x05\x00")))
        + _ctx(2, bytes([2, 1, salt]))
    )
    if trailer is not None:
        body += _ctx(3, bytes([2, 1, trailer]))
    return b"\x30" + bytes([len(body)]) + body


SHA256, SHA384, SHA512 = "2.16.840.1.101.3.4.2.1", "2.16.840.1.101.3.4.2.2", "2.16.840.1.101.3.4.2.3"


@pytest.mark.parametrize(
    ("der", "expected"),
    [
        (_alg_id("1.2.840.113549.1.1.11", b"\x05\x00"), 4),
        (_alg_id("1.3.14.3.2.29"), 3),  # the ISO SHA1WithRSA OID
        (_alg_id("1.2.840.10040.4.3"), 7),
        (_alg_id("2.16.840.1.101.3.4.3.2"), 8),
        (_alg_id("1.2.840.10045.4.1"), 9),
        (_alg_id("1.3.101.112"), 16),
        (_alg_id("1.3.101.112", b"\x05\x00"), 0),  # Ed25519 with parameters is unknown to Go
        (_alg_id("1.2.840.113549.1.1.10", _pss(SHA256, SHA256, 32)), 13),
        (_alg_id("1.2.840.113549.1.1.10", _pss(SHA384, SHA384, 48, 1)), 14),
        (_alg_id("1.2.840.113549.1.1.10", _pss(SHA512, SHA512, 64)), 15),
        (_alg_id("1.2.840.113549.1.1.10", _pss(SHA256, SHA256, 20)), 0),  # salt != hash size
        (_alg_id("1.2.840.113549.1.1.10", _pss(SHA256, SHA384, 32)), 0),  # MGF1 hash differs
        (_alg_id("1.2.840.113549.1.1.10", _pss(SHA256, SHA256, 32, 2)), 0),  # trailer field
        (_alg_id("1.2.840.113549.1.1.10"), 0),
        (_alg_id("1.2.3.4"), 0),
        (b"\x30\x00", 0),
    ],
)
def test_go_signature_algorithm(der: bytes, expected: int) -> None:
    assert certinfo.go_signature_algorithm(der) == expected


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (bytes([10, 0, 0, 1]), "10.0.0.1"),
        (bytes(10) + b"\xff\xff" + bytes([1, 2, 3, 4]), "1.2.3.4"),
        (ipaddress.IPv6Address("2001:db8:0:0:1:0:0:1").packed, "2001:db8::1:0:0:1"),
        (ipaddress.IPv6Address("::1").packed, "::1"),
    ],
)
def test_go_ip_string(raw: bytes, text: str) -> None:
    assert certinfo.go_ip_string(raw) == text


# -------------------------------------------------------------------------------------------------- PEM parsing


@pytest.fixture(scope="module")
def two_certs() -> list[x509.Certificate]:
    return [build_cert(), build_cert(subject=ISSUER)]


def test_describe_certificate_pem(two_certs: list[x509.Certificate]) -> None:
    assert certinfo.describe_certificate_pem(pem(two_certs[0])) == certinfo.certificate_info(two_certs[0])


def test_describe_certificate_pem_accepts_text_before_and_whitespace_after(two_certs: list[x509.Certificate]) -> None:
    data = b"some text\n" + pem(two_certs[0]) + b"\n\n  "
    assert certinfo.describe_certificate_pem(data) == certinfo.certificate_info(two_certs[0])


def test_describe_certificate_pem_one_cert_pkcs7(two_certs: list[x509.Certificate]) -> None:
    data = pkcs7.serialize_certificates([two_certs[0]], serialization.Encoding.PEM)
    assert certinfo.describe_certificate_pem(data) == certinfo.certificate_info(two_certs[0])


def _error(data: bytes) -> tuple[int, str]:
    with pytest.raises(CfsslError) as info:
        certinfo.describe_certificate_pem(data)
    return info.value.code, info.value.message


BAD_DER = b"-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n"


def test_describe_certificate_pem_errors_are_cfssls(two_certs: list[x509.Certificate]) -> None:
    """The errors of cfssl's helpers.ParseCertificatePEM, as the 2016 binary prints them."""
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    cases = {
        b"": (1002, "Failed to decode certificate"),
        b"not pem at all": (1002, "Failed to decode certificate"),
        BAD_DER: (1003, "Failed to parse certificate"),
        key_pem: (1003, "Failed to parse certificate"),  # the PEM type is not checked, the DER fails
        pem(build_csr(key, SUBJECT)): (1003, "Failed to parse certificate"),
        BAD_DER + pem(two_certs[0]): (1003, "Failed to parse certificate"),  # the first block decides
        pem(two_certs[0]) + pem(two_certs[1]): (1003, "the PEM file should contain only one object"),
        pem(two_certs[0]) + b"trailing": (1003, "the PEM file should contain only one object"),
    }
    for data, expected in cases.items():
        assert _error(data) == expected, data[:40]


def test_describe_certificate_pem_multi_cert_pkcs7(two_certs: list[x509.Certificate]) -> None:
    data = pkcs7.serialize_certificates(two_certs, serialization.Encoding.PEM)
    assert _error(data) == (1003, "the PKCS7 object in the PEM file should contain only one certificate")


# ---------------------------------------------------------------------------------------------- CSR struct dump


def test_csr_info_ecdsa_with_sans_attributes_and_critical_extension() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = build_csr(
        key,
        SUBJECT,
        extensions=[(SANS, False), (x509.BasicConstraints(ca=True, path_length=None), True)],
        attributes=[(AttributeOID.CHALLENGE_PASSWORD, b"secret")],
    )
    der = csr.public_bytes(serialization.Encoding.DER)
    info = certinfo.csr_info(der)
    assert list(info) == [
        "Raw",
        "RawTBSCertificateRequest",
        "RawSubjectPublicKeyInfo",
        "RawSubject",
        "Version",
        "Signature",
        "SignatureAlgorithm",
        "PublicKeyAlgorithm",
        "PublicKey",
        "Subject",
        "Attributes",
        "Extensions",
        "ExtraExtensions",
        "DNSNames",
        "EmailAddresses",
        "IPAddresses",
        "URIs",
    ]
    assert info["Raw"] == b64(der)
    assert info["RawTBSCertificateRequest"] == b64(csr.tbs_certrequest_bytes)
    assert info["RawSubjectPublicKeyInfo"] == b64(
        key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert info["RawSubject"] == b64(SUBJECT.public_bytes())
    assert info["Version"] == 0
    assert info["Signature"] == b64(csr.signature)
    assert info["SignatureAlgorithm"] == 10
    assert info["PublicKeyAlgorithm"] == 3
    numbers = key.public_key().public_numbers()
    assert info["PublicKey"] == {"Curve": {}, "X": numbers.x, "Y": numbers.y}
    orgs = [str(a.value) for a in csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert info["Subject"] == {
        "Country": ["US"],
        "Organization": orgs,
        "OrganizationalUnit": ["Ops"],
        "Locality": ["San Francisco"],
        "Province": ["California"],
        "StreetAddress": ["1 Main St"],
        "PostalCode": ["94107"],
        "SerialNumber": "S-1",
        "CommonName": "leaf.example.com",
        "Names": [
            {"Type": [2, 5, 4, 6], "Value": "US"},
            {"Type": [2, 5, 4, 8], "Value": "California"},
            {"Type": [2, 5, 4, 7], "Value": "San Francisco"},
            {"Type": [2, 5, 4, 9], "Value": "1 Main St"},
            {"Type": [2, 5, 4, 17], "Value": "94107"},
            *({"Type": [2, 5, 4, 10], "Value": org} for org in orgs),
            {"Type": [2, 5, 4, 11], "Value": "Ops"},
            {"Type": [2, 5, 4, 3], "Value": "leaf.example.com"},
            {"Type": [2, 5, 4, 5], "Value": "S-1"},
            {"Type": [1, 2, 840, 113549, 1, 9, 1], "Value": "ops@example.com"},
        ],
        "ExtraNames": None,
    }
    san_value = SANS.public_bytes()
    bc_value = x509.BasicConstraints(ca=True, path_length=None).public_bytes()
    # challengePassword is not a SET of SEQUENCEs: Go drops it; the critical extension's BOOLEAN becomes null
    assert info["Attributes"] == [
        {
            "Type": [1, 2, 840, 113549, 1, 9, 14],
            "Value": [[{"Type": [2, 5, 29, 17], "Value": b64(san_value)}, {"Type": [2, 5, 29, 19], "Value": None}]],
        }
    ]
    assert info["Extensions"] == [
        {"Id": [2, 5, 29, 17], "Critical": False, "Value": b64(san_value)},
        {"Id": [2, 5, 29, 19], "Critical": True, "Value": b64(bc_value)},
    ]
    assert info["ExtraExtensions"] is None
    assert info["DNSNames"] == ["leaf.example.com", "www.example.com"]
    assert info["EmailAddresses"] == ["ops@example.com"]
    assert info["IPAddresses"] == ["10.0.0.1", "2001:db8::1", "192.0.2.7"]
    assert info["URIs"] == [
        {
            "Scheme": "spiffe",
            "Opaque": "",
            "User": None,
            "Host": "example.com",
            "Path": "/ns/a",
            "RawPath": "",
            "OmitHost": False,
            "ForceQuery": False,
            "RawQuery": "",
            "Fragment": "",
            "RawFragment": "",
        }
    ]
    # a parsed request gives the same dump
    assert certinfo.csr_info(csr) == info


def test_csr_info_rsa_empty_subject_no_attributes() -> None:
    key = rsa_key()
    info = certinfo.csr_info(build_csr(key, x509.Name([])))
    numbers = key.public_key().public_numbers()
    assert info["SignatureAlgorithm"] == 4 and info["PublicKeyAlgorithm"] == 1
    assert info["PublicKey"] == {"N": numbers.n, "E": 65537}
    assert info["Subject"] == {
        "Country": None,
        "Organization": None,
        "OrganizationalUnit": None,
        "Locality": None,
        "Province": None,
        "StreetAddress": None,
        "PostalCode": None,
        "SerialNumber": "",
        "CommonName": "",
        "Names": None,
        "ExtraNames": None,
    }
    for field in ("Attributes", "Extensions", "ExtraExtensions", "DNSNames", "EmailAddresses", "IPAddresses", "URIs"):
        assert info[field] is None, field


def test_csr_info_ed25519_public_key_is_base64_bytes() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    info = certinfo.csr_info(build_csr(key, x509.Name([rdn(A(NameOID.COMMON_NAME, "ed"))])))
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert info["SignatureAlgorithm"] == 16 and info["PublicKeyAlgorithm"] == 4
    assert info["PublicKey"] == b64(raw)


@pytest.mark.parametrize(("curve", "size"), [(ec.SECP384R1(), 48), (ec.SECP521R1(), 66)])
def test_csr_info_other_curves(curve: ec.EllipticCurve, size: int) -> None:
    key = ec.generate_private_key(curve)
    info = certinfo.csr_info(build_csr(key, x509.Name([])))
    numbers = key.public_key().public_numbers()
    assert info["PublicKey"] == {"Curve": {}, "X": numbers.x, "Y": numbers.y}


def test_csr_info_does_not_check_the_signature() -> None:
    der = bytearray(build_csr(ec.generate_private_key(ec.SECP256R1()), SUBJECT).public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01
    assert certinfo.csr_info(bytes(der))["Subject"]["CommonName"] == "leaf.example.com"


def test_describe_csr_pem_errors(two_certs: list[x509.Certificate]) -> None:
    with pytest.raises(CfsslError) as info:
        certinfo.describe_csr_pem(b"nothing here")
    assert (info.value.code, info.value.message) == (9002, "CSR Decode failed")
    # a certificate is not a request: Go's parser fails on the version field (typed 9003 here)
    with pytest.raises(CfsslError) as info:
        certinfo.describe_csr_pem(pem(two_certs[0]))
    assert info.value.category == Category.CSR and info.value.reason == Reason.PARSE_FAILED
    assert info.value.code == 9003


def test_describe_csr_pem_ignores_the_pem_type_and_later_blocks() -> None:
    csr = build_csr(ec.generate_private_key(ec.SECP256R1()), SUBJECT)
    relabelled = pem(csr).replace(b"CERTIFICATE REQUEST", b"WHATEVER")
    assert certinfo.describe_csr_pem(relabelled + pem(csr)) == certinfo.csr_info(csr)


def _csr_with_sans(*names: x509.GeneralName) -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    return certinfo.csr_info(build_csr(key, x509.Name([]), extensions=[(x509.SubjectAlternativeName(list(names)), False)]))


URL_FIELDS = ("Scheme", "Opaque", "User", "Host", "Path", "RawPath", "OmitHost", "ForceQuery", "RawQuery", "Fragment", "RawFragment")


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "spiffe://trust/ns/a%20b?x=1#frag",
            {"Scheme": "spiffe", "Host": "trust", "Path": "/ns/a b", "RawQuery": "x=1", "Fragment": "frag"},
        ),
        ("http://user:pw@h.com:8080/p%2Fq", {"Scheme": "http", "User": {}, "Host": "h.com:8080", "Path": "/p/q", "RawPath": "/p%2Fq"}),
        ("urn:uuid:1234", {"Scheme": "urn", "Opaque": "uuid:1234"}),
        ("http:/nohost", {"Scheme": "http", "Path": "/nohost", "OmitHost": True}),
        ("http:///empty", {"Scheme": "http", "Path": "/empty"}),
        ("https://[::1]:443/x?", {"Scheme": "https", "Host": "[::1]:443", "Path": "/x", "ForceQuery": True}),
        ("mailto:x@y#a%21b", {"Scheme": "mailto", "Opaque": "x@y", "Fragment": "a!b", "RawFragment": "a%21b"}),
        ("HTTP://Example.com", {"Scheme": "http", "Host": "Example.com"}),
        ("*", {"Path": "*"}),
    ],
)
def test_csr_uri_sans_are_go_url_structs(uri: str, expected: dict[str, Any]) -> None:
    base: dict[str, Any] = dict.fromkeys(URL_FIELDS, "")
    base.update(User=None, OmitHost=False, ForceQuery=False)
    base.update(expected)
    assert _csr_with_sans(x509.UniformResourceIdentifier(uri))["URIs"] == [base]


@pytest.mark.parametrize("uri", ["http://h.com/%zz", "1http:x", "http://[::1/x", "http://h.com:port/", "http://a..b/"])
def test_csr_uri_sans_that_go_cannot_parse_fail_the_request(uri: str) -> None:
    with pytest.raises(CfsslError) as info:
        _csr_with_sans(x509.UniformResourceIdentifier(uri))
    assert info.value.code == 9003
    assert "cannot parse URI" in info.value.message or "first path segment" in info.value.message


def test_csr_san_other_names_are_skipped() -> None:
    info = _csr_with_sans(
        x509.OtherName(ObjectIdentifier("1.2.3"), b"\x05\x00"),
        x509.DirectoryName(x509.Name([rdn(A(NameOID.COMMON_NAME, "dir"))])),
        x509.DNSName("a.example"),
    )
    assert info["DNSNames"] == ["a.example"] and info["URIs"] is None


def test_go_asn1_interface_values() -> None:
    """Attribute values Go decodes into interface{}: the JSON each type becomes."""
    tlv = certinfo._read_tlv
    cases: list[tuple[bytes, Any]] = [
        (b"\x13\x03a*&", "a*&"),  # PrintableString, with Go's tolerated * and &
        (b"\x16\x03a@b", "a@b"),
        (b"\x0c\x02\xc3\xa9", "é"),
        (b"\x14\x02\xff\x41", "\ufffdA"),  # T61String keeps bytes; invalid UTF-8 marshals as U+FFFD
        (b"\x1e\x04\x00h\x00i", "hi"),
        (b"\x12\x031 2", "1 2"),
        (b"\x02\x02\x01\x00", 256),
        (b"\x02\x01\xff", -1),
        (b"\x06\x03\x2a\x03\x04", [1, 2, 3, 4]),
        (b"\x03\x02\x07\x80", {"Bytes": "gA==", "BitLength": 1}),
        (b"\x04\x02\x00\x01", "AAE="),
        (b"\x17\x0d260102030405Z", "2026-01-02T03:04:05Z"),
        (b"\x18\x0f20260102030405Z", "2026-01-02T03:04:05Z"),
        (b"\x17\x11260102030405+0130", "2026-01-02T03:04:05+01:30"),
        (b"\x17\x0b2601020304Z", "2026-01-02T03:04:00Z"),  # UTCTime seconds are optional
        (b"\x17\x0d500102030405Z", "1950-01-02T03:04:05Z"),
        (b"\x01\x01\xff", None),  # BOOLEAN
        (b"\x30\x00", None),  # SEQUENCE
        (b"\x80\x01\x00", None),  # context-specific
    ]
    for der, expected in cases:
        assert certinfo._go_any(tlv(der)[0]) == expected, der
    # Go rejects times that do not format back identically: fractions, +0000
    for bad in (
        b"\x18\x1320260102030405.500Z",
        b"\x17\x11260102030405+0000",
        b"\x17\x0c260102030405",
        b"\x13\x01@",
        b"\x16\x01\x80",
        b"\x0c\x01\xff",
        b"\x12\x01a",
        b"\x02\x09" + bytes(9),
        b"\x02\x02\x00\x01",
        b"\x03\x02\x07\x81",
    ):
        with pytest.raises(certinfo._ASN1Error):
            certinfo._go_any(tlv(bad)[0])


@pytest.mark.parametrize(
    "der",
    [
        b"\x30\x80\x00\x00",  # indefinite length
        b"\x30\x81\x01\x00",  # non-minimal length
        b"\x30\x05\x00",  # truncated
        b"",
    ],
)
def test_der_reader_rejects_non_der(der: bytes) -> None:
    with pytest.raises(certinfo._ASN1Error):
        certinfo._read_tlv(der)


def test_oid_rules() -> None:
    assert certinfo._oid(b"\x2a\x86\x48\x86\xf7\x0d") == [1, 2, 840, 113549]
    assert certinfo._oid(b"\x88\x37") == [2, 999]
    for bad in (b"", b"\x2a\x80\x01", b"\x2a\x86", b"\x2a\x90\x80\x80\x80\x00"):
        with pytest.raises(certinfo._ASN1Error):
            certinfo._oid(bad)


# ------------------------------------------------------------------------------------------------ TLS fetching


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[x509.Certificate, int]]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build_cert(key=key, extensions=[(SANS, False)])
    (tmp_path / "c.pem").write_bytes(pem(cert))
    (tmp_path / "k.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    with tls_server(tmp_path / "c.pem", tmp_path / "k.pem") as port:
        yield cert, port


def test_fetch_certificate_from_loopback_server_without_verification(served: tuple[x509.Certificate, int]) -> None:
    cert, port = served
    assert certinfo.fetch_certificate(f"127.0.0.1:{port}") == cert
    assert certinfo.describe_domain(f"127.0.0.1:{port}") == certinfo.certificate_info(cert)


def test_fetch_certificate_dials_ip_instead_of_resolving(served: tuple[x509.Certificate, int]) -> None:
    cert, port = served
    assert certinfo.fetch_certificate(f"does-not-resolve.invalid:{port}", ip="127.0.0.1") == cert


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_fetch_certificate_connection_refused_is_a_dial_error() -> None:
    port = free_port()
    with pytest.raises(CfsslError) as info:
        certinfo.fetch_certificate(f"127.0.0.1:{port}")
    assert info.value.code == 6000
    assert info.value.message == f"dial tcp 127.0.0.1:{port}: connect: connection refused"


def test_fetch_certificate_not_tls_is_a_dial_error() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(100)
            conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        with pytest.raises(CfsslError) as info:
            certinfo.fetch_certificate(f"127.0.0.1:{port}", timeout=5)
    finally:
        thread.join(10)
        listener.close()
    assert info.value.code == 6000
    assert info.value.message == "tls: first record does not look like a TLS handshake"


def test_fetch_certificate_times_out_on_a_silent_server() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        with pytest.raises(CfsslError) as info:
            certinfo.fetch_certificate(f"127.0.0.1:{listener.getsockname()[1]}", timeout=0.3)
    finally:
        listener.close()
    assert info.value.code == 6000 and "i/o timeout" in info.value.message


@pytest.mark.parametrize(
    ("domain", "host", "port"),
    [
        ("example.com", "example.com", "443"),
        ("example.com:8443", "example.com", "8443"),
        ("[::1]:8443", "::1", "8443"),
        ("::1", "::1", "443"),
        ("[::1]", "::1", "443"),
    ],
)
def test_split_host_port(domain: str, host: str, port: str) -> None:
    assert certinfo.split_host_port(domain) == (host, port)
