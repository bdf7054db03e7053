"""mkbundle: which certificates survive (time, duplicates, CRL and OCSP from loopback servers), the order, atomic
writes, the report, progress only on a terminal, the flag set, and one real process."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import io
import os
import random
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import RunCli
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cfsslpy.cli.context import IO
from cfsslpy.cli.mkbundle import run_mkbundle
from cfsslpy.cli.progress import ProgressBar
from cfsslpy.crl import RevokedEntry, generate_crl
from cfsslpy.errors import PlainError
from cfsslpy.inputs import Stdin
from cfsslpy.mkbundle import BuildOptions, DropReason, build, mkbundle
from cfsslpy.ocsp import OCSPSigner, OCSPSignRequest

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
DAY = dt.timedelta(days=1)
KEY = ec.generate_private_key(ec.SECP256R1())  # one key for every leaf: the tests are about the checks


def make_cert(
    cn: str,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    *,
    key: ec.EllipticCurvePrivateKey = KEY,
    serial: int | None = None,
    not_before: dt.datetime = NOW - DAY,
    not_after: dt.datetime = NOW + 365 * DAY,
    crl: str | None = None,
    ocsp_url: str | None = None,
    ca: bool = False,
    eku: list[x509.ObjectIdentifier] | None = None,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer_name, signing_key = (issuer[0].subject, issuer[1]) if issuer else (name, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    if crl:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl)], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    if ocsp_url:
        access = x509.AccessDescription(x509.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))
        builder = builder.add_extension(x509.AuthorityInformationAccess([access]), critical=False)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def bundle_ders(path: Path) -> list[bytes]:
    return [der(c) for c in x509.load_pem_x509_certificates(path.read_bytes())] if path.read_bytes() else []


@dataclass
class Responder:
    """What the loopback server answers: CRLs by path, OCSP statuses by serial, and a request log."""

    crls: dict[str, bytes] = field(default_factory=dict)
    signer: OCSPSigner | None = None
    certs: dict[int, tuple[x509.Certificate, str]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)


@contextlib.contextmanager
def serve(responder: Responder) -> Iterator[str]:
    """A loopback HTTP server for CRLs (GET) and OCSP (POST); always stopped."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            responder.requests.append(f"GET {self.path}")
            body = responder.crls.get(self.path)
            if body is None:
                self._send(404, b"not found", "text/plain")
            else:
                self._send(200, body, "application/pkix-crl")

        def do_POST(self) -> None:
            responder.requests.append(f"POST {self.path}")
            data = self.rfile.read(int(self.headers["Content-Length"]))
            serial = ocsp.load_der_ocsp_request(data).serial_number
            entry = responder.certs.get(serial)
            assert responder.signer is not None
            if entry is None:
                body = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(
                    serialization.Encoding.DER
                )
            else:
                body = responder.signer.sign(OCSPSignRequest(entry[0], entry[1]))
            self._send(200, body, "application/ocsp-response")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Pki:
    root: x509.Certificate
    kept: dict[str, x509.Certificate]
    dropped: dict[str, tuple[x509.Certificate, DropReason]]
    responder: Responder
    url: str
    dead: str


@pytest.fixture
def pki() -> Iterator[Pki]:
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = make_cert("Root", key=root_key, ca=True, not_before=NOW - 10 * DAY, not_after=NOW + 3650 * DAY)
    issuer = (root, root_key)
    responder = Responder()
    with serve(responder) as url:
        dead = f"http://127.0.0.1:{closed_port()}/dead.crl"
        delegate_key = ec.generate_private_key(ec.SECP256R1())
        delegate = make_cert("OCSP responder", issuer, key=delegate_key, eku=[ExtendedKeyUsageOID.OCSP_SIGNING])
        kept = {
            "Root": root,
            "Plain": make_cert("Plain", issuer),
            "CRL good": make_cert("CRL good", issuer, crl=f"{url}/root.crl"),
            "CRL good 2": make_cert("CRL good 2", issuer, crl=f"{url}/root.crl"),
            "LDAP CRL": make_cert("LDAP CRL", issuer, crl="ldap://ldap.example/cn=crl"),
            "OCSP good": make_cert("OCSP good", issuer, ocsp_url=f"{url}/ocsp"),
            "CRL unreachable": make_cert("CRL unreachable", issuer, crl=dead),
            "OCSP responder": delegate,
        }
        revoked_crl = make_cert("CRL revoked", issuer, crl=f"{url}/root.crl")
        revoked_ocsp = make_cert("OCSP revoked", issuer, ocsp_url=f"{url}/ocsp")
        unknown_ocsp = make_cert("OCSP unknown", issuer, ocsp_url=f"{url}/ocsp")
        dropped = {
            "Expired": (make_cert("Expired", issuer, not_before=NOW - 10 * DAY, not_after=NOW - DAY), DropReason.EXPIRED),
            "Future": (make_cert("Future", issuer, not_before=NOW + DAY, not_after=NOW + 10 * DAY), DropReason.NOT_YET_VALID),
            "CRL revoked": (revoked_crl, DropReason.REVOKED_CRL),
            "OCSP revoked": (revoked_ocsp, DropReason.REVOKED_OCSP),
            "OCSP unknown": (unknown_ocsp, DropReason.OCSP_UNKNOWN),
        }
        crl = generate_crl(root, root_key, [RevokedEntry(revoked_crl.serial_number, NOW - DAY)], lifetime=7 * DAY, number=1)
        responder.crls["/root.crl"] = crl
        responder.signer = OCSPSigner(root, delegate, delegate_key)
        responder.certs = {
            kept["OCSP good"].serial_number: (kept["OCSP good"], "good"),
            revoked_ocsp.serial_number: (revoked_ocsp, "revoked"),
            unknown_ocsp.serial_number: (unknown_ocsp, "unknown"),
        }
        yield Pki(root, kept, dropped, responder, url, dead)


