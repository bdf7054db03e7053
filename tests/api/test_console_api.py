"""The web console's read-only endpoints (``/api/v1/cfsslpy/``) over a real loopback socket: the certificate
list (paging bounds, search, filters, sorting), the detail view, OCSP status, CRL info, profiles, capabilities,
parse, bad input as envelope errors, and a server without a certificate database; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import CA
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from integration.pg import Cluster, pg_database, postgres_cluster
from servers import serve_wsgi as serve

from api.wsgi import AUTH_KEY_HEX, config_json
from cfsslpy.api.app import create_app
from cfsslpy.api.state import ApiState
from cfsslpy.certdb import CertDB, CertificateRecord, DBConfig, recorder
from cfsslpy.config import Config
from cfsslpy.ocsp import OCSPSigner
from cfsslpy.signer import LocalSigner, load_issuer

__all__ = ["pg_database", "postgres_cluster"]  # fixtures, imported for pytest

CONSOLE = "/api/v1/cfsslpy/"
CFSSL = "/api/v1/cfssl/"
UTC = dt.timezone.utc


# -- a real server on a loopback port ---------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def doc(self) -> Any:
        return json.loads(self.body)

    def ok(self) -> Any:
        assert self.status == 200, (self.status, self.body)
        assert self.headers["Content-Type"] == "application/json"
        doc = self.doc
        assert doc["success"] is True and doc["errors"] == []
        return doc["result"]

    def error(self, status: int, code: int | None = None, contains: str = "") -> str:
        assert self.status == status, (self.status, self.body)
        assert self.headers["Content-Type"] == "text/plain; charset=utf-8"
        doc = self.doc
        assert doc["success"] is False and doc["result"] is None and len(doc["errors"]) == 1, doc
        message = str(doc["errors"][0]["message"])
        assert doc["errors"][0]["code"] == (status if code is None else code), doc
        assert contains in message, message
        return message


@dataclass
class Site:
    url: str
    db: CertDB | None
    ca_cert: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey

    def request(self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json") -> Answer:
        req = urllib.request.Request(self.url + path, data=body, method=method)
        if body is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return Answer(resp.status, dict(resp.headers), resp.read())
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, dict(exc.headers), exc.read())

    def get(self, name: str, **params: Any) -> Answer:
        query = urllib.parse.urlencode(params)
        return self.request("GET", CONSOLE + name + ("?" + query if query else ""))

    def post(self, name: str, doc: Any, prefix: str = CONSOLE) -> Answer:
        return self.request("POST", prefix + name, json.dumps(doc).encode())


# -- certificates recorded in the database ------------------------------------------------------------------


def _ski(cert: x509.Certificate) -> x509.SubjectKeyIdentifier:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value


_LEAF_KEY = ec.generate_private_key(ec.SECP256R1())


def issue(
    ca_cert: x509.Certificate, ca_key: Any, cn: str, *, serial: int, not_after: dt.datetime, sans: tuple[str, ...] = ()
) -> tuple[x509.Certificate, str]:
    """A leaf of the CA (one shared key: only the certificates differ)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca_cert.subject)
        .public_key(_LEAF_KEY.public_key())
        .serial_number(serial)
        .not_valid_before(not_after - dt.timedelta(days=400))
        .not_valid_after(not_after)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(_ski(ca_cert)), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert, cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def populate(db: CertDB, ca_cert: x509.Certificate, ca_key: Any, count: int, *, now: dt.datetime | None = None) -> list[CertificateRecord]:
    """``count`` certificates named ``host-NNNN.example.test`` (SAN ``www.host-NNNN.example.test``), serial
    1000 + i, expiring i + 1 days (less an hour) from ``now`` for the first 40 (so 30 expire within 30 days), in 100 + i days
    for the others; every 7th is revoked (keyCompromise), every 50th has already expired, every 3rd was
    recorded with the label ``edge``; issued in order (``issued_at`` = now - count + i minutes)."""
    current = now or dt.datetime.now(UTC)
    records = []
    for i in range(count):
        days = i + 1 if i < 40 else 100 + i
        not_after = current - dt.timedelta(days=1) if i % 50 == 49 else current + dt.timedelta(days=days, hours=-1)
        cn = f"host-{i:04d}.example.test"
        cert, pem = issue(ca_cert, ca_key, cn, serial=1000 + i, not_after=not_after, sans=(f"www.{cn}",))
        revoked = i % 7 == 6
        rec = CertificateRecord.from_certificate(
            cert,
            pem=pem,
            ca_label="edge" if i % 3 == 0 else "",
            issued_at=current - dt.timedelta(minutes=count - i),
            status="revoked" if revoked else "good",
            reason=1 if revoked else 0,
            revoked_at=current - dt.timedelta(hours=1) if revoked else None,
            metadata={"profile": "www"} if i % 2 else None,
        )
        db.insert_certificate(rec)
        records.append(rec)
    return records


