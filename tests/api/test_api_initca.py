"""POST /api/v1/cfssl/init_ca (reference §2.3)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from api.wsgi import Client, load_cert


def test_init_ca_returns_key_then_certificate(client: Client) -> None:
    r = client.post("init_ca", {"CN": "New Root", "names": [{"C": "US", "O": "Example"}]})
    result = r.assert_ok()
    assert list(result) == ["private_key", "certificate"]
    assert r.body.index(b'"private_key"') < r.body.index(b'"certificate"')
    cert = load_cert(result["certificate"])
    key = serialization.load_pem_private_key(result["private_key"].encode(), None)
    assert cert.public_key() == key.public_key()
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "New Root"
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca is True
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(hours=43800)


def test_init_ca_honours_the_ca_section_and_key(client: Client) -> None:
    body = {"CN": "Sub", "key": {"algo": "rsa", "size": 2048}, "ca": {"pathlen": 1, "expiry": "2h"}}
    result = client.post("init_ca", body).assert_ok()
    cert = load_cert(result["certificate"])
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 1
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(hours=2)
    assert isinstance(serialization.load_pem_private_key(result["private_key"].encode(), None), rsa.RSAPrivateKey)


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({}, 5300, "missing subject information"),
        ({"names": [{"C": ""}]}, 5300, "missing subject information"),
        ({"CN": "x", "key": {"algo": "rsa", "size": 1024}}, 2400, "RSA key is too weak"),
        ({"CN": "x", "ca": {"expiry": "soon"}}, 5200, None),
        ({"CN": ["x"]}, 400, "json: cannot unmarshal array into Go struct field CertificateRequest.CN of type string"),
    ],
)
def test_init_ca_errors(client: Client, body: object, code: int, message: str | None) -> None:
    client.post("init_ca", body).assert_error(400, code, message)


def test_init_ca_non_json(client: Client) -> None:
    client.post("init_ca", b"{").assert_error(400, 400, "unexpected end of JSON input")
