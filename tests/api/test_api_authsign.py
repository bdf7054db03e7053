"""POST /api/v1/cfssl/authsign: cfssl's HMAC tokens, key rotation, and our opt-in replay guard."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import multiprocessing
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from conftest import CA, need
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from api.conftest import StateFactory
from api.wsgi import AUTH_KEY_HEX, PREV_KEY_HEX, Client, config_json, dns_sans, load_cert, new_csr
from cfsslpy.api.app import create_app
from cfsslpy.api.state import ApiState
from cfsslpy.auth import AuthenticatedRequest

OTHER_KEY_HEX = "FFEEDDCCBBAA99887766554433221100"


def auth_body(
    inner: dict[str, Any] | bytes, key_hex: str = AUTH_KEY_HEX, *, timestamp: int | None = None, ad: bytes = b""
) -> dict[str, Any]:
    """An authsign body built independently of cfsslpy.auth: HMAC-SHA256(key, request || ad)."""
    request = inner if isinstance(inner, bytes) else json.dumps(inner).encode()
    mac = hmac.new(bytes.fromhex(key_hex), request + ad, hashlib.sha256).digest()
    body: dict[str, Any] = {"token": base64.b64encode(mac).decode(), "request": base64.b64encode(request).decode()}
    if timestamp is not None:
        body["timestamp"] = timestamp
    return body


def stamped(inner: dict[str, Any], key_hex: str = AUTH_KEY_HEX, *, at: int | None = None) -> dict[str, Any]:
    """A replay-guarded body: the token covers the decimal timestamp."""
    ts = int(time.time()) if at is None else at
    return auth_body(inner, key_hex, timestamp=ts, ad=str(ts).encode())


# -- the standard provider ----------------------------------------------------------------------------------


def test_reference_vector_key_signs(client: Client, api_ca: CA) -> None:
    """cfssl's test key 0123456789ABCDEF0123456789ABCDEF; the token is derived here with hmac, not cfsslpy."""
    inner = {"certificate_request": new_csr("auth.example.com", ["auth.example.com"]), "profile": "auth"}
    r = client.post("authsign", auth_body(inner, timestamp=int(time.time())))
    cert = load_cert(r.assert_ok()["certificate"])
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(api_ca.cert.read_bytes()))
    assert dns_sans(cert) == ["auth.example.com"]
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == __import__("datetime").timedelta(hours=1)


def test_token_under_the_previous_key_is_accepted(client: Client) -> None:
    inner = {"certificate_request": new_csr(), "profile": "auth"}
    client.post("authsign", auth_body(inner, PREV_KEY_HEX)).assert_ok()


def test_the_inner_request_is_the_sign_request(client: Client) -> None:
    inner = {"certificate_request": new_csr("leaf", ["csr.example.com"]), "profile": "auth", "hostname": "h.example.com", "bundle": True}
    r = client.post("authsign", auth_body(inner))
    assert dns_sans(load_cert(r.assert_ok()["certificate"])) == ["h.example.com"]
    assert r.json["messages"][0]["code"] == 5300


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: {**b, "token": base64.b64encode(b"\0" * 32).decode()},
        lambda b: {**b, "token": base64.b64encode(base64.b64decode(b["token"])[:-1]).decode()},
        lambda b: {**b, "token": ""},
        lambda b: {k: v for k, v in b.items() if k != "token"},
        lambda b: {**b, "request": base64.b64encode(base64.b64decode(b["request"]) + b" ").decode()},
    ],
)
def test_bad_tokens(client: Client, mutate: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    body = auth_body({"certificate_request": new_csr(), "profile": "auth"})
    client.post("authsign", mutate(body)).assert_error(400, 400, "invalid token")


def test_token_under_an_unknown_key(client: Client) -> None:
    body = auth_body({"certificate_request": new_csr(), "profile": "auth"}, OTHER_KEY_HEX)
    client.post("authsign", body).assert_error(400, 400, "invalid token")


@pytest.mark.parametrize("profile", ["www", ""])
def test_profile_without_auth_key(client: Client, profile: str) -> None:
    body = auth_body({"certificate_request": new_csr(), "profile": profile})
    client.post("authsign", body).assert_error(400, 400, "no authentication provider")


def test_unknown_profile_is_refused(client: Client) -> None:
    """cfssl checks the default profile's provider instead; here an unknown name is 5400."""
    body = auth_body({"certificate_request": new_csr(), "profile": "no-such-profile"})
    client.post("authsign", body).assert_error(400, 5400, "Unknown policy profile")


def test_missing_csr_after_a_valid_token(client: Client) -> None:
    client.post("authsign", auth_body({"profile": "auth"})).assert_error(400, 400, "missing parameter 'certificate_request'")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[]", "json: cannot unmarshal array into Go value of type auth.AuthenticatedRequest"),
        (b'{"token": "!!", "request": "e30="}', "illegal base64 data at input byte 0"),
        (b'{"timestamp": "now"}', "json: cannot unmarshal string into Go struct field AuthenticatedRequest.timestamp of type int64"),
        (b'{"timestamp": 1.5}', "json: cannot unmarshal number 1.5 into Go struct field AuthenticatedRequest.timestamp of type int64"),
        (b'{"request": 7}', "json: cannot unmarshal number into Go struct field AuthenticatedRequest.request of type []uint8"),
        (b"{", "unexpected end of JSON input"),
    ],
)
def test_body_errors_use_go_wording(client: Client, body: bytes, message: str) -> None:
    client.post("authsign", body).assert_error(400, 400, message)