COUNT = 120
REVOKED = [i for i in range(COUNT) if i % 7 == 6]
EXPIRED = [i for i in range(COUNT) if i % 50 == 49]
EXPIRING = [i for i in range(30) if i % 7 != 6 and i % 50 != 49]


def _load_ca(ca: CA) -> tuple[x509.Certificate, Any]:
    cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    key = serialization.load_pem_private_key(ca.key.read_bytes(), None)
    return cert, key


def _state(ca: CA, db: CertDB | None, config: dict[str, Any] | None = None) -> ApiState:
    issuer = load_issuer(str(ca.cert), str(ca.key))
    assert issuer.cert is not None
    cfg = Config.from_json(config) if config is not None else Config.default()
    signer = LocalSigner(issuer, cfg.signing, recorder=recorder(db) if db is not None else None)
    return ApiState(
        signer=signer,
        policy=cfg.signing,
        config=cfg if config is not None else None,
        db=db,
        ocsp_signer=OCSPSigner(issuer.cert, issuer.cert, issuer.key),
        crl_issuer=(issuer.cert, issuer.key),
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[pytest.mark.integration, pytest.mark.postgres])])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CertDB]:
    if request.param == "sqlite":
        db = CertDB(DBConfig("sqlite3", str(tmp_path / "certs.db")))
    else:
        cluster: Cluster = request.getfixturevalue("postgres_cluster")
        name: str = request.getfixturevalue("pg_database")
        db = CertDB(DBConfig("postgres", cluster.url(name)))
    try:
        yield db
    finally:
        db.close()


@pytest.fixture
def site(api_ca: CA, database: CertDB) -> Iterator[Site]:
    ca_cert, ca_key = _load_ca(api_ca)
    populate(database, ca_cert, ca_key, COUNT)
    app = create_app(_state(api_ca, database, config_json()))
    try:
        with serve(app) as url:
            yield Site(url, database, ca_cert, ca_key)
    finally:
        app.metrics.close()
        app.close()


@pytest.fixture
def bare(api_ca: CA) -> Iterator[Site]:
    """A server with a signer but no certificate database."""
    ca_cert, ca_key = _load_ca(api_ca)
    app = create_app(_state(api_ca, None, config_json()))
    try:
        with serve(app) as url:
            yield Site(url, None, ca_cert, ca_key)
    finally:
        app.metrics.close()
        app.close()


def cns(result: dict[str, Any]) -> list[str]:
    return [row["common_name"] for row in result["certificates"]]


def host(i: int) -> str:
    return f"host-{i:04d}.example.test"


# -- the list -------------------------------------------------------------------------------------------------


def test_list_pages_through_every_certificate_sorted_by_expiry(site: Site) -> None:
    first = site.get("certificates").ok()
    assert (first["page"], first["page_size"], first["total"], first["pages"]) == (1, 25, COUNT, 5)
    seen: list[str] = []
    for page in range(1, 6):
        seen += cns(site.get("certificates", page=page, page_size=25).ok())
    assert len(seen) == COUNT == len(set(seen))
    # soonest expiry first: the expired ones, then the first 40 in order, then the rest in order
    expected = [host(i) for i in EXPIRED] + [host(i) for i in range(COUNT) if i not in EXPIRED]
    assert seen == expected
    # beyond the last page: an empty page, with the total
    beyond = site.get("certificates", page=6, page_size=25).ok()
    assert beyond["certificates"] == [] and beyond["total"] == COUNT
    last = site.get("certificates", page=2, page_size=100).ok()
    assert len(last["certificates"]) == COUNT - 100 and last["pages"] == 2


