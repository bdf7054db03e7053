"""The issuer: a signing key and, except when self-signing, its CA certificate, checked when it is loaded."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from cryptography import x509

from cfsslpy.capair import load_ca_pair, require_valid
from cfsslpy.errors import Category, CfsslError, Reason
from cfsslpy.keys import PrivateKey, SignatureHash, certificate_key_matches, check_supported_key, signature_hash
from cfsslpy.x509util import extension, key_identifier

log = logging.getLogger("cfsslpy.signer")  # one logger for the package, as when it was one module


@dataclass
class Issuer:
    """A signing key and, except when self-signing, its CA certificate.

    Neither changes once the issuer is made: what every signature reads from them (the subject, the path
    length, the name constraints, the key identifier, the hash, the validity period) is worked out once.
    """

    key: PrivateKey
    cert: x509.Certificate | None = None

    def __post_init__(self) -> None:
        check_supported_key(self.key)
        signature_hash(self.key)  # refuses weak RSA signing keys early
        if self.cert is None:
            return
        if not certificate_key_matches(self.key, self.cert):
            raise CfsslError(Category.PRIVATE_KEY, Reason.KEY_MISMATCH)
        bc = extension(self.cert, x509.BasicConstraints)
        if bc is not None and not bc.ca:
            log.error("the -ca certificate is not a CA (basicConstraints CA:FALSE)")
            raise CfsslError(Category.POLICY, Reason.INVALID_REQUEST, "the CA certificate is not a CA (basicConstraints CA:FALSE)")
        ku = extension(self.cert, x509.KeyUsage)
        if ku is not None and not ku.key_cert_sign:
            raise CfsslError(Category.POLICY, Reason.INVALID_REQUEST, "the CA certificate's key usage does not allow certificate signing")
        if bc is None:
            log.warning("the CA certificate has no basicConstraints extension; treating it as a CA")
        try:
            require_valid(self.cert, "CA")
        except CfsslError as exc:  # said at load time (serve starts); signing refuses it
            log.warning("%s", exc.message)

    @cached_property
    def path_length(self) -> int | None:
        """The issuer's pathLenConstraint (None when unlimited or self-signing)."""
        if self.cert is None:
            return None
        bc = extension(self.cert, x509.BasicConstraints)
        return None if bc is None else bc.path_length

    @cached_property
    def name_constraints(self) -> x509.NameConstraints | None:
        return None if self.cert is None else extension(self.cert, x509.NameConstraints)

    @cached_property
    def subject(self) -> x509.Name | None:
        """The CA certificate's subject (what it signs as issuer); None when self-signing."""
        return None if self.cert is None else self.cert.subject

    @cached_property
    def hash_algorithm(self) -> SignatureHash:
        """What the key signs with (:func:`cfsslpy.keys.signature_hash`)."""
        return signature_hash(self.key)

    @cached_property
    def _validity(self) -> tuple[float, float] | None:
        """The CA certificate's notBefore and notAfter as Unix times."""
        if self.cert is None:
            return None
        return self.cert.not_valid_before_utc.timestamp(), self.cert.not_valid_after_utc.timestamp()

    def valid_at(self, now: dt.datetime | None = None) -> bool:
        """Whether the CA certificate is within its validity period at ``now`` (default: the current time),
        as :func:`cfsslpy.capair.require_valid` judges it (a naive ``now`` is UTC); True when self-signing.
        A quick test: callers call ``require_valid`` for the error when it is False."""
        if self._validity is None:
            return True
        if now is None:
            current = time.time()
        else:
            current = (now.replace(tzinfo=dt.timezone.utc) if now.tzinfo is None else now).timestamp()
        not_before, not_after = self._validity
        return not_before <= current <= not_after

    def key_identifier(self) -> bytes:
        """The issuer's SKI, or (when its certificate lacks one) the RFC 5280 method-1 hash of its key."""
        assert self.cert is not None
        return self._key_identifier

    @cached_property
    def _key_identifier(self) -> bytes:
        assert self.cert is not None
        return key_identifier(self.cert)


def load_issuer(ca_spec: str, key_spec: str, *, stdin: Any = None, environ: Any = None) -> Issuer:
    """Read and check ``-ca`` and ``-ca-key`` (paths, ``file:``, ``env:``; cfssl's error codes).

    An unreadable certificate is a plain error, an unreadable key 1001 (cfssl wraps it so); a bad
    certificate 1002/1003; a bad key 2002/2003/2100 (:func:`cfsslpy.capair.load_ca_pair`); then the checks
    of :class:`Issuer`, a mismatched pair 2300 first.
    """
    pair = load_ca_pair(ca_spec, key_spec, category=Category.CERTIFICATE, stdin=stdin, environ=environ)
    return Issuer(key=pair.key, cert=pair.cert)
