"""mkbundle against the real cfssl-mkbundle (2016 build): the same directory gives the same set of certificates.

Only certificates without CRL or OCSP URLs are used (no network), no symbolic links (cfssl's walk skips them)
and no malformed blocks (cfssl stops reading a file at a block it cannot frame). cfssl writes duplicates
as often as it finds them and in worker order, so the bundles are compared as sets.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import RunCli, need

pytestmark = [pytest.mark.integration, pytest.mark.cfssl]

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
DAY = dt.timedelta(days=1)


def cert(key: ec.EllipticCurvePrivateKey, cn: str, not_before: dt.datetime, not_after: dt.datetime) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    built = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return built.public_bytes(serialization.Encoding.PEM)


def ders(path: Path) -> set[bytes]:
    return {c.public_bytes(serialization.Encoding.DER) for c in x509.load_pem_x509_certificates(path.read_bytes())}


def test_same_certificates_as_cfssl_mkbundle(run_cli: RunCli, tmp_path: Path) -> None:
    tool = need("cfssl-mkbundle")
    key = ec.generate_private_key(ec.SECP256R1())
    src = tmp_path / "src"
    (src / "nested" / "deeper").mkdir(parents=True)
    valid = [cert(key, f"valid {i}", NOW - DAY, NOW + 30 * DAY) for i in range(6)]
    expired = cert(key, "expired", NOW - 30 * DAY, NOW - DAY)
    future = cert(key, "future", NOW + DAY, NOW + 30 * DAY)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (src / "a.pem").write_bytes(valid[0] + expired + valid[1])
    (src / "b.crt").write_bytes(key_pem + valid[2])  # non-certificate blocks are skipped
    (src / "nested" / "c.pem").write_bytes(future + valid[3])
    (src / "nested" / "deeper" / "d.pem").write_bytes(valid[4] + valid[0])  # a duplicate
    (src / "nested" / "e").write_bytes(valid[5])
    (src / "notes.txt").write_bytes(b"no PEM here\n")

    proc = subprocess.run([tool, "-f", str(tmp_path / "theirs.crt"), "-nw", "2", str(src)], capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    ours = run_cli("mkbundle", "-f", str(tmp_path / "ours.crt"), "-nw", "2", str(src))
    assert ours.status == 0, ours.stderr

    expected = {c.public_bytes(serialization.Encoding.DER) for c in (x509.load_pem_x509_certificate(v) for v in valid)}
    assert ders(tmp_path / "theirs.crt") == expected
    assert ders(tmp_path / "ours.crt") == expected
    # both end with the same summary line; cfssl counts the duplicate it wrote twice
    assert proc.stderr.decode().strip().endswith("[INFO] Wrote 7 certificates.")
    assert ours.stderr.strip().endswith("[INFO] Wrote 6 certificates.")
