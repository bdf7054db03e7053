"""POST /api/v1/cfssl/certinfo (reference §2.3)."""

from __future__ import annotations

import pytest
from conftest import CA, tls_server

from api.wsgi import Client
from cfsslpy.certinfo import describe_certificate_pem


def test_certinfo_of_a_pem(client: Client, api_ca: CA) -> None:
    result = client.post("certinfo", {"certificate": api_ca.cert.read_text()}).assert_ok()
    assert result == describe_certificate_pem(api_ca.cert.read_bytes())
    assert result["subject"]["common_name"] == "Test ca ecdsa"


def test_certinfo_of_a_domain(client: Client, api_ca: CA) -> None:
    with tls_server(api_ca.cert, api_ca.key) as port:
        result = client.post("certinfo", {"domain": f"127.0.0.1:{port}"}).assert_ok()
    assert result == describe_certificate_pem(api_ca.cert.read_bytes())


def test_certificate_wins_over_domain(client: Client, api_ca: CA) -> None:
    result = client.post("certinfo", {"domain": "127.0.0.1:1", "certificate": api_ca.cert.read_text()}).assert_ok()
    assert result["serial_number"] == describe_certificate_pem(api_ca.cert.read_bytes())["serial_number"]


def test_serial_lookup_needs_a_database(client: Client) -> None:
    client.post("certinfo", {"serial": "1", "authority_key_id": "ab"}).assert_error(
        500, 0, "cannot lookup certificate from serial without db access"
    )


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({}, 400, "no valid parameter sets found"),
        (None, 400, "no valid parameter sets found"),
        ({"serial": "1"}, 400, "no valid parameter sets found"),
        ({"Certificate": "x"}, 400, "no valid parameter sets found"),  # a map: keys are exact
        ({"certificate": ""}, 1002, "Failed to decode certificate"),
        ({"certificate": None}, 1002, "Failed to decode certificate"),
        ({"certificate": 1}, 400, "json: cannot unmarshal number into Go value of type string"),
        ([], 400, "json: cannot unmarshal array into Go value of type map[string]string"),
        ({"domain": "127.0.0.1:1"}, 6000, None),
    ],
)
def test_certinfo_errors(client: Client, body: object, code: int, message: str | None) -> None:
    client.post("certinfo", body if body is not None else b"null").assert_error(400, code, message)
