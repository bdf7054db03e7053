"""Build a certificate pool bundle: every valid, unrevoked, distinct certificate under some paths, as PEM.

What cfssl's ``mkbundle`` does (reference §4.3), with these deliberate differences:

* **Walk.** Files and directories are walked in sorted order; symbolic links are followed (cfssl's
  ``filepath.Walk`` ignores them, so ``/etc/ssl/certs`` yields only its bundle file), with each directory
  and file visited once (by device and inode), so link loops terminate. A missing path is an error before
  anything is written (cfssl logs ``Walk failed`` and writes whatever it found).
* **Blocks.** Every ``CERTIFICATE`` PEM block is parsed; other block types are skipped. A block that does not
  decode is reported with its file and block number and the rest of the file is still read (cfssl's
  ``pem.Decode`` stops at the first block it cannot frame).
* **Checks.** Expired or not yet valid (cfssl's bounds: ``now >= notAfter``, ``now <= notBefore``) -> dropped.
  Exact duplicates (same DER) -> dropped, the first one found is kept. Revocation: every http(s) CRL
  distribution point (LDAP and other schemes skipped, as cfssl) and, independently, every http(s) OCSP URL of
  the AIA extension (cfssl asks OCSP only inside its CRL loop). OCSP needs the issuer, which must be among the
  input certificates (we never fetch the AIA caIssuers URL); without it the OCSP check is skipped and the
  reason recorded. A CRL is checked against the issuer's signature when the issuer is among the inputs.
  OCSP ``revoked`` and ``unknown`` both drop the certificate, as in cfssl (anything but ``good``).
* **Network failures keep the certificate.** When a CRL or OCSP responder cannot be reached or its answer
  cannot be verified, the certificate is kept and listed in :attr:`BundleResult.unverified` (cfssl logs
  ``Failed to verify certificate.`` and drops it). A bundle builder whose network hiccups should not
  silently lose roots; the caller reports every such certificate.
* **Fetching.** Each URL is fetched at most once per run (concurrent askers wait for the first fetch), with a
  timeout (:data:`FETCH_TIMEOUT`), by ``workers`` threads. A responder that could not be reached is not asked
  again in the same run. Responses are limited to :data:`MAX_RESPONSE` bytes.
* **Output order is deterministic**: sorted by SHA-256 fingerprint of the DER (the order of
  ``openssl x509 -noout -fingerprint -sha256``), so two runs over the same certificates give byte-identical
  files whatever the file names, thread timing or library version (a subject sort would depend on how names
  are rendered, and costs more than the whole parse). cfssl's order follows worker completion. The PEM is
  Go's ``pem.Encode`` layout. The file is written atomically: no partial bundle on failure.
* **Nothing usable is an error.** When no certificate is left (none parsed, or all dropped), nothing is
  written and :class:`NothingUsable` (1002 / 1000) is raised; cfssl writes an empty bundle and exits 0.
* **Bounded reads.** A file over 64 MiB is reported as an unusable input and skipped.
"""

from __future__ import annotations

import binascii
import datetime as dt
import enum
import hashlib
import logging
import os
import stat
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from cfsslpy.errors import Category, CfsslError, PlainError, Reason
from cfsslpy.inputs import MAX_INPUT_BYTES, InputTooLarge, os_reason, read_stream, too_large_reason, write_atomic
from cfsslpy.keys import is_dsa
from cfsslpy.pem import encode_pem

if TYPE_CHECKING:
    import urllib.request

log = logging.getLogger(__name__)

DEFAULT_BUNDLE = "cert-bundle.crt"
DEFAULT_WORKERS = 4
FETCH_TIMEOUT = 5.0  # seconds per CRL or OCSP request
MAX_RESPONSE = 64 << 20  # a CRL larger than this is treated as a failed fetch

Progress = Callable[[int, int], None]


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


# ---------------------------------------------------------------------------------------------------------
# walking and parsing


