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

The package, bottom up:

* :mod:`~cfsslpy.csr.subject`: :class:`Subject` (``pkix.Name``), its encoding, and Go's RDN reader for
  subjects cryptography cannot hold;
* :mod:`~cfsslpy.csr.hosts`: :class:`SANs` and the classification of ``hosts``;
* :mod:`~cfsslpy.csr.constraints`: our :class:`NameConstraints` for CAs;
* :mod:`~cfsslpy.csr.request`: the CSR JSON document (:class:`CertificateRequest`, ``names``, ``ca``,
  ``extensions``);
* :mod:`~cfsslpy.csr.generate`: building and signing the PKCS#10 request;
* :mod:`~cfsslpy.csr.extract`: rebuilding CSR JSON from a certificate (renewca, gencsr -cert).
"""

from __future__ import annotations

from cfsslpy.csr.constraints import NameConstraints, name_constraints_from_extension
from cfsslpy.csr.extract import extract_request
from cfsslpy.csr.generate import basic_constraints_extension, csr_pem, generate_csr, new_key_and_csr
from cfsslpy.csr.hosts import SANs, classify_hosts, is_dns_name, looks_like_uri, parse_email, parse_ip
from cfsslpy.csr.request import CAConfig, CertificateRequest, NameEntry, RawExtension, path_len_constraint
from cfsslpy.csr.subject import OID_DELEGATION_USAGE, OID_EMAIL_ADDRESS, STANDARD_ORDER, Subject, parse_oid

__all__ = [
    "basic_constraints_extension",
    "CAConfig",
    "CertificateRequest",
    "classify_hosts",
    "csr_pem",
    "extract_request",
    "generate_csr",
    "is_dns_name",
    "looks_like_uri",
    "name_constraints_from_extension",
    "NameConstraints",
    "NameEntry",
    "new_key_and_csr",
    "OID_DELEGATION_USAGE",
    "OID_EMAIL_ADDRESS",
    "parse_email",
    "parse_ip",
    "parse_oid",
    "path_len_constraint",
    "RawExtension",
    "SANs",
    "STANDARD_ORDER",
    "Subject",
]
