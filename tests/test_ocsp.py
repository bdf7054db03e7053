"""OCSP signing (cfsslpy.ocsp): every response is parsed back and its fields and signature checked."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509 import ocsp as x509_ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cfsslpy.certdb import CertDB, CertificateRecord, DBConfig
from cfsslpy.errors import CfsslError, PlainError
from cfsslpy.keys import PrivateKey, encode_private_key
from cfsslpy.ocsp import OCSPSigner, OCSPSignRequest, dump, load_signer, parse_interval, parse_status, refresh, sign_request

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
T = dt.datetime(2026, 11, 26, 17, 59, 42, tzinfo=dt.timezone.utc)  # an injected signing time


# -----------------------------------------------------------------------------------------------------------
# a small PKI built with cryptography (shared with the CLI and interop tests)


@functools.cache
def key(kind: str) -> PrivateKey:
    """One key per kind (``rsa2048``, ``p256``, ``p384``, ``ed25519``; ``#tag`` for another of the same kind)."""
    base = kind.split("#", 1)[0]
    if base.startswith("rsa"):
        return rsa.generate_private_key(65537, int(base[3:]))
    if base == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key({"p256": ec.SECP256R1(), "p384": ec.SECP384R1()}[base])


def _hash(k: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | None:
    if isinstance(k, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(k, ec.EllipticCurvePrivateKey) and k.curve.key_size == 384:
        return hashes.SHA384()
    return hashes.SHA256()


_serials = iter(range(1000, 10**6))


def make_cert(
    cn: str,
    subject_key: PrivateKey,
    issuer: Cert | None = None,
    *,
    ca: bool = False,
    eku: list[x509.ObjectIdentifier] | None = None,
    nocheck: bool = False,
    issuer_name: x509.Name | None = None,
    signing_key: PrivateKey | None = None,
    not_after: dt.datetime | None = None,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cfsslpy tests"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    signer_key = signing_key or (issuer.key if issuer else subject_key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name or (issuer.cert.subject if issuer else name))
        .public_key(subject_key.public_key())
        .serial_number(next(_serials))
        .not_valid_before(NOW - dt.timedelta(days=365))  # before T, the injected signing time
        .not_valid_after(not_after or NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            ),
            critical=False,
        )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if nocheck:
        builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)
    return builder.sign(signer_key, _hash(signer_key))


@dataclass
class Cert:
    cert: x509.Certificate
    key: PrivateKey

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        cert = directory / f"{name}.pem"
        cert.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        k = directory / f"{name}-key.pem"
        k.write_bytes(encode_private_key(self.key))
        return cert, k

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()


def make_ca(kind: str = "p256", cn: str = "OCSP Test CA") -> Cert:
    k = key(kind)
    return Cert(make_cert(cn, k, ca=True), k)


def make_leaf(ca: Cert, cn: str = "leaf.example", kind: str = "p256", **kw: Any) -> Cert:
    k = key(kind)
    return Cert(make_cert(cn, k, ca, **kw), k)


def make_responder(ca: Cert, kind: str = "p256", *, nocheck: bool = True, eku: bool = True) -> Cert:
    k = key(kind + "#responder")
    return Cert(make_cert(f"OCSP responder {kind}", k, ca, eku=[ExtendedKeyUsageOID.OCSP_SIGNING] if eku else None, nocheck=nocheck), k)


def parse(der: bytes) -> x509_ocsp.OCSPResponse:
    resp = x509_ocsp.load_der_ocsp_response(der)
    assert resp.response_status == x509_ocsp.OCSPResponseStatus.SUCCESSFUL
    return resp


def verify_signature(resp: x509_ocsp.OCSPResponse, signer: x509.Certificate) -> None:
    pub = signer.public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        assert resp.signature_hash_algorithm is not None
        pub.verify(resp.signature, resp.tbs_response_bytes, padding.PKCS1v15(), resp.signature_hash_algorithm)
    elif isinstance(pub, ec.EllipticCurvePublicKey):
        assert resp.signature_hash_algorithm is not None
        pub.verify(resp.signature, resp.tbs_response_bytes, ec.ECDSA(resp.signature_hash_algorithm))
    else:
        assert isinstance(pub, ed25519.Ed25519PublicKey)
        pub.verify(resp.signature, resp.tbs_response_bytes)


def spki_bits_sha1(cert: x509.Certificate) -> bytes:
    raw = cert.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return hashlib.sha1(raw).digest()


# -----------------------------------------------------------------------------------------------------------
# the response layout, per responder key type


HASHES = {"rsa2048": "sha256", "p256": "sha256", "p384": "sha384", "ed25519": None}


@pytest.mark.parametrize("kind", ["rsa2048", "p256", "p384", "ed25519"])
def test_ca_signs_its_own_responses(kind: str) -> None:
    ca = make_ca(kind)
    leaf = make_leaf(ca)
    signer = OCSPSigner(ca.cert, ca.cert, ca.key)
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    resp = parse(signer.sign(OCSPSignRequest(leaf.cert), now=T))
    assert resp.certificate_status == x509_ocsp.OCSPCertStatus.GOOD
    assert resp.serial_number == leaf.cert.serial_number
    assert resp.this_update_utc == dt.datetime(2026, 11, 26, 17, 0, tzinfo=dt.timezone.utc)  # truncated to the hour
    assert resp.next_update_utc == dt.datetime(2026, 11, 30, 17, 0, tzinfo=dt.timezone.utc)  # + 96h
    assert before <= resp.produced_at_utc <= dt.datetime.now(dt.timezone.utc)
    assert resp.responder_name == ca.cert.subject and resp.responder_key_hash is None
    assert resp.certificates == []  # the responder is the issuer: not embedded
    assert isinstance(resp.hash_algorithm, hashes.SHA1)
    assert resp.issuer_name_hash == hashlib.sha1(ca.cert.subject.public_bytes()).digest()
    sig_hash = resp.signature_hash_algorithm
    assert (sig_hash.name if sig_hash else None) == HASHES[kind]
    verify_signature(resp, ca.cert)
    assert resp.revocation_time_utc is None and resp.revocation_reason is None


@pytest.mark.parametrize("kind", ["rsa2048", "p256", "p384", "ed25519"])
def test_delegated_responder(kind: str) -> None:
    ca = make_ca("p256")
    leaf = make_leaf(ca)
    responder = make_responder(ca, kind)
    signer = OCSPSigner(ca.cert, responder.cert, responder.key, dt.timedelta(hours=2))
    resp = parse(signer.sign(OCSPSignRequest(leaf.cert, "unknown"), now=T))
    assert resp.certificate_status == x509_ocsp.OCSPCertStatus.UNKNOWN
    assert resp.responder_name == responder.cert.subject
    assert resp.certificates == [responder.cert]
    assert resp.next_update_utc == dt.datetime(2026, 11, 26, 19, 0, tzinfo=dt.timezone.utc)
    sig_hash = resp.signature_hash_algorithm
    assert (sig_hash.name if sig_hash else None) == HASHES[kind]
    verify_signature(resp, responder.cert)
    with pytest.raises(InvalidSignature):  # the check can fail: another key of the same kind
        verify_signature(resp, make_responder(ca, kind + "#other").cert)


def test_issuer_key_hash_is_the_issuer_aki() -> None:
    ca = make_ca("p256")
    leaf = make_leaf(ca)
    signer = OCSPSigner(ca.cert, ca.cert, ca.key)
    resp = parse(signer.sign(OCSPSignRequest(leaf.cert)))
    assert resp.issuer_key_hash == spki_bits_sha1(ca.cert)
    aki = leaf.cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki is not None
    assert signer.key_hash == signer.issuer_aki == aki.hex() == resp.issuer_key_hash.hex()


@pytest.mark.parametrize(
    ("name", "algorithm"), [("SHA1", hashes.SHA1), ("SHA256", hashes.SHA256), ("sha384", hashes.SHA384), ("SHA512", hashes.SHA512)]
)
def test_issuer_hash(name: str, algorithm: type[hashes.HashAlgorithm]) -> None:
    ca = make_ca("p256")
    leaf = make_leaf(ca)
    resp = parse(OCSPSigner(ca.cert, ca.cert, ca.key).sign(OCSPSignRequest(leaf.cert, issuer_hash=name)))
    assert isinstance(resp.hash_algorithm, algorithm)
    h = hashes.Hash(algorithm())
    h.update(ca.cert.subject.public_bytes())
    assert resp.issuer_name_hash == h.finalize()


def test_unsupported_issuer_hash() -> None:
    ca = make_ca("p256")
    with pytest.raises(CfsslError) as exc:
        OCSPSigner(ca.cert, ca.cert, ca.key).sign(OCSPSignRequest(make_leaf(ca).cert, issuer_hash="MD5"))
    assert exc.value.code == 8000 and exc.value.message == "Unsupported hash algorithm in request"


def test_revoked_with_reason_and_time() -> None:
    ca = make_ca("p256")
    leaf = make_leaf(ca)
    signer = OCSPSigner(ca.cert, ca.cert, ca.key)
    when = dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc)
    resp = parse(signer.sign(OCSPSignRequest(leaf.cert, "revoked", 1, when), now=T))
    assert resp.certificate_status == x509_ocsp.OCSPCertStatus.REVOKED
    assert resp.revocation_time_utc == when
    assert resp.revocation_reason == x509.ReasonFlags.key_compromise
    # reason 0 is omitted (Go's rule); no time = now, to the second
    resp = parse(signer.sign(OCSPSignRequest(leaf.cert, "revoked", 0), now=T.replace(microsecond=123456)))
    assert resp.revocation_reason is None and resp.revocation_time_utc == T
    resp = parse(signer.sign(OCSPSignRequest(leaf.cert, "revoked", 10), now=T))
    assert resp.revocation_reason == x509.ReasonFlags.aa_compromise


# -----------------------------------------------------------------------------------------------------------
# refusals


def test_certificate_of_another_issuer() -> None:
    ca, other = make_ca("p256", "CA one"), make_ca("p256#2", "CA two")
    with pytest.raises(CfsslError) as exc:
        OCSPSigner(ca.cert, ca.cert, ca.key).sign(OCSPSignRequest(make_leaf(other).cert))
    assert exc.value.code == 8100 and exc.value.message == "Certificate not issued by this issuer"


@pytest.mark.parametrize(("kind", "message"), [("p256", "x509: ECDSA verification failure"), ("rsa2048", "crypto/rsa: verification error")])
def test_forged_certificate(kind: str, message: str) -> None:
    ca = make_ca(kind)
    forged = make_cert("forged", key("p256#leaf"), ca, signing_key=key(kind + "#forger"))
    with pytest.raises(CfsslError) as exc:
        OCSPSigner(ca.cert, ca.cert, ca.key).sign(OCSPSignRequest(forged))
    assert exc.value.code == 8200 and exc.value.message == message


@pytest.mark.parametrize(
    "req", [{"status": "Good"}, {"status": "bogus"}, {"status": "revoked", "reason": 7}, {"status": "revoked", "reason": 11}]
)
def test_bad_status_or_reason(req: dict[str, Any]) -> None:
    ca = make_ca("p256")
    with pytest.raises(CfsslError) as exc:
        OCSPSigner(ca.cert, ca.cert, ca.key).sign(OCSPSignRequest(make_leaf(ca).cert, **req))
    assert exc.value.code == 8200 and exc.value.message == "Invalid revocation status"


def test_key_mismatch() -> None:
    ca = make_ca("p256")
    responder = make_responder(ca)
    with pytest.raises(CfsslError) as exc:
        OCSPSigner(ca.cert, responder.cert, ca.key)
    assert exc.value.code == 2300


def test_responder_without_ocsp_signing_eku_is_refused() -> None:
    ca = make_ca("p256")
    plain = make_responder(ca, eku=False)
    with pytest.raises(CfsslError) as exc:
        OCSPSigner(ca.cert, plain.cert, plain.key)
    assert exc.value.code == 8100 and "lacks the OCSP Signing extended key usage" in exc.value.message
    server = Cert(make_cert("server", key("p256#srv"), ca, eku=[ExtendedKeyUsageOID.SERVER_AUTH]), key("p256#srv"))
    with pytest.raises(CfsslError, match="OCSP Signing"):
        OCSPSigner(ca.cert, server.cert, server.key)


def test_responder_of_another_ca_is_refused() -> None:
    ca, other = make_ca("p256", "CA one"), make_ca("p256#2", "CA two")
    foreign = make_responder(other)
    with pytest.raises(CfsslError) as exc:
        OCSPSigner(ca.cert, foreign.cert, foreign.key)
    assert exc.value.code == 8100 and "neither the CA certificate nor issued by it" in exc.value.message
    # same subject as a real delegate, but signed by another key
    fake = make_cert("OCSP responder", key("p256#fake"), ca, eku=[ExtendedKeyUsageOID.OCSP_SIGNING], signing_key=key("p256#2"))
    with pytest.raises(CfsslError, match="neither the CA certificate"):
        OCSPSigner(ca.cert, fake, key("p256#fake"))


def test_reissued_ca_certificate_is_the_issuer() -> None:
    ca = make_ca("p256")
    again = make_cert("OCSP Test CA", ca.key, ca=True)  # same subject and key, another certificate
    signer = OCSPSigner(ca.cert, again, ca.key)
    assert not signer.delegated
    resp = parse(signer.sign(OCSPSignRequest(make_leaf(ca).cert)))
    assert resp.certificates == [again]  # not byte-identical: embedded
    verify_signature(resp, ca.cert)


def test_nocheck_warning(caplog: pytest.LogCaptureFixture) -> None:
    ca = make_ca("p256")
    with caplog.at_level(logging.WARNING, logger="cfsslpy.ocsp"):
        OCSPSigner(ca.cert, make_responder(ca, "p384", nocheck=True).cert, key("p384#responder"))
        assert not caplog.records
        missing = make_responder(ca, "p256", nocheck=False)
        OCSPSigner(ca.cert, missing.cert, missing.key)
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "lacks id-pkix-ocsp-nocheck" in caplog.records[0].getMessage()


def test_interval() -> None:
    assert parse_interval("96h") == dt.timedelta(hours=96)
    assert parse_interval("1h30m") == dt.timedelta(minutes=90)
    with pytest.raises(PlainError, match='time: invalid duration "x"'):
        parse_interval("x")
    with pytest.raises(PlainError, match="must be positive"):
        parse_interval("0s")
    ca = make_ca("p256")
    with pytest.raises(PlainError):
        OCSPSigner(ca.cert, ca.cert, ca.key, dt.timedelta(0))


def test_status_and_request_parsing() -> None:
    assert parse_status("revoked") == "revoked"
    with pytest.raises(CfsslError):
        parse_status("REVOKED")
    cert = make_leaf(make_ca("p256")).cert
    assert sign_request(cert, "good", "keyCompromise", "garbage") == OCSPSignRequest(cert)  # only parsed when revoked
    req = sign_request(cert, "revoked", "", "2026-03-04")
    assert (req.reason, req.revoked_at) == (0, dt.datetime(2026, 3, 4, tzinfo=dt.timezone.utc))
    assert sign_request(cert, "revoked", "superseded", "now", now=T).revoked_at == T
    assert sign_request(cert, "revoked", "4").reason == 4
    with pytest.raises(CfsslError) as exc:
        sign_request(cert, "revoked", "bogus")
    assert exc.value.code == 8200


# -----------------------------------------------------------------------------------------------------------
# loading from files


def test_load_signer(tmp_path: Path) -> None:
    ca = make_ca("p256")
    responder = make_responder(ca)
    ca_pem, _ = ca.write(tmp_path, "ca")
    r_pem, r_key = responder.write(tmp_path, "ocsp")
    signer = load_signer("env:CA", str(r_pem), str(r_key), "1h", environ={"CA": ca.pem})
    assert signer.issuer == ca.cert and signer.responder == responder.cert and signer.interval == dt.timedelta(hours=1)
    with pytest.raises(PlainError, match="open missing.pem: no such file"):
        load_signer("missing.pem", str(r_pem), str(r_key))
    # cfssl's NewSignerFromFile: an unreadable responder is a plain error, an unreadable key 1001
    with pytest.raises(PlainError, match="^open missing.pem: no such file"):
        load_signer(str(ca_pem), "missing.pem", str(r_key))
    with pytest.raises(CfsslError) as exc:
        load_signer(str(ca_pem), str(r_pem), "missing.pem")
    assert exc.value.code == 1001
    with pytest.raises(CfsslError) as exc:
        load_signer(str(r_key), str(r_pem), str(r_key))
    assert exc.value.code == 1003  # a PEM block, but not a certificate
    with pytest.raises(CfsslError) as exc:
        load_signer(str(ca_pem), str(r_pem), str(r_pem))
    assert exc.value.code == 2003  # a PEM block, but not a key


# -----------------------------------------------------------------------------------------------------------
# refresh and dump


def record(cert: Cert, **kw: Any) -> CertificateRecord:
    return CertificateRecord.from_certificate(cert.cert, pem=cert.pem, **kw)


def test_refresh_two_issuers(tmp_path: Path) -> None:
    db = CertDB(DBConfig("sqlite3", str(tmp_path / "certs.db")))
    ca1, ca2, ca3 = make_ca("p256", "CA one"), make_ca("rsa2048", "CA two"), make_ca("p384", "CA three")
    good1, bad1 = make_leaf(ca1, "good1"), make_leaf(ca1, "bad1")
    good2, bad2 = make_leaf(ca2, "good2"), make_leaf(ca2, "bad2")
    orphan = make_leaf(ca3, "orphan")
    expired = make_leaf(ca1, "expired", not_after=NOW - dt.timedelta(minutes=1))
    for c in (good1, bad1, good2, bad2, orphan, expired):
        db.insert_certificate(record(c))
    # a row as cfssl 2016 writes it: no AKI
    legacy = make_leaf(ca2, "legacy")
    db.insert_certificate(replace(record(legacy), aki=""))
    db.revoke(str(bad1.cert.serial_number), ca1.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex(), 1)
    db.revoke(str(bad2.cert.serial_number), OCSPSigner(ca2.cert, ca2.cert, ca2.key).issuer_aki, 5)
    responder2 = make_responder(ca2, "rsa2048")
    signers = [OCSPSigner(ca1.cert, ca1.cert, ca1.key), OCSPSigner(ca2.cert, responder2.cert, responder2.key, dt.timedelta(hours=1))]

    report = refresh(db, signers, batch=2)
    assert (report.refreshed, report.no_signer, report.failed) == (5, 1, 0)
    assert report.unknown_issuers == {OCSPSigner(ca3.cert, ca3.cert, ca3.key).issuer_aki: 1}

    def stored(leaf: Cert, ca: Cert) -> x509_ocsp.OCSPResponse:
        rows = db.get_ocsp(str(leaf.cert.serial_number), OCSPSigner(ca.cert, ca.cert, ca.key).issuer_aki)
        assert len(rows) == 1
        resp = parse(rows[0].body)
        assert resp.serial_number == leaf.cert.serial_number
        assert resp.next_update_utc is not None
        interval = resp.next_update_utc - resp.this_update_utc
        assert abs(rows[0].expiry - (dt.datetime.now(dt.timezone.utc) + interval)) < dt.timedelta(minutes=1)  # refresh time + interval
        return resp

    assert stored(good1, ca1).certificate_status == x509_ocsp.OCSPCertStatus.GOOD
    r = stored(bad1, ca1)
    assert r.certificate_status == x509_ocsp.OCSPCertStatus.REVOKED and r.revocation_reason == x509.ReasonFlags.key_compromise
    assert r.revocation_time_utc is not None and abs(r.revocation_time_utc - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=1)
    verify_signature(r, ca1.cert)
    r = stored(bad2, ca2)
    assert r.revocation_reason == x509.ReasonFlags.cessation_of_operation and r.certificates == [responder2.cert]
    verify_signature(r, responder2.cert)
    assert r.next_update_utc is not None and r.next_update_utc - r.this_update_utc == dt.timedelta(hours=1)
    assert stored(good2, ca2).certificate_status == x509_ocsp.OCSPCertStatus.GOOD
    assert stored(legacy, ca2).certificate_status == x509_ocsp.OCSPCertStatus.GOOD  # under the real AKI
    assert db.get_ocsp(str(expired.cert.serial_number), signers[0].issuer_aki) == []

    # a second run replaces (one row per certificate), and the dump lists the unexpired ones
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2)
    assert refresh(db, signers[:1], now=later).refreshed == 2  # ca1's two (the expired one is skipped)
    lines = dump(db).splitlines()
    assert len(lines) == 5
    serials = sorted(parse(base64.b64decode(line, validate=True)).serial_number for line in lines)
    assert serials == sorted(c.cert.serial_number for c in (good1, bad1, good2, bad2, legacy))
    # ca2's responses expire after 1h, ca1's refreshed ones after 98h
    assert len(dump(db, now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1, minutes=5)).splitlines()) == 2
    assert dump(db, now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)) == ""
    db.close()


