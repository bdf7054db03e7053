"""Go's ``VerifyHostname`` and its messages, and the names a certificate is for."""

from __future__ import annotations

import ipaddress

from cryptography import x509
from cryptography.x509.oid import NameOID

from cfsslpy.errors import Category, CfsslError, Reason
from cfsslpy.x509util import extension


def dns_names(cert: x509.Certificate) -> list[str]:
    san = extension(cert, x509.SubjectAlternativeName, lenient=True)
    return [] if san is None else list(san.get_values_for_type(x509.DNSName))


def _ip_addresses(cert: x509.Certificate) -> list[str]:
    san = extension(cert, x509.SubjectAlternativeName, lenient=True)
    return [] if san is None else [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def common_name(cert: x509.Certificate) -> str:
    values = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[-1].value) if values else ""


def leaf_hostnames(cert: x509.Certificate) -> list[str]:
    """CN and DNS SANs, deduplicated (cfssl's order is Go's random map order; ours is CN first, then SAN order)."""
    out: list[str] = []
    for name in [common_name(cert), *dns_names(cert)]:
        if name and name not in out:
            out.append(name)
    return out


def _match_hostname(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if not pattern or not host:
        return False
    p_labels, h_labels = pattern.split("."), host.split(".")
    if len(p_labels) != len(h_labels):
        return False
    for i, (p, h) in enumerate(zip(p_labels, h_labels, strict=True)):
        if i == 0 and p == "*":
            continue
        if p != h:
            return False
    return True


def verify_hostname(cert: x509.Certificate, host: str) -> None:
    """Go's ``cert.VerifyHostname(host)`` (SANs only, as Go >= 1.15): mismatch -> CfsslError 1200 with Go's text."""
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        ips = _ip_addresses(cert)
        if any(ipaddress.ip_address(candidate) == ip for candidate in ips):
            return
        if not ips:
            raise CfsslError(
                Category.CERTIFICATE,
                Reason.VERIFY_FAILED,
                f"x509: cannot validate certificate for {host} because it doesn't contain any IP SANs",
            )
        valid = ", ".join(ips)
    else:
        names = dns_names(cert)
        if any(_match_hostname(name, host) for name in names):
            return
        has_san = extension(cert, x509.SubjectAlternativeName) is not None
        if not has_san and _match_hostname(common_name(cert), host):
            raise CfsslError(
                Category.CERTIFICATE, Reason.VERIFY_FAILED, "x509: certificate relies on legacy Common Name field, use SANs instead"
            )
        valid = ", ".join(names)
    if not valid:
        raise CfsslError(
            Category.CERTIFICATE, Reason.VERIFY_FAILED, f"x509: certificate is not valid for any names, but wanted to match {host}"
        )
    raise CfsslError(Category.CERTIFICATE, Reason.VERIFY_FAILED, f"x509: certificate is valid for {valid}, not {host}")