def walk(paths: Sequence[str], problems: list[Problem]) -> list[tuple[str, int]]:
    """(path, size) of the regular files under ``paths`` (directories recursively, entries sorted, links
    followed, each file once).

    A path that does not exist raises :class:`PlainError` (Go's ``lstat`` wording); unreadable directories and
    dangling links found while walking are recorded in ``problems``.
    """
    for path in paths:
        if not os.path.lexists(path):
            raise PlainError(f"lstat {path}: no such file or directory")
    seen: set[tuple[int, int]] = set()
    files: list[tuple[str, int]] = []

    def visit(path: str) -> None:
        try:
            st = os.stat(path)
        except OSError as exc:
            problems.append(Problem(path, _os_message(exc, "stat")))
            return
        key = (st.st_dev, st.st_ino)
        if key in seen:  # a second link to a file, or a directory loop
            log.debug("%s: already visited", path)
            return
        seen.add(key)
        if stat.S_ISDIR(st.st_mode):
            try:
                names = sorted(os.listdir(path))
            except OSError as exc:
                problems.append(Problem(path, _os_message(exc, "open")))
                return
            for name in names:
                visit(os.path.join(path, name))
        elif stat.S_ISREG(st.st_mode):
            files.append((path, st.st_size))

    for path in paths:
        visit(path)
    return files


def _os_message(exc: OSError, op: str) -> str:
    return f"{op}: {(exc.strerror or str(exc)).lower()}"


_BEGIN = b"-----BEGIN "
_DASHES = b"-----"


def pem_blocks(data: bytes) -> Iterator[tuple[int, bytes, bytes]]:
    """(block number from 1, label, body) for every ``-----BEGIN X-----`` .. ``-----END X-----`` pair.

    Go's ``pem.Decode`` framing, found with ``bytes.find`` rather than a regular expression: a bundle of
    10,000 certificates is scanned in a few milliseconds.
    """
    number = 0
    pos = data.find(_BEGIN)
    while pos >= 0:
        label_start = pos + len(_BEGIN)
        label_end = data.find(_DASHES, label_start)
        line_end = data.find(b"\n", label_start)
        if label_end < 0 or (0 <= line_end < label_end):
            pos = data.find(_BEGIN, label_start)
            continue
        label = data[label_start:label_end]
        end = data.find(b"-----END " + label + _DASHES, label_end)
        if end < 0 or line_end < 0:
            return
        number += 1
        yield number, label, data[line_end + 1 : end]
        pos = data.find(_BEGIN, end)


def parse_file(path: str, data: bytes, problems: list[Problem]) -> list[Found]:
    """Every certificate in the PEM blocks of ``data``; bad certificate blocks go to ``problems``."""
    found: list[Found] = []
    for number, label, body in pem_blocks(data):
        if label != b"CERTIFICATE":
            continue
        if b":" in body:  # RFC 1421 headers before a blank line (rare in certificate blocks)
            head, sep, rest = body.partition(b"\n\n")
            if not sep:
                head, sep, rest = body.partition(b"\r\n\r\n")
            if sep and all(b":" in line for line in head.splitlines() if line.strip()):
                body = rest
        try:
            der = binascii.a2b_base64(body)  # lenient (non-strict) on every Python; strict_mode= is 3.11+
        except binascii.Error as exc:
            problems.append(Problem(path, f"invalid base64: {exc}", number))
            continue
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError as exc:
            problems.append(Problem(path, f"x509: malformed certificate ({exc})", number))
            continue
        found.append(Found(cert, der, Source(path, number)))
    return found


def _read(path: str, size: int) -> bytes:
    # os.read rather than open(): no buffered file object per file (a third of the time for 10,000 files)
    if size > MAX_INPUT_BYTES:
        raise InputTooLarge(path, MAX_INPUT_BYTES)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, size + 1)
        if len(data) <= size:
            return data
        with os.fdopen(os.dup(fd), "rb") as rest:  # the file grew since it was listed: the bounded reader
            return data + read_stream(rest, path, MAX_INPUT_BYTES - len(data))
    except InputTooLarge:
        raise InputTooLarge(path, MAX_INPUT_BYTES) from None
    finally:
        os.close(fd)


