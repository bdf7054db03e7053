"""Revocation reasons (RFC 5280 CRLReason) as cfssl names and numbers them, and the revoke operation.

cfssl's parser (reference §4.6): case-insensitive names ``unspecified`` (0), ``keycompromise`` (1),
``cacompromise`` (2), ``affiliationchanged`` (3), ``superseded`` (4), ``cessationofoperation`` (5),
``certificatehold`` (6), ``removefromcrl`` (8), ``privilegewithdrawn`` (9), ``aacompromise`` (10); the empty
string is 0; numeric strings must be 1..9 (so ``"0"`` and ``"10"`` fail with 8200 ``Invalid revocation
status``, even though their names work). We accept the same inputs and two more that cfssl refuses: the
numbers 0 and 10 (the codes of names cfssl accepts), so a reason printed by any tool can be passed back.
Value 7 is unassigned in RFC 5280 and is refused in every form.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509

from cfsslpy.errors import Category, CfsslError, Reason
from cfsslpy.golang.json import parse_date, parse_time

REASONS: dict[str, int] = {
    "unspecified": 0,
    "keycompromise": 1,
    "cacompromise": 2,
    "affiliationchanged": 3,
    "superseded": 4,
    "cessationofoperation": 5,
    "certificatehold": 6,
    "removefromcrl": 8,
    "privilegewithdrawn": 9,
    "aacompromise": 10,
}

# RFC 5280 camelCase names, for output
REASON_NAMES: dict[int, str] = {
    0: "unspecified",
    1: "keyCompromise",
    2: "cACompromise",
    3: "affiliationChanged",
    4: "superseded",
    5: "cessationOfOperation",
    6: "certificateHold",
    8: "removeFromCRL",
    9: "privilegeWithdrawn",
    10: "aACompromise",
}

# cryptography's enum for each code (CRL entries and OCSP responses carry the reason)
_FLAGS: dict[int, x509.ReasonFlags] = {
    0: x509.ReasonFlags.unspecified,
    1: x509.ReasonFlags.key_compromise,
    2: x509.ReasonFlags.ca_compromise,
    3: x509.ReasonFlags.affiliation_changed,
    4: x509.ReasonFlags.superseded,
    5: x509.ReasonFlags.cessation_of_operation,
    6: x509.ReasonFlags.certificate_hold,
    8: x509.ReasonFlags.remove_from_crl,
    9: x509.ReasonFlags.privilege_withdrawn,
    10: x509.ReasonFlags.aa_compromise,
}
_CODES = {flag: code for code, flag in _FLAGS.items()}


def invalid_status() -> CfsslError:
    return CfsslError(Category.OCSP, Reason.INVALID_STATUS)


def parse_reason(text: str) -> int:
    """A reason name or number (see the module docstring) -> its RFC 5280 code; 8200 otherwise."""
    value = text.strip()
    if value == "":
        return 0
    code = REASONS.get(value.lower())
    if code is not None:
        return code
    if value.isdigit() and len(value) <= 3:
        number = int(value)
        if number in _FLAGS:
            return number
    raise invalid_status()


def reason_flag(code: int) -> x509.ReasonFlags:
    """cryptography's ReasonFlags for a code (8200 for 7 or out-of-range values)."""
    try:
        return _FLAGS[code]
    except KeyError:
        raise invalid_status() from None


def reason_code(flag: x509.ReasonFlags | None) -> int:
    return 0 if flag is None else _CODES[flag]


def parse_serial(text: str) -> int:
    """A certificate serial number in decimal (cfssl's form in the certdb and every command line).

    A ``0x`` prefix is read as hexadecimal, as a convenience. Refused with a clear message otherwise.
    """
    value = text.strip()
    try:
        number = int(value, 16) if value.lower().startswith("0x") else int(value, 10)
    except ValueError:
        raise CfsslError(Category.CERTIFICATE, Reason.BAD_REQUEST, f"invalid serial number {text!r}: want a decimal integer") from None
    if number <= 0 or number.bit_length() > 160:
        raise CfsslError(Category.CERTIFICATE, Reason.BAD_REQUEST, f"invalid serial number {text!r}: out of range")
    return number


def normalize_aki(text: str) -> str:
    """An authority key identifier as the certdb stores it: lowercase hex, no separators.

    Accepts ``AB:CD:…`` and upper case (what ``openssl x509 -text`` and ``certinfo`` print).
    """
    value = text.strip().replace(":", "").lower()
    if not value or len(value) % 2 or any(c not in "0123456789abcdef" for c in value):
        raise CfsslError(Category.CERTIFICATE, Reason.BAD_REQUEST, f"invalid authority key identifier {text!r}: want hex digits")
    return value


def parse_revoked_at(text: str, *, now: dt.datetime | None = None) -> dt.datetime:
    """cfssl's ``-revoked-at``: ``now`` or ``YYYY-MM-DD`` (UTC midnight); also RFC 3339 as an addition."""
    value = text.strip()
    current = now or dt.datetime.now(dt.timezone.utc)
    if value in ("", "now"):
        return current
    try:
        return parse_date(value) if len(value) == 10 else parse_time(value)
    except ValueError:  # JSONDecodeError included
        raise CfsslError(
            Category.OCSP, Reason.INVALID_STATUS, f"malformed revocation time {text!r}: want now, YYYY-MM-DD or RFC 3339"
        ) from None


@dataclass(frozen=True)
class RevokeRequest:
    """What ``revoke`` (CLI and API) asks of the certdb: cfssl's serial (decimal), AKI (hex), reason."""

    serial: str
    aki: str
    reason: int = 0
