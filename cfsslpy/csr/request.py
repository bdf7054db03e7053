"""cfssl's CSR JSON document ("certificate request"), decoded with Go's case-insensitive key matching (§3.6)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from cryptography.x509.oid import NameOID, ObjectIdentifier

from cfsslpy.csr.constraints import NameConstraints
from cfsslpy.csr.subject import OID_EMAIL_ADDRESS, Subject, parse_oid
from cfsslpy.errors import Category, CfsslError, PlainError, Reason
from cfsslpy.golang.decode import BOOL, STRING, STRINGS, GoStruct, GoType, Int, Map, Slice, Text, Where, decode, go_struct, struct_of
from cfsslpy.golang.json import JSONDecodeError, loads, parse_duration, type_error
from cfsslpy.keys import KeyRequest


@go_struct(
    "csr.Name",
    {"C": STRING, "ST": STRING, "L": STRING, "O": STRING, "OU": STRING, "E": STRING, "OID": Map(STRING, "map[string]string")},
)
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

    def go_unmarshaled(self) -> None:
        for oid in self.OID:
            parse_oid(oid)  # 9300 for a key that is not a dotted OID

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


@go_struct(
    "csr.CAConfig",
    {
        "pathlen": Int(whole_floats=True),
        "pathlenzero": BOOL,
        "expiry": STRING,
        "backdate": STRING,
        "name_constraints": struct_of(NameConstraints),
    },
)
@dataclass
class CAConfig:
    """The CSR ``ca`` section: pathlen, pathlenzero, expiry, backdate, plus our ``name_constraints``."""

    pathlen: int = 0
    pathlenzero: bool = False
    expiry: str = ""
    backdate: str = ""
    name_constraints: NameConstraints | None = None

    def go_unmarshaled(self) -> None:
        for text in (self.expiry, self.backdate):
            if text:
                try:
                    parse_duration(text)
                except ValueError as exc:
                    raise CfsslError(Category.POLICY, Reason.INVALID_POLICY, str(exc)) from None

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


class _ObjectIdentifier(GoType):
    """Go's ``asn1.ObjectIdentifier`` in JSON: an array of at least two non-negative integers."""

    go = "asn1.ObjectIdentifier"

    def decode(self, value: Any, where: Where) -> ObjectIdentifier:
        if not isinstance(value, list) or len(value) < 2 or not all(type(i) is int and i >= 0 for i in value):
            raise where.error(value, self.go)
        return ObjectIdentifier(".".join(str(i) for i in value))


def _extension_value(text: str, where: Where) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise JSONDecodeError("illegal base64 data in extension value") from None


@dataclass
class RawExtension:
    """A CSR JSON ``extensions`` entry: Go's pkix.Extension JSON (``id`` int array, base64 ``value``)."""

    oid: ObjectIdentifier
    critical: bool
    value: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "id": [int(p) for p in self.oid.dotted_string.split(".")],
            "critical": self.critical,
            "value": base64.b64encode(self.value).decode(),
        }


def _raw_extension(oid: ObjectIdentifier | None = None, critical: bool = False, value: bytes = b"") -> RawExtension:
    if oid is None:  # Go's empty OID, which no certificate can carry
        raise type_error(None, "Extension", "Id", "asn1.ObjectIdentifier")
    return RawExtension(oid, critical, value)


PKIX_EXTENSION = GoStruct(
    "pkix.Extension",
    {"Id": (_ObjectIdentifier(), "oid"), "Critical": (BOOL, "critical"), "Value": (Text("[]uint8", _extension_value), "value")},
    _raw_extension,
)


@go_struct(
    "csr.CertificateRequest",
    {
        "CN": STRING,
        "names": Slice(struct_of(NameEntry), "[]csr.Name"),
        "hosts": STRINGS,
        "key": struct_of(KeyRequest),
        "ca": struct_of(CAConfig),
        "serialnumber": STRING,
        "crl_url": STRING,
        "extensions": Slice(PKIX_EXTENSION, "[]pkix.Extension"),
        "delegation_enabled": BOOL,
    },
)
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
        """The decoded CSR JSON as Go reads it; ``null`` is refused, as cfssl's commands refuse it."""
        return decode(cls, obj, null=False)

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