@pytest.mark.parametrize("inner", [b"", b"not json", b"[]", b'{"hosts": "x"}', b'{"certificate_request":"\xff"}'])
def test_inner_request_errors(client: Client, inner: bytes) -> None:
    client.post("authsign", auth_body(inner)).assert_error(400, 400, "Unable to parse authenticated sign request")


def test_null_body_is_an_empty_request(client: Client) -> None:
    client.post("authsign", b"null").assert_error(400, 400, "Unable to parse authenticated sign request")


def test_cfsslpy_client_helper_builds_accepted_bodies(client: Client) -> None:
    inner = json.dumps({"certificate_request": new_csr(), "profile": "auth"}).encode()
    body = AuthenticatedRequest.build(bytes.fromhex(AUTH_KEY_HEX), inner).to_json()
    client.post("authsign", body).assert_ok()


# -- replay guard (our addition) ----------------------------------------------------------------------------


def guarded_config() -> dict[str, Any]:
    return config_json(
        {
            "guarded": {
                "usages": ["server auth"],
                "expiry": "1h",
                "auth_key": "current",
                "prev_auth_key": "previous",
                "auth_replay_window": "5m",
            }
        }
    )


@pytest.fixture
def guarded_state(make_state: StateFactory, tmp_path: Path) -> ApiState:
    return make_state(guarded_config(), replay_db=str(tmp_path / "replay.db"))


@pytest.fixture
def guarded(guarded_state: ApiState, client_for: Callable[[ApiState], Client]) -> Client:
    return client_for(guarded_state)


def test_guarded_profile_accepts_a_timestamped_token_once(guarded: Client) -> None:
    body = stamped({"certificate_request": new_csr(), "profile": "guarded"})
    guarded.post("authsign", body).assert_ok()
    guarded.post("authsign", body).assert_error(400, 400, "invalid token")


def test_guarded_profile_accepts_the_previous_key(guarded: Client) -> None:
    guarded.post("authsign", stamped({"certificate_request": new_csr(), "profile": "guarded"}, PREV_KEY_HEX)).assert_ok()


def test_guarded_profile_refuses_cfssl_style_tokens(guarded: Client) -> None:
    # a token that does not cover the timestamp (what cfssl's clients send)
    body = auth_body({"certificate_request": new_csr(), "profile": "guarded"}, timestamp=int(time.time()))
    guarded.post("authsign", body).assert_error(400, 400, "invalid token")


def test_guarded_profile_needs_a_timestamp(guarded: Client) -> None:
    body = auth_body({"certificate_request": new_csr(), "profile": "guarded"})
    guarded.post("authsign", body).assert_error(400, 400, "missing timestamp")


@pytest.mark.parametrize("offset", [-301, 301, -86400])
def test_guarded_profile_refuses_stale_timestamps(guarded: Client, offset: int) -> None:
    body = stamped({"certificate_request": new_csr(), "profile": "guarded"}, at=int(time.time()) + offset)
    guarded.post("authsign", body).assert_error(400, 400, "stale timestamp")


def test_guarded_profile_accepts_skew_inside_the_window(guarded: Client) -> None:
    for offset in (-250, 250):
        guarded.post(
            "authsign", stamped({"certificate_request": new_csr(), "profile": "guarded"}, at=int(time.time()) + offset)
        ).assert_ok()