def test_list_rows_carry_status_and_flags(site: Site) -> None:
    rows = {row["common_name"]: row for row in site.get("certificates", page_size=100).ok()["certificates"]}
    revoked = rows[host(6)]
    assert revoked["status"] == "revoked" and revoked["reason_name"] == "keyCompromise" and revoked["revoked_at"]
    assert revoked["expiring_soon"] is False  # revoked outranks expiring
    soon = rows[host(3)]
    assert soon["status"] == "good" and soon["expiring_soon"] is True and soon["expired"] is False
    assert soon["sans"] == [f"www.{host(3)}"] and soon["ca_label"] == "edge" and soon["profile"] == "www"
    assert soon["serial_number"] == "1003" and soon["authority_key_identifier"] == _ski(site.ca_cert).digest.hex()
    assert rows[host(49)]["expired"] is True and rows[host(49)]["expiring_soon"] is False
    assert rows[host(80)]["expiring_soon"] is False
    assert "pem" not in soon  # the list stays small: PEM only in the detail view


def test_status_filters(site: Site) -> None:
    def names(status: str) -> set[str]:
        return set(cns(site.get("certificates", status=status, page_size=100).ok())) | set(
            cns(site.get("certificates", status=status, page_size=100, page=2).ok())
        )

    assert names("revoked") == {host(i) for i in REVOKED}
    assert names("expired") == {host(i) for i in EXPIRED}
    assert names("expiring") == {host(i) for i in EXPIRING}
    assert names("good") == {host(i) for i in range(COUNT) if i not in REVOKED and i not in EXPIRED}
    assert site.get("certificates", status="unknown").ok()["total"] == 0


def test_search_by_common_name_san_and_serial(site: Site) -> None:
    assert cns(site.get("certificates", q="HOST-0042").ok()) == [host(42)]  # case-insensitive substring
    assert cns(site.get("certificates", q="www.host-0043.example").ok()) == [host(43)]  # a SAN
    assert site.get("certificates", q="host-00").ok()["total"] == 100
    assert cns(site.get("certificates", q="1044").ok()) == [host(44)]  # decimal serial
    assert cns(site.get("certificates", q=hex(1045)).ok()) == [host(45)]  # 0x hex
    assert cns(site.get("certificates", q="04:16").ok()) == [host(46)]  # colon hex (0x416 = 1046)
    # LIKE's wildcards and SQL text are literal: nothing matches, nothing breaks
    for q in ("%", "_", "\\", "' OR '1'='1", "host-00%' --", '"; DROP TABLE certificates; --'):
        assert site.get("certificates", q=q).ok()["total"] == 0, q
    assert site.get("certificates").ok()["total"] == COUNT
    # search and filter together
    assert cns(site.get("certificates", q="host-000", status="revoked").ok()) == [host(6)]


def test_sort_by_issue_time(site: Site) -> None:
    newest = cns(site.get("certificates", sort="issued", order="desc", page_size=3).ok())
    assert newest == [host(COUNT - 1), host(COUNT - 2), host(COUNT - 3)]
    oldest = cns(site.get("certificates", sort="issued", order="asc", page_size=2).ok())
    assert oldest == [host(0), host(1)]
    latest_expiry = cns(site.get("certificates", sort="expiry", order="desc", page_size=1).ok())
    assert latest_expiry == [host(COUNT - 1)]


@pytest.mark.parametrize(
    ("params", "contains"),
    [
        ({"page_size": 0}, "page_size must be between 1 and 100"),
        ({"page_size": 101}, "page_size must be between 1 and 100"),
        ({"page_size": -1}, "page_size must be a positive integer"),
        ({"page_size": "ten"}, "page_size must be a positive integer"),
        ({"page": 0}, "page must be between 1 and 1000000"),
        ({"page": 10**12}, "page must be a positive integer"),
        ({"q": "x" * 129}, "search is longer than 128 characters"),
        ({"status": "bogus"}, "unknown status filter"),
        ({"sort": "serial"}, "unknown sort"),
        ({"order": "sideways"}, "order must be asc or desc"),
        ({"color": "blue"}, "unknown query parameter 'color'"),
    ],
)
def test_list_bounds_are_envelope_errors(site: Site, params: dict[str, Any], contains: str) -> None:
    answer = site.get("certificates", **params)
    assert answer.status == 400, answer.body
    assert contains in answer.doc["errors"][0]["message"]


