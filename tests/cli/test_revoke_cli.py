from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import CA, RunCli, write_csr_json
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cfsslpy.certdb import CertDB, DBConfig, key_id_hex


@pytest.fixture
def dbconf(tmp_path: Path) -> Path:
    path = tmp_path / "db.json"
    path.write_text(json.dumps({"driver": "sqlite3", "data_source": str(tmp_path / "certs.db")}))
    return path


def _issue(run_cli: RunCli, ca: CA, dbconf: Path, tmp_path: Path, cn: str = "leaf") -> x509.Certificate:
    spec = write_csr_json(tmp_path / f"{cn}.json", {"CN": cn, "hosts": [f"{cn}.example"], "key": {"algo": "ecdsa", "size": 256}})
    result = run_cli("gencert", "-ca", str(ca.cert), "-ca-key", str(ca.key), "-db-config", str(dbconf), str(spec))
    assert result.status == 0, result.stderr
    return x509.load_pem_x509_certificate(result.json["cert"].encode())


def test_gencert_and_sign_record_every_certificate(run_cli: RunCli, ec_ca: CA, dbconf: Path, tmp_path: Path) -> None:
    cert = _issue(run_cli, ec_ca, dbconf, tmp_path)
    spec = write_csr_json(tmp_path / "csr.json", {"CN": "signed", "hosts": ["s.example"], "key": {"algo": "ecdsa", "size": 256}})
    csr = run_cli("genkey", str(spec)).json["csr"]
    (tmp_path / "s.csr").write_text(csr)
    signed = run_cli("sign", "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key), "-db-config", str(dbconf), "-label", "L1", "s.csr")
    assert signed.status == 0, signed.stderr
    cert2 = x509.load_pem_x509_certificate(signed.json["cert"].encode())
    with CertDB(DBConfig("sqlite3", str(tmp_path / "certs.db"))) as db:
        (a,) = db.get_certificate(str(cert.serial_number), key_id_hex(cert))
        (b,) = db.get_certificate(str(cert2.serial_number), key_id_hex(cert2))
    assert a.certificate() == cert and a.sans == ["leaf.example"] and a.common_name == "leaf"
    assert b.certificate() == cert2 and b.ca_label == "L1"


def test_a_bad_db_config_fails_before_signing(run_cli: RunCli, ec_ca: CA, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"driver":"sqlite3"}')
    spec = write_csr_json(tmp_path / "x.json", {"CN": "x", "hosts": ["x.example"]})
    result = run_cli("gencert", "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key), "-db-config", str(bad), str(spec))
    assert result.status == 1 and result.stdout == ""
    assert result.error == {"code": 5200, "message": "invalid db configuration"}


def test_no_certificate_is_printed_when_it_cannot_be_recorded(run_cli: RunCli, ec_ca: CA, dbconf: Path, tmp_path: Path) -> None:
    _issue(run_cli, ec_ca, dbconf, tmp_path)  # creates the database
    conn = sqlite3.connect(tmp_path / "certs.db")
    conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON certificates BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
    conn.commit()
    conn.close()
    spec = write_csr_json(tmp_path / "y.json", {"CN": "y", "hosts": ["y.example"]})
    result = run_cli("gencert", "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key), "-db-config", str(dbconf), str(spec))
    assert result.status == 1 and result.stdout == ""
    assert result.error == {"code": 11000, "message": "disk says no"}


def test_revoke_by_serial_and_aki(run_cli: RunCli, ec_ca: CA, dbconf: Path, tmp_path: Path) -> None:
    cert = _issue(run_cli, ec_ca, dbconf, tmp_path)
    aki = key_id_hex(cert)
    colon_upper = ":".join(aki[i : i + 2] for i in range(0, len(aki), 2)).upper()  # as certinfo prints it
    result = run_cli(
        "revoke", "-db-config", str(dbconf), "-serial", str(cert.serial_number), "-aki", colon_upper, "-reason", "KeyCompromise"
    )
    assert (result.status, result.stdout) == (0, "")
    with CertDB(DBConfig("sqlite3", str(tmp_path / "certs.db"))) as db:
        (rec,) = db.get_certificate(str(cert.serial_number), aki)
    assert (rec.status, rec.reason) == ("revoked", 1) and rec.revoked_at is not None


def test_revoke_without_reason_means_unspecified(run_cli: RunCli, ec_ca: CA, dbconf: Path, tmp_path: Path) -> None:
    cert = _issue(run_cli, ec_ca, dbconf, tmp_path)
    result = run_cli("revoke", "-db-config", str(dbconf), "-cert", "-", stdin=cert.public_bytes(serialization.Encoding.PEM))
    assert result.status == 0, result.stderr
    with CertDB(DBConfig("sqlite3", str(tmp_path / "certs.db"))) as db:
        (rec,) = db.get_certificate(str(cert.serial_number), key_id_hex(cert))
    assert (rec.status, rec.reason) == ("revoked", 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["extra"], "argument is provided but not defined; please refer to the usage by flag -h"),
        (["-aki", "ab"], "serial number is required but not provided"),
        (["-serial", "1"], "authority key id is required but not provided"),
        (["-serial", "1", "-aki", "ab"], "need DB config file (provide with -db-config)"),
    ],
)
def test_revoke_flag_checks_in_cfssl_order(run_cli: RunCli, args: list[str], message: str) -> None:
    result = run_cli("revoke", *args)
    usage = (
        "\nhint: usage: cfsslpy revoke -db-config config -serial serial -aki authority_key_id [-reason reason]\n"
        "hint:        cfsslpy revoke -db-config config -cert cert.pem [-reason reason]\n"
        "hint: 'cfsslpy revoke -h' lists its flags"
    )
    assert (result.status, result.stdout, result.stderr.strip()) == (1, "", message + usage)


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["-serial", "12", "-aki", "abcd", "-reason", "bogus"], 8200),
        (["-serial", "12", "-aki", "abcd", "-reason", "7"], 8200),
        (["-serial", "12x", "-aki", "abcd"], 1300),
        (["-serial", "12", "-aki", "xyz"], 1300),
        (["-serial", "-5", "-aki", "abcd"], 1300),
        (["-serial", "12", "-aki", "abcd"], 11200),
    ],
)
def test_revoke_bad_input(run_cli: RunCli, dbconf: Path, args: list[str], code: int) -> None:
    result = run_cli("revoke", "-db-config", str(dbconf), *args)
    assert result.status == 1 and result.stdout == ""
    assert result.error["code"] == code
    assert "Traceback" not in result.stderr


def test_revoke_cert_conflicts_with_serial(run_cli: RunCli, dbconf: Path) -> None:
    result = run_cli("revoke", "-db-config", str(dbconf), "-cert", "x.pem", "-serial", "1")
    assert result.status == 2
