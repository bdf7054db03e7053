"""Each issuer's CRL, published under a stable name, re-made only when it must be.

A CRL number is a promise to relying parties that a higher number is a newer list (RFC 5280 §5.2.3), and
:func:`cfsslpy.crl.crl_from_db` hands out a new one on every call (above every number the certdb gave
this CA, and at least the time in microseconds). A publisher running every few minutes would burn through
numbers and, worse, make every cache and CDN fetch a "new" CRL that says nothing new. So the CRL on disk is
kept while all of these hold, and re-made (with a new number) as soon as one does not:

* it is a CRL of this CA (issuer name and a signature that verifies with the CA's key);
* it lists exactly the certdb's revoked, unexpired certificates of this CA, with the same revocation
  times (to the second) and reasons (as ``crl_from_db`` would list them);
* its nextUpdate is more than the margin away (half the lifetime by default).

Files: ``crl/<key id>.crl`` (DER) and ``crl/<key id>.pem`` (PEM), the key id being the CA's subject key
identifier in lowercase hex, the certdb's AKI of its certificates: stable across runs and CA re-issues
with the same key.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cfsslpy.certdb import CertDB
from cfsslpy.crl import check_crl_issuer, crl_from_db, encode
from cfsslpy.errors import Error
from cfsslpy.keys import PrivateKey
from cfsslpy.ocsp import OCSPSigner
from cfsslpy.publish.files import read_if_exists, write_if_changed
from cfsslpy.revocation import reason_code
from cfsslpy.x509util import key_identifier, rfc3339, utc, utc_seconds

log = logging.getLogger(__name__)

CRL_DIR = "crl"
_NOT_IN_A_CRL = (7, 8)  # 7 is unassigned; removeFromCRL (8) belongs in delta CRLs (crl_from_db lists them reasonless)


@dataclass(frozen=True)
class CRLIssuer:
    """A CA that publishes a CRL: its certificate, its key, and the CRL's lifetime."""

    cert: x509.Certificate
    key: PrivateKey
    lifetime: dt.timedelta


def responder_crl_issuer(signer: OCSPSigner, lifetime: dt.timedelta) -> CRLIssuer | None:
    """The CRL issuer when no CA key is given: the OCSP responder's key, when the responder is the CA itself
    and may sign CRLs; None (logged) for a delegated responder or a CA that cannot sign CRLs."""
    subject = signer.issuer.subject.rfc4514_string()
    if signer.delegated:
        log.warning("no CRL for %s: its responder is a delegate; give the CA key with -ca-key to publish its CRL", subject)
        return None
    try:
        check_crl_issuer(signer.issuer, signer.key)
    except Error as exc:
        log.warning("no CRL for %s: %s", subject, exc.message)
        return None
    return CRLIssuer(signer.issuer, signer.key, lifetime)


@dataclass(frozen=True)
class PublishedCRL:
    """What the index says of one CRL."""

    aki: str
    der_path: str
    pem_path: str
    number: int
    next_update: dt.datetime
    lifetime: dt.timedelta
    remade: bool

    def to_json(self) -> dict[str, object]:
        return {"der": self.der_path, "pem": self.pem_path, "number": str(self.number), "nextUpdate": rfc3339(self.next_update)}


def crl_paths(aki: str) -> tuple[str, str]:
    return f"{CRL_DIR}/{aki}.crl", f"{CRL_DIR}/{aki}.pem"


def _wanted_entries(db: CertDB, aki: str, now: dt.datetime) -> set[tuple[int, dt.datetime | None, int]]:
    entries: set[tuple[int, dt.datetime | None, int]] = set()
    for rec in db.revoked_unexpired(aki=aki, now=now):
        try:
            serial = int(rec.serial, 10)
        except ValueError:
            serial = -1  # crl_from_db refuses it: never equal to a stored CRL, so it is re-made (and fails loudly)
        reason = 0 if rec.reason in _NOT_IN_A_CRL or rec.reason not in range(11) else rec.reason
        entries.add((serial, None if rec.revoked_at is None else utc_seconds(rec.revoked_at), reason))
    return entries


def _stored_entries(crl: x509.CertificateRevocationList) -> set[tuple[int, dt.datetime | None, int]]:
    entries: set[tuple[int, dt.datetime | None, int]] = set()
    for revoked in crl:
        try:
            flag = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
        except x509.ExtensionNotFound:
            flag = None
        entries.add((revoked.serial_number, revoked.revocation_date_utc, reason_code(flag)))
    return entries


def _same_entries(stored: set[tuple[int, dt.datetime | None, int]], wanted: set[tuple[int, dt.datetime | None, int]]) -> bool:
    """Equal lists; a certdb row revoked without a time (listed at the time the CRL was made) matches any time."""
    if len(stored) != len(wanted):
        return False
    timeless = {(serial, reason) for serial, when, reason in wanted if when is None}
    return all(entry in wanted or (entry[0], entry[2]) in timeless for entry in stored)


def keep_stored(
    stored: bytes | None, issuer: CRLIssuer, wanted: set[tuple[int, dt.datetime | None, int]], now: dt.datetime
) -> x509.CertificateRevocationList | None:
    """The stored CRL when it may be kept (see the module docstring), else None."""
    if stored is None:
        return None
    try:
        crl = x509.load_der_x509_crl(stored)
        if crl.issuer != issuer.cert.subject or not crl.is_signature_valid(issuer.cert.public_key()):  # type: ignore[arg-type]
            return None
        next_update = crl.next_update_utc
        if next_update is None or next_update - now <= issuer.lifetime / 2:
            return None
        return crl if _same_entries(_stored_entries(crl), wanted) else None
    except (ValueError, TypeError):
        return None


def publish_crl(db: CertDB, root: str, issuer: CRLIssuer, now: dt.datetime) -> PublishedCRL:
    """Keep or re-make ``issuer``'s CRL under ``root`` (DER and PEM); only changed files are touched."""
    aki = key_identifier(issuer.cert).hex()
    der_path, pem_path = crl_paths(aki)
    der_file = os.path.join(root, der_path)
    crl = keep_stored(read_if_exists(der_file), issuer, _wanted_entries(db, aki, now), now)
    remade = crl is None
    if crl is None:
        der = crl_from_db(db, issuer.cert, issuer.key, issuer.lifetime, now=now)
        write_if_changed(der_file, der)
        crl = x509.load_der_x509_crl(der)
        log.info("CRL of %s re-made: number %d", aki, crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    der = crl.public_bytes(serialization.Encoding.DER)
    write_if_changed(os.path.join(root, pem_path), encode(der, pem=True).encode("ascii"))  # repairs a lost PEM too
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    next_update = crl.next_update_utc or utc(now)
    return PublishedCRL(aki, der_path, pem_path, number, next_update, issuer.lifetime, remade)
