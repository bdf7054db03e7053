"""``ocspserve`` as users run it: a real process on a loopback port, asked by ``openssl ocsp`` (POST) and by
hand-made RFC 5019 GETs, with responses from a file, from the certdb's stored responses and signed live.

Two issuers share one responder in every mode, and their leaves share a serial number (4242): cfssl's
responses file is indexed by serial only and would answer one issuer's question with the other's response.
Every server binds 127.0.0.1 on a free port and is always stopped (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import RunCli, need
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from servers import Server, process, wait_port

from cfsslpy.certdb import CertDB, CertificateRecord, DBConfig
from cfsslpy.ocsp import OCSPSigner, OCSPSignRequest
from cfsslpy.ocspresponder import responses_text

pytestmark = [pytest.mark.integration, pytest.mark.openssl]

START_TIMEOUT = 30.0
LISTENING = re.compile(r"Now listening on (\S+)")
NOW = dt.datetime.now(dt.timezone.utc)
REVOKED_AT = (NOW - dt.timedelta(days=2)).replace(microsecond=0)
SHARED_SERIAL = 4242


# ---------------------------------------------------------------------------------------------------------
# PKI: CA A (ECDSA, signs its own responses), CA B (RSA, with a delegated OCSP responder)


@dataclass
class Cert:
    path: Path
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    key_path: Path | None = None


@dataclass
class Pki:
    dir: Path
    ca: dict[str, Cert] = field(default_factory=dict)
    responder: dict[str, Cert] = field(default_factory=dict)
    leaf: dict[str, Cert] = field(default_factory=dict)
    issuer_of: dict[str, str] = field(default_factory=dict)

    def signer(self, ca: str) -> OCSPSigner:
        r = self.responder[ca]
        return OCSPSigner(self.ca[ca].cert, r.cert, r.key)

    def record(self, leaf: str, **kwargs: object) -> CertificateRecord:
        cert = self.leaf[leaf].cert
        return CertificateRecord.from_certificate(cert, pem=cert.public_bytes(serialization.Encoding.PEM).decode(), **kwargs)  # type: ignore[arg-type]


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> Cert:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = path.with_name(path.stem + "-key.pem")
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    key_path.chmod(0o600)
    return Cert(path, cert, key, key_path)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cfsslpy tests"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _builder(subject: x509.Name, issuer: x509.Name, public_key: object, serial: int) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(serial)
        .not_valid_before(NOW - dt.timedelta(days=3))
        .not_valid_after(NOW + dt.timedelta(days=90))
    )


def _ca(directory: Path, name: str, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> Cert:
    cert = (
        _builder(_name(f"OCSP test CA {name}"), _name(f"OCSP test CA {name}"), key.public_key(), x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _write(directory / f"ca-{name}.pem", cert, key)


def _issue(ca: Cert, path: Path, cn: str, serial: int, *, responder: bool = False) -> Cert:
    key = ec.generate_private_key(ec.SECP256R1())
    ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = _builder(_name(cn), ca.cert.subject, key.public_key(), serial).add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
    )
    if responder:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False).add_extension(
            x509.OCSPNoCheck(), critical=False
        )
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
    return _write(path, builder.sign(ca.key, hashes.SHA256()), key)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    p = Pki(tmp_path)
    p.ca["a"] = _ca(tmp_path, "a", ec.generate_private_key(ec.SECP256R1()))
    p.ca["b"] = _ca(tmp_path, "b", rsa.generate_private_key(65537, 2048))
    p.responder["a"] = p.ca["a"]
    p.responder["b"] = _issue(p.ca["b"], tmp_path / "responder-b.pem", "OCSP responder B", 77, responder=True)
    for name, ca, serial in (
        ("a-good", "a", SHARED_SERIAL),
        ("b-revoked", "b", SHARED_SERIAL),
        ("a-unknown", "a", 5001),
        ("a-missing", "a", 5002),
        ("b-good", "b", 6001),
    ):
        p.leaf[name] = _issue(p.ca[ca], tmp_path / f"{name}.pem", f"{name}.example.net", serial)
        p.issuer_of[name] = ca
    return p


def stored_responses(pki: Pki) -> list[bytes]:
    """a-good good, b-revoked revoked (keyCompromise), a-unknown unknown, b-good good; nothing for a-missing."""
    a, b = pki.signer("a"), pki.signer("b")
    return [
        a.sign(OCSPSignRequest(pki.leaf["a-good"].cert)),
        b.sign(OCSPSignRequest(pki.leaf["b-revoked"].cert, "revoked", 1, REVOKED_AT)),
        a.sign(OCSPSignRequest(pki.leaf["a-unknown"].cert, "unknown")),
        b.sign(OCSPSignRequest(pki.leaf["b-good"].cert)),
    ]


def make_db(pki: Pki) -> tuple[CertDB, Path]:
    """A certdb holding every leaf but a-missing (b-revoked revoked, a-unknown with status unknown)."""
    config = pki.dir / "db.json"
    config.write_text(json.dumps({"driver": "sqlite3", "data_source": str(pki.dir / "certs.db")}))
    db = CertDB(DBConfig("sqlite3", str(pki.dir / "certs.db")))
    db.insert_certificate(pki.record("a-good"))
    db.insert_certificate(pki.record("b-revoked", status="revoked", reason=1, revoked_at=REVOKED_AT))
    db.insert_certificate(pki.record("a-unknown", status="unknown"))
    db.insert_certificate(pki.record("b-good"))
    return db, config


# ---------------------------------------------------------------------------------------------------------
# a server process


@contextlib.contextmanager
def ocspserve(*args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    command = [sys.executable, "-m", "cfsslpy", "ocspserve", "-address", "127.0.0.1", "-port", "0", *args]
    with process(command, env) as server:
        server.url = server.wait_for(LISTENING, START_TIMEOUT).group(1)
        yield server
        assert server.proc.poll() is None, server.log
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(20) == 0, server.log  # graceful shutdown


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------------------------------
# clients


@dataclass
class Answer:
    status: str  # good | revoked | unknown | "Responder Error: unauthorized (6)" | ...
    text: str
    verified: bool


def _answer(proc: subprocess.CompletedProcess[str], leaf: Path) -> Answer:
    text = proc.stdout + proc.stderr
    m = re.search(rf"^{re.escape(str(leaf))}: (\w+)", text, re.M)
    if m:
        status = m.group(1)
    else:
        err = re.search(r"Responder Error: .*", text)
        status = err.group(0).strip() if err else f"(no status, exit {proc.returncode})"
    return Answer(status, text, "Response verify OK" in text)


def ask(url: str, pki: Pki, leaf: str, *extra: str, digest: str = "") -> Answer:
    """``openssl ocsp`` (POST, with a nonce) for one leaf, verifying the response against the leaf's CA."""
    openssl = need("openssl")
    ca = str(pki.ca[pki.issuer_of[leaf]].path)
    cert = pki.leaf[leaf].path
    proc = subprocess.run(
        [
            openssl,
            "ocsp",
            "-issuer",
            ca,
            *([digest] if digest else []),
            "-cert",
            str(cert),
            "-url",
            url,
            "-CAfile",
            ca,
            "-resp_text",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return _answer(proc, cert)


def ask_get(url: str, pki: Pki, leaf: str, *, if_none_match: str | None = None) -> tuple[int, dict[str, str], Answer | None]:
    """An RFC 5019 GET made by hand: ``openssl ocsp -reqout``, base64, URL-escaped, fetched with urllib, and
    the reply checked with ``openssl ocsp -respin``. Returns (HTTP status, headers, openssl's reading)."""
    openssl = need("openssl")
    ca = str(pki.ca[pki.issuer_of[leaf]].path)
    cert = pki.leaf[leaf].path
    req = pki.dir / f"{leaf}-req.der"
    subprocess.run([openssl, "ocsp", "-issuer", ca, "-cert", str(cert), "-no_nonce", "-reqout", str(req)], check=True, capture_output=True)
    encoded = urllib.parse.quote(base64.b64encode(req.read_bytes()).decode(), safe="")
    request = urllib.request.Request(url.rstrip("/") + "/" + encoded)
    if if_none_match:
        request.add_header("If-None-Match", if_none_match)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            status, headers, body = reply.status, _lower(reply.headers.items()), reply.read()
    except urllib.error.HTTPError as exc:
        status, headers, body = exc.code, _lower(exc.headers.items()), exc.read()
    if status != 200:
        return status, headers, None
    resp = pki.dir / f"{leaf}-resp.der"
    resp.write_bytes(body)
    proc = subprocess.run(
        [openssl, "ocsp", "-respin", str(resp), "-issuer", ca, "-cert", str(cert), "-CAfile", ca, "-resp_text"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return status, headers, _answer(proc, cert)


def _lower(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {k.lower(): v for k, v in items}


def check_all(url: str, pki: Pki, *, unknown: str = "unknown") -> None:
    """The expected answers of every mode: both issuers' serial 4242 answered for the right issuer."""
    good = ask(url, pki, "a-good")
    assert (good.status, good.verified) == ("good", True), good.text
    revoked = ask(url, pki, "b-revoked")
    assert (revoked.status, revoked.verified) == ("revoked", True), revoked.text
    assert "Reason: keyCompromise" in revoked.text
    assert f"Revocation Time: {REVOKED_AT:%b} {REVOKED_AT.day:2d} {REVOKED_AT:%H:%M:%S %Y} GMT" in revoked.text
    assert ask(url, pki, "b-good").status == "good"
    assert ask(url, pki, "a-unknown").status == unknown
    assert ask(url, pki, "a-missing").status == "Responder Error: unauthorized (6)"


# ---------------------------------------------------------------------------------------------------------
# the three sources


def test_responses_file(pki: Pki) -> None:
    responses = pki.dir / "responses"
    responses.write_text(responses_text(stored_responses(pki)))
    with ocspserve("-responses", str(responses), "-loglevel", "0") as server:  # answers are logged at DEBUG
        assert "Read 4 OCSP responses" in server.log
        check_all(server.url, pki)
        # by GET, both issuers of serial 4242
        for leaf, expected in (("a-good", "good"), ("b-revoked", "revoked")):
            status, headers, answer = ask_get(server.url, pki, leaf)
            assert status == 200 and answer is not None
            assert (answer.status, answer.verified) == (expected, True), answer.text
            assert headers["content-type"] == "application/ocsp-response"
            assert headers["cache-control"].endswith(", public, no-transform, must-revalidate")
            assert headers["last-modified"].endswith(" UTC") and headers["expires"].endswith(" UTC")
            # a conditional GET with the ETag just received
            status, headers304, _ = ask_get(server.url, pki, leaf, if_none_match=headers["etag"])
            assert status == 304 and headers304["etag"] == headers["etag"]
        assert re.search(r"method=GET path=/\S+ status=304", server.log), server.log


def test_db_stored_responses(pki: Pki, run_cli: RunCli) -> None:
    db, config = make_db(pki)
    db.close()
    result = run_cli(
        "ocsprefresh",
        "-db-config",
        str(config),
        "-ca",
        f"{pki.ca['a'].path},{pki.ca['b'].path}",
        "-responder",
        f"{pki.responder['a'].path},{pki.responder['b'].path}",
        "-responder-key",
        f"{pki.responder['a'].key_path},{pki.responder['b'].key_path}",
    )
    assert result.status == 0, result.stderr
    with ocspserve("-db-config", str(config)) as server:
        check_all(server.url, pki)
        status, _, answer = ask_get(server.url, pki, "b-revoked")
        assert status == 200 and answer is not None and answer.status == "revoked"


def test_live_signing_follows_revocation(pki: Pki) -> None:
    db, config = make_db(pki)
    args = [
        "-db-config",
        str(config),
        "-workers",
        "2",
        "-ca",
        f"{pki.ca['a'].path},{pki.ca['b'].path}",
        "-responder",
        f"{pki.responder['a'].path},{pki.responder['b'].path}",
        "-responder-key",
        f"{pki.responder['a'].key_path},{pki.responder['b'].key_path}",
    ]
    with ocspserve(*args, "-cache-ttl", "1s") as server:
        assert "for 2 issuers" in server.log
        check_all(server.url, pki)
        # SHA-256 CertIDs are answered with SHA-256 CertIDs
        sha256 = ask(server.url, pki, "b-good", digest="-sha256")
        assert (sha256.status, sha256.verified) == ("good", True), sha256.text
        # revoke a-good: within the cache lifetime (1 s here) every worker answers revoked
        db.revoke(str(SHARED_SERIAL), pki.signer("a").issuer_aki, 4)
        time.sleep(1.2)
        for _ in range(4):  # keep-alive-less requests reach both workers
            answer = ask(server.url, pki, "a-good")
            assert (answer.status, answer.verified) == ("revoked", True), answer.text
            assert "Reason: superseded" in answer.text
        # the other issuer's certificate with the same serial is untouched
        assert ask(server.url, pki, "b-good").status == "good"
        status, _, got = ask_get(server.url, pki, "a-good")
        assert status == 200 and got is not None and got.status == "revoked"
    db.close()


def test_get_and_post_under_a_path(pki: Pki) -> None:
    responses = pki.dir / "responses"
    responses.write_text(responses_text(stored_responses(pki)))
    with ocspserve("-responses", str(responses), "-path", "/ocsp") as server:
        assert server.url.endswith("/ocsp")
        assert ask(server.url, pki, "b-revoked").status == "revoked"  # POST to /ocsp
        status, _, answer = ask_get(server.url, pki, "a-good")  # GET /ocsp/<request>: cfssl answers 400 here
        assert status == 200 and answer is not None and answer.status == "good"
        root = server.url.rsplit("/ocsp", 1)[0]
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(root + "/elsewhere", timeout=10)
        info.value.close()
        assert info.value.code == 404


def test_http_errors(pki: Pki) -> None:
    responses = pki.dir / "responses"
    responses.write_text(responses_text(stored_responses(pki)))
    with ocspserve("-responses", str(responses)) as server:

        def fetch(method: str, path: str = "/", body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
            request = urllib.request.Request(server.url + path, data=body, method=method)
            try:
                with urllib.request.urlopen(request, timeout=10) as reply:
                    return reply.status, _lower(reply.headers.items()), reply.read()
            except urllib.error.HTTPError as exc:
                return exc.code, _lower(exc.headers.items()), exc.read()

        status, headers, body = fetch("PUT", "/", b"x")
        assert (status, body, headers["cache-control"]) == (405, b"", "max-age=0, no-cache")
        status, headers, body = fetch("GET", "/not*base64")
        assert (status, body) == (400, b"") and "content-type" not in headers
        status, headers, body = fetch("POST", "/", b"\x30\x03garbage")
        assert (status, body, headers["content-type"]) == (400, bytes.fromhex("30030a0101"), "application/ocsp-response")
        status, _, _ = fetch("POST", "/", b"\x30" * (64 * 1024))
        assert status == 413


# ---------------------------------------------------------------------------------------------------------
# interop with the real cfssl (2016 build)


@pytest.mark.cfssl
def test_cfssl_ocspserve_serves_our_responses(pki: Pki) -> None:
    cfssl = need("cfssl")
    responses = pki.dir / "responses"
    responses.write_text(responses_text(stored_responses(pki)[1:]))  # distinct serials: cfssl keys by serial
    port = free_port()
    with process([cfssl, "ocspserve", "-address", "127.0.0.1", "-port", str(port), "-responses", str(responses)]) as server:
        wait_port(port, server)
        url = f"http://127.0.0.1:{port}"  # POST: the 2016 build refuses GET with a leading '/'
        revoked = ask(url, pki, "b-revoked")
        assert (revoked.status, revoked.verified) == ("revoked", True), revoked.text
        assert "Reason: keyCompromise" in revoked.text
        assert ask(url, pki, "a-unknown").status == "unknown"
        assert ask(url, pki, "b-good").status == "good"
        assert ask(url, pki, "a-missing").status == "Responder Error: unauthorized (6)"


@pytest.mark.cfssl
def test_cfssl_serial_only_index_is_what_we_fix(pki: Pki) -> None:
    """The same file with both issuers' serial 4242: cfssl answers CA A's question with CA B's response."""
    cfssl = need("cfssl")
    responses = pki.dir / "responses"
    responses.write_text(responses_text(stored_responses(pki)))
    port = free_port()
    with process([cfssl, "ocspserve", "-address", "127.0.0.1", "-port", str(port), "-responses", str(responses)]) as server:
        wait_port(port, server)
        wrong = ask(f"http://127.0.0.1:{port}", pki, "a-good")
    # B's response (signed by B's responder, for B's CertID): openssl finds no status for A's certificate
    assert (wrong.status, wrong.verified) == ("ERROR", False), wrong.text
    assert "Response Verify Failure" in wrong.text
    with ocspserve("-responses", str(responses)) as ours:
        assert ask(ours.url, pki, "a-good").status == "good"


@pytest.mark.cfssl
def test_we_serve_cfssl_ocspsign_output(pki: Pki) -> None:
    cfssl = need("cfssl")
    lines = []
    for leaf, extra in (
        ("a-good", []),
        ("b-revoked", ["-status", "revoked", "-reason", "keycompromise"]),
        ("a-unknown", ["-status", "unknown"]),
    ):
        ca = pki.issuer_of[leaf]
        proc = subprocess.run(
            [
                cfssl,
                "ocspsign",
                "-ca",
                str(pki.ca[ca].path),
                "-responder",
                str(pki.responder[ca].path),
                "-responder-key",
                str(pki.responder[ca].key_path),
                "-cert",
                str(pki.leaf[leaf].path),
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        lines.append(json.loads(proc.stdout)["ocspResponse"])
    responses = pki.dir / "cfssl-responses"
    responses.write_text("\n".join(lines) + "\n")
    with ocspserve("-responses", str(responses)) as server:
        assert "Read 3 OCSP responses" in server.log
        good = ask(server.url, pki, "a-good")
        assert (good.status, good.verified) == ("good", True), good.text
        revoked = ask(server.url, pki, "b-revoked")
        assert (revoked.status, revoked.verified) == ("revoked", True), revoked.text
        assert "Reason: keyCompromise" in revoked.text
        assert ask(server.url, pki, "a-unknown").status == "unknown"
        status, _, answer = ask_get(server.url, pki, "b-revoked")
        assert status == 200 and answer is not None and answer.status == "revoked"
