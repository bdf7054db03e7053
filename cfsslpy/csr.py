"""cfssl's CSR JSON ("certificate request") and everything that turns it into a PKCS#10 request.

* :class:`CertificateRequest` decodes the JSON with Go's case-insensitive key matching (reference §3.6).
* :meth:`Subject.to_name` encodes a subject the way Go's ``pkix.Name`` does (reference §7.2): canonical order
  C, ST, L, street, postalCode, O, OU, CN, serialNumber, then other attributes each in its own RDN; all values
  of one type in one multi-valued RDN; PrintableString when possible, else UTF8String. Unlike Go, attributes
  whose X.520/PKCS#9 syntax is fixed keep it (emailAddress and domainComponent IA5String; serialNumber,
  dnQualifier and countryName PrintableString) and RFC 5280 upper bounds are enforced: a value that cannot
  be encoded correctly is an error (9300) instead of a certificate that strict parsers reject.
* :func:`classify_hosts` sorts ``hosts`` into IP, email, URI and DNS SANs (reference §7.3), with stricter
  validation than cfssl: a host that is none of those is an error instead of a malformed DNS SAN.
* :func:`generate_csr` signs a request with the key's cfssl signature algorithm.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID, ObjectIdentifier

from cfsslpy.certinfo import csr_info
from cfsslpy.errors import Category, CfsslError, PlainError, Reason
from cfsslpy.gojson import JSONDecodeError, fold_keys, format_duration, loads, parse_duration, type_error
from cfsslpy.keys import KeyRequest, PrivateKey, is_dsa, key_description, signature_hash

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


def _csr_error(message: str) -> CfsslError:
    return CfsslError(Category.CSR, Reason.BAD_REQUEST, message)


# ---------------------------------------------------------------------------------------------------------
# Subjects


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


def _attribute(oid: ObjectIdentifier, value: str) -> x509.NameAttribute[str]:
    label = _ATTRIBUTE_NAMES.get(oid, oid.dotted_string)
    if oid == NameOID.COUNTRY_NAME and (len(value) != 2 or _string_type(value) != _ASN1Type.PrintableString):
        raise _csr_error(f"invalid country name {value!r}: it must be a 2-letter ISO 3166 code")
    bound = _UPPER_BOUND.get(oid)
    if bound is not None and len(value) > bound:
        raise _csr_error(f"subject attribute {label} is longer than {bound} characters (RFC 5280 upper bound)")
    kind = _FIXED_TYPE.get(oid) or _string_type(value)
    if kind == _ASN1Type.PrintableString and _string_type(value) != _ASN1Type.PrintableString:
        raise _csr_error(f"subject attribute {label} {value!r} must use PrintableString characters (A-Z a-z 0-9 space '()+,-./:=?)")
    if kind == _ASN1Type.IA5String and not value.isascii():
        raise _csr_error(f"subject attribute {label} {value!r} must be ASCII (IA5String)")
    try:
        return x509.NameAttribute(oid, value, kind)
    except ValueError as exc:
        raise _csr_error(f"invalid subject attribute {oid.dotted_string}: {exc}") from exc


# ---------------------------------------------------------------------------------------------------------
# CSR JSON


def parse_oid(text: str) -> ObjectIdentifier:
    parts = text.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts):
        raise _csr_error(f"invalid OID {text!r}: expected dotted decimal such as 1.2.3.4")
    try:
        return ObjectIdentifier(text)
    except ValueError as exc:
        raise _csr_error(f"invalid OID {text!r}: {exc}") from exc


def _string(obj: dict[str, Any], key: str, struct: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise type_error(value, struct, key, "string")
    return value


def _bool(obj: dict[str, Any], key: str, struct: str) -> bool:
    value = obj.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise type_error(value, struct, key, "bool")
    return value


def _int(obj: dict[str, Any], key: str, struct: str) -> int:
    value = obj.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise type_error(value, struct, key, "int")
    return int(value)


def _string_list(obj: dict[str, Any], key: str, struct: str) -> list[str] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise type_error(value, struct, key, "[]string")
    for item in value:
        if not isinstance(item, str):
            raise type_error(item, struct, key, "string")
    return list(value)


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
            C=_string(f, "C", "Name"),
            ST=_string(f, "ST", "Name"),
            L=_string(f, "L", "Name"),
            O=_string(f, "O", "Name"),
            OU=_string(f, "OU", "Name"),
            E=_string(f, "E", "Name"),
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

    def has_location(self) -> bool:
        """initca's subject check: at least one non-blank C/ST/L/O/OU."""
        return any(v.strip() for v in (self.C, self.ST, self.L, self.O, self.OU))


