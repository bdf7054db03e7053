"""Issue 11, OCSP and CRL parity and safe defaults (cfsslpy.ocsp, cfsslpy.crl, cfsslpy.ocspresponder, serve's ocspsign).

* item 4: an OCSP response that is valid BER but not DER (the default version encoded explicitly, as in cfssl's
  ``ocsp/testdata/resp64.pem``; indefinite lengths; ``critical FALSE``) is indexed by its CertID and served
  byte for byte; it is built here by re-encoding a real response and signing the BER ``tbsResponseData``;
* a CRL or an OCSP response is never signed by a CA or responder certificate that is expired or not yet valid
  (1211), where cfssl signs;
* serve's ``ocspsign`` with a certdb refuses a status that contradicts the database (403) unless the request
  is authenticated like authsign (token over the base64 request, the default profile's ``auth_key``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp as x509_ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from cfsslpy.api.app import create_app
from cfsslpy.api.state import ApiState
from cfsslpy.certdb import CertDB, DBConfig
from cfsslpy.config import Config
from cfsslpy.crl import crl_from_db, generate_crl
from cfsslpy.errors import CfsslError
from cfsslpy.ocsp import OCSPSigner, OCSPSignRequest, check_against_db, refresh
from cfsslpy.ocspresponder import CertID, FileSource, Responder, der_form, etag, responses_text
from tests.api.wsgi import AUTH_KEY_HEX, PREV_KEY_HEX, Client
from tests.conftest import RunCli
from tests.test_ocsp import NOW, Cert, make_ca, make_cert, make_leaf, make_responder, parse, record, verify_signature

HOUR = dt.timedelta(hours=1)


# -----------------------------------------------------------------------------------------------------------
# BER responses (item 4): a test-side DER reader and BER writer, independent of the module's


def tlv(tag: int, content: bytes, *, indefinite: bool = False) -> bytes:
    """One element; ``indefinite`` writes BER's indefinite length (constructed tags only)."""
    if indefinite:
        return bytes([tag, 0x80]) + content + b"\0\0"
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(octets)]) + octets + content


def children(der: bytes) -> list[bytes]:
    """The encoded children of one DER constructed element."""
    out, pos = [], 0
    body = _content(der)
    while pos < len(body):
        length, head = _length(body, pos)
        out.append(body[pos : pos + head + length])
        pos += head + length
    return out


def _length(data: bytes, pos: int) -> tuple[int, int]:
    """(content length, header size) of the DER element at ``pos`` (low tag numbers only)."""
    first = data[pos + 1]
    if first < 0x80:
        return first, 2
    count = first & 0x7F
    return int.from_bytes(data[pos + 2 : pos + 2 + count], "big"), 2 + count


def _content(der: bytes) -> bytes:
    length, head = _length(der, 0)
    return der[head : head + length]


def ber_response(
    der: bytes, key: ec.EllipticCurvePrivateKey, *, indefinite: bool = False, critical_false: bool = False
) -> tuple[bytes, bytes]:
    """``der`` (a response signed by ``key``, ECDSA-SHA256) re-encoded as valid BER that is not DER: ResponseData
    with an explicit ``version [0] v1`` (and, with ``critical_false``, an extension with an explicit ``critical
    FALSE``), re-signed over those BER bytes as Go signs whatever tbsResponseData it is given; ``indefinite``
    also writes the outer SEQUENCEs with indefinite lengths. Returns the response and its BER tbsResponseData."""
    status, response_bytes = children(der)
    oid, octets = children(_content(response_bytes))
    tbs, algorithm, _signature, *certs = children(_content(octets))
    items = children(tbs)
    if critical_false:  # a SingleResponse extension (an unknown one: clients ignore it) with critical FALSE
        single_list = items[2]
        (single,) = children(single_list)
        extension = tlv(0x30, tlv(0x06, bytes.fromhex("2b0601040182b75e0101")) + tlv(0x01, b"\0") + tlv(0x04, tlv(0x05, b"")))
        single = tlv(0x30, b"".join(children(single)) + tlv(0xA1, tlv(0x30, extension)))
        items[2] = tlv(0x30, single)
    tbs_ber = tlv(0x30, tlv(0xA0, tlv(0x02, b"\0")) + b"".join(items))
    signature = tlv(0x03, b"\0" + key.sign(tbs_ber, ec.ECDSA(hashes.SHA256())))
    basic = tlv(0x30, tbs_ber + algorithm + signature + b"".join(certs), indefinite=indefinite)
    inner = tlv(0x30, oid + tlv(0x04, basic), indefinite=indefinite)
    return tlv(0x30, status + tlv(0xA0, inner, indefinite=indefinite), indefinite=indefinite), tbs_ber


