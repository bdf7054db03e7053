"""The OCSP responder behind ``ocspserve`` (reference §4.5): request decoding, response sources, HTTP rules.

A :class:`Responder` turns one HTTP request (method, path below the mount point, body, ``If-None-Match``)
into a :class:`Reply` by asking a :class:`Source` for the DER response to the request's CertID. The HTTP
face (:mod:`cfsslpy.api.ocspapp`) only moves bytes between WSGI and :meth:`Responder.respond`.

**Sources**

* :class:`FileSource`: cfssl's responses file (whitespace-separated standard-base64 DER responses, as
  ``ocspdump`` writes). Entries that fail to decode or are not successful responses are logged and skipped;
  later duplicates overwrite earlier ones. A response that is valid BER but not DER (an explicitly encoded
  default, indefinite lengths: cfssl's own ``resp64.pem``) is kept, as Go's parser keeps it: it is read
  through its DER form and served byte for byte as stored. cfssl indexes the file **by serial number only**, so with two
  issuers in one file a client asking about issuer A's serial 5 may be served issuer B's response for its
  serial 5 (which the client then rejects). We index by the full CertID (hash algorithm, issuer name hash,
  issuer key hash, serial), so each issuer's responses are only served for that issuer.
* :class:`DBSource`: the certdb's ``ocsp_responses`` rows (what ``ocsprefresh`` writes), looked up, as cfssl
  does, by (decimal serial, lowercase hex of the request's issuerKeyHash). That key hash equals the AKI
  column only for SHA-1 CertIDs (the AKI of a cfssl certificate is the SHA-1 of its issuer's key), so a
  request using another hash algorithm is not looked up at all and gets ``unauthorized`` (cfssl would look
  up the SHA-256 hash as an AKI and find nothing either). Expired rows are not served (cfssl serves them).
* :class:`LiveSource` (ours): no stored responses; each answer is signed on demand from the certificate's
  current row in the certdb, by the :class:`~cfsslpy.ocsp.OCSPSigner` of the issuer the request names, with
  the CertID hash algorithm the request used. A bounded LRU cache keeps signed responses for at most
  ``cache_ttl`` seconds (60 s by default), half the signing interval and one hour, whichever is least, so a
  revocation shows within a minute and a cached response is never near its nextUpdate. A serial the database
  does not know, for an issuer this responder serves, is ``unauthorized`` (what cfssl answers for a serial
  without a stored response); so is a request for an issuer it does not serve.

Whatever the source, a response is only served when one of its SingleResponses carries exactly the
request's CertID: a stored response for another certificate or issuer is never handed out.

**HTTP rules** (cfssl's ``ocsp/responder.go``, newest): every reply carries ``Cache-Control: max-age=0,
no-cache`` until a response is found; GET takes the base64 request from the path (query-unescaped, spaces
turned back into ``+``, leading ``/`` stripped; we also accept missing padding and the URL-safe alphabet,
which RFC 5019 clients send), POST from the body, other methods get 405 with no body; an undecodable GET
path is 400 with no body; from then on ``Content-Type: application/ocsp-response``; an unparseable request
is 400 with ``malformedRequest`` (so is one with no CertID, with several, or with a CertID hash Go does not
know: see :func:`parse_request`), no response 200 with ``unauthorized``, a source failure 500 with
``internalError``, a stored response that does not parse 200 with ``internalError``, and any other failure
500 with ``internalError``: every request is answered, none takes the responder down. A found response gets
``Last-Modified`` (thisUpdate), ``Expires`` (nextUpdate), both RFC 1123 with the zone written ``UTC`` as Go
does, ``Cache-Control: max-age=<seconds to nextUpdate>, public, no-transform, must-revalidate`` and
``ETag: "<uppercase hex SHA-256 of the DER>"``; an ``If-None-Match`` equal to that ETag is answered 304.
Nonces in requests are ignored (responses are pre-signed or cached, so none is echoed).
"""

