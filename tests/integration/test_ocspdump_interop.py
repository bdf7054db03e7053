"""The ocspdump -> ocspserve pipeline across implementations: the real cfssl serves our dump, we serve its dump."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CA, RunCli, make_ca, write_csr_json
from cryptography import x509
from helpers import need, run

from cfsslpy.certdb import key_id_hex

pytestmark = [pytest.mark.integration, pytest.mark.cfssl, pytest.mark.openssl]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _server(argv: list[str], port: int) -> Iterator[str]:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, "server exited"
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=10)


def _status(url: str, ca: CA, cert: Path) -> str:
    proc = run(need("openssl"), "ocsp", "-issuer", str(ca.cert), "-cert", str(cert), "-url", url, "-CAfile", str(ca.cert), check=False)
    text = (proc.stdout + proc.stderr).decode()
    assert "Response verify OK" in text, text
    line = next(x for x in text.splitlines() if x.startswith(f"{cert}:"))
    return line.split(":", 1)[1].strip()


def _pki(run_cli: RunCli, tmp_path: Path) -> tuple[CA, Path, dict[str, Path]]:
    ca = make_ca(run_cli, tmp_path / "ca")
    dbconf = tmp_path / "db.json"
    dbconf.write_text(json.dumps({"driver": "sqlite3", "data_source": str(tmp_path / "certs.db")}))
    leaves = {}
    for name in ("good", "revoked"):
        spec = write_csr_json(tmp_path / f"{name}.json", {"CN": name, "hosts": [f"{name}.example"], "key": {"algo": "ecdsa", "size": 256}})
        result = run_cli("gencert", "-ca", str(ca.cert), "-ca-key", str(ca.key), "-db-config", str(dbconf), str(spec))
        assert result.status == 0, result.stderr
        leaves[name] = tmp_path / f"{name}.pem"
        leaves[name].write_text(result.json["cert"])
    cert = x509.load_pem_x509_certificate(leaves["revoked"].read_bytes())
    result = run_cli(
        "revoke", "-db-config", str(dbconf), "-serial", str(cert.serial_number), "-aki", key_id_hex(cert), "-reason", "keyCompromise"
    )
    assert result.status == 0, result.stderr
    return ca, dbconf, leaves


def test_cfssl_ocspserve_serves_our_ocspdump(run_cli: RunCli, tmp_path: Path) -> None:
    ca, dbconf, leaves = _pki(run_cli, tmp_path)
    refresh = run_cli(
        "ocsprefresh", "-db-config", str(dbconf), "-ca", str(ca.cert), "-responder", str(ca.cert), "-responder-key", str(ca.key)
    )
    assert refresh.status == 0, refresh.stderr
    dump = run_cli("ocspdump", "-db-config", str(dbconf))
    assert dump.status == 0, dump.stderr
    responses = tmp_path / "responses"
    responses.write_text(dump.stdout)
    port = _free_port()
    with _server([need("cfssl"), "ocspserve", "-address", "127.0.0.1", "-port", str(port), "-responses", str(responses)], port) as url:
        assert _status(url, ca, leaves["good"]) == "good"
        assert _status(url, ca, leaves["revoked"]) == "revoked"


def test_our_ocspserve_serves_cfssl_ocspdump(run_cli: RunCli, tmp_path: Path) -> None:
    ca, dbconf, leaves = _pki(run_cli, tmp_path)
    cfssl = need("cfssl")
    run(cfssl, "ocsprefresh", "-db-config", str(dbconf), "-ca", str(ca.cert), "-responder", str(ca.cert), "-responder-key", str(ca.key))
    responses = tmp_path / "cfssl-responses"
    responses.write_bytes(run(cfssl, "ocspdump", "-db-config", str(dbconf)).stdout)
    port = _free_port()
    argv = [sys.executable, "-m", "cfsslpy", "ocspserve", "-address", "127.0.0.1", "-port", str(port), "-responses", str(responses)]
    with _server(argv, port) as url:
        assert _status(url, ca, leaves["good"]) == "good"
        assert _status(url, ca, leaves["revoked"]) == "revoked"
