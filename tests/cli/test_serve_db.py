"""``serve -db-config`` as users run it: a real process on a loopback port that records what it signs in a
SQLite certificate database, revokes through ``/revoke`` and publishes ``/crl``; and the startup errors.

Every server binds 127.0.0.1 on a port the kernel picks (``-port 0``, the URL read from the "Now listening"
log line) and is always stopped (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CA, RunCli, make_ca
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from servers import process

pytestmark = [pytest.mark.integration]

API = "/api/v1/cfssl/"
LISTENING = re.compile(r"Now listening (?:with mutual TLS )?on (\S+)")


def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "cfsslpy", "serve", "-address", "127.0.0.1", "-port", "0", *args]


@contextlib.contextmanager
def serving(*args: str) -> Iterator[tuple[str, list[str]]]:
    """``cfsslpy serve ARGS`` until it listens: (base URL, its log lines); always stopped afterwards."""
    with process(serve_command(*args)) as server:
        yield server.wait_for(LISTENING, 30).group(1), server.lines


def refused(*args: str) -> subprocess.CompletedProcess[str]:
    """A serve that must refuse to start (it would otherwise listen until the timeout kills it)."""
    return subprocess.run(serve_command(*args), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


def call(url: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    headers = {} if body is None else {"Content-Type": "application/json"}  # as cfssl's clients send it
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def new_csr(cn: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def sign(url: str, cn: str) -> x509.Certificate:
    status, doc = call(url + API + "sign", {"certificate_request": new_csr(cn)})
    assert status == 200, doc
    return x509.load_pem_x509_certificate(doc["result"]["certificate"].encode())


def aki(cert: x509.Certificate) -> str:
    value = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    assert value is not None
    return value.hex()


def rows(db: Path) -> dict[str, tuple[str, str, str]]:
    """serial -> (aki, status, pem), read with the plain sqlite3 module (what cfssl's driver would see)."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        result = conn.execute("SELECT serial_number, authority_key_identifier, status, pem FROM certificates").fetchall()
    return {str(r[0]): (str(r[1]), str(r[2]), str(r[3])) for r in result}


@pytest.fixture
def ca(run_cli: RunCli, tmp_path: Path) -> CA:
    return make_ca(run_cli, tmp_path / "ca")


def db_config(tmp_path: Path, data_source: str) -> Path:
    path = tmp_path / "db.json"
    path.write_text(json.dumps({"driver": "sqlite3", "data_source": data_source}))
    return path


def test_sign_records_revoke_and_crl_across_workers(ca: CA, tmp_path: Path) -> None:
    db = tmp_path / "certs.db"
    args = ["-ca", str(ca.cert), "-ca-key", str(ca.key), "-db-config", str(db_config(tmp_path, str(db)))]
    args += ["-responder", str(ca.cert), "-responder-key", str(ca.key), "-workers", "2"]
    with serving(*args) as (url, _log):
        certs = [sign(url, f"leaf{i}.example.com") for i in range(4)]
        recorded = rows(db)
        for cert in certs:
            assert recorded[str(cert.serial_number)] == (
                aki(cert),
                "good",
                cert.public_bytes(serialization.Encoding.PEM).decode(),
            )
        revoked, kept = certs[0], certs[1]
        status, doc = call(
            url + API + "revoke", {"serial": str(revoked.serial_number), "authority_key_id": aki(revoked), "reason": "keyCompromise"}
        )
        assert (status, doc["result"]) == (200, {}), doc
        assert rows(db)[str(revoked.serial_number)][1] == "revoked"
        status, doc = call(url + API + "crl")
        assert status == 200, doc
        crl = x509.load_der_x509_crl(base64.b64decode(doc["result"]))
        ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
        assert crl.is_signature_valid(ca_cert.public_key())  # type: ignore[arg-type]
        assert crl.get_revoked_certificate_by_serial_number(revoked.serial_number) is not None
        assert crl.get_revoked_certificate_by_serial_number(kept.serial_number) is None
        # the OCSP signer built from -ca -responder -responder-key
        status, doc = call(url + API + "ocspsign", {"certificate": kept.public_bytes(serialization.Encoding.PEM).decode()})
        assert status == 200, doc
        response = ocsp.load_der_ocsp_response(base64.b64decode(doc["result"]["ocspResponse"]))
        assert response.certificate_status == ocsp.OCSPCertStatus.GOOD and response.serial_number == kept.serial_number
        # and certinfo finds what was recorded
        status, doc = call(url + API + "certinfo", {"serial": str(kept.serial_number), "authority_key_id": aki(kept)})
        assert status == 200 and doc["result"]["subject"]["common_name"] == "leaf1.example.com"


def test_datadir_gets_a_sqlite_certdb(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serving("-datadir", str(data)) as (url, _log):
        cert = sign(url, "first.example.com")
    config = json.loads((data / "certdb.json").read_text())
    assert config == {"driver": "sqlite3", "data_source": str(data / "certs.db")}
    assert (data / "certdb.json").stat().st_mode & 0o777 == 0o600
    assert rows(data / "certs.db")[str(cert.serial_number)][1] == "good"
    # the next run uses the same database: a revoke finds the first run's certificate
    with serving("-datadir", str(data)) as (url, _log):
        status, doc = call(url + API + "revoke", {"serial": str(cert.serial_number), "authority_key_id": aki(cert), "reason": "superseded"})
        assert status == 200, doc
    assert rows(data / "certs.db")[str(cert.serial_number)][1] == "revoked"


@pytest.mark.parametrize(
    ("db_json", "message"),
    [
        ("{not json", "failed to unmarshal configuration"),
        ('{"driver": "sqlite3"}', "invalid db configuration"),
        ('{"driver": "sqlite3", "data_source": "/nonexistent-dir/x/certs.db"}', "unable to open database file"),
    ],
)
def test_an_unusable_db_config_stops_the_server(ca: CA, tmp_path: Path, db_json: str, message: str) -> None:
    config = tmp_path / "db.json"
    config.write_text(db_json)
    result = refused("-ca", str(ca.cert), "-ca-key", str(ca.key), "-db-config", str(config))
    assert result.returncode == 1, result.stderr
    assert message in result.stderr and "Now listening" not in result.stderr
    assert "cannot use the certificate database" in result.stderr


def test_an_unusable_responder_stops_the_server(ca: CA, run_cli: RunCli, tmp_path: Path) -> None:
    other = make_ca(run_cli, tmp_path / "other", name="other")
    result = refused("-ca", str(ca.cert), "-ca-key", str(ca.key), "-responder", str(other.cert), "-responder-key", str(other.key))
    assert result.returncode == 1 and "Now listening" not in result.stderr
    assert "cannot build the OCSP signer" in result.stderr
    result = refused("-ca", str(ca.cert), "-ca-key", str(ca.key), "-responder", str(ca.cert))
    assert result.returncode == 1 and "need responder key (provide with -responder-key)" in result.stderr
    result = refused("-ca", str(ca.cert), "-ca-key", str(ca.key), "-responder-key", str(ca.key))
    assert result.returncode == 2 and "-responder-key needs -responder" in result.stderr


def test_the_responder_key_falls_back_to_key(ca: CA) -> None:
    with serving("-ca", str(ca.cert), "-ca-key", str(ca.key), "-responder", str(ca.cert), "-key", str(ca.key)) as (url, _log):
        cert = sign(url, "ocsp.example.com")
        status, doc = call(
            url + API + "ocspsign", {"certificate": cert.public_bytes(serialization.Encoding.PEM).decode(), "status": "revoked"}
        )
        assert status == 200, doc
        response = ocsp.load_der_ocsp_response(base64.b64decode(doc["result"]["ocspResponse"]))
        assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
        # no -db-config: no revoke, no crl (reference §2.1)
        status, doc = call(url + API + "revoke", {"serial": "1"})
        assert status == 404 and doc["errors"][0]["code"] == 404