def read_all(paths: Sequence[str], problems: list[Problem]) -> tuple[list[Found], int]:
    """(certificates in walk order, number of files read)."""
    files = walk(paths, problems)
    found: list[Found] = []
    for path, size in files:
        try:
            data = _read(path, size)
        except OSError as exc:
            problems.append(Problem(path, _os_message(exc, "open")))
            continue
        except InputTooLarge:
            problems.append(Problem(path, too_large_reason()))
            continue
        log.debug("Loading %s", path)
        found.extend(parse_file(path, data, problems))
    return found, len(files)


# ---------------------------------------------------------------------------------------------------------
# revocation


class FetchError(Exception):
    """A CRL or OCSP fetch that failed (unreachable, HTTP error, garbage): the check is inconclusive."""


class Unreachable(FetchError):
    """The server could not be reached at all: no other request goes to it in this run."""


def _opener_for(url: str) -> urllib.request.OpenerDirector:
    import urllib.parse
    import urllib.request

    host = urllib.parse.urlsplit(url).hostname or ""
    if host in ("localhost", "127.0.0.1", "::1"):  # Go's ProxyFromEnvironment never proxies loopback
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()


def http_fetch(url: str, body: bytes | None = None, content_type: str = "", timeout: float = FETCH_TIMEOUT) -> bytes:
    """GET ``url`` (or POST ``body``); the response body, or :class:`FetchError`."""
    import urllib.error  # lazily: most bundles need no network (urllib costs ~30 ms to import)
    import urllib.request

    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with _opener_for(url).open(request, timeout=timeout) as response:
            payload: bytes = response.read(MAX_RESPONSE + 1)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise FetchError(f"{url}: HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        raise Unreachable(f"{url}: {exc.reason}") from None
    except (OSError, TimeoutError, ValueError) as exc:
        raise Unreachable(f"{url}: {exc or type(exc).__name__}") from None
    if len(payload) > MAX_RESPONSE:
        raise FetchError(f"{url}: response larger than {MAX_RESPONSE} bytes")
    return payload


Fetch = Callable[..., bytes]


def _http_urls(names: Iterable[x509.GeneralName]) -> tuple[list[str], list[str]]:
    """(http/https URIs, the other URIs) among ``names``."""
    web: list[str] = []
    other: list[str] = []
    for name in names:
        if isinstance(name, x509.UniformResourceIdentifier):
            (web if name.value.lower().startswith(("http://", "https://")) else other).append(name.value)
    return web, other


def crl_urls(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    urls: list[str] = []
    for point in ext:
        web, other = _http_urls(point.full_name or [])
        urls.extend(web)
        for url in other:
            log.debug("skipping CRL %s (not http)", url)  # cfssl: "skipping LDAP CRL"
    return urls


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    web, _ = _http_urls(d.access_location for d in ext if d.access_method == AuthorityInformationAccessOID.OCSP)
    return web


def _verify(signer: x509.Certificate, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None) -> bool:
    """``signer``'s key made ``signature`` over ``data``. A DSA key is never loaded (deprecated in cryptography
    51) and verifies nothing, as in Go >= 1.16."""
    if is_dsa(signer):
        return False
    public_key = signer.public_key()
    try:
        if isinstance(public_key, rsa.RSAPublicKey) and algorithm is not None:
            public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and algorithm is not None:
            public_key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            public_key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """``cert``'s issuer name is ``issuer``'s subject and ``issuer``'s key signed it."""
    if cert.issuer != issuer.subject or is_dsa(issuer):
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, TypeError, UnsupportedAlgorithm):
        return False
    except ValueError:
        # cryptography refuses SHA-1 signatures here; many roots still carry one, and cfssl accepts them
        return _verify(issuer, cert.signature, cert.tbs_certificate_bytes, cert.signature_hash_algorithm)
    return True


@dataclass(frozen=True)
class _Crl:
    issuer: x509.Name
    revoked: frozenset[int]
    crl: x509.CertificateRevocationList


class Checker:
    """Revocation checks with a per-run cache: each CRL URL fetched once, unreachable servers asked once."""

    def __init__(self, issuers: Sequence[x509.Certificate], fetch: Fetch = http_fetch, timeout: float = FETCH_TIMEOUT) -> None:
        self._by_subject: dict[x509.Name, list[x509.Certificate]] = {}
        for cert in issuers:
            self._by_subject.setdefault(cert.subject, []).append(cert)
        self._fetch = fetch
        self._timeout = timeout
        self._lock = threading.Lock()
        self._crls: dict[str, Future[_Crl]] = {}
        self._verified: dict[tuple[str, bytes], bool] = {}
        self._dead: dict[str, str] = {}  # unreachable OCSP responder URL -> first error

    def issuer_of(self, cert: x509.Certificate) -> x509.Certificate | None:
        for candidate in self._by_subject.get(cert.issuer, ()):
            if issued_by(cert, candidate):
                return candidate
        return None

    def _crl(self, url: str) -> _Crl:
        with self._lock:
            future = self._crls.get(url)
            owner = future is None
            if future is None:
                future = self._crls[url] = Future()
        if owner:
            try:
                future.set_result(self._load_crl(url))
            except FetchError as exc:
                future.set_exception(exc)
        return future.result()

    def _load_crl(self, url: str) -> _Crl:
        data = self._fetch(url, timeout=self._timeout)
        try:
            crl = x509.load_der_x509_crl(data) if not data.lstrip().startswith(b"-----") else x509.load_pem_x509_crl(data)
            revoked = frozenset(entry.serial_number for entry in crl)
        except ValueError as exc:
            raise FetchError(f"{url}: not a CRL ({exc})") from None
        return _Crl(crl.issuer, revoked, crl)

    def check(self, cert: x509.Certificate) -> tuple[DropReason | None, str, list[str], list[str]]:
        """(drop reason or None, detail, inconclusive checks, checks that did not apply)."""
        failures: list[str] = []
        notes: list[str] = []
        issuer = self.issuer_of(cert)
        for url in crl_urls(cert):
            try:
                crl = self._crl(url)
            except FetchError as exc:
                failures.append(f"CRL {exc}")
                continue
            if crl.issuer != cert.issuer:
                failures.append(f"CRL {url}: issued by {crl.issuer.rfc4514_string()}, not by the certificate's issuer")
                continue
            if issuer is not None and not self._crl_signed(url, crl, issuer):
                failures.append(f"CRL {url}: bad signature")
                continue
            if cert.serial_number in crl.revoked:
                return DropReason.REVOKED_CRL, f"listed in {url}", failures, notes
        urls = ocsp_urls(cert)
        if urls and issuer is None:
            notes.append("OCSP not checked: the issuer is not among the input certificates")
        elif urls and issuer is not None:
            for url in urls:
                try:
                    status = self._ocsp(url, cert, issuer)
                except FetchError as exc:
                    failures.append(f"OCSP {exc}")
                    continue
                if status == ocsp.OCSPCertStatus.REVOKED:
                    return DropReason.REVOKED_OCSP, f"according to {url}", failures, notes
                if status == ocsp.OCSPCertStatus.UNKNOWN:
                    return DropReason.OCSP_UNKNOWN, f"according to {url}", failures, notes
                break  # one conclusive "good" answer is enough
        return None, "", failures, notes

    def _crl_signed(self, url: str, crl: _Crl, issuer: x509.Certificate) -> bool:
        key = (url, issuer.fingerprint(hashes.SHA256()))
        with self._lock:
            known = self._verified.get(key)
        if known is None:
            try:
                known = not is_dsa(issuer) and crl.crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
            except (TypeError, ValueError, UnsupportedAlgorithm):
                known = False
            with self._lock:
                self._verified[key] = known
        return known

    def _ocsp(self, url: str, cert: x509.Certificate, issuer: x509.Certificate) -> ocsp.OCSPCertStatus:
        with self._lock:
            dead = self._dead.get(url)
        if dead is not None:
            raise Unreachable(f"{dead} (not retried)")
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()  # noqa: S303 - what responders expect
        der = request.public_bytes(Encoding.DER)
        try:
            body = self._fetch(url, der, "application/ocsp-request", timeout=self._timeout)
        except Unreachable as exc:
            with self._lock:
                self._dead.setdefault(url, str(exc))
            raise
        try:
            response = ocsp.load_der_ocsp_response(body)
        except ValueError as exc:
            raise FetchError(f"{url}: not an OCSP response ({exc})") from None
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise FetchError(f"{url}: responder answered {response.response_status.name.lower()}")
        signer = self._ocsp_signer(response, issuer)
        if signer is None or not _verify(signer, response.signature, response.tbs_response_bytes, response.signature_hash_algorithm):
            raise FetchError(f"{url}: response not signed by the issuer or its delegated responder")
        for single in response.responses:
            if single.serial_number != cert.serial_number:
                continue
            expected = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, single.hash_algorithm).build()
            if single.issuer_key_hash == expected.issuer_key_hash and single.issuer_name_hash == expected.issuer_name_hash:
                return single.certificate_status
        raise FetchError(f"{url}: the response is not about this certificate")

    def _ocsp_signer(self, response: ocsp.OCSPResponse, issuer: x509.Certificate) -> x509.Certificate | None:
        """The issuer, or an embedded responder certificate it issued for OCSP signing (RFC 6960 §4.2.2.2)."""
        if response.responder_name == issuer.subject or response.responder_key_hash == _key_hash(issuer):
            return issuer
        for candidate in response.certificates:
            named = response.responder_name == candidate.subject or response.responder_key_hash == _key_hash(candidate)
            if not named or not issued_by(candidate, issuer):
                continue
            try:
                eku = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            except x509.ExtensionNotFound:
                continue
            if ExtendedKeyUsageOID.OCSP_SIGNING in eku:
                return candidate
        return None


