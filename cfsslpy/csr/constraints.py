"""Our addition: X.509 name constraints for a CA (the CSR ``ca`` section, or a CA signing profile)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from cfsslpy.csr.hosts import DNS_NAME
from cfsslpy.csr.subject import csr_error
from cfsslpy.golang.decode import BOOL, STRINGS, GoType, Where, decode, go_struct
from cfsslpy.golang.json import JSONDecodeError, fold_keys


class _Subtrees(GoType):
    """``permitted`` / ``excluded``: ``{"dns": [...], "ip": [...], "email": [...], "uri": [...]}``, kinds
    matched case-insensitively; any other kind is refused (a typo must not widen what the CA may sign)."""

    go = "object"

    def decode(self, value: Any, where: Where) -> dict[str, list[str]]:
        if not isinstance(value, dict):
            raise where.error(value, self.go)
        unknown = [k for k in value if k.casefold() not in KINDS]
        if unknown:
            part = where.path.rpartition(".")[2]
            raise JSONDecodeError(f"name_constraints.{part}: unknown kind {unknown[0]!r} (use dns, ip, email, uri)")
        values: dict[str, list[str]] = {}
        for kind, items in fold_keys(value, KINDS).items():
            if items is not None and (decoded := STRINGS.decode(items, where.field("NameConstraints", kind))):
                values[kind] = decoded
        return {kind: values[kind] for kind in KINDS if kind in values}


KINDS = ("dns", "ip", "email", "uri")


@go_struct("NameConstraints", {"permitted": _Subtrees(), "excluded": _Subtrees(), "critical": BOOL})
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

    KINDS = KINDS

    @classmethod
    def from_json(cls, obj: Any, struct: str = "CAConfig") -> NameConstraints:
        """The ``name_constraints`` object of a ``struct`` (the CSR's ``CAConfig``, a ``SigningProfile``)."""
        return decode(cls, obj, at=Where(struct, "name_constraints"), null=False)

    def go_unmarshaled(self) -> None:
        self.to_extension()  # validate every entry now, not at signing time

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
