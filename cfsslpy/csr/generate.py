"""Turning CSR JSON into a signed PKCS#10 request with the key's cfssl signature algorithm (reference §3.6)."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ObjectIdentifier

from cfsslpy.csr.hosts import classify_hosts
from cfsslpy.csr.request import CAConfig, CertificateRequest
from cfsslpy.csr.subject import OID_DELEGATION_USAGE, csr_error
from cfsslpy.errors import Category, CfsslError, PlainError
from cfsslpy.keys import PrivateKey, signature_hash


def basic_constraints_extension(ca: CAConfig) -> x509.BasicConstraints:
    return x509.BasicConstraints(ca=True, path_length=ca.max_path_len())


def generate_csr(req: CertificateRequest, key: PrivateKey) -> x509.CertificateSigningRequest:
    """Build and sign a PKCS#10 request from CSR JSON (reference §3.6).

    Extension request order as cfssl: SAN (non-critical) when there are hosts, then the CA basicConstraints
    (critical) and our name constraints when ``ca`` is set, then the delegation-usage extension, then the
    raw ``extensions``. (cfssl drops the CA basicConstraints when ``delegation_enabled`` is also set, a bug
    we do not copy.) Failures are 9300 (cfssl panics on some of them).
    """
    builder = x509.CertificateSigningRequestBuilder().subject_name(req.subject().to_name())
    sans = classify_hosts(req.hosts or [], Category.CSR)
    seen: set[ObjectIdentifier] = set()
    try:
        if not sans.is_empty():
            builder = builder.add_extension(x509.SubjectAlternativeName(sans.general_names()), critical=False)
            seen.add(x509.SubjectAlternativeName.oid)
        if req.ca is not None:
            builder = builder.add_extension(basic_constraints_extension(req.ca), critical=True)
            seen.add(x509.BasicConstraints.oid)
            nc = req.ca.name_constraints.to_extension() if req.ca.name_constraints else None
            if nc is not None:
                builder = builder.add_extension(nc, critical=req.ca.name_constraints.critical if req.ca.name_constraints else True)
                seen.add(x509.NameConstraints.oid)
        if req.delegation_enabled:
            builder = builder.add_extension(x509.UnrecognizedExtension(OID_DELEGATION_USAGE, b"\x05\x00"), critical=False)
            seen.add(OID_DELEGATION_USAGE)
        for ext in req.extensions:
            if ext.oid in seen:
                raise csr_error(f"duplicate extension {ext.oid.dotted_string} in request")
            seen.add(ext.oid)
            builder = builder.add_extension(x509.UnrecognizedExtension(ext.oid, ext.value), critical=ext.critical)
        csr = builder.sign(key, signature_hash(key))
    except CfsslError:
        raise
    except ValueError as exc:
        raise csr_error(str(exc)) from exc
    try:
        _ = csr.extensions  # a raw extension whose value does not parse must fail here, not when signing
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        raise csr_error(f"invalid extension value in request: {exc}") from None
    return csr


def new_key_and_csr(req: CertificateRequest) -> tuple[x509.CertificateSigningRequest, PrivateKey]:
    """``genkey`` without -initca: a new key and a CSR, with no subject validation (as cfssl).

    A ``ca`` section is refused: only initca may ask for a CA.
    """
    if req.ca is not None:
        raise PlainError("ca section only permitted in initca")
    key = req.key.generate()
    return generate_csr(req, key), key


def csr_pem(csr: x509.CertificateSigningRequest) -> bytes:
    return csr.public_bytes(serialization.Encoding.PEM)
