"""Certificates, CSRs and CRLs described for the web console (cfsslpy additions), parsed with cryptography.

:func:`describe_data` reads PEM text (any number of blocks: a chain, a CSR, a CRL) or one DER object given
as base64, and describes each object as a flat JSON object with a ``type`` of ``certificate``, ``csr`` or
``crl``. Nothing here decodes ASN.1 by hand: PEM framing is :mod:`cfsslpy.pem`'s, everything else
cryptography's. Limits: :data:`MAX_OBJECTS` objects per request, :data:`MAX_CRL_ENTRIES` CRL entries listed
(the count is always the full one).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, SignatureAlgorithmOID

from cfsslpy.errors import ApiError
from cfsslpy.pem import all_blocks, csr_signature_is_valid, encode_pem
from cfsslpy.revocation import REASON_NAMES, reason_code
from cfsslpy.x509util import KEY_USAGE_FIELDS, extension, rfc3339

MAX_OBJECTS = 32
MAX_CRL_ENTRIES = 1000
MAX_INPUT = 512 * 1024

_CERT_LABELS = ("CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE")
_CSR_LABELS = ("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST")
_CRL_LABELS = ("X509 CRL", "CRL")
_KEY_USAGES = KEY_USAGE_FIELDS[:7]  # encipher_only/decipher_only are read only with key_agreement
_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "server auth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "client auth",
    ExtendedKeyUsageOID.CODE_SIGNING: "code signing",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "email protection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timestamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "ocsp signing",
}


def hex_id(data: bytes) -> str:
    """A key identifier or serial as colon-separated upper-case hex (how openssl and certinfo print them)."""
    return ":".join(f"{b:02X}" for b in data)


def common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = values[0].value if values else ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def key_description(key: Any) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA {key.curve.name}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size}"
    return "unknown"


def general_names(names: x509.GeneralNames | x509.SubjectAlternativeName) -> list[str]:
    """SANs as ``DNS:…``, ``IP:…``, ``email:…``, ``URI:…`` (openssl's prefixes), in the extension's order."""
    out: list[str] = []
    for name in names:
        if isinstance(name, x509.DNSName):
            out.append("DNS:" + name.value)
        elif isinstance(name, x509.IPAddress):
            out.append("IP:" + str(name.value))
        elif isinstance(name, x509.RFC822Name):
            out.append("email:" + name.value)
        elif isinstance(name, x509.UniformResourceIdentifier):
            out.append("URI:" + name.value)
        else:
            out.append(type(name).__name__)
    return out


# cryptography's public names of signature algorithms (``ECDSA_WITH_SHA256`` -> ``ECDSA with SHA256``)
_SIGNATURE_NAMES = {
    value: name.replace("_WITH_", " with ").replace("_", "-").replace("ED25519", "Ed25519").replace("ED448", "Ed448")
    for name, value in vars(SignatureAlgorithmOID).items()
    if isinstance(value, x509.ObjectIdentifier) and not name.startswith("_")
}


def _signature(obj: x509.Certificate | x509.CertificateSigningRequest | x509.CertificateRevocationList) -> str:
    oid = obj.signature_algorithm_oid
    return _SIGNATURE_NAMES.get(oid, oid.dotted_string)


def _key_usage(obj: x509.Certificate | x509.CertificateSigningRequest) -> list[str]:
    ku = extension(obj, x509.KeyUsage, lenient=True)
    if ku is None:
        return []
    usages = [name.replace("_", " ") for name in _KEY_USAGES if getattr(ku, name)]
    if ku.key_agreement:
        usages += [n for n, flag in (("encipher only", ku.encipher_only), ("decipher only", ku.decipher_only)) if flag]
    return usages


def _ext_key_usage(obj: x509.Certificate | x509.CertificateSigningRequest) -> list[str]:
    eku = extension(obj, x509.ExtendedKeyUsage, lenient=True)
    return [] if eku is None else [_EKU_NAMES.get(oid, oid.dotted_string) for oid in eku]


def _sans(obj: x509.Certificate | x509.CertificateSigningRequest) -> list[str]:
    san = extension(obj, x509.SubjectAlternativeName, lenient=True)
    return [] if san is None else general_names(san)


def _key_id(obj: x509.Certificate | x509.CertificateRevocationList, cls: Any, attribute: str) -> str:
    ext = extension(obj, cls, lenient=True)
    value = None if ext is None else getattr(ext, attribute)
    return "" if value is None else hex_id(value)


def describe_certificate(cert: x509.Certificate) -> dict[str, Any]:
    der = cert.public_bytes(serialization.Encoding.DER)
    constraints = extension(cert, x509.BasicConstraints, lenient=True)
    return {
        "type": "certificate",
        "subject": cert.subject.rfc4514_string(),
        "common_name": common_name(cert.subject),
        "issuer": cert.issuer.rfc4514_string(),
        "serial_number": str(cert.serial_number),
        "serial_hex": hex_id(cert.serial_number.to_bytes((cert.serial_number.bit_length() + 8) // 8, "big")),
        "sans": _sans(cert),
        "not_before": rfc3339(cert.not_valid_before_utc),
        "not_after": rfc3339(cert.not_valid_after_utc),
        "key": key_description(cert.public_key()),
        "signature_algorithm": _signature(cert),
        "authority_key_id": _key_id(cert, x509.AuthorityKeyIdentifier, "key_identifier"),
        "subject_key_id": _key_id(cert, x509.SubjectKeyIdentifier, "digest"),
        "is_ca": bool(constraints and constraints.ca),
        "key_usage": _key_usage(cert),
        "ext_key_usage": _ext_key_usage(cert),
        "sha256": hex_id(cert.fingerprint(hashes.SHA256())),
        "pem": encode_pem("CERTIFICATE", der).decode("ascii"),
    }


def describe_csr(csr: x509.CertificateSigningRequest) -> dict[str, Any]:
    der = csr.public_bytes(serialization.Encoding.DER)
    return {
        "type": "csr",
        "subject": csr.subject.rfc4514_string(),
        "common_name": common_name(csr.subject),
        "sans": _sans(csr),
        "key": key_description(csr.public_key()),
        "signature_algorithm": _signature(csr),
        "signature_valid": csr_signature_is_valid(csr),
        "key_usage": _key_usage(csr),
        "ext_key_usage": _ext_key_usage(csr),
        "pem": encode_pem("CERTIFICATE REQUEST", der).decode("ascii"),
    }


def _utc(value: dt.datetime | None) -> str | None:
    return None if value is None else rfc3339(value)


def _entry_reason(revoked: x509.RevokedCertificate) -> x509.CRLReason | None:
    try:
        return revoked.extensions.get_extension_for_class(x509.CRLReason).value
    except (x509.ExtensionNotFound, ValueError, x509.DuplicateExtension):
        return None


def describe_crl(crl: x509.CertificateRevocationList) -> dict[str, Any]:
    number = extension(crl, x509.CRLNumber, lenient=True)
    entries: list[dict[str, Any]] = []
    count = 0
    for revoked in crl:
        count += 1
        if len(entries) < MAX_CRL_ENTRIES:
            reason = _entry_reason(revoked)
            entries.append(
                {
                    "serial_number": str(revoked.serial_number),
                    "revoked_at": rfc3339(revoked.revocation_date_utc),
                    "reason": "" if reason is None else reason_name(reason_code(reason.reason)),
                }
            )
    return {
        "type": "crl",
        "issuer": crl.issuer.rfc4514_string(),
        "number": None if number is None else str(number.crl_number),
        "this_update": _utc(crl.last_update_utc),
        "next_update": _utc(crl.next_update_utc),
        "signature_algorithm": _signature(crl),
        "authority_key_id": _key_id(crl, x509.AuthorityKeyIdentifier, "key_identifier"),
        "revoked_count": count,
        "revoked": entries,
        "pem": encode_pem("X509 CRL", crl.public_bytes(serialization.Encoding.DER)).decode("ascii"),
    }


def _unparseable(what: str) -> ApiError:
    return ApiError(400, f"cannot parse {what}")


def _describe_block(label: str, der: bytes) -> dict[str, Any]:
    try:
        if label in _CERT_LABELS:
            return describe_certificate(x509.load_der_x509_certificate(der))
        if label in _CSR_LABELS:
            return describe_csr(x509.load_der_x509_csr(der))
        if label in _CRL_LABELS:
            return describe_crl(x509.load_der_x509_crl(der))
    except ValueError:
        raise _unparseable(f"the {label} block") from None
    raise ApiError(400, f"unsupported PEM block {label[:64]!r}: want a certificate, a CSR or a CRL")


def _describe_der(der: bytes) -> dict[str, Any]:
    loaders = (
        (x509.load_der_x509_certificate, describe_certificate),
        (x509.load_der_x509_csr, describe_csr),
        (x509.load_der_x509_crl, describe_crl),
    )
    for load, describe in loaders:
        try:
            obj = load(der)
        except ValueError:
            continue
        try:
            return describe(obj)  # type: ignore[arg-type]
        except ValueError:
            break  # it framed as this type but a field does not parse
    raise _unparseable("the data: want PEM, or base64 DER of a certificate, a CSR or a CRL")


def describe_data(text: str) -> list[dict[str, Any]]:
    """Every object in ``text`` (PEM blocks, else base64 DER of one object), described; 400 when none is."""
    if len(text) > MAX_INPUT:
        raise ApiError(413, f"data larger than {MAX_INPUT} bytes")
    data = text.encode("utf-8", "replace")
    if b"-----BEGIN " in data:
        blocks = all_blocks(data)
        if not blocks:
            raise _unparseable("the PEM data")
        if len(blocks) > MAX_OBJECTS:
            raise ApiError(400, f"more than {MAX_OBJECTS} PEM blocks")
        return [_describe_block(block.label, block.data) for block in blocks]
    compact = b"".join(data.split())
    if not compact:
        raise ApiError(400, "no data: paste PEM, or base64 DER")
    try:
        der = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise _unparseable("the data: want PEM, or base64 DER of a certificate, a CSR or a CRL") from None
    return [_describe_der(der)]


def reason_name(code: int) -> str:
    return REASON_NAMES.get(code, str(code))
