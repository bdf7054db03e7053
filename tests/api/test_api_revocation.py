"""gencrl, crl, revoke, ocspsign, certadd (reference §2.1 registration, §2.3 shapes and errors), and the
recording of every certificate the API signs when serve has a certificate database."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import CA, RunCli, make_ca
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from api.wsgi import API, Client, load_cert, new_csr
from cfsslpy.api.state import ApiState
from cfsslpy.certdb import CertDB, DBConfig, key_id_hex, recorder
from cfsslpy.config import Config
from cfsslpy.ocsp import OCSPSigner
from cfsslpy.signer import LocalSigner, load_issuer

ENDPOINTS = {"gencrl": "POST", "crl": "GET", "revoke": "POST", "ocspsign": "POST", "certadd": "POST"}


@dataclass
class Server:
    client: Client
    db: CertDB
    ca: x509.Certificate
    ca_pem: str
    key_pem: str
    db_path: Path

    def issue(self, cn: str = "leaf.example.com") -> x509.Certificate:
        result = self.client.post("sign", {"certificate_request": new_csr(cn, [cn])}).assert_ok()
        return load_cert(result["certificate"])


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def aki_hex(cert: x509.Certificate) -> str:
    return key_id_hex(cert)


def make_db(path: Path) -> CertDB:
    return CertDB(DBConfig("sqlite3", str(path)))


def full_state(ca: CA, db: CertDB | None, *, signer: bool = True, ocsp_signer: bool = True, **kw: Any) -> ApiState:
    """What serve builds with -ca -ca-key -db-config -responder (the CA itself) -responder-key."""
    issuer = load_issuer(str(ca.cert), str(ca.key))
    assert issuer.cert is not None
    policy = Config.default().signing
    local = LocalSigner(issuer, policy, recorder=recorder(db) if db is not None else None) if signer else None
    return ApiState(
        signer=local,
        policy=policy,
        db=db,
        ocsp_signer=OCSPSigner(issuer.cert, issuer.cert, issuer.key) if ocsp_signer else None,
        crl_issuer=(issuer.cert, issuer.key) if signer else None,
        **kw,
    )


@pytest.fixture
def server(api_ca: CA, tmp_path: Path, client_for: Callable[[ApiState], Client]) -> Server:
    db = make_db(tmp_path / "certs.db")
    client = client_for(full_state(api_ca, db))
    ca = x509.load_pem_x509_certificate(api_ca.cert.read_bytes())
    return Server(client, db, ca, api_ca.cert.read_text(), api_ca.key.read_text(), tmp_path / "certs.db")


@pytest.fixture
def other_ca(run_cli: RunCli, tmp_path: Path) -> CA:
    return make_ca(run_cli, tmp_path / "other-ca", name="other")


def routes(client: Client) -> set[str]:
    return {route.rule for route in client.app.routes}


# -- registration -------------------------------------------------------------------------------------------


def test_every_revocation_endpoint_with_a_signer_a_db_and_an_ocsp_signer(server: Server) -> None:
    assert {API + name for name in ENDPOINTS} <= routes(server.client)
    for name, method in ENDPOINTS.items():
        wrong = "GET" if method == "POST" else "POST"
        server.client.request(wrong, API + name, b"{}").assert_error(405, 405, f'Method is not allowed:"{wrong}"')


@pytest.mark.parametrize(
    ("kw", "present"),
    [
        ({"db": False}, {"gencrl", "ocspsign", "certadd"}),
        ({"signer": False}, {"revoke", "ocspsign", "certadd"}),
        ({"ocsp_signer": False}, {"gencrl", "crl", "revoke", "certadd"}),
        ({"signer": False, "db": False, "ocsp_signer": False}, {"certadd"}),
    ],
)
def test_registration_rules(
    api_ca: CA, tmp_path: Path, client_for: Callable[[ApiState], Client], kw: dict[str, bool], present: set[str]
) -> None:
    db = None if kw.pop("db", True) is False else make_db(tmp_path / "certs.db")
    client = client_for(full_state(api_ca, db, **kw))
    assert {p for p in routes(client) if p[len(API) :] in ENDPOINTS} == {API + n for n in present}
    for name in set(ENDPOINTS) - present:
        client.request(ENDPOINTS[name], API + name, b"{}").assert_error(404, 404, "404 page not found")


def test_disabled_revocation_endpoints(api_ca: CA, tmp_path: Path, client_for: Callable[[ApiState], Client]) -> None:
    client = client_for(full_state(api_ca, make_db(tmp_path / "c.db"), disable=frozenset({"revoke", "crl", "certadd"})))
    client.post("revoke", {"serial": "1"}).assert_error(404, 404)
    client.get("crl").assert_error(404, 404)
    client.post("certadd", {}).assert_error(404, 404)
    assert API + "ocspsign" in routes(client)


# -- recording what is signed -------------------------------------------------------------------------------


def test_a_signed_certificate_is_recorded(server: Server) -> None:
    cert = server.issue("rec.example.com")
    (record,) = server.db.get_certificate(str(cert.serial_number), aki_hex(cert))
    assert aki_hex(cert) == server.ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex()
    assert record.pem == pem(cert)
    assert record.status == "good" and record.revoked_at is None
    assert record.expiry == cert.not_valid_after_utc
    assert record.sans == ["rec.example.com"] and record.common_name == "rec.example.com"


def test_no_certificate_when_the_record_cannot_be_written(server: Server) -> None:
    server.issue()  # connects and creates the schema
    with contextlib.closing(sqlite3.connect(server.db_path)) as conn, conn:  # the second one commits
        conn.execute("DROP TABLE ocsp_responses")
        conn.execute("DROP TABLE certificates")
    r = server.client.post("sign", {"certificate_request": new_csr()})
    r.assert_error(400, 11000)
    assert "no such table: certificates" in r.error["message"]
    assert b"BEGIN CERTIFICATE" not in r.body


# -- revoke -------------------------------------------------------------------------------------------------


def test_revoke(server: Server) -> None:
    cert = server.issue()
    serial, aki = str(cert.serial_number), aki_hex(cert)
    r = server.client.post("revoke", {"serial": serial, "authority_key_id": aki, "reason": "keyCompromise"})
    assert r.assert_ok() == {}
    (record,) = server.db.get_certificate(serial, aki)
    assert record.status == "revoked" and record.reason == 1 and record.revoked_at is not None
    assert abs(record.revoked_at - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=1)


def test_revoke_with_an_empty_reason_is_unspecified_and_the_aki_may_have_colons(server: Server) -> None:
    cert = server.issue()
    colons = ":".join(f"{b:02X}" for b in bytes.fromhex(aki_hex(cert)))
    server.client.post("revoke", {"serial": str(cert.serial_number), "authority_key_id": colons, "reason": ""}).assert_ok()
    (record,) = server.db.get_certificate(str(cert.serial_number), aki_hex(cert))
    assert record.status == "revoked" and record.reason == 0


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        (b"not json", 400, 400, "Unable to parse revocation request"),
        ({"serial": 1}, 400, 400, "Unable to parse revocation request"),
        ({}, 400, 400, "serial number is required but not provided"),
        ({"serial": "", "authority_key_id": "ab"}, 400, 400, "serial number is required but not provided"),
        ({"serial": "1"}, 400, 400, "authority key id is required but not provided"),
        ({"serial": "1", "authority_key_id": "ab", "reason": "nope"}, 400, 400, "Invalid reason code"),
        ({"serial": "1", "authority_key_id": "ab", "reason": "7"}, 400, 400, "Invalid reason code"),
        ({"serial": "1", "authority_key_id": "ab", "reason": "1"}, 400, 11200, "failed to revoke the certificate: certificate not found"),
        ({"serial": "x1", "authority_key_id": "ab"}, 400, 1300, None),
        ({"serial": "1", "authority_key_id": "xyz"}, 400, 1300, None),
    ],
)
def test_revoke_errors(server: Server, body: Any, status: int, code: int, message: str | None) -> None:
    server.client.post("revoke", body).assert_error(status, code, message)


# -- crl ----------------------------------------------------------------------------------------------------


def load_crl(result: str) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl(base64.b64decode(result, validate=True))


def test_crl_lists_the_revoked_certificates(server: Server) -> None:
    revoked, kept = server.issue("revoked.example.com"), server.issue("kept.example.com")
    server.client.post(
        "revoke", {"serial": str(revoked.serial_number), "authority_key_id": aki_hex(revoked), "reason": "superseded"}
    ).assert_ok()
    crl = load_crl(server.client.get("crl").assert_ok())
    assert crl.is_signature_valid(server.ca.public_key())  # type: ignore[arg-type]
    assert crl.issuer == server.ca.subject
    assert [e.serial_number for e in crl] == [revoked.serial_number]
    assert crl.get_revoked_certificate_by_serial_number(kept.serial_number) is None
    assert crl.next_update_utc is not None
    assert crl.next_update_utc - crl.last_update_utc == dt.timedelta(hours=168)


def test_crl_expiry_is_a_go_duration(server: Server) -> None:
    crl = load_crl(server.client.request("GET", API + "crl", environ={"QUERY_STRING": "expiry=90m"}).assert_ok())
    assert crl.next_update_utc is not None
    assert crl.next_update_utc - crl.last_update_utc == dt.timedelta(minutes=90)
    assert list(crl) == []


def test_crl_bad_expiry(server: Server) -> None:
    r = server.client.request("GET", API + "crl", environ={"QUERY_STRING": "expiry=7"})
    r.assert_error(500, 0, 'time: missing unit in duration "7"')
    r = server.client.request("GET", API + "crl", environ={"QUERY_STRING": "expiry=-1h"})
    r.assert_error(400, 1300)


# -- gencrl -------------------------------------------------------------------------------------------------


def test_gencrl(server: Server) -> None:
    body = {"certificate": server.ca_pem, "issuingKey": server.key_pem, "serialNumber": ["10", "20"], "expireTime": "3600"}
    crl = load_crl(server.client.post("gencrl", body).assert_ok())
    assert crl.is_signature_valid(server.ca.public_key())  # type: ignore[arg-type]
    assert sorted(e.serial_number for e in crl) == [10, 20]
    assert crl.next_update_utc is not None
    assert crl.next_update_utc - crl.last_update_utc == dt.timedelta(hours=1)


def test_gencrl_default_lifetime_is_a_week(server: Server) -> None:
    crl = load_crl(server.client.post("gencrl", {"certificate": server.ca_pem, "issuingKey": server.key_pem}).assert_ok())
    assert crl.next_update_utc is not None
    assert crl.next_update_utc - crl.last_update_utc == dt.timedelta(days=7)
    assert list(crl) == []


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        ({"issuingKey": "KEY"}, 400, 400, "malformed certificate"),
        (b"not json", 400, 400, "malformed certificate"),  # cfssl only logs the body error
        ({"certificate": "CERT", "issuingKey": "junk"}, 400, 400, "malformed Private Key"),
        ({"certificate": "CERT", "issuingKey": "KEY", "expireTime": "soon"}, 500, 0, 'strconv.ParseInt: parsing "soon": invalid syntax'),
        ({"certificate": "CERT", "issuingKey": "KEY", "serialNumber": ["1 2"]}, 400, 1300, None),
    ],
)
def test_gencrl_errors(server: Server, body: Any, status: int, code: int, message: str | None) -> None:
    if isinstance(body, dict):
        body = {k: server.ca_pem if v == "CERT" else server.key_pem if v == "KEY" else v for k, v in body.items()}
    server.client.post("gencrl", body).assert_error(status, code, message)


def test_gencrl_never_echoes_the_key(server: Server) -> None:
    r = server.client.post("gencrl", {"certificate": "junk", "issuingKey": server.key_pem})
    assert b"PRIVATE KEY" not in r.body


# -- ocspsign -----------------------------------------------------------------------------------------------


def load_ocsp(result: dict[str, Any]) -> ocsp.OCSPResponse:
    assert list(result) == ["ocspResponse"]
    return ocsp.load_der_ocsp_response(base64.b64decode(result["ocspResponse"], validate=True))


def test_ocspsign_good(server: Server) -> None:
    cert = server.issue()
    resp = load_ocsp(server.client.post("ocspsign", {"certificate": pem(cert)}).assert_ok())
    assert resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert resp.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert resp.serial_number == cert.serial_number
    assert isinstance(resp.hash_algorithm, hashes.SHA1)
    assert resp.next_update_utc is not None
    assert resp.next_update_utc - resp.this_update_utc == dt.timedelta(hours=96)


def test_ocspsign_revoked(server: Server) -> None:
    cert = server.issue()
    server.db.revoke(str(cert.serial_number), aki_hex(cert), 1)  # with a certdb, ocspsign must agree with it
    body = {"certificate": pem(cert), "status": "revoked", "reason": 1, "revoked_at": "2024-02-03", "issuer_hash": "SHA256"}
    resp = load_ocsp(server.client.post("ocspsign", body).assert_ok())
    assert resp.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert resp.revocation_time_utc == dt.datetime(2024, 2, 3, tzinfo=dt.timezone.utc)
    assert resp.revocation_reason == x509.ReasonFlags.key_compromise
    assert isinstance(resp.hash_algorithm, hashes.SHA256)


def test_ocspsign_revoked_now(server: Server) -> None:
    cert = server.issue()
    server.db.revoke(str(cert.serial_number), aki_hex(cert), 0)  # with a certdb, ocspsign must agree with it
    resp = load_ocsp(server.client.post("ocspsign", {"certificate": pem(cert), "status": "revoked"}).assert_ok())
    assert resp.revocation_time_utc is not None
    assert abs(resp.revocation_time_utc - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=1)
    assert resp.revocation_reason is None  # unspecified (0) is omitted, as Go does


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (b"[", 400, "Unable to parse sign request"),
        ({"certificate": "CERT", "reason": "keyCompromise"}, 400, "Unable to parse sign request"),
        ({"certificate": "CERT", "reason": 1.5}, 400, "Unable to parse sign request"),
        ({"certificate": "not a pem"}, 400, "Malformed certificate"),
        ({}, 400, "Malformed certificate"),
        ({"certificate": "CERT", "status": "revoked", "revoked_at": "2024-2-3"}, 400, "Malformed revocation time"),
        ({"certificate": "CERT", "status": "revoked", "revoked_at": "2024-02-30"}, 400, "Malformed revocation time"),
        ({"certificate": "CERT", "status": "revoked", "reason": 7}, 400, "Invalid reason code"),
        ({"certificate": "CERT", "status": "revoked", "reason": 11}, 400, "Invalid reason code"),
        ({"certificate": "CERT", "status": "revoked", "reason": -1}, 400, "Invalid reason code"),
        ({"certificate": "CERT", "issuer_hash": "MD5"}, 400, "Unsupported hash algorithm in request"),
        ({"certificate": "CERT", "issuer_hash": "SHA3"}, 400, "Unsupported hash algorithm in request"),
        ({"certificate": "CERT", "status": "fine"}, 8200, "Invalid revocation status"),
    ],
)
def test_ocspsign_errors(server: Server, body: Any, code: int, message: str) -> None:
    if isinstance(body, dict) and body.get("certificate") == "CERT":
        body["certificate"] = pem(server.issue())
    server.client.post("ocspsign", body).assert_error(400, code, message)


def test_ocspsign_refuses_a_certificate_of_another_ca(server: Server, other_ca: CA) -> None:
    server.client.post("ocspsign", {"certificate": other_ca.cert.read_text()}).assert_error(400, 8100)


# -- certadd ------------------------------------------------------------------------------------------------


def rfc3339(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def add_body(cert: x509.Certificate, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "serial_number": str(cert.serial_number),
        "authority_key_identifier": aki_hex(cert),
        "ca_label": "",
        "status": "good",
        "expiry": rfc3339(cert.not_valid_after_utc),
        "pem": pem(cert),
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


@pytest.fixture
def unrecorded(api_ca: CA) -> x509.Certificate:
    """A certificate of the server's CA that the database has not seen (signed without a recorder)."""
    from cfsslpy.signer import SignRequest

    signer = LocalSigner(load_issuer(str(api_ca.cert), str(api_ca.key)), Config.default().signing)
    return signer.sign(SignRequest(request=new_csr("added.example.com", ["added.example.com"]).encode()))


