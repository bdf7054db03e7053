"""OCSP interop: ``openssl ocsp`` verifies our responses; our ocsprefresh/ocspdump on a database cfssl 2016
wrote, and cfssl 2016's ocsprefresh/ocspdump on one we wrote."""

from __future__ import annotations

import base64
import datetime as dt
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
from conftest import CFSSL_2016_SQLITE_SCHEMA
from cryptography import x509
from cryptography.x509 import ocsp

from cfsslpy.certdb import CertDB, DBConfig
from cfsslpy.ocsp import OCSPSigner
from tests.conftest import RunCli, need
from tests.test_ocsp import make_ca, make_leaf, make_responder, parse, record, verify_signature

pytestmark = pytest.mark.integration


def run(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), capture_output=True, text=True, cwd=cwd, timeout=120, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def openssl_ocsp(response: Path, issuer: Path, cert: Path, *trust: str) -> str:
    """``openssl ocsp -respin`` must verify the response; returns its text."""
    proc = run(
        need("openssl"), "ocsp", "-respin", str(response), "-issuer", str(issuer), "-cert", str(cert), "-resp_text", *trust, check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Response verify OK" in out, out
    return out


def sign_to_file(run_cli: RunCli, path: Path, *args: str) -> Path:
    result = run_cli("ocspsign", *args)
    assert result.status == 0, result.stderr
    path.write_bytes(base64.b64decode(result.json["ocspResponse"]))
    return path


# -----------------------------------------------------------------------------------------------------------
# openssl


@pytest.mark.openssl
@pytest.mark.parametrize("kind", ["rsa2048", "p256", "p384", "ed25519"])
def test_openssl_accepts_ca_signed(run_cli: RunCli, tmp_path: Path, kind: str) -> None:
    ca = make_ca(kind, f"OpenSSL CA {kind}")
    ca_pem, ca_key = ca.write(tmp_path, "ca")
    leaf, _ = make_leaf(ca).write(tmp_path, "leaf")
    common = ("-ca", str(ca_pem), "-responder", str(ca_pem), "-responder-key", str(ca_key), "-cert", str(leaf))
    good = sign_to_file(run_cli, tmp_path / "good.der", *common)
    out = openssl_ocsp(good, ca_pem, leaf, "-CAfile", str(ca_pem))
    assert f"{leaf}: good" in out
    revoked = sign_to_file(run_cli, tmp_path / "revoked.der", *common, "-status", "revoked", "-reason", "keyCompromise")
    out = openssl_ocsp(revoked, ca_pem, leaf, "-CAfile", str(ca_pem))
    assert f"{leaf}: revoked" in out and "Reason: keyCompromise" in out


@pytest.mark.openssl
@pytest.mark.parametrize("kind", ["rsa2048", "p384", "ed25519"])
def test_openssl_accepts_delegated_responder(run_cli: RunCli, tmp_path: Path, kind: str) -> None:
    ca = make_ca("p256", "OpenSSL delegating CA")
    ca_pem, _ = ca.write(tmp_path, "ca")
    leaf, _ = make_leaf(ca).write(tmp_path, "leaf")
    responder, responder_key = make_responder(ca, kind).write(tmp_path, "ocsp")
    resp = sign_to_file(
        run_cli,
        tmp_path / "resp.der",
        *("-ca", str(ca_pem), "-responder", str(responder), "-responder-key", str(responder_key), "-cert", str(leaf)),
        *("-status", "unknown", "-interval", "2h"),
    )
    # the embedded responder chains to the CA and carries OCSP Signing
    assert f"{leaf}: unknown" in openssl_ocsp(resp, ca_pem, leaf, "-CAfile", str(ca_pem))
    assert f"{leaf}: unknown" in openssl_ocsp(resp, ca_pem, leaf, "-CAfile", str(ca_pem), "-verify_other", str(responder))
    # the responder trusted directly
    assert f"{leaf}: unknown" in openssl_ocsp(resp, ca_pem, leaf, "-VAfile", str(responder))
    # and the check can fail: another CA is not trusted
    other, _ = make_ca("p256#2", "Unrelated CA").write(tmp_path, "other")
    proc = run(
        need("openssl"), "ocsp", "-respin", str(resp), "-issuer", str(ca_pem), "-cert", str(leaf), "-CAfile", str(other), check=False
    )
    assert "Response verify OK" not in proc.stdout + proc.stderr


# -----------------------------------------------------------------------------------------------------------


def dumped(text: str) -> dict[int, ocsp.OCSPResponse]:
    responses = [parse(base64.b64decode(line, validate=True)) for line in text.splitlines()]
    return {r.serial_number: r for r in responses}


@pytest.mark.cfssl
def test_our_refresh_on_a_cfssl_2016_database(run_cli: RunCli, tmp_path: Path) -> None:
    cfssl = need("cfssl")
    ca = make_ca("p256", "cfssl-written CA")
    ca_pem, ca_key = ca.write(tmp_path, "ca")
    db_path = tmp_path / "cfssl.db"
    with sqlite3.connect(db_path) as conn:
        conn.executescript(CFSSL_2016_SQLITE_SCHEMA)
    conn.close()
    config = tmp_path / "db.json"
    config.write_text(json.dumps({"driver": "sqlite3", "data_source": str(db_path)}))
    (tmp_path / "csr.json").write_text(json.dumps({"CN": "cfssl leaf", "hosts": ["leaf.example"], "key": {"algo": "ecdsa", "size": 256}}))
    serials = []
    for _ in range(3):
        out = run(cfssl, "gencert", "-ca", str(ca_pem), "-ca-key", str(ca_key), "-db-config", str(config), "csr.json", cwd=tmp_path).stdout
        serials.append(x509.load_pem_x509_certificate(json.loads(out)["cert"].encode()).serial_number)
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT serial_number, authority_key_identifier FROM certificates").fetchall()
    conn.close()
    assert sorted(int(s) for s, _ in rows) == sorted(serials) and {aki for _, aki in rows} == {""}  # 2016: no AKI
    # cfssl 2016's revoke cannot match its own rows (it needs an AKI, the rows have none) ...
    aki = OCSPSigner(ca.cert, ca.cert, ca.key).issuer_aki
    proc = run(cfssl, "revoke", "-db-config", str(config), "-serial", str(serials[1]), "-aki", aki, "-reason", "keycompromise", check=False)
    assert proc.returncode == 1 and '"code":11200' in proc.stderr
    # ... so revoke the way its statement does, on the empty AKI (CURRENT_TIMESTAMP's own layout)
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "UPDATE certificates SET status='revoked', revoked_at=CURRENT_TIMESTAMP, reason=1 WHERE serial_number=?", (str(serials[1]),)
        )
    conn.close()

    result = run_cli("ocsprefresh", "-db-config", str(config), "-ca", str(ca_pem), "-responder", str(ca_pem), "-responder-key", str(ca_key))
    assert result.status == 0, result.stderr
    ours = run_cli("ocspdump", "-db-config", str(config))
    assert ours.status == 0
    theirs = run(cfssl, "ocspdump", "-db-config", str(config)).stdout  # cfssl reads what we stored
    for text in (ours.stdout, theirs):
        responses = dumped(text)
        assert set(responses) == set(serials)
        assert responses[serials[0]].certificate_status == ocsp.OCSPCertStatus.GOOD
        revoked = responses[serials[1]]
        assert revoked.certificate_status == ocsp.OCSPCertStatus.REVOKED and revoked.revocation_reason == x509.ReasonFlags.key_compromise
        assert revoked.revocation_time_utc is not None and abs(
            revoked.revocation_time_utc - dt.datetime.now(dt.timezone.utc)
        ) < dt.timedelta(minutes=5)
        verify_signature(revoked, ca.cert)
    # stored under the certificates' real AKI, where a DB-backed responder looks them up
    with sqlite3.connect(db_path) as conn:
        assert {r[0] for r in conn.execute("SELECT authority_key_identifier FROM ocsp_responses")} == {aki}
    conn.close()


