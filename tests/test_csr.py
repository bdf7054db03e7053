"""CSR JSON decoding, subject building, host classification, PKCS#10 generation and request extraction (§3.6, §7.2, §7.3)."""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID, ObjectIdentifier, SignatureAlgorithmOID
from pyasn1.codec.der import decoder as der_decoder
from pyasn1_alt_modules import rfc2986

from cfsslpy.csr import (
    CAConfig,
    CertificateRequest,
    NameConstraints,
    NameEntry,
    SANs,
    Subject,
    classify_hosts,
    csr_pem,
    extract_request,
    generate_csr,
    is_dns_name,
    looks_like_uri,
    parse_email,
    parse_ip,
)
from cfsslpy.errors import Category, CfsslError, PlainError
from cfsslpy.golang.json import JSONDecodeError
from cfsslpy.keys import KeyRequest


@functools.cache
def key(kind: str = "p256") -> Any:
    if kind == "rsa2048":
        return rsa.generate_private_key(65537, 2048)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key({"p256": ec.SECP256R1(), "p384": ec.SECP384R1(), "p521": ec.SECP521R1()}[kind])


def csr(obj: dict[str, Any], kind: str = "p256") -> x509.CertificateSigningRequest:
    return generate_csr(CertificateRequest.from_json(obj), key(kind))


def request_info(c: x509.CertificateSigningRequest) -> Any:
    info, _ = der_decoder.decode(c.tbs_certrequest_bytes, asn1Spec=rfc2986.CertificationRequestInfo())
    return info


# ---------------------------------------------------------------------------------------------------------
# CSR JSON


def test_full_request_decodes_case_insensitively() -> None:
    req = CertificateRequest.from_json(
        {
            "cn": "example.net",
            "Names": [
                {
                    "c": "US",
                    "st": "CA",
                    "l": "SF",
                    "o": "Org",
                    "ou": "Unit",
                    "e": "a@example.net",
                    "oid": {"1.2.3.4": "v"},
                    "SerialNumber": "x",
                }
            ],
            "HOSTS": ["example.net"],
            "key": {"algo": "rsa", "size": 2048},
            "CA": {"pathlen": 1, "pathlenzero": False, "expiry": "1h", "backdate": "2m"},
            "serialnumber": "SN1",
            "crl_url": "http://crl",
            "extensions": [{"id": [1, 2, 3], "critical": True, "value": "BQA="}],
            "delegation_enabled": True,
            "unknown": "ignored",
        }
    )
    assert req.CN == "example.net"
    assert req.names == [NameEntry("US", "CA", "SF", "Org", "Unit", "a@example.net", {"1.2.3.4": "v"})]
    assert req.hosts == ["example.net"]
    assert req.key == KeyRequest("rsa", 2048)
    assert req.ca == CAConfig(pathlen=1, expiry="1h", backdate="2m")
    assert (req.serialnumber, req.crl_url, req.delegation_enabled) == ("SN1", "http://crl", True)
    assert [(e.oid.dotted_string, e.critical, e.value) for e in req.extensions] == [("1.2.3", True, b"\x05\x00")]


def test_defaults() -> None:
    req = CertificateRequest.from_json({})
    assert (req.CN, req.names, req.hosts, req.key, req.ca) == ("", [], None, KeyRequest("ecdsa", 256), None)
    assert CertificateRequest.from_json({"hosts": []}).hosts == []


@pytest.mark.parametrize(
    "obj",
    [
        [],
        {"CN": 1},
        {"names": {}},
        {"names": ["x"]},
        {"names": [{"C": 1}]},
        {"names": [{"OID": {"1.2.3": 4}}]},
        {"hosts": "a"},
        {"hosts": [1]},
        {"key": "ecdsa"},
        {"ca": []},
        {"ca": {"pathlen": "1"}},
        {"ca": {"pathlenzero": 1}},
        {"extensions": {}},
        {"extensions": [{"id": "1.2.3", "value": ""}]},
        {"extensions": [{"id": [1], "value": ""}]},
        {"extensions": [{"id": [1, 2], "value": "%%%"}]},
        {"delegation_enabled": "yes"},
    ],
)
def test_json_type_errors(obj: Any) -> None:
    with pytest.raises(JSONDecodeError):
        CertificateRequest.from_json(obj)