def _key_hash(cert: x509.Certificate) -> bytes:
    # SHA-1 of the subjectPublicKey bits (RFC 6960 ResponderID byKey), via the request builder
    return ocsp.OCSPRequestBuilder().add_certificate(cert, cert, hashes.SHA1()).build().issuer_key_hash  # noqa: S303


# ---------------------------------------------------------------------------------------------------------
# the operation


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


# DER encodings of the OIDs of cRLDistributionPoints (2.5.29.31) and authorityInfoAccess (1.3.6.1.5.5.7.1.1)
_CRL_DP_OID = bytes.fromhex("0603551d1f")
_AIA_OID = bytes.fromhex("06082b06010505070101")


def _sort_key(found: Found) -> bytes:
    return hashlib.sha256(found.der).digest()


def build(
    paths: Sequence[str],
    *,
    workers: int = DEFAULT_WORKERS,
    timeout: float = FETCH_TIMEOUT,
    now: dt.datetime | None = None,
    fetch: Fetch = http_fetch,
    progress: Progress | None = None,
) -> BundleResult:
    """Read, filter and sort the certificates under ``paths`` (see the module docstring for the rules).

    ``workers`` threads run the network checks; ``progress(done, total)`` is called (from those threads) as
    certificates with revocation information are checked.
    """
    if workers < 1:
        raise PlainError(f"the number of workers must be at least 1, not {workers}")
    with warnings.catch_warnings():
        # negative serial numbers (old roots) parse with a deprecation warning; Go accepted them too
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return _build(paths, workers, timeout, now, fetch, progress)


