"""Every signing path with the CA key on a (SoftHSM2) token, checked by openssl; and the token's error cases.

gencert -initca, sign, ocspsign, gencrl, crl and serve (-workers 2, under concurrent load) take a ``pkcs11:``
URI for the key, for RSA 2048 and ECDSA P-256/P-384 keys generated on a throwaway token (integration/softhsm.py).
The private keys stay on the token: sensitive, not extractable, and no key file is written anywhere.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import RunCli, need
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from integration.softhsm import SoftHSM, softhsm
from integration.test_serve import SIGN, new_csr, serving

from cfsslpy import pkcs11 as token_keys

__all__ = ["softhsm"]  # the fixture, imported for pytest

pytestmark = [pytest.mark.integration, pytest.mark.softhsm, pytest.mark.openssl]

ALGOS = ["rsa", "ec", "ec384"]


def openssl(*args: str, check: bool = True) -> str:
    proc = subprocess.run([need("openssl"), *args], capture_output=True, text=True, timeout=60, check=False)
    out = proc.stdout + proc.stderr
    if check:
        assert proc.returncode == 0, out
    return out


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A real ``cfsslpy`` process (a fresh PKCS#11 login each time)."""
    environ = dict(os.environ)
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "cfsslpy", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=environ,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def error_of(stderr: str) -> dict[str, object]:
    error: dict[str, object] = json.loads(stderr.strip().splitlines()[-1])
    return error