from __future__ import annotations

import base64
import binascii
import collections
import datetime as dt
import hashlib
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp

from cfsslpy.certdb import CertDB, CertificateRecord, with_aki
from cfsslpy.errors import LOG_FIELD_LIMIT, CfsslError, log_value
from cfsslpy.inputs import Stdin, read_input
from cfsslpy.ocsp import OCSPSigner, OCSPSignRequest
from cfsslpy.ocsp import responses_text as responses_text  # re-exported: the responses file's writer (ocspdump's)

log = logging.getLogger(__name__)

# RFC 6960 OCSPResponse with only a responseStatus, as cfssl sends them
MALFORMED_REQUEST = bytes.fromhex("30030a0101")
INTERNAL_ERROR = bytes.fromhex("30030a0102")
UNAUTHORIZED = bytes.fromhex("30030a0106")

CONTENT_TYPE = "application/ocsp-response"
NO_CACHE = "max-age=0, no-cache"
# The largest OCSP request we read (a request for one certificate with a nonce is about 120 bytes).
MAX_REQUEST = 16 * 1024

# CertID hash algorithms we recognise (RFC 6960 allows any; these are the ones in use)
HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha1": hashes.SHA1(),
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class MalformedRequest(ValueError):
    """An OCSP request that cannot be decoded or parsed."""


# -----------------------------------------------------------------------------------------------------------
# requests


@dataclass(frozen=True)
class CertID:
    """An RFC 6960 CertID: which certificate (serial) of which issuer (name and key hashes), under which hash."""

    hash_algorithm: str  # "sha1", "sha256", ...
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int

    @classmethod
    def of(cls, item: ocsp.OCSPRequest | ocsp.OCSPSingleResponse | ocsp.OCSPResponse) -> CertID:
        """The CertID of a request or a single response; :class:`MalformedRequest` for an unknown hash."""
        try:
            algorithm = item.hash_algorithm.name
        except UnsupportedAlgorithm as exc:
            raise MalformedRequest(f"unsupported CertID hash algorithm: {exc}") from None
        return cls(algorithm, bytes(item.issuer_name_hash), bytes(item.issuer_key_hash), item.serial_number)

    @classmethod
    def for_certificate(cls, issuer: x509.Certificate, serial: int, algorithm: str = "sha1") -> CertID:
        """The CertID a client computes for ``serial`` issued by ``issuer``."""
        name_hash, key_hash = issuer_hashes(issuer, algorithm)
        return cls(algorithm, name_hash, key_hash, serial)

    def describe(self) -> str:
        return f"serial {self.serial:x}, issuer key {self.issuer_key_hash.hex()} ({self.hash_algorithm})"


def issuer_hashes(issuer: x509.Certificate, algorithm: str) -> tuple[bytes, bytes]:
    """(issuerNameHash, issuerKeyHash) of ``issuer`` under ``algorithm``, computed by cryptography's request
    builder (the key hash covers the subjectPublicKey bits, not the whole SPKI)."""
    request = ocsp.OCSPRequestBuilder().add_certificate(issuer, issuer, HASHES[algorithm]).build()
    return bytes(request.issuer_name_hash), bytes(request.issuer_key_hash)


