"""sign, gencert and info with -remote (and remote profiles) against the fake cfssl API of tests/test_remote.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from cfsslpy.keys import load_private_key, public_key_matches
from tests.cli.errlines import error_line
from tests.conftest import RunCli, write_csr_json
from tests.test_remote import KEY, KEY_HEX, PKI, FakeCfssl, build_pki, closed_port, envelope, new_csr


@pytest.fixture
def pki(run_cli: RunCli, tmp_path: Path) -> PKI:
    return build_pki(run_cli, tmp_path / "pki")


@pytest.fixture
def csr_file(tmp_path: Path) -> Path:
    path = tmp_path / "leaf.csr"
    path.write_bytes(new_csr())
    return path


@pytest.fixture
def csr_json(tmp_path: Path) -> Path:
    return write_csr_json(tmp_path / "leaf.json", {"CN": "gen.example", "hosts": ["gen.example"], "key": {"algo": "ecdsa", "size": 256}})


def config_file(tmp_path: Path, profiles: dict[str, Any], default: dict[str, Any] | None = None, remote: str = "") -> Path:
    doc = {
        "signing": {"default": default or {"expiry": "1h", "usages": ["server auth"]}, "profiles": profiles},
        "remotes": {"ca": remote or "127.0.0.1:1"},
        "auth_keys": {"k": {"type": "standard", "key": KEY_HEX}},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    return path


def cert_of(result: Any) -> x509.Certificate:
    return x509.load_pem_x509_certificate(result.json["cert"].encode())


def test_sign_remote(run_cli: RunCli, pki: PKI, csr_file: Path) -> None:
    with FakeCfssl(pki.signer).running() as fake:
        result = run_cli("sign", "-remote", fake.address, "-hostname", "a.example,b.example", "-label", "L", "-profile", "P", str(csr_file))
    assert result.status == 0, result.stderr
    assert list(result.json) == ["cert", "csr"] and result.json["csr"] == csr_file.read_text()
    assert cert_of(result).issuer == pki.signer.certificate.subject  # type: ignore[union-attr]
    sent = fake.seen[0].json
    assert (sent["hosts"], sent["label"], sent["profile"]) == (["a.example", "b.example"], "L", "P")


def test_sign_remote_needs_no_ca_and_ignores_it(run_cli: RunCli, pki: PKI, csr_file: Path) -> None:
    with FakeCfssl(pki.signer).running() as fake:
        result = run_cli("sign", "-remote", fake.address, "-ca", "missing.pem", str(csr_file))
    assert result.status == 0, result.stderr
    assert "flag -ca has no effect with -remote" in result.stderr


def test_gencert_remote(run_cli: RunCli, pki: PKI, csr_json: Path) -> None:
    with FakeCfssl(pki.signer).running() as fake:
        result = run_cli("gencert", "-remote", fake.address, "-hostname", "over.example", str(csr_json))
    assert result.status == 0, result.stderr
    assert list(result.json) == ["cert", "csr", "key"]
    cert = cert_of(result)
    assert public_key_matches(load_private_key(result.json["key"].encode()), cert.public_key())
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == ["over.example"]
    assert b"PRIVATE KEY" not in fake.seen[0].body
    assert fake.seen[0].json["hosts"] == ["over.example"]


def test_info_remote_without_config(run_cli: RunCli, pki: PKI) -> None:
    with FakeCfssl(pki.signer).running() as fake:
        result = run_cli("info", "-remote", fake.address, "-label", "L", "-profile", "P")
    assert result.status == 0, result.stderr
    assert not result.stdout.endswith("\n")
    assert list(result.json) == ["certificate", "usages", "expiry"]
    assert x509.load_pem_x509_certificate(result.json["certificate"].encode()) == pki.signer.certificate
    assert fake.seen[0].body == b'{"label":"L","profile":"P"}'


def test_remote_profiles_in_the_config_need_no_ca(run_cli: RunCli, pki: PKI, csr_file: Path, tmp_path: Path) -> None:
    with FakeCfssl(pki.signer).running() as fake:
        cfg = config_file(tmp_path, {"fwd": {"remote": "ca"}}, default={"remote": "ca"}, remote=fake.address)
        result = run_cli("sign", "-config", str(cfg), "-profile", "fwd", str(csr_file))
        info = run_cli("info", "-config", str(cfg))
    assert result.status == 0, result.stderr
    assert info.status == 0, info.stderr
    assert [s.path for s in fake.seen] == ["/api/v1/cfssl/sign", "/api/v1/cfssl/info"]


def test_auth_remote_profile_uses_authsign(run_cli: RunCli, pki: PKI, csr_json: Path, tmp_path: Path) -> None:
    with FakeCfssl(pki.signer, auth_key=KEY).running() as fake:
        fwd = {"auth_remote": {"remote": "ca", "auth_key": "k"}}
        cfg = config_file(tmp_path, {"fwd": fwd}, default=fwd, remote=fake.address)
        result = run_cli("gencert", "-config", str(cfg), str(csr_json))
    assert result.status == 0, result.stderr
    body = fake.seen[0].json
    assert fake.seen[0].path == "/api/v1/cfssl/authsign"
    assert base64.b64decode(body["token"]) == hmac.new(KEY, base64.b64decode(body["request"]), hashlib.sha256).digest()
    assert isinstance(body["timestamp"], int)
    assert KEY_HEX not in result.stderr


def test_wrong_auth_key_is_7400_with_the_servers_body(run_cli: RunCli, pki: PKI, csr_file: Path, tmp_path: Path) -> None:
    with FakeCfssl(pki.signer, auth_key=b"other").running() as fake:
        fwd = {"auth_remote": {"remote": "ca", "auth_key": "k"}}
        cfg = config_file(tmp_path, {}, default=fwd, remote=fake.address)
        result = run_cli("sign", "-config", str(cfg), str(csr_file))
    assert result.status == 1 and result.stdout == ""
    assert result.error["code"] == 7400 and '"invalid token"' in result.error["message"]


def test_mixed_config_still_needs_the_ca(run_cli: RunCli, csr_file: Path, tmp_path: Path) -> None:
    cfg = config_file(tmp_path, {"fwd": {"remote": "ca"}})
    result = run_cli("sign", "-config", str(cfg), str(csr_file))
    assert (result.status, error_line(result.stderr)) == (1, "need CA certificate (provide one with -ca)")
    result = run_cli("gencert", "-config", str(cfg), "-ca", "x.pem", str(csr_file))
    assert (result.status, error_line(result.stderr)) == (1, "need a CA key (provide one with -ca-key)")


def test_mixed_config_dispatches_and_refuses_unknown_profiles(run_cli: RunCli, pki: PKI, csr_file: Path, tmp_path: Path) -> None:
    with FakeCfssl(pki.signer).running() as fake:
        cfg = config_file(tmp_path, {"fwd": {"remote": "ca"}}, remote=fake.address)
        ca = ("-ca", str(pki.ca.cert), "-ca-key", str(pki.ca.key))
        local = run_cli("sign", "-config", str(cfg), *ca, str(csr_file))
        assert fake.seen == []
        remote = run_cli("sign", "-config", str(cfg), *ca, "-profile", "fwd", str(csr_file))
        unknown = run_cli("sign", "-config", str(cfg), *ca, "-profile", "nope", str(csr_file))
    assert local.status == 0 and remote.status == 0 and len(fake.seen) == 1
    assert (unknown.status, unknown.error) == (1, {"code": 5400, "message": "Unknown policy profile"})


def test_remote_flag_beats_the_config_remotes(run_cli: RunCli, pki: PKI, csr_file: Path, tmp_path: Path) -> None:
    cfg = config_file(tmp_path, {"fwd": {"remote": "ca"}}, remote=f"127.0.0.1:{closed_port()}")
    with FakeCfssl(pki.signer).running() as fake:
        result = run_cli("sign", "-config", str(cfg), "-profile", "fwd", "-remote", fake.address, str(csr_file))
    assert result.status == 0, result.stderr
    assert len(fake.seen) == 1


def test_failover_list(run_cli: RunCli, pki: PKI, csr_file: Path) -> None:
    with FakeCfssl(pki.signer).running() as fake:
        result = run_cli("sign", "-remote", f"127.0.0.1:{closed_port()},{fake.address}", str(csr_file))
    assert result.status == 0, result.stderr
    assert "[WARNING] failed POST to" in result.stderr


def test_unreachable_remote_is_7400(run_cli: RunCli, csr_file: Path) -> None:
    port = closed_port()
    result = run_cli("sign", "-remote", f"127.0.0.1:{port}", str(csr_file))
    assert (result.status, result.stdout) == (1, "")
    assert result.error["code"] == 7400 and result.error["message"].startswith(f"failed POST to http://127.0.0.1:{port}/api/v1/cfssl/sign")


def test_a_bad_remote_is_5300(run_cli: RunCli, csr_file: Path) -> None:
    result = run_cli("sign", "-remote", "ftp://ca.example", str(csr_file))
    assert (result.status, result.error) == (1, {"code": 5300, "message": "failed to connect to remote"})
    assert "unsupported scheme" in result.stderr


def test_4xx_body_is_the_message_and_5xx_too(run_cli: RunCli, csr_file: Path) -> None:
    body = envelope(errors=[{"code": 9300, "message": "CSR Bad request"}])
    with FakeCfssl(reply=lambda p, b: (400, body)).running() as fake:
        result = run_cli("sign", "-remote", fake.address, str(csr_file))
    assert result.error == {"code": 7400, "message": body.decode()}
    with FakeCfssl(reply=lambda p, b: (200, envelope(errors=[{"code": 5300, "message": "nope"}]))).running() as fake:
        result = run_cli("info", "-remote", fake.address)
    assert result.error == {"code": 7500, "message": "nope"}


def test_https_remote_with_tls_remote_ca(run_cli: RunCli, pki: PKI, csr_file: Path) -> None:
    with FakeCfssl(pki.signer, tls=pki.server_context()).running() as fake:
        ok = run_cli("sign", "-remote", fake.address, "-tls-remote-ca", str(pki.ca.cert), str(csr_file))
        bad = run_cli("sign", "-remote", fake.address, str(csr_file))
    assert ok.status == 0, ok.stderr
    assert bad.status == 1 and bad.error["code"] == 7400 and "certificate verify failed" in bad.error["message"]


def test_mutual_tls_client_certificate_flags(run_cli: RunCli, pki: PKI, csr_file: Path) -> None:
    tls = ("-tls-remote-ca", str(pki.ca.cert))
    client = ("-mutual-tls-client-cert", str(pki.client_cert), "-mutual-tls-client-key", str(pki.client_key))
    with FakeCfssl(pki.signer, tls=pki.server_context(require_client=True)).running() as fake:
        ok = run_cli("info", "-remote", fake.address, *tls, *client)
        refused = run_cli("info", "-remote", fake.address, *tls)
    assert ok.status == 0, ok.stderr
    assert refused.status == 1 and refused.error["code"] == 7400


def test_client_certificate_without_key_is_a_usage_error(run_cli: RunCli, pki: PKI, csr_file: Path) -> None:
    result = run_cli("sign", "-remote", "127.0.0.1:1", "-mutual-tls-client-cert", str(pki.client_cert), str(csr_file))
    assert result.status == 2
    assert "-mutual-tls-client-cert and -mutual-tls-client-key go together" in result.stderr


def test_unreadable_tls_remote_ca_is_cfssls_plain_error(run_cli: RunCli, csr_file: Path) -> None:
    result = run_cli("sign", "-remote", "https://127.0.0.1:1", "-tls-remote-ca", "/nonexistent", str(csr_file))
    assert (result.status, result.stderr.strip().splitlines()[-1]) == (1, "open /nonexistent: no such file or directory")


def test_initca_stays_local_with_remote(run_cli: RunCli, tmp_path: Path) -> None:
    spec = write_csr_json(tmp_path / "ca.json", {"CN": "Local CA", "names": [{"O": "x"}]})
    result = run_cli("gencert", "-initca", "-remote", f"127.0.0.1:{closed_port()}", str(spec))
    assert result.status == 0, result.stderr
    assert list(result.json) == ["cert", "csr", "key"]
    assert "flag -remote has no effect with -initca" in result.stderr


@pytest.mark.parametrize("command", ["sign", "gencert", "info"])
def test_help_lists_the_remote_flags(run_cli: RunCli, command: str) -> None:
    result = run_cli(command, "-h")
    assert result.status == 0
    for flag in ("-remote", "-label", "-tls-remote-ca", "-mutual-tls-client-cert", "-mutual-tls-client-key"):
        assert flag in result.stderr
