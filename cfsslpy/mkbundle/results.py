"""What mkbundle found and decided: certificates with their source, the drop reasons, problems, the result."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from cryptography import x509

from cfsslpy.errors import Category, CfsslError, Reason
from cfsslpy.pem import encode_pem


class DropReason(enum.Enum):
    """Why a certificate was left out; the value is the text used in logs and summaries."""

    EXPIRED = "expired"
    NOT_YET_VALID = "not yet valid"
    REVOKED_CRL = "revoked (CRL)"
    REVOKED_OCSP = "revoked (OCSP)"
    OCSP_UNKNOWN = "unknown to its OCSP responder"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Source:
    """Where a certificate was found: the file and its PEM block number (1-based, counting every block)."""

    path: str
    block: int

    def __str__(self) -> str:
        return f"{self.path}, block {self.block}"


@dataclass(frozen=True)
class Found:
    """One parsed certificate with its DER and where it came from."""

    cert: x509.Certificate
    der: bytes
    source: Source

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()


@dataclass(frozen=True)
class Dropped:
    found: Found
    reason: DropReason
    detail: str = ""


@dataclass(frozen=True)
class Unverified:
    """A certificate kept although one of its revocation checks could not be completed (``detail`` says why)."""

    found: Found
    detail: str


@dataclass(frozen=True)
class Problem:
    """An input that could not be used: an unreadable file or a block that is not a certificate."""

    path: str
    message: str
    block: int = 0

    def __str__(self) -> str:
        where = f"{self.path}, block {self.block}" if self.block else self.path
        return f"{where}: {self.message}"


@dataclass
class BundleResult:
    """The outcome of :func:`build`: the kept certificates (in output order) and everything left out."""

    kept: list[Found] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    unverified: list[Unverified] = field(default_factory=list)
    skipped: list[tuple[Found, str]] = field(default_factory=list)  # kept; a check did not apply (e.g. no issuer)
    unchecked: list[Found] = field(default_factory=list)  # kept without asking their CRL/OCSP: fetching was off
    problems: list[Problem] = field(default_factory=list)
    files: int = 0

    def pem(self) -> bytes:
        return b"".join(_pem(f.der) for f in self.kept)

    def counts(self) -> dict[DropReason, int]:
        """Dropped certificates per reason, in :class:`DropReason` order, zero counts left out."""
        out: dict[DropReason, int] = {}
        for reason in DropReason:
            n = sum(1 for d in self.dropped if d.reason is reason)
            if n:
                out[reason] = n
        return out


def _pem(der: bytes) -> bytes:
    """Go's ``pem.Encode`` of a certificate: 64-character lines, LF endings."""
    return encode_pem("CERTIFICATE", der)


class NothingUsable(CfsslError):
    """No certificate survived: none could be parsed (1002), or every one was dropped (1000). ``result`` says why."""

    def __init__(self, result: BundleResult, output: str) -> None:
        self.result = result
        found = len(result.kept) + len(result.dropped)
        if not found:
            what = f"no certificate could be parsed from {result.files} file{'' if result.files == 1 else 's'}"
            reason = Reason.DECODE_FAILED
        else:
            parts = ", ".join(f"{n} {r.value}" for r, n in result.counts().items())
            what = (
                f"the only certificate found was dropped ({parts})"
                if found == 1
                else f"all {found} certificates found were dropped ({parts})"
            )
            reason = Reason.NONE
        super().__init__(Category.CERTIFICATE, reason, f"{what}; {output} was not written")
