"""Browser-borne requests (issue 10, item 4): wrong Content-Type, cross-site Origin / Sec-Fetch-Site, foreign
Host. In-process; the same against a real ``serve`` is in tests/integration/test_serve.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import CA

from api.test_api_revocation import Server, full_state, make_db
from api.wsgi import Client, load_cert, new_csr
from cfsslpy.api.app import create_app
from cfsslpy.api.guard import HostPolicy
from cfsslpy.api.state import ApiState
from cfsslpy.certdb import key_id_hex


@pytest.fixture
def server(api_ca: CA, tmp_path: Path, client_for: Callable[[ApiState], Client]) -> Server:
    db = make_db(tmp_path / "certs.db")
    client = client_for(full_state(api_ca, db))
    return Server(client, db, load_cert(api_ca.cert.read_text()), api_ca.cert.read_text(), api_ca.key.read_text(), tmp_path / "certs.db")


def revoke_body(server: Server) -> dict[str, str]:
    cert = server.issue("victim.example")
    return {"serial": str(cert.serial_number), "authority_key_id": key_id_hex(cert), "reason": "keyCompromise"}


def status(server: Server, body: dict[str, str]) -> str:
    (rec,) = server.db.get_certificate(body["serial"], body["authority_key_id"])
    return rec.status


SIMPLE = ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""]


@pytest.mark.parametrize("content_type", SIMPLE)
def test_revoke_with_a_simple_content_type_is_refused_and_changes_nothing(server: Server, content_type: str) -> None:
    body = revoke_body(server)
    resp = server.client.post("revoke", body, headers={"Content-Type": content_type})
    resp.assert_error(415, 415)
    assert "application/json" in resp.error["message"]
    assert status(server, body) == "good"
    server.client.post("revoke", body, headers={"Content-Type": "application/json; charset=utf-8"}).assert_ok()
    assert status(server, body) == "revoked"


@pytest.mark.parametrize("name", ["sign", "newcert", "newkey", "init_ca", "certadd", "gencrl", "ocspsign"])
def test_state_changing_endpoints_need_json(server: Server, name: str) -> None:
    server.client.post(name, {"certificate_request": new_csr()}, headers={"Content-Type": "text/plain"}).assert_error(415, 415)
    server.client.post(name, {}, headers={"Content-Type": "application/octet-stream"}).assert_error(415, 415)


def test_sign_and_newcert_with_json_work(server: Server) -> None:
    server.client.post("sign", {"certificate_request": new_csr()}, headers={"Content-Type": "Application/JSON"}).assert_ok()
    server.client.post("newcert", {"request": {"CN": "a.example", "hosts": ["a.example"]}}).assert_ok()


@pytest.mark.parametrize("name", ["info", "certinfo"])
def test_read_only_endpoints_refuse_only_the_simple_types(server: Server, name: str) -> None:
    server.client.post(name, {}, headers={"Content-Type": "text/plain"}).assert_error(415, 415)
    server.client.post(name, {}, headers={"Content-Type": ""}).assert_error(415, 415)
    body = {"certificate": server.ca_pem} if name == "certinfo" else {}
    server.client.post(name, body, headers={"Content-Type": "application/x-cfssl"}).assert_ok()


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:3000"},  # another port on the same host
        {"Origin": "not a url"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_cross_origin_posts_are_refused(server: Server, headers: dict[str, str]) -> None:
    body = revoke_body(server)
    resp = server.client.post("revoke", body, headers={"Host": "127.0.0.1:8888", **headers})
    resp.assert_error(403, 403)
    assert "cross-origin" in resp.error["message"]
    assert status(server, body) == "good"


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "127.0.0.1:8888", "Origin": "http://127.0.0.1:8888", "Sec-Fetch-Site": "same-origin"},
        {"Host": "[::1]:8888", "Origin": "http://[::1]:8888"},
        {"Host": "localhost", "Origin": "http://LOCALHOST"},
        {"Host": "ca.example:8888", "Origin": "https://ca.example:8888"},  # behind a TLS-terminating proxy
        {"Host": "127.0.0.1:8888", "Sec-Fetch-Site": "none"},
    ],
)
def test_same_origin_posts_are_accepted(server: Server, headers: dict[str, str]) -> None:
    body = revoke_body(server)
    server.client.post("revoke", body, headers=headers).assert_ok()
    assert status(server, body) == "revoked"


def test_a_cross_site_get_is_answered(server: Server) -> None:
    # navigations and subresource loads do not change state; a cross-origin page cannot read the answer
    server.client.get("health", headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}).assert_ok()


def guarded(api_ca: CA, hosts: HostPolicy) -> Any:
    app = create_app(full_state(api_ca, None), hosts=hosts)
    return app


@pytest.mark.parametrize(
    ("address", "allowed", "host", "ok"),
    [
        ("127.0.0.1", "", "127.0.0.1:8888", True),
        ("127.0.0.1", "", "127.0.0.1", True),
        ("127.0.0.1", "", "localhost:8888", True),
        ("127.0.0.1", "", "[::1]:8888", True),
        ("127.0.0.1", "", "127.0.0.2", True),
        ("127.0.0.1", "", "evil.example:8888", False),
        ("127.0.0.1", "", "evil.example", False),
        ("127.0.0.1", "", "10.1.2.3:8888", False),
        ("127.0.0.1", "", "[::1", False),
        ("127.0.0.1", "", "a@127.0.0.1", False),
        ("127.0.0.1", "", "127.0.0.1:99999", False),
        ("127.0.0.1", "ca.example,Other.Example.", "ca.example:8888", True),
        ("127.0.0.1", "ca.example,Other.Example.", "other.example", True),
        ("127.0.0.1", "ca.example", "evil.example", False),
        ("127.0.0.1", "*", "evil.example", True),
        ("::1", "", "[::1]:8888", True),
        ("::1", "", "[0:0::1]", True),
        ("::1", "", "[fe80::1]:8888", False),
        ("10.1.2.3", "", "10.1.2.3:8888", True),
        ("10.1.2.3", "", "10.9.9.9:8888", False),
        ("0.0.0.0", "", "10.9.9.9:8888", True),
        ("0.0.0.0", "", "[2001:db8::1]:8888", True),
        ("0.0.0.0", "", "evil.example", False),
    ],
)
def test_host_policy(api_ca: CA, address: str, allowed: str, host: str, ok: bool) -> None:
    client = Client(guarded(api_ca, HostPolicy.for_bind(address, allowed)))
    try:
        resp = client.get("health", headers={"Host": host})
        if ok:
            resp.assert_ok()
        else:
            resp.assert_error(403, 403)
            assert "-allowed-hosts" in resp.error["message"]
        # the web UI too: a rebinding page must not even load it
        ui = client.request("GET", "/", headers={"Host": host})
        assert ui.status == (200 if ok else 403)
    finally:
        client.app.metrics.close()
        client.app.close()


def test_a_foreign_host_cannot_generate_a_key(api_ca: CA) -> None:
    client = Client(guarded(api_ca, HostPolicy.for_bind("127.0.0.1")))
    try:
        resp = client.post(
            "newkey", {"request": {"CN": "x", "key": {"algo": "ecdsa", "size": 256}}}, headers={"Host": "rebind.evil.example:8888"}
        )
        resp.assert_error(403, 403)
        assert b"PRIVATE KEY" not in resp.body
        client.post(
            "newkey", {"request": {"CN": "x", "key": {"algo": "ecdsa", "size": 256}}}, headers={"Host": "127.0.0.1:8888"}
        ).assert_ok()
    finally:
        client.app.metrics.close()
        client.app.close()
