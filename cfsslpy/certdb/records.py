"""The certdb's record types: a row of ``certificates`` (:class:`CertificateRecord`) and of ``ocsp_responses``
(:class:`OCSPRecord`), as cfssl names them, and the authority key identifier that ties a row to its issuer.

Serial numbers are decimal strings, authority key identifiers lowercase hex without separators. cfssl 2016
wrote an empty AKI; such rows are resolved through the AKI of their certificate (:func:`with_aki`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from cryptography import x509

from cfsslpy.errors import Category, CfsslError, Reason
from cfsslpy.x509util import authority_key_id, extension, rfc3339

STATUSES = ("good", "revoked", "unknown")
ZERO_TIME = dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc)


def key_id_hex(cert: x509.Certificate) -> str:
    """Lowercase hex of the certificate's authority key identifier ("" when it has none): the ``certificates``
    table's ``authority_key_identifier``."""
    return authority_key_id(cert).hex()


@dataclass(frozen=True)
class CertificateRecord:
    """One row of ``certificates`` (cfssl's CertificateRecord)."""

    serial: str
    aki: str
    pem: str
    expiry: dt.datetime
    status: str = "good"
    reason: int = 0
    revoked_at: dt.datetime | None = None  # None: not revoked (stored as Go's zero time)
    ca_label: str = ""
    issued_at: dt.datetime | None = None
    not_before: dt.datetime | None = None
    metadata: Any = None
    sans: list[str] | None = None
    common_name: str | None = None

    @classmethod
    def from_certificate(
        cls,
        cert: x509.Certificate,
        *,
        pem: str,
        ca_label: str = "",
        metadata: Any = None,
        issued_at: dt.datetime | None = None,
        status: str = "good",
        reason: int = 0,
        revoked_at: dt.datetime | None = None,
    ) -> CertificateRecord:
        """The record cfssl writes on issuance: the AKI from the certificate, DNS SANs only, the subject CN."""
        san = extension(cert, x509.SubjectAlternativeName)
        dns = [] if san is None else san.get_values_for_type(x509.DNSName)
        cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        cn = cns[0].value if cns else ""
        return cls(
            serial=str(cert.serial_number),
            aki=key_id_hex(cert),
            pem=pem,
            expiry=cert.not_valid_after_utc,
            status=status,
            reason=reason,
            revoked_at=revoked_at,
            ca_label=ca_label,
            issued_at=issued_at or dt.datetime.now(dt.timezone.utc),
            not_before=cert.not_valid_before_utc,
            metadata=metadata,
            sans=list(dns) or None,
            common_name=cn if isinstance(cn, str) else cn.decode("utf-8", "replace"),
        )

    def certificate(self) -> x509.Certificate:
        try:
            return x509.load_pem_x509_certificate(self.pem.encode("ascii", "replace"))
        except ValueError:
            raise CfsslError(Category.CERTIFICATE, Reason.PARSE_FAILED) from None

    @property
    def is_revoked(self) -> bool:
        return self.status == "revoked"

    def to_json(self) -> dict[str, Any]:
        """The record as cfssl's JSON tags name it (certinfo -db-config, API certinfo)."""
        return {
            "serial_number": self.serial,
            "authority_key_identifier": self.aki,
            "ca_label": self.ca_label,
            "status": self.status,
            "reason": self.reason,
            "expiry": rfc3339(self.expiry),
            "revoked_at": rfc3339(self.revoked_at or ZERO_TIME),
            "pem": self.pem,
        }


@dataclass(frozen=True)
class OCSPRecord:
    """One row of ``ocsp_responses``: the DER response for (serial, AKI), valid until ``expiry``."""

    serial: str
    aki: str
    body: bytes
    expiry: dt.datetime


def record_aki(rec: CertificateRecord) -> str:
    """The row's AKI, from its certificate when the column is empty (cfssl 2016 rows). A row whose PEM does not
    parse is an error (11000), never an empty AKI: a revoked certificate would silently drop out of its CRL."""
    if rec.aki:
        return rec.aki
    try:
        return key_id_hex(rec.certificate())
    except CfsslError:
        raise CfsslError(
            Category.CERT_STORE,
            Reason.UNKNOWN,
            f"certificate record {rec.serial} has no authority key identifier and its PEM does not parse",
        ) from None


def with_aki(rec: CertificateRecord) -> CertificateRecord:
    """The record with its AKI resolved from the certificate when the column is empty (cfssl 2016 rows)."""
    return rec if rec.aki else replace(rec, aki=record_aki(rec))
