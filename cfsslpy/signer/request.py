"""The sign request document: what to sign and how (cfssl's ``signer.SignRequest`` and its JSON, reference §3.7)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from cryptography.x509.oid import NameOID, ObjectIdentifier

from cfsslpy.csr import NameEntry, Subject
from cfsslpy.errors import Category, CfsslError, Reason
from cfsslpy.gojson import JSONDecodeError, fold_keys, type_error


@dataclass
class SubjectOverride:
    """The ``subject`` of a sign request / the sign SUBJECT file (reference §3.7)."""

    CN: str = ""
    names: list[NameEntry] = field(default_factory=list)
    SerialNumber: str = ""

    @classmethod
    def from_json(cls, obj: Any) -> SubjectOverride:
        if not isinstance(obj, dict):
            raise type_error(obj, "SignRequest", "subject", "signer.Subject")
        f = fold_keys(obj, ["CN", "names", "SerialNumber"])
        names = f.get("names") or []
        if not isinstance(names, list):
            raise type_error(names, "Subject", "names", "[]csr.Name")
        cn = f.get("CN") or ""
        sn = f.get("SerialNumber") or ""
        if not isinstance(cn, str):
            raise type_error(cn, "Subject", "CN", "string")
        if not isinstance(sn, str):
            raise type_error(sn, "Subject", "SerialNumber", "string")
        return cls(CN=cn, names=[NameEntry.from_json(n) for n in names], SerialNumber=sn)

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


@dataclass
class RequestExtension:
    """A request ``extensions`` entry (library / multirootca): OID, criticality, hex value."""

    oid: ObjectIdentifier
    critical: bool
    value: bytes


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
        if not isinstance(obj, dict):
            raise JSONDecodeError("json: cannot unmarshal into Go value of type signer.SignRequest")
        f = fold_keys(
            obj,
            [
                "hostname",
                "hosts",
                "certificate_request",
                "subject",
                "profile",
                "crl_override",
                "label",
                "serial",
                "extensions",
                "not_before",
                "not_after",
            ],
        )
        # cfssl: a non-empty "hostname" (comma-separated) wins; else "hosts" ([] removes every SAN, null
        # or absent keeps the CSR's).
        hosts: list[str] | None = None
        hostname = f.get("hostname")
        if hostname is not None and not isinstance(hostname, str):
            raise type_error(hostname, "SignRequest", "hostname", "string")
        if hostname:
            hosts = hostname.split(",")
        elif f.get("hosts") is not None:
            value = f["hosts"]
            if not isinstance(value, list) or not all(isinstance(h, str) for h in value):
                raise type_error(value, "SignRequest", "hosts", "[]string")
            hosts = list(value)
        csr = f.get("certificate_request") or ""
        if not isinstance(csr, str):
            raise type_error(csr, "SignRequest", "certificate_request", "string")
        subject = None if f.get("subject") is None else SubjectOverride.from_json(f["subject"])
        req = cls(request=csr.encode(), hosts=hosts, subject=subject)
        for key in ("profile", "label", "crl_override"):
            value = f.get(key) or ""
            if not isinstance(value, str):
                raise type_error(value, "SignRequest", key, "string")
            setattr(req, key, value)
        serial = f.get("serial")  # cfssl's wire key (signer.SignRequest.Serial, a JSON number)
        if serial is not None:
            if isinstance(serial, bool) or not isinstance(serial, (int, str)):
                raise type_error(serial, "SignRequest", "serial", "*big.Int")
            try:
                req.serial = int(serial)
            except ValueError:
                raise type_error(serial, "SignRequest", "serial", "*big.Int") from None
        for raw in f.get("extensions") or []:
            if not isinstance(raw, dict):
                raise type_error(raw, "SignRequest", "extensions", "signer.Extension")
            e = fold_keys(raw, ["id", "critical", "value"])
            try:
                oid = ObjectIdentifier(str(e.get("id", "")))
                value = bytes.fromhex(str(e.get("value", "")))
            except ValueError:
                raise CfsslError(Category.CERTIFICATE, Reason.BAD_REQUEST) from None
            req.extensions.append(RequestExtension(oid, bool(e.get("critical")), value))
        return req
