"""README's "From zero to HTTPS" tour, run as a user would paste it: the shell block itself, extracted from
README.md, with ``cfsslpy`` on PATH (this venv's entry point) and free loopback ports instead of 8443/8889.

It checks what the comments in the block promise: the TLS server's certificate verifies against the new CA,
OCSP says good, then revoked after ``cfsslpy revoke``, and the CRL lists the certificate.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import need
from cryptography import x509

pytestmark = [pytest.mark.integration]

README = Path(__file__).resolve().parents[2] / "README.md"


def tour_script() -> str:
    text = README.read_text()
    start = text.index("**From zero to HTTPS")
    body = text.index("```sh\n", start) + len("```sh\n")
    return text[body : text.index("```", body)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    need("openssl")
    need("curl")
    script = tour_script()
    assert "8443" in script and "8889" in script
    script = script.replace("8443", str(free_port())).replace("8889", str(free_port()))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert re.findall(r"www\.pem: (good|revoked)", output) == ["good", "revoked"], output[-3000:]
    assert "<HTML>" in output  # curl got the page over TLS verified against the new CA
    pki = tmp_path / "pki"
    www = x509.load_pem_x509_certificate((pki / "www.pem").read_bytes())
    crl = x509.load_pem_x509_crl((pki / "ca.crl").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(www.serial_number) is not None
    responder = x509.load_pem_x509_certificate((pki / "ocsp.pem").read_bytes())
    assert responder.extensions.get_extension_for_class(x509.OCSPNoCheck)
    assert (pki / "ca-key.pem").stat().st_mode & 0o777 == 0o600
