"""Issue 11 items 2, 3 and 7 through the real cfssl 1.2.0 (/usr/bin/cfssl) and 1.6.5 (../shared/peers), and openssl.

Observed with both versions, and asserted here:

* a SHA-1 signed CSR (RSA or ECDSA) is signed, with the CA's algorithm (ECDSA-SHA256 for a P-256 CA); a
  tampered one or an MD5 one is 9300;
* ``cfssl genkey`` writes the issue's request with ``C=US+C=GB`` and ``OU=Eng+OU=Eng`` RDNs, byte for byte what
  tests/test_parity_csr.py assembles; cfssl signs it keeping both RDNs, we sign it with one RDN per distinct value;
* a P-224 CA key signs certificates (and 1.6.5's gencsr requests) with ECDSA-SHA1, which we refuse (2200, saying
  so), and CRLs and OCSP responses with ECDSA-SHA256, which we sign the same way.
"""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import SignatureAlgorithmOID

from cfsslpy.keys import P224_REFUSED
from tests.conftest import CA, RunCli, make_ca, need
from tests.integration.helpers import openssl_verify, run, write
from tests.test_parity_csr import CN_ONLY, EC_KEY, ISSUE_SUBJECT, RSA_KEY, go_csr, p224_ca, spki, tampered

pytestmark = [pytest.mark.integration, pytest.mark.cfssl, pytest.mark.openssl]

PEER_165 = os.environ.get("CFSSLPY_CFSSL_165") or str(Path(__file__).resolve().parents[3] / "shared/peers/cfssl-1.6.5/cfssl")
VERSIONS = {"1.2.0": "cfssl", "1.6.5": PEER_165}
ISSUE_REQUEST = {"CN": "x.example.com", "names": [{"C": "US", "OU": "Eng"}, {"C": "GB", "OU": "Eng"}]}


@pytest.fixture(params=sorted(VERSIONS))
def cfssl(request: pytest.FixtureRequest) -> str:
    return need(VERSIONS[request.param], f"cfssl {request.param} is not installed")


@pytest.fixture
def ca(run_cli: RunCli, tmp_path: Path) -> CA:
    return make_ca(run_cli, tmp_path / "ca")


def cfssl_sign(cfssl: str, ca: CA, csr: Path) -> tuple[int, str, str]:
    """(exit status, the certificate PEM or "", the last stderr line)."""
    proc = run(cfssl, "sign", "-ca", str(ca.cert), "-ca-key", str(ca.key), str(csr), check=False)
    lines = proc.stderr.decode().strip().splitlines()
    cert = json.loads(proc.stdout)["cert"] if proc.returncode == 0 else ""
    return proc.returncode, cert, lines[-1] if lines else ""


def ours(run_cli: RunCli, ca: CA, csr: Path) -> tuple[int, str, str]:
    result = run_cli("sign", "-ca", str(ca.cert), "-ca-key", str(ca.key), str(csr))
    lines = result.stderr.strip().splitlines()
    return result.status, result.json["cert"] if result.status == 0 else "", lines[-1] if lines else ""


def rdns(cert_pem: str, tmp_path: Path) -> list[list[str]]:
    """The subject's RDNs in DER order, as openssl prints them; each the sorted list of its ``T=v``."""
    path = write(tmp_path / "subject.pem", cert_pem.encode())
    out = run(need("openssl"), "x509", "-in", str(path), "-noout", "-subject", "-nameopt", "RFC2253").stdout.decode().strip()
    return [sorted(rdn.split("+")) for rdn in reversed(re.sub(r"^subject=", "", out).split(","))]  # RFC 2253 is reversed


