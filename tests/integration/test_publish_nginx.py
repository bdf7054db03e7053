"""``ocsppublish`` served by a real nginx: the published tree behind the snippet the command writes, asked the
way RFC 5019 clients ask (percent-encoded GETs, and raw ones), each response verified by ``openssl ocsp
-respin`` against its issuer, headers checked; then a revocation and a second run change only that
certificate's files.

nginx (Debian's /usr/sbin/nginx) runs in the foreground as the current user, with its configuration, pid
file, logs and temporary paths in the test's directory, on a free loopback port; it is always stopped.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import json
import os
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import need
from test_ocsp import Cert, make_ca, make_leaf, make_responder, record

from cfsslpy.certdb import CertDB, DBConfig
from cfsslpy.cli.context import IO
from cfsslpy.cli.ocsppublish import COMMAND
from cfsslpy.cli.runner import run_command
from cfsslpy.inputs import Stdin
from cfsslpy.publish import request_der, request_name
from cfsslpy.x509util import key_identifier

pytestmark = [pytest.mark.integration, pytest.mark.openssl]

CACHE = "max-age=86400, public, no-transform, must-revalidate"  # -interval 96h: a quarter of it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nginx_binary() -> str:
    """Debian's nginx lives in /usr/sbin, which a non-root PATH often lacks; else whatever PATH has (or skip)."""
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else need("nginx")