def test_bad_oid_and_duration_values() -> None:
    with pytest.raises(CfsslError) as exc:
        CertificateRequest.from_json({"names": [{"OID": {"not.an.oid": "x"}}]})
    assert exc.value.code == 9300
    with pytest.raises(CfsslError) as exc:
        CertificateRequest.from_json({"ca": {"expiry": "5 years"}})
    assert (exc.value.code, exc.value.message) == (5200, 'time: unknown unit " years" in duration "5 years"')


def test_json_bytes_errors_are_plain() -> None:
    with pytest.raises(PlainError):
        CertificateRequest.from_json_bytes(b"{")
    with pytest.raises(PlainError):
        CertificateRequest.from_json_bytes(b"null")
    assert CertificateRequest.from_json_bytes(b'{"CN":"x"}').CN == "x"


def test_deep_csr_json_is_a_plain_go_error() -> None:
    # cfssl (Go 1.19) prints exactly this for 100 000 levels; we refuse from 513 levels on
    with pytest.raises(PlainError) as info:
        CertificateRequest.from_json_bytes(b'{"names":[' + b"[" * 100_000)
    assert info.value.message == "invalid character '[' exceeded max depth"


def test_lone_surrogates_in_csr_json_become_replacement_characters() -> None:
    """As in cfssl, whose genkey puts U+FFFD in the subject; a surrogate would fail the UTF-8 encoding."""
    request = CertificateRequest.from_json_bytes(b'{"CN":"a\\ud800","names":[{"O":"\\udc00x"}],"hosts":["h.example"]}')
    assert request.CN == "a\ufffd"
    name = request.subject().to_name()
    assert name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "a\ufffd"
    assert name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "\ufffdx"
    assert name.public_bytes()  # encodes


def test_to_json_round_trip() -> None:
    obj = {
        "CN": "x",
        "names": [{"C": "US", "O": "o", "OID": {"1.2.3": "v"}}],
        "hosts": ["a.example.com"],
        "key": {"algo": "ecdsa", "size": 384},
        "ca": {"pathlen": 1, "pathlenzero": False, "expiry": "1h", "name_constraints": {"permitted": {"dns": ["example.com"]}}},
        "serialnumber": "1",
        "crl_url": "http://crl",
        "extensions": [{"id": [1, 2, 3], "critical": False, "value": "BQA="}],
        "delegation_enabled": True,
    }
    assert CertificateRequest.from_json(obj).to_json() == obj


# ---------------------------------------------------------------------------------------------------------
# Subject building


def test_subject_merges_names_per_type() -> None:
    req = CertificateRequest.from_json(
        {"CN": "cn", "serialnumber": "7", "names": [{"C": "US", "O": "a", "E": "x@example.com"}, {"C": "GB", "O": "b", "OU": "u"}]}
    )
    subject = req.subject()
    assert subject.get(NameOID.COUNTRY_NAME) == ["US", "GB"]
    assert subject.get(NameOID.ORGANIZATION_NAME) == ["a", "b"]
    assert subject.common_name == "cn"
    name = subject.to_name()
    # one RDN per value (X.501: no repeated type inside an RDN); cfssl would write O=a+O=b and C=US+C=GB
    assert name.rfc4514_string() == "1.2.840.113549.1.9.1=x@example.com,2.5.4.5=7,CN=cn,OU=u,O=b,O=a,C=GB,C=US"


def test_empty_values_are_skipped_and_duplicates_collapse() -> None:
    subject = CertificateRequest.from_json({"names": [{"C": "", "O": "same"}, {"O": "same"}]}).subject()
    assert [[a.value for a in rdn] for rdn in subject.to_name().rdns] == [["same"]]
    assert Subject().is_empty() and Subject().to_name() == x509.Name([])


def test_cn_and_serial_number_are_single_valued() -> None:
    subject = Subject()
    subject.add(NameOID.COMMON_NAME, "first")
    subject.add(NameOID.COMMON_NAME, "second")
    assert subject.get(NameOID.COMMON_NAME) == ["second"]  # last wins, as Go's pkix.Name


def test_from_name_keeps_extras_and_skips_bitstrings() -> None:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "c"),
            x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "example"),
            x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, b"\x00\x01", _ASN1Type.BitString),
        ]
    )
    subject = Subject.from_name(name)
    assert subject.common_name == "c" and subject.extra == [(NameOID.DOMAIN_COMPONENT, "example")]
    assert [a._type for a in subject.to_name()] == [_ASN1Type.PrintableString, _ASN1Type.IA5String]


