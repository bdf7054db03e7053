"""The bundler: build, verify and rank certificate chains the way cfssl's ``bundler`` package does (reference §4.2).

Given a leaf (and maybe part of its chain and its key), the bundler finds **every** chain from the leaf to a
trusted root through three sources of intermediates: the ``-int-bundle`` pool (plus certificates stashed in
``-int-dir`` by earlier runs), the extra certificates of the input, and AIA caIssuers URLs fetched over
plain HTTP. Candidate chains come from a small path builder (issuer name == subject, the parent is a CA
as Go's ``CheckSignatureFrom`` requires, signature valid); each candidate is then **validated by cryptography's
verifier** (store = that chain's root, untrusted = its intermediates), which enforces validity periods, name
constraints and path lengths. Like newest cfssl, any extended key usage is accepted. The valid chains are
ranked by flavor:

* ``optimal``: shortest, then latest expiry, then strongest crypto;
* ``ubiquitous`` (default; any unknown flavor): platform coverage from the ``-metadata`` file, SHA-2
  homogeneity, length, hash and key ubiquity, later-expiring intermediates, then ``optimal``;
* ``force``: no pools; the input, in order (or reversed), must verify link by link.

Security-relevant choices: only ``http://`` AIA URLs are fetched (never ``file:``, ``ftp:`` or redirects to
other schemes), with a per-request timeout, at most :data:`MAX_AIA_FETCHES` requests of at most
:data:`MAX_AIA_BYTES` each per bundle, a depth bound and loop detection on URLs and certificates. Fetched
certificates are only trusted as intermediates once a chain through them validates to a configured root;
roots are never learned. The status code and messages are cfssl's byte for byte.
"""

from __future__ import annotations

import binascii
import datetime as dt
import functools
import hashlib
import ipaddress
import json
import logging
import os
import socket
import ssl
import threading
import time
import urllib.parse
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID, NameOID, PublicKeyAlgorithmOID

from cfsslpy import certinfo
from cfsslpy.errors import Category, CfsslError, Error, PlainError, Reason
from cfsslpy.inputs import read_input, read_path, write_atomic
from cfsslpy.keys import PrivateKey, certificate_key_matches, check_supported_key, encode_private_key, is_dsa, load_private_key
from cfsslpy.pem import all_blocks, encode_pem

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------------------
# Constants (cfssl's ubiquity package and bundler messages)

FLAVOR_OPTIMAL = "optimal"
FLAVOR_UBIQUITOUS = "ubiquitous"
FLAVOR_FORCE = "force"

STATUS_EXPIRING_BIT = 1
STATUS_NOT_UBIQUITOUS_BIT = 2
EXPIRING_HOURS = 720  # "expiring within 30 days"

EXPIRING_WARNING = "The bundle is expiring within 30 days."
SHA2_WARNING = (
    "The bundle contains certificates signed with advanced hash functions such as SHA2, which are problematic "
    "for certain operating systems, e.g. Windows XP SP2."
)
ECDSA_WARNING = "The bundle contains ECDSA signatures, which are problematic for certain operating systems, e.g. Windows XP, Android 2.2 and Android 2.3."
NO_METADATA_WARNING = "Unable to measure bundle ubiquity: No platform metadata present."
UNTRUSTED_WARNING = "The bundle may not be trusted by the following platform(s):"
NO_METADATA_LOG = "No metadata, Ubiquitous falls back to Optimal."
FORCE_VERIFY_FAILED = "Unable to verify the certificate chain"
UNKNOWN_AUTHORITY = "x509: certificate signed by unknown authority"
TOO_MANY_INTERMEDIATES = "x509: too many intermediates for path length constraint"
EXPIRED_PREFIX = "x509: certificate has expired or is not yet valid: "

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

# Path building and AIA bounds.
MAX_CHAIN_LENGTH = 10
MAX_CHAINS = 64
MAX_AIA_FETCHES = 8
MAX_AIA_DEPTH = 6
MAX_AIA_BYTES = 1 << 20
MAX_REDIRECTS = 3

#: Where the system's trusted roots usually live (Go's crypto/x509 list for Linux and the BSDs).
SYSTEM_ROOT_FILES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Gentoo, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL 6
    "/etc/ssl/ca-bundle.pem",  # openSUSE
    "/etc/pki/tls/cacert.pem",  # OpenELEC
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # CentOS, RHEL 7
    "/etc/ssl/cert.pem",  # Alpine, macOS, the BSDs
    "/usr/local/etc/ssl/cert.pem",  # FreeBSD
)

_UTC = dt.timezone.utc
# the leaf key types cfssl's Bundle accepts (Go's x509.RSA, ECDSA and Ed25519)
_BUNDLE_KEY_ALGORITHMS = frozenset(
    {PublicKeyAlgorithmOID.RSAES_PKCS1_v1_5, PublicKeyAlgorithmOID.EC_PUBLIC_KEY, PublicKeyAlgorithmOID.ED25519}
)
_NOT_SUPPORTED = CfsslError(Category.PRIVATE_KEY, Reason.NOT_RSA_OR_ECC)


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
            roots = frozenset(spki_sha1(cert) for cert in _lenient_pem_certificates(store))
        platforms.append(Platform(name, weight, hash_algo, key_algo, roots))
    return platforms


# --------------------------------------------------------------------------------------------------------------
# Certificate facts used for ranking


_SIGNATURE_NAMES: dict[bytes, str] = {}  # by certificate signature: ranking asks for each chain's certificates


def _signature_name(cert: x509.Certificate) -> str:
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
    name = _signature_name(cert)
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


def _expiry(chain: Sequence[x509.Certificate]) -> dt.datetime:
    return min(c.not_valid_after_utc for c in chain)


def _sha2_homogeneity(chain: Sequence[x509.Certificate]) -> int:
    return 1 if all(_signature_class(c) == "SHA2" for c in chain[:-1]) else 0


def _platform_weight(chain: Sequence[x509.Certificate], platforms: Sequence[Platform]) -> int:
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
    chains = _filter(chains, lambda a, b: _cmp(_expiry(a), _expiry(b)))

    def suite(chain: list[x509.Certificate]) -> int:
        return _mean([hash_priority(c) for c in chain]) + _mean([key_priority(c) for c in chain])

    return _filter(chains, lambda a, b: suite(a) - suite(b))


def ubiquitous_chains(chains: list[list[x509.Certificate]], platforms: Sequence[Platform]) -> list[list[x509.Certificate]]:
    chains = _filter(chains, lambda a, b: _platform_weight(a, platforms) - _platform_weight(b, platforms))
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


# --------------------------------------------------------------------------------------------------------------
# Parsing inputs