def test_certadd(server: Server, unrecorded: x509.Certificate) -> None:
    body = add_body(unrecorded, ca_label="primary", common_name="added.example.com", sans=["added.example.com"], metadata={"k": "v"})
    assert server.client.post("certadd", body).assert_ok() == {}
    (record,) = server.db.get_certificate(str(unrecorded.serial_number), aki_hex(unrecorded))
    assert record.pem == pem(unrecorded) and record.ca_label == "primary" and record.status == "good"
    assert record.expiry == unrecorded.not_valid_after_utc
    assert record.sans == ["added.example.com"] and record.metadata == {"k": "v"} and record.common_name == "added.example.com"
    # the same certificate twice
    server.client.post("certadd", body).assert_error(400, 11100)


def test_certadd_revoked_then_listed_in_the_crl(server: Server, unrecorded: x509.Certificate) -> None:
    body = add_body(unrecorded, status="revoked", reason=4, revoked_at="2024-01-02T03:04:05Z")
    server.client.post("certadd", body).assert_ok()
    (record,) = server.db.get_certificate(str(unrecorded.serial_number), aki_hex(unrecorded))
    assert record.status == "revoked" and record.reason == 4
    assert record.revoked_at == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    crl = load_crl(server.client.get("crl").assert_ok())
    entry = crl.get_revoked_certificate_by_serial_number(unrecorded.serial_number)
    assert entry is not None and entry.revocation_date_utc == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