def test_string_types_in_the_csr() -> None:
    c = csr({"CN": "*.example.com", "names": [{"C": "US", "O": "Plain Org", "OU": "a&b", "E": "me@example.com"}], "serialnumber": "42"})
    assert [(a.oid.dotted_string, a._type) for a in c.subject] == [
        ("2.5.4.6", _ASN1Type.PrintableString),
        ("2.5.4.10", _ASN1Type.PrintableString),
        ("2.5.4.11", _ASN1Type.UTF8String),
        ("2.5.4.3", _ASN1Type.UTF8String),
        ("2.5.4.5", _ASN1Type.PrintableString),
        ("1.2.840.113549.1.9.1", _ASN1Type.IA5String),
    ]


# ---------------------------------------------------------------------------------------------------------
# initca subject validation


@pytest.mark.parametrize(
    ("obj", "ok"),
    [
        ({"CN": "x"}, True),
        ({"names": [{"C": "US"}]}, True),
        ({"names": [{"OU": "u"}, {"L": "l"}]}, True),
        ({}, False),
        ({"names": []}, False),
        ({"names": [{"C": " "}]}, False),
        ({"names": [{"C": "US"}, {"E": "only@example.com"}]}, False),  # every entry needs C/ST/L/O/OU
        ({"names": [{"OID": {"1.2.3": "x"}}]}, False),
    ],
)
def test_validate_initca(obj: dict[str, Any], ok: bool) -> None:
    req = CertificateRequest.from_json(obj)
    if ok:
        req.validate_initca()
    else:
        with pytest.raises(CfsslError) as exc:
            req.validate_initca()
        assert (exc.value.code, exc.value.message) == (5300, "missing subject information")


# ---------------------------------------------------------------------------------------------------------
# Hosts


def test_classify_hosts_order_of_tests() -> None:
    sans = classify_hosts(
        [
            "1.2.3.4",
            "2001:db8::1",
            "::ffff:10.0.0.1",
            "user@example.com",
            "Jane Doe <jane@example.com>",
            '"quoted local"@example.com',
            "spiffe://trust.example/ns/x",
            "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
            "https://www.example.com/path?q=1",
            "www.example.com",
            "*.example.com",
            "_srv._tcp.example.com",
            "trailing.dot.example.",
            "",
        ]
    )
    assert [str(i) for i in sans.ip] == ["1.2.3.4", "2001:db8::1", "10.0.0.1"]
    assert sans.email == ["user@example.com", "jane@example.com", '"quoted local"@example.com']
    assert sans.uri == ["spiffe://trust.example/ns/x", "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", "https://www.example.com/path?q=1"]
    assert sans.dns == ["www.example.com", "*.example.com", "_srv._tcp.example.com", "trailing.dot.example."]
    assert sans.hosts() == ["1.2.3.4", "2001:db8::1", "10.0.0.1", *sans.dns, *sans.email, *sans.uri]
    assert [type(n).__name__ for n in sans.general_names()] == ["DNSName"] * 4 + ["RFC822Name"] * 3 + ["IPAddress"] * 3 + [
        "UniformResourceIdentifier"
    ] * 3


@pytest.mark.parametrize(
    "host",
    [
        "localhost:8080",
        "example.com:443",
        "has space.example.com",
        "ex*mple.com",
        "a..b",
        "-lead.example.com",
        "x" * 64 + ".com",
        "bücher.example",
        "a@b@c",
        "fe80::1%eth0",
    ],
)
def test_classify_hosts_refuses_what_is_none_of_the_four(host: str) -> None:
    with pytest.raises(CfsslError) as exc:
        classify_hosts([host])
    assert exc.value.code == 9300
    with pytest.raises(CfsslError) as exc:
        classify_hosts([host], Category.CERTIFICATE)
    assert exc.value.code == 1300


def test_non_ascii_message_suggests_punycode() -> None:
    with pytest.raises(CfsslError) as exc:
        classify_hosts(["bücher.example"])
    assert "xn--" in exc.value.message


def test_parsers() -> None:
    assert parse_ip("010.1.1.1") is None  # Go's ParseIP refuses leading zeros too
    assert parse_ip("[::1]") is None
    assert parse_email("Name <a@example.com>") == "a@example.com"
    assert parse_email("a@") is None
    assert looks_like_uri("spiffe://x") and looks_like_uri("mailto:x") and looks_like_uri("urn:x:y")
    assert not looks_like_uri("host:8080") and not looks_like_uri("example.com") and not looks_like_uri("a b:c d")
    assert is_dns_name("a.b") and not is_dns_name("a." * 127 + "ab")