def _lenient_pem_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate that parses cleanly; blocks that do not (or only with a deprecation warning, such as a
    system root with a non-positive serial number, which a future cryptography will refuse) are skipped."""
    certs: list[x509.Certificate] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", CryptographyDeprecationWarning)
        for block in all_blocks(data):
            if block.label != "CERTIFICATE":
                continue
            try:
                certs.append(x509.load_der_x509_certificate(block.data))
            except (ValueError, CryptographyDeprecationWarning) as exc:
                log.debug("skipped a certificate that does not parse cleanly: %s", exc)
                continue
    return certs


_BEGIN_CERT = b"-----BEGIN CERTIFICATE-----"


class _CertList(list[x509.Certificate]):
    """Certificates parsed from one PEM bundle, with each one's DER as it stood in the file (``raw``), so that
    a pool can search names in the DER without asking cryptography to re-encode every certificate."""

    raw: list[bytes]


def _raw_ders(text: bytes, count: int) -> list[bytes] | None:
    """The DER of each CERTIFICATE block of a plain bundle, in order; None when a block has headers or other
    surprises (the pool then asks cryptography for the bytes)."""
    ders: list[bytes] = []
    for part in text.split(_BEGIN_CERT)[1:]:
        end = part.find(b"-----END CERTIFICATE-----")
        if end < 0 or b":" in part[:end]:
            return None
        try:
            ders.append(binascii.a2b_base64(part[:end]))
        except binascii.Error:
            return None
    return ders if len(ders) == count else None


def _plain_certificate_bundle(text: bytes, *, strict: bool = True) -> list[x509.Certificate] | None:
    """The common case, parsed fast: only CERTIFICATE blocks without headers, ending with the last one; each
    block's base64 decoded here and its DER parsed by cryptography (about half the time of cryptography's PEM
    loader, and the DER is kept for the pools). None when anything is unusual (another block type, trailing
    data, a block that does not decode or parse), so that the block-by-block parser below gives cfssl's
    exact answer."""
    count = text.count(_BEGIN_CERT)
    if not count or text.count(b"-----BEGIN ") != count or not text.endswith(b"-----END CERTIFICATE-----"):
        return None
    ders = _raw_ders(text, count)
    if ders is None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", CryptographyDeprecationWarning)
            parsed = _CertList(x509.load_der_x509_certificate(der) for der in ders)
            for cert in parsed if strict else ():
                _ = cert.extensions  # Go rejects malformed extensions up front
    except (ValueError, CryptographyDeprecationWarning, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
        return None
    parsed.raw = ders
    return parsed


def _parse_pem_certificates(data: bytes, *, strict: bool = True) -> list[x509.Certificate]:
    """cfssl ``helpers.ParseCertificatesPEM``: every block a certificate or a PKCS#7 bundle; no trailing junk.

    Raises CfsslError 1003 for a block that does not parse, 1002 for data left over that is not PEM.
    """
    from cfsslpy.pem import decode_pem_at

    text = data.strip()
    fast = _plain_certificate_bundle(text, strict=strict)
    if fast is not None:
        return fast
    certs: list[x509.Certificate] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos] in b" \t\r\n\v\f":  # Go trims the rest before each block
            pos += 1
        if pos == len(text):
            break
        block, after = decode_pem_at(text, pos)
        if block is None:
            break
        try:
            cert = x509.load_der_x509_certificate(block.data)
            _ = cert.extensions
            certs.append(cert)
        except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
            try:
                bundle = _load_pkcs7(block.data)
            except ValueError:
                bundle = []
            if not bundle:
                raise CfsslError(Category.CERTIFICATE, Reason.PARSE_FAILED) from None
            certs.extend(bundle)
        pos = after
    if pos < len(text):
        raise CfsslError(Category.CERTIFICATE, Reason.DECODE_FAILED)
    return certs


def _load_pkcs7(der: bytes) -> list[x509.Certificate]:
    """The certificates of a PKCS#7 bundle. ``openssl crl2pkcs7`` keeps file order in the certificate SET,
    which is not DER's sorted order; cryptography then parses it as BER with a warning (which a future
    release may turn into an error). Go reads such files silently, so do we; the warning goes to DEBUG."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        certs = pkcs7.load_der_pkcs7_certificates(der)
    for warning in caught:
        log.debug("PKCS#7 input: %s", warning.message)
    return certs


def _parse_der_certificates(data: bytes, password: str) -> tuple[list[x509.Certificate], PrivateKey | None]:
    """cfssl ``helpers.ParseCertificatesDER``: PKCS#7, then PKCS#12 (with ``password``), then concatenated DER.

    cfssl trims white space around the input first, which corrupts DER that happens to end with a byte such
    as 0x0a (a signature's last byte, one time in forty). The input is tried as it is, then trimmed (a file
    with a trailing newline)."""
    stripped = data.strip()
    if stripped == data:
        return _parse_der_exact(data, password)
    try:
        return _parse_der_exact(data, password)
    except CfsslError:
        return _parse_der_exact(stripped, password)


def _parse_der_exact(data: bytes, password: str) -> tuple[list[x509.Certificate], PrivateKey | None]:
    try:
        certs = _load_pkcs7(data)
        if certs:
            return certs, None
    except ValueError:
        pass
    try:
        p12 = pkcs12.load_pkcs12(data, password.encode("utf-8"))
    except (ValueError, TypeError, UnsupportedAlgorithm):
        p12 = None
    if p12 is not None and p12.cert is not None:
        key: Any = p12.key
        if key is not None:
            check_supported_key(key)
        # Go's pkcs12.Decode takes exactly one certificate; we keep any extra ones as part of the chain.
        return [p12.cert.certificate, *(c.certificate for c in p12.additional_certs)], key
    certs = []
    rest = data
    try:
        while rest:
            cert, rest = _one_der_certificate(rest)
            certs.append(cert)
    except ValueError:
        raise CfsslError(Category.CERTIFICATE, Reason.DECODE_FAILED) from None
    if not certs:
        raise CfsslError(Category.CERTIFICATE, Reason.DECODE_FAILED)
    return certs, None


def _one_der_certificate(data: bytes) -> tuple[x509.Certificate, bytes]:
    """The first DER certificate of a concatenation (SEQUENCE length from the header) and the rest."""
    if len(data) < 2 or data[0] != 0x30:
        raise ValueError("not a DER SEQUENCE")
    first = data[1]
    if first < 0x80:
        length, header = first, 2
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or len(data) < 2 + count:
            raise ValueError("bad DER length")
        length, header = int.from_bytes(data[2 : 2 + count], "big"), 2 + count
    end = header + length
    if end > len(data):
        raise ValueError("truncated DER")
    return x509.load_der_x509_certificate(data[:end]), data[end:]