def test_list_rejects_repeated_and_overlong_query_strings(site: Site) -> None:
    site.request("GET", CONSOLE + "certificates?page=1&page=2").error(400, contains="more than once")
    site.request("GET", CONSOLE + "certificates?q=" + "a" * 3000).error(400, contains="query string longer than 2048")
    site.request("POST", CONSOLE + "certificates", b"{}").error(405, contains="Method is not allowed")


# -- one certificate, its OCSP status, revoking, the CRL ----------------------------------------------------


def test_detail_view(site: Site) -> None:
    aki = _ski(site.ca_cert).digest.hex()
    detail = site.get("certificate", serial="1003", aki=aki.upper()).ok()
    assert detail["common_name"] == host(3) and detail["status"] == "good" and detail["metadata"] == {"profile": "www"}
    cert = x509.load_pem_x509_certificate(detail["pem"].encode())
    assert cert.serial_number == 1003
    parsed = detail["certificate"]
    assert parsed["subject"] == f"CN={host(3)}" and parsed["sans"] == [f"DNS:www.{host(3)}"]
    assert parsed["key"] == "ECDSA secp256r1" and parsed["not_after"] == detail["expiry"]
    assert parsed["signature_algorithm"] == "ECDSA with SHA256"
    assert parsed["authority_key_id"].replace(":", "").lower() == aki
    assert site.get("certificate", serial=hex(1003)).ok()["serial_number"] == "1003"  # the AKI is optional
    revoked = site.get("certificate", serial="1006").ok()
    assert revoked["status"] == "revoked" and revoked["reason_name"] == "keyCompromise"
    site.get("certificate", serial="999999").error(404, contains="no certificate found")
    site.get("certificate", serial="1003", aki="00ff").error(404, contains="no certificate found")
    assert site.get("certificate", serial="12ab").status == 400
    assert site.get("certificate", serial="1003", aki="zz").status == 400
    site.get("certificate").error(400, contains="serial is required")


def test_revoke_then_ocsp_status_and_crl(site: Site) -> None:
    aki = _ski(site.ca_cert).digest.hex()
    status = site.get("ocspstatus", serial="1010", aki=aki).ok()
    assert status["status"] == "good" and status["reason_name"] == "" and status["stored_response"] is None
    info = site.get("crlinfo").ok()
    assert info["last_number"] is None and info["authority_key_identifier"] == aki and info["crl_available"] is True
    assert info["revoked_count"] == len([i for i in REVOKED if i not in EXPIRED])

    site.post("revoke", {"serial": "1010", "authority_key_id": aki, "reason": "superseded"}, prefix=CFSSL).ok()
    status = site.get("ocspstatus", serial="1010", aki=aki).ok()
    assert status["status"] == "revoked" and status["reason_name"] == "superseded" and status["revoked_at"]

    crl_b64 = site.request("GET", CFSSL + "crl").ok()
    crl = x509.load_der_x509_crl(base64.b64decode(crl_b64))
    assert crl.get_revoked_certificate_by_serial_number(1010) is not None
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    info = site.get("crlinfo").ok()
    assert info["last_number"] == str(number) and info["revoked_count"] == len([i for i in REVOKED if i not in EXPIRED]) + 1
    # the parse endpoint reads the CRL the page downloads
    (parsed,) = site.post("parse", {"data": crl_b64}).ok()["objects"]
    assert parsed["type"] == "crl" and parsed["number"] == str(number) and parsed["revoked_count"] == info["revoked_count"]
    assert (
        parsed["next_update"]
        and {"serial_number": "1010", "reason": "superseded"}.items()
        <= next(e for e in parsed["revoked"] if e["serial_number"] == "1010").items()
    )