def decode_get_path(path: str) -> bytes:
    """The DER request carried in a GET path (the part below the mount point).

    cfssl: query-unescape (so ``%2B`` and ``+`` both work), turn spaces back into ``+``, strip the leading
    ``/`` (newest cfssl strips one; we strip all, since base64 of a DER request never starts with ``/``),
    standard base64. We also accept the URL-safe alphabet and missing padding. An empty path is an empty
    request (cfssl 1.6 answers it ``malformedRequest``). :class:`MalformedRequest` when it is not base64.
    """
    text = urllib.parse.unquote_plus(path, encoding="latin-1").replace(" ", "+").lstrip("/")
    text = text.replace("-", "+").replace("_", "/").rstrip("=")
    if not text:  # cfssl decodes it to an empty request, which it then answers malformedRequest
        return b""
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text.encode("latin-1"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise MalformedRequest("request is not base64") from None


def parse_request(der: bytes) -> CertID:
    """The CertID an OCSP request asks about (nonces and other extensions ignored); :class:`MalformedRequest`
    for anything else: bytes that are not one DER OCSPRequest, a request with no CertID or with several, or a
    CertID hash other than SHA-1/256/384/512 (Go's ``ocsp.ParseRequest`` knows only these four).

    Several CertIDs: Go's parser (hence cfssl) answers for the first and ignores the rest; cryptography
    refuses such a request and offers no stable way to read its first CertID, so it is ``malformedRequest``
    here. RFC 5019 clients send exactly one (section 2.1.1), and a client that asked about several and got an
    answer about one would learn nothing about the others anyway.
    """
    if not der:
        raise MalformedRequest("empty request")
    try:
        request = ocsp.load_der_ocsp_request(der)
        cert_id = CertID.of(request)
    except MalformedRequest:
        raise
    except NotImplementedError:  # cryptography: "OCSP request contains more than one request" (also for none)
        raise MalformedRequest("OCSP request must carry exactly one CertID") from None
    except Exception as exc:  # whatever the parser makes of hostile bytes, it is the client's malformed request
        raise MalformedRequest(f"{type(exc).__name__}: {exc}") from None
    if cert_id.hash_algorithm not in HASHES:
        raise MalformedRequest(f"unsupported CertID hash algorithm: {cert_id.hash_algorithm}")
    return cert_id


# -----------------------------------------------------------------------------------------------------------
# responses


def parse_response(der: bytes) -> ocsp.OCSPResponse:
    """A successful OCSP response; ValueError when it does not parse or carries an error status.

    A response that is valid BER but not DER (cfssl's own ``ocsp/testdata/resp64.pem`` encodes the default
    version explicitly; Go's parser accepts it, cryptography's does not) is read through its DER form
    (:func:`der_form`); what is served is always the stored bytes, whose signature covers them as they are.
    """
    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError as strict:
        try:
            response = ocsp.load_der_ocsp_response(der_form(der))
        except ValueError:
            raise strict from None
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise ValueError(f"OCSP response status is {response.response_status.name}")
    return response


def single_for(response: ocsp.OCSPResponse, cert_id: CertID) -> ocsp.OCSPSingleResponse | None:
    """The SingleResponse of ``response`` for exactly ``cert_id`` (None when it has none)."""
    for single in response.responses:
        try:
            if CertID.of(single) == cert_id:
                return single
        except MalformedRequest:
            continue
    return None


def cert_ids(response: ocsp.OCSPResponse) -> list[CertID]:
    """Every CertID a successful response answers for (those with a recognised hash algorithm)."""
    found = []
    for single in response.responses:
        try:
            found.append(CertID.of(single))
        except MalformedRequest:
            continue
    return found


# -----------------------------------------------------------------------------------------------------------
# BER responses: read through their DER form


def der_form(data: bytes) -> bytes:
    """The DER form of a BER-encoded OCSPResponse, for reading it: asn1crypto (pure Python, BER in, DER out)
    makes lengths definite and minimal, joins constructed strings and drops the explicit defaults DER omits
    (ResponseData's version v1, extensions' critical FALSE). The signature is left as it is (it covers the
    original encoding). ValueError when ``data`` is not one BER OCSPResponse.
    """
    from asn1crypto import ocsp as asn1_ocsp  # only for responses cryptography's strict DER parser refuses

    try:
        parsed = asn1_ocsp.OCSPResponse.load(data, strict=True)
        response_bytes = parsed["response_bytes"]
        if response_bytes.native is not None:
            _ = response_bytes["response"].parsed.native  # parse the inner BasicOCSPResponse too
        return bytes(parsed.dump(force=True))
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError) as exc:
        raise ValueError(f"BER: not an OCSP response ({type(exc).__name__})") from None