def make_token_ca(run_cli: RunCli, token: SoftHSM, name: str, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    csr = directory / "ca-csr.json"
    csr.write_text(json.dumps({"CN": f"Token CA {name}", "names": [{"O": "cfsslpy tests"}], "ca": {"expiry": "8760h"}}))
    result = run_cli("gencert", "-initca", "-ca-key", token.key_uri(name), str(csr))
    assert result.status == 0, result.stderr
    assert set(result.json) == {"cert", "csr"}  # no key: it stays on the token
    ca = directory / "ca.pem"
    ca.write_text(result.json["cert"])
    return ca


def leaf_csr(path: Path, cn: str = "leaf.example.net") -> Path:
    pem, _key = new_csr(cn, (cn,))
    path.write_text(pem)
    return path


@pytest.fixture(params=ALGOS)
def token_ca(request: pytest.FixtureRequest, run_cli: RunCli, softhsm: SoftHSM, tmp_path: Path) -> tuple[str, Path, str]:
    name = request.param
    return name, make_token_ca(run_cli, softhsm, name, tmp_path / "ca"), softhsm.key_uri(name)


def test_initca_is_self_signed_by_the_token_key(token_ca: tuple[str, Path, str], softhsm: SoftHSM) -> None:
    name, ca, uri = token_ca
    cert = x509.load_pem_x509_certificate(ca.read_bytes())
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert cert.public_key().public_bytes(serialization.Encoding.DER, spki) == token_keys.public_key(uri).public_bytes(
        serialization.Encoding.DER, spki
    )
    assert "OK" in openssl("verify", "-CAfile", str(ca), str(ca))


def test_sign_ocspsign_gencrl_crl_with_the_token_key(run_cli: RunCli, token_ca: tuple[str, Path, str], tmp_path: Path) -> None:
    name, ca, uri = token_ca
    db = tmp_path / "db.json"
    db.write_text(json.dumps({"driver": "sqlite3", "data_source": str(tmp_path / "certs.db")}))
    # sign
    result = run_cli("sign", "-ca", str(ca), "-ca-key", uri, "-db-config", str(db), str(leaf_csr(tmp_path / "leaf.csr")))
    assert result.status == 0, result.stderr
    leaf = tmp_path / "leaf.pem"
    leaf.write_text(result.json["cert"])
    assert f"{leaf}: OK" in openssl("verify", "-CAfile", str(ca), str(leaf))
    cert = x509.load_pem_x509_certificate(leaf.read_bytes())
    # ocspsign, the CA as its own responder
    result = run_cli("ocspsign", "-ca", str(ca), "-responder", str(ca), "-responder-key", uri, "-cert", str(leaf), "-status", "good")
    assert result.status == 0, result.stderr
    resp = tmp_path / "resp.der"
    resp.write_bytes(base64.b64decode(result.json["ocspResponse"]))
    out = openssl("ocsp", "-respin", str(resp), "-issuer", str(ca), "-cert", str(leaf), "-CAfile", str(ca), "-resp_text")
    assert "Response verify OK" in out and ": good" in out, out
    # gencrl
    serials = tmp_path / "serials.txt"
    serials.write_text(f"{cert.serial_number}\n")
    result = run_cli("gencrl", "-pem", str(serials), str(ca), uri, "3600")
    assert result.status == 0, result.stderr
    crl = tmp_path / "gencrl.pem"
    crl.write_text(result.stdout)
    out = openssl("crl", "-in", str(crl), "-CAfile", str(ca), "-noout", "-text")
    assert "verify OK" in out and format(cert.serial_number, "X") in out.replace(":", "").upper(), out
    # crl from the certdb, after revoking the leaf
    aki = x509.SubjectKeyIdentifier.from_public_key(x509.load_pem_x509_certificate(ca.read_bytes()).public_key()).digest.hex()
    result = run_cli("revoke", "-db-config", str(db), "-serial", str(cert.serial_number), "-aki", aki, "-reason", "keycompromise")
    assert result.status == 0, result.stderr
    result = run_cli("crl", "-db-config", str(db), "-ca", str(ca), "-ca-key", uri, "-pem")
    assert result.status == 0, result.stderr
    crl = tmp_path / "crl.pem"
    crl.write_text(result.stdout)
    out = openssl("crl", "-in", str(crl), "-CAfile", str(ca), "-noout", "-text")
    assert "verify OK" in out and "Key Compromise" in out, out


def test_gencsr_and_renewca_with_the_token_key(run_cli: RunCli, softhsm: SoftHSM, tmp_path: Path) -> None:
    uri = softhsm.key_uri("ec")
    spec = tmp_path / "csr.json"
    spec.write_text(json.dumps({"CN": "token csr", "hosts": ["token.example"]}))
    result = run_cli("gencsr", "-key", uri, str(spec))
    assert result.status == 0, result.stderr
    assert set(result.json) == {"csr"}
    csr = x509.load_pem_x509_csr(result.json["csr"].encode())
    assert csr.is_signature_valid
    ca = make_token_ca(run_cli, softhsm, "ec", tmp_path / "ca")
    result = run_cli("gencert", "-renewca", "-ca", str(ca), "-ca-key", uri)
    assert result.status == 0, result.stderr
    renewed = tmp_path / "renewed.pem"
    renewed.write_text(result.json["cert"])
    assert "OK" in openssl("verify", "-CAfile", str(renewed), str(renewed))


def test_a_key_that_always_authenticates_gets_a_login_before_each_signature(run_cli: RunCli, softhsm: SoftHSM, tmp_path: Path) -> None:
    """SoftHSM enforces CKA_ALWAYS_AUTHENTICATE (C_Sign without C_Login(CKU_CONTEXT_SPECIFIC) is refused)."""
    objects = token_keys.list_objects(softhsm.uri("always", type="private"))
    assert [o["always_authenticate"] for o in objects] == [True]
    uri = softhsm.key_uri("always")
    ca = make_token_ca(run_cli, softhsm, "always", tmp_path / "ca")
    for i in range(3):  # several signatures in one process: one context-specific login each
        result = run_cli("sign", "-ca", str(ca), "-ca-key", uri, str(leaf_csr(tmp_path / f"leaf{i}.csr", f"l{i}.example")))
        assert result.status == 0, result.stderr
        leaf = tmp_path / f"leaf{i}.pem"
        leaf.write_text(result.json["cert"])
        assert f"{leaf}: OK" in openssl("verify", "-CAfile", str(ca), str(leaf))


def test_the_private_keys_never_leave_the_token(run_cli: RunCli, softhsm: SoftHSM, tmp_path: Path) -> None:
    objects = token_keys.list_objects(softhsm.uri(None))
    private = {o["label"]: o for o in objects if o["class"] == "private"}
    assert set(private) >= set(ALGOS)
    for name in ALGOS:
        assert private[name]["sensitive"] is True and private[name]["extractable"] is False, private[name]
    make_token_ca(run_cli, softhsm, "rsa", tmp_path / "ca")
    key = token_keys.load_private_key(softhsm.key_uri("rsa"))
    with pytest.raises(Exception, match="cannot be exported"):
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    # nothing that looks like a private key was written: not next to the CA, not in the token's directory as PEM
    for root in (tmp_path, softhsm.dir):
        for path in root.rglob("*"):
            if path.is_file():
                assert b"PRIVATE KEY" not in path.read_bytes(), path


def sign_load(host: str, port: int, bodies: list[bytes], per_client: int) -> tuple[list[str], list[str]]:
    """``per_client`` sign requests from each of ``len(bodies)`` threads (keep-alive): (certificates, errors)."""
    issued: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(body: bytes) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        try:
            for _ in range(per_client):
                conn.request("POST", SIGN, body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                with lock:
                    if resp.status != 200:
                        errors.append(f"{resp.status} {data[:200]!r}")
                    else:
                        issued.append(json.loads(data)["result"]["certificate"])
        except OSError as exc:
            with lock:
                errors.append(repr(exc))
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(body,)) for body in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return issued, errors


@pytest.mark.parametrize("name", ["ec", "rsa"])
def test_serve_with_a_token_key_and_two_workers_under_load(run_cli: RunCli, softhsm: SoftHSM, tmp_path: Path, name: str) -> None:
    ca = make_token_ca(run_cli, softhsm, name, tmp_path / name)
    ca_cert = x509.load_pem_x509_certificate(ca.read_bytes())
    with serving("-ca", str(ca), "-ca-key", softhsm.key_uri(name), "-workers", "2") as server:
        assert len(server.children()) == 2
        bodies = [json.dumps({"certificate_request": new_csr(f"h{i}.example", (f"h{i}.example",))[0]}).encode() for i in range(8)]
        issued, errors = sign_load(server.host, server.port, bodies, 25)
        assert not errors, errors[:5]
        assert len(issued) == 200
        for pem in issued:
            x509.load_pem_x509_certificate(pem.encode()).verify_directly_issued_by(ca_cert)
        assert "Traceback" not in server.log
        # the supervisor logged in to load the key; each forked worker logged in again (never reusing its session)
        assert server.log.count("logged in to PKCS#11 token") >= 2, server.log


# ---------------------------------------------------------------------------------------------------------
# errors: cfssl-style, naming the token and object, never the PIN


def _sign_args(tmp_path: Path, softhsm: SoftHSM, run_cli: RunCli) -> tuple[list[str], str]:
    ca = make_token_ca(run_cli, softhsm, "ec", tmp_path / "ca")
    return ["sign", "-ca", str(ca), "-ca-key"], str(leaf_csr(tmp_path / "leaf.csr"))


@pytest.mark.parametrize(
    ("case", "code", "words"),
    [
        ("wrong-pin", 2500, "wrong PIN for PKCS#11 token 'cfsslpy-test'"),
        ("no-pin", 2500, "no PIN for token 'cfsslpy-test'"),
        ("missing-module", 2001, "no such file"),
        ("unknown-token", 2001, "no PKCS#11 token matching token='nope'"),
        ("unknown-object", 2001, "no PKCS#11 private key object='nope'"),
        ("secret-object", 2200, "is not a private key (found: secret-key)"),
        ("public-only", 2200, "is not a private key (found: public)"),
        ("cert-type", 2200, "type=cert"),
        ("unknown-attribute", 2001, "unknown path attribute 'colour'"),
    ],
)
def test_token_errors_are_cfssl_errors(run_cli: RunCli, softhsm: SoftHSM, tmp_path: Path, case: str, code: int, words: str) -> None:
    args, csr = _sign_args(tmp_path, softhsm, run_cli)
    env = {"WRONG_PIN": "135799"}
    uri = {
        "wrong-pin": softhsm.uri("ec", pin_source="env:WRONG_PIN"),
        "no-pin": softhsm.uri("ec", pin_source=""),
        "missing-module": softhsm.uri("ec", module_path="/nonexistent/libnothing.so"),
        "unknown-token": softhsm.uri("ec").replace("token=cfsslpy-test", "token=nope"),
        "unknown-object": softhsm.uri("nope"),
        "secret-object": softhsm.uri("secret"),
        "public-only": softhsm.uri("pubonly"),
        "cert-type": softhsm.uri("ec", type="cert"),
        "unknown-attribute": softhsm.uri("ec", colour="blue"),
    }[case]
    proc = cli(*args, uri, csr, env=env)
    assert proc.returncode == 1, proc.stderr
    error = error_of(proc.stderr)
    assert error["code"] == code, proc.stderr
    assert words in str(error["message"]), proc.stderr
    assert "Traceback" not in proc.stderr
    assert softhsm.pin not in proc.stderr and "135799" not in proc.stderr


def test_pin_value_works_with_a_warning_and_is_never_echoed(run_cli: RunCli, softhsm: SoftHSM, tmp_path: Path) -> None:
    args, csr = _sign_args(tmp_path, softhsm, run_cli)
    proc = cli(*args, softhsm.uri("ec", pin_source="", pin_value=softhsm.pin), csr)
    assert proc.returncode == 0, proc.stderr
    assert "pin-value" in proc.stderr and softhsm.pin not in proc.stderr
    proc = cli(*args, softhsm.uri("ec", pin_source="", pin_value="999999"), csr)
    assert proc.returncode == 1 and error_of(proc.stderr)["code"] == 2500
    assert "999999" not in proc.stderr


def test_a_wrong_key_type_for_the_ca_certificate_is_a_key_mismatch(run_cli: RunCli, softhsm: SoftHSM, tmp_path: Path) -> None:
    ca = make_token_ca(run_cli, softhsm, "rsa", tmp_path / "ca")
    proc = cli("sign", "-ca", str(ca), "-ca-key", softhsm.key_uri("ec"), str(leaf_csr(tmp_path / "leaf.csr")))
    assert proc.returncode == 1 and error_of(proc.stderr)["code"] == 2300, proc.stderr


def test_softhsm_never_reaches_final_try(softhsm: SoftHSM) -> None:
    """SoftHSM 2.6 has no PIN retry counter: the final-try refusal is unit-tested with a fake token
    (tests/test_pkcs11.py); here the token flags after wrong PINs show why."""
    for _ in range(3):
        proc = cli("gencsr", "-key", softhsm.uri("ec", pin_source="env:WRONG_PIN"), "-cert", "/dev/null", env={"WRONG_PIN": "000000"})
        assert proc.returncode == 1
    slots = [s for s in token_keys.list_slots(softhsm.module) if s.get("token", {}).get("label") == softhsm.label]
    assert slots and not slots[0]["token"]["pin_final_try"] and not slots[0]["token"]["pin_locked"]


def test_rsa_pss_and_ed25519_signatures_from_the_token(softhsm: SoftHSM) -> None:
    """The mechanisms no cfssl command asks for yet: RSA-PSS (CKM_RSA_PKCS_PSS) and Ed25519 (CKM_EDDSA)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ed25519, padding

    rsa_key = token_keys.load_private_key(softhsm.key_uri("rsa"))
    data = b"to be signed on the token"
    for digest in (hashes.SHA256(), hashes.SHA384()):
        pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=padding.PSS.DIGEST_LENGTH)
        signature = rsa_key.sign(data, pss, digest)  # type: ignore[arg-type]
        rsa_key.public_key().verify(signature, data, pss, digest)  # type: ignore[arg-type]
        # PSS is randomised: two signatures differ, both verify
        assert rsa_key.sign(data, pss, digest) != signature  # type: ignore[arg-type]

    token_keys.generate_key_pair(softhsm.uri("pss-test-ed25519"), "ed25519", 0)
    ed_key = token_keys.load_private_key(softhsm.uri("pss-test-ed25519"))
    assert isinstance(ed_key, ed25519.Ed25519PrivateKey)
    signature = ed_key.sign(data)
    ed_key.public_key().verify(signature, data)
