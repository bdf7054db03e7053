"""The OCSP responder core (:mod:`cfsslpy.ocspresponder`), its WSGI face and the ``ocspserve`` command's checks."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import logging
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import RunCli
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from cfsslpy.api.ocspapp import OCSPApp, mount_point
from cfsslpy.certdb import CertDB, CertificateRecord, DBConfig
from cfsslpy.cli.ocspserve import NO_SOURCE
from cfsslpy.ocsp import OCSPSigner, OCSPSignRequest
from cfsslpy.ocspresponder import (
    INTERNAL_ERROR,
    MALFORMED_REQUEST,
    MAX_REQUEST,
    UNAUTHORIZED,
    CertID,
    DBSource,
    FileSource,
    LiveSource,
    MalformedRequest,
    Reply,
    Responder,
    ResponseCache,
    decode_get_path,
    http_date,
    parse_request,
    responses_text,
)
from tests.cli.errlines import error_line, hints

NOW = dt.datetime.now(dt.timezone.utc)


# ---------------------------------------------------------------------------------------------------------
# PKI built in-process


@dataclass
class Issuer:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def issue(self, serial: int, cn: str = "leaf.example.net", days: int = 30) -> x509.Certificate:
        key = ec.generate_private_key(ec.SECP256R1())
        ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=days))
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    def signer(self, interval: dt.timedelta = dt.timedelta(hours=96)) -> OCSPSigner:
        return OCSPSigner(self.cert, self.cert, self.key, interval)

    @property
    def aki(self) -> str:
        return self.signer().issuer_aki


def make_issuer(name: str) -> Issuer:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issuer(cert, key)


@pytest.fixture(scope="module")
def ca_a() -> Issuer:
    return make_issuer("Responder test CA A")


@pytest.fixture(scope="module")
def ca_b() -> Issuer:
    return make_issuer("Responder test CA B")


def request_der(issuer: Issuer, serial: int, algorithm: hashes.HashAlgorithm | None = None, nonce: bool = False) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        *_hashes(issuer, algorithm or hashes.SHA1()), serial, algorithm or hashes.SHA1()
    )
    if nonce:
        builder = builder.add_extension(x509.OCSPNonce(b"0123456789abcdef"), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _hashes(issuer: Issuer, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    req = ocsp.OCSPRequestBuilder().add_certificate(issuer.cert, issuer.cert, algorithm).build()
    return req.issuer_name_hash, req.issuer_key_hash


def sign(issuer: Issuer, cert: x509.Certificate, status: str = "good", *, reason: int = 0, issuer_hash: str = "SHA1") -> bytes:
    revoked_at = NOW - dt.timedelta(hours=2) if status == "revoked" else None
    return issuer.signer().sign(OCSPSignRequest(cert, status, reason, revoked_at, issuer_hash))


def single(der: bytes) -> ocsp.OCSPResponse:
    response = ocsp.load_der_ocsp_response(der)
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    return response


def status_of(der: bytes) -> ocsp.OCSPCertStatus:
    return single(der).certificate_status


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# A raw DER writer, for requests no library builds (no CertID, several, unknown hashes): tests only.


def der_tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    length = (
        bytes([size])
        if size < 0x80
        else bytes([0x80 | ((size.bit_length() + 7) // 8)]) + size.to_bytes((size.bit_length() + 7) // 8, "big")
    )
    return bytes([tag]) + length + content


def cert_id_der(request: bytes) -> bytes:
    """The CertID (whole TLV) of a one-CertID request built by cryptography: re-encoded from its parsed fields."""
    parsed = ocsp.load_der_ocsp_request(request)
    oid = {"sha1": "06052b0e03021a", "sha256": "0609608648016503040201"}[parsed.hash_algorithm.name]
    serial = parsed.serial_number.to_bytes(parsed.serial_number.bit_length() // 8 + 1, "big")
    algorithm = der_tlv(0x30, bytes.fromhex(oid) + b"\x05\x00")
    return der_tlv(0x30, algorithm + der_tlv(0x04, parsed.issuer_name_hash) + der_tlv(0x04, parsed.issuer_key_hash) + der_tlv(0x02, serial))


def ocsp_request(cert_ids: list[bytes]) -> bytes:
    """OCSPRequest { TBSRequest { requestList: one Request per CertID } }, no extensions, no signature."""
    return der_tlv(0x30, der_tlv(0x30, der_tlv(0x30, b"".join(der_tlv(0x30, c) for c in cert_ids))))


# ---------------------------------------------------------------------------------------------------------
# decoding


class TestDecoding:
    DER = bytes(range(0x30, 0x30 + 64)) + b"\xfb\xff\xfe"  # a payload whose base64 has '+', '/' and padding

    def test_standard_base64_with_leading_slash(self) -> None:
        text = b64(self.DER)
        assert "+" in text and "/" in text and text.endswith("=")
        assert decode_get_path("/" + text) == self.DER
        assert decode_get_path(text) == self.DER  # no leading slash (cfssl 2016's form)
        assert decode_get_path("//" + text) == self.DER  # a naive client's double slash

    def test_query_escaped_and_plus_as_space(self) -> None:
        text = b64(self.DER)
        assert decode_get_path("/" + urllib.parse.quote(text, safe="")) == self.DER
        assert decode_get_path("/" + text.replace("+", " ")) == self.DER  # already unescaped once, like Go
        assert decode_get_path("/" + text.replace("+", "%2B")) == self.DER

    def test_url_safe_alphabet_and_missing_padding(self) -> None:
        text = base64.urlsafe_b64encode(self.DER).decode().rstrip("=")
        assert "-" in text or "_" in text
        assert decode_get_path("/" + text) == self.DER

    @pytest.mark.parametrize("path", ["/!!!!", "/abc$", "/%ZZ", "/a"])
    def test_not_base64(self, path: str) -> None:
        with pytest.raises(MalformedRequest):
            decode_get_path(path)

    @pytest.mark.parametrize("path", ["/", "", "//", "/=="])
    def test_empty_path_is_an_empty_request(self, path: str) -> None:
        assert decode_get_path(path) == b""  # cfssl 1.6.5 answers GET / with 400 malformedRequest too
        reply = Responder(StaticSource(None)).respond("GET", path, b"")
        assert (reply.status, reply.body) == (400, MALFORMED_REQUEST)

    def test_parse_request(self, ca_a: Issuer) -> None:
        cert_id = parse_request(request_der(ca_a, 77))
        assert cert_id == CertID.for_certificate(ca_a.cert, 77)
        assert cert_id.hash_algorithm == "sha1" and len(cert_id.issuer_key_hash) == 20
        assert parse_request(request_der(ca_a, 77, hashes.SHA256())) == CertID.for_certificate(ca_a.cert, 77, "sha256")
        assert parse_request(request_der(ca_a, 77, nonce=True)) == cert_id  # nonces ignored

    @pytest.mark.parametrize("der", [b"", b"\x30\x03\x0a\x01\x01", b"garbage", bytes.fromhex("3000")])
    def test_malformed_request(self, der: bytes) -> None:
        with pytest.raises(MalformedRequest):
            parse_request(der)

    @pytest.mark.parametrize("count", [0, 2, 200])
    def test_zero_or_several_cert_ids_are_malformed(self, ca_a: Issuer, count: int) -> None:
        """cryptography raises NotImplementedError for these (it took the process down); Go answers for the
        first of several, we answer malformedRequest (see parse_request)."""
        one = request_der(ca_a, 77)
        assert parse_request(ocsp_request([cert_id_der(one)] * 1)) == parse_request(one)  # the builder below is right
        with pytest.raises(MalformedRequest, match="exactly one CertID"):
            parse_request(ocsp_request([cert_id_der(one)] * count))

    @pytest.mark.parametrize(
        "oid",
        [
            "06082a864886f70d0205",  # MD5: cryptography knows it, Go's ocsp.ParseRequest does not
            "0609608648016503040204",  # SHA-224: likewise
            "06032a0304",  # 1.2.3.4: nobody knows it
        ],
    )
    def test_unknown_cert_id_hash_is_malformed(self, oid: str) -> None:
        cert_id = der_tlv(0x30, der_tlv(0x30, bytes.fromhex(oid) + b"\x05\x00") + der_tlv(0x04, b"\x11" * 20) * 2 + b"\x02\x01\x05")
        with pytest.raises(MalformedRequest, match="unsupported CertID hash"):
            parse_request(ocsp_request([cert_id]))

    @pytest.mark.parametrize("cut", [1, 5, 20, 40])
    def test_truncated_and_trailing_bytes_are_malformed(self, ca_a: Issuer, cut: int) -> None:
        one = request_der(ca_a, 77, nonce=True)
        with pytest.raises(MalformedRequest):
            parse_request(one[:-cut])
        with pytest.raises(MalformedRequest):
            parse_request(one + b"\x00" * cut)

    def test_http_date_is_go_rfc1123_with_utc(self) -> None:
        assert http_date(dt.datetime(2026, 11, 26, 18, 0, tzinfo=dt.timezone.utc)) == "Thu, 26 Nov 2026 18:00:00 UTC"
        cet = dt.timezone(dt.timedelta(hours=1))
        assert http_date(dt.datetime(2026, 1, 4, 1, 2, 3, tzinfo=cet)) == "Sun, 04 Jan 2026 00:02:03 UTC"


# ---------------------------------------------------------------------------------------------------------
# sources


class TestFileSource:
    def test_two_issuers_same_serial_never_collide(self, ca_a: Issuer, ca_b: Issuer) -> None:
        good = sign(ca_a, ca_a.issue(1000))
        revoked = sign(ca_b, ca_b.issue(1000), "revoked", reason=1)
        source = FileSource.from_text(responses_text([good, revoked]))
        assert source.lookup(CertID.for_certificate(ca_a.cert, 1000)) == good
        assert source.lookup(CertID.for_certificate(ca_b.cert, 1000)) == revoked
        assert source.lookup(CertID.for_certificate(ca_a.cert, 1001)) is None
        # a SHA-256 CertID is a different question: the SHA-1 response does not answer it
        assert source.lookup(CertID.for_certificate(ca_a.cert, 1000, "sha256")) is None

    def test_bad_entries_skipped_and_logged(self, ca_a: Issuer, caplog: pytest.LogCaptureFixture) -> None:
        good = sign(ca_a, ca_a.issue(5))
        text = "\n".join(["not*base64", b64(b"not an OCSP response"), b64(UNAUTHORIZED), "  ", b64(good)]) + "\n"
        with caplog.at_level(logging.INFO, logger="cfsslpy.ocspresponder"):
            source = FileSource.from_text(text)
        assert source.lookup(CertID.for_certificate(ca_a.cert, 5)) == good
        assert len(source.responses) == 1
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 3
        assert any(m.startswith("Base64 decode error") for m in errors)
        assert sum(m.startswith("OCSP decode error") for m in errors) == 2
        assert "Read 1 OCSP responses" in caplog.text

    def test_whitespace_separated_and_later_duplicates_win(self, ca_a: Issuer) -> None:
        cert = ca_a.issue(6)
        first, second = sign(ca_a, cert), sign(ca_a, cert, "revoked", reason=4)
        source = FileSource.from_text(f"{b64(first)} \t {b64(second)}".encode())
        assert source.lookup(CertID.for_certificate(ca_a.cert, 6)) == second

    def test_load_missing_file(self, tmp_path: Path) -> None:
        from cfsslpy.errors import Error

        with pytest.raises(Error):
            FileSource.load(str(tmp_path / "missing"))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[CertDB]:
    database = CertDB(DBConfig("sqlite3", str(tmp_path / "certs.db")))
    yield database
    database.close()


def record(cert: x509.Certificate, **kwargs: Any) -> CertificateRecord:
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return CertificateRecord.from_certificate(cert, pem=pem, **kwargs)


class TestDBSource:
    def test_stored_response_by_serial_and_aki(self, db: CertDB, ca_a: Issuer, ca_b: Issuer) -> None:
        cert_a, cert_b = ca_a.issue(42), ca_b.issue(42)
        for cert in (cert_a, cert_b):
            db.insert_certificate(record(cert))
        body_a, body_b = sign(ca_a, cert_a), sign(ca_b, cert_b, "revoked", reason=1)
        db.upsert_ocsp("42", ca_a.aki, body_a, NOW + dt.timedelta(days=1))
        db.upsert_ocsp("42", ca_b.aki, body_b, NOW + dt.timedelta(days=1))
        source = DBSource(db)
        assert source.lookup(CertID.for_certificate(ca_a.cert, 42)) == body_a
        assert source.lookup(CertID.for_certificate(ca_b.cert, 42)) == body_b
        assert source.lookup(CertID.for_certificate(ca_a.cert, 43)) is None
        # keyed by SHA-1 key identifiers: another CertID hash is not looked up
        assert source.lookup(CertID.for_certificate(ca_a.cert, 42, "sha256")) is None

    def test_expired_rows_not_served(self, db: CertDB, ca_a: Issuer) -> None:
        cert = ca_a.issue(7)
        db.insert_certificate(record(cert))
        db.upsert_ocsp("7", ca_a.aki, sign(ca_a, cert), NOW - dt.timedelta(seconds=1))
        assert DBSource(db).lookup(CertID.for_certificate(ca_a.cert, 7)) is None
        assert DBSource(db, now=lambda: NOW - dt.timedelta(minutes=1)).lookup(CertID.for_certificate(ca_a.cert, 7)) is not None

    def test_database_failure_is_internal_error(self, tmp_path: Path, ca_a: Issuer) -> None:
        broken = tmp_path / "broken.db"
        broken.write_bytes(b"this is not a database" * 100)
        source = DBSource(CertDB(DBConfig("sqlite3", str(broken))))
        reply = Responder(source).respond("POST", "", request_der(ca_a, 1))
        assert (reply.status, reply.body) == (500, INTERNAL_ERROR)
        assert ("Content-Type", "application/ocsp-response") in reply.headers


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class TestLiveSource:
    def test_status_follows_the_database(self, db: CertDB, ca_a: Issuer) -> None:
        cert = ca_a.issue(900)
        db.insert_certificate(record(cert))
        clock = Clock()
        source = LiveSource(db, [ca_a.signer()], cache_ttl=60, clock=clock)
        cert_id = CertID.for_certificate(ca_a.cert, 900)
        first = source.lookup(cert_id)
        assert first is not None and status_of(first) == ocsp.OCSPCertStatus.GOOD
        db.revoke("900", ca_a.aki, 1)
        clock.t += 59
        assert source.lookup(cert_id) == first  # cached, at most cache_ttl
        clock.t += 2
        now_revoked = source.lookup(cert_id)
        assert now_revoked is not None
        response = single(now_revoked)
        assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
        assert response.revocation_reason == x509.ReasonFlags.key_compromise
        assert response.serial_number == 900

    def test_unknown_serial_and_unknown_issuer(self, db: CertDB, ca_a: Issuer, ca_b: Issuer) -> None:
        db.insert_certificate(record(ca_b.issue(5)))
        source = LiveSource(db, [ca_a.signer()])
        assert source.lookup(CertID.for_certificate(ca_a.cert, 5)) is None  # serial of another issuer
        assert source.lookup(CertID.for_certificate(ca_b.cert, 5)) is None  # issuer not served

    def test_two_issuers_and_request_hash(self, db: CertDB, ca_a: Issuer, ca_b: Issuer) -> None:
        db.insert_certificate(record(ca_a.issue(11)))
        db.insert_certificate(record(ca_b.issue(11), status="good"))
        db.revoke("11", ca_b.aki, 4)
        source = LiveSource(db, [ca_a.signer(), ca_b.signer()])
        for algorithm in ("sha1", "sha256", "sha384", "sha512"):
            for issuer, status in ((ca_a, ocsp.OCSPCertStatus.GOOD), (ca_b, ocsp.OCSPCertStatus.REVOKED)):
                cert_id = CertID.for_certificate(issuer.cert, 11, algorithm)
                der = source.lookup(cert_id)
                assert der is not None, (algorithm, issuer.cert.subject)
                response = single(der)
                assert response.certificate_status == status
                assert CertID.of(response) == cert_id  # answered with the request's own CertID

    def test_legacy_row_without_aki(self, db: CertDB, ca_a: Issuer) -> None:
        cert = ca_a.issue(12)
        rec = record(cert)
        db.insert_certificate(CertificateRecord(**{**rec.__dict__, "aki": ""}))
        der = LiveSource(db, [ca_a.signer()]).lookup(CertID.for_certificate(ca_a.cert, 12))
        assert der is not None and status_of(der) == ocsp.OCSPCertStatus.GOOD

    def test_row_of_another_issuer_under_our_aki_is_unauthorized(self, db: CertDB, ca_a: Issuer, ca_b: Issuer) -> None:
        impostor = ca_b.issue(13)
        rec = record(impostor)
        db.insert_certificate(CertificateRecord(**{**rec.__dict__, "aki": ca_a.aki}))
        assert LiveSource(db, [ca_a.signer()]).lookup(CertID.for_certificate(ca_a.cert, 13)) is None

    def test_cache_lifetime_is_bounded_by_interval(self, db: CertDB, ca_a: Issuer) -> None:
        assert LiveSource(db, [ca_a.signer()]).cache.ttl == 60
        assert LiveSource(db, [ca_a.signer()], cache_ttl=86400).cache.ttl == 3600
        assert LiveSource(db, [ca_a.signer(dt.timedelta(seconds=30))], cache_ttl=600).cache.ttl == 15
        assert LiveSource(db, [ca_a.signer()], cache_ttl=0).cache.ttl == 0

    def test_cache_disabled_signs_every_time(self, db: CertDB, ca_a: Issuer) -> None:
        db.insert_certificate(record(ca_a.issue(14)))
        source = LiveSource(db, [ca_a.signer()], cache_ttl=0)
        cert_id = CertID.for_certificate(ca_a.cert, 14)
        assert source.lookup(cert_id) is not None
        db.revoke("14", ca_a.aki, 1)
        der = source.lookup(cert_id)
        assert der is not None and status_of(der) == ocsp.OCSPCertStatus.REVOKED
        assert len(source.cache) == 0

    def test_needs_a_signer(self, db: CertDB) -> None:
        with pytest.raises(ValueError):
            LiveSource(db, [])


class TestResponseCache:
    def key(self, serial: int) -> tuple[int, CertID]:
        return 0, CertID("sha1", b"n", b"k", serial)

    def test_lru_bound(self) -> None:
        cache = ResponseCache(size=3, ttl=60, clock=Clock())
        for serial in range(3):
            cache.put(self.key(serial), b"r%d" % serial)
        assert cache.get(self.key(0)) == b"r0"  # 0 is now the most recently used
        cache.put(self.key(3), b"r3")
        assert len(cache) == 3
        assert cache.get(self.key(1)) is None  # the least recently used went
        assert [cache.get(self.key(s)) for s in (0, 2, 3)] == [b"r0", b"r2", b"r3"]

    def test_expiry(self) -> None:
        clock = Clock()
        cache = ResponseCache(size=10, ttl=5, clock=clock)
        cache.put(self.key(1), b"x")
        clock.t += 4.9
        assert cache.get(self.key(1)) == b"x"
        clock.t += 0.1
        assert cache.get(self.key(1)) is None
        assert len(cache) == 0


# ---------------------------------------------------------------------------------------------------------
# HTTP rules


class StaticSource:
    def __init__(self, result: bytes | None | Exception) -> None:
        self.result = result
        self.seen: list[CertID] = []

    def lookup(self, request: CertID) -> bytes | None:
        self.seen.append(request)
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def header(reply: Reply, name: str) -> str | None:
    values = [v for k, v in reply.headers if k.lower() == name.lower()]
    assert len(values) <= 1, reply.headers
    return values[0] if values else None


class TestResponder:
    @pytest.fixture
    def found(self, ca_a: Issuer) -> tuple[bytes, bytes]:
        """(request, response) for a good certificate."""
        cert = ca_a.issue(321)
        return request_der(ca_a, 321), sign(ca_a, cert)

    @pytest.mark.parametrize("method", ["PUT", "DELETE", "HEAD", "OPTIONS"])
    def test_other_methods_405(self, method: str, found: tuple[bytes, bytes]) -> None:
        reply = Responder(StaticSource(found[1])).respond(method, "/", found[0])
        assert reply == Reply(405, [("Cache-Control", "max-age=0, no-cache")], b"")

    def test_get_not_base64_is_400_without_body(self) -> None:
        source = StaticSource(None)
        reply = Responder(source).respond("GET", "/not*base64", b"")
        assert reply == Reply(400, [("Cache-Control", "max-age=0, no-cache")], b"")
        assert source.seen == []

    @pytest.mark.parametrize("method", ["GET", "POST"])
    def test_malformed_request(self, method: str) -> None:
        body = b"\x30\x05garbage"
        reply = Responder(StaticSource(None)).respond(method, "/" + b64(body), body)
        assert reply.status == 400
        assert reply.body == MALFORMED_REQUEST == bytes([0x30, 0x03, 0x0A, 0x01, 0x01])
        assert reply.headers == [("Cache-Control", "max-age=0, no-cache"), ("Content-Type", "application/ocsp-response")]

    @pytest.mark.parametrize("method", ["GET", "POST"])
    @pytest.mark.parametrize("count", [0, 2, 200])
    def test_zero_or_several_cert_ids_answered_malformed(self, method: str, count: int, found: tuple[bytes, bytes]) -> None:
        source = StaticSource(found[1])
        body = ocsp_request([cert_id_der(found[0])] * count)
        reply = Responder(source).respond(method, "/" + urllib.parse.quote(b64(body), safe=""), body)
        assert (reply.status, reply.body) == (400, MALFORMED_REQUEST)
        assert source.seen == []
        assert Responder(source).respond(method, "/" + b64(found[0]), found[0]).body == found[1]  # still answers

    def test_unforeseen_failure_is_500_internal_error_in_one_line(
        self, found: tuple[bytes, bytes], caplog: pytest.LogCaptureFixture
    ) -> None:
        class Broken(StaticSource):
            def lookup(self, request: CertID) -> bytes | None:
                return 42  # type: ignore[return-value]  # not bytes: parse_response raises TypeError

        with caplog.at_level(logging.INFO, logger="cfsslpy.ocspresponder"):
            reply = Responder(Broken(None)).respond("POST", "/\n[ERROR] forged", found[0])
        assert (reply.status, reply.body) == (500, INTERNAL_ERROR)
        assert header(reply, "Content-Type") == "application/ocsp-response"
        messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(messages) == 1 and "\n" not in messages[0] and "TypeError" in messages[0], messages

    def test_memo_answers_a_repeated_request_without_the_source_and_keeps_max_age_current(self, found: tuple[bytes, bytes]) -> None:
        source = StaticSource(found[1])
        clock = [dt.datetime.now(dt.timezone.utc)]
        responder = Responder(source, now=lambda: clock[0], memo=2)
        first = responder.respond("POST", "/", found[0])
        clock[0] += dt.timedelta(seconds=100)
        second = responder.respond("POST", "/", found[0])
        assert len(source.seen) == 1  # the second came from the memo
        assert first.body == second.body == found[1] and first.status == second.status == 200
        age = [int(str(header(r, "Cache-Control")).split("=")[1].split(",")[0]) for r in (first, second)]
        assert age[0] - age[1] == 100
        assert [k for k, _ in first.headers] == [k for k, _ in second.headers]
        assert responder.respond("POST", "/", found[0], header(first, "ETag")).status == 304
        # unknown and malformed requests are not remembered; the memo is bounded
        responder.respond("POST", "/", b"\x30\x05garbage")
        responder.respond("GET", "/" + b64(found[0]), b"")
        responder.respond("GET", "/" + urllib.parse.quote(b64(found[0]), safe=""), b"")
        assert len(responder._memo) == 2 and len(source.seen) == 3

    def test_undecodable_path_logged_quoted_and_truncated(self, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.INFO, logger="cfsslpy.ocspresponder"):
            reply = Responder(StaticSource(None)).respond("GET", "/*\n2026/01/01 00:00:00 [ERROR] forged\x1b[2J" + "x" * 5000, b"")
        assert reply.status == 400
        (message,) = [r.getMessage() for r in caplog.records]
        assert "\n" not in message and "\x1b" not in message and len(message) < 400, message

    def test_not_found_is_200_unauthorized(self, found: tuple[bytes, bytes]) -> None:
        source = StaticSource(None)
        reply = Responder(source).respond("POST", "/", found[0])
        assert reply.status == 200
        assert reply.body == UNAUTHORIZED == bytes([0x30, 0x03, 0x0A, 0x01, 0x06])
        assert reply.headers == [("Cache-Control", "max-age=0, no-cache"), ("Content-Type", "application/ocsp-response")]
        assert source.seen == [parse_request(found[0])]

    def test_source_failure_is_500_internal_error(self, found: tuple[bytes, bytes], caplog: pytest.LogCaptureFixture) -> None:
        reply = Responder(StaticSource(RuntimeError("database is on fire"))).respond("POST", "/", found[0])
        assert (reply.status, reply.body) == (500, INTERNAL_ERROR)
        assert header(reply, "Cache-Control") == "max-age=0, no-cache"
        assert "database is on fire" in caplog.text

    @pytest.mark.parametrize("stored", [b"junk", UNAUTHORIZED])
    def test_unparseable_stored_response_is_200_internal_error(self, stored: bytes, found: tuple[bytes, bytes]) -> None:
        reply = Responder(StaticSource(stored)).respond("POST", "/", found[0])
        assert (reply.status, reply.body) == (200, INTERNAL_ERROR)
        assert INTERNAL_ERROR == bytes([0x30, 0x03, 0x0A, 0x01, 0x02])

    def test_response_for_another_certid_never_served(self, ca_a: Issuer, ca_b: Issuer) -> None:
        other_issuer = sign(ca_b, ca_b.issue(321))  # same serial, other issuer
        other_serial = sign(ca_a, ca_a.issue(322))
        for wrong in (other_issuer, other_serial):
            reply = Responder(StaticSource(wrong)).respond("POST", "/", request_der(ca_a, 321))
            assert (reply.status, reply.body) == (200, UNAUTHORIZED)
        sha256 = request_der(ca_a, 321, hashes.SHA256())
        reply = Responder(StaticSource(sign(ca_a, ca_a.issue(321)))).respond("POST", "/", sha256)
        assert (reply.status, reply.body) == (200, UNAUTHORIZED)

    @pytest.mark.parametrize("method", ["GET", "POST"])
    def test_success_headers(self, method: str, found: tuple[bytes, bytes]) -> None:
        req, der = found
        response = single(der)
        this_update, next_update = response.this_update_utc, response.next_update_utc
        assert next_update is not None
        now = this_update + dt.timedelta(minutes=30, seconds=0.5)
        reply = Responder(StaticSource(der), now=lambda: now).respond(method, "/" + urllib.parse.quote(b64(req), safe=""), req)
        assert reply.status == 200 and reply.body == der
        max_age = int((next_update - now).total_seconds())
        assert max_age == 96 * 3600 - 1800 - 1
        assert reply.headers == [
            ("Cache-Control", f"max-age={max_age}, public, no-transform, must-revalidate"),
            ("Content-Type", "application/ocsp-response"),
            ("Last-Modified", http_date(this_update)),
            ("Expires", http_date(next_update)),
            ("ETag", '"' + hashlib.sha256(der).hexdigest().upper() + '"'),
        ]
        assert str(header(reply, "Last-Modified")).endswith(":00:00 UTC")  # thisUpdate: truncated to the hour

    def test_if_none_match(self, found: tuple[bytes, bytes]) -> None:
        req, der = found
        tag = '"' + hashlib.sha256(der).hexdigest().upper() + '"'
        responder = Responder(StaticSource(der))
        reply = responder.respond("POST", "/", req, tag)
        assert reply.status == 304 and reply.body == b""
        assert header(reply, "ETag") == tag and header(reply, "Expires") is not None
        assert str(header(reply, "Cache-Control")).endswith("public, no-transform, must-revalidate")
        assert responder.respond("POST", "/", req, tag.lower()).status == 200  # an exact match only
        assert responder.respond("POST", "/", req, '"other"').status == 200

    def test_stale_response_max_age_zero(self, found: tuple[bytes, bytes]) -> None:
        req, der = found
        later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)
        reply = Responder(StaticSource(der), now=lambda: later).respond("POST", "/", req)
        assert reply.status == 200
        assert header(reply, "Cache-Control") == "max-age=0, public, no-transform, must-revalidate"


# ---------------------------------------------------------------------------------------------------------
# WSGI


def call(app: OCSPApp, method: str, path: str, body: bytes = b"", **extra: Any) -> tuple[int, dict[str, str], bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "REMOTE_ADDR": "127.0.0.1",
        **extra,
    }
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, headers

    out = b"".join(app(environ, start_response))
    headers = dict(seen["headers"])
    assert int(headers["Content-Length"]) == len(out)
    return int(seen["status"].split()[0]), headers, out


class TestApp:
    def test_mount_point(self) -> None:
        assert [mount_point(p) for p in ("/", "", "/ocsp", "/ocsp/", "ocsp")] == ["/", "/", "/ocsp", "/ocsp", "/ocsp"]

    def test_root(self, ca_a: Issuer, caplog: pytest.LogCaptureFixture) -> None:
        der = sign(ca_a, ca_a.issue(55))
        app = OCSPApp(Responder(FileSource.from_text(b64(der))))
        req = request_der(ca_a, 55)
        with caplog.at_level(logging.DEBUG, logger="cfsslpy.api.access"):  # answers are logged at DEBUG
            assert call(app, "POST", "/", req)[2] == der
            assert call(app, "POST", "/anything", req)[2] == der  # cfssl's "/" pattern matches every path
            status, headers, body = call(app, "GET", "/" + b64(req))
        assert (status, body) == (200, der)
        assert headers["Content-Type"] == "application/ocsp-response"
        lines = [r.getMessage() for r in caplog.records if r.name == "cfsslpy.api.access"]
        assert len(lines) == 3
        assert lines[0].startswith("method=POST path=/ status=200 bytes=") and lines[0].endswith("remote=127.0.0.1")
        assert {r.levelno for r in caplog.records if r.name == "cfsslpy.api.access"} == {logging.DEBUG}
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="cfsslpy.api.access"):
            assert call(app, "POST", "/", request_der(ca_a, 56))[2] == UNAUTHORIZED  # refusals at INFO
        assert [r.getMessage()[:40] for r in caplog.records] == ["method=POST path=/ status=200 bytes=5 du"]

    def test_non_root_path(self, ca_a: Issuer) -> None:
        der = sign(ca_a, ca_a.issue(56))
        app = OCSPApp(Responder(FileSource.from_text(b64(der))), "/ocsp/")
        req = request_der(ca_a, 56)
        assert call(app, "POST", "/ocsp", req)[2] == der
        assert call(app, "POST", "/ocsp/", req)[2] == der
        assert call(app, "GET", "/ocsp/" + urllib.parse.quote(b64(req), safe=""))[2] == der  # cfssl cannot do this
        status, headers, body = call(app, "GET", "/elsewhere/" + b64(req))
        assert (status, body) == (404, b"404 page not found\n")
        assert call(app, "POST", "/ocspx", req)[0] == 404

    def test_body_too_large(self, ca_a: Issuer) -> None:
        app = OCSPApp(Responder(StaticSource(None)))
        status, headers, body = call(app, "POST", "/", b"\x30" * (MAX_REQUEST + 1))
        assert (status, body) == (413, b"")
        # no Content-Length and an input the server has not terminated: PEP 3333 forbids reading it
        environ = {"CONTENT_LENGTH": "", "wsgi.input": io.BytesIO(b"\x30" * (MAX_REQUEST + 10))}
        assert call(app, "POST", "/", b"", **environ)[:3:2] == (400, MALFORMED_REQUEST)
        # a terminated input (the server de-chunked it) is read up to the limit + 1
        environ = {"CONTENT_LENGTH": "", "wsgi.input_terminated": True, "wsgi.input": io.BytesIO(b"\x30" * (MAX_REQUEST + 10))}
        assert call(app, "POST", "/", b"", **environ)[0] == 413
        # a chunked body is de-chunked (serve's reader), not taken as the request with its framing
        der = request_der(ca_a, 1)
        chunked = f"{len(der):x}\r\n".encode() + der + b"\r\n0\r\n\r\n"
        environ = {"CONTENT_LENGTH": "", "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(chunked)}
        assert call(app, "POST", "/", b"", **environ)[2] == UNAUTHORIZED
        assert call(app, "POST", "/", request_der(ca_a, 1))[2] == UNAUTHORIZED


# ---------------------------------------------------------------------------------------------------------
# the command's checks (the server itself runs in tests/integration/test_ocspserve.py)


class TestCommand:
    def test_needs_a_source(self, run_cli: RunCli) -> None:
        result = run_cli("ocspserve", "-port", "0")
        assert result.status == 1
        assert error_line(result.stderr) == NO_SOURCE
        assert hints(result.stderr)[0].startswith("usage: cfsslpy ocspserve ")
        assert NO_SOURCE == (
            "no response file or db-config provided, please set the one of these using either -responses or -db-config flags"
        )

    def test_positional_argument(self, run_cli: RunCli) -> None:
        result = run_cli("ocspserve", "-responses", "x", "extra")
        assert result.status == 1 and "argument is provided but not defined" in result.stderr

    def test_live_mode_needs_all_three(self, run_cli: RunCli, tmp_path: Path) -> None:
        result = run_cli("ocspserve", "-db-config", "db.json", "-ca", "ca.pem")
        assert result.status == 2
        assert "missing -responder, -responder-key" in result.stderr

    def test_live_mode_lists_of_one_length(self, run_cli: RunCli) -> None:
        result = run_cli("ocspserve", "-db-config", "db.json", "-ca", "a.pem,b.pem", "-responder", "r.pem", "-responder-key", "k.pem")
        assert result.status == 1
        assert "must list the same number of files (got 2, 1, 1)" in result.stderr

    def test_bad_interval(self, run_cli: RunCli) -> None:
        result = run_cli("ocspserve", "-db-config", "d", "-ca", "a", "-responder", "r", "-responder-key", "k", "-interval", "soon")
        assert result.status == 2 and 'invalid value "soon" for flag -interval' in result.stderr

    def test_missing_responses_file(self, run_cli: RunCli, tmp_path: Path) -> None:
        result = run_cli("ocspserve", "-port", "0", "-responses", str(tmp_path / "nope"))
        assert result.status == 1
        assert "nope" in result.stderr and "Traceback" not in result.stderr

    def test_bad_cache_ttl(self, run_cli: RunCli) -> None:
        args = ("ocspserve", "-db-config", "d", "-ca", "a", "-responder", "r", "-responder-key", "k")
        result = run_cli(*args, "-cache-ttl", "forever")
        assert result.status == 2 and 'invalid value "forever" for flag -cache-ttl' in result.stderr
        result = run_cli(*args, "-cache-ttl", "25h")
        assert result.status == 2 and 'invalid value "25h" for flag -cache-ttl' in result.stderr
