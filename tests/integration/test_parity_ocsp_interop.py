"""Issue 11 items 1, 4 and 6 and the OCSP/CRL defaults, through the real cfssl 1.2.0 (/usr/bin/cfssl) and 1.6.5
(../shared/peers/cfssl-1.6.5/cfssl-libsqlite3) next to cfsslpy.

Observed with both versions, and asserted here:

* item 6: the CLI error table of tests/cli/test_parity_cli_errors.py, row by row (crl rows: 1.6.5 only);
* item 1: ``serve -ca ISSUER -responder R -responder-key K`` without ``-ca-key`` serves ``ocspsign`` (and the
  endpoints that need no signer; sign, info, newcert, gencrl, crl, revoke are 404) in both versions and here;
* item 4: a response that is valid BER but not DER (explicit default version) in an ``ocspserve -responses``
  file is served byte for byte by both versions and by cfsslpy, with the same Last-Modified, Expires and ETag;
* where we differ on purpose: with an expired responder (ocspsign) or CA (gencrl) both versions sign (exit 0),
  cfsslpy refuses with 1211;
  cfssl 1.6.5's ``serve`` with a certdb signs GOOD for a revoked certificate, cfsslpy answers 403.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp as x509_ocsp

from cfsslpy.ocsp import OCSPSigner, OCSPSignRequest
from cfsslpy.ocspresponder import responses_text
from tests.cli.test_parity_cli_errors import CASES, Case, check, write_inputs
from tests.conftest import RunCli, need
from tests.integration.test_ocspserve import free_port
from tests.servers import process, wait_port
from tests.test_ocsp import NOW, Cert, make_ca, make_cert, make_leaf, make_responder
from tests.test_parity_ocsp import _expired, _request, ber_response

pytestmark = [pytest.mark.integration, pytest.mark.cfssl]

PEERS = Path(__file__).resolve().parents[3] / "shared/peers/cfssl-1.6.5"
VERSIONS = {"1.2.0": "cfssl", "1.6.5": str(PEERS / "cfssl-libsqlite3")}
OURS = [sys.executable, "-m", "cfsslpy"]


@pytest.fixture(params=sorted(VERSIONS))
def cfssl(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(version, path) of each cfssl; skipped (or failed under CFSSLPY_REQUIRE_INTEGRATION=1) when absent."""
    return request.param, need(VERSIONS[request.param], f"cfssl {request.param} is not installed")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, cwd=cwd, timeout=60, check=False, stdin=subprocess.DEVNULL)


# -----------------------------------------------------------------------------------------------------------
# item 6: the CLI error table


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_cli_error_table_matches_cfssl(cfssl: tuple[str, str], case: Case, tmp_path: Path) -> None:
    version, binary = cfssl
    if version not in case.versions:
        pytest.skip(f"cfssl {version} has no {case.args[0]} command")
    if case.args[0] == "serve":
        case = Case((*case.args[:1], "-port", str(free_port()), *case.args[3:]), case.code, case.message)
    write_inputs(tmp_path)
    proc = run(binary, *case.args, cwd=tmp_path)
    check(case, proc.returncode, proc.stdout, proc.stderr)


# -----------------------------------------------------------------------------------------------------------
# item 1: an ocspsign-only serve


ENDPOINTS_WITHOUT_SIGNER = ("sign", "authsign", "info", "newcert", "gencrl", "crl", "revoke")
ENDPOINTS_SERVED = ("ocspsign", "certinfo", "newkey", "init_ca", "bundle")


@pytest.fixture
def ocsp_pki(tmp_path: Path) -> tuple[Cert, Cert, Cert]:
    ca = make_ca("p256", "Serve Parity CA")
    responder, leaf = make_responder(ca), make_leaf(ca, "served.example")
    ca.write(tmp_path, "ca")
    responder.write(tmp_path, "resp")
    leaf.write(tmp_path, "leaf")
    return ca, responder, leaf


def post(port: int, name: str, body: dict[str, object]) -> tuple[int, dict[str, object] | None]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/cfssl/{name}", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        text = exc.read()
        return exc.code, json.loads(text) if text.startswith(b"{") else None


def serve_argv(binary: list[str], tmp_path: Path, *extra: str) -> list[str]:
    return [
        *binary,
        "serve",
        "-ca",
        str(tmp_path / "ca.pem"),
        "-responder",
        str(tmp_path / "resp.pem"),
        "-responder-key",
        str(tmp_path / "resp-key.pem"),
        *extra,
    ]


@pytest.mark.parametrize("who", ["cfsslpy", *sorted(VERSIONS)])
def test_serve_without_ca_key_is_an_ocspsign_server(who: str, ocsp_pki: tuple[Cert, Cert, Cert], tmp_path: Path) -> None:
    binary = OURS if who == "cfsslpy" else [need(VERSIONS[who], f"cfssl {who} is not installed")]
    _, responder, leaf = ocsp_pki
    port = free_port()
    with process([*serve_argv(binary, tmp_path), "-port", str(port)]) as server:
        wait_port(port, server)
        status, doc = post(port, "ocspsign", {"certificate": leaf.pem, "status": "good"})
        assert status == 200 and doc is not None and doc["success"] is True, (doc, server.log)
        result = doc["result"]
        assert isinstance(result, dict)
        resp = x509_ocsp.load_der_ocsp_response(base64.b64decode(str(result["ocspResponse"])))
        assert resp.certificate_status == x509_ocsp.OCSPCertStatus.GOOD and resp.serial_number == leaf.cert.serial_number
        assert resp.responder_name == responder.cert.subject
        for name in ENDPOINTS_WITHOUT_SIGNER:
            assert post(port, name, {})[0] == 404, name
        for name in ENDPOINTS_SERVED:
            assert post(port, name, {})[0] != 404, name