# ---------------------------------------------------------------------------------------------------------
# PKCS#10 generation


def test_csr_basics() -> None:
    c = csr({"CN": "x", "hosts": ["x.example.com"]})
    info = request_info(c)
    assert int(info["version"]) == 0
    assert c.is_signature_valid
    assert csr_pem(c).startswith(b"-----BEGIN CERTIFICATE REQUEST-----\n")


def test_no_attributes_without_extensions() -> None:
    info = request_info(csr({"CN": "x"}))
    assert len(info["attributes"]) == 0


def test_single_extension_request_attribute_in_cfssl_order() -> None:
    obj = {
        "CN": "x",
        "hosts": ["x.example.com", "10.0.0.1"],
        "ca": {"pathlen": 2, "name_constraints": {"permitted": {"dns": ["example.com"]}}},
        "delegation_enabled": True,
        "extensions": [{"id": [1, 2, 3, 4], "critical": True, "value": "BQA="}],
    }
    c = csr(obj)
    info = request_info(c)
    assert [str(a["type"]) for a in info["attributes"]] == ["1.2.840.113549.1.9.14"]
    assert [(e.oid.dotted_string, e.critical) for e in c.extensions] == [
        ("2.5.29.17", False),
        ("2.5.29.19", True),
        ("2.5.29.30", True),
        ("1.3.6.1.4.1.44363.44", False),
        ("1.2.3.4", True),
    ]
    assert c.extensions.get_extension_for_class(x509.BasicConstraints).value == x509.BasicConstraints(ca=True, path_length=2)
    delegation = c.extensions.get_extension_for_oid(ObjectIdentifier("1.3.6.1.4.1.44363.44")).value
    assert isinstance(delegation, x509.UnrecognizedExtension) and delegation.value == b"\x05\x00"


@pytest.mark.parametrize(
    ("ca", "pathlen"),
    [({"pathlen": 0}, None), ({"pathlen": 0, "pathlenzero": True}, 0), ({"pathlen": 3, "pathlenzero": True}, 3), ({}, None)],
)
def test_csr_ca_basic_constraints(ca: dict[str, Any], pathlen: int | None) -> None:
    bc = csr({"CN": "x", "ca": ca}).extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value == x509.BasicConstraints(ca=True, path_length=pathlen)


@pytest.mark.parametrize(
    ("kind", "oid"),
    [
        ("rsa2048", SignatureAlgorithmOID.RSA_WITH_SHA256),
        ("p256", SignatureAlgorithmOID.ECDSA_WITH_SHA256),
        ("p384", SignatureAlgorithmOID.ECDSA_WITH_SHA384),
        ("p521", SignatureAlgorithmOID.ECDSA_WITH_SHA512),
        ("ed25519", SignatureAlgorithmOID.ED25519),
    ],
)
def test_csr_signature_algorithm_follows_the_key(kind: str, oid: ObjectIdentifier) -> None:
    c = csr({"CN": "x"}, kind)
    assert c.signature_algorithm_oid == oid and c.is_signature_valid


def test_duplicate_extensions_are_refused() -> None:
    with pytest.raises(CfsslError) as exc:
        csr({"CN": "x", "hosts": ["a.example.com"], "extensions": [{"id": [2, 5, 29, 17], "value": "MAA="}]})
    assert exc.value.code == 9300
    with pytest.raises(CfsslError):
        csr({"CN": "x", "extensions": [{"id": [1, 2, 3], "value": "BQA="}, {"id": [1, 2, 3], "value": "BQA="}]})


def test_delegation_and_ca_together_keep_both() -> None:
    # cfssl loses the CA basicConstraints here (reference §7.9 item 44); we keep it
    c = csr({"CN": "x", "ca": {"pathlen": 1}, "delegation_enabled": True})
    assert [e.oid.dotted_string for e in c.extensions] == ["2.5.29.19", "1.3.6.1.4.1.44363.44"]


# ---------------------------------------------------------------------------------------------------------
# Name constraints JSON


