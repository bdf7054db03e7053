"""``certinfo``: describe a certificate or a certificate request the way cfssl does (reference §1.3).

Two output shapes, both plain JSON-ready dicts whose key order is cfssl's:

* a certificate becomes cfssl's ``certinfo.Certificate`` object (:func:`certificate_info`): subject and issuer
  (omitempty fields, multi-values joined with ``,``, ``names`` = every attribute value in RDN order), the
  decimal serial, DNS-then-IP ``sans``, RFC 3339 UTC validity, the signature name, the key identifiers and
  the re-encoded PEM;
* a CSR becomes a dump of Go's ``x509.CertificateRequest`` struct as Go 1.19 (the toolchain of the reference
  build) marshals it (:func:`csr_info`): byte fields as base64, algorithms as Go enum integers, the public key
  as Go's key struct, the subject as ``pkix.Name``, SAN fields parsed with Go's rules.

cryptography validates certificates and supplies serial and validity; names, SANs, key identifiers, algorithm
identifiers and the whole CSR are read with a small DER walker that applies Go's ``encoding/asn1`` and
``crypto/x509`` rules, so odd attribute types, string encodings and URIs come out (or fail) as Go prints them.

The package, bottom up:

* Go's ``strconv.Quote`` and ``url.Parse`` come from :mod:`cfsslpy.golang` (``strconv``, ``url``);
* :mod:`~cfsslpy.certinfo.der`: the DER walker, and Go's decoding of an ASN.1 value into ``interface{}``;
* :mod:`~cfsslpy.certinfo.names`, :mod:`~cfsslpy.certinfo.algorithms`, :mod:`~cfsslpy.certinfo.extensions`:
  ``pkix.Name``, algorithm identifiers, ``pkix.Extension`` and subject alternative names as Go reads them;
* :mod:`~cfsslpy.certinfo.certificate`, :mod:`~cfsslpy.certinfo.csr`: the two descriptions (``-cert``,
  ``-serial``; ``-csr``);
* :mod:`~cfsslpy.certinfo.dial`: ``-domain``'s TLS fetch (through :mod:`cfsslpy.net`, which owns serve's :class:`FetchPolicy`).

Deliberate differences from cfssl (each is noted where it happens):

* key identifiers use the newest cfssl format, ``%02X`` per byte; the 2016 build printed ``%X`` (``0B`` as ``B``);
* the CSR signature is not checked (as cfssl), but a CSR that does not parse is a typed 9003 error where cfssl
  returns Go's untyped ``asn1: ...`` text, and a dial failure is a typed 6000 error where cfssl returns Go's
  untyped ``dial tcp ...`` text (the message keeps Go's wording);
* bytes of a T61String or a %-escaped URI that are not UTF-8 become U+FFFD characters, which Go's JSON encoder
  writes as the escape ``\\ufffd``: the decoded JSON is the same;
* PKCS#7 bundles are read with cryptography (in :mod:`cfsslpy.pem`), which also accepts bundles without a CRL
  field (``openssl crl2pkcs7 -nocrl``) that cfssl's own PKCS#7 parser rejects with 1003.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cfsslpy.certinfo.algorithms import SIGNATURE_NAMES, UNKNOWN_SIGNATURE, go_signature_algorithm, private_key_is_dsa
from cfsslpy.certinfo.certificate import (
    NOT_FOUND,
    CertFields,
    certificate_fields,
    certificate_info,
    describe_certificate_pem,
    describe_serial,
    format_key_id,
    signature_name,
    subject_public_key_info,
)
from cfsslpy.certinfo.csr import csr_info, describe_csr_pem
from cfsslpy.certinfo.der import ASN1Error, go_any, parse_oid, read_tlv
from cfsslpy.certinfo.extensions import go_ip_string

if TYPE_CHECKING:
    from cfsslpy.certinfo.dial import (
        TLS_ERRORS,
        Connect,
        FetchPolicy,
        describe_domain,
        fetch_certificate,
        is_ip,
        join_host_port,
        split_host_port,
    )

# The dialling names load cfsslpy.net (outbound HTTP, TLS, proxies) on first use: every command that loads a
# key imports this package (keys -> private_key_is_dsa), and only certinfo -domain, serve and the bundler dial.
_DIAL_NAMES = frozenset(
    {"TLS_ERRORS", "Connect", "FetchPolicy", "describe_domain", "fetch_certificate", "is_ip", "join_host_port", "split_host_port"}
)


def __getattr__(name: str) -> Any:
    if name not in _DIAL_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from cfsslpy.certinfo import dial

    value = getattr(dial, name)
    globals()[name] = value
    return value


__all__ = [
    "ASN1Error",
    "CertFields",
    "certificate_fields",
    "certificate_info",
    "Connect",
    "csr_info",
    "describe_certificate_pem",
    "describe_csr_pem",
    "describe_domain",
    "describe_serial",
    "fetch_certificate",
    "FetchPolicy",
    "format_key_id",
    "go_any",
    "go_ip_string",
    "go_signature_algorithm",
    "is_ip",
    "join_host_port",
    "NOT_FOUND",
    "parse_oid",
    "private_key_is_dsa",
    "read_tlv",
    "subject_public_key_info",
    "signature_name",
    "SIGNATURE_NAMES",
    "split_host_port",
    "TLS_ERRORS",
    "UNKNOWN_SIGNATURE",
]

# The names these had when certinfo was one module, still imported by the bundler, csr.py and the tests.
_ASN1Error = ASN1Error
_certificate_fields = certificate_fields
_go_any = go_any
_oid = parse_oid
_read_tlv = read_tlv