@dataclass
class Signed:
    ca: Cert
    responder: Cert
    leaf: Cert
    der: bytes


@pytest.fixture(scope="module")
def signed() -> Signed:
    ca = make_ca("p256", "BER Test CA")
    responder = make_responder(ca)
    leaf = make_leaf(ca, "ber.example")
    der = OCSPSigner(ca.cert, responder.cert, responder.key).sign(OCSPSignRequest(leaf.cert, "revoked", 1, NOW - HOUR))
    return Signed(ca, responder, leaf, der)


@pytest.mark.parametrize(("indefinite", "critical_false"), [(False, False), (True, False), (False, True), (True, True)])
def test_ber_response_is_indexed_and_served_unchanged(
    signed: Signed, indefinite: bool, critical_false: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "cfsslpy.ocspresponder")
    assert isinstance(signed.responder.key, ec.EllipticCurvePrivateKey)
    ber, tbs = ber_response(signed.der, signed.responder.key, indefinite=indefinite, critical_false=critical_false)
    with pytest.raises(ValueError):  # the premise: cryptography's DER parser refuses it (Go's accepts it)
        x509_ocsp.load_der_ocsp_response(ber)
    # a valid response all the same: its signature covers the BER tbsResponseData, as stored
    readable = parse(der_form(ber))
    assert tbs in ber and readable.tbs_response_bytes != tbs
    signed.responder.key.public_key().verify(readable.signature, tbs, ec.ECDSA(hashes.SHA256()))

    source = FileSource.from_text(responses_text([ber, ber]))  # twice, as cfssl's resp64.pem holds its response
    assert "Read 1 OCSP responses" in caplog.text  # as cfssl counts them
    cert_id = CertID.for_certificate(signed.ca.cert, signed.leaf.cert.serial_number)
    assert list(source.responses) == [cert_id] and source.responses[cert_id] == ber
    now = NOW + dt.timedelta(minutes=1)
    reply = Responder(source, now=lambda: now).respond("GET", base64.b64encode(_request(signed)).decode(), b"")
    assert reply.status == 200 and reply.body == ber  # byte for byte what the file holds
    headers = dict(reply.headers)
    assert headers["ETag"] == etag(ber) == '"' + hashlib.sha256(ber).hexdigest().upper() + '"'
    single = parse(signed.der)
    assert headers["Last-Modified"].endswith(single.this_update_utc.strftime("%H:%M:%S UTC"))
    assert single.next_update_utc is not None
    assert headers["Cache-Control"].startswith(f"max-age={int((single.next_update_utc - now).total_seconds())},")


def _request(signed: Signed) -> bytes:
    from cryptography.hazmat.primitives import serialization

    builder = x509_ocsp.OCSPRequestBuilder().add_certificate(signed.leaf.cert, signed.ca.cert, hashes.SHA1())
    return builder.build().public_bytes(serialization.Encoding.DER)


def test_der_form_of_a_der_response_is_itself(signed: Signed) -> None:
    assert der_form(signed.der) == signed.der


@pytest.mark.parametrize(
    "junk",
    [
        b"",
        b"\x30\x80",  # indefinite, never ended
        b"\x30\x05\x0a\x01\x00",  # truncated
        b"\x30" * 40000,  # a tower of nested headers: bounded depth, no RecursionError
        b"\x30\x80" * 5000 + b"\0\0" * 5000,
        b"\x04\x80\x00\x00",  # indefinite length on a primitive
        b"\x30\x03\x0a\x01\x00junk",  # trailing data
    ],
)
def test_der_form_refuses_what_is_not_ber(junk: bytes) -> None:
    with pytest.raises(ValueError):
        der_form(junk)


def test_responses_file_still_skips_what_does_not_parse(signed: Signed, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "cfsslpy.ocspresponder")
    text = responses_text([b"\x30\x80" * 100, signed.der, b"not a response"]) + "!!!notbase64\n"
    source = FileSource.from_text(text)
    assert list(source.responses.values()) == [signed.der]
    assert "Read 1 OCSP responses" in caplog.text


# -----------------------------------------------------------------------------------------------------------
# expired or not yet valid signers


def _expired(ca: Cert) -> Cert:
    """A delegated responder that expired an hour ago."""
    k = ec.generate_private_key(ec.SECP256R1())
    return Cert(make_cert("expired responder", k, ca, eku=[ExtendedKeyUsageOID.OCSP_SIGNING], nocheck=True, not_after=NOW - HOUR), k)


