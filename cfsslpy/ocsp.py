"""OCSP responses: signing one (``ocspsign``, API ``ocspsign``), refreshing the certdb's (``ocsprefresh``),
exporting them (``ocspdump``). ``ocspserve`` answers with what :class:`OCSPSigner` produces.

**Response** (reference §4.5, golang.org/x/crypto/ocsp as cfssl uses it): a BasicOCSPResponse with one
SingleResponse; responderID by name (the responder's subject); CertID hashed with SHA-1 unless
``issuer_hash`` asks for SHA-256/384/512; thisUpdate = now truncated to the hour; nextUpdate = thisUpdate +
interval (96h by default); a revoked status carries the revocation time and, unless it is 0
(unspecified), the reason; signed by the responder key (RSA -> SHA-256 whatever its size, ECDSA by curve,
Ed25519 pure, which cfssl cannot do); the responder certificate is embedded unless it is the issuer's.
producedAt is the signing time to the second: cryptography's builder sets it and offers no way to
truncate it to the minute as Go does (RFC 6960 requires neither).

**Security checks** cfssl does not make: the responder must be the issuer itself or a certificate the
issuer signed with the id-kp-OCSPSigning extended key usage (RFC 6960 §4.2.2.2) -- a response signed by
anyone else is rejected by every client, so we refuse to produce it -- the responder key must match
the responder certificate (2300), and neither the responder nor the issuer certificate may be expired or
not yet valid when a response is signed (1211; cfssl signs with both). A delegated responder without id-pkix-ocsp-nocheck is logged as a
warning (clients would then try to check the responder's own revocation status).
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from cfsslpy.capair import load_ca_pair, require_valid
from cfsslpy.certdb import STATUSES, CertDB, CertificateRecord, OCSPRecord, key_id_hex, with_aki
from cfsslpy.errors import Category, CfsslError, PlainError, Reason
from cfsslpy.golang.json import parse_duration
from cfsslpy.inputs import Stdin
from cfsslpy.keys import (
    PrivateKey,
    certificate_key_matches,
    check_supported_key,
    crl_hash,
    is_dsa,
)
from cfsslpy.revocation import parse_reason, parse_revoked_at, reason_flag
from cfsslpy.x509util import extension, issued_by, key_identifier, utc

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = dt.timedelta(hours=96)
REFRESH_BATCH = 500

# newest cfssl's issuer_hash values; cfssl's handler also takes MD5, which its OCSP library then refuses
ISSUER_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA1": hashes.SHA1,
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}

_STATUS = {"good": ocsp.OCSPCertStatus.GOOD, "revoked": ocsp.OCSPCertStatus.REVOKED, "unknown": ocsp.OCSPCertStatus.UNKNOWN}


def invalid_status(message: str | None = None) -> CfsslError:
    return CfsslError(Category.OCSP, Reason.INVALID_STATUS, message)


def parse_status(text: str) -> str:
    """``good`` / ``revoked`` / ``unknown`` (cfssl compares case-sensitively); 8200 otherwise."""
    if text not in _STATUS:
        raise invalid_status()
    return text


def parse_interval(text: str | dt.timedelta) -> dt.timedelta:
    """A Go duration (``96h``) as a positive timedelta; PlainError with Go's parse message otherwise."""
    if isinstance(text, dt.timedelta):
        interval = text
    else:
        try:
            interval = dt.timedelta(microseconds=parse_duration(text) // 1000)
        except ValueError as exc:
            raise PlainError(str(exc)) from None
    if interval <= dt.timedelta(0):
        raise PlainError(f"invalid OCSP interval {text!s}: must be positive")
    return interval


# -----------------------------------------------------------------------------------------------------------
# signing


@dataclass(frozen=True)
class OCSPSignRequest:
    """What to say about one certificate (cfssl's ocsp.SignRequest)."""

    certificate: x509.Certificate
    status: str = "good"  # good | revoked | unknown, else 8200 "Invalid revocation status"
    reason: int = 0
    revoked_at: dt.datetime | None = None  # None with status revoked = now
    issuer_hash: str = "SHA1"  # SHA1 | SHA256 | SHA384 | SHA512 (newest cfssl's issuer_hash)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _same_key(a: x509.Certificate, b: x509.Certificate) -> bool:
    if is_dsa(a) or is_dsa(b):
        return False  # a responder's key is never DSA (cfssl loads none), and DSA key objects are deprecated
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    return a.public_key().public_bytes(serialization.Encoding.DER, fmt) == b.public_key().public_bytes(serialization.Encoding.DER, fmt)


def _verification_error(issuer: x509.Certificate) -> str:
    """Go's text for a bad certificate signature (newest cfssl wraps it as 8200)."""
    if is_dsa(issuer):
        return "x509: cannot verify signature: algorithm unimplemented"  # Go >= 1.16 verifies no DSA signature
    issuer_key = issuer.public_key()
    if isinstance(issuer_key, rsa.RSAPublicKey):
        return "crypto/rsa: verification error"
    if isinstance(issuer_key, ec.EllipticCurvePublicKey):
        return "x509: ECDSA verification failure"
    if isinstance(issuer_key, ed25519.Ed25519PublicKey):
        return "x509: Ed25519 verification failure"
    return "x509: signature verification failure"


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    return not is_dsa(issuer) and issued_by(cert, issuer)


class OCSPSigner:
    """Signs OCSP responses for the certificates of one issuer with one responder certificate and key.

    The triple is checked on construction: the key must be the responder's (2300), and the responder must
    be the issuer itself (the same certificate, or the same subject and key) or a certificate issued by it
    carrying id-kp-OCSPSigning (8100 otherwise). ``interval`` is the validity of each response.
    """

    def __init__(
        self, issuer: x509.Certificate, responder: x509.Certificate, key: PrivateKey, interval: dt.timedelta = DEFAULT_INTERVAL
    ) -> None:
        check_supported_key(key)
        self.hash = crl_hash(key)
        if not certificate_key_matches(key, responder):
            raise CfsslError(Category.PRIVATE_KEY, Reason.KEY_MISMATCH)
        if interval <= dt.timedelta(0):
            raise PlainError("the OCSP interval must be positive")
        self.issuer = issuer
        self.responder = responder
        self.key = key
        self.interval = interval
        self.delegated = not (_der(responder) == _der(issuer) or (responder.subject == issuer.subject and _same_key(responder, issuer)))
        if self.delegated:
            self._check_delegate()
        self._embed = [responder] if _der(responder) != _der(issuer) else []
        self._key_hash = key_identifier(issuer).hex()

    def _check_delegate(self) -> None:
        responder, issuer = self.responder, self.issuer
        subject = responder.subject.rfc4514_string()
        if not _signed_by(responder, issuer):
            raise CfsslError(
                Category.OCSP,
                Reason.ISSUER_MISMATCH,
                f"the responder certificate ({subject}) is neither the CA certificate nor issued by it: "
                "it cannot sign OCSP responses for this CA",
            )
        eku = extension(responder, x509.ExtendedKeyUsage)
        if eku is None or ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
            raise CfsslError(
                Category.OCSP,
                Reason.ISSUER_MISMATCH,
                f"the responder certificate ({subject}) lacks the OCSP Signing extended key usage: "
                "clients would reject its responses (RFC 6960 4.2.2.2)",
            )
        if extension(responder, x509.OCSPNoCheck) is None:
            log.warning(
                "the OCSP responder certificate (%s) lacks id-pkix-ocsp-nocheck: clients may try to check its revocation status", subject
            )

    @property
    def key_hash(self) -> str:
        """Lowercase hex of the issuer's key identifier: the certdb AKI of the certificates it issued."""
        return self._key_hash

    @property
    def issuer_aki(self) -> str:
        return self._key_hash

    def check_valid(self, now: dt.datetime | None = None) -> None:
        """1211 when the responder or the issuer certificate is expired or not yet valid at ``now``: clients
        reject what such a responder signs (RFC 6960 §4.2.2.2), and cfssl signs it anyway."""
        require_valid(self.responder, "OCSP responder", now)
        if self.delegated:
            require_valid(self.issuer, "CA", now)

    def sign(self, req: OCSPSignRequest, *, now: dt.datetime | None = None) -> bytes:
        """The DER OCSPResponse for ``req``; 8100 for a certificate of another issuer, 8200 for a bad
        signature, status or reason, 1211 outside the responder's (or issuer's) validity."""
        cert = req.certificate
        if cert.issuer != self.issuer.subject:
            raise CfsslError(Category.OCSP, Reason.ISSUER_MISMATCH)
        if not _signed_by(cert, self.issuer):
            raise invalid_status(_verification_error(self.issuer))
        status = parse_status(req.status)
        algorithm = ISSUER_HASHES.get(req.issuer_hash.upper())
        if algorithm is None:
            raise CfsslError(Category.OCSP, Reason.UNKNOWN, "Unsupported hash algorithm in request")
        current = utc(now or dt.datetime.now(dt.timezone.utc))
        self.check_valid(current)
        this_update = current.replace(minute=0, second=0, microsecond=0)
        revoked_at: dt.datetime | None = None
        reason: x509.ReasonFlags | None = None
        if status == "revoked":
            revoked_at = utc(req.revoked_at or current).replace(microsecond=0)
            flag = reason_flag(req.reason)
            reason = None if req.reason == 0 else flag  # Go omits reason 0 (unspecified)
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response(
                cert=cert,
                issuer=self.issuer,
                algorithm=algorithm(),
                cert_status=_STATUS[status],
                this_update=this_update,
                next_update=this_update + self.interval,
                revocation_time=revoked_at,
                revocation_reason=reason,
            )
            .responder_id(ocsp.OCSPResponderEncoding.NAME, self.responder)
        )
        if self._embed:
            builder = builder.certificates(self._embed)
        response = builder.sign(self.key, self.hash)
        return response.public_bytes(serialization.Encoding.DER)

    def sign_record(self, rec: CertificateRecord, *, now: dt.datetime | None = None) -> bytes:
        """A response for a certdb row: its certificate, status, reason and revocation time."""
        revoked_at = rec.revoked_at
        if rec.status == "revoked" and revoked_at is None:
            log.warning("certificate %s is revoked but has no revocation time; using the current time", rec.serial)
        return self.sign(
            OCSPSignRequest(certificate=rec.certificate(), status=rec.status, reason=rec.reason, revoked_at=revoked_at), now=now
        )