def parse_bundle_input(data: bytes, password: str = "0") -> tuple[list[x509.Certificate], PrivateKey | None]:
    """The certificates (leaf first, maybe followed by part of its chain) and any key of a bundle input.

    PEM (certificates or PKCS#7 blocks) is tried first; if that fails, DER: PKCS#7, PKCS#12 (decrypted with
    ``password``, cfssl's default ``"0"``; its key is returned) or one or more concatenated certificates. When
    neither works the PEM error is reported (1002 no PEM / 1003 a block that does not parse), like cfssl.
    """
    try:
        certs = _parse_pem_certificates(data)
        key: PrivateKey | None = None
    except CfsslError as pem_error:
        try:
            certs, key = _parse_der_certificates(data, password)
        except CfsslError:
            raise pem_error from None
    if not certs:
        raise CfsslError(Category.CERTIFICATE, Reason.DECODE_FAILED)
    return certs, key


def _pool_certificates(data: bytes, category: Category) -> list[x509.Certificate]:
    try:
        # pools of thousands: extensions are parsed when a certificate is used, not all up front (a pool
        # certificate with a malformed extension then never makes a valid chain, instead of failing the load)
        return _parse_pem_certificates(data, strict=False)
    except CfsslError:
        raise CfsslError(category, Reason.PARSE_FAILED) from None


def system_roots() -> list[x509.Certificate]:
    """The system's trusted roots: ``$SSL_CERT_FILE`` or the first of :data:`SYSTEM_ROOT_FILES` that holds any."""
    candidates = [os.environ["SSL_CERT_FILE"]] if os.environ.get("SSL_CERT_FILE") else []
    for path in [*candidates, *SYSTEM_ROOT_FILES]:
        try:
            certs = _lenient_pem_certificates(read_path(path))
        except PlainError:
            continue
        if certs:
            return certs
    raise CfsslError(
        Category.ROOT,
        Reason.READ_FAILED,
        f"no system root certificates found (looked in {', '.join(SYSTEM_ROOT_FILES)}); give the roots with -ca-bundle",
    )


# --------------------------------------------------------------------------------------------------------------
# Go's CheckSignatureFrom and hostname checks


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return cert.version == x509.Version.v1


def _can_sign_certificates(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign)
    except x509.ExtensionNotFound:
        return True


@functools.lru_cache(maxsize=1024)  # at most ~3 MB of certificates
def _signature_ok(child: x509.Certificate, parent: x509.Certificate) -> bool:
    """Whether ``parent``'s key signed ``child`` (names compared too). Remembered per pair (certificates hash
    by their DER, and the answer never changes): the pool's intermediate-to-root links are checked once, not
    on every bundle request (each check is a signature verification, ~80 us for ECDSA P-256)."""
    if is_dsa(parent):
        return False  # Go >= 1.16 verifies no DSA signature (x509.ErrUnsupportedAlgorithm)
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def check_signature_from(child: x509.Certificate, parent: x509.Certificate) -> bool:
    """Go's ``child.CheckSignatureFrom(parent)``: the parent is a CA allowed to sign certificates, the signature holds.

    (Go does not compare names here; cryptography's check does, which only matters for broken inputs.)
    """
    return _is_ca(parent) and _can_sign_certificates(parent) and _signature_ok(child, parent)


def issuer_refusal(issuer: x509.Certificate, chain: Sequence[x509.Certificate], now: dt.datetime) -> CfsslError | None:
    """Go's ``isValid`` for an issuer about to extend ``chain`` (leaf first): its validity period (1211), then
    its path length constraint against the intermediates already below it (1213)."""
    if now > issuer.not_valid_after_utc or now < issuer.not_valid_before_utc:
        return validity_error(issuer, now)
    try:
        path_length = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
    except (x509.ExtensionNotFound, ValueError):
        return None
    if path_length is not None and len(chain) - 1 > path_length:
        return _invalid(3, TOO_MANY_INTERMEDIATES)
    return None


def check_leaf_key_algorithm(cert: x509.Certificate) -> None:
    """cfssl bundles RSA, ECDSA and Ed25519 leaves only; any other key type (DSA...) is 2200, checked before
    the key match and the chain (so a DSA leaf is 2200, not "signed by unknown authority")."""
    if cert.public_key_algorithm_oid not in _BUNDLE_KEY_ALGORITHMS:
        raise CfsslError(Category.PRIVATE_KEY, Reason.NOT_RSA_OR_ECC)


def load_bundle_key(data: bytes) -> PrivateKey:
    """The private key given with a bundle (``-key``, ``private_key``), parsed as cfssl's ``ParsePrivateKeyPEM``.

    A key of a type Go cannot parse at all (DSA, a curve it lacks) fails to parse there: 2003 "Failed to parse
    private key", where our signing-key loader says 2200. No password is applied (cfssl applies none).
    """
    try:
        return load_private_key(data, allow_password=False)
    except CfsslError as exc:
        if exc.code == _NOT_SUPPORTED.code and exc.message == _NOT_SUPPORTED.message:
            raise CfsslError(Category.PRIVATE_KEY, Reason.PARSE_FAILED) from None
        raise


def is_self_signed(cert: x509.Certificate) -> bool:
    """cfssl's self-signed test: the certificate verifies its own signature as a CA (so a self-signed non-CA
    leaf is *not* self-signed for cfssl and fails later as signed by an unknown authority)."""
    return cert.issuer == cert.subject and check_signature_from(cert, cert)


def partial_verify(certs: Sequence[x509.Certificate]) -> bool:
    """Every certificate is signed by the next one (cfssl ``partialVerify``)."""
    return all(check_signature_from(certs[i], certs[i + 1]) for i in range(len(certs) - 1))


def _dns_names(cert: x509.Certificate) -> list[str]:
    try:
        return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName))
    except (x509.ExtensionNotFound, ValueError):
        return []


def _ip_addresses(cert: x509.Certificate) -> list[str]:
    try:
        ips = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.IPAddress)
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [str(ip) for ip in ips]


def _common_name(cert: x509.Certificate) -> str:
    values = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[-1].value) if values else ""


def _match_hostname(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if not pattern or not host:
        return False
    p_labels, h_labels = pattern.split("."), host.split(".")
    if len(p_labels) != len(h_labels):
        return False
    for i, (p, h) in enumerate(zip(p_labels, h_labels, strict=True)):
        if i == 0 and p == "*":
            continue
        if p != h:
            return False
    return True


def verify_hostname(cert: x509.Certificate, host: str) -> None:
    """Go's ``cert.VerifyHostname(host)`` (SANs only, as Go >= 1.15): mismatch -> CfsslError 1200 with Go's text."""
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        ips = _ip_addresses(cert)
        if any(ipaddress.ip_address(candidate) == ip for candidate in ips):
            return
        if not ips:
            raise CfsslError(
                Category.CERTIFICATE,
                Reason.VERIFY_FAILED,
                f"x509: cannot validate certificate for {host} because it doesn't contain any IP SANs",
            )
        valid = ", ".join(ips)
    else:
        names = _dns_names(cert)
        if any(_match_hostname(name, host) for name in names):
            return
        try:
            has_san = bool(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName))
        except x509.ExtensionNotFound:
            has_san = False
        if not has_san and _match_hostname(_common_name(cert), host):
            raise CfsslError(
                Category.CERTIFICATE, Reason.VERIFY_FAILED, "x509: certificate relies on legacy Common Name field, use SANs instead"
            )
        valid = ", ".join(names)
    if not valid:
        raise CfsslError(
            Category.CERTIFICATE, Reason.VERIFY_FAILED, f"x509: certificate is not valid for any names, but wanted to match {host}"
        )
    raise CfsslError(Category.CERTIFICATE, Reason.VERIFY_FAILED, f"x509: certificate is valid for {valid}, not {host}")


