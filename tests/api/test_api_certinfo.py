"""POST /api/v1/cfssl/certinfo (reference §2.3)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import pytest
from conftest import CA, tls_server

from api.conftest import StateFactory
from api.wsgi import Client, config_json, new_csr
from cfsslpy.api.endpoints import MAX_OUTBOUND
from cfsslpy.certinfo import FetchPolicy, describe_certificate_pem


def test_certinfo_of_a_pem(client: Client, api_ca: CA) -> None:
    result = client.post("certinfo", {"certificate": api_ca.cert.read_text()}).assert_ok()
    assert result == describe_certificate_pem(api_ca.cert.read_bytes())
    assert result["subject"]["common_name"] == "Test ca ecdsa"


def test_certinfo_of_a_domain(make_state: StateFactory, client_for: Callable[..., Client], api_ca: CA) -> None:
    client = client_for(make_state(config_json()), fetch=FetchPolicy.parse("127.0.0.1/32"))
    with tls_server(api_ca.cert, api_ca.key) as port:
        result = client.post("certinfo", {"domain": f"127.0.0.1:{port}"}).assert_ok()
    assert result == describe_certificate_pem(api_ca.cert.read_bytes())


@pytest.mark.parametrize("domain", ["127.0.0.1", "localhost", "[::1]", "169.254.169.254:80", "[::ffff:127.0.0.1]", "0.0.0.0", "[fe80::1]"])
def test_certinfo_does_not_dial_the_servers_own_host_by_default(client: Client, api_ca: CA, domain: str) -> None:
    with tls_server(api_ca.cert, api_ca.key) as port:
        target = domain if domain.endswith(":80") else f"{domain}:{port}"
        resp = client.post("certinfo", {"domain": target})
    resp.assert_error(400, 6000)
    assert "not permitted by the server's fetch policy (serve -fetch-allow)" in resp.error["message"]


def test_fetch_allow_none_and_other_lists_refuse(make_state: StateFactory, client_for: Callable[..., Client], api_ca: CA) -> None:
    with tls_server(api_ca.cert, api_ca.key) as port:
        none = client_for(make_state(config_json()), fetch=FetchPolicy.parse("none"))
        none.post("certinfo", {"domain": f"127.0.0.1:{port}"}).assert_error(400, 6000)
        assert "disabled" in none.post("certinfo", {"domain": f"127.0.0.1:{port}"}).error["message"]
        other = client_for(make_state(config_json()), fetch=FetchPolicy.parse("10.0.0.0/8,ca.example"))
        other.post("certinfo", {"domain": f"127.0.0.1:{port}"}).assert_error(400, 6000)
        named = client_for(make_state(config_json()), fetch=FetchPolicy.parse("localhost"))
        assert named.post("certinfo", {"domain": f"localhost:{port}"}).assert_ok()["subject"]["common_name"] == "Test ca ecdsa"


def test_silent_hosts_hold_at_most_the_outbound_slots(make_state: StateFactory, client_for: Callable[..., Client]) -> None:
    client = client_for(make_state(config_json()), fetch=FetchPolicy.parse("127.0.0.1/32"))
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # never accepted: the kernel completes the TCP handshake, the TLS one never answers
    port = silent.getsockname()[1]
    results: list[int] = []
    try:
        threads = [
            threading.Thread(target=lambda: results.append(client.post("certinfo", {"domain": f"127.0.0.1:{port}"}).status))
            for _ in range(MAX_OUTBOUND)
        ]
        for t in threads:
            t.start()
        time.sleep(0.5)
        start = time.monotonic()
        busy = client.post("certinfo", {"domain": f"127.0.0.1:{port}"})
        busy.assert_error(503, 503)
        assert busy.headers["Retry-After"] == "1"
        client.post("sign", {"certificate_request": new_csr()}).assert_ok()
        assert time.monotonic() - start < 1.0
        for t in threads:
            t.join(30)
        assert results == [400] * MAX_OUTBOUND  # the deadline: i/o timeout (6000)
    finally:
        silent.close()


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
