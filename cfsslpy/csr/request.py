"""cfssl's CSR JSON document ("certificate request"), decoded with Go's case-insensitive key matching (§3.6)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from cryptography.x509.oid import NameOID, ObjectIdentifier

from cfsslpy.csr.constraints import NameConstraints
from cfsslpy.csr.fields import bool_field, int_field, string_field, string_list_field
from cfsslpy.csr.subject import OID_EMAIL_ADDRESS, Subject, parse_oid
from cfsslpy.errors import Category, CfsslError, PlainError, Reason
from cfsslpy.gojson import JSONDecodeError, fold_keys, loads, parse_duration, type_error
from cfsslpy.keys import KeyRequest


@dataclass
class NameEntry:
    """One element of ``names``: C, ST, L, O, OU, E and an OID map (``SerialNumber`` is ignored, as in cfssl)."""

    C: str = ""
    ST: str = ""
    L: str = ""
    O: str = ""  # noqa: E741 - cfssl's JSON key
    OU: str = ""
    E: str = ""
    OID: dict[str, str] = field(default_factory=dict)

    FIELDS = ("C", "ST", "L", "O", "OU", "E", "OID", "SerialNumber")

    @classmethod
    def from_json(cls, obj: Any) -> NameEntry:
        if not isinstance(obj, dict):
            raise type_error(obj, "CertificateRequest", "names", "csr.Name")
        f = fold_keys(obj, cls.FIELDS)
        oids = f.get("OID")
        if oids is None:
            oids = {}
        if not isinstance(oids, dict):
            raise type_error(oids, "Name", "OID", "map[string]string")
        for k, v in oids.items():
            if not isinstance(v, str):
                raise type_error(v, "Name", "OID", "string")
            parse_oid(k)
        return cls(
            C=string_field(f, "C", "Name"),
            ST=string_field(f, "ST", "Name"),
            L=string_field(f, "L", "Name"),
            O=string_field(f, "O", "Name"),
            OU=string_field(f, "OU", "Name"),
            E=string_field(f, "E", "Name"),
            OID=dict(oids),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("C", "ST", "L", "O", "OU", "E"):
            value = getattr(self, key)
            if value:
                out[key] = value
        if self.OID:
            out["OID"] = dict(self.OID)
        return out

    def add_location(self, subject: Subject) -> None:
        """Add this entry's C, ST, L, O and OU to ``subject`` (blank values skipped), in Go's ``pkix.Name`` order."""
        subject.add(NameOID.COUNTRY_NAME, self.C)
        subject.add(NameOID.STATE_OR_PROVINCE_NAME, self.ST)
        subject.add(NameOID.LOCALITY_NAME, self.L)
        subject.add(NameOID.ORGANIZATION_NAME, self.O)
        subject.add(NameOID.ORGANIZATIONAL_UNIT_NAME, self.OU)

    def has_location(self) -> bool:
        """initca's subject check: at least one non-blank C/ST/L/O/OU."""
        return any(v.strip() for v in (self.C, self.ST, self.L, self.O, self.OU))


def path_len_constraint(pathlen: int, zero: bool) -> int | None:
    """cfssl's rule for a CA's pathLenConstraint: ``pathlen`` when positive, 0 only when ``zero`` says so, else none."""
    if pathlen > 0:
        return pathlen
    if pathlen == 0 and zero:
        return 0
    return None


@dataclass
class CAConfig:
    """The CSR ``ca`` section: pathlen, pathlenzero, expiry, backdate, plus our ``name_constraints``."""

    pathlen: int = 0
    pathlenzero: bool = False
    expiry: str = ""
    backdate: str = ""
    name_constraints: NameConstraints | None = None

    @classmethod
    def from_json(cls, obj: Any) -> CAConfig:
        if not isinstance(obj, dict):
            raise type_error(obj, "CertificateRequest", "ca", "csr.CAConfig")
        f = fold_keys(obj, ["pathlen", "pathlenzero", "expiry", "backdate", "name_constraints"])
        nc = f.get("name_constraints")
        ca = cls(
            pathlen=int_field(f, "pathlen", "CAConfig"),
            pathlenzero=bool_field(f, "pathlenzero", "CAConfig"),
            expiry=string_field(f, "expiry", "CAConfig"),
            backdate=string_field(f, "backdate", "CAConfig"),
            name_constraints=None if nc is None else NameConstraints.from_json(nc),
        )
        for name in ("expiry", "backdate"):
            text = getattr(ca, name)
            if text:
                try:
                    parse_duration(text)
                except ValueError as exc:
                    raise CfsslError(Category.POLICY, Reason.INVALID_POLICY, str(exc)) from None
        return ca

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pathlen": self.pathlen, "pathlenzero": self.pathlenzero}
        if self.expiry:
            out["expiry"] = self.expiry
        if self.backdate:
            out["backdate"] = self.backdate
        if self.name_constraints is not None and not self.name_constraints.is_empty():
            out["name_constraints"] = self.name_constraints.to_json()
        return out

    def max_path_len(self) -> int | None:
        """The pathLenConstraint this asks for: None unless pathlen > 0 or pathlenzero (cfssl rule)."""
        return path_len_constraint(self.pathlen, self.pathlenzero)


