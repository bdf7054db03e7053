"""POST /api/v1/cfssl/sign (reference §2.3)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from conftest import CA
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from api.conftest import StateFactory
from api.wsgi import Client, config_json, dns_sans, load_cert, new_csr
from cfsslpy.api.endpoints import NO_BUNDLER_MESSAGE
from cfsslpy.api.state import ApiState


def ekus(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def lifetime(cert: x509.Certificate) -> dt.timedelta:
    return cert.not_valid_after_utc - cert.not_valid_before_utc


def test_sign_with_the_default_profile(client: Client, api_ca: CA) -> None:
    r = client.post("sign", {"certificate_request": new_csr("leaf.example.com", ["leaf.example.com", "www.example.com"])})
    result = r.assert_ok()
    assert list(result) == ["certificate"] and result["certificate"].endswith("-----END CERTIFICATE-----\n")
    assert r.json["messages"] == []
    cert = load_cert(result["certificate"])
    ca = x509.load_pem_x509_certificate(api_ca.cert.read_bytes())
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "leaf.example.com"
    assert dns_sans(cert) == ["leaf.example.com", "www.example.com"]  # hosts absent: the CSR's SANs
    assert ekus(cert) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert lifetime(cert) == dt.timedelta(hours=8760)


def test_sign_with_a_named_profile(client: Client) -> None:
    cert = load_cert(client.post("sign", {"certificate_request": new_csr(), "profile": "client"}).assert_ok()["certificate"])
    assert ekus(cert) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert lifetime(cert) == dt.timedelta(hours=24)


def test_unknown_profile_is_refused(client: Client) -> None:
    """cfssl signs under the default profile; here a typo is 5400 (HTTP 400), and the empty name is the default."""
    client.post("sign", {"certificate_request": new_csr(), "profile": "no-such-profile"}).assert_error(400, 5400, "Unknown policy profile")
    cert = load_cert(client.post("sign", {"certificate_request": new_csr(), "profile": ""}).assert_ok()["certificate"])
    assert ekus(cert) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]


def test_hosts_replace_the_csr_sans(client: Client) -> None:
    csr = new_csr("leaf", ["csr.example.com"])
    cert = load_cert(client.post("sign", {"certificate_request": csr, "hosts": ["a.example.com", "10.0.0.1"]}).assert_ok()["certificate"])
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["a.example.com"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.1"]


def test_empty_hosts_remove_every_san(client: Client) -> None:
    cert = load_cert(
        client.post("sign", {"certificate_request": new_csr("leaf", ["csr.example.com"]), "hosts": []}).assert_ok()["certificate"]
    )
    assert dns_sans(cert) == []


def test_null_hosts_keep_the_csr_sans(client: Client) -> None:
    cert = load_cert(
        client.post("sign", {"certificate_request": new_csr("leaf", ["csr.example.com"]), "hosts": None}).assert_ok()["certificate"]
    )
    assert dns_sans(cert) == ["csr.example.com"]


def test_hostname_wins_over_hosts(client: Client) -> None:
    body = {
        "certificate_request": new_csr("leaf", ["csr.example.com"]),
        "hosts": ["ignored.example.com"],
        "hostname": "h1.example.com,h2.example.com",
    }
    cert = load_cert(client.post("sign", body).assert_ok()["certificate"])
    assert dns_sans(cert) == ["h1.example.com", "h2.example.com"]


def test_empty_hostname_leaves_hosts_in_charge(client: Client) -> None:
    body = {"certificate_request": new_csr("leaf", ["csr.example.com"]), "hosts": ["kept.example.com"], "hostname": ""}
    assert dns_sans(load_cert(client.post("sign", body).assert_ok()["certificate"])) == ["kept.example.com"]


def test_keys_match_case_insensitively(client: Client) -> None:
    body = {"Certificate_Request": new_csr("leaf", ["csr.example.com"]), "HOSTS": ["upper.example.com"], "Profile": "client"}
    cert = load_cert(client.post("sign", body).assert_ok()["certificate"])
    assert dns_sans(cert) == ["upper.example.com"]
    assert ekus(cert) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_subject_override(client: Client) -> None:
    body = {"certificate_request": new_csr("from-csr"), "subject": {"CN": "override", "names": [{"O": "Org"}]}}
    cert = load_cert(client.post("sign", body).assert_ok()["certificate"])
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "override"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Org"


def test_fields_the_handler_does_not_read_are_ignored(client: Client) -> None:
    body = {
        "certificate_request": new_csr(),
        "not_after": "2001-01-01T00:00:00Z",
        "crl_override": "http://crl.example/",
        "extensions": [{"id": "1.2.3", "critical": False, "value": "00"}],
        "unknown": 1,
    }
    cert = load_cert(client.post("sign", body).assert_ok()["certificate"])
    assert lifetime(cert) == dt.timedelta(hours=8760)
    assert not any(e.oid.dotted_string in ("1.2.3", "2.5.29.31") for e in cert.extensions)


def test_client_serial_is_honoured_by_profiles_that_allow_it(make_state: StateFactory, client_for: Callable[[ApiState], Client]) -> None:
    cfg = config_json({"serial": {"usages": ["server auth"], "expiry": "1h", "ClientProvidesSerialNumbers": True}})
    client = client_for(make_state(cfg))
    cert = load_cert(
        client.post("sign", {"certificate_request": new_csr(), "profile": "serial", "serial": 123456789}).assert_ok()["certificate"]
    )
    assert cert.serial_number == 123456789
    client.post("sign", {"certificate_request": new_csr(), "profile": "serial"}).assert_error(400, 1400, "Missing serial number in request")


def test_bundle_without_a_bundler_still_returns_the_certificate(client: Client) -> None:
    r = client.post("sign", {"certificate_request": new_csr(), "bundle": True})
    assert "certificate" in r.assert_ok()
    assert r.json["messages"] == [{"code": 5300, "message": NO_BUNDLER_MESSAGE}]


def test_issued_certificates_are_counted_per_profile(client: Client) -> None:
    client.post("sign", {"certificate_request": new_csr(), "profile": "www"}).assert_ok()
    client.post("sign", {"certificate_request": new_csr()}).assert_ok()
    client.post("sign", {"certificate_request": new_csr(), "profile": "made-up"}).assert_error(400, 5400, "Unknown policy profile")
    text = client.request("GET", "/metrics").body.decode()
    assert 'cfsslpy_certificates_issued_total{profile="www"} 1\n' in text
    assert 'cfsslpy_certificates_issued_total{profile="default"} 1\n' in text
    assert 'cfsslpy_http_requests_total{endpoint="sign",status="200"} 2\n' in text


# -- errors -------------------------------------------------------------------------------------------------

PARSE = "Unable to parse sign request"
MISSING = "missing parameter 'certificate_request'"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", PARSE),
        (b"[]", PARSE),
        (b'"string"', PARSE),
        (b'{"hosts": "a.example.com"}', PARSE),
        (b'{"hosts": [1]}', PARSE),
        (b'{"certificate_request": 5}', PARSE),
        (b'{"bundle": "yes"}', PARSE),
        (b'{"serial": "12"}', PARSE),
        (b'{"subject": "CN=x"}', PARSE),
        (b"{}", MISSING),
        (b"null", MISSING),
        (b'{"certificate_request": ""}', MISSING),
        (b'{"certificate_request": null, "profile": "auth"}', MISSING),  # checked before the profile
    ],
)
def test_request_errors(client: Client, body: bytes, message: str) -> None:
    client.post("sign", body).assert_error(400, 400, message)


def test_profile_with_auth_key_needs_authsign(client: Client) -> None:
    client.post("sign", {"certificate_request": new_csr(), "profile": "auth"}).assert_error(400, 400, "authentication required")


@pytest.mark.parametrize(
    ("csr", "code"),
    [
        ("not a pem", 9002),
        ("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", 9300),
        ("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", 9003),
    ],
)
def test_bad_csr_is_a_cfssl_error(client: Client, csr: str, code: int) -> None:
    client.post("sign", {"certificate_request": csr}).assert_error(400, code)


def test_policy_errors_are_400_with_the_cfssl_code(make_state: StateFactory, client_for: Callable[[ApiState], Client]) -> None:
    client = client_for(
        make_state(config_json({"narrow": {"usages": ["server auth"], "expiry": "1h", "name_whitelist": "^ok\\.example\\.com$"}}))
    )
    client.post("sign", {"certificate_request": new_csr("bad.example.com"), "profile": "narrow"}).assert_error(400, 5500)