def test_ocsp_responder_outside_its_validity_does_not_sign() -> None:
    ca = make_ca("p256", "Validity CA")
    leaf = make_leaf(ca, "valid.example")
    expired = _expired(ca)
    signer = OCSPSigner(ca.cert, expired.cert, expired.key)  # built (a server may start), never signs
    with pytest.raises(CfsslError) as info:
        signer.sign(OCSPSignRequest(leaf.cert))
    assert info.value.code == 1211
    assert "the OCSP responder certificate (CN=expired responder,O=cfsslpy tests) expired at" in info.value.message
    good = OCSPSigner(ca.cert, make_responder(ca).cert, make_responder(ca).key)
    with pytest.raises(CfsslError) as info:  # not yet valid: an hour before its notBefore
        good.sign(OCSPSignRequest(leaf.cert), now=good.responder.not_valid_before_utc - HOUR)
    assert info.value.code == 1211 and "is not valid before" in info.value.message
    with pytest.raises(CfsslError) as info:  # a delegated responder of an expired CA
        good.sign(OCSPSignRequest(leaf.cert), now=ca.cert.not_valid_after_utc + HOUR)
    assert info.value.code == 1211
    verify_signature(parse(good.sign(OCSPSignRequest(leaf.cert))), good.responder)  # and inside it, it signs


def test_ocsprefresh_with_an_expired_responder_fails_before_any_row(tmp_path: Path) -> None:
    ca = make_ca("p256", "Refresh CA")
    leaf = make_leaf(ca, "refresh.example")
    expired = _expired(ca)
    with CertDB(DBConfig("sqlite3", str(tmp_path / "certs.db"))) as db:
        db.insert_certificate(record(leaf))
        with pytest.raises(CfsslError) as info:
            refresh(db, [OCSPSigner(ca.cert, expired.cert, expired.key)])
        assert info.value.code == 1211
        assert db.unexpired_ocsp() == []


def test_crl_is_not_signed_by_a_ca_outside_its_validity(tmp_path: Path) -> None:
    ca = make_ca("p256", "CRL Validity CA")
    after = ca.cert.not_valid_after_utc + dt.timedelta(seconds=1)
    before = ca.cert.not_valid_before_utc - dt.timedelta(seconds=1)
    for when, words in ((after, "expired at"), (before, "is not valid before")):
        with pytest.raises(CfsslError) as info:
            generate_crl(ca.cert, ca.key, [], lifetime=HOUR, number=1, now=when)
        assert info.value.code == 1211 and words in info.value.message and "CA certificate" in info.value.message
    with CertDB(DBConfig("sqlite3", str(tmp_path / "certs.db"))) as db:
        with pytest.raises(CfsslError) as info:
            crl_from_db(db, ca.cert, ca.key, HOUR, now=after)
        assert info.value.code == 1211
    crl = x509.load_der_x509_crl(generate_crl(ca.cert, ca.key, [], lifetime=HOUR, number=1))
    assert crl.is_signature_valid(ca.key.public_key())  # type: ignore[arg-type]


# -----------------------------------------------------------------------------------------------------------
# ocspsign against the certdb


@pytest.fixture
def db(tmp_path: Path) -> Iterator[CertDB]:
    with CertDB(DBConfig("sqlite3", str(tmp_path / "certs.db"))) as database:
        yield database


@dataclass
class PKI:
    ca: Cert
    good: Cert
    revoked: Cert
    unrecorded: Cert


@pytest.fixture
def pki(db: CertDB) -> PKI:
    ca = make_ca("p256", "Certdb CA")
    good, revoked, unrecorded = (make_leaf(ca, f"{name}.example") for name in ("good", "revoked", "unrecorded"))
    db.insert_certificate(record(good))
    db.insert_certificate(record(revoked))
    db.revoke(str(revoked.cert.serial_number), _aki(revoked.cert), 1)
    return PKI(ca, good, revoked, unrecorded)


def _aki(cert: x509.Certificate) -> str:
    return cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier.hex()  # type: ignore[union-attr]


def test_check_against_db(db: CertDB, pki: PKI) -> None:
    check_against_db(db, OCSPSignRequest(pki.good.cert, "good"))
    check_against_db(db, OCSPSignRequest(pki.revoked.cert, "revoked"))
    for cert in (pki.unrecorded.cert,):  # nothing recorded, nothing to contradict
        for status in ("good", "revoked", "unknown"):
            check_against_db(db, OCSPSignRequest(cert, status))
    for cert, status, recorded in (
        (pki.revoked.cert, "good", "revoked since "),
        (pki.revoked.cert, "unknown", "revoked since "),
        (pki.good.cert, "revoked", "good"),
        (pki.good.cert, "unknown", "good"),
    ):
        with pytest.raises(CfsslError) as info:
            check_against_db(db, OCSPSignRequest(cert, status))
        assert info.value.code == 8200
        assert f"status {status} contradicts the certificate database, which records serial {cert.serial_number} as {recorded}" in (
            info.value.message
        )


