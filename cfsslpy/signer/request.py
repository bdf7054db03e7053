"""The sign request document: what to sign and how (cfssl's ``signer.SignRequest`` and its JSON, reference §3.7)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.x509.oid import NameOID, ObjectIdentifier

from cfsslpy.csr import NameEntry, Subject
from cfsslpy.errors import Category, CfsslError, Reason
from cfsslpy.golang.decode import BOOL, STRING, STRINGS, BigInt, GoStruct, Ptr, Slice, Text, Where, decode, go_struct, struct_of


@go_struct("signer.Subject", {"CN": STRING, "names": Slice(struct_of(NameEntry), "[]csr.Name"), "SerialNumber": STRING})
@dataclass
class SubjectOverride:
    """The ``subject`` of a sign request / the sign SUBJECT file (reference §3.7)."""

    CN: str = ""
    names: list[NameEntry] = field(default_factory=list)
    SerialNumber: str = ""

    @classmethod
    def from_json(cls, obj: Any) -> SubjectOverride:
        return decode(cls, obj, at=Where("SignRequest", "subject"), null=False)

    def merge(self, csr_subject: Subject) -> Subject:
        """Per attribute type: the override's values if it has any, else the CSR's; CSR extras are dropped."""
        mine = Subject()
        for entry in self.names:
            entry.add_location(mine)
        mine.add(NameOID.COMMON_NAME, self.CN)
        mine.add(NameOID.SERIAL_NUMBER, self.SerialNumber)
        merged = Subject()
        for oid in (
            NameOID.COUNTRY_NAME,
            NameOID.STATE_OR_PROVINCE_NAME,
            NameOID.LOCALITY_NAME,
            NameOID.ORGANIZATION_NAME,
            NameOID.ORGANIZATIONAL_UNIT_NAME,
            NameOID.COMMON_NAME,
            NameOID.SERIAL_NUMBER,
        ):
            values = mine.get(oid) or csr_subject.get(oid)
            if values:
                merged.values[oid] = list(values)
        return merged


def _bad_extension() -> CfsslError:
    return CfsslError(Category.CERTIFICATE, Reason.BAD_REQUEST)


def _oid(text: str, where: Where) -> ObjectIdentifier:
    try:
        return ObjectIdentifier(text)
    except ValueError:
        raise _bad_extension() from None


def _hex(text: str, where: Where) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise _bad_extension() from None


@dataclass
class RequestExtension:
    """A request ``extensions`` entry (library / multirootca): OID, criticality, hex value."""

    oid: ObjectIdentifier
    critical: bool
    value: bytes


def _extension(oid: ObjectIdentifier | None = None, critical: bool = False, value: bytes = b"") -> RequestExtension:
    if oid is None:  # no "id": Go's empty OID
        raise _bad_extension()
    return RequestExtension(oid, critical, value)


EXTENSION = GoStruct(
    "signer.Extension", {"id": (Text("config.OID", _oid), "oid"), "critical": BOOL, "value": Text("string", _hex)}, _extension
)
SIGN_REQUEST = GoStruct(
    "signer.SignRequest",
    {
        "hostname": STRING,  # the API's key (cfssl's jsonSignRequest), accepted here too
        "hosts": STRINGS,
        "certificate_request": STRING,
        "subject": Ptr(struct_of(SubjectOverride)),
        "profile": STRING,
        "crl_override": STRING,
        "label": STRING,
        "serial": BigInt(strings=True),
        "extensions": Slice(EXTENSION, "[]signer.Extension"),
    },
)
"""The sign request document's Go shape; :meth:`SignRequest.from_fields` makes the request from it."""


@dataclass
class SignRequest:
    """What to sign and how (cfssl's ``signer.SignRequest``)."""

    request: bytes
    hosts: list[str] | None = None
    subject: SubjectOverride | None = None
    profile: str = ""
    label: str = ""
    serial: int | None = None
    extensions: list[RequestExtension] = field(default_factory=list)
    crl_override: str = ""
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None

    @classmethod
    def from_json(cls, obj: Any) -> SignRequest:
        """The API's sign request body (``hosts``/``hostname``, ``certificate_request``, ``subject``...)."""
        return cls.from_fields(decode(SIGN_REQUEST, obj, null=False))

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> SignRequest:
        """The request from a decoded sign request document (:data:`SIGN_REQUEST`, or the API's subset of it).

        cfssl: a non-empty ``hostname`` (comma-separated) wins; else ``hosts`` ([] removes every SAN, null or
        absent keeps the CSR's).
        """
        hostname: str = fields.get("hostname") or ""
        return cls(
            request=(fields.get("certificate_request") or "").encode(),
            hosts=hostname.split(",") if hostname else fields.get("hosts"),
            subject=fields.get("subject"),
            profile=fields.get("profile") or "",
            label=fields.get("label") or "",
            serial=fields.get("serial"),
            extensions=fields.get("extensions") or [],
            crl_override=fields.get("crl_override") or "",
        )