def test_name_constraints_json() -> None:
    nc = NameConstraints.from_json(
        {"Permitted": {"DNS": ["example.com", ".internal"], "ip": ["10.0.0.0/8", "2001:db8::/32"]}, "excluded": {"email": [".bad.example"]}}
    )
    assert nc.critical
    ext = nc.to_extension()
    assert ext is not None
    assert ext.permitted_subtrees == [
        x509.DNSName("example.com"),
        x509.DNSName("internal"),  # a leading dot is dropped: DNS constraints always include subdomains
        x509.IPAddress(ipaddress.ip_network("10.0.0.0/8")),
        x509.IPAddress(ipaddress.ip_network("2001:db8::/32")),
    ]
    assert ext.excluded_subtrees == [x509.RFC822Name(".bad.example")]
    assert NameConstraints.from_json({}).to_extension() is None
    assert NameConstraints.from_json({"critical": False}).to_json() == {"critical": False}


@pytest.mark.parametrize(
    "obj",
    [
        {"permitted": {"dns": ["*.example.com"]}},
        {"permitted": {"dns": ["bad host"]}},
        {"permitted": {"ip": ["10.0.0.1/8"]}},
        {"permitted": {"ip": ["10.0.0.0/33"]}},
        {"permitted": {"email": ["a b@example.com"]}},
        {"permitted": {"uri": ["https://example.com/"]}},
    ],
)
def test_bad_name_constraint_entries(obj: dict[str, Any]) -> None:
    with pytest.raises(CfsslError) as exc:
        NameConstraints.from_json(obj)
    assert exc.value.code == 9300


def test_name_constraints_type_errors() -> None:
    for bad in ([], {"permitted": []}, {"permitted": {"dns": "example.com"}}, {"permitted": {"rdn": ["x"]}}, {"critical": "yes"}):
        with pytest.raises(JSONDecodeError):
            NameConstraints.from_json(bad)


# ---------------------------------------------------------------------------------------------------------
# Extracting a request from a certificate


def _cert(subject: x509.Name, exts: list[tuple[x509.ExtensionType, bool]], k: Any, days: float = 10) -> x509.Certificate:
    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    b = x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(k.public_key()).serial_number(1)
    b = b.not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
    for e, crit in exts:
        b = b.add_extension(e, critical=crit)
    return b.sign(k, None if isinstance(k, ed25519.Ed25519PrivateKey) else hashes.SHA256())


def test_extract_request_from_a_leaf() -> None:
    name = x509.Name(
        [
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(NameOID.COUNTRY_NAME, "US"), x509.NameAttribute(NameOID.COUNTRY_NAME, "GB")]
            ),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "o1")]),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "u1")]),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.LOCALITY_NAME, "l1")]),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")]),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.SERIAL_NUMBER, "99")]),
        ]
    )
    san = x509.SubjectAlternativeName(
        [
            x509.UniformResourceIdentifier("spiffe://x/y"),
            x509.RFC822Name("a@example.com"),
            x509.DNSName("leaf.example.com"),
            x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
        ]
    )
    req = extract_request(_cert(name, [(san, False), (x509.BasicConstraints(ca=False, path_length=None), True)], key("p384")))
    assert req.CN == "leaf" and req.serialnumber == "99"
    # rebuilt by index (a multi-valued RDN is a DER SET OF, so GB sorts before US)
    assert req.names == [NameEntry(C="GB", O="o1", OU="u1", L="l1"), NameEntry(C="US")]
    assert req.hosts == ["10.0.0.1", "leaf.example.com", "a@example.com", "spiffe://x/y"]
    assert req.key == KeyRequest("ecdsa", 384)
    assert req.ca is None


@pytest.mark.parametrize(("pathlen", "expected"), [(None, (-1, False)), (0, (0, True)), (2, (2, False))])
def test_extract_request_from_a_ca(pathlen: int | None, expected: tuple[int, bool]) -> None:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CA")])
    nc = x509.NameConstraints([x509.DNSName("example.com")], [x509.IPAddress(ipaddress.ip_network("10.0.0.0/8"))])
    cert = _cert(name, [(x509.BasicConstraints(ca=True, path_length=pathlen), True), (nc, True)], key("ed25519"), days=43800 / 24)
    req = extract_request(cert)
    assert req.ca is not None
    assert (req.ca.pathlen, req.ca.pathlenzero, req.ca.expiry) == (*expected, "43800h0m0s")
    assert req.ca.name_constraints == NameConstraints({"dns": ["example.com"]}, {"ip": ["10.0.0.0/8"]}, True)
    assert req.key == KeyRequest("ed25519", 0)
    assert req.hosts is None


def test_sans_from_extension_ignores_other_name_types() -> None:
    san = x509.SubjectAlternativeName([x509.DirectoryName(x509.Name([])), x509.DNSName("a.example.com")])
    assert SANs.from_extension(san) == SANs(dns=["a.example.com"])