def layout(pki: Pki, directory: Path, seed: int = 0) -> Path:
    """The certificates in files (shuffled, some grouped, one duplicated, a key block in between)."""
    certs = [*pki.kept.values(), *(c for c, _ in pki.dropped.values())]
    random.Random(seed).shuffle(certs)
    directory.mkdir(parents=True)
    (directory / "sub").mkdir()
    for i, cert in enumerate(certs[:-4]):
        (directory / ("sub" if i % 3 else ".") / f"{seed}-{i}.pem").write_bytes(pem(cert))
    key_block = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (directory / "group.crt").write_bytes(
        b"junk\n" + b"".join(pem(c) for c in certs[-4:-2]) + key_block + b"".join(pem(c) for c in certs[-2:])
    )
    (directory / "sub" / "dup.pem").write_bytes(pem(pki.kept["Plain"]))
    return directory


def cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_bundle_keeps_valid_unrevoked_and_says_why_others_go(pki: Pki, tmp_path: Path) -> None:
    out = tmp_path / "bundle.crt"
    result = mkbundle([str(layout(pki, tmp_path / "in"))], str(out), BuildOptions(workers=3, timeout=2))
    assert sorted(cn(x509.load_der_x509_certificate(d)) for d in bundle_ders(out)) == sorted(pki.kept)
    reasons = {cn(d.found.cert): d.reason for d in result.dropped if d.reason is not DropReason.DUPLICATE}
    assert reasons == {name: reason for name, (_, reason) in pki.dropped.items()}
    duplicates = [d for d in result.dropped if d.reason is DropReason.DUPLICATE]
    assert [cn(d.found.cert) for d in duplicates] == ["Plain"] and "same as" in duplicates[0].detail
    assert [cn(u.found.cert) for u in result.unverified] == ["CRL unreachable"]
    assert "Connection refused" in result.unverified[0].detail or "refused" in result.unverified[0].detail.lower()
    # the CRL was fetched once for four certificates; the unreachable one is not in the log (no server)
    assert pki.responder.requests.count("GET /root.crl") == 1
    assert sum(r.startswith("POST") for r in pki.responder.requests) == 3
    assert out.stat().st_mode & 0o777 == 0o644
    assert result.problems == []


def test_output_is_sorted_and_identical_whatever_the_input_order(pki: Pki, tmp_path: Path) -> None:
    outputs = []
    for seed in (1, 2, 3):
        out = tmp_path / f"b{seed}.crt"
        mkbundle([str(layout(pki, tmp_path / f"in{seed}", seed))], str(out), BuildOptions(workers=seed))
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    certs = x509.load_pem_x509_certificates(outputs[0])
    fingerprints = [c.fingerprint(hashes.SHA256()) for c in certs]
    assert fingerprints == sorted(fingerprints)


def test_ocsp_needs_the_issuer_among_the_inputs(pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "leaf.pem").write_bytes(pem(pki.dropped["OCSP revoked"][0]))
    result = build([str(tmp_path / "leaf.pem")])
    assert [cn(f.cert) for f in result.kept] == ["OCSP revoked"]  # kept: cannot be checked without its issuer
    assert [note for _, note in result.skipped] == ["OCSP not checked: the issuer is not among the input certificates"]
    assert pki.responder.requests == []


