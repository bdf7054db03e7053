"""multirootca's API (issue 13) over a real loopback socket: the serving stack's worker in a thread, a
cfssl-shaped client (authsign bodies built with hmac here, not with cfsslpy.auth).

Two roots, ``alpha`` (token key KEY_A, the default label) and ``beta`` (KEY_B), whose configs name their key
the same way: every certificate is verified against its own root, a token made with one root's key is
refused by the other, and each root records only in its own certificate database.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from test_multiroot import KEY_A, KEY_B, config_doc, make_ca, new_csr, two_roots, write_config

from api.wsgi import Client
from cfsslpy.api import server as srv
from cfsslpy.api.multiroot import MultirootApp, create_multiroot_app
from cfsslpy.multiroot import Authority

API = "/api/v1/cfssl/"


@dataclass
class Served:
    url: str
    app: MultirootApp
    dir: Path

    def root_cert(self, label: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((self.dir / label / "ca.pem").read_bytes())

    def call(
        self, path: str, body: Any = None, *, method: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        all_headers = {"Content-Type": "application/json"} if data is not None else {}
        all_headers.update(headers or {})
        req = urllib.request.Request(self.url + path, data=data, method=method or ("GET" if data is None else "POST"), headers=all_headers)
        try:
            with urllib.request.urlopen(req, timeout=20) as resp:
                raw = resp.read()
                return resp.status, dict(resp.headers), _decode(raw)
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), _decode(exc.read())

    def authsign(self, inner: dict[str, Any], key_hex: str, **kw: Any) -> tuple[int, Any]:
        status, _headers, doc = self.call(API + "authsign", auth_body(inner, key_hex), **kw)
        return status, doc


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode()


def auth_body(inner: dict[str, Any], key_hex: str, *, ad: bytes = b"", timestamp: int | None = None) -> dict[str, Any]:
    """cfssl's AuthenticatedRequest: token = HMAC-SHA256(key, request || ad)."""
    request = json.dumps(inner).encode()
    mac = hmac.new(bytes.fromhex(key_hex), request + ad, hashlib.sha256).digest()
    body: dict[str, Any] = {"token": base64.b64encode(mac).decode(), "request": base64.b64encode(request).decode()}
    if timestamp is not None:
        body["timestamp"] = timestamp
    return body


def refused(doc: Any, message: str) -> None:
    assert doc == {"success": False, "result": None, "errors": [{"code": 1, "message": message}], "messages": []}


@contextlib.contextmanager
def serving(app: MultirootApp, directory: Path) -> Iterator[Served]:
    listener = srv.bind("127.0.0.1", 0)
    worker = srv.Worker(app, srv.ServerOptions(), listener, None, multiprocess=False)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{listener.getsockname()[1]}", app, directory)
    finally:
        worker.stop()
        thread.join(10)
        listener.close()
        app.close()


Serve = Callable[..., Any]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """``serve(**overrides)``: the two roots (overrides per label, as in test_multiroot.two_roots) served."""
    stack = contextlib.ExitStack()

    def _serve(default: str = "alpha", **overrides: dict[str, str]) -> Served:
        path = two_roots(tmp_path, **overrides)
        app = create_multiroot_app(Authority(str(path), default))
        return stack.enter_context(serving(app, tmp_path))

    with stack:
        yield _serve


def signed(doc: Any) -> x509.Certificate:
    assert doc["success"] is True, doc
    return x509.load_pem_x509_certificate(doc["result"]["certificate"].encode())


# ---------------------------------------------------------------------------------------------------------


def test_authsign_per_label_each_certificate_from_its_own_root(serve: Serve) -> None:
    s = serve()
    for label, key in (("alpha", KEY_A), ("beta", KEY_B)):
        status, doc = s.authsign({"certificate_request": new_csr(f"{label}.example.com").decode(), "label": label}, key)
        assert status == 200, doc
        cert = signed(doc)
        cert.verify_directly_issued_by(s.root_cert(label))
        assert cert.issuer == s.root_cert(label).subject


def test_an_empty_label_means_the_default_root(serve: Serve) -> None:
    s = serve(default="beta")
    status, doc = s.authsign({"certificate_request": new_csr().decode()}, KEY_B)
    assert status == 200
    signed(doc).verify_directly_issued_by(s.root_cert("beta"))
    status, doc = s.authsign({"certificate_request": new_csr().decode()}, KEY_A)  # alpha's key: not the default's
    assert status == 400
    refused(doc, "invalid token")


def test_an_unknown_label_is_cfssls_bad_request(serve: Serve) -> None:
    status, doc = serve().authsign({"certificate_request": new_csr().decode(), "label": "gamma"}, KEY_A)
    assert status == 400
    refused(doc, "bad request")


@pytest.mark.parametrize(("label", "key"), [("beta", KEY_A), ("alpha", KEY_B)])
def test_a_token_of_one_root_is_refused_by_the_other(serve: Serve, label: str, key: str) -> None:
    """cfssl issue #950: both configs call their key "shared-name"; only the bytes of the root asked count."""
    status, doc = serve().authsign({"certificate_request": new_csr().decode(), "label": label}, key)
    assert status == 400
    refused(doc, "invalid token")


