"""``certinfo`` against the real cfssl (2016 build, Go 1.19) on the same certificates, CSRs and TLS server.

Output text must be identical, except for these documented differences:

* key identifiers: we zero-pad each byte (``%02X``, newest cfssl); the 2016 build does not (``0B`` -> ``B``);
* ``sigalg`` of an Ed25519 certificate: the 2016 build predates the name and prints ``Unknown Signature``;
* the CSR dump is Go's ``x509.CertificateRequest`` as the binary's Go marshals it; the fields in
  :data:`GO_VERSION_DEPENDENT_CSR_FIELDS` change with the Go version, so they are compared only when the
  binary reports the Go 1.19 runtime we emulate (they are identical there).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import tls_server
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import AttributeOID, NameOID, ObjectIdentifier
from dsa_vectors import DSA_CA_CERT, DSA_CSR

from cfsslpy.cli.certinfo import go_json_indent
from tests.conftest import CA, RunCli, make_ca, need, write_csr_json

pytestmark = [pytest.mark.integration, pytest.mark.cfssl]

#: CSR dump fields whose shape depends on the Go release cfssl was built with. ``URIs``: url.URL gained
#: ``OmitHost`` in Go 1.19 (and ``RawFragment`` in 1.15); ``PublicKey``: the ECDSA ``Curve`` value's concrete
#: type changed across releases (``{}`` in 1.19; older ones printed the curve parameters).
GO_VERSION_DEPENDENT_CSR_FIELDS = ("URIs", "PublicKey")
EMULATED_GO = "go1.19"

A = x509.NameAttribute
NOT_BEFORE = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


def rdn(*attrs: x509.NameAttribute[Any]) -> x509.RelativeDistinguishedName:
    return x509.RelativeDistinguishedName(list(attrs))


RICH_NAME = x509.Name(
    [
        rdn(A(NameOID.COUNTRY_NAME, "US")),
        rdn(A(NameOID.ORGANIZATION_NAME, "O1 & <x>"), A(NameOID.ORGANIZATION_NAME, "O2")),
        rdn(A(NameOID.STREET_ADDRESS, "1 Main St")),
        rdn(A(NameOID.POSTAL_CODE, "12345")),
        rdn(A(NameOID.SERIAL_NUMBER, "SN1")),
        rdn(A(NameOID.COMMON_NAME, "first")),
        rdn(A(NameOID.COMMON_NAME, "second\bx\f\u2028é")),
        rdn(A(NameOID.EMAIL_ADDRESS, "a@b.c")),
        rdn(A(NameOID.LOCALITY_NAME, "bmp", _type=_ASN1Type.BMPString)),
        rdn(A(NameOID.STATE_OR_PROVINCE_NAME, "t61", _type=_ASN1Type.T61String)),
        rdn(A(NameOID.ORGANIZATIONAL_UNIT_NAME, "*.wild")),
        rdn(A(ObjectIdentifier("1.2.3.4"), "custom")),
    ]
)
RICH_SANS = x509.SubjectAlternativeName(
    [
        x509.DNSName("a.example"),
        x509.IPAddress(ipaddress.ip_address("::ffff:1.2.3.4")),
        x509.RFC822Name("m@x.y"),
        x509.IPAddress(ipaddress.ip_address("2001:db8::1:0:0:1")),
        x509.DNSName("b.example"),
        x509.UniformResourceIdentifier("spiffe://trust/ns/a%20b?x=1#frag"),
        x509.UniformResourceIdentifier("http://user:pw@h.com:8080/p%2Fq/r s"),
        x509.UniformResourceIdentifier("urn:uuid:1234"),
        x509.UniformResourceIdentifier("http:/nohost"),
        x509.UniformResourceIdentifier("https://[::1]:443/x?"),
        x509.UniformResourceIdentifier("mailto:x@y#a%21b"),
        x509.OtherName(ObjectIdentifier("1.2.3"), b"\x05\x00"),
        x509.DirectoryName(x509.Name([rdn(A(NameOID.COMMON_NAME, "dir"))])),
    ]
)


def cfssl(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    return subprocess.run([need("cfssl"), *args], input=stdin.decode(), capture_output=True, text=True, timeout=60, check=False)


def go_runtime() -> str:
    match = re.search(r"Runtime: (go[\d.]+)", cfssl("version").stdout)
    return match.group(1) if match else ""


def as_2016(stdout: str, *, ed25519_cert: bool = False) -> str:
    """Our certificate output rewritten with the 2016 build's two documented differences."""
    info = json.loads(stdout)
    for field in ("authority_key_id", "subject_key_id"):
        info[field] = ":".join(f"{int(part, 16):X}" for part in info[field].split(":")) if info[field] else ""
    if ed25519_cert:
        info["sigalg"] = "Unknown Signature"
    return go_json_indent(info) + "\n"


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    return {
        "p256": ec.generate_private_key(ec.SECP256R1()),
        "p384": ec.generate_private_key(ec.SECP384R1()),
        "p521": ec.generate_private_key(ec.SECP521R1()),
        "rsa": rsa.generate_private_key(65537, 2048),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
    }