@pytest.mark.cfssl
def test_cfssl_refresh_on_our_database(tmp_path: Path) -> None:
    cfssl = need("cfssl")
    ca = make_ca("p256", "cfsslpy-written CA")
    ca_pem, ca_key = ca.write(tmp_path, "ca")
    db_path = tmp_path / "ours.db"
    db = CertDB(DBConfig("sqlite3", str(db_path)))
    leaves = [make_leaf(ca, f"leaf{i}") for i in range(3)]
    for leaf in leaves:
        db.insert_certificate(record(leaf))
    aki = OCSPSigner(ca.cert, ca.cert, ca.key).issuer_aki
    revoked_at = db.revoke(str(leaves[2].cert.serial_number), aki, 9).revoked_at
    db.close()
    config = tmp_path / "db.json"
    config.write_text(json.dumps({"driver": "sqlite3", "data_source": str(db_path)}))
    responder, responder_key = make_responder(ca, "rsa2048").write(tmp_path, "ocsp")

    run(
        cfssl,
        "ocsprefresh",
        "-db-config",
        str(config),
        "-ca",
        str(ca_pem),
        "-responder",
        str(responder),
        "-responder-key",
        str(responder_key),
    )
    responses = dumped(run(cfssl, "ocspdump", "-db-config", str(config)).stdout)
    assert set(responses) == {leaf.cert.serial_number for leaf in leaves}
    assert responses[leaves[0].cert.serial_number].certificate_status == ocsp.OCSPCertStatus.GOOD
    revoked = responses[leaves[2].cert.serial_number]
    assert revoked.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert revoked.revocation_reason == x509.ReasonFlags.privilege_withdrawn
    assert revoked_at is not None and revoked.revocation_time_utc == revoked_at.replace(microsecond=0)
    verify_signature(revoked, x509.load_pem_x509_certificate(responder.read_bytes()))
    # and we read back what cfssl stored (a Go string body in a TEXT column)
    db = CertDB(DBConfig("sqlite3", str(db_path)))
    stored = db.get_ocsp(str(leaves[1].cert.serial_number), aki)
    assert len(stored) == 1 and parse(stored[0].body).serial_number == leaves[1].cert.serial_number
    db.close()