def test_check_against_db_reads_cfssl_2016_rows_without_an_aki(db: CertDB, pki: PKI) -> None:
    leaf = make_leaf(pki.ca, "old.example")
    db.insert_certificate(replace(record(leaf), aki="", status="revoked", reason=1, revoked_at=NOW))
    with pytest.raises(CfsslError):
        check_against_db(db, OCSPSignRequest(leaf.cert, "good"))


CONFIG = {
    "signing": {"default": {"usages": ["signing"], "expiry": "1h", "auth_key": "current", "prev_auth_key": "previous"}},
    "auth_keys": {"current": {"type": "standard", "key": AUTH_KEY_HEX}, "previous": {"type": "standard", "key": PREV_KEY_HEX}},
}


@pytest.fixture
def api(db: CertDB, pki: PKI) -> Iterator[Client]:
    """An ocspsign-only server (serve -ca -responder -responder-key -db-config -config) over ``db``."""
    yield from _client(ApiState(signer=None, policy=Config.from_json(CONFIG).signing, db=db, ocsp_signer=_signer(pki)))


def _signer(pki: PKI) -> OCSPSigner:
    return OCSPSigner(pki.ca.cert, pki.ca.cert, pki.ca.key)


def _client(state: ApiState) -> Iterator[Client]:
    app = create_app(state)
    try:
        yield Client(app)
    finally:
        app.metrics.close()
        app.close()


def _pem(cert: x509.Certificate) -> str:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _authenticated(body: dict[str, Any], key_hex: str = AUTH_KEY_HEX, **extra: Any) -> dict[str, Any]:
    request = json.dumps(body).encode()
    token = hmac.new(bytes.fromhex(key_hex), request, hashlib.sha256).digest()
    return {"token": base64.b64encode(token).decode(), "request": base64.b64encode(request).decode(), **extra}


def _status(result: Any) -> x509_ocsp.OCSPCertStatus:
    return parse(base64.b64decode(result["ocspResponse"])).certificate_status


def test_api_ocspsign_refuses_a_status_the_certdb_contradicts(api: Client, pki: PKI) -> None:
    reply = api.post("ocspsign", {"certificate": _pem(pki.revoked.cert), "status": "good"})
    reply.assert_error(403, 403)
    assert "records serial" in reply.error["message"] and "an authenticated request may sign it" in reply.error["message"]
    api.post("ocspsign", {"certificate": _pem(pki.good.cert), "status": "revoked", "reason": 1}).assert_error(403, 403)
    # what agrees with the database, and what it does not know, is signed as before
    assert _status(api.post("ocspsign", {"certificate": _pem(pki.good.cert)}).assert_ok()) == x509_ocsp.OCSPCertStatus.GOOD
    revoked = api.post("ocspsign", {"certificate": _pem(pki.revoked.cert), "status": "revoked", "reason": 1}).assert_ok()
    assert _status(revoked) == x509_ocsp.OCSPCertStatus.REVOKED
    assert _status(api.post("ocspsign", {"certificate": _pem(pki.unrecorded.cert)}).assert_ok()) == x509_ocsp.OCSPCertStatus.GOOD
    # a bad status is still cfssl's 8200 first
    api.post("ocspsign", {"certificate": _pem(pki.revoked.cert), "status": "fine"}).assert_error(400, 8200, "Invalid revocation status")


@pytest.mark.parametrize("key_hex", [AUTH_KEY_HEX, PREV_KEY_HEX])
def test_api_ocspsign_authenticated_may_contradict_the_certdb(api: Client, pki: PKI, key_hex: str) -> None:
    body = _authenticated({"certificate": _pem(pki.revoked.cert), "status": "good"}, key_hex)
    assert _status(api.post("ocspsign", body).assert_ok()) == x509_ocsp.OCSPCertStatus.GOOD


