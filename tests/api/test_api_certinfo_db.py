"""certinfo's certificate database lookup (newest cfssl): the API body ``{"serial", "authority_key_id"}`` when
serve has a database, and ``certinfo -serial S -aki A -db-config F`` on the command line."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import CA, RunCli
from cryptography import x509

from api.wsgi import Client, load_cert, new_csr
from cfsslpy.api.state import ApiState
from cfsslpy.certdb import CertDB, DBConfig, key_id_hex, recorder
from cfsslpy.certinfo import certificate_info
from cfsslpy.config import Config
from cfsslpy.signer import LocalSigner, load_issuer


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "certs.db"


@pytest.fixture
def db_client(api_ca: CA, db_path: Path, client_for: Callable[[ApiState], Client]) -> Client:
    db = CertDB(DBConfig("sqlite3", str(db_path)))
    policy = Config.default().signing
    signer = LocalSigner(load_issuer(str(api_ca.cert), str(api_ca.key)), policy, recorder=recorder(db))
    return client_for(ApiState(signer=signer, policy=policy, db=db))


def issue(client: Client, cn: str = "db.example.com") -> x509.Certificate:
    return load_cert(client.post("sign", {"certificate_request": new_csr(cn, [cn])}).assert_ok()["certificate"])


def colon_aki(cert: x509.Certificate) -> str:
    return ":".join(f"{b:02X}" for b in bytes.fromhex(key_id_hex(cert)))


def test_api_lookup_by_serial_and_aki(db_client: Client) -> None:
    cert = issue(db_client)
    expected = certificate_info(cert)
    for aki in (key_id_hex(cert), colon_aki(cert)):  # certinfo prints the AKI with colons: both forms work
        result = db_client.post("certinfo", {"serial": str(cert.serial_number), "authority_key_id": aki}).assert_ok()
        assert result == expected
    assert expected["subject"]["common_name"] == "db.example.com"


def test_api_certificate_still_wins_over_serial(db_client: Client, api_ca: CA) -> None:
    cert = issue(db_client)
    body = {"certificate": api_ca.cert.read_text(), "serial": str(cert.serial_number), "authority_key_id": key_id_hex(cert)}
    assert db_client.post("certinfo", body).assert_ok()["subject"]["common_name"] == "Test ca ecdsa"


def test_api_not_found(db_client: Client) -> None:
    cert = issue(db_client)
    db_client.post("certinfo", {"serial": str(cert.serial_number + 1), "authority_key_id": key_id_hex(cert)}).assert_error(
        400, 11200, "no certificate found"
    )
    db_client.post("certinfo", {"serial": str(cert.serial_number), "authority_key_id": "ab" * 20}).assert_error(
        400, 11200, "no certificate found"
    )


@pytest.mark.parametrize(("serial", "aki"), [("abc", "ab"), ("1", "xyz"), ("1", "")])
def test_api_malformed_serial_or_aki(db_client: Client, serial: str, aki: str) -> None:
    db_client.post("certinfo", {"serial": serial, "authority_key_id": aki}).assert_error(400, 1300)


def test_api_finds_a_row_written_by_cfssl_2016_with_an_empty_aki(db_client: Client, db_path: Path) -> None:
    cert = issue(db_client)
    with contextlib.closing(sqlite3.connect(db_path)) as conn, conn:  # the second one commits
        conn.execute("UPDATE certificates SET authority_key_identifier = ''")
    result = db_client.post("certinfo", {"serial": str(cert.serial_number), "authority_key_id": key_id_hex(cert)}).assert_ok()
    assert result["serial_number"] == str(cert.serial_number)


# -- the command line -----------------------------------------------------------------------------------------


def test_cli_lookup(run_cli: RunCli, db_client: Client, db_path: Path, tmp_path: Path) -> None:
    cert = issue(db_client, "cli.example.com")
    config = tmp_path / "db.json"
    config.write_text(json.dumps({"driver": "sqlite3", "data_source": str(db_path)}))
    result = run_cli("certinfo", "-serial", str(cert.serial_number), "-aki", colon_aki(cert), "-db-config", str(config))
    assert result.status == 0, result.stderr
    assert result.stdout.endswith("}\n")
    assert result.json == certificate_info(cert)
    from_pem = run_cli("certinfo", "-cert", "-", stdin=result.json["pem"].encode())
    assert from_pem.stdout == result.stdout  # printed exactly like -cert


def test_cli_not_found_and_bad_config(run_cli: RunCli, db_client: Client, db_path: Path, tmp_path: Path) -> None:
    cert = issue(db_client)
    config = tmp_path / "db.json"
    config.write_text(json.dumps({"driver": "sqlite3", "data_source": str(db_path)}))
    result = run_cli("certinfo", "-serial", "7", "-aki", key_id_hex(cert), "-db-config", str(config))
    assert result.status == 1 and result.stdout == ""
    assert result.error == {"code": 11200, "message": "no certificate found"}
    result = run_cli("certinfo", "-serial", "7", "-aki", "ab", "-db-config", str(tmp_path / "missing.json"))
    assert result.status == 1
    assert result.error == {"code": 5200, "message": "could not read configuration file"}