def test_certadd_canonicalises_the_aki(server: Server, unrecorded: x509.Certificate) -> None:
    server.client.post("certadd", add_body(unrecorded, authority_key_identifier=aki_hex(unrecorded).upper())).assert_ok()
    assert server.db.get_certificate(str(unrecorded.serial_number), aki_hex(unrecorded))


CERTADD_ERRORS: list[tuple[dict[str, Any] | bytes, str]] = [
    (b"{", "Unable to parse certificate addition request"),
    ({"reason": "1"}, "Unable to parse certificate addition request"),
    ({"expiry": "2030-01-01"}, "Unable to parse certificate addition request"),
    ({"sans": "a.example.com"}, "Unable to parse certificate addition request"),
    ({"serial_number": ""}, "Serial number is required but not provided"),
    ({"authority_key_identifier": ""}, "Authority key identifier is required but not provided"),
    ({"status": "Good"}, "Invalid certificate status"),
    ({"status": ""}, "Invalid certificate status"),
    ({"status": "revoked", "reason": 1}, "Revoked certificate should specify when it was revoked"),
    ({"status": "revoked", "revoked_at": "2024-01-01T00:00:00Z", "reason": 7}, "Invalid certificate status reason code"),
    ({"status": "revoked", "revoked_at": "2024-01-01T00:00:00Z", "reason": 11}, "Invalid certificate status reason code"),
    ({"pem": ""}, "The provided certificate is empty"),
    ({"expiry": None}, "Expiry is required but not provided"),  # add_body leaves None out
    ({"expiry": "0001-01-01T00:00:00Z"}, "Expiry is required but not provided"),
    ({"pem": "junk"}, "Unable to parse PEM encoded certificates"),
    ({"serial_number": "0x10"}, "Unable to parse serial key of request"),
    ({"serial_number": "12345"}, "Serial key of request and certificate do not match"),
    ({"authority_key_identifier": "abc"}, "Unable to decode authority key identifier"),
    ({"authority_key_identifier": "zz"}, "Unable to decode authority key identifier"),
    ({"authority_key_identifier": "abcd"}, "Authority key identifier of request and certificate do not match"),
    ({"expiry": "2000-01-01T00:00:00Z"}, "Expiry of request and certificate do not match"),
]