class Source(Protocol):
    """Where responses come from. ``lookup`` returns the DER response for the CertID, None when there is
    none (answered ``unauthorized``), or raises for an internal failure (answered ``internalError``)."""

    def lookup(self, request: CertID) -> bytes | None: ...


class FileSource:
    """cfssl's responses file, indexed by full CertID (see the module docstring)."""

    def __init__(self, responses: Mapping[CertID, bytes]) -> None:
        self.responses = dict(responses)

    @classmethod
    def from_text(cls, text: bytes | str) -> FileSource:
        if isinstance(text, bytes):
            text = text.decode("latin-1")
        index: dict[CertID, bytes] = {}
        for entry in text.split():
            try:
                der = base64.b64decode(entry.encode("latin-1"), validate=True)
            except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
                log.error("Base64 decode error %s on: %s", exc, entry[:80])
                continue
            try:
                ids = cert_ids(parse_response(der))
            except ValueError as exc:
                log.error("OCSP decode error %s on: %s", exc, entry[:80])
                continue
            if not ids:
                log.error("OCSP response without a usable CertID: %s", entry[:80])
                continue
            for cert_id in ids:
                index[cert_id] = der
        # cfssl counts the distinct serials it indexed (its resp64.pem, one response twice: "Read 1"); we count
        # the distinct CertIDs, the same number for any file cfssl serves correctly
        log.info("Read %d OCSP responses", len(index))
        return cls(index)

    @classmethod
    def load(cls, spec: str, *, stdin: Stdin | None = None, environ: Mapping[str, str] | None = None) -> FileSource:
        """The ``-responses`` file (a path, ``-``, ``file:`` or ``env:``)."""
        return cls.from_text(read_input(spec, stdin=stdin, environ=environ))

    def lookup(self, request: CertID) -> bytes | None:
        return self.responses.get(request)


class DBSource:
    """The certdb's stored responses (``ocsprefresh``): SHA-1 CertIDs only, unexpired rows only."""

    def __init__(self, db: CertDB, *, now: Callable[[], dt.datetime] | None = None) -> None:
        self.db = db
        self.now = now or (lambda: dt.datetime.now(dt.timezone.utc))

    def lookup(self, request: CertID) -> bytes | None:
        if request.hash_algorithm != "sha1":
            log.info("no stored response for a %s CertID (the database is keyed by SHA-1 key identifiers)", request.hash_algorithm)
            return None
        rows = self.db.get_ocsp(str(request.serial), request.issuer_key_hash.hex())
        current = self.now()
        live = [row for row in rows if row.expiry > current]
        if not live:
            return None
        return max(live, key=lambda row: row.expiry).body


@dataclass
class _Cached:
    der: bytes
    deadline: float


@dataclass
class ResponseCache:
    """A bounded LRU of signed responses, each kept for at most ``ttl`` seconds. Thread-safe."""

    size: int = 10_000
    ttl: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _entries: collections.OrderedDict[tuple[int, CertID], _Cached] = field(default_factory=collections.OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: tuple[int, CertID]) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.deadline <= self.clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry.der

    def put(self, key: tuple[int, CertID], der: bytes) -> None:
        if self.size <= 0 or self.ttl <= 0:
            return
        with self._lock:
            self._entries[key] = _Cached(der, self.clock() + self.ttl)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