# --------------------------------------------------------------------------------------------------------------
# The bundle document


def _go_time(stamp: dt.datetime) -> str:
    return stamp.astimezone(_UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


_NAME_FIELDS = {
    3: "CommonName",
    5: "SerialNumber",
    6: "Country",
    7: "Locality",
    8: "Province",
    9: "StreetAddress",
    10: "Organization",
    11: "OrganizationalUnit",
    17: "PostalCode",
}


def _bundle_name(name: x509.Name) -> str:
    """cfssl's bundle ``issuer``/``subject``: ``/<Field>=<value>`` per attribute in RDN order, the field chosen
    by the OID's 4th arc (so attributes outside X.520's 2.5.4 arc print as ``/=value``)."""
    out = []
    for attribute in name:
        arcs = [int(a) for a in attribute.oid.dotted_string.split(".")]
        label = _NAME_FIELDS.get(arcs[3], "") if len(arcs) >= 4 else ""
        value = attribute.value if isinstance(attribute.value, str) else attribute.value.decode("latin-1")
        out.append(f"/{label}={value}")
    return "".join(out)


def _key_type(cert: x509.Certificate) -> tuple[str, int]:
    if is_dsa(cert):
        return "DSA", 0
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"{key.key_size}-bit RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"{key.curve.key_size}-bit ECDSA", key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 32
    if isinstance(key, ed448.Ed448PublicKey):
        return "Unknown", 57
    return "Unknown", 0


def _ocsp_servers(cert: x509.Certificate) -> list[str] | None:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    urls = [
        str(d.access_location.value)
        for d in aia
        if d.access_method == AuthorityInformationAccessOID.OCSP and isinstance(d.access_location, x509.UniformResourceIdentifier)
    ]
    return urls or None


def ca_issuer_urls(cert: x509.Certificate) -> list[str]:
    """The AIA caIssuers URIs of a certificate, in order."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [
        str(d.access_location.value)
        for d in aia
        if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS and isinstance(d.access_location, x509.UniformResourceIdentifier)
    ]


def _crl_support(cert: x509.Certificate) -> bool:
    try:
        points = cert.extensions.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return any(isinstance(n, x509.UniformResourceIdentifier) for p in points for n in (p.full_name or []))  # type: ignore[attr-defined]


def _hostnames(cert: x509.Certificate) -> list[str]:
    """CN and DNS SANs, deduplicated (cfssl's order is Go's random map order; ours is CN first, then SAN order)."""
    out: list[str] = []
    for name in [_common_name(cert), *_dns_names(cert)]:
        if name and name not in out:
            out.append(name)
    return out


@dataclass
class BundleStatus:
    """cfssl's ``BundleStatus`` (JSON fields in struct order)."""

    rebundled: bool = False
    expiring_skis: list[str] | None = None
    untrusted_root_stores: list[str] | None = None
    messages: list[str] | None = None
    code: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "rebundled": self.rebundled,
            "expiring_SKIs": self.expiring_skis,
            "untrusted_root_stores": self.untrusted_root_stores,
            "messages": self.messages,
            "code": self.code,
        }