def load_signer(
    ca: str,
    responder: str,
    responder_key: str,
    interval: str | dt.timedelta = "96h",
    *,
    stdin: Stdin | None = None,
    environ: Mapping[str, str] | None = None,
) -> OCSPSigner:
    """Read the issuer (``-ca``: path, ``file:``, ``env:``), responder certificate and key, in cfssl's order
    and with its errors (``ocsp.NewSignerFromFile``, both versions): an unreadable issuer or responder is a
    plain error, an unreadable key 1001 (cfssl wraps it as a certificate read failure); then 1002/1003 for
    certificates, 2002/2003 for the key."""
    period = parse_interval(interval)
    pair = load_ca_pair(ca, responder_key, category=Category.CERTIFICATE, key_cert_spec=responder, stdin=stdin, environ=environ)
    return OCSPSigner(pair.cert, pair.key_cert, pair.key, period)


def check_against_db(db: CertDB, req: OCSPSignRequest) -> None:
    """8200 when the certdb records ``req``'s certificate (same serial and AKI; cfssl 2016 rows resolved
    through their PEM) with another status than ``req`` asks for: a GOOD response for a revoked certificate,
    or a REVOKED or UNKNOWN one for a good certificate. A certificate the database does not know has nothing
    to contradict. cfssl signs whatever status it is sent; serve's unauthenticated ``ocspsign`` uses this."""
    parse_status(req.status)
    cert = req.certificate
    aki = key_id_hex(cert)
    for row in db.certificates_by_serial(str(cert.serial_number)):
        rec = with_aki(row)
        if rec.aki != aki or rec.status == req.status:
            continue
        since = f" since {rec.revoked_at:%Y-%m-%dT%H:%M:%SZ}" if rec.is_revoked and rec.revoked_at is not None else ""
        raise invalid_status(
            f"status {req.status} contradicts the certificate database, which records serial {rec.serial} as {rec.status}{since}"
        )