@dataclass
class NameConstraints:
    """Our addition: X.509 name constraints for a CA, in the CSR ``ca`` section or a CA profile.

    ``{"permitted": {"dns": [...], "ip": ["10.0.0.0/8"], "email": [...], "uri": [...]}, "excluded": {...},
    "critical": true}``. DNS entries are domain suffixes (``example.com`` or ``.example.com``), IP entries
    CIDR ranges, email entries a mailbox, a domain or ``.domain``, URI entries host suffixes (RFC 5280 §4.2.1.10).
    """

    permitted: dict[str, list[str]] = field(default_factory=dict)
    excluded: dict[str, list[str]] = field(default_factory=dict)
    critical: bool = True

    KINDS = ("dns", "ip", "email", "uri")

    @classmethod
    def from_json(cls, obj: Any, struct: str = "CAConfig") -> NameConstraints:
        if not isinstance(obj, dict):
            raise type_error(obj, struct, "name_constraints", "NameConstraints")
        f = fold_keys(obj, ["permitted", "excluded", "critical"])
        nc = cls(critical=True if f.get("critical") is None else _bool(f, "critical", "NameConstraints"))
        for part in ("permitted", "excluded"):
            section = f.get(part)
            if section is None:
                continue
            if not isinstance(section, dict):
                raise type_error(section, "NameConstraints", part, "object")
            kinds = fold_keys(section, cls.KINDS)
            unknown = [k for k in section if k.casefold() not in cls.KINDS]
            if unknown:
                raise JSONDecodeError(f"name_constraints.{part}: unknown kind {unknown[0]!r} (use dns, ip, email, uri)")
            values: dict[str, list[str]] = {}
            for kind in cls.KINDS:
                items = _string_list(kinds, kind, "NameConstraints")
                if items:
                    values[kind] = items
            setattr(nc, part, values)
        nc.to_extension()  # validate every entry now, not at signing time
        return nc

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.permitted:
            out["permitted"] = self.permitted
        if self.excluded:
            out["excluded"] = self.excluded
        if not self.critical:
            out["critical"] = False
        return out

    def is_empty(self) -> bool:
        return not any(self.permitted.values()) and not any(self.excluded.values())

    def to_extension(self) -> x509.NameConstraints | None:
        if self.is_empty():
            return None
        permitted = _subtrees(self.permitted)
        excluded = _subtrees(self.excluded)
        return x509.NameConstraints(permitted_subtrees=permitted or None, excluded_subtrees=excluded or None)


