"""Faults around the certdb: processes killed mid-batch, several signers at once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import CA, Result, RunCli, make_ca

from cfsslpy.certdb import CertDB, DBConfig

pytestmark = pytest.mark.integration

# Signs CSRs in a loop through the same path as `sign -db-config`, printing each serial once sign() has
# returned it (the moment a certificate is handed out).
SIGNER = textwrap.dedent(
    """
    import sys
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    from cfsslpy import certdb
    from cfsslpy.config import Config
    from cfsslpy.signer import LocalSigner, SignRequest, load_issuer

    ca, key, dbconf, tag = sys.argv[1:5]
    db = certdb.open_db(dbconf)
    signer = LocalSigner(load_issuer(ca, key), Config.default().signing, recorder=certdb.recorder(db))
    k = ec.generate_private_key(ec.SECP256R1())
    i = 0
    while True:
        i += 1
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{tag}-{i}")]))
            .sign(k, __import__("cryptography.hazmat.primitives.hashes", fromlist=["SHA256"]).SHA256())
        )
        cert = signer.sign(SignRequest(request=csr.public_bytes(serialization.Encoding.PEM), hosts=[f"{tag}-{i}.example"]))
        sys.stdout.write(f"{cert.serial_number}\\n")
        sys.stdout.flush()
    """
)


def _start(script: Path, ca: CA, dbconf: Path, tag: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(script), str(ca.cert), str(ca.key), str(dbconf), tag],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_signers_killed_mid_batch_leave_every_handed_out_certificate_recorded(run_cli: RunCli, tmp_path: Path) -> None:
    ca = make_ca(run_cli, tmp_path / "ca")
    dbconf = tmp_path / "db.json"
    dbconf.write_text(json.dumps({"driver": "sqlite3", "data_source": str(tmp_path / "certs.db")}))
    script = tmp_path / "signer.py"
    script.write_text(SIGNER)
    handed_out: set[str] = set()
    for round_ in range(3):
        procs = [_start(script, ca, dbconf, f"r{round_}p{n}") for n in range(3)]
        try:
            deadline = time.monotonic() + 60
            counts = [0] * len(procs)
            # let each process hand out a few certificates, then kill it without warning mid-stream
            while min(counts) < 5 + round_ * 3 and time.monotonic() < deadline:
                for n, p in enumerate(procs):
                    line = p.stdout.readline() if p.stdout else ""
                    assert line, p.stderr.read() if p.stderr else "signer died"
                    handed_out.add(line.strip())
                    counts[n] += 1
        finally:
            for p in procs:
                p.send_signal(signal.SIGKILL)
            for p in procs:
                out, _err = p.communicate(timeout=30)
                # whole lines written before the kill (a line cut by the kill is not a handed-out serial)
                complete = out[: out.rfind("\n") + 1]
                handed_out.update(s for s in complete.split() if s)
    assert len(handed_out) >= 3 * 3 * 5
    conn = sqlite3.connect(tmp_path / "certs.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with CertDB(DBConfig("sqlite3", str(tmp_path / "certs.db"))) as db:
        recorded = {r.serial for r in db.unexpired_certificates()}
        assert handed_out <= recorded, f"handed out but not recorded: {sorted(handed_out - recorded)[:5]}"
        # every row is whole: its PEM parses and is the certificate of its serial
        for rec in db.unexpired_certificates():
            assert str(rec.certificate().serial_number) == rec.serial


def _gencert(run_cli: RunCli, ca: CA, dbconf: Path, name: str) -> Result:
    spec = f'{{"CN":"{name}"}}'.encode()
    return run_cli(
        "gencert", "-ca", str(ca.cert), "-ca-key", str(ca.key), "-db-config", str(dbconf), "-hostname", f"{name}.example", "-", stdin=spec
    )


def test_sign_process_killed_while_the_database_is_locked_by_another(run_cli: RunCli, tmp_path: Path) -> None:
    """A signer waiting on a lock held by another process is killed: nothing half-written, the next one works."""
    ca = make_ca(run_cli, tmp_path / "ca")
    dbconf = tmp_path / "db.json"
    dbconf.write_text(json.dumps({"driver": "sqlite3", "data_source": str(tmp_path / "certs.db")}))
    first = _gencert(run_cli, ca, dbconf, "a")
    assert first.status == 0, first.stderr
    holder = sqlite3.connect(tmp_path / "certs.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # hold the write lock
    script = tmp_path / "signer.py"
    script.write_text(SIGNER)
    p = _start(script, ca, dbconf, "blocked")
    try:
        time.sleep(1.0)
        assert p.poll() is None  # waiting for the lock, nothing handed out
    finally:
        os.kill(p.pid, signal.SIGKILL)
        out, _ = p.communicate(timeout=30)
        holder.execute("ROLLBACK")
        holder.close()
    assert out == ""
    with CertDB(DBConfig("sqlite3", str(tmp_path / "certs.db"))) as db:
        before = len(db.unexpired_certificates())
    again = _gencert(run_cli, ca, dbconf, "b")
    assert again.status == 0, again.stderr
    with CertDB(DBConfig("sqlite3", str(tmp_path / "certs.db"))) as db:
        assert len(db.unexpired_certificates()) == before + 1