def test_bad_ocsp_signature_keeps_the_certificate_unverified(pki: Pki, tmp_path: Path) -> None:
    other_key = ec.generate_private_key(ec.SECP256R1())
    impostor = make_cert("Root", key=other_key, ca=True)  # same name, other key: its responses must not count
    assert pki.responder.signer is not None
    pki.responder.signer = OCSPSigner(impostor, impostor, other_key)
    leaf = pki.dropped["OCSP revoked"][0]
    (tmp_path / "in.pem").write_bytes(pem(pki.root) + pem(leaf))
    pki.responder.certs = {leaf.serial_number: (make_cert("OCSP revoked", (impostor, other_key), serial=leaf.serial_number), "revoked")}
    result = build([str(tmp_path / "in.pem")])
    assert sorted(cn(f.cert) for f in result.kept) == ["OCSP revoked", "Root"]
    assert [cn(u.found.cert) for u in result.unverified] == ["OCSP revoked"]
    assert "not signed by the issuer" in result.unverified[0].detail


def test_bad_blocks_are_reported_and_the_rest_of_the_file_is_read(tmp_path: Path) -> None:
    good = make_cert("Good")
    bad = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    (tmp_path / "mixed.pem").write_bytes(bad + pem(good))
    result = build([str(tmp_path)])
    assert [cn(f.cert) for f in result.kept] == ["Good"]
    assert [(p.path, p.block) for p in result.problems] == [(str(tmp_path / "mixed.pem"), 1)]
    assert "malformed certificate" in result.problems[0].message


