"""A certdb written by the real cfssl works with our revoke and crl, and the other way round."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

import pytest
from conftest import CA, CFSSL_2016_SQLITE_SCHEMA, RunCli, make_ca
from cryptography import x509
from helpers import need, run

from cfsslpy.certdb import CertDB, DBConfig, key_id_hex

pytestmark = [pytest.mark.integration, pytest.mark.cfssl]


def _cfssl_gencert(ca: CA, dbconf: Path, cn: str, tmp_path: Path) -> x509.Certificate:
    spec = tmp_path / f"{cn}.json"
    spec.write_text(json.dumps({"CN": cn, "hosts": [f"{cn}.example"], "key": {"algo": "ecdsa", "size": 256}}))
    proc = run(need("cfssl"), "gencert", "-ca", str(ca.cert), "-ca-key", str(ca.key), "-db-config", str(dbconf), str(spec))
    return x509.load_pem_x509_certificate(json.loads(proc.stdout)["cert"].encode())


def _crl_serials(run_cli: RunCli, ca: CA, dbconf: Path) -> dict[int, x509.RevokedCertificate]:
    result = run_cli("crl", "-db-config", str(dbconf), "-ca", str(ca.cert), "-ca-key", str(ca.key))
    assert result.status == 0, result.stderr
    crl = x509.load_der_x509_crl(base64.b64decode(result.stdout))
    assert crl.is_signature_valid(x509.load_pem_x509_certificate(ca.cert.read_bytes()).public_key())  # type: ignore[arg-type]
    return {r.serial_number: r for r in crl}


def test_cfssl_written_database_works_with_our_revoke_and_crl(run_cli: RunCli, tmp_path: Path) -> None:
    ca = make_ca(run_cli, tmp_path / "ca")
    db_path = tmp_path / "cfssl.db"
    conn = sqlite3.connect(db_path)
    conn.executescript(CFSSL_2016_SQLITE_SCHEMA)
    conn.close()
    dbconf = tmp_path / "db.json"
    dbconf.write_text(json.dumps({"driver": "sqlite3", "data_source": str(db_path)}))
    kept = _cfssl_gencert(ca, dbconf, "kept", tmp_path)
    gone = _cfssl_gencert(ca, dbconf, "gone", tmp_path)
    # cfssl 2016 records an empty AKI; our revoke finds the row through the certificate's AKI
    assert {r[0] for r in sqlite3.connect(db_path).execute("SELECT authority_key_identifier FROM certificates")} == {""}
    result = run_cli(
        "revoke", "-db-config", str(dbconf), "-serial", str(gone.serial_number), "-aki", key_id_hex(gone), "-reason", "keyCompromise"
    )
    assert result.status == 0, result.stderr
    revoked = _crl_serials(run_cli, ca, dbconf)
    assert set(revoked) == {gone.serial_number}
    assert revoked[gone.serial_number].extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    # a certificate cfssl revokes itself (its rows carry the empty AKI) lands in our CRL too
    proc = run(need("cfssl"), "revoke", "-db-config", str(dbconf), "-serial", str(kept.serial_number), "-aki", "", check=False)
    assert b"authority key id is required" in proc.stdout + proc.stderr  # cfssl cannot name its own 2016 rows
    with CertDB(DBConfig("sqlite3", str(db_path))) as db:
        assert {r.serial for r in db.unexpired_certificates()} == {str(kept.serial_number), str(gone.serial_number)}


def test_our_database_works_with_cfssl_revoke(run_cli: RunCli, tmp_path: Path) -> None:
    ca = make_ca(run_cli, tmp_path / "ca")
    dbconf = tmp_path / "db.json"
    dbconf.write_text(json.dumps({"driver": "sqlite3", "data_source": str(tmp_path / "ours.db")}))
    spec = tmp_path / "leaf.json"
    spec.write_text(json.dumps({"CN": "leaf", "hosts": ["leaf.example"]}))
    result = run_cli("gencert", "-ca", str(ca.cert), "-ca-key", str(ca.key), "-db-config", str(dbconf), str(spec))
    assert result.status == 0, result.stderr
    cert = x509.load_pem_x509_certificate(result.json["cert"].encode())
    run(
        need("cfssl"),
        "revoke",
        "-db-config",
        str(dbconf),
        "-serial",
        str(cert.serial_number),
        "-aki",
        key_id_hex(cert),
        "-reason",
        "superseded",
    )
    with CertDB(DBConfig("sqlite3", str(tmp_path / "ours.db"))) as db:
        (rec,) = db.get_certificate(str(cert.serial_number), key_id_hex(cert))
    assert (rec.status, rec.reason) == ("revoked", 4)
    assert rec.revoked_at is not None  # cfssl's CURRENT_TIMESTAMP layout parsed
    revoked = _crl_serials(run_cli, ca, dbconf)
    assert set(revoked) == {cert.serial_number}
    assert revoked[cert.serial_number].revocation_date_utc == rec.revoked_at
    # the real cfssl finds nothing for a serial we never issued: our rows do not confuse its queries
    proc = run(
        need("cfssl"), "revoke", "-db-config", str(dbconf), "-serial", "12345", "-aki", key_id_hex(cert), "-reason", "1", check=False
    )
    assert b"11200" in proc.stdout + proc.stderr