def sign_with(key: Any, hash_alg: Any) -> Any:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hash_alg or hashes.SHA256()


Extensions = list[tuple[x509.ExtensionType, bool]]


def make_cert(
    key: Any, signer: Any, subject: x509.Name, *, exts: Extensions | None = None, hash_alg: hashes.HashAlgorithm | None = None, **extra: Any
) -> bytes:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(RICH_NAME)
        .public_key(key.public_key())
        .serial_number(extra.pop("serial", 0xC0FFEE))
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(extra.pop("not_after", NOT_BEFORE + dt.timedelta(days=400)))
    )
    for ext, critical in exts or []:
        builder = builder.add_extension(ext, critical)
    return builder.sign(signer, sign_with(signer, hash_alg), **extra).public_bytes(serialization.Encoding.PEM)


def make_csr(
    key: Any,
    subject: x509.Name,
    *,
    exts: Extensions | None = None,
    attrs: list[tuple[ObjectIdentifier, bytes]] | None = None,
    hash_alg: hashes.HashAlgorithm | None = None,
    **extra: Any,
) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    for ext, critical in exts or []:
        builder = builder.add_extension(ext, critical)
    for oid, value in attrs or []:
        builder = builder.add_attribute(oid, value)
    return builder.sign(key, sign_with(key, hash_alg), **extra).public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def certs(keys: dict[str, Any]) -> dict[str, bytes]:
    ski = x509.SubjectKeyIdentifier(bytes.fromhex("000102030a0b0c0d0e0f10"))
    aki = x509.AuthorityKeyIdentifier(bytes.fromhex("0f0e0d0001"), None, None)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    return {
        "rich": make_cert(keys["p256"], keys["p256"], RICH_NAME, exts=[(RICH_SANS, False), (ski, False), (aki, False)]),
        "ed25519": make_cert(keys["ed25519"], keys["ed25519"], x509.Name([rdn(A(NameOID.COMMON_NAME, "ed"))])),
        "rsa-pss": make_cert(keys["rsa"], keys["rsa"], x509.Name([]), rsa_padding=pss),
        "empty-subject-2051": make_cert(
            keys["p384"],
            keys["rsa"],
            x509.Name([]),
            hash_alg=hashes.SHA512(),
            serial=1,
            not_after=dt.datetime(2051, 1, 1, tzinfo=dt.timezone.utc),
        ),
        "ecdsa-sha384": make_cert(keys["p256"], keys["p384"], x509.Name([rdn(A(NameOID.COMMON_NAME, "e384"))]), hash_alg=hashes.SHA384()),
        "dsa": DSA_CA_CERT,  # made by OpenSSL: cryptography 51 deprecates DSA keys
        "big-serial": make_cert(keys["p256"], keys["p256"], x509.Name([]), serial=2**159 - 1),
    }


