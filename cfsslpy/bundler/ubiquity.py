"""Ubiquity: how widely a chain is trusted and understood, and how cfssl ranks chains by it (cfssl ``ubiquity``).

The ``-metadata`` file lists client platforms with their weight, the hash and key algorithms they
understand and their root keystore; ``ubiquitous`` ranking prefers the chain the most platform weight
trusts, ``optimal`` the shortest, latest-expiring, strongest one. SHA-1 deprecation messages come from
cfssl's fixed table of browser policies.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cfsslpy import certinfo
from cfsslpy.bundler.formats import lenient_pem_certificates
from cfsslpy.errors import PlainError
from cfsslpy.inputs import read_path
from cfsslpy.keys import is_dsa

_UTC = dt.timezone.utc


# Hash ubiquity (higher = understood by more platforms), key ubiquity, and the optimal flavor's priorities.
SHA1_UBIQUITY, SHA2_UBIQUITY, UNKNOWN_HASH_UBIQUITY = 100, 70, 0
RSA_UBIQUITY, DSA_UBIQUITY, ECDSA256_UBIQUITY, ECDSA384_UBIQUITY, ECDSA521_UBIQUITY, UNKNOWN_KEY_UBIQUITY = 100, 100, 70, 70, 30, 0
_PLATFORM_HASHES = {"SHA1": SHA1_UBIQUITY, "SHA2": SHA2_UBIQUITY}
_PLATFORM_KEYS = {"RSA": RSA_UBIQUITY, "ECDSA256": ECDSA256_UBIQUITY, "ECDSA384": ECDSA384_UBIQUITY, "ECDSA521": ECDSA521_UBIQUITY}
_SHA1_SIGNATURES = {"SHA1WithRSA", "DSAWithSHA1", "ECDSAWithSHA1"}
_SHA2_SIGNATURES = {
    "SHA256WithRSA",
    "SHA384WithRSA",
    "SHA512WithRSA",
    "DSAWithSHA256",
    "ECDSAWithSHA256",
    "ECDSAWithSHA384",
    "ECDSAWithSHA512",
}


# --------------------------------------------------------------------------------------------------------------
# Platforms (the ubiquity metadata file)


@dataclass(frozen=True)
class Platform:
    """One entry of the ``-metadata`` file: a client platform, its weight and what it supports.

    ``roots`` holds the SHA-1 of the SubjectPublicKeyInfo of every root in the platform's keystore; ``None``
    (no keystore) means the platform trusts every root (cfssl: e.g. Chrome, which uses the OS store).
    """

    name: str
    weight: int
    hash_algo: str
    key_algo: str
    roots: frozenset[bytes] | None

    @property
    def hash_ubiquity(self) -> int:
        return _PLATFORM_HASHES.get(self.hash_algo, UNKNOWN_HASH_UBIQUITY)

    @property
    def key_ubiquity(self) -> int:
        return _PLATFORM_KEYS.get(self.key_algo, UNKNOWN_KEY_UBIQUITY)

    def trusts(self, root: x509.Certificate) -> bool:
        return self.roots is None or spki_sha1(root) in self.roots


def spki_sha1(cert: x509.Certificate) -> bytes:
    """SHA-1 of the certificate's SubjectPublicKeyInfo: how a platform's keystore identifies a root."""
    return hashlib.sha1(certinfo.subject_public_key_info(cert)).digest()  # noqa: S324 - an identifier, as in cfssl, not a security hash


def load_metadata(path: str) -> list[Platform]:
    """Read a ubiquity metadata file (reference §4.2): a JSON array of
    ``{"name", "weight", "hash_algo": "SHA1|SHA2", "key_algo": "RSA|ECDSA256|ECDSA384|ECDSA521", "keystore"}``.

    ``keystore`` is a PEM file relative to the metadata file's directory; its unparsable certificates are
    skipped (cfssl is best effort there too). An unreadable file or keystore, bad JSON or an unknown
    ``hash_algo``/``key_algo`` fails the whole load (:class:`PlainError`, cfssl's wording).
    """
    try:
        data = read_path(path)
    except PlainError as exc:
        raise PlainError(f"platform metadata failed to load: {exc.message}") from None
    try:
        raw = json.loads(data) if data.strip() else []
    except ValueError as exc:
        raise PlainError(f"platform metadata failed to parse: {exc}") from None
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise PlainError("platform metadata failed to parse: json: cannot unmarshal object into Go value of type []ubiquity.Platform")
    base = os.path.dirname(path)
    platforms: list[Platform] = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise PlainError("platform metadata failed to parse: json: cannot unmarshal into Go value of type ubiquity.Platform")
        fields = {str(k).lower(): v for k, v in entry.items()}  # Go's encoding/json matches keys case-insensitively
        name = str(fields.get("name") or "")
        try:
            weight = int(fields.get("weight") or 0)
        except (TypeError, ValueError):
            raise PlainError(f"platform metadata failed to parse: bad weight for {name}") from None
        hash_algo, key_algo = str(fields.get("hash_algo") or ""), str(fields.get("key_algo") or "")
        if hash_algo not in _PLATFORM_HASHES or key_algo not in _PLATFORM_KEYS:
            raise PlainError(f"failed to parse platform metadata: {name}")
        keystore = str(fields.get("keystore") or "")
        roots: frozenset[bytes] | None = None
        if keystore:
            try:
                store = read_path(os.path.join(base, keystore))
            except PlainError:
                raise PlainError(f"failed to parse platform metadata: {name}") from None
            roots = frozenset(spki_sha1(cert) for cert in lenient_pem_certificates(store))
        platforms.append(Platform(name, weight, hash_algo, key_algo, roots))
    return platforms


# --------------------------------------------------------------------------------------------------------------
# Certificate facts used for ranking


_SIGNATURE_NAMES: dict[bytes, str] = {}  # by certificate signature: ranking asks for each chain's certificates


def signature_name(cert: x509.Certificate) -> str:
    """certinfo's signature algorithm name, remembered per certificate (a bounded cache: pools repeat)."""
    key = cert.signature
    name = _SIGNATURE_NAMES.get(key)
    if name is None:
        name = certinfo.signature_name(cert)
        if len(_SIGNATURE_NAMES) >= 4096:
            _SIGNATURE_NAMES.clear()
        _SIGNATURE_NAMES[key] = name
    return name


def _signature_class(cert: x509.Certificate) -> str:
    name = signature_name(cert)
    if name in _SHA1_SIGNATURES:
        return "SHA1"
    if name in _SHA2_SIGNATURES:
        return "SHA2"
    return "other"


def hash_ubiquity(cert: x509.Certificate) -> int:
    return {"SHA1": SHA1_UBIQUITY, "SHA2": SHA2_UBIQUITY}.get(_signature_class(cert), UNKNOWN_HASH_UBIQUITY)


def key_ubiquity(cert: x509.Certificate) -> int:
    if is_dsa(cert):
        return DSA_UBIQUITY
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return RSA_UBIQUITY if key.key_size >= 1024 else UNKNOWN_KEY_UBIQUITY
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {"secp256r1": ECDSA256_UBIQUITY, "secp384r1": ECDSA384_UBIQUITY, "secp521r1": ECDSA521_UBIQUITY}.get(
            key.curve.name, UNKNOWN_KEY_UBIQUITY
        )
    return UNKNOWN_KEY_UBIQUITY


def hash_priority(cert: x509.Certificate) -> int:
    return {"SHA1": 10, "SHA2": 100}.get(_signature_class(cert), 0)


def key_priority(cert: x509.Certificate) -> int:
    if is_dsa(cert):
        return 0
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {"secp256r1": 100, "secp384r1": 120, "secp521r1": 140}.get(key.curve.name, 0)
    if isinstance(key, rsa.RSAPublicKey):
        return {4096: 70, 3072: 50, 2048: 30}.get(key.key_size, 0)
    return 0


def chain_hash_ubiquity(chain: Sequence[x509.Certificate]) -> int:
    """The ubiquity of the weakest signature hash in the chain (root included)."""
    return min((hash_ubiquity(c) for c in chain), default=UNKNOWN_HASH_UBIQUITY)


def chain_key_ubiquity(chain: Sequence[x509.Certificate]) -> int:
    return min((key_ubiquity(c) for c in chain), default=UNKNOWN_KEY_UBIQUITY)


def _mean(values: list[int]) -> int:
    return sum(values) // len(values) if values else 0


def chain_expiry(chain: Sequence[x509.Certificate]) -> dt.datetime:
    return min(c.not_valid_after_utc for c in chain)


def _sha2_homogeneity(chain: Sequence[x509.Certificate]) -> int:
    return 1 if all(_signature_class(c) == "SHA2" for c in chain[:-1]) else 0


def platform_weight(chain: Sequence[x509.Certificate], platforms: Sequence[Platform]) -> int:
    hashes, keys = chain_hash_ubiquity(chain), chain_key_ubiquity(chain)
    return sum(int(p.weight) for p in platforms if p.trusts(chain[-1]) and p.hash_ubiquity <= hashes and p.key_ubiquity <= keys)


def _cmp(a: dt.datetime, b: dt.datetime) -> int:
    return int(a > b) - int(a < b)


def _expiry_ubiquity(chain1: Sequence[x509.Certificate], chain2: Sequence[x509.Certificate]) -> int:
    """Compare expiries from the root down; the first difference decides (later is better)."""
    for c1, c2 in zip(reversed(chain1), reversed(chain2), strict=False):
        result = _cmp(c1.not_valid_after_utc, c2.not_valid_after_utc)
        if result:
            return result
    return 0


# --------------------------------------------------------------------------------------------------------------
# Ranking (cfssl ubiquity.Filter and the flavors)


def _filter(chains: list[list[x509.Certificate]], score: Any) -> list[list[x509.Certificate]]:
    """cfssl's ``ubiquity.Filter``: keep every chain tied with the best; order is preserved."""
    if len(chains) <= 1:
        return chains
    best = chains[0]
    kept: list[list[x509.Certificate]] = []
    for chain in chains:
        result = score(best, chain)
        if result < 0:
            best, kept = chain, [chain]
        elif result == 0:
            kept.append(chain)
    return kept


def optimal_chains(chains: list[list[x509.Certificate]]) -> list[list[x509.Certificate]]:
    chains = _filter(chains, lambda a, b: len(b) - len(a))
    chains = _filter(chains, lambda a, b: _cmp(chain_expiry(a), chain_expiry(b)))

    def suite(chain: list[x509.Certificate]) -> int:
        return _mean([hash_priority(c) for c in chain]) + _mean([key_priority(c) for c in chain])

    return _filter(chains, lambda a, b: suite(a) - suite(b))


def ubiquitous_chains(chains: list[list[x509.Certificate]], platforms: Sequence[Platform]) -> list[list[x509.Certificate]]:
    chains = _filter(chains, lambda a, b: platform_weight(a, platforms) - platform_weight(b, platforms))
    chains = _filter(chains, lambda a, b: _sha2_homogeneity(a) - _sha2_homogeneity(b))
    chains = _filter(chains, lambda a, b: len(b) - len(a))
    chains = _filter(chains, lambda a, b: chain_hash_ubiquity(a) - chain_hash_ubiquity(b))
    chains = _filter(chains, lambda a, b: chain_key_ubiquity(a) - chain_key_ubiquity(b))
    chains = _filter(chains, _expiry_ubiquity)
    return optimal_chains(chains)


# SHA-1 deprecation policies (cfssl ubiquity/sha1.go): platform, description, severity, expiry deadline, effective date.
_SHA1_POLICIES: tuple[tuple[str, str, int, dt.datetime | None, dt.datetime | None], ...] = (
    ("Google Chrome", "shows the SSL connection has minor problems", 2, dt.datetime(2016, 1, 1, tzinfo=_UTC), None),
    ("Google Chrome", "shows the SSL connection is untrusted", 3, dt.datetime(2017, 1, 1, tzinfo=_UTC), None),
    ("Mozilla Firefox", "gives warning in the developer console", 1, dt.datetime(2017, 1, 1, tzinfo=_UTC), None),
    ("Mozilla Firefox", "shows the SSL connection is untrusted", 2, None, dt.datetime(2016, 1, 1, tzinfo=_UTC)),
    ("Microsoft Windows Vista and later", "shows the SSL connection is untrusted", 3, None, dt.datetime(2016, 1, 1, tzinfo=_UTC)),
    ("Microsoft Windows Vista and later", "shows the SSL connection is untrusted", 3, dt.datetime(2017, 1, 1, tzinfo=_UTC), None),
)


def sha1_deprecation_messages(chain: Sequence[x509.Certificate]) -> list[str]:
    """Platforms that reject SHA-1 signatures in the chain (root excluded); cfssl's map order is random, ours sorted."""
    selected: dict[str, tuple[int, str]] = {}
    leaf = chain[0]
    for platform, description, severity, deadline, effective in _SHA1_POLICIES:
        if deadline is not None and leaf.not_valid_after_utc < deadline:
            continue
        flagged = any(
            _signature_class(c) == "SHA1" and (effective is None or c.not_valid_before_utc >= effective) for c in chain[:-1] or chain
        )
        if flagged and selected.get(platform, (0, ""))[0] < severity:
            selected[platform] = (severity, description)
    return [f"{platform} {description} due to SHA-1 deprecation" for platform, (_, description) in sorted(selected.items())]