@pytest.mark.parametrize(("key", "algorithm"), [(RSA_KEY, "sha1WithRSA"), (EC_KEY, "ecdsa-with-SHA1")], ids=["rsa", "ecdsa"])
def test_sha1_requests_are_signed_like_cfssl(
    cfssl: str, run_cli: RunCli, ca: CA, tmp_path: Path, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, algorithm: str
) -> None:
    csr = write(tmp_path / "sha1.csr", go_csr(key, CN_ONLY, algorithm))
    assert "verify OK" in run(need("openssl"), "req", "-in", str(csr), "-verify", "-noout").stderr.decode()
    theirs_status, theirs_pem, _ = cfssl_sign(cfssl, ca, csr)
    our_status, our_pem, _ = ours(run_cli, ca, csr)
    assert (theirs_status, our_status) == (0, 0)
    for pem in (theirs_pem, our_pem):
        cert = x509.load_pem_x509_certificate(pem.encode())
        assert cert.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256
        assert cert.subject.rfc4514_string() == "CN=sha1.example.com"
    openssl_verify(ca.cert, write(tmp_path / "ours.pem", our_pem.encode()))


@pytest.mark.parametrize("kind", ["tampered-sha1", "md5"])
def test_bad_signatures_are_9300_like_cfssl(cfssl: str, run_cli: RunCli, ca: CA, tmp_path: Path, kind: str) -> None:
    data = tampered(go_csr(RSA_KEY, CN_ONLY, "sha1WithRSA")) if kind == "tampered-sha1" else go_csr(RSA_KEY, CN_ONLY, "md5WithRSA")
    csr = write(tmp_path / "bad.csr", data)
    theirs = cfssl_sign(cfssl, ca, csr)
    mine = ours(run_cli, ca, csr)
    assert (theirs[0], json.loads(theirs[2])["code"]) == (1, 9300)
    assert (mine[0], mine[1], json.loads(mine[2])["code"]) == (1, "", 9300)


def test_cfssl_genkey_requests_are_signed(cfssl: str, run_cli: RunCli, ca: CA, tmp_path: Path) -> None:
    spec = write(tmp_path / "x.json", json.dumps(ISSUE_REQUEST).encode())
    generated = json.loads(run(cfssl, "genkey", str(spec)).stdout)
    csr = write(tmp_path / "x.csr", generated["csr"].encode())
    # Go's subject, byte for byte what the unit tests assemble: version 0 (02 01 00), then the Name
    tbs = x509.load_pem_x509_csr(csr.read_bytes()).tbs_certrequest_bytes
    assert tbs[tbs.index(b"\x02\x01\x00") + 3 :].startswith(ISSUE_SUBJECT)

    theirs_status, theirs_pem, _ = cfssl_sign(cfssl, ca, csr)
    our_status, our_pem, err = ours(run_cli, ca, csr)
    assert (theirs_status, our_status) == (0, 0), err
    assert rdns(theirs_pem, tmp_path) == [["C=GB", "C=US"], ["OU=Eng", "OU=Eng"], ["CN=x.example.com"]]
    assert rdns(our_pem, tmp_path) == [["C=GB"], ["C=US"], ["OU=Eng"], ["CN=x.example.com"]]
    cert = x509.load_pem_x509_certificate(our_pem.encode())
    assert spki(cert) == spki(x509.load_pem_x509_csr(csr.read_bytes()))
    openssl_verify(ca.cert, write(tmp_path / "ours.pem", our_pem.encode()))


def test_a_p224_ca_key(cfssl: str, run_cli: RunCli, tmp_path: Path) -> None:
    """cfssl signs with ECDSA-SHA1; we refuse with the reason."""
    p224 = p224_ca(tmp_path / "p224")
    csr = write(tmp_path / "leaf.csr", go_csr(EC_KEY, CN_ONLY))
    theirs_status, theirs_pem, _ = cfssl_sign(cfssl, p224, csr)
    assert theirs_status == 0
    assert x509.load_pem_x509_certificate(theirs_pem.encode()).signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA1
    status, cert, last = ours(run_cli, p224, csr)
    assert (status, cert, json.loads(last)) == (1, "", {"code": 2200, "message": P224_REFUSED})