@pytest.mark.parametrize(("change", "message"), CERTADD_ERRORS)
def test_certadd_errors(server: Server, unrecorded: x509.Certificate, change: dict[str, Any] | bytes, message: str) -> None:
    body = change if isinstance(change, bytes) else add_body(unrecorded, **change)
    server.client.post("certadd", body).assert_error(400, 400, message)
    assert server.db.get_certificate(str(unrecorded.serial_number), aki_hex(unrecorded)) == []


def test_certadd_expiry_is_compared_as_an_instant(server: Server, unrecorded: x509.Certificate) -> None:
    not_after = unrecorded.not_valid_after_utc.astimezone(dt.timezone(dt.timedelta(hours=2)))
    server.client.post("certadd", add_body(unrecorded, expiry=not_after.isoformat())).assert_ok()


def test_certadd_refuses_a_certificate_the_server_ca_did_not_issue(server: Server, other_ca: CA) -> None:
    from cfsslpy.signer import SignRequest

    other = LocalSigner(load_issuer(str(other_ca.cert), str(other_ca.key)), Config.default().signing)
    foreign = other.sign(SignRequest(request=new_csr("foreign.example.com").encode()))
    server.client.post("certadd", add_body(foreign)).assert_error(400, 400, "The certificate was not issued by this server's CA")
    assert server.db.certificates_by_serial(str(foreign.serial_number)) == []


def test_certadd_without_a_database_fails_with_11000(
    api_ca: CA, client_for: Callable[[ApiState], Client], unrecorded: x509.Certificate
) -> None:
    client = client_for(full_state(api_ca, None))
    r = client.post("certadd", add_body(unrecorded))
    r.assert_error(400, 11000, "no certificate database: start serve with -db-config to record certificates")
    client.post("certadd", {}).assert_error(400, 400, "Serial number is required but not provided")