def test_symlink_loops_and_links_to_files(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.pem").write_bytes(pem(make_cert("A")))
    os.symlink("..", tmp_path / "d" / "loop")
    os.symlink("a.pem", tmp_path / "d" / "link.pem")
    os.symlink("missing.pem", tmp_path / "d" / "dangling.pem")
    result = build([str(tmp_path / "d"), str(tmp_path)])
    assert [cn(f.cert) for f in result.kept] == ["A"]
    assert result.dropped == []  # the link and the second walk reach the same file: read once
    assert [Path(p.path).name for p in result.problems] == ["dangling.pem"]


def test_failing_write_leaves_no_file(tmp_path: Path) -> None:
    (tmp_path / "a.pem").write_bytes(pem(make_cert("A")))
    target = tmp_path / "out"
    target.mkdir()  # renaming a file over a directory fails
    with pytest.raises(PlainError):
        mkbundle([str(tmp_path / "a.pem")], str(target))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pem", "out"] and list(target.iterdir()) == []


def test_missing_path_fails_before_writing(tmp_path: Path) -> None:
    out = tmp_path / "bundle.crt"
    out.write_bytes(b"old")
    with pytest.raises(PlainError, match="no such file or directory"):
        mkbundle([str(tmp_path / "nope")], str(out))
    assert out.read_bytes() == b"old"


def test_cli_report_and_summary(pki: Pki, tmp_path: Path, run_cli: RunCli) -> None:
    directory = layout(pki, tmp_path / "in")
    result = run_cli("mkbundle", "-f", "out.crt", "-nw=2", str(directory), cwd=tmp_path)
    assert result.status == 0, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[-1].endswith("[INFO] Wrote 8 certificates.")
    assert "\r" not in result.stderr  # not a terminal: no progress line
    assert any("[INFO] Skipping CN=Expired (" in line and ": expired, notAfter " in line for line in lines)
    assert any("CN=CRL revoked" in line and f"revoked (CRL), listed in {pki.url}/root.crl" in line for line in lines)
    assert any("CN=OCSP revoked" in line and "revoked (OCSP)" in line for line in lines)
    assert any("[WARNING] Keeping CN=CRL unreachable" in line for line in lines)
    assert any(
        "Dropped 6 certificates: 1 expired, 1 not yet valid, 1 revoked (CRL), 1 revoked (OCSP), 1 unknown to its OCSP responder, 1 duplicate."
        in line
        for line in lines
    )
    assert any("Kept 1 certificate whose revocation status could not be checked." in line for line in lines)
    assert len(bundle_ders(tmp_path / "out.crt")) == 8


def test_progress_only_on_a_terminal(pki: Pki, tmp_path: Path) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    directory = layout(pki, tmp_path / "in")
    err = Tty()
    ctx = IO(stdin=Stdin(io.BytesIO()), stdout=io.StringIO(), stderr=err)
    assert run_mkbundle(["-f", str(tmp_path / "b.crt"), "-loglevel", "3", str(directory)], ctx) == 0
    text = err.getvalue()
    assert text.startswith("\r[") and "checked for revocation" in text and text.endswith("\n")
    assert "7/7 checked" in text  # the last update is always drawn (7 certificates have http CRL or OCSP URLs)
    plain = io.StringIO()
    line = ProgressBar(plain, "x", enabled=False)
    line(1, 2)
    line.finish()
    assert plain.getvalue() == ""
    # -progress=false: silent on a terminal too
    err = Tty()
    ctx = IO(stdin=Stdin(io.BytesIO()), stdout=io.StringIO(), stderr=err)
    assert run_mkbundle(["-f", str(tmp_path / "c.crt"), "-loglevel", "3", "-progress=false", str(directory)], ctx) == 0
    assert err.getvalue() == ""


@pytest.mark.parametrize("prog", ["cfssl-mkbundle", "mkbundle"])
def test_link_names_run_mkbundle(run_cli: RunCli, tmp_path: Path, prog: str) -> None:
    (tmp_path / "a.pem").write_bytes(pem(make_cert("A")))
    result = run_cli("-f", "x.crt", "a.pem", prog=prog, cwd=tmp_path)
    assert result.status == 0, result.stderr
    assert len(bundle_ders(tmp_path / "x.crt")) == 1
    help_ = run_cli("-h", prog=prog)
    assert help_.status == 0 and help_.stderr.startswith(f"usage: {prog} [-f cert-bundle.crt]")


def test_default_output_name_and_go_flag_rules(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "a.pem").write_bytes(pem(make_cert("A")))
    assert run_cli("mkbundle", "--nw", "1", "a.pem", cwd=tmp_path).status == 0
    assert (tmp_path / "cert-bundle.crt").exists()
    undefined = run_cli("mkbundle", "-ca", "x", "a.pem", cwd=tmp_path)
    assert undefined.status == 2 and undefined.stderr.startswith("flag provided but not defined: -ca\nusage: cfsslpy mkbundle")
    # flags after the first path are paths (Go's flag package stops there)
    late = run_cli("mkbundle", "a.pem", "-f", "y.crt", cwd=tmp_path)
    assert late.status == 1
    assert late.stderr.splitlines() == [
        "lstat -f: no such file or directory",
        "hint: flags must come before arguments: move -f before a.pem",
    ]
    assert run_cli("mkbundle", cwd=tmp_path).stderr.startswith("no PATH given\n")
    assert run_cli("mkbundle", "-nw", "0", "a.pem", cwd=tmp_path).status == 2
    assert run_cli("mkbundle", "-nw", "x", "a.pem", cwd=tmp_path).status == 2


def test_subprocess(pki: Pki, tmp_path: Path) -> None:
    directory = layout(pki, tmp_path / "in")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.run(
        [sys.executable, "-m", "cfsslpy", "mkbundle", "-f", "b.crt", str(directory)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[-1].endswith("Wrote 8 certificates.")
    assert "\r" not in proc.stderr
    assert len(bundle_ders(tmp_path / "b.crt")) == 8


def test_no_fetch_asks_no_server_and_keeps_the_certificates_unchecked(pki: Pki, tmp_path: Path, run_cli: RunCli) -> None:
    directory = layout(pki, tmp_path / "in")
    before = list(pki.responder.requests)
    result = build([str(directory)], BuildOptions(online=False))
    assert pki.responder.requests == before  # no CRL fetched, no OCSP responder asked
    # every certificate with an http CRL or OCSP URL (the LDAP CRL is never fetched anyway)
    assert sorted(cn(f.cert) for f in result.unchecked) == [
        "CRL good",
        "CRL good 2",
        "CRL revoked",
        "CRL unreachable",
        "OCSP good",
        "OCSP revoked",
        "OCSP unknown",
    ]
    assert {cn(f.cert) for f in result.unchecked} <= {cn(f.cert) for f in result.kept}
    assert result.unverified == [] and result.skipped == []
    assert sorted(d.reason.value for d in result.dropped) == ["duplicate", "expired", "not yet valid"]

    cli = run_cli("mkbundle", "-no-fetch", "-f", "out.crt", str(directory), cwd=tmp_path)
    assert cli.status == 0, cli.stderr
    assert pki.responder.requests == before
    lines = cli.stderr.splitlines()
    assert any(
        "[WARNING] Skipped the CRL and OCSP checks (-no-fetch): 7 certificates kept without a revocation check." in line for line in lines
    )
    assert sum("without a revocation check (-no-fetch)" in line and "[INFO] Keeping CN=" in line for line in lines) == 7
    assert lines[-1].endswith(f"[INFO] Wrote {len(result.kept)} certificates.")
    assert len(bundle_ders(tmp_path / "out.crt")) == len(result.kept) == 11