@contextlib.contextmanager
def nginx(workdir: Path, snippet: Path) -> Iterator[int]:
    """nginx on a free loopback port serving ``snippet``'s locations (always stopped)."""
    binary = nginx_binary()
    port = free_port()
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi", "logs"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""  # as root, workers would otherwise drop to nobody
    conf = workdir / "nginx.conf"
    conf.write_text(
        f"""{user}daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/logs/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        include {snippet};
    }}
}}
"""
    )
    proc = subprocess.Popen(
        [binary, "-p", str(workdir), "-c", str(conf), "-e", str(workdir / "logs" / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"nginx exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if time.monotonic() > deadline:
                raise AssertionError("nginx did not start listening")
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def get(port: int, path: str) -> Response:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def openssl_status(tmp: Path, body: bytes, issuer: Path, leaf: Path, algorithm: str) -> str:
    """``openssl ocsp -respin``: the response verifies against the issuer; the certificate's status."""
    respin = tmp / "resp.der"
    respin.write_bytes(body)
    result = subprocess.run(
        [
            need("openssl"),
            "ocsp",
            "-respin",
            str(respin),
            "-issuer",
            str(issuer),
            "-CAfile",
            str(issuer),
            f"-{algorithm}",
            "-cert",
            str(leaf),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "Response verify OK" in result.stderr + result.stdout
    line = next(line for line in result.stdout.splitlines() if line.startswith(f"{leaf}:"))
    return line.split(":", 1)[1].strip()


class PKI:
    """Two CAs: an EC one answering for itself (and signing its CRL), an RSA one with a delegated responder."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.a = make_ca("p256#nginx-a", "Static CA A")
        self.b = make_ca("rsa2048#nginx-b", "Static CA B")
        self.b_responder = make_responder(self.b, "p256")
        self.leaves: list[tuple[Cert, Cert, Path]] = []  # (leaf, its CA, its PEM file)
        self.db = CertDB(DBConfig("sqlite3", str(tmp / "certs.db")))
        for ca, prefix in ((self.a, "a"), (self.b, "b")):
            for i in range(6):
                leaf = make_leaf(ca, f"{prefix}{i}.example")
                self.db.insert_certificate(record(leaf))
                pem = tmp / "leaves" / f"{prefix}{i}.pem"
                pem.parent.mkdir(exist_ok=True)
                pem.write_text(leaf.pem)
                self.leaves.append((leaf, ca, pem))
        self.a_pem, self.a_key = self.a.write(tmp / "ca", "a")
        self.b_pem, _ = self.b.write(tmp / "ca", "b")
        self.r_pem, self.r_key = self.b_responder.write(tmp / "ca", "b-ocsp")
        config = tmp / "db.json"
        config.write_text(json.dumps({"driver": "sqlite3", "data_source": str(tmp / "certs.db")}))
        self.argv = [
            "-db-config", str(config),
            "-ca", f"{self.a_pem},{self.b_pem}",
            "-responder", f"{self.a_pem},{self.r_pem}",
            "-responder-key", f"{self.a_key},{self.r_key}",
            "-ca-key", f"{self.a_key},",
            "-dir", str(tmp / "pub"),
            "-nginx", str(tmp / "nginx" / "ocsp.conf"),
            "-path", "/ocsp",
        ]  # fmt: skip

    def publish(self) -> str:
        out, err = io.StringIO(), io.StringIO()
        ctx = IO(stdin=Stdin(io.BytesIO(b"")), stdout=out, stderr=err, environ=dict(os.environ))
        status = run_command(COMMAND, self.argv, ctx, "cfsslpy ocsppublish")
        assert status == 0, err.getvalue()
        return str(err.getvalue())

    def issuer_pem(self, ca: Cert) -> Path:
        return self.a_pem if ca is self.a else self.b_pem


def url(leaf: Cert, ca: Cert, algorithm: str, *, encode: bool = True) -> str:
    name = request_name(request_der(leaf.cert, ca.cert, algorithm))
    return "/ocsp/" + (urllib.parse.quote(name, safe="") if encode else name)


def test_nginx_serves_the_published_tree(tmp_path: Path) -> None:
    nginx_binary()
    need("openssl")
    pki = PKI(tmp_path)
    pki.publish()
    pub = tmp_path / "pub"
    # backdate every response, so that a file the next run leaves alone is told apart whatever the clock
    index = json.loads((pub / "index.json").read_text())
    files = {e["serial"]: [pub / p for p in e["paths"]] for e in index["certificates"]}
    assert len(files) == 12 and all(len(paths) == 2 for paths in files.values())
    old = 1_000_000_000
    for paths in files.values():
        for p in paths:
            os.utime(p, ns=(old * 10**9, old * 10**9))
    with nginx(tmp_path / "nginx-run", tmp_path / "nginx" / "ocsp.conf") as port:
        etags: dict[str, str] = {}
        for leaf, ca, pem in pki.leaves:
            for algorithm in ("sha1", "sha256"):
                path = url(leaf, ca, algorithm)
                resp = get(port, path)
                assert resp.status == 200, (path, resp.status)
                assert resp.headers["content-type"] == "application/ocsp-response"
                assert resp.headers["cache-control"] == CACHE
                assert resp.headers["etag"]
                etags[path] = resp.headers["etag"]
                assert openssl_status(tmp_path, resp.body, pki.issuer_pem(ca), pem, algorithm) == "good"
                # the same request unencoded ('/', '+' and '=' as they are) reaches the same file
                assert get(port, url(leaf, ca, algorithm, encode=False)).body == resp.body
        assert any("%2F" in url(leaf, ca, a) for leaf, ca, _ in pki.leaves for a in ("sha1", "sha256"))
        # the two rare shapes of a name (cfsslpy.publish.naming): "//" inside, "/" at the end
        (pub / "ocsp" / "Zz" / "Yy").mkdir(parents=True)
        (pub / "ocsp" / "Zz" / "Yy" / "_").write_bytes(b"trailing")
        (pub / "ocsp" / "Zz" / "Xx==").write_bytes(b"double")
        for path, body in (("/ocsp/Zz%2FYy%2F", b"trailing"), ("/ocsp/Zz%2F%2FXx%3D%3D", b"double"), ("/ocsp/Zz//Xx==", b"double")):
            resp = get(port, path)
            assert (resp.status, resp.body, resp.headers["content-type"]) == (200, body, "application/ocsp-response"), path
        # a certificate nobody issued here: 404, not some other response
        assert get(port, "/ocsp/" + urllib.parse.quote(base64.b64encode(b"0\x03\x02\x01\x00").decode(), safe="")).status == 404
        # CRLs: CA A's (its key was given), none for B (delegated responder, no -ca-key)
        aki = key_identifier(pki.a.cert).hex()
        crl = get(port, f"/crl/{aki}.crl")
        assert crl.status == 200 and crl.headers["content-type"] == "application/pkix-crl"
        assert crl.headers["cache-control"].startswith("max-age=") and crl.headers["etag"]
        assert crl.body == (pub / "crl" / f"{aki}.crl").read_bytes()
        pem = get(port, f"/crl/{aki}.pem")
        assert pem.status == 200 and pem.body.startswith(b"-----BEGIN X509 CRL-----")
        check = subprocess.run(
            [need("openssl"), "crl", "-inform", "DER", "-in", str(pub / "crl" / f"{aki}.crl"), "-CAfile", str(pki.a_pem), "-noout"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert check.returncode == 0 and "verify OK" in check.stdout + check.stderr
        assert get(port, f"/crl/{key_identifier(pki.b.cert).hex()}.crl").status == 404

        # revoke one certificate of each CA, publish again: only their files change
        victims = [pki.leaves[2], pki.leaves[8]]
        for leaf, ca, _ in victims:
            pki.db.revoke(str(leaf.cert.serial_number), key_identifier(ca.cert).hex(), 1)
        log = pki.publish()
        assert "4 response file(s) written, 20 kept" in log
        victim_serials = {str(leaf.cert.serial_number) for leaf, _, _ in victims}
        for serial, paths in files.items():
            for p in paths:
                touched = p.stat().st_mtime_ns != old * 10**9
                assert touched == (serial in victim_serials), p
        for leaf, ca, pem in pki.leaves:
            for algorithm in ("sha1", "sha256"):
                path = url(leaf, ca, algorithm)
                resp = get(port, path)
                revoked = str(leaf.cert.serial_number) in victim_serials
                assert (resp.headers["etag"] != etags[path]) == revoked
                assert openssl_status(tmp_path, resp.body, pki.issuer_pem(ca), pem, algorithm) == ("revoked" if revoked else "good")
        crl2 = get(port, f"/crl/{aki}.crl")
        assert crl2.headers["etag"] != crl.headers["etag"]
