"""Concurrent revokes and OCSP refreshes, as separate processes on one SQLite certdb, lose nothing."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import RunCli, make_ca, write_csr_json
from cryptography import x509
from cryptography.x509 import ocsp

from cfsslpy.certdb import CertDB, DBConfig, key_id_hex

pytestmark = pytest.mark.integration


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cfsslpy", *args], capture_output=True, text=True, timeout=120, check=False)


def test_concurrent_revokes_and_refreshes_lose_nothing(run_cli: RunCli, tmp_path: Path) -> None:
    ca = make_ca(run_cli, tmp_path / "ca")
    dbconf = tmp_path / "db.json"
    dbconf.write_text(json.dumps({"driver": "sqlite3", "data_source": str(tmp_path / "certs.db")}))
    spec = write_csr_json(tmp_path / "leaf.json", {"CN": "leaf", "hosts": ["leaf.example"], "key": {"algo": "ecdsa", "size": 256}})
    certs = []
    for _ in range(24):
        result = run_cli("gencert", "-ca", str(ca.cert), "-ca-key", str(ca.key), "-db-config", str(dbconf), str(spec))
        assert result.status == 0, result.stderr
        certs.append(x509.load_pem_x509_certificate(result.json["cert"].encode()))
    to_revoke = certs[::2]  # half of them
    refresh = ["ocsprefresh", "-db-config", str(dbconf), "-ca", str(ca.cert), "-responder", str(ca.cert), "-responder-key", str(ca.key)]

    def revoke(cert: x509.Certificate) -> subprocess.CompletedProcess[str]:
        return _cli(
            "revoke", "-db-config", str(dbconf), "-serial", str(cert.serial_number), "-aki", key_id_hex(cert), "-reason", "superseded"
        )

    with ThreadPoolExecutor(max_workers=6) as pool:
        refreshes = [pool.submit(_cli, *refresh) for _ in range(4)]
        revokes = [pool.submit(revoke, cert) for cert in to_revoke]
        results = [f.result() for f in revokes + refreshes]
    for proc in results:
        assert proc.returncode == 0, proc.stderr

    with CertDB(DBConfig("sqlite3", str(tmp_path / "certs.db"))) as db:
        revoked = {r.serial for r in db.revoked_unexpired()}
    assert revoked == {str(c.serial_number) for c in to_revoke}

    # a last refresh after the dust settles: every response tells the truth
    final = _cli(*refresh)
    assert final.returncode == 0, final.stderr
    dump = run_cli("ocspdump", "-db-config", str(dbconf))
    assert dump.status == 0, dump.stderr
    statuses = {}
    for line in dump.stdout.split():
        resp = ocsp.load_der_ocsp_response(base64.b64decode(line))
        statuses[resp.serial_number] = resp.certificate_status
    assert len(statuses) == len(certs)
    for cert in certs:
        expected = ocsp.OCSPCertStatus.REVOKED if cert in to_revoke else ocsp.OCSPCertStatus.GOOD
        assert statuses[cert.serial_number] == expected
