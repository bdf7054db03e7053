"""Our addition: X.509 name constraints for a CA (the CSR ``ca`` section, or a CA signing profile)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from cfsslpy.csr.fields import bool_field, string_list_field
from cfsslpy.csr.hosts import DNS_NAME
from cfsslpy.csr.subject import csr_error
from cfsslpy.gojson import JSONDecodeError, fold_keys, type_error


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
        nc = cls(critical=True if f.get("critical") is None else bool_field(f, "critical", "NameConstraints"))
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
                items = string_list_field(kinds, kind, "NameConstraints")
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
        if not name or not DNS_NAME.match(name) or name.startswith("*"):
            raise csr_error(f"invalid name constraint DNS entry {value!r}")
        out.append(x509.DNSName(name))
    for value in kinds.get("ip", []):
        try:
            out.append(x509.IPAddress(ipaddress.ip_network(value, strict=True)))
        except ValueError as exc:
            raise csr_error(f"invalid name constraint IP range {value!r}: {exc}") from exc
    for value in kinds.get("email", []):
        if not value or not value.isascii() or " " in value:
            raise csr_error(f"invalid name constraint email entry {value!r}")
        out.append(x509.RFC822Name(value))
    for value in kinds.get("uri", []):
        host = value[1:] if value.startswith(".") else value
        if not host or not DNS_NAME.match(host):
            raise csr_error(f"invalid name constraint URI entry {value!r} (a host or .domain)")
        out.append(x509.UniformResourceIdentifier(value))
    return out


def name_constraints_from_extension(ext: x509.NameConstraints, critical: bool) -> NameConstraints:
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