@dataclass
class Bundle:
    """A built bundle: ``chain`` is what goes out (leaf first; the root only under cfssl's OCSP rule)."""

    chain: list[x509.Certificate]
    root: x509.Certificate | None
    key: PrivateKey | None
    status: BundleStatus
    flavor: str = FLAVOR_UBIQUITOUS
    hostnames: list[str] = field(default_factory=list)

    @property
    def cert(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def expires(self) -> dt.datetime:
        return _expiry(self.chain)

    @property
    def leaf_expires(self) -> dt.datetime:
        return self.cert.not_valid_after_utc

    def chain_pem(self) -> str:
        """The ``bundle`` field: the PEM certificates joined, without the trailing newline."""
        return "".join(_pem(c) for c in self.chain).strip()

    def to_json(self) -> dict[str, Any]:
        """cfssl's bundle JSON; a Go map, so the keys are sorted."""
        key_type, key_size = _key_type(self.cert)
        ocsp = _ocsp_servers(self.cert)
        doc: dict[str, Any] = {
            "bundle": self.chain_pem(),
            "crl_support": _crl_support(self.cert),
            "crt": _pem(self.cert).strip(),
            "expires": _go_time(self.expires),
            "hostnames": list(self.hostnames or _hostnames(self.cert)),
            "issuer": _bundle_name(self.cert.issuer),
            "key": encode_private_key(self.key).decode("ascii").strip() if self.key is not None else "",
            "key_size": key_size,
            "key_type": key_type,
            "leaf_expires": _go_time(self.leaf_expires),
            "ocsp": ocsp,
            "ocsp_support": ocsp is not None,
            "root": _pem(self.root).strip() if self.root is not None else "",
            "signature": _signature_name(self.cert),
            "status": self.status.to_json(),
            "subject": _bundle_name(self.cert.subject),
        }
        return dict(sorted(doc.items()))


# --------------------------------------------------------------------------------------------------------------
# The bundler


def stash_name(cert: x509.Certificate) -> str:
    """cfssl's file name for a learned intermediate: ``<CN without dots and spaces>_<hex SKI>_<hex serial>.crt``."""
    cn = _common_name(cert).replace(".", "").replace(" ", "")
    try:
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex()
    except (x509.ExtensionNotFound, ValueError):
        ski = ""
    serial = cert.serial_number
    serial_hex = serial.to_bytes((serial.bit_length() + 7) // 8, "big").hex() if serial > 0 else ""
    return f"{cn}_{ski}_{serial_hex}.crt"


def _ski(cert: x509.Certificate) -> bytes:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except (x509.ExtensionNotFound, ValueError):
        return b""


def _aki(cert: x509.Certificate) -> bytes:
    try:
        return cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier or b""
    except (x509.ExtensionNotFound, ValueError):
        return b""


def _aki_first(cert: x509.Certificate, candidates: list[x509.Certificate]) -> list[x509.Certificate]:
    """Go tries the candidate issuers whose SKI matches the certificate's AKI first (a stable sort)."""
    aki = _aki(cert)
    return sorted(candidates, key=lambda c: _ski(c) != aki) if aki else candidates


class _Pool:
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


class _Overlay:
    """Two pools searched as one, as if ``second`` had been added to a copy of ``first``, without the copy."""

    def __init__(self, first: _Pool, second: _Pool) -> None:
        self.first = first
        self.second = second

    def issuers_of(self, cert: x509.Certificate) -> list[x509.Certificate]:
        found = self.first.with_subject(cert.issuer)
        seen = {c.signature for c in found}
        candidates = [*found, *(c for c in self.second.with_subject(cert.issuer) if c.signature not in seen)]
        return _aki_first(cert, candidates)


class _Verification:
    """One attempt: candidate chains and the first validation error seen."""

    def __init__(self) -> None:
        self.valid: list[list[x509.Certificate]] = []
        self.errors: list[CfsslError] = []
        # Go's hard errors while building (an issuer that is expired or whose path length is exceeded): they
        # end the search for that branch, and are what Go reports when no chain reaches a root
        self.refusals: list[CfsslError] = []
        self.candidates = 0


class Bundler:
    """Builds bundles against a root pool and a (learning) intermediate pool (see the module docstring).

    ``roots=None`` loads the system roots (:func:`system_roots`). ``int_dir`` is cfssl's ``-int-dir``: the
    ``*.crt`` files already there join the intermediate pool, and intermediates learned from inputs or AIA
    are written there. The bundler is safe to share between threads (``serve``).
    """

    def __init__(
        self,
        roots: list[x509.Certificate] | None,
        intermediates: Sequence[x509.Certificate] = (),
        *,
        int_dir: str | None = None,
        metadata: list[Platform] | None = None,
        fetch_aia: bool = True,
        timeout: float = 5.0,
    ) -> None:
        self.roots = _Pool(system_roots() if roots is None else roots)
        self.intermediates = _Pool(intermediates)
        self.int_dir = int_dir or None
        self.platforms: list[Platform] = list(metadata or [])
        self.fetch_aia = fetch_aia
        self.timeout = timeout
        # serve's outbound policy (certinfo.FetchPolicy.connect) for the remote dial and AIA; None = any address
        self.connect: certinfo.Connect | None = None
        self._lock = threading.Lock()
        if self.int_dir and os.path.isdir(self.int_dir):
            for entry in sorted(os.listdir(self.int_dir)):
                if entry.endswith(".crt"):
                    path = os.path.join(self.int_dir, entry)
                    try:
                        data = read_path(path)
                    except PlainError as exc:
                        raise CfsslError(Category.INTERMEDIATES, Reason.READ_FAILED, exc.message) from None
                    for cert in _lenient_pem_certificates(data):
                        self.intermediates.add(cert)

    @classmethod
    def from_files(cls, ca_bundle: str = "", int_bundle: str = "", int_dir: str = "", metadata: str = "", **kw: Any) -> Bundler:
        """cfssl's ``NewBundler`` plus ``-int-dir`` and ``-metadata``.

        Unreadable ``ca_bundle`` -> 4001, unparsable -> 4003; likewise 3001/3003 for ``int_bundle``. An empty
        ``ca_bundle`` (name or file) means the system roots. A ``metadata`` file that fails to load is logged
        and ignored, as cfssl's ``bundle`` command and server do.
        """
        roots: list[x509.Certificate] | None = None
        intermediates: list[x509.Certificate] = []
        if ca_bundle:
            try:
                data = read_input(ca_bundle, allow_prefixes=False)
            except PlainError as exc:
                raise CfsslError(Category.ROOT, Reason.READ_FAILED, exc.message) from None
            if data:
                roots = _pool_certificates(data, Category.ROOT)
        if int_bundle:
            try:
                data = read_input(int_bundle, allow_prefixes=False)
            except PlainError as exc:
                raise CfsslError(Category.INTERMEDIATES, Reason.READ_FAILED, exc.message) from None
            if data:
                intermediates = _pool_certificates(data, Category.INTERMEDIATES)
        platforms: list[Platform] = []
        if metadata:
            try:
                platforms = load_metadata(metadata)
            except Error as exc:
                log.warning("%s", exc.message)
        return cls(roots, intermediates, int_dir=int_dir or None, metadata=platforms, **kw)

    @classmethod
    def force(cls) -> Bundler:
        """The bundler cfssl uses for ``-flavor force``: no pools at all."""
        return cls([], [], fetch_aia=False)

    # ---------------------------------------------------------------------------------------------------------

    def bundle(
        self,
        certs: list[x509.Certificate],
        key: PrivateKey | None = None,
        flavor: str = FLAVOR_UBIQUITOUS,
        *,
        now: dt.datetime | None = None,
    ) -> Bundle:
        """Bundle ``certs`` (leaf first; the rest, in any order of the two directions, is a partial chain)."""
        if not certs:
            raise CfsslError(Category.CERTIFICATE, Reason.DECODE_FAILED)
        now = now or dt.datetime.now(_UTC)
        log.info("bundling certificate for %s", certs[0].subject.rfc4514_string())
        certs = list(certs)
        if len(certs) > 1 and not partial_verify(certs):
            reversed_certs = certs[::-1]
            if partial_verify(reversed_certs):
                certs = reversed_certs
        leaf = certs[0]
        check_leaf_key_algorithm(leaf)  # cfssl's order: the leaf's key type, the key match, then the chain
        if key is not None and not certificate_key_matches(key, leaf):
            raise CfsslError(Category.PRIVATE_KEY, Reason.KEY_MISMATCH)
        if flavor == FLAVOR_FORCE:
            return self._force_bundle(certs, key, now)
        if is_self_signed(leaf):
            raise CfsslError(Category.CERTIFICATE, Reason.SELF_SIGNED)

        extra = [c for c in certs[1:] if c not in self.roots]
        verification = self._verify(leaf, extra, now)
        # AIA only for Go's UnknownAuthorityError: an issuer refused while building (expired, path length) is
        # a hard error in Go, and cfssl fetches nothing then
        if not verification.valid and self.fetch_aia and verification.candidates == 0 and not verification.refusals:
            log.debug("searching for intermediates via AIA issuer")
            fetched = self._fetch_aia(certs)
            if fetched:
                verification = self._verify(leaf, extra + fetched, now)
        if not verification.valid:
            if verification.errors:
                raise verification.errors[0]
            if verification.refusals:
                raise verification.refusals[0]
            raise CfsslError(Category.CERTIFICATE, Reason.VERIFY_FAILED + 20, UNKNOWN_AUTHORITY)
        self._learn(verification.valid)

        chains = verification.valid
        if flavor == FLAVOR_OPTIMAL:
            chains = optimal_chains(chains)
        else:
            if not self.platforms:
                log.warning(NO_METADATA_LOG)
            chains = ubiquitous_chains(chains, self.platforms)
        chosen = chains[0]
        log.info("the anchoring root is %s", chosen[-1].subject.rfc4514_string())

        status = BundleStatus()
        messages: list[str] = []
        expiring = [i for i, c in enumerate(chosen) if c.not_valid_after_utc - now < dt.timedelta(hours=EXPIRING_HOURS)]
        self._common_status(chosen, expiring, status, messages)
        if not self.platforms:
            status.code |= STATUS_NOT_UBIQUITOUS_BIT
            messages.append(NO_METADATA_WARNING)
        untrusted = sorted(p.name for p in self.platforms if not p.trusts(chosen[-1]))
        if untrusted:
            status.code |= STATUS_NOT_UBIQUITOUS_BIT
            messages.append(UNTRUSTED_WARNING + ",".join(f" {name}" for name in untrusted) + ".")
        sha1_messages = sha1_deprecation_messages(chosen)
        if sha1_messages:
            status.code |= STATUS_NOT_UBIQUITOUS_BIT
            messages.extend(sha1_messages)
        status.untrusted_root_stores = untrusted
        status.messages = messages or None

        root = chosen[-1]
        leaf_is_ca = _is_ca(leaf) and leaf.version != x509.Version.v1
        if _ocsp_servers(leaf) is not None and not leaf_is_ca and len(chosen) <= 2:
            output = list(chosen)  # cfssl keeps the root so that the bundle has an issuer for OCSP stapling
        else:
            output = chosen[:-1] or chosen[:1]
        status.rebundled = _differs(output, certs)
        return Bundle(output, root, key, status, flavor)

    def _force_bundle(self, certs: list[x509.Certificate], key: PrivateKey | None, now: dt.datetime) -> Bundle:
        if not partial_verify(certs):
            raise CfsslError(Category.CERTIFICATE, Reason.VERIFY_FAILED, FORCE_VERIFY_FAILED)
        status = BundleStatus()
        messages: list[str] = []
        expiring = [i for i, c in enumerate(certs) if c.not_valid_after_utc - now < dt.timedelta(hours=EXPIRING_HOURS)]
        self._common_status(certs, expiring, status, messages)
        status.messages = messages or None
        status.rebundled = False
        return Bundle(list(certs), None, key, status, FLAVOR_FORCE)

    @staticmethod
    def _common_status(chain: list[x509.Certificate], expiring: list[int], status: BundleStatus, messages: list[str]) -> None:
        if expiring:
            status.code |= STATUS_EXPIRING_BIT
            which = "The expiring certs are" if len(expiring) > 1 else "The expiring cert is"
            messages.append(EXPIRING_WARNING + which + "".join(f" #{i + 1}" for i in expiring) + " in the chain.")
            status.expiring_skis = [_ski(chain[i]).hex().upper() for i in expiring]
        if chain_hash_ubiquity(chain) <= SHA2_UBIQUITY:
            status.code |= STATUS_NOT_UBIQUITOUS_BIT
            messages.append(SHA2_WARNING)
        if chain_key_ubiquity(chain) <= ECDSA256_UBIQUITY:
            status.code |= STATUS_NOT_UBIQUITOUS_BIT
            messages.append(ECDSA_WARNING)

    # ---------------------------------------------------------------------------------------------------------
    # Chain building

    def candidate_chains(
        self,
        leaf: x509.Certificate,
        extra: Sequence[x509.Certificate] = (),
        *,
        now: dt.datetime | None = None,
        refusals: list[CfsslError] | None = None,
    ) -> list[list[x509.Certificate]]:
        """Every path leaf -> ... -> root through the pools and ``extra`` (not yet validated).

        With ``now``, an issuer that Go's ``isValid`` refuses while building (expired, or a path length the
        chain so far exceeds) is not followed, and its error goes to ``refusals``: Go reports that error
        (1211, 1213) rather than "unknown authority" when no chain reaches a root.
        """
        with self._lock:
            roots = self.roots
            shared = self.intermediates
        # the input's extra certificates are searched beside the shared pool, never added to it (copying a pool
        # of thousands per request would cost more than the whole chain search)
        intermediates = _Overlay(shared, _Pool(extra))
        checked: dict[tuple[bytes, bytes], bool] = {}

        def signed_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
            pair = (child.signature, parent.signature)
            if pair not in checked:
                checked[pair] = check_signature_from(child, parent)
            return checked[pair]

        chains: list[list[x509.Certificate]] = []
        if leaf in roots:
            chains.append([leaf])

        def acceptable(parent: x509.Certificate, chain: list[x509.Certificate]) -> bool:
            refusal = None if now is None else issuer_refusal(parent, chain, now)
            if refusal is not None and refusals is not None:
                refusals.append(refusal)
            return refusal is None

        def walk(chain: list[x509.Certificate]) -> None:
            current = chain[-1]
            seen = {c.signature for c in chain}
            for parent in roots.issuers_of(current):
                if len(chains) >= MAX_CHAINS:
                    return
                if parent.signature not in seen and signed_by(current, parent) and acceptable(parent, chain):
                    chains.append([*chain, parent])
            if len(chain) + 1 >= MAX_CHAIN_LENGTH:
                return
            for parent in intermediates.issuers_of(current):
                if len(chains) >= MAX_CHAINS:
                    return
                if parent.signature in seen or not signed_by(current, parent) or not acceptable(parent, chain):
                    continue
                walk([*chain, parent])

        walk([leaf])
        return chains

    def _verify(self, leaf: x509.Certificate, extra: Sequence[x509.Certificate], now: dt.datetime) -> _Verification:
        result = _Verification()
        candidates = self.candidate_chains(leaf, extra, now=now, refusals=result.refusals)
        result.candidates = len(candidates)
        for chain in candidates:
            error = validate_chain(chain, now)
            if error is None:
                result.valid.append(chain)
            else:
                result.errors.append(error)
        return result

    def _learn(self, chains: list[list[x509.Certificate]]) -> None:
        """Intermediates of validated chains join the pool (and the ``-int-dir`` stash) for later requests."""
        learned: list[x509.Certificate] = []
        with self._lock:
            for chain in chains:
                for cert in chain[1:-1]:
                    if cert not in self.roots and self.intermediates.add(cert):
                        learned.append(cert)
        if not self.int_dir:
            return
        for cert in learned:
            try:
                os.makedirs(self.int_dir, mode=0o755, exist_ok=True)
                path = os.path.join(self.int_dir, stash_name(cert))
                write_atomic(path, encode_pem("CERTIFICATE", cert.public_bytes(serialization.Encoding.DER)), 0o644)
                log.info("stashed new intermediate %s", stash_name(cert))
            except OSError as exc:  # as in cfssl, a failed write does not fail the bundle
                log.error("failed to write new intermediate: %s", exc)

    # ---------------------------------------------------------------------------------------------------------
    # AIA

    def _fetch_aia(self, certs: list[x509.Certificate]) -> list[x509.Certificate]:
        """Follow caIssuers URLs depth first from the input certificates (closest to the root first)."""
        seen_urls: set[str] = set()
        seen_certs = {c.signature for c in certs}
        fetched: list[x509.Certificate] = []
        budget = [MAX_AIA_FETCHES]

        def walk(cert: x509.Certificate, depth: int) -> None:
            if depth >= MAX_AIA_DEPTH:
                return
            for url in ca_issuer_urls(cert):
                if url in seen_urls or budget[0] <= 0:
                    continue
                seen_urls.add(url)
                budget[0] -= 1
                parent = self.fetch_certificate(url)
                if parent is None or parent.signature in seen_certs:
                    continue
                seen_certs.add(parent.signature)
                fetched.append(parent)
                if parent in self.roots or self.roots.issuers_of(parent) or is_self_signed(parent):
                    return
                walk(parent, depth + 1)
                return

        for cert in reversed(certs):
            walk(cert, 0)
        return [c for c in fetched if c not in self.roots]

    def fetch_certificate(self, url: str) -> x509.Certificate | None:
        """GET one caIssuers URL (``http://`` only), DER then PEM; None (logged) on any failure."""
        import http.client  # only when an AIA URL is followed: it costs tens of ms to import

        for _ in range(MAX_REDIRECTS + 1):
            parts = urllib.parse.urlsplit(url)
            if parts.scheme.lower() != "http" or not parts.hostname:
                log.debug("skipping AIA URL %s: only http:// URLs are fetched", url)
                return None
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            try:
                conn = _aia_connection(http.client, parts.hostname, parts.port or 80, self.timeout, self.connect)
                try:
                    deadline = time.monotonic() + self.timeout
                    conn.request("GET", path, headers={"User-Agent": "cfsslpy-bundler", "Accept": "*/*"})
                    response = conn.getresponse()
                    if response.status in (301, 302, 303, 307, 308) and response.getheader("Location"):
                        url = urllib.parse.urljoin(url, response.getheader("Location") or "")
                        continue
                    body = b""
                    while len(body) <= MAX_AIA_BYTES:
                        if time.monotonic() > deadline:
                            raise TimeoutError("AIA fetch timed out")
                        chunk = response.read(65536)
                        if not chunk:
                            break
                        body += chunk
                finally:
                    conn.close()
            except (OSError, http.client.HTTPException, ValueError, CfsslError) as exc:
                log.debug("failed to fetch %s: %s", url, exc)
                return None
            if len(body) > MAX_AIA_BYTES:
                log.debug("AIA response from %s is too large", url)
                return None
            try:
                return x509.load_der_x509_certificate(body)
            except ValueError:
                pass
            try:
                certs = _parse_pem_certificates(body)
            except CfsslError:
                certs = []
            if len(certs) == 1:
                return certs[0]
            log.debug("no certificate at %s", url)
            return None
        log.debug("too many redirects fetching %s", url)
        return None

    # ---------------------------------------------------------------------------------------------------------
    # Remote

    def bundle_from_remote(self, domain: str, ip: str = "", flavor: str = FLAVOR_UBIQUITOUS) -> Bundle:
        """Bundle the chain a TLS server presents (cfssl ``BundleFromRemote``).

        ``domain`` is ``host[:port]`` (port 443 by default); ``ip`` is dialled instead of resolving the host,
        which is still sent as SNI. A handshake verified against our roots is tried first; if it fails, an
        unverified one, and ``Failed rigid TLS handshake with <addr>: <error>`` is added to the messages.
        The server's whole chain is read where Python exposes it (``get_unverified_chain``: public from
        3.13, private on 3.10..3.12); otherwise only the leaf, completed from the pools and AIA. The leaf must
        match the host name (1200).
        """
        host, port = certinfo._split_host_port(domain)
        dial_name = certinfo._join_host_port(ip or host, port)
        dial_error = ""
        try:
            certs = self._dial(host, ip or host, port, verify=True)
        except _RigidFailure as exc:
            dial_error = f"Failed rigid TLS handshake with {dial_name}: {exc}"
            log.debug("rigid handshake failed: %s; retrying without verification", exc)
            certs = self._dial(host, ip or host, port, verify=False)
        verify_hostname(certs[0], host)
        bundle = self.bundle(certs, None, flavor)
        if dial_error:
            bundle.status.messages = [*(bundle.status.messages or []), dial_error]
        return bundle

    def _dial(self, host: str, dial_host: str, port: str, *, verify: bool) -> list[x509.Certificate]:
        address = certinfo._join_host_port(dial_host, port)
        try:
            port_number = int(port) if port.isdigit() else socket.getservbyname(port, "tcp")
        except OSError:
            raise CfsslError(Category.DIAL, Reason.NONE, f"dial tcp: lookup tcp/{port}: unknown port") from None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if verify:
            context.check_hostname = not certinfo._is_ip(host)
            context.verify_mode = ssl.CERT_REQUIRED
            roots = self.roots.all()
            if roots:
                context.load_verify_locations(cadata="".join(_pem(c) for c in roots))
        else:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        deadline = time.monotonic() + self.timeout
        try:
            sock = (self.connect or socket.create_connection)((dial_host, port_number), self.timeout)
        except socket.gaierror:
            raise CfsslError(Category.DIAL, Reason.NONE, f"dial tcp: lookup {dial_host}: no such host") from None
        except TimeoutError:
            raise CfsslError(Category.DIAL, Reason.NONE, f"dial tcp {address}: i/o timeout") from None
        except OSError as exc:
            raise CfsslError(Category.DIAL, Reason.NONE, f"dial tcp {address}: connect: {(exc.strerror or str(exc)).lower()}") from None
        try:
            with sock:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                with context.wrap_socket(sock, server_hostname=None if certinfo._is_ip(host) else host) as conn:
                    ders = _peer_chain(conn)
        except ssl.SSLCertVerificationError as exc:
            if verify:
                raise _RigidFailure(_go_verify_message(exc, host)) from None
            raise CfsslError(Category.DIAL, Reason.NONE, str(exc)) from None
        except TimeoutError:
            raise CfsslError(Category.DIAL, Reason.NONE, f"dial tcp {address}: i/o timeout") from None
        except ssl.SSLError as exc:
            message = certinfo._TLS_ERRORS.get(exc.reason or "", f"tls: {str(exc.reason or exc).lower()}")
            if verify:
                raise _RigidFailure(message) from None
            raise CfsslError(Category.DIAL, Reason.NONE, message) from None
        except OSError as exc:
            raise CfsslError(Category.DIAL, Reason.NONE, f"read tcp {address}: {(exc.strerror or str(exc)).lower()}") from None
        if not ders:
            raise CfsslError(Category.DIAL, Reason.NONE, "received no server certificates")
        try:
            return [x509.load_der_x509_certificate(d) for d in ders]
        except ValueError as exc:
            raise CfsslError(Category.DIAL, Reason.NONE, f"tls: failed to parse certificate from server: {exc}") from None


class _RigidFailure(Exception):
    """The verified handshake failed (the message is Go-like); the caller retries without verification."""


def _go_verify_message(exc: ssl.SSLCertVerificationError, host: str) -> str:
    code = getattr(exc, "verify_code", 0)
    if code in (2, 18, 19, 20, 21):
        return UNKNOWN_AUTHORITY
    if code in (9, 10):
        return "x509: certificate has expired or is not yet valid"
    if code == 62:
        return f"x509: certificate is not valid for {host}"
    return f"x509: {getattr(exc, 'verify_message', '') or exc}"


def _peer_chain(conn: ssl.SSLSocket) -> list[bytes]:
    """DER of the certificates the server sent, leaf first (the whole chain when Python exposes it)."""
    getter = getattr(conn, "get_unverified_chain", None)
    if getter is None:
        sslobj = getattr(conn, "_sslobj", None)
        getter = getattr(sslobj, "get_unverified_chain", None)
    if getter is not None:
        try:
            chain = getter()
        except (ssl.SSLError, ValueError, AttributeError):
            chain = None
        if chain:
            out: list[bytes] = []
            for item in chain:
                der = item if isinstance(item, bytes) else item.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
                out.append(der)
            return out
    der = conn.getpeercert(binary_form=True)
    return [der] if der else []


# --------------------------------------------------------------------------------------------------------------
# Validation with cryptography's verifier


def validate_chain(chain: Sequence[x509.Certificate], now: dt.datetime) -> CfsslError | None:
    """Validate one candidate chain (leaf first, root last) with cryptography's RFC 5280 verifier.

    Any EKU is accepted (newest cfssl); CA certificates need basicConstraints (CA:TRUE is enforced by the
    verifier), names are checked against name constraints, path lengths and validity against ``now``.
    Returns None when valid, else the cfssl error (12xx, Go's wording where we know it).
    """
    from cryptography.x509 import verification as v

    root, leaf, intermediates = chain[-1], chain[0], list(chain[1:-1])
    if len(chain) == 1:
        return None
    ca_policy = v.ExtensionPolicy.permit_all().require_present(x509.BasicConstraints, v.Criticality.AGNOSTIC, None)
    builder = (
        v.PolicyBuilder()
        .store(v.Store([root]))
        .time(now)
        .max_chain_depth(max(len(chain), 8))
        .extension_policies(ca_policy=ca_policy, ee_policy=v.ExtensionPolicy.permit_all())
    )
    try:
        builder.build_client_verifier().verify(leaf, intermediates)
    except v.VerificationError as exc:
        return _verification_error(str(exc), chain, now)
    except ValueError as exc:
        return CfsslError(Category.CERTIFICATE, Reason.VERIFY_FAILED, str(exc))
    return None


def _verification_error(text: str, chain: Sequence[x509.Certificate], now: dt.datetime) -> CfsslError:
    lowered = text.lower()
    if "not valid at validation time" in lowered or "expired" in lowered:
        for cert in chain:
            if now > cert.not_valid_after_utc or now < cert.not_valid_before_utc:
                return validity_error(cert, now)
        return _invalid(1, "x509: certificate has expired or is not yet valid")
    if "name constraint" in lowered:
        return _invalid(2, _name_constraint_message(chain))
    if "path length" in lowered:
        return _invalid(3, TOO_MANY_INTERMEDIATES)
    if "key usage" in lowered or "eku" in lowered:
        return _invalid(4, "x509: certificate specifies an incompatible key usage")
    if "basicconstraints" in lowered or "ca certificate" in lowered:
        return _invalid(0, "x509: certificate is not authorized to sign other certificates")
    return CfsslError(Category.CERTIFICATE, Reason.VERIFY_FAILED, f"x509: {text}")


def validity_error(cert: x509.Certificate, now: dt.datetime) -> CfsslError:
    """Go's 1211 for a certificate outside its validity period at ``now``."""
    if now < cert.not_valid_before_utc:
        return _invalid(1, f"{EXPIRED_PREFIX}current time {_go_time(now)} is before {_go_time(cert.not_valid_before_utc)}")
    return _invalid(1, f"{EXPIRED_PREFIX}current time {_go_time(now)} is after {_go_time(cert.not_valid_after_utc)}")


def _invalid(go_reason: int, message: str) -> CfsslError:
    """Go's CertificateInvalidError: 1210 + its reason."""
    return CfsslError(Category.CERTIFICATE, Reason.VERIFY_FAILED + 10 + go_reason, message)


def _name_constraint_message(chain: Sequence[x509.Certificate]) -> str:
    prefix = "x509: a root or intermediate certificate is not authorized to sign for this name: "
    permitted: list[str] = []
    for ca in chain[1:]:
        try:
            constraints = ca.extensions.get_extension_for_class(x509.NameConstraints).value
        except x509.ExtensionNotFound:
            continue
        permitted += [str(n.value) for n in constraints.permitted_subtrees or [] if isinstance(n, x509.DNSName)]
        for name in _dns_names(chain[0]):
            for excluded in constraints.excluded_subtrees or []:
                if isinstance(excluded, x509.DNSName) and _dns_in_subtree(name, str(excluded.value)):
                    return prefix + f'DNS name "{name}" is excluded by constraint "{excluded.value}"'
    for name in _dns_names(chain[0]):
        if permitted and not any(_dns_in_subtree(name, p) for p in permitted):
            return prefix + f'DNS name "{name}" is not permitted by any constraint'
    return prefix.rstrip(": ")


def _dns_in_subtree(name: str, constraint: str) -> bool:
    name, constraint = name.lower(), constraint.lower()
    if constraint.startswith("."):
        return name.endswith(constraint)
    return name == constraint or name.endswith("." + constraint)


def _differs(output: Sequence[x509.Certificate], given: Sequence[x509.Certificate]) -> bool:
    return len(output) != len(given) or any(a.signature != b.signature for a, b in zip(output, given, strict=True))


__all__ = [
    "Bundle",
    "BundleStatus",
    "Bundler",
    "Platform",
    "FLAVOR_FORCE",
    "FLAVOR_OPTIMAL",
    "FLAVOR_UBIQUITOUS",
    "ca_issuer_urls",
    "check_signature_from",
    "is_self_signed",
    "load_metadata",
    "parse_bundle_input",
    "partial_verify",
    "spki_sha1",
    "stash_name",
    "system_roots",
    "validate_chain",
    "verify_hostname",
]


def _aia_connection(http_client: Any, host: str, port: int, timeout: float, connect: certinfo.Connect | None) -> Any:
    """An ``http.client.HTTPConnection`` whose socket comes from ``connect`` (serve's fetch policy) when given."""
    if connect is None:
        return http_client.HTTPConnection(host, port, timeout=timeout)
    dial = connect

    class _PolicyConnection(http_client.HTTPConnection):  # type: ignore[misc,name-defined]
        def connect(self) -> None:
            self.sock = dial((self.host, self.port), self.timeout)

    return _PolicyConnection(host, port, timeout=timeout)
