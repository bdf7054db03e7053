"""Validity: cfssl's FillTemplate rule for notBefore and notAfter (reference §7.1), cut to the issuer's life."""

from __future__ import annotations

import datetime as dt
import logging

from cryptography import x509

from cfsslpy.config import SigningProfile
from cfsslpy.errors import Category, CfsslError, Reason
from cfsslpy.golang.json import MINUTE
from cfsslpy.signer.request import SignRequest
from cfsslpy.x509util import rfc3339, utc

log = logging.getLogger("cfsslpy.signer")  # one logger for the package, as when it was one module


def round_minute(now: dt.datetime) -> dt.datetime:
    """Go's ``Time.Round(time.Minute)``: to the nearest minute, halves up."""
    base = now.replace(second=0, microsecond=0)
    if now.second >= 30:  # now - base >= 30 s
        base += _MINUTE
    return base


_MINUTE = dt.timedelta(minutes=1)


X509_EARLIEST = dt.datetime(1950, 1, 1, tzinfo=dt.timezone.utc)
X509_LATEST = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)


def validity_period(
    profile: SigningProfile, default: SigningProfile, req: SignRequest, now: dt.datetime | None
) -> tuple[dt.datetime, dt.datetime]:
    """cfssl's FillTemplate validity rule (reference §7.1).

    notBefore: the request's, else the profile's ``not_before``, else round(now, 1 min) - backdate (5 min
    when unset); notAfter: the request's, else the profile's ``not_after``, else notBefore + expiry (the
    profile's, else the default profile's).
    """
    expiry = profile.expiry or default.expiry
    not_before = req.not_before
    if not_before is None:
        if profile.not_before is not None:
            not_before = profile.not_before
        else:
            backdate = profile.backdate or 5 * MINUTE
            current = utc(now or dt.datetime.now(dt.timezone.utc))
            not_before = round_minute(current) - dt.timedelta(microseconds=backdate // 1000)
    not_before = utc(not_before)
    not_after = req.not_after
    if not_after is None:
        not_after = profile.not_after if profile.not_after is not None else not_before + dt.timedelta(microseconds=expiry // 1000)
    not_after = utc(not_after)
    if not_before < X509_EARLIEST or not_after > X509_LATEST:
        raise CfsslError(
            Category.POLICY,
            Reason.INVALID_POLICY,
            f"validity {not_before:%Y-%m-%dT%H:%M:%SZ} .. {not_after:%Y-%m-%dT%H:%M:%SZ} is outside what X.509 can encode (1950-9999)",
        )
    if not_after <= not_before:
        raise CfsslError(Category.POLICY, Reason.INVALID_POLICY, "the certificate's not_after is not after its not_before")
    return not_before, not_after


def within_issuer(issuer: x509.Certificate, not_before: dt.datetime, not_after: dt.datetime) -> dt.datetime:
    """``not_after``, cut to the issuer's notAfter (with a WARNING) when it would outlive its issuer.

    A certificate valid after its issuer expires is unusable for that part of its life, and a relying party
    that checks only the leaf's dates is misled. There is no cfssl configuration key to refuse instead, so
    none is invented: a profile that must not be shortened should use an ``expiry`` within the CA's life.
    """
    limit = issuer.not_valid_after_utc
    if not_after <= limit:
        return not_after
    if not_before >= limit:
        raise CfsslError(
            Category.POLICY,
            Reason.INVALID_POLICY,
            f"the certificate's not_before {rfc3339(not_before)} is not before the CA certificate's notAfter {rfc3339(limit)}",
        )
    log.warning(
        "the certificate would be valid until %s, after the CA certificate expires: its notAfter is cut to %s",
        rfc3339(not_after),
        rfc3339(limit),
    )
    return limit