def test_gencsr_on_a_cfssl_issued_certificate(cfssl: str, run_cli: RunCli, ca: CA, tmp_path: Path) -> None:
    """cfssl's certificate for the genkey request keeps ``OU=Eng+OU=Eng``; ``gencsr -cert`` reads it as cfssl does."""
    generated = json.loads(run(cfssl, "genkey", str(write(tmp_path / "x.json", json.dumps(ISSUE_REQUEST)))).stdout)
    key = write(tmp_path / "x-key.pem", generated["key"])
    status, cert_pem, _ = cfssl_sign(cfssl, ca, write(tmp_path / "x.csr", generated["csr"]))
    assert status == 0
    cert = write(tmp_path / "x.pem", cert_pem)
    theirs = run(cfssl, "gencsr", "-key", str(key), "-cert", str(cert), check=False)  # 1.2.0 has no gencsr
    result = run_cli("gencsr", "-key", str(key), "-cert", str(cert))
    assert result.status == 0, result.stderr
    ours_csr = write(tmp_path / "ours.csr", result.json["csr"])
    assert "verify OK" in run(need("openssl"), "req", "-in", str(ours_csr), "-verify", "-noout").stderr.decode()
    # the same attributes; cfssl repeats OU=Eng inside one RDN, we write each distinct value once, one per RDN
    assert x509.load_pem_x509_csr(ours_csr.read_bytes()).subject.rfc4514_string() == "CN=x.example.com,OU=Eng,C=US,C=GB"
    if theirs.returncode == 0:
        assert x509.load_pem_x509_csr(json.loads(theirs.stdout)["csr"].encode()).tbs_certrequest_bytes.find(ISSUE_SUBJECT) > 0
    else:
        assert "Command gencsr is not defined" in theirs.stderr.decode()


def test_a_p224_key_signs_crls_and_ocsp_like_cfssl(cfssl: str, run_cli: RunCli, tmp_path: Path) -> None:
    """cfssl (both versions) signs CRLs and OCSP responses with a P-224 key using ECDSA-SHA256, and so do we."""
    p224 = p224_ca(tmp_path / "p224")
    serials = write(tmp_path / "serials", "4660\n")
    ocsp_args = ("-ca", str(p224.cert), "-responder", str(p224.cert), "-responder-key", str(p224.key), "-cert", str(p224.cert))
    theirs_crl = run(cfssl, "gencrl", str(serials), str(p224.cert), str(p224.key)).stdout.decode()
    theirs_ocsp = json.loads(run(cfssl, "ocspsign", *ocsp_args, "-status", "good").stdout)["ocspResponse"]
    crl_result = run_cli("gencrl", str(serials), str(p224.cert), str(p224.key))
    ocsp_result = run_cli("ocspsign", *ocsp_args, "-status", "good")
    assert (crl_result.status, ocsp_result.status) == (0, 0), crl_result.stderr + ocsp_result.stderr
    for crl_b64 in (theirs_crl, crl_result.stdout):
        crl = write(tmp_path / "crl.der", base64.b64decode(crl_b64))
        text = run(need("openssl"), "crl", "-inform", "DER", "-in", str(crl), "-CAfile", str(p224.cert), "-noout", "-text")
        assert "verify OK" in text.stderr.decode() + text.stdout.decode()
        assert "ecdsa-with-SHA256" in text.stdout.decode()
    for response_b64 in (theirs_ocsp, ocsp_result.json["ocspResponse"]):
        response = write(tmp_path / "response.der", base64.b64decode(response_b64))
        text = run(need("openssl"), "ocsp", "-respin", str(response), "-VAfile", str(p224.cert), "-resp_text")
        assert "Response verify OK" in text.stderr.decode() + text.stdout.decode()
        assert "ecdsa-with-SHA256" in text.stdout.decode()


def test_gencsr_with_a_p224_key(cfssl: str, run_cli: RunCli, tmp_path: Path) -> None:
    """cfssl 1.6.5 writes an ECDSA-SHA1 request for a P-224 key (1.2.0 has no gencsr); we refuse (2200)."""
    p224 = p224_ca(tmp_path / "p224")
    spec = write(tmp_path / "x.json", json.dumps(ISSUE_REQUEST))
    theirs = run(cfssl, "gencsr", "-key", str(p224.key), str(spec), check=False)
    if theirs.returncode == 0:
        csr = x509.load_pem_x509_csr(json.loads(theirs.stdout)["csr"].encode())
        assert csr.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA1
    else:
        assert "Command gencsr is not defined" in theirs.stderr.decode()
    result = run_cli("gencsr", "-key", str(p224.key), str(spec))
    assert (result.status, result.stdout, result.error) == (1, "", {"code": 2200, "message": P224_REFUSED})