class LiveSource:
    """Responses signed on demand from the certdb's current rows (see the module docstring).

    ``cache_ttl`` (seconds, 0 disables the cache) bounds how long a revocation may go unseen; the effective
    lifetime of a cached response is also at most half of the shortest signer interval and one hour.
    """

    def __init__(
        self,
        db: CertDB,
        signers: Sequence[OCSPSigner],
        *,
        cache_size: int = 10_000,
        cache_ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not signers:
            raise ValueError("LiveSource needs at least one signer")
        self.db = db
        self.signers = list(signers)
        # (hash algorithm, name hash, key hash) -> signer index, for every algorithm a client may use
        self._issuers: dict[tuple[str, bytes, bytes], int] = {}
        for index, signer in enumerate(self.signers):
            for algorithm in HASHES:
                name_hash, key_hash = issuer_hashes(signer.issuer, algorithm)
                self._issuers.setdefault((algorithm, name_hash, key_hash), index)
        shortest = min(signer.interval.total_seconds() for signer in self.signers)
        ttl = min(cache_ttl, shortest / 2, 3600.0)
        self.cache = ResponseCache(size=cache_size, ttl=max(ttl, 0.0), clock=clock)

    def lookup(self, request: CertID) -> bytes | None:
        index = self._issuers.get((request.hash_algorithm, request.issuer_name_hash, request.issuer_key_hash))
        if index is None:
            log.info("request for an issuer this responder does not serve: %s", request.describe())
            return None
        key = (index, request)
        der = self.cache.get(key)
        if der is not None:
            return der
        signer = self.signers[index]
        record = self._record(signer, str(request.serial))
        if record is None:
            log.info("no certificate in the database for %s", request.describe())
            return None
        der = self._sign(signer, record, request)
        if der is not None:
            self.cache.put(key, der)
        return der

    @staticmethod
    def _sign(signer: OCSPSigner, record: CertificateRecord, request: CertID) -> bytes | None:
        """The response for ``record`` with the request's CertID hash; None (unauthorized) when the row cannot
        be answered for: a certificate this issuer did not sign, a corrupt PEM, status or reason. A responder
        outside its validity (1211) is raised: the request is answered ``internalError``."""
        try:
            req = OCSPSignRequest(
                certificate=record.certificate(),
                status=record.status,
                reason=record.reason,
                revoked_at=record.revoked_at,
                issuer_hash=request.hash_algorithm.upper(),
            )
            return signer.sign(req)
        except CfsslError as exc:
            if exc.code == 1211:  # the responder (or its CA) expired while serving: internalError, not a row problem
                raise
            log.warning("cannot answer for %s from the database row: %s", request.describe(), exc.message)
            return None

    def _record(self, signer: OCSPSigner, serial: str) -> CertificateRecord | None:
        aki = signer.issuer_aki
        rows = self.db.get_certificate(serial, aki)
        if not rows:  # cfssl 2016 wrote an empty AKI column: resolve it from the certificate
            rows = [rec for rec in (with_aki(r) for r in self.db.certificates_by_serial(serial)) if rec.aki == aki]
        return rows[0] if rows else None


# -----------------------------------------------------------------------------------------------------------
# HTTP


@dataclass(frozen=True)
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""


def http_date(value: dt.datetime) -> str:
    """Go's ``time.RFC1123`` for a UTC time: ``Thu, 26 Nov 2026 18:00:00 UTC`` (locale-independent)."""
    value = value.astimezone(dt.timezone.utc)
    return f"{_DAYS[value.weekday()]}, {value.day:02d} {_MONTHS[value.month - 1]} {value.year:04d} {value:%H:%M:%S} UTC"


def etag(der: bytes) -> str:
    return '"' + hashlib.sha256(der).hexdigest().upper() + '"'


class Responder:
    """cfssl's OCSP HTTP rules over a :class:`Source` (see the module docstring)."""

    def __init__(self, source: Source, *, now: Callable[[], dt.datetime] | None = None, memo: int = 0) -> None:
        """``memo``: remember up to that many answers by the exact request (method and POST body or GET path),
        so a repeated request is answered without parsing it or the stored response again. Only for a
        source whose responses never change (a responses file); the answer's max-age is still computed
        per request."""
        self.source = source
        self.now = now or (lambda: dt.datetime.now(dt.timezone.utc))
        self.memo_size = memo
        self._memo: dict[tuple[str, str | bytes], _Memo] = {}

    def respond(self, method: str, path: str, body: bytes, if_none_match: str | None = None) -> Reply:
        """Answer one request. ``path`` is the URL path below the mount point (GET), ``body`` the POST body.

        Every request gets an answer: a failure nobody foresaw is 500 with ``internalError``, logged in one line.
        """
        try:
            return self._respond(method, path, body, if_none_match)
        except Exception as exc:
            log.error("Error answering %s %s: %s", log_value(method, 16), _logged(path), _describe(exc))
            return Reply(500, [("Cache-Control", NO_CACHE), ("Content-Type", CONTENT_TYPE)], INTERNAL_ERROR)

    def _respond(self, method: str, path: str, body: bytes, if_none_match: str | None) -> Reply:
        key = (method, body if method == "POST" else path)
        remembered = self._memo.get(key) if self.memo_size else None
        if remembered is not None:
            return remembered.reply(self.now(), if_none_match)
        headers = [("Cache-Control", NO_CACHE)]
        if method == "GET":
            try:
                der = decode_get_path(path)
            except MalformedRequest:
                log.info("Error decoding base64 from URL: %s", _logged(path))
                return Reply(400, headers)
        elif method == "POST":
            der = body
        else:
            return Reply(405, headers)
        headers.append(("Content-Type", CONTENT_TYPE))
        try:
            request = parse_request(der)
        except MalformedRequest as exc:
            log.info("Error decoding request body: %s", _logged(str(exc)))
            return Reply(400, headers, MALFORMED_REQUEST)
        try:
            found = self.source.lookup(request)
        except Exception as exc:  # any source failure is the client's internalError, never a traceback
            log.error("Error retrieving response for request: %s: %s", request.describe(), _describe(exc))
            return Reply(500, headers, INTERNAL_ERROR)
        if found is None:
            log.info("No response found for request: %s", request.describe())
            return Reply(200, headers, UNAUTHORIZED)
        try:
            single = single_for(parse_response(found), request)
        except ValueError as exc:
            log.error("Error parsing response for %s: %s", request.describe(), exc)
            return Reply(200, headers, INTERNAL_ERROR)
        if single is None:  # the source returned a response for another certificate: never serve it
            log.warning("the response found does not answer for %s; not served", request.describe())
            return Reply(200, headers, UNAUTHORIZED)
        memo = _Memo(found, single)
        if self.memo_size and len(self._memo) < self.memo_size:
            self._memo[key] = memo
        return memo.reply(self.now(), if_none_match)


class _Memo:
    """A successful answer, apart from its max-age (which depends on the time of the request)."""

    __slots__ = ("der", "headers", "next_update", "tag")

    def __init__(self, der: bytes, single: ocsp.OCSPSingleResponse) -> None:
        self.der = der
        self.next_update = single.next_update_utc
        self.tag = etag(der)
        self.headers = [("Content-Type", CONTENT_TYPE), ("Last-Modified", http_date(single.this_update_utc))]
        if self.next_update is not None:  # without nextUpdate cfssl writes Go's zero time; we leave Expires out
            self.headers.append(("Expires", http_date(self.next_update)))
        self.headers.append(("ETag", self.tag))

    def reply(self, now: dt.datetime, if_none_match: str | None) -> Reply:
        max_age = 0 if self.next_update is None else max(0, int((self.next_update - now).total_seconds()))
        headers = [("Cache-Control", f"max-age={max_age}, public, no-transform, must-revalidate"), *self.headers]
        if if_none_match and if_none_match == self.tag:
            return Reply(304, headers)
        return Reply(200, headers, self.der)


def _describe(exc: BaseException) -> str:
    message = getattr(exc, "message", None)
    return _logged(message if isinstance(message, str) else f"{type(exc).__name__}: {exc}")


def _logged(text: str) -> str:
    """A client's (or the parser's) text in a log line: :func:`cfsslpy.errors.log_value`, up to a log field's length."""
    return log_value(text, LOG_FIELD_LIMIT)