def test_a_token_with_a_forged_timestamp_is_refused(guarded: Client) -> None:
    body = stamped({"certificate_request": new_csr(), "profile": "guarded"}, at=int(time.time()) - 10)
    body["timestamp"] += 5  # the attacker refreshes the timestamp: the token no longer matches
    guarded.post("authsign", body).assert_error(400, 400, "invalid token")


def test_unguarded_profiles_are_unchanged(guarded: Client) -> None:
    body = auth_body({"certificate_request": new_csr(), "profile": "auth"})
    guarded.post("authsign", body).assert_ok()
    guarded.post("authsign", body).assert_ok()  # cfssl semantics: replayable


def test_replay_db_unusable_refuses(make_state: StateFactory, client_for: Callable[[ApiState], Client], tmp_path: Path) -> None:
    client = client_for(make_state(guarded_config(), replay_db=str(tmp_path / "missing" / "replay.db")))
    body = stamped({"certificate_request": new_csr(), "profile": "guarded"})
    client.post("authsign", body).assert_error(503, 503, "replay guard unavailable")


def _worker_post(app: Any, body: dict[str, Any], barrier: Any, results: Any) -> None:
    barrier.wait(10)
    results.put(Client(app).post("authsign", body).status)


def test_replay_is_refused_across_worker_processes(guarded_state: ApiState) -> None:
    """The app is built once, then forked into workers (as a pre-forking server does); they race one token."""
    app = create_app(guarded_state)
    try:
        body = stamped({"certificate_request": new_csr(), "profile": "guarded"})
        ctx = multiprocessing.get_context("fork")
        barrier = ctx.Barrier(4)
        results = ctx.Queue()
        workers = [ctx.Process(target=_worker_post, args=(app, body, barrier, results)) for _ in range(4)]
        for w in workers:
            w.start()
        statuses = sorted(results.get(timeout=60) for _ in workers)
        for w in workers:
            w.join(30)
            assert w.exitcode == 0
        assert statuses == [200, 400, 400, 400]
        Client(app).post("authsign", body).assert_error(400, 400, "invalid token")  # and in the parent too
    finally:
        app.close()


# -- interop with the real cfssl (marked) -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve(app: Any) -> Iterator[int]:
    server = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.mark.integration
@pytest.mark.cfssl
def test_real_cfssl_sign_remote_authenticates_against_our_authsign(client: Client, tmp_path: Path) -> None:
    cfssl = need("cfssl")
    client_cfg = {
        "signing": {"default": {"auth_remote": {"remote": "ours", "auth_key": "current"}}},
        "auth_keys": {"current": {"type": "standard", "key": AUTH_KEY_HEX}},
        "remotes": {},
    }
    (tmp_path / "csr.pem").write_text(new_csr("interop.example.com", ["interop.example.com"]))
    with serve(client.app) as port:
        client_cfg["remotes"] = {"ours": f"http://127.0.0.1:{port}"}
        (tmp_path / "client.json").write_text(json.dumps(client_cfg))
        run = subprocess.run(
            [cfssl, "sign", "-config", str(tmp_path / "client.json"), "-profile", "auth", str(tmp_path / "csr.pem")],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert run.returncode == 0, run.stderr
    cert = load_cert(json.loads(run.stdout)["cert"])
    assert dns_sans(cert) == ["interop.example.com"]


@pytest.mark.integration
@pytest.mark.cfssl
def test_our_token_is_accepted_by_the_real_cfssl_serve(api_ca: CA, tmp_path: Path) -> None:
    cfssl = need("cfssl")
    (tmp_path / "config.json").write_text(json.dumps(config_json()))
    port = free_port()
    proc = subprocess.Popen(
        [
            cfssl,
            "serve",
            "-address",
            "127.0.0.1",
            "-port",
            str(port),
            "-ca",
            str(api_ca.cert),
            "-ca-key",
            str(api_ca.key),
            "-config",
            str(tmp_path / "config.json"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import urllib.error
        import urllib.request

        inner = json.dumps({"certificate_request": new_csr(), "profile": "auth"}).encode()
        body = json.dumps(AuthenticatedRequest.build(bytes.fromhex(AUTH_KEY_HEX), inner).to_json()).encode()
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/cfssl/authsign", body, timeout=10) as reply:
                    doc = json.loads(reply.read())
                break
            except urllib.error.URLError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert doc["success"] is True
    finally:
        proc.terminate()
        proc.wait(10)