@pytest.fixture(scope="module")
def csrs(keys: dict[str, Any]) -> dict[str, bytes]:
    bc = x509.BasicConstraints(ca=True, path_length=2)
    attrs = [(AttributeOID.CHALLENGE_PASSWORD, b"pw"), (AttributeOID.UNSTRUCTURED_NAME, b"un")]
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
    return {
        "rich": make_csr(keys["p256"], RICH_NAME, exts=[(RICH_SANS, False), (bc, True)], attrs=attrs),
        "p384": make_csr(keys["p384"], x509.Name([rdn(A(NameOID.COMMON_NAME, "p384"))]), hash_alg=hashes.SHA384()),
        "p521": make_csr(keys["p521"], x509.Name([rdn(A(NameOID.COMMON_NAME, "p521"))]), hash_alg=hashes.SHA512()),
        "ed25519": make_csr(keys["ed25519"], x509.Name([rdn(A(NameOID.COMMON_NAME, "ed"))])),
        "rsa-empty": make_csr(keys["rsa"], x509.Name([])),
        "rsa-pss": make_csr(keys["rsa"], x509.Name([rdn(A(NameOID.COMMON_NAME, "pss"))]), hash_alg=hashes.SHA384(), rsa_padding=pss),
        "dsa": DSA_CSR,
    }


@pytest.fixture
def issued(run_cli: RunCli, tmp_path: Path) -> dict[str, Path]:
    """A CA and a leaf made by our gencert (RSA CA, ECDSA leaf), as files."""
    ca: CA = make_ca(run_cli, tmp_path / "ca", "rsa", 2048)
    spec = write_csr_json(
        tmp_path / "leaf.json",
        {"CN": "leaf.example.com", "hosts": ["leaf.example.com", "10.0.0.1", "a@b.c"], "key": {"algo": "ecdsa", "size": 256}},
    )
    result = run_cli("gencert", "-ca", str(ca.cert), "-ca-key", str(ca.key), str(spec))
    assert result.status == 0, result.stderr
    out = result.json
    files = {"ca": ca.cert, "leaf": tmp_path / "leaf.pem", "leaf-key": tmp_path / "leaf-key.pem", "leaf-csr": tmp_path / "leaf.csr"}
    files["leaf"].write_text(out["cert"])
    files["leaf-key"].write_text(out["key"])
    files["leaf-csr"].write_text(out["csr"])
    return files


def test_certificates_match(run_cli: RunCli, certs: dict[str, bytes], issued: dict[str, Path], tmp_path: Path) -> None:
    paths = {name: tmp_path / f"{name}.pem" for name in certs}
    for name, data in certs.items():
        paths[name].write_bytes(data)
    paths.update({"gencert-ca": issued["ca"], "gencert-leaf": issued["leaf"]})
    for name, path in paths.items():
        theirs = cfssl("certinfo", "-cert", str(path))
        ours = run_cli("certinfo", "-cert", str(path))
        assert (ours.status, theirs.returncode) == (0, 0), (name, ours.stderr, theirs.stderr)
        assert as_2016(ours.stdout, ed25519_cert=name == "ed25519") == theirs.stdout, name


def test_cert_from_stdin_matches(run_cli: RunCli, issued: dict[str, Path]) -> None:
    data = issued["leaf"].read_bytes()
    assert as_2016(run_cli("certinfo", "-cert", "-", stdin=data).stdout) == cfssl("certinfo", "-cert", "-", stdin=data).stdout


def comparable_csr(stdout: str, exact: bool) -> Any:
    info = json.loads(stdout)
    if not exact:
        for field in GO_VERSION_DEPENDENT_CSR_FIELDS:
            info.pop(field, None)
    return info