def _build(
    paths: Sequence[str], workers: int, timeout: float, now: dt.datetime | None, fetch: Fetch, progress: Progress | None
) -> BundleResult:
    result = BundleResult()
    found, result.files = read_all(paths, result.problems)
    current = _utc(now or dt.datetime.now(dt.timezone.utc))
    seen: dict[bytes, Found] = {}
    candidates: list[Found] = []
    for item in found:
        first = seen.get(item.der)
        if first is not None:
            result.dropped.append(Dropped(item, DropReason.DUPLICATE, f"same as {first.source}"))
            continue
        seen[item.der] = item
        not_after = item.cert.not_valid_after_utc
        not_before = item.cert.not_valid_before_utc
        if current >= not_after:
            result.dropped.append(Dropped(item, DropReason.EXPIRED, f"notAfter {not_after:%Y-%m-%dT%H:%M:%SZ}"))
        elif current <= not_before:
            result.dropped.append(Dropped(item, DropReason.NOT_YET_VALID, f"notBefore {not_before:%Y-%m-%dT%H:%M:%SZ}"))
        else:
            candidates.append(item)
    online: list[Found] = []
    for item in candidates:
        if _CRL_DP_OID not in item.der and _AIA_OID not in item.der:
            result.kept.append(item)  # neither extension can be present: skip parsing the extensions
            continue
        try:
            needs = bool(crl_urls(item.cert) or ocsp_urls(item.cert))
        except ValueError as exc:  # a malformed extension, parsed lazily by cryptography
            result.problems.append(Problem(item.source.path, f"x509: malformed extension ({exc})", item.source.block))
            continue
        if needs:
            online.append(item)
        else:
            result.kept.append(item)
    if online:
        checker = Checker([f.cert for f in seen.values()], fetch, timeout)
        _check_online(online, checker, workers, result, progress)
    result.kept.sort(key=_sort_key)
    result.dropped.sort(key=lambda d: (d.found.source.path, d.found.source.block))
    result.unverified.sort(key=lambda u: (u.found.source.path, u.found.source.block))
    result.skipped.sort(key=lambda s: (s[0].source.path, s[0].source.block))
    return result


