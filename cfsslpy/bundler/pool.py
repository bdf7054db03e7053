"""Certificate pools: the roots and intermediates, searched by subject (cfssl's KnownIssuers), and the
``-int-dir`` stash names of learned intermediates."""

from __future__ import annotations

from collections.abc import Iterable

from cryptography import x509

from cfsslpy.bundler.hostname import common_name
from cfsslpy.x509util import authority_key_id, subject_key_id


def stash_name(cert: x509.Certificate) -> str:
    """cfssl's file name for a learned intermediate: ``<CN without dots and spaces>_<hex SKI>_<hex serial>.crt``."""
    cn = common_name(cert).replace(".", "").replace(" ", "")
    ski = subject_key_id(cert, lenient=True).hex()
    serial = cert.serial_number
    serial_hex = serial.to_bytes((serial.bit_length() + 7) // 8, "big").hex() if serial > 0 else ""
    return f"{cn}_{ski}_{serial_hex}.crt"


def _aki_first(cert: x509.Certificate, candidates: list[x509.Certificate]) -> list[x509.Certificate]:
    """Go tries the candidate issuers whose SKI matches the certificate's AKI first (a stable sort)."""
    aki = authority_key_id(cert, lenient=True)
    return sorted(candidates, key=lambda c: subject_key_id(c, lenient=True) != aki) if aki else candidates


class Pool:
    """Certificates findable by subject, deduplicated by signature (cfssl's KnownIssuers).

    Building a subject index means materialising a Python ``Name`` for every certificate, which for a pool
    of 10,000 costs more than everything else together. Instead each certificate keeps its TBS bytes; the
    issuers of a certificate are the pool certificates whose TBS contains the DER of its issuer name (a fast
    byte search) and whose parsed subject then equals it (the exact check). Lookups are cached per name.
    """

    def __init__(self, certs: Iterable[x509.Certificate] = ()) -> None:
        self.items: list[tuple[bytes, x509.Certificate]] = []
        self.signatures: set[bytes] = set()
        self._found: dict[bytes, list[x509.Certificate]] = {}
        raw = getattr(certs, "raw", None) or []
        if raw:  # a bundle file's own DER bytes: no re-encoding
            for cert, der in zip(certs, raw, strict=True):
                self.add(cert, der)
        else:
            for cert in certs:
                self.add(cert)

    def add(self, cert: x509.Certificate, der: bytes | None = None) -> bool:
        """Add ``cert`` (``der``: its encoding, when known) unless an identical one is there; False if it was."""
        if cert.signature in self.signatures:
            return False
        self.signatures.add(cert.signature)
        self.items.append((der if der is not None else cert.tbs_certificate_bytes, cert))
        self._found.clear()
        return True

    def __contains__(self, cert: x509.Certificate) -> bool:
        return cert.signature in self.signatures

    def with_subject(self, name: x509.Name) -> list[x509.Certificate]:
        key = name.public_bytes()
        found = self._found.get(key)
        if found is None:
            found = [c for tbs, c in self.items if key in tbs and c.subject == name]
            self._found[key] = found
        return found

    def issuers_of(self, cert: x509.Certificate) -> list[x509.Certificate]:
        return _aki_first(cert, self.with_subject(cert.issuer))

    def all(self) -> list[x509.Certificate]:
        return [c for _tbs, c in self.items]


class Overlay:
    """Two pools searched as one, as if ``second`` had been added to a copy of ``first``, without the copy."""

    def __init__(self, first: Pool, second: Pool) -> None:
        self.first = first
        self.second = second

    def issuers_of(self, cert: x509.Certificate) -> list[x509.Certificate]:
        found = self.first.with_subject(cert.issuer)
        seen = {c.signature for c in found}
        candidates = [*found, *(c for c in self.second.with_subject(cert.issuer) if c.signature not in seen)]
        return _aki_first(cert, candidates)
