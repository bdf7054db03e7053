"""Names an issuer may sign: its X.509 name constraints (our addition; cfssl does not look)."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from cfsslpy.csr import OID_EMAIL_ADDRESS, SANs, Subject, is_dns_name
from cfsslpy.errors import Category, CfsslError, Reason


def subject_emails(subject: Subject) -> list[str]:
    return [value for oid, value in subject.extra if oid == OID_EMAIL_ADDRESS]


def _dns_within(name: str, base: str) -> bool:
    """RFC 5280: ``name`` is ``base`` with zero or more labels added on the left."""
    return name == base or name.endswith("." + base)


def _constraint_matches(kind: str, name: Any, tree: x509.GeneralName, *, excluded: bool = False) -> bool | None:
    """Whether ``name`` (of ``kind``) lies in ``tree``; None when ``tree`` constrains another kind of name.

    For an excluded subtree, a wildcard DNS name also matches when it could stand for a name in the
    subtree (``*.example.com`` against an excluded ``bad.example.com``).
    """
    if kind == "dns" and isinstance(tree, x509.DNSName):
        base = tree.value.lower().lstrip(".")
        if _dns_within(name, base):
            return True
        if excluded and name.startswith("*.") and "." in base:
            return bool(base.split(".", 1)[1] == name[2:])
        return False
    if kind == "email" and isinstance(tree, x509.RFC822Name):
        base = tree.value.lower()
        domain = name.rsplit("@", 1)[-1]
        if "@" in base:
            return bool(name == base)
        if base.startswith("."):
            return bool(domain.endswith(base))
        return bool(domain == base)
    if kind == "ip" and isinstance(tree, x509.IPAddress):
        network = tree.value
        return (
            isinstance(network, (ipaddress.IPv4Network, ipaddress.IPv6Network))
            and name.version == network.version
            and bool(name in network)
        )
    if kind == "uri" and isinstance(tree, x509.UniformResourceIdentifier):
        host = (urlsplit(name).hostname or "").lower()
        base = tree.value.lower()
        if not host:
            return False  # a URI without a host (urn:...) cannot satisfy a host constraint
        if base.startswith("."):
            return bool(host.endswith(base))
        return bool(host == base)
    return None


def _check_constraint(nc: x509.NameConstraints, kind: str, name: Any) -> None:
    for tree in nc.excluded_subtrees or []:
        if _constraint_matches(kind, name, tree, excluded=True):
            raise CfsslError(Category.POLICY, Reason.INVALID_REQUEST, f"{name} is excluded by the CA's name constraints")
    permitted = [t for t in nc.permitted_subtrees or [] if _constraint_matches(kind, name, t) is not None]
    if permitted and not any(_constraint_matches(kind, name, t) for t in permitted):
        raise CfsslError(Category.POLICY, Reason.INVALID_REQUEST, f"{name} is not permitted by the CA's name constraints")


def check_name_constraints(nc: x509.NameConstraints | None, subject: Subject, sans: SANs) -> None:
    """Refuse names outside the issuer's X.509 name constraints ``nc`` (cfssl does not look).

    Checked: DNS, email, IP and URI SANs, emailAddress subject attributes (RFC 5280 §4.2.1.10) and a
    host-name-like CN when there is no DNS SAN (OpenSSL checks that CN too). Directory-name constraints
    are not evaluated.
    """
    if nc is None:
        return
    dns = list(sans.dns)
    cn = subject.common_name
    if cn and is_dns_name(cn) and "." in cn and not sans.dns:
        dns.append(cn)  # the CN is a host name the relying party may check
    for name in dns:
        _check_constraint(nc, "dns", name.rstrip(".").lower())
    for email in [*sans.email, *subject_emails(subject)]:
        _check_constraint(nc, "email", email.lower())
    for ip in sans.ip:
        _check_constraint(nc, "ip", ip)
    for uri in sans.uri:
        _check_constraint(nc, "uri", uri)