def test_refresh_without_any_matching_issuer(tmp_path: Path) -> None:
    db = CertDB(DBConfig("sqlite3", str(tmp_path / "certs.db")))
    ca, other = make_ca("p256", "CA one"), make_ca("p256#2", "CA two")
    db.insert_certificate(record(make_leaf(ca)))
    with pytest.raises(CfsslError) as exc:
        refresh(db, [OCSPSigner(other.cert, other.cert, other.key)])
    assert exc.value.code == 8100 and "none of the 1 unexpired certificates" in exc.value.message
    assert dump(db) == ""
    # an empty database is not an error
    empty = CertDB(DBConfig("sqlite3", str(tmp_path / "empty.db")))
    assert refresh(empty, [OCSPSigner(other.cert, other.cert, other.key)]).total == 0
    db.close()
    empty.close()


def test_refresh_counts_unsignable_rows(tmp_path: Path) -> None:
    db = CertDB(DBConfig("sqlite3", str(tmp_path / "certs.db")))
    ca = make_ca("p256")
    good, weird = make_leaf(ca, "good"), make_leaf(ca, "weird")
    db.insert_certificate(record(good))
    db.insert_certificate(record(weird, status="revoked", reason=7, revoked_at=NOW))  # 7 is no RFC 5280 reason
    report = refresh(db, [OCSPSigner(ca.cert, ca.cert, ca.key)])
    assert (report.refreshed, report.failed) == (1, 1)
    assert str(weird.cert.serial_number) in report.errors[0]
    assert len(dump(db).splitlines()) == 1
    db.close()
