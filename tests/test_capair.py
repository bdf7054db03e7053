"""The CA certificate + key loader shared by sign, crl and the OCSP commands: what it reads, in which order,
and which error each bad input gives (cfssl's codes)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cfsslpy.capair import CAPair, load_ca_pair
from cfsslpy.errors import Category, CfsslError, PlainError
from cfsslpy.keys import encode_private_key

NOW = dt.datetime.now(dt.timezone.utc)


def _cert(cn: str, key: ec.EllipticCurvePrivateKey, signer: ec.EllipticCurvePrivateKey, issuer: str) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(hours=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .sign(signer, hashes.SHA256())
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A CA, a responder certificate and key it issued, and a password-protected copy of the CA key."""
    ca_key, r_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca, responder = _cert("CA", ca_key, ca_key, "CA"), _cert("Responder", r_key, ca_key, "CA")
    encrypted = ca_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.BestAvailableEncryption(b"pw-1")
    )
    out = {
        "ca": ca.public_bytes(serialization.Encoding.PEM),
        "ca-key": encode_private_key(ca_key),
        "responder": responder.public_bytes(serialization.Encoding.PEM),
        "responder-key": encode_private_key(r_key),
        "encrypted-key": encrypted,
        "garbage": b"-----BEGIN JUNK-----\nAAAA\n-----END JUNK-----\n",
    }
    for name, data in out.items():
        (tmp_path / f"{name}.pem").write_bytes(data)
    return {name: tmp_path / f"{name}.pem" for name in out}


def _load(ca: Path | str, key: Path | str, *, key_cert_spec: str | None = None, environ: Mapping[str, str] | None = None) -> CAPair:
    return load_ca_pair(str(ca), str(key), category=Category.CERTIFICATE, key_cert_spec=key_cert_spec, environ=environ)


def _code(ca: Path | str, key: Path | str, *, key_cert_spec: str | None = None, environ: Mapping[str, str] | None = None) -> int:
    with pytest.raises(CfsslError) as exc:
        _load(ca, key, key_cert_spec=key_cert_spec, environ=environ)
    return exc.value.code


def test_a_ca_pair_loads_from_paths_and_env(files: dict[str, Path]) -> None:
    pair = _load(files["ca"], files["ca-key"])
    assert pair.key_cert == pair.cert
    assert pair.key.public_key() == pair.cert.public_key()
    pem = files["ca"].read_text()
    assert _load("env:CA", files["ca-key"], environ={"CA": pem}).cert == pair.cert


def test_the_key_may_belong_to_another_certificate(files: dict[str, Path]) -> None:
    pair = _load(files["ca"], files["responder-key"], key_cert_spec=str(files["responder"]))
    assert pair.cert.subject.rfc4514_string() == "CN=CA"
    assert pair.key_cert.subject.rfc4514_string() == "CN=Responder"
    assert pair.key.public_key() == pair.key_cert.public_key()


def test_unreadable_inputs(files: dict[str, Path]) -> None:
    with pytest.raises(PlainError, match="^open missing.pem: no such file"):
        _load("missing.pem", files["ca-key"])
    with pytest.raises(PlainError, match="^open missing.pem: no such file"):
        _load(files["ca"], files["ca-key"], key_cert_spec="missing.pem")
    # an unreadable key is the caller's category, reason 1 (cfssl wraps it as a certificate read failure)
    assert _code(files["ca"], "missing.pem") == 1001
    with pytest.raises(CfsslError) as exc:
        load_ca_pair(str(files["ca"]), "missing.pem", category=Category.PRIVATE_KEY)
    assert exc.value.code == 2001 and "missing.pem" in exc.value.message


def test_bad_certificate_and_key(files: dict[str, Path]) -> None:
    assert _code(files["ca-key"], files["ca-key"]) == 1003  # a PEM block, but not a certificate
    assert _code(files["ca"], files["ca-key"], key_cert_spec=str(files["garbage"])) == 1003
    assert _code(files["ca"], files["ca"]) == 2003  # a PEM block, but not a key


def test_the_key_password_comes_from_the_environment(files: dict[str, Path]) -> None:
    assert _code(files["ca"], files["encrypted-key"], environ={}) == 2100
    pair = _load(files["ca"], files["encrypted-key"], environ={"CFSSL_CA_PK_PASSWORD": "pw-1"})
    assert pair.key.public_key() == pair.cert.public_key()


def test_cfssl_order_reads_everything_before_parsing(files: dict[str, Path]) -> None:
    # every certificate is read before the key, so a missing CA wins over a missing key
    with pytest.raises(PlainError, match="^open missing-ca.pem"):
        _load("missing-ca.pem", "missing-key.pem")
    with pytest.raises(PlainError, match="^open missing-responder.pem"):
        _load(files["ca"], "missing-key.pem", key_cert_spec="missing-responder.pem")
    # reading comes before parsing: an unreadable key wins over a bad certificate
    assert _code(files["garbage"], "missing-key.pem") == 1001
    # certificates are parsed before the key: a bad certificate wins over a bad key
    assert _code(files["garbage"], files["garbage"]) == 1003
    assert _code(files["ca"], files["garbage"], key_cert_spec=str(files["ca-key"])) == 1003


def test_a_pkcs11_key_is_not_read_as_a_file_and_comes_after_the_certificates(files: dict[str, Path]) -> None:
    # the URI names no readable file, yet no 1001: the bad certificate is found first, the token never opened
    assert _code(files["garbage"], "pkcs11:token=none;object=none") == 1003