def test_nets_refuses_loopback_when_it_lists_only_another_network(serve: Serve) -> None:
    s = serve(beta={"nets": "10.0.0.0/8"})
    inner = {"certificate_request": new_csr().decode(), "label": "beta"}
    forged = {"X-Forwarded-For": "10.1.2.3", "X-Real-IP": "10.1.2.3", "Forwarded": "for=10.1.2.3"}
    status, doc = s.authsign(inner, KEY_B, headers=forged)  # headers never stand in for the peer address
    assert status == 403
    refused(doc, "not authorised")
    status, doc = s.authsign({"certificate_request": new_csr().decode(), "label": "alpha"}, KEY_A)  # alpha has no nets
    assert status == 200, doc


def test_nets_that_list_loopback_allow_it(serve: Serve) -> None:
    s = serve(beta={"nets": "10.0.0.0/8, 127.0.0.0/8"})
    status, doc = s.authsign({"certificate_request": new_csr().decode(), "label": "beta"}, KEY_B)
    assert status == 200, doc


def test_certificates_are_recorded_only_in_their_roots_certdb(serve: Serve, tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.json").write_text(json.dumps({"driver": "sqlite3", "data_source": str(tmp_path / f"{name}.db")}))
    s = serve(alpha={"dbconfig": "a.json"}, beta={"dbconfig": "b.json"})
    issued: dict[str, list[str]] = {"alpha": [], "beta": []}
    for label, key in (("alpha", KEY_A), ("beta", KEY_B), ("beta", KEY_B)):
        status, doc = s.authsign({"certificate_request": new_csr().decode(), "label": label}, key)
        assert status == 200, doc
        issued[label].append(str(signed(doc).serial_number))
    status, doc = s.authsign({"certificate_request": new_csr().decode()}, KEY_A)  # the default label: alpha
    issued["alpha"].append(str(signed(doc).serial_number))
    for label, db in (("alpha", "a.db"), ("beta", "b.db")):
        conn = sqlite3.connect(tmp_path / db)
        try:
            rows = sorted((str(r[0]), str(r[1])) for r in conn.execute("SELECT serial_number, ca_label FROM certificates"))
        finally:
            conn.close()
        assert rows == sorted((serial, label) for serial in issued[label])


@pytest.mark.parametrize(
    ("inner", "status", "message"),
    [
        ({"certificate_request": "", "label": "alpha"}, 400, "invalid request"),
        ({"label": "alpha"}, 400, "invalid request"),
        ({"certificate_request": "not a CSR"}, 400, "bad request"),
        ({"certificate_request": "x", "profile": "nope"}, 400, "invalid profile"),
    ],
)
def test_cfssls_refusals_in_its_order(serve: Serve, inner: dict[str, Any], status: int, message: str) -> None:
    got, doc = serve().authsign(inner, KEY_A)
    assert got == status
    refused(doc, message)


def test_a_named_profile_of_the_root_is_used(serve: Serve) -> None:
    status, doc = serve().authsign({"certificate_request": new_csr().decode(), "profile": "client"}, KEY_A)
    cert = signed(doc)
    assert status == 200
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(hours=24, minutes=5)


def test_bodies_that_are_not_json_get_gos_error(serve: Serve) -> None:
    s = serve()
    status, _h, doc = s.call(API + "authsign", b"xx")
    assert status == 400
    refused(doc, "invalid character 'x' looking for beginning of value")
    inner = base64.b64encode(b"zz").decode()
    status, _h, doc = s.call(API + "authsign", {"token": "", "request": inner})
    assert status == 400
    refused(doc, "invalid character 'z' looking for beginning of value")


def test_method_and_paths(serve: Serve) -> None:
    s = serve()
    status, headers, doc = s.call(API + "authsign", method="GET")
    assert (status, headers.get("Allow")) == (405, "POST")
    refused(doc, "only POST is permitted")
    for path in ("sign", "newcert", "init_ca"):  # cfssl 1.2.0 and 1.6.5's multirootca: 404 page not found
        status, _h, doc = s.call(API + path, {"certificate_request": new_csr().decode()})
        assert status == 404
        assert doc["errors"] == [{"code": 404, "message": "404 page not found"}]
    status, _h, doc = s.call(API + "health")
    assert (status, doc["result"]) == (200, {"healthy": True})


def test_info_by_label(serve: Serve) -> None:
    s = serve(default="beta")
    for body, label in (({"label": "alpha"}, "alpha"), ({}, "beta"), ({"label": ""}, "beta")):
        status, _h, doc = s.call(API + "info", body)
        assert status == 200
        assert x509.load_pem_x509_certificate(doc["result"]["certificate"].encode()) == s.root_cert(label)
    status, _h, doc = s.call(API + "info", {"label": "gamma"})
    assert status == 400
    assert doc["errors"] == [{"code": 400, "message": "bad label"}]


def test_metrics_have_per_root_figures_and_only_loopback_reads_them(serve: Serve) -> None:
    s = serve()
    s.authsign({"certificate_request": new_csr().decode(), "label": "alpha"}, KEY_A)
    s.authsign({"certificate_request": new_csr().decode(), "label": "beta"}, KEY_A)
    status, headers, text = s.call("/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'cfsslpy_http_requests_total{endpoint="authsign:alpha",status="200"} 1' in text
    assert 'cfsslpy_http_errors_total{endpoint="authsign:beta",status="400",code="1"} 1' in text
    assert 'cfsslpy_certificates_issued_total{profile="alpha/default"} 1' in text
    outside = Client(s.app).request("GET", "/metrics", environ={"REMOTE_ADDR": "10.0.0.7"}, headers={"X-Forwarded-For": "127.0.0.1"})
    assert outside.status == 404 and outside.json["errors"] == [{"code": 404, "message": "404 page not found"}]


def test_a_replay_window_is_per_root(serve: Serve, tmp_path: Path) -> None:
    s = serve()
    doc = config_doc(KEY_A)
    doc["signing"]["default"]["auth_replay_window"] = "5m"
    (tmp_path / "alpha" / "config.json").write_text(json.dumps(doc))
    assert s.app.authority.reload(grace=0)
    ts = int(time.time())
    body = auth_body({"certificate_request": new_csr().decode()}, KEY_A, ad=str(ts).encode(), timestamp=ts)
    first = s.call(API + "authsign", body)
    assert first[0] == 200, first
    again = s.call(API + "authsign", body)
    assert again[0] == 400
    refused(again[2], "invalid token")


def test_a_reload_applies_to_the_next_request_and_a_broken_file_changes_nothing(serve: Serve, tmp_path: Path) -> None:
    s = serve()
    make_ca(tmp_path / "gamma", "ca")
    write_config(tmp_path / "gamma" / "config.json", KEY_B)
    roots_file = tmp_path / "roots.conf"
    good = roots_file.read_text()
    roots_file.write_text(good + "[gamma]\nprivate = file://gamma/ca-key.pem\ncertificate = gamma/ca.pem\nconfig = gamma/config.json\n")
    assert s.app.authority.reload(grace=0) is True
    status, doc = s.authsign({"certificate_request": new_csr().decode(), "label": "gamma"}, KEY_B)
    assert status == 200
    signed(doc).verify_directly_issued_by(s.root_cert("gamma"))
    roots_file.write_text("[gamma]\nprivate = rofile://gamma.enc\n")
    assert s.app.authority.reload(grace=0) is False
    status, doc = s.authsign({"certificate_request": new_csr().decode(), "label": "gamma"}, KEY_B)
    assert status == 200, doc


def test_hostile_requests_are_refused_and_the_server_goes_on(serve: Serve) -> None:
    s = serve()
    status, _h, doc = s.call(API + "authsign", b"{" * 2_000_000)  # over the 1 MiB body limit
    assert status == 413 and doc["errors"][0]["code"] == 413
    status, _h, doc = s.call(API + "authsign", b'{"token": "\xff"}')
    assert status == 400
    refused(doc, "request body is not valid UTF-8")
    status, _h, doc = s.call(API + "authsign", b"[" * 100_000 + b"]" * 100_000)
    assert status == 400 and doc["errors"][0]["code"] == 1
    status, _h, doc = s.call(
        API + "authsign", auth_body({"certificate_request": new_csr().decode()}, KEY_A), headers={"Content-Type": "text/plain"}
    )
    assert status == 415
    status, _h, doc = s.call(
        API + "authsign", auth_body({"certificate_request": new_csr().decode()}, KEY_A), headers={"Origin": "https://evil.example"}
    )
    assert status == 403 and doc["errors"][0]["code"] == 403
    status, doc = s.authsign({"certificate_request": new_csr().decode()}, KEY_A)
    assert status == 200, doc


def test_log_lines_carry_the_label(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    s = serve(beta={"nets": "10.0.0.0/8"})
    with caplog.at_level(logging.INFO):
        assert s.authsign({"certificate_request": new_csr().decode(), "label": "alpha"}, KEY_A)[0] == 200
        assert s.authsign({"certificate_request": new_csr().decode(), "label": "beta"}, KEY_B)[0] == 403
        assert s.authsign({"certificate_request": new_csr().decode(), "label": "alpha"}, KEY_B)[0] == 400
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("signature: requester=127.0.0.1, label=alpha, profile=default, serialno=") for line in lines), lines
    assert any(line == "label=beta: refused peer 127.0.0.1: not in the root's nets" for line in lines), lines
    assert any(line == "label=alpha: invalid token" for line in lines), lines
    access = [line for line in lines if line.startswith("method=POST path=/api/v1/cfssl/authsign")]
    assert [line.rsplit(" label=", 1)[1] for line in access] == ["alpha", "beta", "alpha"]