def test_ocsp_status_shows_a_stored_response(site: Site, api_ca: CA) -> None:
    assert site.db is not None
    issuer = load_issuer(str(api_ca.cert), str(api_ca.key))
    assert issuer.cert is not None
    rec = site.db.certificates_by_serial("1012")[0]
    der = OCSPSigner(issuer.cert, issuer.cert, issuer.key).sign_record(rec)
    site.db.upsert_ocsp(rec.serial, rec.aki, der, dt.datetime.now(UTC) + dt.timedelta(days=1))
    stored = site.get("ocspstatus", serial="1012").ok()["stored_response"]
    assert stored["cert_status"] == "good" and stored["this_update"] and stored["produced_at"]


# -- profiles, capabilities, parse -----------------------------------------------------------------------------


def test_profiles_and_capabilities(site: Site) -> None:
    profiles = {p["name"]: p for p in site.get("profiles").ok()["profiles"]}
    assert set(profiles) == {"", "www", "client", "auth"}
    assert profiles["www"]["usages"] == ["digital signature", "key encipherment", "server auth"] and profiles["www"]["expiry"] == "720h"
    assert profiles["auth"]["auth"] is True and profiles["www"]["auth"] is False
    assert AUTH_KEY_HEX.lower() not in site.get("profiles").body.decode().lower()
    caps = site.get("capabilities").ok()
    assert caps["certdb"] is True and caps["signer"] is True and caps["bundler"] is False
    assert {"revoke", "crl", "sign", "certificates", "parse"} <= set(caps["endpoints"])
    assert caps["ca"]["aki"] == _ski(site.ca_cert).digest.hex()


def test_parse_certificates_chains_csrs_and_crls(site: Site) -> None:
    leaf, leaf_pem = issue(
        site.ca_cert, site.ca_key, "parse.example.test", serial=77, not_after=dt.datetime.now(UTC) + dt.timedelta(days=9)
    )
    ca_pem = site.ca_cert.public_bytes(serialization.Encoding.PEM).decode()
    objects = site.post("parse", {"data": leaf_pem + ca_pem}).ok()["objects"]
    assert [o["type"] for o in objects] == ["certificate", "certificate"]
    assert objects[0]["common_name"] == "parse.example.test" and objects[0]["serial_number"] == "77" and objects[1]["is_ca"] is True
    key = ec.generate_private_key(ec.SECP384R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csr.example.test")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("csr.example.test"), x509.RFC822Name("a@example.test")]), critical=False)
        .sign(key, hashes.SHA384())
    )
    for data in (
        csr.public_bytes(serialization.Encoding.PEM).decode(),
        base64.b64encode(csr.public_bytes(serialization.Encoding.DER)).decode(),
    ):
        (obj,) = site.post("parse", {"data": data}).ok()["objects"]
        assert obj["type"] == "csr" and obj["subject"] == "CN=csr.example.test" and obj["signature_valid"] is True
        assert obj["sans"] == ["DNS:csr.example.test", "email:a@example.test"] and obj["key"] == "ECDSA secp384r1"
    der = base64.b64encode(leaf.public_bytes(serialization.Encoding.DER)).decode()
    assert site.post("parse", {"data": der}).ok()["objects"][0]["sha256"]


