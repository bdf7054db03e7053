"""Certificate revocation lists: cfssl's ``gencrl`` (a list of serials) and ``crl`` (the certdb's revoked rows).

What a CRL made here contains (reference §4.7, with our additions marked):

* an X.509 v2 CRL whose issuer is the CA's subject, thisUpdate = now and nextUpdate = now + lifetime, both
  at second precision (UTCTime until 2049, GeneralizedTime from 2050, as Go encodes them);
* one entry per revoked certificate: serial number and revocation date, plus a **reasonCode** entry
  extension when the reason is not 0 (*ours*: cfssl never writes reasons);
* CRL extensions: AuthorityKeyIdentifier (the CA's SKI, or the RFC 5280 method-1 hash of its key when its
  certificate has no SKI; cfssl then omits the AKI) and **CRLNumber** (*ours*: cfssl has none, so relying
  parties cannot tell which of two CRLs is newer; RFC 5280 §5.2.3 requires it). Without a database the
  number is the time in microseconds (:func:`crl_number`), so successive runs increase; with one it is
  also greater than every number the database handed out for that CA;
* signed with the CA key: RSA -> SHA-256 whatever the key size, ECDSA by curve, Ed25519 pure (Go's rule
  for CRLs, :func:`cfsslpy.keys.crl_hash`).

Checks cfssl does not make: the certificate must be a CA whose key usage (when present) includes cRLSign
(5300), the key must match it (2300), the CA certificate must be valid at signing time (1211: cfssl signs
with an expired CA), the lifetime must be positive (1300), every serial line must be a
number (1300 naming the line; cfssl lists garbage), and a CRL from the certdb lists **only this CA's**
certificates (cfssl lists every issuer's revoked rows in every CRL).
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cfsslpy.capair import load_ca_pair, require_valid
from cfsslpy.errors import Category, CfsslError, PlainError, Reason
from cfsslpy.golang.json import format_duration
from cfsslpy.keys import (
    PrivateKey,
    certificate_key_matches,
    check_supported_key,
    crl_hash,
    load_private_key,
)
from cfsslpy.pem import encode_pem, parse_certificate_pem
from cfsslpy.revocation import parse_reason, parse_serial, reason_flag
from cfsslpy.x509util import extension, key_identifier, utc, utc_seconds

if TYPE_CHECKING:
    from cfsslpy.certdb import CertDB
    from cfsslpy.inputs import Stdin

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # progress(done, total)

DEFAULT_LIFETIME = dt.timedelta(days=7)  # cfssl's gencrl default ("0" or no TIME) and crl's -expiry 168h
PEM_LABEL = "X509 CRL"
# removeFromCRL (8) only has a meaning in delta CRLs (RFC 5280 §5.3.1); every CRL made here is complete.
_REMOVE_FROM_CRL = 8
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class RevokedEntry:
    """One CRL entry: the certificate's serial, when it was revoked and why (0 = no reasonCode extension)."""

    serial: int
    revoked_at: dt.datetime
    reason: int = 0


def _bad_request(message: str) -> CfsslError:
    return CfsslError(Category.CERTIFICATE, Reason.BAD_REQUEST, message)


