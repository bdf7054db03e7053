"""Certificates: cfssl's ``certinfo.Certificate`` description (``certinfo -cert``, ``-serial``), and the pieces of a
certificate other modules read without loading its key (SubjectPublicKeyInfo, signature name)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cfsslpy.certinfo.algorithms import SIGNATURE_NAMES, UNKNOWN_SIGNATURE, signature_algorithm
from cfsslpy.certinfo.der import CONTEXT, TAG_OCTET_STRING, TLV, ASN1Error, dotted, expect, one, read_tlv, sequence
from cfsslpy.certinfo.extensions import OID_AKI, OID_SAN, OID_SKI, SANs, parse_extension, parse_sans
from cfsslpy.certinfo.names import Name, certinfo_name, parse_name
from cfsslpy.errors import Category, CfsslError, Reason
from cfsslpy.pem import encode_pem, parse_certificate_pem
from cfsslpy.x509util import go_time

if TYPE_CHECKING:
    from cfsslpy.certdb import CertDB


def format_key_id(key_id: bytes) -> str:
    """Uppercase hex bytes joined by ``:`` with ``%02X`` padding (newest cfssl).

    The 2016 build formatted each byte with ``%X``, so ``0B`` printed as ``B`` (``D9:82:B:2A``).
    """
    return ":".join(f"{byte:02X}" for byte in key_id)


def certificate_parts(der: bytes) -> tuple[list[TLV], TLV]:
    """(TBSCertificate fields, outer signatureAlgorithm)."""
    outer = sequence(one(der, "certificate"), "Certificate", 3)
    return sequence(outer[0], "TBSCertificate", 6), outer[1]


def tbs_index(tbs: list[TLV]) -> int:
    """Where serialNumber sits in the TBSCertificate: 1 after an explicit [0] version, else 0."""
    return 1 if tbs[0].cls == CONTEXT and tbs[0].tag == 0 else 0


def subject_public_key_info(cert: x509.Certificate) -> bytes:
    """The SubjectPublicKeyInfo as encoded in the certificate (Go's ``RawSubjectPublicKeyInfo``), read without
    loading the key (``public_key()`` warns for DSA keys from cryptography 51 on)."""
    tbs, _ = certificate_parts(cert.public_bytes(serialization.Encoding.DER))
    return tbs[tbs_index(tbs) + 5].raw


def signature_name(cert: x509.Certificate) -> str:
    """cfssl's name for the certificate's signature algorithm (``SHA256WithRSA``, ``Ed25519``, ...).

    The 2016 build predates Ed25519 and prints ``Unknown Signature`` for it; RSA-PSS is unknown in both.
    """
    _, algorithm = certificate_parts(cert.public_bytes(serialization.Encoding.DER))
    return SIGNATURE_NAMES.get(signature_algorithm(algorithm), UNKNOWN_SIGNATURE)


@dataclass
class CertFields:
    """What Go's ``x509.Certificate`` holds of the fields cfssl's certinfo prints."""

    issuer: Name
    subject: Name
    signature_algorithm: int
    sans: SANs
    authority_key_id: bytes
    subject_key_id: bytes


def certificate_fields(der: bytes) -> CertFields:
    """The fields certinfo reads from a DER certificate, parsed with Go's rules (:class:`ASN1Error` when Go
    would refuse them): names in RDN order, the signature algorithm, SANs and key identifiers."""
    tbs, algorithm = certificate_parts(der)
    index = tbs_index(tbs)
    issuer, subject = parse_name(tbs[index + 2]), parse_name(tbs[index + 4])
    fields = CertFields(issuer, subject, signature_algorithm(algorithm), SANs([], [], [], []), b"", b"")
    for item in tbs[index + 6 :]:
        if item.cls != CONTEXT or item.tag != 3:
            continue
        for extension in sequence(one(item.content, "extensions"), "Extensions", 0):
            arcs, _critical, value = parse_extension(extension)
            oid = dotted(arcs)
            if oid == OID_SAN:
                fields.sans = parse_sans(value)
            elif oid == OID_SKI:
                fields.subject_key_id = expect(read_tlv(value)[0], TAG_OCTET_STRING, "SubjectKeyId").content
            elif oid == OID_AKI:
                for part in sequence(read_tlv(value)[0], "AuthorityKeyId", 0):
                    if part.cls == CONTEXT and part.tag == 0:
                        fields.authority_key_id = part.content
    return fields


def certificate_info(cert: x509.Certificate) -> dict[str, Any]:
    """cfssl's ``certinfo.Certificate`` for ``cert``, keys in cfssl's order.

    ``sans`` holds DNS names then IP addresses only (no emails or URIs) and is left out when empty;
    the key identifiers are empty strings when the extensions are absent (self-signed roots have no AKI).
    """
    der = cert.public_bytes(serialization.Encoding.DER)
    try:
        fields = certificate_fields(der)
    except ASN1Error as exc:
        raise CfsslError(Category.CERTIFICATE, Reason.PARSE_FAILED, str(exc)) from exc
    out: dict[str, Any] = {
        "subject": certinfo_name(fields.subject),
        "issuer": certinfo_name(fields.issuer),
        "serial_number": str(cert.serial_number),
    }
    sans = fields.sans.dns + fields.sans.ips
    if sans:
        out["sans"] = sans
    out["not_before"] = go_time(cert.not_valid_before_utc)
    out["not_after"] = go_time(cert.not_valid_after_utc)
    out["sigalg"] = SIGNATURE_NAMES.get(fields.signature_algorithm, UNKNOWN_SIGNATURE)
    out["authority_key_id"] = format_key_id(fields.authority_key_id)
    out["subject_key_id"] = format_key_id(fields.subject_key_id)
    out["pem"] = encode_pem("CERTIFICATE", der).decode("ascii")
    return out


def load_der_certificate(der: bytes) -> x509.Certificate:
    """A DER certificate, loaded and read as :func:`certificate_info` reads it (a TLS server's leaf)."""
    cert = x509.load_der_x509_certificate(der)
    # cryptography parses lazily; touch what certinfo reads so a malformed certificate fails here.
    _ = cert.subject, cert.issuer, cert.extensions, cert.serial_number, cert.not_valid_after_utc
    certificate_fields(der)
    return cert


def describe_certificate_pem(data: bytes) -> dict[str, Any]:
    """``certinfo -cert``: exactly one certificate (or a one-certificate PKCS#7), described.

    Parsing is cfssl's ``helpers.ParseCertificatePEM`` (:func:`cfsslpy.pem.parse_certificate_pem`): no PEM ->
    1002; a first block that is neither a certificate nor PKCS#7 (the PEM type is not checked) -> 1003
    ``Failed to parse certificate``; anything after it -> 1003 ``the PEM file should contain only one object``.
    """
    return certificate_info(parse_certificate_pem(data))


# --------------------------------------------------------------------------------------------------------------
# Certificates recorded in the certificate database

NOT_FOUND = "no certificate found"


def describe_serial(db: CertDB, serial: str, aki: str) -> dict[str, Any]:
    """``certinfo -serial S -aki A -db-config F`` and the API's serial lookup: the recorded certificate,
    described as :func:`describe_certificate_pem` describes it.

    The serial is decimal (``0x…`` hex accepted), the AKI hex with or without colons, any case (cfssl
    lower-cases it and strips the colons). A row written by cfssl 2016 (empty AKI column) is found through
    its certificate's AKI. Not recorded -> 11200 ``no certificate found`` (cfssl: an untyped error with this
    text, a 500 through the API).
    """
    from cfsslpy.certdb import with_aki
    from cfsslpy.revocation import normalize_aki, parse_serial

    serial_text, aki_hex = str(parse_serial(serial)), normalize_aki(aki)
    records = db.get_certificate(serial_text, aki_hex)
    if not records:
        records = [r for r in db.certificates_by_serial(serial_text) if not r.aki and with_aki(r).aki == aki_hex]
    if not records:
        raise CfsslError(Category.CERT_STORE, Reason.RECORD_NOT_FOUND, NOT_FOUND)
    return describe_certificate_pem(records[0].pem.encode("utf-8"))