def sign_request(
    cert: x509.Certificate, status: str = "good", reason: str = "", revoked_at: str = "now", *, now: dt.datetime | None = None
) -> OCSPSignRequest:
    """An :class:`OCSPSignRequest` from command-line strings (cfssl's ocspsign): the reason and time are
    only parsed for a revoked status; an empty reason is unspecified (0)."""
    if status != "revoked":
        return OCSPSignRequest(certificate=cert, status=status)
    code = parse_reason(reason)
    return OCSPSignRequest(certificate=cert, status=status, reason=code, revoked_at=parse_revoked_at(revoked_at, now=now))


# -----------------------------------------------------------------------------------------------------------
# refresh and dump


@dataclass
class RefreshReport:
    """What one ``ocsprefresh`` did: responses written, rows without a signer (by AKI), rows that failed."""

    refreshed: int = 0
    no_signer: int = 0
    failed: int = 0
    unknown_issuers: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.refreshed + self.no_signer + self.failed


def refresh(
    db: CertDB,
    signers: Sequence[OCSPSigner],
    *,
    now: dt.datetime | None = None,
    batch: int = REFRESH_BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> RefreshReport:
    """Sign a fresh response for every unexpired certificate in ``db`` and store it (cfssl's ocsprefresh).

    Each row goes to the signer whose issuer key identifier equals its AKI (cfssl 2016 rows have an empty
    AKI column; it is resolved from the certificate). Responses are stored ``batch`` at a time, one
    transaction each, with expiry = now + the signer's interval. Rows of issuers without a signer are
    counted; a row that cannot be signed (bad PEM, status or reason in the database) is logged and counted.
    Error 8100 when there were rows and none could be given to a signer. ``progress(done, total)`` is called
    after each row (signing on a hardware token can take minutes for thousands of rows).
    """
    current = utc(now or dt.datetime.now(dt.timezone.utc))
    for each in signers:  # an expired responder fails the run instead of failing every row
        each.check_valid(current)
    by_aki = {s.issuer_aki: s for s in signers}
    report = RefreshReport()
    pending: list[OCSPRecord] = []
    rows = db.unexpired_certificates(now=current)
    for index, row in enumerate(rows):
        if progress is not None:
            progress(index, len(rows))
        rec = with_aki(row)
        signer = by_aki.get(rec.aki)
        if signer is None:
            report.no_signer += 1
            report.unknown_issuers[rec.aki] = report.unknown_issuers.get(rec.aki, 0) + 1
            continue
        try:
            if rec.status not in STATUSES:
                raise invalid_status(f"invalid status {rec.status!r} in the database")
            body = signer.sign_record(rec, now=current)
        except CfsslError as exc:
            report.failed += 1
            report.errors.append(f"serial {rec.serial}: {exc.message}")
            log.error("cannot sign an OCSP response for serial %s (AKI %s): %s", rec.serial, rec.aki, exc.message)
            continue
        # stored under the certificate's real AKI (as cfssl does), where ocspserve looks it up
        pending.append(OCSPRecord(serial=rec.serial, aki=rec.aki, body=body, expiry=current + signer.interval))
        if len(pending) >= batch:
            db.upsert_ocsp_many(pending)
            report.refreshed += len(pending)
            pending = []
    if pending:
        db.upsert_ocsp_many(pending)
        report.refreshed += len(pending)
    if progress is not None and rows:
        progress(len(rows), len(rows))
    for aki, count in sorted(report.unknown_issuers.items()):
        log.warning("%d certificate(s) of issuer %s skipped: no -ca given for it", count, aki or "(no AKI)")
    if report.total and not report.refreshed and report.no_signer:
        raise CfsslError(
            Category.OCSP,
            Reason.ISSUER_MISMATCH,
            f"none of the {report.total} unexpired certificates in the database was issued by the given CA(s)",
        )
    return report


def dump(db: CertDB, *, now: dt.datetime | None = None) -> str:
    """Every unexpired response as one standard-base64 line (cfssl's ocspdump; an ``ocspserve -responses`` file)."""
    return responses_text(rec.body for rec in db.unexpired_ocsp(now=now))


def responses_text(responses: Iterable[bytes]) -> str:
    """A responses file for :class:`~cfsslpy.ocspresponder.FileSource`: one standard-base64 DER response per
    line (as ``ocspdump``). It lives here, not beside its reader, because the responder depends on this module."""
    return "".join(base64.b64encode(der).decode("ascii") + "\n" for der in responses)
