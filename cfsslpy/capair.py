"""One loader for a CA certificate and its private key (cfssl's ``-ca`` / ``-ca-key`` pair).

``sign``/``gencert``/``serve`` (:func:`cfsslpy.signer.load_issuer`), ``crl``
(:func:`cfsslpy.crl.load_crl_issuer`) and the OCSP commands (:func:`cfsslpy.ocsp.load_signer`, whose key
belongs to a responder certificate read between the two) all read their pair here, in cfssl's order:

1. every certificate input, then the key input, is read (``-``, path, ``file:``, ``env:``): an unreadable
   certificate is the plain error of :func:`cfsslpy.inputs.read_input`, an unreadable key the caller's
   ``category`` with reason 1 (cfssl wraps it as ``certificate`` read failure, 1001, in every command);
   a ``pkcs11:`` key URI is not read yet;
2. every certificate is parsed (1002/1003 with cfssl's fixed messages);
3. the key is parsed (2002/2003/2200; an encrypted PEM is decrypted with ``CFSSL_CA_PK_PASSWORD``, else
   2100) or, for a ``pkcs11:`` URI, found on its token (2001/2200/2500).

Nothing else is checked here: whether the key matches, whether the certificate is a CA that may sign
certificates, CRLs or OCSP responses, is each caller's rule (and code).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509

from cfsslpy.errors import Category, CfsslError, PlainError, Reason
from cfsslpy.inputs import read_input
from cfsslpy.keys import PrivateKey, is_pkcs11_uri, load_key_spec, load_private_key
from cfsslpy.pem import parse_certificate_pem

if TYPE_CHECKING:
    from cfsslpy.inputs import Stdin


@dataclass(frozen=True)
class CAPair:
    """A CA certificate, a private key, and the certificate that key belongs to (the CA's own, or for OCSP
    the responder's)."""

    cert: x509.Certificate
    key: PrivateKey
    key_cert: x509.Certificate


def load_ca_pair(
    ca_spec: str,
    key_spec: str,
    *,
    category: Category,
    key_cert_spec: str | None = None,
    stdin: Stdin | None = None,
    environ: Mapping[str, str] | None = None,
) -> CAPair:
    """Read and parse ``ca_spec`` and ``key_spec`` (and ``key_cert_spec``, the certificate of the key when it
    is not the CA's) in cfssl's order; see the module docstring for the errors. ``category`` is the
    category of the error for an unreadable key; ``environ`` supplies ``env:`` inputs and
    ``CFSSL_CA_PK_PASSWORD`` (default: the process environment).
    """
    specs = [ca_spec] if key_cert_spec is None else [ca_spec, key_cert_spec]
    pems = [read_input(spec, stdin=stdin, environ=environ) for spec in specs]
    try:
        key_pem = None if is_pkcs11_uri(key_spec) else read_input(key_spec, stdin=stdin, environ=environ)
    except PlainError as exc:
        raise CfsslError(category, Reason.READ_FAILED, exc.message) from None
    certs = [parse_certificate_pem(pem) for pem in pems]
    key = load_private_key(key_pem, environ=environ) if key_pem is not None else load_key_spec(key_spec, environ=environ)
    return CAPair(cert=certs[0], key=key, key_cert=certs[-1])


__all__ = ["CAPair", "load_ca_pair"]


def require_valid(cert: x509.Certificate, role: str, now: dt.datetime | None = None) -> None:
    """Refuse to sign with ``cert`` outside its validity period: 1211 (cfssl's code for Go's "certificate has
    expired or is not yet valid") naming the certificate and the bound. cfssl signs CRLs and OCSP responses
    with an expired CA or responder; relying parties then reject them (RFC 5280 §6.3.3, RFC 6960 §4.2.2.2),
    and a response about a certificate signed by a key whose certificate has lapsed vouches for nothing."""
    current = now or dt.datetime.now(dt.timezone.utc)
    current = current.replace(tzinfo=dt.timezone.utc) if current.tzinfo is None else current.astimezone(dt.timezone.utc)
    subject = cert.subject.rfc4514_string() or "(empty subject)"
    if current > cert.not_valid_after_utc:
        bound = f"expired at {cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"
    elif current < cert.not_valid_before_utc:
        bound = f"is not valid before {cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ}"
    else:
        return
    raise CfsslError(
        Category.CERTIFICATE,
        Reason.VERIFY_FAILED + 11,  # cfssl's Expired reason (1211)
        f"the {role} certificate ({subject}) {bound} (now {current:%Y-%m-%dT%H:%M:%SZ}): it cannot sign",
    )
