"""Go's ``pkix.Name``: a distinguished name read with Go's rules, printed two ways (cfssl's ``certinfo.Name``
for certificates, Go's own struct for the CSR dump)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cfsslpy.certinfo.der import TAG_OID, TAG_SET, TLV, ASN1Error, children, expect, go_any, parse_oid, sequence

# pkix.Name's known attributes: OID arc under 2.5.4 -> (field, multi-valued)
_NAME_FIELDS: dict[int, tuple[str, bool]] = {
    3: ("CommonName", False),
    5: ("SerialNumber", False),
    6: ("Country", True),
    7: ("Locality", True),
    8: ("Province", True),
    9: ("StreetAddress", True),
    10: ("Organization", True),
    11: ("OrganizationalUnit", True),
    17: ("PostalCode", True),
}


@dataclass
class Name:
    """Go's ``pkix.Name`` after ``FillFromRDNSequence``."""

    attributes: list[tuple[list[int], Any]]  # Names: (type, value) in RDN order
    single: dict[str, str]
    multi: dict[str, list[str]]


def parse_name(tlv: TLV) -> Name:
    name = Name([], {}, {})
    for rdn in sequence(tlv, "RDNSequence", 0):
        if not rdn.is_universal(TAG_SET):
            raise ASN1Error("asn1: structure error: tags don't match (17) RelativeDistinguishedNameSET")
        for atv in children(rdn.content):
            parts = sequence(atv, "AttributeTypeAndValue", 2)
            oid = parse_oid(expect(parts[0], TAG_OID, "AttributeTypeAndValue.Type").content)
            value = go_any(parts[1])
            name.attributes.append((oid, value))
            if not isinstance(value, str) or len(oid) != 4 or oid[:3] != [2, 5, 4] or oid[3] not in _NAME_FIELDS:
                continue
            field, multi = _NAME_FIELDS[oid[3]]
            if multi:
                name.multi.setdefault(field, []).append(value)
            else:
                name.single[field] = value  # the last one wins, as in Go
    return name


_CERTINFO_NAME_KEYS = (
    ("common_name", "CommonName"),
    ("serial_number", "SerialNumber"),
    ("country", "Country"),
    ("organization", "Organization"),
    ("organizational_unit", "OrganizationalUnit"),
    ("locality", "Locality"),
    ("province", "Province"),
    ("street_address", "StreetAddress"),
    ("postal_code", "PostalCode"),
)


def certinfo_name(name: Name) -> dict[str, Any]:
    """cfssl's ``certinfo.Name``: every field omitempty, multi-values joined with ``,``."""
    out: dict[str, Any] = {}
    for key, field in _CERTINFO_NAME_KEYS:
        value = name.single.get(field) if field in ("CommonName", "SerialNumber") else ",".join(name.multi.get(field, []))
        if value:
            out[key] = value
    if name.attributes:
        out["names"] = [value for _, value in name.attributes]
    return out


def pkix_name(name: Name) -> dict[str, Any]:
    """Go's ``pkix.Name`` struct as encoding/json prints it (nil slices are null)."""

    def multi(field: str) -> list[str] | None:
        return name.multi.get(field)

    return {
        "Country": multi("Country"),
        "Organization": multi("Organization"),
        "OrganizationalUnit": multi("OrganizationalUnit"),
        "Locality": multi("Locality"),
        "Province": multi("Province"),
        "StreetAddress": multi("StreetAddress"),
        "PostalCode": multi("PostalCode"),
        "SerialNumber": name.single.get("SerialNumber", ""),
        "CommonName": name.single.get("CommonName", ""),
        "Names": [{"Type": oid, "Value": value} for oid, value in name.attributes] or None,
        "ExtraNames": None,
    }