def _check_online(online: list[Found], checker: Checker, workers: int, result: BundleResult, progress: Progress | None) -> None:
    total = len(online)
    done = 0
    lock = threading.Lock()

    def one(item: Found) -> tuple[Found, DropReason | None, str, list[str], list[str]]:
        nonlocal done
        try:
            outcome = checker.check(item.cert)
        finally:
            if progress is not None:
                with lock:
                    done += 1
                    count = done
                progress(count, total)
        return (item, *outcome)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mkbundle") as pool:
        outcomes = list(pool.map(one, online))
    for item, reason, detail, failures, notes in outcomes:
        if reason is not None:
            result.dropped.append(Dropped(item, reason, detail))
            continue
        result.kept.append(item)
        if failures:
            result.unverified.append(Unverified(item, "; ".join(failures)))
        for note in notes:
            result.skipped.append((item, note))


def mkbundle(
    paths: Sequence[str],
    output: str = DEFAULT_BUNDLE,
    *,
    workers: int = DEFAULT_WORKERS,
    timeout: float = FETCH_TIMEOUT,
    now: dt.datetime | None = None,
    fetch: Fetch = http_fetch,
    progress: Progress | None = None,
) -> BundleResult:
    """:func:`build`, then write the bundle to ``output`` atomically (mode 0644); returns the result.

    When no certificate is left to write, :class:`NothingUsable` is raised and ``output`` is left as it was
    (cfssl writes an empty bundle and exits 0, which silently empties a trust store).
    """
    result = build(paths, workers=workers, timeout=timeout, now=now, fetch=fetch, progress=progress)
    if not result.kept:
        raise NothingUsable(result, output)
    try:
        write_atomic(output, result.pem(), 0o644)
    except OSError as exc:
        raise PlainError(f"open {output}: {os_reason(exc)}") from None
    return result


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