def test_api_ocspsign_authentication_failures(api: Client, pki: PKI) -> None:
    inner = {"certificate": _pem(pki.revoked.cert), "status": "good"}
    api.post("ocspsign", _authenticated(inner, "ab" * 16)).assert_error(400, 400, "invalid token")
    forged = {**_authenticated(inner), "request": base64.b64encode(json.dumps({**inner, "x": 1}).encode()).decode()}
    api.post("ocspsign", forged).assert_error(400, 400, "invalid token")
    api.post("ocspsign", {"token": "!!", "request": ""}).assert_error(400, 400, "illegal base64 data at input byte 0")
    token_for_junk = _authenticated({})  # a valid token over a body that is not an ocspsign request
    token_for_junk["request"] = base64.b64encode(b"[1]").decode()
    token_for_junk["token"] = base64.b64encode(hmac.new(bytes.fromhex(AUTH_KEY_HEX), b"[1]", hashlib.sha256).digest()).decode()
    api.post("ocspsign", token_for_junk).assert_error(400, 400, "Unable to parse authenticated sign request")


def test_api_ocspsign_authenticated_without_an_auth_key_is_refused(db: CertDB, pki: PKI) -> None:
    for client in _client(ApiState(signer=None, policy=Config.default().signing, db=db, ocsp_signer=_signer(pki))):
        body = _authenticated({"certificate": _pem(pki.revoked.cert), "status": "good"})
        client.post("ocspsign", body).assert_error(400, 400, "no authentication provider")


def test_api_ocspsign_replay_window_applies(db: CertDB, pki: PKI) -> None:
    config = json.loads(json.dumps(CONFIG))
    config["signing"]["default"]["auth_replay_window"] = "5m"
    for client in _client(ApiState(signer=None, policy=Config.from_json(config).signing, db=db, ocsp_signer=_signer(pki))):
        inner = json.dumps({"certificate": _pem(pki.revoked.cert), "status": "good"}).encode()
        client.post("ocspsign", _authenticated(json.loads(inner))).assert_error(400, 400, "missing timestamp")
        ts = int(dt.datetime.now(dt.timezone.utc).timestamp())
        token = hmac.new(bytes.fromhex(AUTH_KEY_HEX), inner + str(ts).encode(), hashlib.sha256).digest()
        body = {"token": base64.b64encode(token).decode(), "request": base64.b64encode(inner).decode(), "timestamp": ts}
        assert _status(client.post("ocspsign", body).assert_ok()) == x509_ocsp.OCSPCertStatus.GOOD
        client.post("ocspsign", body).assert_error(400, 400, "invalid token")  # once only


def test_api_ocspsign_without_a_certdb_signs_what_it_is_asked(pki: PKI) -> None:
    for client in _client(ApiState(signer=None, ocsp_signer=_signer(pki))):
        reply = client.post("ocspsign", {"certificate": _pem(pki.revoked.cert), "status": "good"}).assert_ok()
        assert _status(reply) == x509_ocsp.OCSPCertStatus.GOOD


def test_api_ocspsign_with_an_expired_responder_is_1211(db: CertDB, pki: PKI) -> None:
    expired = _expired(pki.ca)
    signer = OCSPSigner(pki.ca.cert, expired.cert, expired.key)
    for client in _client(ApiState(signer=None, db=db, ocsp_signer=signer)):
        reply = client.post("ocspsign", {"certificate": _pem(pki.good.cert)})
        reply.assert_error(400, 1211)
        assert "expired at" in reply.error["message"]


def test_live_ocspserve_with_a_responder_that_expired_while_serving_is_internal_error(db: CertDB, pki: PKI) -> None:
    from cfsslpy.ocspresponder import INTERNAL_ERROR, LiveSource

    signer = OCSPSigner(pki.ca.cert, pki.ca.cert, pki.ca.key)
    request = _request(Signed(pki.ca, pki.ca, pki.good, b""))
    responder = Responder(LiveSource(db, [signer], cache_ttl=0))
    assert responder.respond("POST", "", request).status == 200
    signer.responder = _expired(pki.ca).cert  # what time does to a running responder
    reply = responder.respond("POST", "", request)
    assert (reply.status, reply.body) == (500, INTERNAL_ERROR)


@pytest.mark.parametrize("command", ["serve", "ocspserve"])
def test_servers_refuse_an_expired_responder_at_startup(run_cli: RunCli, db: CertDB, pki: PKI, tmp_path: Path, command: str) -> None:
    pki.ca.write(tmp_path, "ca")
    _expired(pki.ca).write(tmp_path, "resp")
    (tmp_path / "db.json").write_text(json.dumps({"driver": "sqlite3", "data_source": str(tmp_path / "certs.db")}))
    args = ["-ca", "ca.pem", "-responder", "resp.pem", "-responder-key", "resp-key.pem", "-db-config", "db.json", "-port", "0"]
    result = run_cli(command, *args, cwd=tmp_path)
    assert result.status == 1 and result.error["code"] == 1211, result.stderr
    assert "the OCSP responder certificate (CN=expired responder,O=cfsslpy tests) expired at" in result.error["message"]