def _subtrees(kinds: dict[str, list[str]]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for value in kinds.get("dns", []):
        name = value[1:] if value.startswith(".") else value
        if not name or not _DNS_NAME.match(name) or name.startswith("*"):
            raise _csr_error(f"invalid name constraint DNS entry {value!r}")
        out.append(x509.DNSName(name))
    for value in kinds.get("ip", []):
        try:
            out.append(x509.IPAddress(ipaddress.ip_network(value, strict=True)))
        except ValueError as exc:
            raise _csr_error(f"invalid name constraint IP range {value!r}: {exc}") from exc
    for value in kinds.get("email", []):
        if not value or not value.isascii() or " " in value:
            raise _csr_error(f"invalid name constraint email entry {value!r}")
        out.append(x509.RFC822Name(value))
    for value in kinds.get("uri", []):
        host = value[1:] if value.startswith(".") else value
        if not host or not _DNS_NAME.match(host):
            raise _csr_error(f"invalid name constraint URI entry {value!r} (a host or .domain)")
        out.append(x509.UniformResourceIdentifier(value))
    return out


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
            pathlen=_int(f, "pathlen", "CAConfig"),
            pathlenzero=_bool(f, "pathlenzero", "CAConfig"),
            expiry=_string(f, "expiry", "CAConfig"),
            backdate=_string(f, "backdate", "CAConfig"),
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
        if self.pathlen > 0:
            return self.pathlen
        if self.pathlen == 0 and self.pathlenzero:
            return 0
        return None


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
        return cls(ObjectIdentifier(".".join(str(i) for i in ident)), _bool(f, "critical", "Extension"), raw)

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
            CN=_string(f, "CN", "CertificateRequest"),
            names=[NameEntry.from_json(n) for n in names_raw or []],
            hosts=_string_list(f, "hosts", "CertificateRequest"),
            key=KeyRequest.from_json(f.get("key")),
            ca=None if ca_raw is None else CAConfig.from_json(ca_raw),
            serialnumber=_string(f, "serialnumber", "CertificateRequest"),
            crl_url=_string(f, "crl_url", "CertificateRequest"),
            extensions=[RawExtension.from_json(e) for e in ext_raw or []],
            delegation_enabled=_bool(f, "delegation_enabled", "CertificateRequest"),
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
            subject.add(NameOID.COUNTRY_NAME, entry.C)
            subject.add(NameOID.STATE_OR_PROVINCE_NAME, entry.ST)
            subject.add(NameOID.LOCALITY_NAME, entry.L)
            subject.add(NameOID.ORGANIZATION_NAME, entry.O)
            subject.add(NameOID.ORGANIZATIONAL_UNIT_NAME, entry.OU)
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


# ---------------------------------------------------------------------------------------------------------
# Hosts / SANs


@dataclass
class SANs:
    """Subject alternative names in Go's emission order: DNS, email, IP, URI."""

    dns: list[str] = field(default_factory=list)
    email: list[str] = field(default_factory=list)
    ip: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = field(default_factory=list)
    uri: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.dns or self.email or self.ip or self.uri)

    def general_names(self) -> list[x509.GeneralName]:
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in self.dns]
        names += [x509.RFC822Name(e) for e in self.email]
        names += [x509.IPAddress(i) for i in self.ip]
        names += [x509.UniformResourceIdentifier(u) for u in self.uri]
        return names

    def hosts(self) -> list[str]:
        """Back to cfssl ``hosts`` strings (IPs, DNS, emails, URIs: the order gencsr -cert uses)."""
        return [str(i) for i in self.ip] + list(self.dns) + list(self.email) + list(self.uri)

    @classmethod
    def from_extension(cls, san: x509.SubjectAlternativeName) -> SANs:
        out = cls()
        for name in san:
            if isinstance(name, x509.DNSName):
                out.dns.append(name.value)
            elif isinstance(name, x509.RFC822Name):
                out.email.append(name.value)
            elif isinstance(name, x509.IPAddress) and isinstance(name.value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
                out.ip.append(name.value)
            elif isinstance(name, x509.UniformResourceIdentifier):
                out.uri.append(name.value)
        return out


_DNS_LABEL = r"(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)"
_DNS_NAME = re.compile(rf"^(?:\*\.)?(?:{_DNS_LABEL}\.)*{_DNS_LABEL}\.?$")
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_ATOM = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_ADDR_SPEC = re.compile(rf'^((?:{_DOT_ATOM})|(?:"(?:[^"\\]|\\.)*"))@((?:{_DOT_ATOM})|(?:\[[^\[\]\\]*\]))$')
_ANGLE = re.compile(r"^(?:[^<>]*?)\s*<([^<>]+)>\s*$")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(.*)$", re.DOTALL)
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def is_dns_name(name: str) -> bool:
    """A syntactically valid DNS name (LDH labels plus ``_``, an optional ``*.`` prefix and trailing dot)."""
    return bool(_DNS_NAME.match(name)) and len(name.rstrip(".")) <= 253


def parse_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Go's ``net.ParseIP`` (no zones, no brackets); IPv4-mapped IPv6 becomes IPv4, as Go marshals it."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id is not None:
            return None
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
    return ip


def parse_email(host: str) -> str | None:
    """Go's ``net/mail.ParseAddress`` for the forms cfssl users write: ``a@b`` or ``Name <a@b>``."""
    match = _ANGLE.match(host)
    candidate = match.group(1).strip() if match else host
    return candidate if _ADDR_SPEC.match(candidate) else None


def looks_like_uri(host: str) -> bool:
    """A host with a URI scheme (``spiffe://...``, ``urn:...``, ``https://...``).

    Go's ``url.ParseRequestURI`` (which cfssl uses) also takes ``example.com:443`` and ``localhost:8080`` as
    scheme-plus-opaque URIs; we do not: a scheme followed only by digits is a host:port mistake.
    """
    match = _SCHEME.match(host)
    if match is None:
        return False
    rest = match.group(2)
    if not rest or rest.isdigit():
        return False
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in host):
        return False
    # RFC 3986: "%" only as a percent-encoding (this also keeps "fe80::1%eth0" out)
    return _BAD_PERCENT.search(host) is None