def test_csrs_match(run_cli: RunCli, csrs: dict[str, bytes], issued: dict[str, Path], tmp_path: Path) -> None:
    exact = go_runtime().startswith(EMULATED_GO)
    paths = {name: tmp_path / f"{name}.csr" for name in csrs}
    for name, data in csrs.items():
        paths[name].write_bytes(data)
    paths["gencert-leaf"] = issued["leaf-csr"]
    for name, path in paths.items():
        theirs = cfssl("certinfo", "-csr", str(path))
        ours = run_cli("certinfo", "-csr", str(path))
        assert (ours.status, theirs.returncode) == (0, 0), (name, ours.stderr, theirs.stderr)
        if exact:
            assert ours.stdout == theirs.stdout, name
        else:
            assert comparable_csr(ours.stdout, exact) == comparable_csr(theirs.stdout, exact), name


def test_csr_with_bad_signature_is_still_described(run_cli: RunCli, issued: dict[str, Path], tmp_path: Path) -> None:
    from cfsslpy.pem import decode_pem, encode_pem

    block, _ = decode_pem(issued["leaf-csr"].read_bytes())
    assert block is not None
    der = bytearray(block.data)
    der[-3] ^= 0x01
    path = tmp_path / "bad-sig.csr"
    path.write_bytes(encode_pem("CERTIFICATE REQUEST", bytes(der)))
    theirs, ours = cfssl("certinfo", "-csr", str(path)), run_cli("certinfo", "-csr", str(path))
    assert theirs.returncode == ours.status == 0
    assert ours.stdout == theirs.stdout


def test_certificate_errors_match(run_cli: RunCli, certs: dict[str, bytes], issued: dict[str, Path], tmp_path: Path) -> None:
    leaf = issued["leaf"].read_bytes()
    cases = {
        "empty": b"",
        "no-pem": b"hello",
        "bad-der": b"-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n",
        "a-csr": issued["leaf-csr"].read_bytes(),
        "a-key": issued["leaf-key"].read_bytes(),
        "two-certs": leaf + issued["ca"].read_bytes(),
        "trailing-text": leaf + b"trailing\n",
        "leading-text": b"junk\n" + leaf,
        "bad-then-good": b"-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n" + leaf,
    }
    for name, data in cases.items():
        path = tmp_path / f"{name}.pem"
        path.write_bytes(data)
        theirs = cfssl("certinfo", "-cert", str(path))
        ours = run_cli("certinfo", "-cert", str(path))
        assert ours.status == theirs.returncode, name
        if theirs.returncode == 0:
            assert as_2016(ours.stdout) == theirs.stdout, name
        else:
            assert ours.stderr == theirs.stderr, name
    missing = str(tmp_path / "missing.pem")
    assert run_cli("certinfo", "-cert", missing).stderr == cfssl("certinfo", "-cert", missing).stderr


def test_no_target_is_an_error_in_both(run_cli: RunCli) -> None:
    theirs, ours = cfssl("certinfo"), run_cli("certinfo")
    assert theirs.returncode == ours.status == 1
    # The 2016 build says "-cert, -csr, or -domain"; newest cfssl (which we follow) adds "-serial + -aki".
    assert theirs.stderr.startswith("Must specify certinfo target through -cert, -csr")
    assert ours.stderr.startswith("Must specify certinfo target through -cert, -csr")


def test_domain_matches(run_cli: RunCli, issued: dict[str, Path]) -> None:
    with tls_server(issued["leaf"], issued["leaf-key"]) as port:
        theirs = cfssl("certinfo", "-domain", f"127.0.0.1:{port}")
        ours = run_cli("certinfo", "-domain", f"127.0.0.1:{port}")
    assert theirs.returncode == ours.status == 0, (theirs.stderr, ours.stderr)
    assert as_2016(ours.stdout) == theirs.stdout


def test_domain_dial_failure_message_matches(run_cli: RunCli) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    theirs, ours = cfssl("certinfo", "-domain", f"127.0.0.1:{port}"), run_cli("certinfo", "-domain", f"127.0.0.1:{port}")
    assert theirs.returncode == ours.status == 1
    # cfssl prints Go's error untyped; we wrap the same text as a 6000 (DialError) cfssl error.
    assert ours.error == {"code": 6000, "message": theirs.stderr.strip()}
