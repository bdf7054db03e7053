"""Rebuilding CSR JSON from an existing certificate (renewca, gencsr -cert)."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

from cfsslpy.csr.constraints import name_constraints_from_extension
from cfsslpy.csr.hosts import SANs
from cfsslpy.csr.request import CAConfig, CertificateRequest, NameEntry
from cfsslpy.csr.subject import Subject
from cfsslpy.golang.json import format_duration
from cfsslpy.keys import KeyRequest, is_dsa, key_description
from cfsslpy.x509util import extension


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
    san = extension(cert, x509.SubjectAlternativeName)
    hosts = [] if san is None else SANs.from_extension(san).hosts()
    req.hosts = hosts or None
    algo, size = ("unknown", 0) if is_dsa(cert) else key_description(cert.public_key())
    if algo != "unknown":
        req.key = KeyRequest(algo, size if algo != "ed25519" else 0)
    bc = extension(cert, x509.BasicConstraints)
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
            req.ca.name_constraints = name_constraints_from_extension(nc.value, nc.critical)
        except x509.ExtensionNotFound:
            pass
    return req
