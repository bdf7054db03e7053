"""A host where python-pkcs11 cannot load (no wheel for it, a broken module, a hardened loader) still runs every
command that does not use a token; the token commands say why they cannot run, as cfssl-style errors.

Each case is a fresh interpreter in which ``import pkcs11`` fails (``sys.modules["pkcs11"] = None``), running
the real CLI entry point.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.x509 import ocsp

BLOCKED = "import sys; sys.modules['pkcs11'] = None; sys.argv[0] = 'cfsslpy'; from cfsslpy.cli.main import main; sys.exit(main())"


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-c", BLOCKED, *args], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_ca_work_without_python_pkcs11(tmp_path: Path) -> None:
    (tmp_path / "ca-csr.json").write_text(json.dumps({"CN": "no token CA", "key": {"algo": "ecdsa", "size": 256}}))
    ca = cli(tmp_path, "gencert", "-initca", "ca-csr.json")
    assert ca.returncode == 0, ca.stderr
    (tmp_path / "ca.pem").write_text(json.loads(ca.stdout)["cert"])
    (tmp_path / "ca-key.pem").write_text(json.loads(ca.stdout)["key"])
    (tmp_path / "leaf-csr.json").write_text(json.dumps({"CN": "leaf.example.net", "hosts": ["leaf.example.net"]}))
    leaf = cli(tmp_path, "gencert", "-ca", "ca.pem", "-ca-key", "ca-key.pem", "leaf-csr.json")
    assert leaf.returncode == 0, leaf.stderr
    cert = x509.load_pem_x509_certificate(json.loads(leaf.stdout)["cert"].encode())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate((tmp_path / "ca.pem").read_bytes()))
    (tmp_path / "leaf.pem").write_text(json.loads(leaf.stdout)["cert"])
    signed = cli(
        tmp_path,
        "ocspsign",
        "-ca",
        "ca.pem",
        "-responder",
        "ca.pem",
        "-responder-key",
        "ca-key.pem",
        "-cert",
        "leaf.pem",
        "-status",
        "good",
    )
    assert signed.returncode == 0, signed.stderr
    response = ocsp.load_der_ocsp_response(base64.b64decode(json.loads(signed.stdout)["ocspResponse"]))
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert cli(tmp_path, "certinfo", "-cert", "leaf.pem").returncode == 0


def test_token_commands_say_python_pkcs11_is_missing(tmp_path: Path) -> None:
    listed = cli(tmp_path, "token", "list", "-module", "/usr/lib/softhsm/libsofthsm2.so")
    assert listed.returncode == 1 and listed.stdout == ""
    assert "python-pkcs11" in listed.stderr, listed.stderr
    (tmp_path / "csr.json").write_text(json.dumps({"CN": "token CA"}))
    uri = "pkcs11:token=t;object=k?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234"
    made = cli(tmp_path, "gencert", "-initca", "-ca-key", uri, "csr.json")
    assert made.returncode == 1 and made.stdout == ""
    assert "python-pkcs11" in made.stderr and "1234" not in made.stderr, made.stderr
    assert json.loads(made.stderr.strip().splitlines()[-1])["code"]