@pytest.mark.parametrize(
    ("body", "status", "contains"),
    [
        ({"data": "not pem at all!"}, 400, "cannot parse the data"),
        ({"data": ""}, 400, "no data"),
        ({"data": 5}, 400, 'want {"data"'),
        ([], 400, 'want {"data"'),
        ({"data": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, 400, "cannot parse the CERTIFICATE block"),
        ({"data": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}, 400, "unsupported PEM block 'PRIVATE KEY'"),
        ({"data": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" * 33}, 400, "more than 32 PEM blocks"),
        ({"data": "A" * (600 * 1024)}, 413, "data larger than"),
    ],
)
def test_parse_bad_input(site: Site, body: Any, status: int, contains: str) -> None:
    site.post("parse", body).error(status, contains=contains)


def test_parse_needs_json(site: Site) -> None:
    site.request("POST", CONSOLE + "parse", b"{", "application/json").error(400)
    assert site.request("POST", CONSOLE + "parse", b"data=x", "application/x-www-form-urlencoded").status == 415


# -- no certificate database -------------------------------------------------------------------------------------


def test_without_a_certificate_database(bare: Site) -> None:
    for name in ("certificates", "crlinfo"):
        bare.get(name).error(404, contains="no certificate database")
    for name in ("certificate", "ocspstatus"):
        bare.get(name, serial="1").error(404, contains="no certificate database")
    caps = bare.get("capabilities").ok()
    assert caps["certdb"] is False and "revoke" not in caps["endpoints"] and "crl" not in caps["endpoints"]
    assert bare.get("profiles").ok()["profiles"][0]["name"] == ""
    # cfssl's own endpoint list is unchanged by the console
    assert bare.request("GET", CFSSL + "certificates").status == 404


# -- a real serve -datadir process ---------------------------------------------------------------------------


@pytest.mark.integration
def test_a_serve_datadir_process_lists_what_it_issued(tmp_path: Path) -> None:
    """``serve -datadir`` keeps a certdb: what it signs appears in the console's list at once, revoking (on a
    loopback address) shows in the detail view and OCSP status, and the CRL info follows the CRL endpoint."""
    import re
    import sys

    from servers import process

    from api.wsgi import new_csr

    command = [sys.executable, "-m", "cfsslpy", "serve", "-address", "127.0.0.1", "-port", "0", "-loglevel", "1"]
    command += ["-datadir", str(tmp_path / "data")]
    with process(command) as server:
        url = server.wait_for(re.compile(r"Now listening on (\S+)"), 60).group(1)
        site = Site(url, None, *_no_ca())
        caps = site.get("capabilities").ok()
        assert caps["certdb"] is True and caps["signer"] is True and {"revoke", "crl", "sign"} <= set(caps["endpoints"])
        for name in ("one.example.test", "two.example.test"):
            site.post("sign", {"certificate_request": new_csr(name), "hosts": [name]}, prefix=CFSSL).ok()
        listed = site.get("certificates", sort="issued", order="desc").ok()
        assert cns(listed) == ["two.example.test", "one.example.test"] and listed["total"] == 2
        row = listed["certificates"][0]
        assert row["sans"] == ["two.example.test"] and row["status"] == "good"
        serial, aki = row["serial_number"], row["authority_key_identifier"]
        assert aki == caps["ca"]["aki"]
        site.post("revoke", {"serial": serial, "authority_key_id": aki, "reason": "keyCompromise"}, prefix=CFSSL).ok()
        assert site.get("certificate", serial=serial).ok()["status"] == "revoked"
        assert site.get("ocspstatus", serial=serial, aki=aki).ok()["reason_name"] == "keyCompromise"
        crl = x509.load_der_x509_crl(base64.b64decode(site.request("GET", CFSSL + "crl").ok()))
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        assert site.get("crlinfo").ok()["last_number"] == str(number)
        assert site.get("certificates", status="revoked").ok()["total"] == 1
    assert "Traceback" not in server.log


def _no_ca() -> tuple[x509.Certificate, Any]:
    """Placeholders for a Site whose CA lives in another process (the tests using it never sign locally)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "unused")])
    now = dt.datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert, key


def test_capabilities_say_whether_the_bundler_trusts_this_ca(api_ca: CA) -> None:
    """The page warns on its Bundle tab when the bundler cannot chain what this server issues (error 1220)."""
    from cfsslpy.bundler import Bundler

    ca_cert, ca_key = _load_ca(api_ca)
    other, _ = _no_ca()
    for roots, trusted in (([other], False), ([ca_cert], True)):
        state = _state(api_ca, None)
        state.bundler = Bundler(roots, fetch_aia=False)
        app = create_app(state)
        try:
            with serve(app) as url:
                caps = Site(url, None, ca_cert, ca_key).get("capabilities").ok()
                assert caps["bundler"] is True and "bundle" in caps["endpoints"] and caps["bundler_trusts_ca"] is trusted
        finally:
            app.metrics.close()
            app.close()