# -----------------------------------------------------------------------------------------------------------
# item 4: a BER response in ocspserve's responses file


def ocsp_post(port: int, der: bytes) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", der, {"Content-Type": "application/ocsp-request"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()


def test_ber_response_served_byte_for_byte_by_all(tmp_path: Path) -> None:
    from tests.test_parity_ocsp import Signed

    ca = make_ca("p256", "BER Interop CA")
    responder, leaf = make_responder(ca), make_leaf(ca, "ber-interop.example")
    der = OCSPSigner(ca.cert, responder.cert, responder.key).sign(OCSPSignRequest(leaf.cert))
    assert isinstance(responder.key, ec.EllipticCurvePrivateKey)
    ber, _ = ber_response(der, responder.key)
    responses = tmp_path / "responses.txt"
    responses.write_text(responses_text([ber]))
    request = _request(Signed(ca, responder, leaf, der))
    answers = {}
    for who in ["cfsslpy", *sorted(VERSIONS)]:
        binary = OURS if who == "cfsslpy" else [need(VERSIONS[who], f"cfssl {who} is not installed")]
        port = free_port()
        with process([*binary, "ocspserve", "-responses", str(responses), "-port", str(port)]) as server:
            wait_port(port, server)
            status, headers, body = ocsp_post(port, request)
            assert "Read 1 OCSP responses" in server.log, server.log
        assert status == 200 and body == ber, who
        answers[who] = (headers["last-modified"], headers["expires"], headers["etag"])
    assert len(set(answers.values())) == 1, answers


# -----------------------------------------------------------------------------------------------------------
# deliberate differences: expired responders, and ocspsign against the certdb


def _signed_status(response_b64: str) -> x509_ocsp.OCSPCertStatus:
    """The certificate status of a successful OCSP response given in base64 (cfssl's ``ocspResponse``)."""
    response = x509_ocsp.load_der_ocsp_response(base64.b64decode(response_b64))
    assert response.response_status == x509_ocsp.OCSPResponseStatus.SUCCESSFUL
    return response.certificate_status


def test_expired_responder_cfssl_signs_cfsslpy_refuses(cfssl: tuple[str, str], run_cli: RunCli, tmp_path: Path) -> None:
    _, binary = cfssl
    ca = make_ca("p256", "Expired Responder CA")
    ca.write(tmp_path, "ca")
    _expired(ca).write(tmp_path, "resp")
    make_leaf(ca, "expired-responder.example").write(tmp_path, "leaf")
    args = ("ocspsign", "-ca", "ca.pem", "-responder", "resp.pem", "-responder-key", "resp-key.pem", "-cert", "leaf.pem")
    proc = run(binary, *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr  # cfssl signs with it: a GOOD response
    assert _signed_status(json.loads(proc.stdout)["ocspResponse"]) == x509_ocsp.OCSPCertStatus.GOOD
    ours = run_cli(*args, cwd=tmp_path)
    assert ours.status == 1 and ours.stdout == "" and ours.error["code"] == 1211
    assert "expired at" in ours.error["message"]
    # gencrl with an expired CA: cfssl signs the CRL, we refuse
    old_key = ec.generate_private_key(ec.SECP256R1())
    old_ca = Cert(make_cert("Expired CA", old_key, ca=True, not_after=NOW - dt.timedelta(hours=1)), old_key)
    old_ca.write(tmp_path, "old")
    (tmp_path / "serials.txt").write_text("12345\n")
    proc = run(binary, "gencrl", "serials.txt", "old.pem", "old-key.pem", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr  # cfssl signs a CRL listing the serial
    crl = x509.load_der_x509_crl(base64.b64decode(proc.stdout))
    assert crl.issuer == old_ca.cert.subject and crl.is_signature_valid(old_key.public_key()) and [r.serial_number for r in crl] == [12345]
    ours = run_cli("gencrl", "serials.txt", "old.pem", "old-key.pem", cwd=tmp_path)
    assert ours.status == 1 and ours.error["code"] == 1211 and "the CA certificate (CN=Expired CA" in ours.error["message"]


def test_serve_with_certdb_good_for_revoked(run_cli: RunCli, ocsp_pki: tuple[Cert, Cert, Cert], tmp_path: Path) -> None:
    peer = need(VERSIONS["1.6.5"], "cfssl 1.6.5 is not installed")
    _, _, leaf = ocsp_pki
    from cfsslpy.certdb import CertDB, CertificateRecord, DBConfig
    from tests.test_ocsp import record

    db_path = tmp_path / "certs.db"
    with CertDB(DBConfig("sqlite3", str(db_path))) as db:
        db.insert_certificate(record(leaf))
        rec: CertificateRecord = db.get_certificate(str(leaf.cert.serial_number), record(leaf).aki)[0]
        db.revoke(rec.serial, rec.aki, 1)
    (tmp_path / "db.json").write_text(json.dumps({"driver": "sqlite3", "data_source": str(db_path)}))
    outcomes = {}
    for who, binary in (("1.6.5", [peer]), ("cfsslpy", OURS)):
        port = free_port()
        with process([*serve_argv(binary, tmp_path, "-db-config", str(tmp_path / "db.json")), "-port", str(port)]) as server:
            wait_port(port, server)
            outcomes[who] = post(port, "ocspsign", {"certificate": leaf.pem, "status": "good"})
    status, doc = outcomes["1.6.5"]
    assert status == 200 and doc is not None and doc["success"] is True, doc  # cfssl: GOOD for a revoked certificate
    assert _signed_status(doc["result"]["ocspResponse"]) == x509_ocsp.OCSPCertStatus.GOOD
    status, doc = outcomes["cfsslpy"]
    assert status == 403 and doc is not None and "contradicts the certificate database" in json.dumps(doc)
