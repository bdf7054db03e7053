"""Subjects: cfssl's names as Go's ``pkix.Name`` holds and encodes them (reference §7.2).

:meth:`Subject.to_name` writes canonical order C, ST, L, street, postalCode, O, OU, CN, serialNumber, then
other attributes each in its own RDN; PrintableString when possible, else UTF8String. Unlike Go, attributes
whose X.520/PKCS#9 syntax is fixed keep it (emailAddress and domainComponent IA5String; serialNumber,
dnQualifier and countryName PrintableString) and RFC 5280 upper bounds are enforced: a value that cannot be
encoded correctly is an error (9300) instead of a certificate that strict parsers reject.
:meth:`Subject.from_csr` and :meth:`Subject.from_certificate` read a subject back, with Go's RDN rules when
cryptography cannot hold it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID, ObjectIdentifier

from cfsslpy.certinfo import csr_info
from cfsslpy.errors import Category, CfsslError, Reason

OID_DELEGATION_USAGE = ObjectIdentifier("1.3.6.1.4.1.44363.44")
OID_EMAIL_ADDRESS = ObjectIdentifier("1.2.840.113549.1.9.1")

# Go's pkix.Name field order when it builds an RDN sequence.
STANDARD_ORDER: tuple[ObjectIdentifier, ...] = (
    NameOID.COUNTRY_NAME,
    NameOID.STATE_OR_PROVINCE_NAME,
    NameOID.LOCALITY_NAME,
    NameOID.STREET_ADDRESS,
    NameOID.POSTAL_CODE,
    NameOID.ORGANIZATION_NAME,
    NameOID.ORGANIZATIONAL_UNIT_NAME,
    NameOID.COMMON_NAME,
    NameOID.SERIAL_NUMBER,
)
# CN and serialNumber are single-valued in pkix.Name (the last value wins).
_SINGLE_VALUED = {NameOID.COMMON_NAME, NameOID.SERIAL_NUMBER}

_PRINTABLE = re.compile(r"^[A-Za-z0-9 '()+,\-./:=?]*$")


def _string_type(value: str) -> _ASN1Type:
    """Go's asn1 rule for strings in names: PrintableString if it fits, else UTF8String."""
    return _ASN1Type.PrintableString if _PRINTABLE.match(value) else _ASN1Type.UTF8String


def csr_error(message: str) -> CfsslError:
    return CfsslError(Category.CSR, Reason.BAD_REQUEST, message)


def parse_oid(text: str) -> ObjectIdentifier:
    parts = text.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts):
        raise csr_error(f"invalid OID {text!r}: expected dotted decimal such as 1.2.3.4")
    try:
        return ObjectIdentifier(text)
    except ValueError as exc:
        raise csr_error(f"invalid OID {text!r}: {exc}") from exc


@dataclass
class Subject:
    """A decomposed subject: values per standard attribute (in input order) plus extra attributes.

    This mirrors Go's ``pkix.Name``: ``values`` holds C/ST/L/street/postalCode/O/OU lists and the single CN
    and serialNumber; ``extra`` holds every other attribute, each emitted as its own RDN at the end.
    """

    values: dict[ObjectIdentifier, list[str]] = field(default_factory=dict)
    extra: list[tuple[ObjectIdentifier, str]] = field(default_factory=list)

    def add(self, oid: ObjectIdentifier, value: str) -> None:
        if not value:
            return
        if oid in _SINGLE_VALUED:
            self.values[oid] = [value]
        elif oid in STANDARD_ORDER:
            self.values.setdefault(oid, []).append(value)
        else:
            self.extra.append((oid, value))

    def get(self, oid: ObjectIdentifier) -> list[str]:
        return self.values.get(oid, [])

    @property
    def common_name(self) -> str:
        values = self.get(NameOID.COMMON_NAME)
        return values[0] if values else ""

    def is_empty(self) -> bool:
        return not any(self.values.values()) and not self.extra

    def to_name(self) -> x509.Name:
        """Encode as Go does (canonical type order, extras last), but one RDN per value.

        Go puts every value of one type into a single multi-valued RDN (``C=DE+C=US``); X.501 forbids an RDN
        with two attributes of the same type and strict linters reject it, so a repeated type becomes
        consecutive single-valued RDNs in input order. With one value per type (the usual case) the DER is
        identical to cfssl's.
        """
        rdns: list[x509.RelativeDistinguishedName] = []
        for oid in STANDARD_ORDER:
            for value in dict.fromkeys(self.values.get(oid, [])):
                rdns.append(x509.RelativeDistinguishedName([_attribute(oid, value)]))
        for oid, value in self.extra:
            rdns.append(x509.RelativeDistinguishedName([_attribute(oid, value)]))
        return x509.Name(rdns)

    @classmethod
    def from_name(cls, name: x509.Name) -> Subject:
        """Decompose a parsed subject (e.g. a CSR's), keeping non-standard attributes as extras."""
        subject = cls()
        for rdn in name.rdns:
            for attr in rdn:
                value = attr.value
                if isinstance(value, bytes):
                    continue  # BIT STRING attributes (x500UniqueIdentifier) are not carried over
                subject.add(attr.oid, value)
        return subject

    @classmethod
    def from_csr(cls, csr: x509.CertificateSigningRequest) -> Subject:
        """A CSR's subject, as :meth:`from_name` reads it, for every subject Go accepts.

        cfssl genkey writes each type's values into one multi-valued RDN, so two ``names`` entries sharing a
        value give ``OU=Eng+OU=Eng``; cryptography's ``csr.subject`` raises ValueError for that RDN. Such a
        subject is read with Go's parser (:func:`cfsslpy.certinfo.csr_info`), and what Go refuses is 9003.
        :meth:`to_name` then writes each distinct value once, in its own RDN.
        """
        try:
            return cls.from_name(csr.subject)
        except ValueError:
            pass
        return cls._from_go_names((name["Type"], name["Value"]) for name in csr_info(csr)["Subject"]["Names"] or [])

    @classmethod
    def from_certificate(cls, cert: x509.Certificate) -> Subject:
        """:meth:`from_csr` for a certificate's subject (cfssl signs ``OU=Eng+OU=Eng`` subjects as they are)."""
        try:
            return cls.from_name(cert.subject)
        except ValueError:
            pass
        # Go's parser, as for CSRs (cryptography cannot hold a repeated value within one RDN).
        from cfsslpy.certinfo import certificate_fields

        try:
            names = certificate_fields(cert.public_bytes(serialization.Encoding.DER)).subject.attributes
        except ValueError as exc:
            raise CfsslError(Category.CERTIFICATE, Reason.PARSE_FAILED, str(exc)) from exc
        return cls._from_go_names(names)

    @classmethod
    def _from_go_names(cls, names: Iterable[tuple[list[int], Any]]) -> Subject:
        """From Go's ``pkix.Name.Names`` (type arcs, value), which keeps only string values as fields too."""
        subject = cls()
        for arcs, value in names:
            if isinstance(value, str):
                subject.add(ObjectIdentifier(".".join(map(str, arcs))), value)
        return subject


