"""Shared helpers for the integration tests: real cfssl / openssl runs, pkilint, cached keys, certificate views."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import importlib
import json
import subprocess
import warnings
from pathlib import Path
from typing import Any

import pytest
from conftest import REQUIRE_INTEGRATION, need
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.utils import CryptographyDeprecationWarning

from cfsslpy.keys import PrivateKey

__all__ = [
    "need",
    "need_module",
    "key",
    "pem",
    "write",
    "run",
    "cfssl_json",
    "openssl_verify",
    "lint",
    "lint_errors",
    "extension_layout",
    "key_usage_bits",
    "lifetime",
    "spk_sha1",
]


def need_module(name: str) -> Any:
    """Import a Python package an integration test needs; skip (or fail when integration is required)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        if REQUIRE_INTEGRATION:
            pytest.fail(f"python package {name} is not installed (required: CFSSLPY_REQUIRE_INTEGRATION=1)")
        pytest.skip(f"python package {name} is not installed")


@functools.cache
def key(kind: str) -> PrivateKey:
    """One key per kind for the whole session (``rsa2048``, ``rsa4096``, ``p256``, ``p384``, ``p521``, ``ed25519``).

    ``kind`` may carry a ``#tag`` suffix to get a second, distinct key of the same kind.
    """
    base = kind.split("#", 1)[0]
    if base.startswith("rsa"):
        return rsa.generate_private_key(65537, int(base[3:]))
    if base == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key({"p256": ec.SECP256R1(), "p384": ec.SECP384R1(), "p521": ec.SECP521R1()}[base])


def pem(obj: x509.Certificate | x509.CertificateSigningRequest) -> bytes:
    return obj.public_bytes(serialization.Encoding.PEM)


def write(path: Path, data: bytes | str | x509.Certificate | x509.CertificateSigningRequest) -> Path:
    if isinstance(data, (x509.Certificate, x509.CertificateSigningRequest)):
        data = pem(data)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def run(*args: str, cwd: Path | None = None, stdin: bytes = b"", check: bool = True) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(list(args), input=stdin, capture_output=True, cwd=cwd, timeout=60, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout.decode()}\n{proc.stderr.decode()}")
    return proc


def cfssl_json(*args: str, cwd: Path | None = None) -> dict[str, Any]:
    """Run the real ``cfssl`` and parse its JSON result."""
    proc = run(need("cfssl"), *args, cwd=cwd)
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def openssl_verify(ca_file: Path, cert_file: Path, *, untrusted: Path | None = None, purpose: str | None = None) -> None:
    """``openssl verify -x509_strict`` must print ``<file>: OK``."""
    args = [need("openssl"), "verify", "-x509_strict", "-CAfile", str(ca_file)]
    if untrusted is not None:
        args += ["-untrusted", str(untrusted)]
    if purpose is not None:
        args += ["-purpose", purpose]
    proc = run(*args, str(cert_file), check=False)
    out = proc.stdout.decode() + proc.stderr.decode()
    assert proc.returncode == 0 and out.strip().endswith(f"{cert_file}: OK"), out


# ---------------------------------------------------------------------------------------------------------
# pkilint (RFC 5280 profile: what ``lint_pkix_cert lint`` runs)


@functools.cache
def _pkix_validator() -> Any:
    need_module("pkilint")
    from pkilint.pkix import certificate, extension, name

    return certificate.create_pkix_certificate_validator_container(
        certificate.create_decoding_validators(name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS),
        [
            certificate.create_issuer_validator_container([]),
            certificate.create_validity_validator_container(),
            certificate.create_subject_validator_container([]),
            certificate.create_extensions_validator_container([]),
            certificate.create_spki_validator_container([]),
        ],
    )


def lint(cert: x509.Certificate) -> list[tuple[str, str, str, str]]:
    """Every pkilint finding as (severity, code, message, node path)."""
    from pkilint import loader

    doc = loader.RFC5280CertificateDocumentLoader().load_der_document(cert.public_bytes(serialization.Encoding.DER), "cert")
    findings = []
    with warnings.catch_warnings():
        # pkilint 0.13.3 checks every non-RSA self-signature with isinstance(key, dsa.DSAPublicKey), which
        # cryptography 51 deprecates; under the suite's warnings-as-errors that turned into a FATAL
        # "unhandled exception" finding. Ignored for pkilint's own code only: cfsslpy's stays an error.
        warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning, module=r"pkilint(\.|$)")
        for result in _pkix_validator().validate(doc.root):
            for f in result.finding_descriptions:
                findings.append((f.finding.severity.name, f.finding.code, f.message or "", result.node.path))
    return findings


def lint_errors(cert: x509.Certificate, *, allow: frozenset[str] = frozenset()) -> list[tuple[str, str, str, str]]:
    """Findings of severity ERROR or FATAL, minus the codes in ``allow``."""
    return [f for f in lint(cert) if f[0] in ("FATAL", "ERROR") and f[1] not in allow]


# ---------------------------------------------------------------------------------------------------------
# Certificate views used to compare cfssl's certificates with ours


def extension_layout(cert: x509.Certificate) -> list[tuple[str, bool]]:
    return [(e.oid.dotted_string, e.critical) for e in cert.extensions]


def key_usage_bits(cert: x509.Certificate) -> set[str]:
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return set()
    names = [
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
    ]
    bits = {n for n in names if getattr(ku, n)}
    if ku.key_agreement:
        bits |= {n for n in ("encipher_only", "decipher_only") if getattr(ku, n)}
    return bits


def lifetime(cert: x509.Certificate) -> dt.timedelta:
    return cert.not_valid_after_utc - cert.not_valid_before_utc


def spk_sha1(cert: x509.Certificate) -> bytes:
    """SHA-1 over the subjectPublicKey BIT STRING payload (RFC 5280 method 1)."""
    pub = cert.public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        bits = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    elif isinstance(pub, ec.EllipticCurvePublicKey):
        bits = pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    else:
        bits = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha1(bits).digest()
