"""Hosts: cfssl's ``hosts`` sorted into IP, email, URI and DNS SANs (reference §7.3).

Validation is stricter than cfssl's: a host that is none of those is an error instead of a malformed DNS SAN.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from cryptography import x509

from cfsslpy.errors import Category, CfsslError, Reason


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
DNS_NAME = re.compile(rf"^(?:\*\.)?(?:{_DNS_LABEL}\.)*{_DNS_LABEL}\.?$")
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_ATOM = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_ADDR_SPEC = re.compile(rf'^((?:{_DOT_ATOM})|(?:"(?:[^"\\]|\\.)*"))@((?:{_DOT_ATOM})|(?:\[[^\[\]\\]*\]))$')
_ANGLE = re.compile(r"^(?:[^<>]*?)\s*<([^<>]+)>\s*$")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(.*)$", re.DOTALL)
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def is_dns_name(name: str) -> bool:
    """A syntactically valid DNS name (LDH labels plus ``_``, an optional ``*.`` prefix and trailing dot)."""
    return bool(DNS_NAME.match(name)) and len(name.rstrip(".")) <= 253


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