# Attributes whose ASN.1 string type is fixed by their definition (X.520, PKCS#9, RFC 4519).
_FIXED_TYPE: dict[ObjectIdentifier, _ASN1Type] = {
    NameOID.COUNTRY_NAME: _ASN1Type.PrintableString,
    NameOID.SERIAL_NUMBER: _ASN1Type.PrintableString,
    NameOID.DN_QUALIFIER: _ASN1Type.PrintableString,
    OID_EMAIL_ADDRESS: _ASN1Type.IA5String,
    NameOID.DOMAIN_COMPONENT: _ASN1Type.IA5String,
}
# RFC 5280 Appendix A upper bounds, in characters.
_UPPER_BOUND: dict[ObjectIdentifier, int] = {
    NameOID.COMMON_NAME: 64,
    NameOID.LOCALITY_NAME: 128,
    NameOID.STATE_OR_PROVINCE_NAME: 128,
    NameOID.ORGANIZATION_NAME: 64,
    NameOID.ORGANIZATIONAL_UNIT_NAME: 64,
    NameOID.SERIAL_NUMBER: 64,
    OID_EMAIL_ADDRESS: 255,
}
_ATTRIBUTE_NAMES = {
    NameOID.COUNTRY_NAME: "C",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.LOCALITY_NAME: "L",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.COMMON_NAME: "CN",
    NameOID.SERIAL_NUMBER: "serialNumber",
    OID_EMAIL_ADDRESS: "E (emailAddress)",
    NameOID.DOMAIN_COMPONENT: "DC",
    NameOID.DN_QUALIFIER: "dnQualifier",
}


def _attribute_name(oid: ObjectIdentifier) -> str:
    return _ATTRIBUTE_NAMES.get(oid) or oid.dotted_string


def _attribute(oid: ObjectIdentifier, value: str) -> x509.NameAttribute[str]:
    natural = _string_type(value)  # once: every check below asks for it
    if oid == NameOID.COUNTRY_NAME and (len(value) != 2 or natural != _ASN1Type.PrintableString):
        raise csr_error(f"invalid country name {value!r}: it must be a 2-letter ISO 3166 code")
    bound = _UPPER_BOUND.get(oid)
    if bound is not None and len(value) > bound:
        raise csr_error(f"subject attribute {_attribute_name(oid)} is longer than {bound} characters (RFC 5280 upper bound)")
    kind = _FIXED_TYPE.get(oid) or natural
    if kind == _ASN1Type.PrintableString and natural != _ASN1Type.PrintableString:
        raise csr_error(
            f"subject attribute {_attribute_name(oid)} {value!r} must use PrintableString characters (A-Z a-z 0-9 space '()+,-./:=?)"
        )
    if kind == _ASN1Type.IA5String and not value.isascii():
        raise csr_error(f"subject attribute {_attribute_name(oid)} {value!r} must be ASCII (IA5String)")
    try:
        return x509.NameAttribute(oid, value, kind)
    except ValueError as exc:
        raise csr_error(f"invalid subject attribute {oid.dotted_string}: {exc}") from exc