def _go_duration(value: dt.timedelta) -> str:
    return format_duration((value // dt.timedelta(microseconds=1)) * 1000)


def check_crl_issuer(cert: x509.Certificate, key: PrivateKey, now: dt.datetime | None = None) -> None:
    """The CA may sign CRLs: a CA certificate (5300), cRLSign in its key usage (5300), the matching key (2300),
    valid at ``now`` (1211, :func:`require_valid`)."""
    check_supported_key(key)
    if not certificate_key_matches(key, cert):
        raise CfsslError(Category.PRIVATE_KEY, Reason.KEY_MISMATCH)
    bc = extension(cert, x509.BasicConstraints)
    if bc is not None and not bc.ca:
        raise CfsslError(Category.POLICY, Reason.INVALID_REQUEST, "the CA certificate is not a CA (basicConstraints CA:FALSE)")
    if bc is None:  # a v1 root: accepted, as the signer does
        log.warning("the CA certificate has no basicConstraints extension; treating it as a CA")
    ku = extension(cert, x509.KeyUsage)
    if ku is not None and not ku.crl_sign:
        raise CfsslError(Category.POLICY, Reason.INVALID_REQUEST, "the CA certificate's key usage does not allow CRL signing (no cRLSign)")
    require_valid(cert, "CA", now)


def generate_crl(
    cert: x509.Certificate,
    key: PrivateKey,
    entries: Sequence[RevokedEntry],
    *,
    lifetime: dt.timedelta,
    number: int,
    now: dt.datetime | None = None,
    progress: Progress | None = None,
) -> bytes:
    """The DER CRL of ``cert``'s CA listing ``entries`` (in the given order), valid for ``lifetime`` from ``now``.

    See the module docstring for its content. ``number`` is the CRLNumber (0 .. 2^159). Errors: 5300 when
    ``cert`` may not sign CRLs, 2300 when ``key`` is not its key, 1300 for a non-positive lifetime, a bad
    number or an entry whose reason is 7 / removeFromCRL / out of range. ``progress(done, total)`` is
    called as the entries are added (a CRL of many thousands of entries takes a while).
    """
    this_update = utc_seconds(now or dt.datetime.now(dt.timezone.utc))
    check_crl_issuer(cert, key, this_update)
    if lifetime <= dt.timedelta(0):
        raise _bad_request(f"invalid CRL lifetime {_go_duration(lifetime)}: must be positive")
    if number < 0 or number.bit_length() > 159:  # RFC 5280 §5.2.3: at most 20 octets
        raise _bad_request(f"invalid CRL number {number}: must be 0 .. 2^159-1")
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(cert.subject)
        .last_update(this_update)
        .next_update(utc_seconds(this_update + lifetime))
        .add_extension(x509.AuthorityKeyIdentifier(key_identifier(cert), None, None), critical=False)
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    for index, entry in enumerate(entries):
        if progress is not None:
            progress(index, len(entries))
        revoked = x509.RevokedCertificateBuilder().serial_number(entry.serial).revocation_date(utc_seconds(entry.revoked_at))
        if entry.reason == _REMOVE_FROM_CRL:
            raise _bad_request(f"serial {entry.serial}: reason removeFromCRL (8) belongs in delta CRLs only")
        if entry.reason != 0:
            try:
                flag = reason_flag(entry.reason)
            except CfsslError:
                raise _bad_request(f"serial {entry.serial}: invalid revocation reason {entry.reason}") from None
            revoked = revoked.add_extension(x509.CRLReason(flag), critical=False)
        builder = builder.add_revoked_certificate(revoked.build())
    crl = builder.sign(key, crl_hash(key))
    if progress is not None and entries:
        progress(len(entries), len(entries))
    return crl.public_bytes(serialization.Encoding.DER)


_number_lock = threading.Lock()
_last_number = 0


def crl_number(now: dt.datetime | None = None) -> int:
    """A CRL number for CRLs made without a database: microseconds since the Unix epoch.

    Successive runs (processes) therefore get increasing numbers; within one process the numbers are
    strictly increasing even when the clock does not move (or moves back). With an explicit ``now`` the
    result is just that time's microseconds.
    """
    global _last_number
    if now is not None:
        return (utc(now) - _EPOCH) // dt.timedelta(microseconds=1)
    with _number_lock:
        value = max(crl_number(dt.datetime.now(dt.timezone.utc)), _last_number + 1)
        _last_number = value
        return value


# -----------------------------------------------------------------------------------------------------------
# gencrl: a serial list, a PEM certificate and key, a lifetime in seconds


def parse_go_int32(text: str) -> int:
    """Go's ``strconv.ParseInt(text, 0, 32)``: sign, then ``0x``/``0o``/``0b``/``0`` (octal) prefixes, ``_``
    separators; PlainError with Go's text (``strconv.ParseInt: parsing "x": invalid syntax``) otherwise."""
    quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    syntax = PlainError(f"strconv.ParseInt: parsing {quoted}: invalid syntax")
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body or not body[0].isdigit() or not body.isascii():
        raise syntax
    lowered = body.lower()
    if lowered.startswith(("0x", "0o", "0b")):
        base, digits = {"x": 16, "o": 8, "b": 2}[lowered[1]], body[2:]
        if digits.startswith("_"):  # Go allows "0x_1f" (Python too); an empty "0x" is refused by int()
            digits = digits[1:]
    elif len(body) > 1 and body[0] == "0":
        base, digits = 8, body[1:]
        if digits.startswith("_"):  # "0_7" is octal 7 for Go
            digits = digits[1:]
    else:
        base, digits = 10, body
    # int() would also take surrounding spaces and doubled or edge underscores; Go does not
    if not digits or not all(c.isalnum() or c == "_" for c in digits) or digits[0] == "_" or digits[-1] == "_" or "__" in digits:
        raise syntax
    try:
        value = int(digits, base)
    except ValueError:
        raise syntax from None
    if text.startswith("-"):
        value = -value
    if not -(1 << 31) <= value < 1 << 31:
        raise PlainError(f"strconv.ParseInt: parsing {quoted}: value out of range")
    return value


def parse_lifetime(text: str) -> dt.timedelta:
    """gencrl's TIME / the API's ``expireTime``: seconds (Go ParseInt base 0, 32 bits); "" or 0 -> 7 days."""
    value = text.strip()
    if value == "":
        return DEFAULT_LIFETIME
    seconds = parse_go_int32(value)
    if seconds == 0:
        return DEFAULT_LIFETIME
    if seconds < 0:
        raise _bad_request(f"invalid CRL lifetime {text!r}: want a positive number of seconds")
    return dt.timedelta(seconds=seconds)


def parse_serial_list(data: bytes, now: dt.datetime) -> list[RevokedEntry]:
    """gencrl's INPUTFILE: one serial per line (decimal, or ``0x`` hex), blank lines skipped, all revoked at
    ``now``. Our addition: ``SERIAL REASON`` with a reason name or number. A repeated serial is listed once
    (a warning); repeated with a different reason, it is an error. Every error names the line (1300).
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad_request("serial list: not UTF-8 text") from None
    entries: list[RevokedEntry] = []
    seen: dict[int, tuple[int, int]] = {}  # serial -> (line number, reason)
    for number, line in enumerate(text.split("\n"), start=1):
        words = line.split()
        if not words:
            continue
        if len(words) > 2:
            raise _bad_request(f"serial list line {number}: {line.strip()!r}: want SERIAL [REASON]")
        try:
            serial = parse_serial(words[0])
        except CfsslError as exc:
            raise _bad_request(f"serial list line {number}: {exc.message}") from None
        reason = 0
        if len(words) == 2:
            try:
                reason = parse_reason(words[1])
            except CfsslError:
                raise _bad_request(f"serial list line {number}: unknown revocation reason {words[1]!r}") from None
            if reason == _REMOVE_FROM_CRL:
                raise _bad_request(f"serial list line {number}: reason removeFromCRL belongs in delta CRLs only")
        if serial in seen:
            first, first_reason = seen[serial]
            if first_reason != reason:
                raise _bad_request(f"serial list line {number}: serial {serial} already listed on line {first} with another reason")
            log.warning("serial list line %d: serial %d already listed on line %d; listed once", number, serial, first)
            continue
        seen[serial] = (number, reason)
        entries.append(RevokedEntry(serial, now, reason))
    return entries


def parse_crl_cert(cert_pem: bytes) -> x509.Certificate:
    """gencrl's CA certificate: 1002/1003 with cfssl's fixed messages (the API says ``malformed certificate``)."""
    return parse_certificate_pem(cert_pem)


def parse_crl_key(key_pem: bytes | PrivateKey, *, environ: Mapping[str, str] | None = None) -> PrivateKey:
    """gencrl's CA key: 2002/2003 with cfssl's fixed messages (the API says ``malformed Private Key``), 2100
    for an encrypted key without ``CFSSL_CA_PK_PASSWORD``, 2200 for an unsupported key type. A key object (a
    ``pkcs11:`` key the CLI loaded) is only checked.
    """
    if not isinstance(key_pem, bytes):
        check_supported_key(key_pem)
        return key_pem
    return load_private_key(key_pem, environ=environ)


def gencrl(
    serial_list: bytes,
    cert_pem: bytes,
    key_pem: bytes | PrivateKey,
    lifetime: str = "",
    *,
    now: dt.datetime | None = None,
    environ: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> bytes:
    """cfssl's gencrl (CLI and ``POST /gencrl``): the DER CRL of the CA ``cert_pem``/``key_pem`` revoking every
    serial of ``serial_list`` at ``now``, valid for ``lifetime`` seconds (default 7 days).

    Checked in cfssl's order: lifetime (Go's ParseInt error text, a plain error), certificate, serial
    list, key; then the checks of :func:`generate_crl`. ``environ`` supplies ``CFSSL_CA_PK_PASSWORD``
    (default: the process environment).
    """
    current = now or dt.datetime.now(dt.timezone.utc)
    duration = parse_lifetime(lifetime)
    cert = parse_crl_cert(cert_pem)
    entries = parse_serial_list(serial_list, current)
    key = parse_crl_key(key_pem, environ=environ)
    return generate_crl(cert, key, entries, lifetime=duration, number=crl_number(now), now=current, progress=progress)


# -----------------------------------------------------------------------------------------------------------
# crl: the certdb's revoked, unexpired certificates of one CA


def crl_from_db(
    db: CertDB,
    cert: x509.Certificate,
    key: PrivateKey,
    expiry: dt.timedelta,
    *,
    now: dt.datetime | None = None,
    progress: Progress | None = None,
) -> bytes:
    """The DER CRL of ``cert``'s CA listing the certdb's revoked, unexpired certificates **of this CA**
    (AKI = the CA's key identifier; cfssl 2016 rows with an empty AKI resolved through their PEM), with
    their revocation time and reason, valid for ``expiry``.

    The CRL number is above every number this database handed out for the CA and at least
    :func:`crl_number` (so it also increases across databases and processes). A row whose serial is not a
    number fails the whole CRL (11000) rather than silently leaving a revoked certificate out.
    """
    current = now or dt.datetime.now(dt.timezone.utc)
    check_crl_issuer(cert, key, current)  # before the database is touched
    if expiry <= dt.timedelta(0):
        raise _bad_request(f"invalid CRL lifetime {_go_duration(expiry)}: must be positive")
    aki = key_identifier(cert).hex()
    entries: list[RevokedEntry] = []
    for record in db.revoked_unexpired(aki=aki, now=current):
        try:
            serial = int(record.serial, 10)
        except ValueError:
            raise CfsslError(
                Category.CERT_STORE, Reason.UNKNOWN, f"certificate record with serial {record.serial!r}: not a decimal serial number"
            ) from None
        revoked_at = record.revoked_at
        if revoked_at is None:  # status set to revoked by hand, without a time
            log.warning("certificate %s is revoked without a revocation time; listed as revoked now", record.serial)
            revoked_at = current
        reason = record.reason
        if reason == _REMOVE_FROM_CRL or reason not in range(0, 11) or reason == 7:
            # cfssl's revoke stores removeFromCRL as a revocation; list the certificate without a reason
            log.warning("certificate %s has revocation reason %d, not valid in a CRL; listed without a reason", record.serial, reason)
            reason = 0
        entries.append(RevokedEntry(serial, revoked_at, reason))
    number = db.next_crl_number(aki, floor=crl_number(now))
    return generate_crl(cert, key, entries, lifetime=expiry, number=number, now=current, progress=progress)


def load_crl_issuer(
    ca_spec: str, key_spec: str, *, stdin: Stdin | None = None, environ: Mapping[str, str] | None = None
) -> tuple[x509.Certificate, PrivateKey]:
    """Read ``-ca`` and ``-ca-key`` (paths, ``file:``, ``env:``) for ``crl`` as cfssl does: an unreadable
    certificate is a plain error, an unreadable key 1001; a bad certificate 1002/1003; a bad key
    2002/2003/2100 (``CFSSL_CA_PK_PASSWORD`` decrypts it). The CRL checks come later, in the core call.
    """
    pair = load_ca_pair(ca_spec, key_spec, category=Category.CERTIFICATE, stdin=stdin, environ=environ)
    return pair.cert, pair.key


def encode(der: bytes, pem: bool) -> str:
    """cfssl's output, standard base64 of the DER + ``\\n``; or, with ``pem``, an ``X509 CRL`` PEM block."""
    if pem:
        return encode_pem(PEM_LABEL, der).decode("ascii")
    return base64.b64encode(der).decode("ascii") + "\n"


__all__ = [
    "DEFAULT_LIFETIME",
    "RevokedEntry",
    "check_crl_issuer",
    "crl_from_db",
    "crl_number",
    "encode",
    "gencrl",
    "generate_crl",
    "key_identifier",
    "load_crl_issuer",
    "parse_crl_cert",
    "parse_crl_key",
    "parse_go_int32",
    "parse_lifetime",
    "parse_serial_list",
    "require_valid",
]