@dataclass
class RawExtension:
    """A CSR JSON ``extensions`` entry: Go's pkix.Extension JSON (``id`` int array, base64 ``value``)."""

    oid: ObjectIdentifier
    critical: bool
    value: bytes

    @classmethod
    def from_json(cls, obj: Any) -> RawExtension:
        if not isinstance(obj, dict):
            raise type_error(obj, "CertificateRequest", "extensions", "pkix.Extension")
        f = fold_keys(obj, ["id", "critical", "value"])
        ident = f.get("id")
        if (
            not isinstance(ident, list)
            or len(ident) < 2
            or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ident)
        ):
            raise type_error(ident, "Extension", "Id", "asn1.ObjectIdentifier")
        value = f.get("value") or ""
        if not isinstance(value, str):
            raise type_error(value, "Extension", "Value", "[]uint8")
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise JSONDecodeError("illegal base64 data in extension value") from None
        return cls(ObjectIdentifier(".".join(str(i) for i in ident)), bool_field(f, "critical", "Extension"), raw)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": [int(p) for p in self.oid.dotted_string.split(".")],
            "critical": self.critical,
            "value": base64.b64encode(self.value).decode(),
        }


@dataclass
class CertificateRequest:
    """cfssl's CSR JSON (reference §3.6)."""

    CN: str = ""
    names: list[NameEntry] = field(default_factory=list)
    hosts: list[str] | None = None
    key: KeyRequest = field(default_factory=KeyRequest)
    ca: CAConfig | None = None
    serialnumber: str = ""
    crl_url: str = ""
    extensions: list[RawExtension] = field(default_factory=list)
    delegation_enabled: bool = False

    FIELDS = ("CN", "names", "hosts", "key", "ca", "serialnumber", "crl_url", "extensions", "delegation_enabled")

    @classmethod
    def from_json_bytes(cls, data: bytes) -> CertificateRequest:
        """Decode CSR JSON; JSON errors are :class:`PlainError` with Go-like text (cfssl prints them plain)."""
        try:
            obj = loads(data)
            return cls.from_json(obj)
        except JSONDecodeError as exc:
            raise PlainError(str(exc)) from None

    @classmethod
    def from_json(cls, obj: Any) -> CertificateRequest:
        if not isinstance(obj, dict):
            raise (
                type_error(obj, "", "", "csr.CertificateRequest")
                if obj is not None
                else JSONDecodeError("json: cannot unmarshal null into Go value of type csr.CertificateRequest")
            )
        f = fold_keys(obj, cls.FIELDS)
        names_raw = f.get("names")
        if names_raw is not None and not isinstance(names_raw, list):
            raise type_error(names_raw, "CertificateRequest", "names", "[]csr.Name")
        ext_raw = f.get("extensions")
        if ext_raw is not None and not isinstance(ext_raw, list):
            raise type_error(ext_raw, "CertificateRequest", "extensions", "[]pkix.Extension")
        ca_raw = f.get("ca")
        return cls(
            CN=string_field(f, "CN", "CertificateRequest"),
            names=[NameEntry.from_json(n) for n in names_raw or []],
            hosts=string_list_field(f, "hosts", "CertificateRequest"),
            key=KeyRequest.from_json(f.get("key")),
            ca=None if ca_raw is None else CAConfig.from_json(ca_raw),
            serialnumber=string_field(f, "serialnumber", "CertificateRequest"),
            crl_url=string_field(f, "crl_url", "CertificateRequest"),
            extensions=[RawExtension.from_json(e) for e in ext_raw or []],
            delegation_enabled=bool_field(f, "delegation_enabled", "CertificateRequest"),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.CN:
            out["CN"] = self.CN
        out["names"] = [n.to_json() for n in self.names]
        if self.hosts:
            out["hosts"] = list(self.hosts)
        out["key"] = self.key.to_json()
        if self.ca is not None:
            out["ca"] = self.ca.to_json()
        if self.serialnumber:
            out["serialnumber"] = self.serialnumber
        if self.crl_url:
            out["crl_url"] = self.crl_url
        if self.extensions:
            out["extensions"] = [e.to_json() for e in self.extensions]
        if self.delegation_enabled:
            out["delegation_enabled"] = True
        return out

    def subject(self) -> Subject:
        """The subject as cfssl's ``CertificateRequest.Name()`` builds it (per-type merge over ``names``)."""
        subject = Subject()
        for entry in self.names:
            entry.add_location(subject)
            if entry.E:
                subject.extra.append((OID_EMAIL_ADDRESS, entry.E))
            for oid, value in entry.OID.items():
                if value:
                    subject.extra.append((parse_oid(oid), value))
        subject.add(NameOID.COMMON_NAME, self.CN)
        subject.add(NameOID.SERIAL_NUMBER, self.serialnumber)
        return subject

    def validate_initca(self) -> None:
        """initca's subject check (5300 ``missing subject information``)."""
        if self.CN:
            return
        if self.names and all(n.has_location() for n in self.names):
            return
        raise CfsslError(Category.POLICY, Reason.INVALID_REQUEST, "missing subject information")
