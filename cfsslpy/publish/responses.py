"""Signing the responses a publisher stores, and deciding when a stored one is still good enough.

A response is re-signed every run in the sense that its signature and producedAt always differ, so "did it
change" is decided on what it says: a stored response is kept while it is a successful response of the
current responder about the same certificate, with the certdb's status (and, when revoked, revocation time
and reason), and its nextUpdate is more than the refresh margin away. Otherwise a new one is signed.

Responses are built as :class:`cfsslpy.ocsp.OCSPSigner` builds them (thisUpdate = now truncated to the
hour, nextUpdate = thisUpdate + interval, reason 0 omitted, responder by name, the responder certificate
embedded unless it is the issuer), with the signer's key and hash. The checks ``OCSPSigner.sign`` makes on
every call are made once here instead: the responder's validity once per run, the certificate's issuer
name and signature once per certificate, when it is first published (no response of ours stored for it
yet): not once per CertID hash, nor when a stored response is kept or re-signed for a new status or
nextUpdate (the signature check costs as much as signing). Planting a response file that names our
responder would skip the check for a row of the certdb: that takes write access to both the tree and
the certdb, whose rows only the CA writes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from cfsslpy.certdb import CertificateRecord
from cfsslpy.errors import Category, CfsslError, Reason
from cfsslpy.ocsp import OCSPSigner, invalid_status
from cfsslpy.publish.naming import CERTID_HASHES
from cfsslpy.revocation import reason_code, reason_flag
from cfsslpy.x509util import issued_by, utc

_STATUS = {"good": ocsp.OCSPCertStatus.GOOD, "revoked": ocsp.OCSPCertStatus.REVOKED, "unknown": ocsp.OCSPCertStatus.UNKNOWN}


@dataclass(frozen=True)
class Wanted:
    """What the certdb says about one certificate, as a response must say it."""

    status: ocsp.OCSPCertStatus
    revoked_at: dt.datetime | None  # to the second; None unless revoked
    reason: x509.ReasonFlags | None  # None for reason 0 (Go omits it)

    @classmethod
    def of(cls, rec: CertificateRecord, now: dt.datetime) -> Wanted:
        """8200 for a status or reason the database should not hold."""
        status = _STATUS.get(rec.status)
        if status is None:
            raise invalid_status(f"invalid status {rec.status!r} in the database")
        if status is not ocsp.OCSPCertStatus.REVOKED:
            return cls(status, None, None)
        revoked_at = utc(rec.revoked_at or now).replace(microsecond=0)
        flag = reason_flag(rec.reason)
        return cls(status, revoked_at, None if rec.reason == 0 else flag)


class ResponseMaker:
    """Signs and judges responses for one issuer's certificates (see the module docstring)."""

    def __init__(self, signer: OCSPSigner, *, now: dt.datetime, margin: dt.timedelta) -> None:
        signer.check_valid(now)
        self.signer = signer
        self.now = now
        self.margin = margin
        self.this_update = now.replace(minute=0, second=0, microsecond=0)
        self.next_update = self.this_update + signer.interval
        der = signer.responder.public_bytes(serialization.Encoding.DER)
        self._embed = [] if der == signer.issuer.public_bytes(serialization.Encoding.DER) else [signer.responder]

    def check_certificate(self, cert: x509.Certificate) -> None:
        """8100 for a certificate of another issuer, 8200 for one its issuer did not sign."""
        if cert.issuer != self.signer.issuer.subject:
            raise CfsslError(Category.OCSP, Reason.ISSUER_MISMATCH)
        if not issued_by(cert, self.signer.issuer):
            raise invalid_status("the certificate's signature does not verify with the issuer's key")

    def sign(self, cert: x509.Certificate, wanted: Wanted, algorithm: str) -> bytes:
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response(
                cert=cert,
                issuer=self.signer.issuer,
                algorithm=CERTID_HASHES[algorithm](),
                cert_status=wanted.status,
                this_update=self.this_update,
                next_update=self.next_update,
                revocation_time=wanted.revoked_at,
                revocation_reason=wanted.reason,
            )
            .responder_id(ocsp.OCSPResponderEncoding.NAME, self.signer.responder)
        )
        if self._embed:
            builder = builder.certificates(self._embed)
        return builder.sign(self.signer.key, self.signer.hash).public_bytes(serialization.Encoding.DER)

    def judge(self, stored: bytes | None, serial: int, wanted: Wanted) -> Verdict:
        """Whether the stored response may be kept (see the module docstring), and whether it is one of ours."""
        if not stored:
            return Verdict(None, False)
        try:
            resp = ocsp.load_der_ocsp_response(stored)
            if resp.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
                return Verdict(None, False)
            ours = resp.serial_number == serial and resp.responder_name == self.signer.responder.subject
            next_update = resp.next_update_utc
            same = ours and resp.certificate_status is wanted.status and next_update is not None and next_update - self.now > self.margin
            if same and wanted.status is ocsp.OCSPCertStatus.REVOKED:
                same = resp.revocation_time_utc == wanted.revoked_at and reason_code(resp.revocation_reason) == reason_code(wanted.reason)
        except ValueError:  # unparseable (a crash left it empty, or someone edited it): sign again
            return Verdict(None, False)
        return Verdict(next_update if same else None, ours)


@dataclass(frozen=True)
class Verdict:
    """``keep_until``: the stored response's nextUpdate when it may be kept, else None. ``ours``: it is a
    response of this responder about this serial, so the certificate was checked when it was first
    published and a re-signing (new status, or nextUpdate near) need not check it again."""

    keep_until: dt.datetime | None
    ours: bool
