"""mkbundle's revocation checks: CRL distribution points and OCSP responders, each asked once per run."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from cfsslpy.keys import is_dsa
from cfsslpy.mkbundle.fetching import FETCH_TIMEOUT, Fetch, FetchError, Unreachable, http_fetch
from cfsslpy.mkbundle.results import DropReason
from cfsslpy.x509util import extension

log = logging.getLogger(__name__)


def _http_urls(names: Iterable[x509.GeneralName]) -> tuple[list[str], list[str]]:
    """(http/https URIs, the other URIs) among ``names``."""
    web: list[str] = []
    other: list[str] = []
    for name in names:
        if isinstance(name, x509.UniformResourceIdentifier):
            (web if name.value.lower().startswith(("http://", "https://")) else other).append(name.value)
    return web, other


def crl_urls(cert: x509.Certificate) -> list[str]:
    ext = extension(cert, x509.CRLDistributionPoints)
    if ext is None:
        return []
    urls: list[str] = []
    for point in ext:
        web, other = _http_urls(point.full_name or [])
        urls.extend(web)
        for url in other:
            log.debug("skipping CRL %s (not http)", url)  # cfssl: "skipping LDAP CRL"
    return urls


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    aia = extension(cert, x509.AuthorityInformationAccess)
    if aia is None:
        return []
    web, _ = _http_urls(d.access_location for d in aia if d.access_method == AuthorityInformationAccessOID.OCSP)
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
            eku = extension(candidate, x509.ExtendedKeyUsage)
            if eku is not None and ExtendedKeyUsageOID.OCSP_SIGNING in eku:
                return candidate
        return None


def _key_hash(cert: x509.Certificate) -> bytes:
    # SHA-1 of the subjectPublicKey bits (RFC 6960 ResponderID byKey), via the request builder
    return ocsp.OCSPRequestBuilder().add_certificate(cert, cert, hashes.SHA1()).build().issuer_key_hash  # noqa: S303
