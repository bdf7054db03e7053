"""Small X.509 and time helpers shared by the core: a typed extension getter, the key identifiers, UTC and Go's
time text. Each existed in several copies; these are the one place they live now.

Nothing here raises a cfssl error: callers decide what an absent or malformed extension means.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature

E = TypeVar("E", bound=x509.ExtensionType)

Extended = x509.Certificate | x509.CertificateSigningRequest | x509.CertificateRevocationList


# The keyword arguments of x509.KeyUsage, in the extension's bit order (encipher_only and decipher_only
# mean something only with key_agreement).
KEY_USAGE_FIELDS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def extension(obj: Extended, cls: type[E], *, lenient: bool = False) -> E | None:
    """The value of the ``cls`` extension of a certificate, CSR or CRL, or None when it has none.

    A malformed extension list (cryptography raises ``ValueError``, or ``DuplicateExtension`` when an extension
    appears twice, as it parses the list) propagates, unless ``lenient``: then it counts as absent, which is
    what path building and pools want for certificates they only rank.
    """
    try:
        return obj.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None
    except (ValueError, x509.DuplicateExtension):
        if lenient:
            return None
        raise


def subject_key_id(cert: x509.Certificate, *, lenient: bool = False) -> bytes:
    """The SubjectKeyIdentifier of ``cert``, ``b""`` when it has none."""
    ski = extension(cert, x509.SubjectKeyIdentifier, lenient=lenient)
    return b"" if ski is None else bytes(ski.digest)


def authority_key_id(cert: x509.Certificate | x509.CertificateRevocationList, *, lenient: bool = False) -> bytes:
    """The keyIdentifier of the AuthorityKeyIdentifier of ``cert`` (or a CRL), ``b""`` when it has none."""
    aki = extension(cert, x509.AuthorityKeyIdentifier, lenient=lenient)
    return b"" if aki is None or aki.key_identifier is None else bytes(aki.key_identifier)


def key_identifier(cert: x509.Certificate) -> bytes:
    """The key identifier an issuer puts in what it signs (AKI of certificates and CRLs, OCSP's responder key
    hash): its SubjectKeyIdentifier, or when its certificate has none the RFC 5280 §4.2.1.2 method-1 hash
    (SHA-1 of the subjectPublicKey BIT STRING), as Go computes it."""
    return subject_key_id(cert) or bytes(x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest)


def utc(value: dt.datetime) -> dt.datetime:
    """Aware UTC; a naive time is taken as UTC (never as local time)."""
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def utc_seconds(value: dt.datetime) -> dt.datetime:
    """:func:`utc` without the fraction of a second (X.509 times have whole seconds)."""
    return utc(value).replace(microsecond=0)


def rfc3339(value: dt.datetime) -> str:
    """Go's ``time.RFC3339`` text in UTC, whole seconds (the fraction is cut, as Go's layout does):
    ``2026-01-02T03:04:05Z``, as in x509 validity messages and cfssl's bundle ``expires``. Naive values are UTC."""
    return go_time(utc_seconds(value))


def go_time(value: dt.datetime) -> str:
    """Go's JSON text of a ``time.Time`` in UTC (RFC 3339 with the fraction trimmed of trailing zeros, none when
    zero): ``2026-01-02T03:04:05Z``, ``2026-01-02T03:04:05.5Z``. Naive values are UTC."""
    stamp = utc(value)
    text = f"{stamp.year:04d}-{stamp.month:02d}-{stamp.day:02d}T{stamp.hour:02d}:{stamp.minute:02d}:{stamp.second:02d}"
    if stamp.microsecond:
        text += "." + f"{stamp.microsecond:06d}".rstrip("0")
    return text + "Z"


def b64(data: bytes) -> str:
    """Standard padded base64 text (Go's JSON encoding of ``[]byte``)."""
    return base64.b64encode(data).decode("ascii")


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer``'s name and key signed ``cert`` (cryptography's ``verify_directly_issued_by``); any
    mismatch, unsupported key type or bad signature is ``False``, never an exception."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
