"""CRLs against real peers: ``openssl crl`` / ``openssl verify -crl_check`` accept ours, and the real cfssl
(2016 build) ``gencrl`` lists the same entries for the same inputs.

Known differences from cfssl (by design, see cfsslpy.crl): we add reason codes and a CRL number; the 2016
build reads TIME as a file name, so it is run without TIME (both then use the 7-day default).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509
from integration.helpers import run

from cfsslpy.certdb import CertDB, CertificateRecord, DBConfig
from tests.conftest import CA, RunCli, make_ca, need, write_csr_json

KINDS = [("rsa", 2048), ("ecdsa", 256), ("ecdsa", 384), ("ed25519", 0)]


def issue_leaf(run_cli: RunCli, ca: CA, name: str) -> tuple[Path, x509.Certificate]:
    spec = write_csr_json(
        ca.dir / f"{name}-csr.json", {"CN": name, "hosts": [f"{name}.example.com"], "key": {"algo": "ecdsa", "size": 256}}
    )
    result = run_cli("gencert", "-ca", str(ca.cert), "-ca-key", str(ca.key), str(spec))
    assert result.status == 0, result.stderr
    path = ca.dir / f"{name}.pem"
    path.write_text(result.json["cert"])
    return path, x509.load_pem_x509_certificate(path.read_bytes())


def openssl_crl(crl: Path, ca_cert: Path, *, der: bool = False) -> str:
    """``openssl crl -verify`` must accept the CRL; returns its ``-text`` dump."""
    args = [need("openssl"), "crl", "-in", str(crl), "-CAfile", str(ca_cert), "-verify", "-noout", "-text"]
    if der:
        args[2:2] = ["-inform", "DER"]
    proc = run(*args, check=False)
    assert proc.returncode == 0 and "verify OK" in proc.stderr.decode(), proc.stderr.decode()
    return proc.stdout.decode()


@pytest.mark.integration
@pytest.mark.openssl
@pytest.mark.parametrize(("algo", "size"), KINDS)
def test_openssl_accepts_gencrl(run_cli: RunCli, tmp_path: Path, algo: str, size: int) -> None:
    need("openssl")
    ca = make_ca(run_cli, tmp_path / "ca", algo, size)
    serials = tmp_path / "serials.txt"
    serials.write_text("4660\n\n305419896 keycompromise\n65535 cacompromise\n48879 6\n")

    result = run_cli("gencrl", "-pem", str(serials), str(ca.cert), str(ca.key), "3600")
    assert result.status == 0, result.stderr
    pem_file = tmp_path / "crl.pem"
    pem_file.write_text(result.stdout)
    text = openssl_crl(pem_file, ca.cert)
    for serial, reason in [("1234", None), ("12345678", "Key Compromise"), ("FFFF", "CA Compromise"), ("BEEF", "Certificate Hold")]:
        block = text.split(f"Serial Number: {serial}\n", 1)[1].split("Serial Number:", 1)[0]
        if reason is None:
            assert "CRL Reason Code" not in block
        else:
            assert f"X509v3 CRL Reason Code: \n                {reason}" in block
    assert "X509v3 CRL Number:" in text and "X509v3 Authority Key Identifier:" in text

    result = run_cli("gencrl", str(serials), str(ca.cert), str(ca.key))
    assert result.status == 0, result.stderr
    der_file = tmp_path / "crl.der"
    der_file.write_bytes(base64.b64decode(result.stdout))
    assert "Serial Number: 12345678" in openssl_crl(der_file, ca.cert, der=True)

    # negative control: another CA's certificate does not verify the CRL
    other = make_ca(run_cli, tmp_path / "other", algo, size)
    proc = run(need("openssl"), "crl", "-in", str(pem_file), "-CAfile", str(other.cert), "-verify", "-noout", check=False)
    assert "verify OK" not in proc.stderr.decode()


@pytest.mark.integration
@pytest.mark.openssl
def test_openssl_verify_crl_check_sees_revocations(run_cli: RunCli, tmp_path: Path) -> None:
    """End to end: a certificate listed by ``crl`` (from the certdb) fails ``openssl verify -crl_check``."""
    need("openssl")
    ca = make_ca(run_cli, tmp_path / "ca")
    revoked_path, revoked = issue_leaf(run_cli, ca, "revoked")
    good_path, good = issue_leaf(run_cli, ca, "good")
    db_config = tmp_path / "db.json"
    db_config.write_text(json.dumps({"driver": "sqlite3", "data_source": str(tmp_path / "certs.db")}))
    with CertDB(DBConfig.from_json(db_config.read_bytes())) as db:
        for path, cert in ((revoked_path, revoked), (good_path, good)):
            db.insert_certificate(CertificateRecord.from_certificate(cert, pem=path.read_text()))
        aki = revoked.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
        assert aki is not None
        db.revoke(str(revoked.serial_number), aki.hex(), 4)

    result = run_cli("crl", "-pem", "-db-config", str(db_config), "-ca", str(ca.cert), "-ca-key", str(ca.key), "-expiry", "1h")
    assert result.status == 0, result.stderr
    crl = tmp_path / "crl.pem"
    crl.write_text(result.stdout)
    assert "Superseded" in openssl_crl(crl, ca.cert)

    verify = [need("openssl"), "verify", "-crl_check", "-CAfile", str(ca.cert), "-CRLfile", str(crl)]
    proc = run(*verify, str(revoked_path), check=False)
    assert proc.returncode != 0 and "certificate revoked" in (proc.stdout + proc.stderr).decode()
    proc = run(*verify, str(good_path), check=False)
    assert proc.returncode == 0 and proc.stdout.decode().strip().endswith(": OK"), proc.stderr.decode()


@pytest.mark.integration
@pytest.mark.cfssl
@pytest.mark.openssl
@pytest.mark.parametrize(("algo", "size"), KINDS[:3])  # the 2016 build predates Ed25519
def test_same_entries_as_cfssl_gencrl(run_cli: RunCli, tmp_path: Path, algo: str, size: int) -> None:
    cfssl = need("cfssl")
    need("openssl")
    ca = make_ca(run_cli, tmp_path / "ca", algo, size)
    serials = tmp_path / "serials.txt"
    serials.write_text("1\n\n4660\n730750818665451459101842416358141509827966271487\n")  # up to 2^159 - 1

    ours = run_cli("gencrl", str(serials), str(ca.cert), str(ca.key))
    assert ours.status == 0, ours.stderr
    theirs = run(cfssl, "gencrl", str(serials), str(ca.cert), str(ca.key))  # no TIME: 2016 reads it as a file name
    crls = {}
    for name, stdout in (("ours", ours.stdout), ("cfssl", theirs.stdout.decode())):
        assert stdout.endswith("\n") and stdout.count("\n") == 1  # base64 and a newline, both
        der = tmp_path / f"{name}.der"
        der.write_bytes(base64.b64decode(stdout))
        openssl_crl(der, ca.cert, der=True)
        crls[name] = x509.load_der_x509_crl(der.read_bytes())

    a, b = crls["ours"], crls["cfssl"]
    assert [e.serial_number for e in a] == [e.serial_number for e in b] == [1, 4660, 2**159 - 1]
    assert a.issuer == b.issuer
    assert a.signature_algorithm_oid == b.signature_algorithm_oid
    aki = x509.AuthorityKeyIdentifier
    assert a.extensions.get_extension_for_class(aki).value == b.extensions.get_extension_for_class(aki).value
    for crl in (a, b):
        assert crl.next_update_utc is not None and crl.next_update_utc - crl.last_update_utc == dt.timedelta(days=7)
        assert all(abs(e.revocation_date_utc - crl.last_update_utc) <= dt.timedelta(seconds=1) for e in crl)
    assert abs(a.last_update_utc - b.last_update_utc) < dt.timedelta(minutes=1)
    # our additions: cfssl has no CRL number and no reasons
    assert [e.oid for e in a.extensions] == [x509.AuthorityKeyIdentifier.oid, x509.CRLNumber.oid]
    assert [e.oid for e in b.extensions] == [x509.AuthorityKeyIdentifier.oid]