def classify_hosts(hosts: list[str], category: Category = Category.CSR) -> SANs:
    """Sort hosts into SANs, in cfssl's order of tests: IP, email, URI, DNS (reference §7.3).

    A host that is not ASCII, or is none of the four kinds, is refused with ``category`` + 300
    (cfssl panics on non-ASCII and emits malformed DNS SANs for the rest; see README).
    """
    sans = SANs()
    for host in hosts:
        if not host:
            continue
        ip = parse_ip(host)
        if ip is not None:
            sans.ip.append(ip)
            continue
        if not host.isascii():
            raise CfsslError(
                category,
                Reason.BAD_REQUEST,
                f"host {host!r} is not ASCII: write internationalised names in their xn-- (punycode) form",
            )
        email = parse_email(host)
        if email is not None:
            sans.email.append(email)
            continue
        if looks_like_uri(host):
            sans.uri.append(host)
            continue
        if is_dns_name(host):
            sans.dns.append(host)
            continue
        raise CfsslError(category, Reason.BAD_REQUEST, f"host {host!r} is not a valid DNS name, IP address, email address or URI")
    return sans


# ---------------------------------------------------------------------------------------------------------
# Generating a CSR


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
                raise _csr_error(f"duplicate extension {ext.oid.dotted_string} in request")
            seen.add(ext.oid)
            builder = builder.add_extension(x509.UnrecognizedExtension(ext.oid, ext.value), critical=ext.critical)
        csr = builder.sign(key, signature_hash(key))
    except CfsslError:
        raise
    except ValueError as exc:
        raise _csr_error(str(exc)) from exc
    try:
        _ = csr.extensions  # a raw extension whose value does not parse must fail here, not when signing
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        raise _csr_error(f"invalid extension value in request: {exc}") from None
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


# ---------------------------------------------------------------------------------------------------------
# Extracting a request from an existing certificate (renewca, gencsr -cert)


def extract_request(cert: x509.Certificate) -> CertificateRequest:
    """Rebuild CSR JSON from a certificate as cfssl's ``ExtractCertificateRequest`` does (reference §3.6).

    ``names`` entry *i* gets the *i*-th C, O, OU, L and ST value; hosts are IPs, DNS, emails, URIs; a CA
    certificate yields a ``ca`` section with its validity length and path length.
    """
    subject = Subject.from_certificate(cert)
    lists = [
        subject.get(oid)
        for oid in (
            NameOID.COUNTRY_NAME,
            NameOID.ORGANIZATION_NAME,
            NameOID.ORGANIZATIONAL_UNIT_NAME,
            NameOID.LOCALITY_NAME,
            NameOID.STATE_OR_PROVINCE_NAME,
        )
    ]
    count = max((len(v) for v in lists), default=0)
    names = []
    for i in range(count):
        c, o, ou, loc, st = (v[i] if i < len(v) else "" for v in lists)
        names.append(NameEntry(C=c, O=o, OU=ou, L=loc, ST=st))
    serials = subject.get(NameOID.SERIAL_NUMBER)
    req = CertificateRequest(CN=subject.common_name, names=names, serialnumber=serials[0] if serials else "")
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        hosts = SANs.from_extension(san).hosts()
    except x509.ExtensionNotFound:
        hosts = []
    req.hosts = hosts or None
    algo, size = ("unknown", 0) if is_dsa(cert) else key_description(cert.public_key())
    if algo != "unknown":
        req.key = KeyRequest(algo, size if algo != "ed25519" else 0)
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        bc = None
    if bc is not None and bc.ca:
        lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
        ns = int(lifetime.total_seconds()) * 1_000_000_000
        req.ca = CAConfig(
            pathlen=bc.path_length if bc.path_length is not None else -1,
            pathlenzero=bc.path_length == 0,
            expiry=format_duration(ns),
        )
        try:
            nc = cert.extensions.get_extension_for_class(x509.NameConstraints)
            req.ca.name_constraints = _name_constraints_from_extension(nc.value, nc.critical)
        except x509.ExtensionNotFound:
            pass
    return req


def _name_constraints_from_extension(ext: x509.NameConstraints, critical: bool) -> NameConstraints:
    def kinds(trees: Any) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name in trees or []:
            if isinstance(name, x509.DNSName):
                out.setdefault("dns", []).append(name.value)
            elif isinstance(name, x509.IPAddress):
                out.setdefault("ip", []).append(str(name.value))
            elif isinstance(name, x509.RFC822Name):
                out.setdefault("email", []).append(name.value)
            elif isinstance(name, x509.UniformResourceIdentifier):
                out.setdefault("uri", []).append(name.value)
        return out

    return NameConstraints(kinds(ext.permitted_subtrees), kinds(ext.excluded_subtrees), critical)
