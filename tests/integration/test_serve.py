"""``serve`` as users run it: a real process on a loopback port, driven over HTTP(S).

Every server binds 127.0.0.1 on a port the kernel picks (``-port 0``; the URL is read from the
"Now listening" log line) and is always stopped (SIGTERM, then SIGKILL) by the ``serving`` context manager.
A few tests drive :class:`cfsslpy.api.server.Worker` in-process with a trivial WSGI app, where a deadline
must be short to be testable.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import CA, RunCli, make_ca, need
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cfsslpy.api import server as srv
from cfsslpy.api.endpoints import MAX_OUTBOUND
from tests.cli.errlines import error_line

pytestmark = [pytest.mark.integration]

SIGN = "/api/v1/cfssl/sign"
HEALTH = "/api/v1/cfssl/health"
START_TIMEOUT = 30.0
LISTENING = re.compile(r"Now listening (?:with mutual TLS )?on (\S+)")


# ---------------------------------------------------------------------------------------------------------
# A serve process


@dataclass
class Serve:
    proc: subprocess.Popen[str]
    url: str = ""
    lines: list[str] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1].rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def log(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """The first log line matching ``pattern``; fails when the process exits or ``timeout`` passes."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._cond.wait(0.2)):
                    pytest.fail(f"no log line matching {pattern!r} (exit status {self.proc.poll()}):\n" + "\n".join(self.lines))
                self._cond.wait(min(left, 0.2))

    def children(self) -> set[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return {int(p) for p in path.read_text().split()}

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                pytest.fail("serve did not stop within {timeout}s of SIGTERM:\n" + self.log)
        return self.proc.returncode


def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "cfsslpy", "serve", "-address", "127.0.0.1", "-port", "0", *args]


@contextlib.contextmanager
def serving(*args: str, cwd: Path | None = None) -> Iterator[Serve]:
    """Start ``cfsslpy serve ARGS`` and wait until it listens; always stopped (and reaped) afterwards."""
    proc = subprocess.Popen(
        serve_command(*args), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=cwd
    )
    server = Serve(proc)
    pump = threading.Thread(target=server._pump, daemon=True)
    pump.start()
    try:
        server.url = server.wait_for(LISTENING.pattern, START_TIMEOUT).group(1)
        yield server
    finally:
        try:
            server.stop()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            pump.join(5)
            assert proc.stderr is not None
            proc.stderr.close()


def run_serve(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """A serve that is expected to refuse to start."""
    return subprocess.run(serve_command(*args), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------------------------------------------------
# Clients and certificates


def new_csr(
    cn: str = "www.example.net", hosts: tuple[str, ...] = ("www.example.net", "127.0.0.1")
) -> tuple[str, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for h in hosts:
        if h[0].isdigit():
            import ipaddress

            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        else:
            sans.append(x509.DNSName(h))
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode(), key


def sign_body(csr: str | None = None) -> bytes:
    return json.dumps({"certificate_request": csr or new_csr()[0]}).encode()


def post(url: str, body: bytes, context: ssl.SSLContext | None = None, timeout: float = 20.0) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def issue(run_cli: RunCli, ca: CA, name: str, cn: str, hosts: str = "") -> tuple[Path, Path]:
    """A leaf from ``ca`` (server auth + client auth, cfssl's default policy) written as NAME.pem / NAME-key.pem."""
    spec = ca.dir / f"{name}-csr.json"
    spec.write_text(json.dumps({"CN": cn, "key": {"algo": "ecdsa", "size": 256}}))
    args = ["gencert", "-ca", str(ca.cert), "-ca-key", str(ca.key)] + (["-hostname", hosts] if hosts else []) + [str(spec)]
    result = run_cli(*args)
    assert result.status == 0, result.stderr
    cert, key = ca.dir / f"{name}.pem", ca.dir / f"{name}-key.pem"
    cert.write_text(result.json["cert"])
    key.write_text(result.json["key"])
    return cert, key


def load_cert(pem_text: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem_text.encode())


@pytest.fixture
def ca(run_cli: RunCli, tmp_path: Path) -> CA:
    return make_ca(run_cli, tmp_path / "ca")


# ---------------------------------------------------------------------------------------------------------
# HTTP: signing, data directory, keep-alive, limits


def test_sign_with_a_datadir_ca_and_reuse_it_on_the_next_run(tmp_path: Path) -> None:
    data = tmp_path / "data"
    csr, key = new_csr()
    with serving("-datadir", str(data)) as server:
        assert "initialised a new CA" in server.log
        status, doc = post(server.url + SIGN, sign_body(csr))
        assert status == 200, doc
        assert list(doc) == ["success", "result", "errors", "messages"] and doc["success"] is True
        cert = load_cert(doc["result"]["certificate"])
        access = server.wait_for(r"method=POST path=/api/v1/cfssl/sign status=200").string
        assert "remote=127.0.0.1" in access
    ca_cert = x509.load_pem_x509_certificate((data / "ca.pem").read_bytes())
    cert.verify_directly_issued_by(ca_cert)
    assert cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "cfsslpy serve CA"
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "www.example.net"
    assert cert.public_key() == key.public_key()
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["www.example.net"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert 364 <= lifetime.days <= 366
    # the second run signs with the same CA
    with serving("-datadir", str(data)) as server:
        assert "using the CA in" in server.log and "initialised" not in server.log
        status, doc = post(server.url + SIGN, sign_body())
        assert status == 200
        load_cert(doc["result"]["certificate"]).verify_directly_issued_by(ca_cert)


def test_keep_alive_serves_two_requests_on_one_connection(ca: CA) -> None:
    with serving("-ca", str(ca.cert), "-ca-key", str(ca.key)) as server:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
        try:
            conn.request("POST", SIGN, body=sign_body(), headers={"Content-Type": "application/json"})
            first = conn.getresponse()
            assert first.status == 200 and first.getheader("Connection") is None
            first.read()
            sock = conn.sock
            assert sock is not None
            conn.request("GET", HEALTH)
            second = conn.getresponse()
            assert second.status == 200 and json.loads(second.read())["result"] == {"healthy": True}
            assert conn.sock is sock  # http.client reconnects silently when the server closed: it did not
        finally:
            conn.close()


def raw_exchange(host: str, port: int, head: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    """Send ``head`` as is; the response's status and body."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(head)
        resp = http.client.HTTPResponse(sock)
        try:
            resp.begin()
            return resp.status, resp.read()
        finally:
            resp.close()


def test_oversized_body_is_refused_before_it_is_read(ca: CA) -> None:
    with serving("-ca", str(ca.cert), "-ca-key", str(ca.key)) as server:
        # only the headers are sent: the answer must not wait for two megabytes that never come
        status, raw = raw_exchange(
            server.host, server.port, b"POST " + SIGN.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n"
        )
        body = json.loads(raw)
        assert status == 413
        assert body == {
            "success": False,
            "result": None,
            "errors": [{"code": 413, "message": body["errors"][0]["message"]}],
            "messages": [],
        }
        assert "too large" in body["errors"][0]["message"]
        # headers beyond the limit: 431
        status, raw = raw_exchange(
            server.host, server.port, b"GET " + HEALTH.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
        )
        assert status == 431 and json.loads(raw)["errors"][0]["code"] == 431


def test_slow_clients_do_not_starve_a_normal_request(ca: CA) -> None:
    with serving("-ca", str(ca.cert), "-ca-key", str(ca.key)) as server:
        slow = []
        stop = threading.Event()
        try:
            for _ in range(32):
                s = socket.create_connection((server.host, server.port), timeout=5)
                s.sendall(b"POST " + SIGN.encode() + b" HTTP/1.1\r\n")
                slow.append(s)

            def dribble() -> None:
                while not stop.wait(1.0):
                    for s in slow:
                        with contextlib.suppress(OSError):
                            s.send(b"X")

            threading.Thread(target=dribble, daemon=True).start()
            time.sleep(1.5)
            started = time.monotonic()
            status, _ = post(server.url + SIGN, sign_body(), timeout=10)
            elapsed = time.monotonic() - started
            assert status == 200
            assert elapsed < 2.0, f"a normal request took {elapsed:.1f}s while 32 clients dribbled headers"
        finally:
            stop.set()
            for s in slow:
                s.close()


# ---------------------------------------------------------------------------------------------------------
# In-process worker: deadlines for slow clients and TLS handshakes


def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = b"hello\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@contextlib.contextmanager
def in_process(options: srv.ServerOptions, context: ssl.SSLContext | None = None) -> Iterator[tuple[str, int]]:
    listener = srv.bind("127.0.0.1", 0)
    worker = srv.Worker(hello, options, listener, context, multiprocess=False)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[:2]
    finally:
        worker.stop()
        thread.join(10)
        listener.close()
        assert not thread.is_alive()


@pytest.mark.parametrize("stage", ["headers", "tls-handshake"])
def test_a_client_that_dribbles_is_cut_off_at_the_deadline(ca: CA, run_cli: RunCli, stage: str) -> None:
    context = None
    if stage == "tls-handshake":
        cert, key = issue(run_cli, ca, "server", "localhost", "localhost,127.0.0.1")
        context = srv.tls_context(srv.TLSOptions(str(cert), str(key)))
    with in_process(srv.ServerOptions(header_timeout=1.0), context) as (host, port):
        s = socket.create_connection((host, port), timeout=10)
        dribble = iter(b"GET / HTTP/1.1\r\nX-Slow: " + b"a" * 100)  # a valid request, one byte at a time
        try:
            started = time.monotonic()
            closed = None
            while time.monotonic() - started < 6:
                try:
                    s.send(bytes([next(dribble)]) if stage == "headers" else b"\x16")
                    s.settimeout(0.3)
                    if s.recv(100) == b"":
                        closed = time.monotonic() - started
                        break
                except TimeoutError:
                    continue
                except OSError:
                    closed = time.monotonic() - started
                    break
            assert closed is not None and 0.9 <= closed < 3.0, closed
        finally:
            s.close()


def test_inline_requests_run_on_the_loop_thread_and_the_rest_never_block_it() -> None:
    seen: dict[str, int] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        seen[path] = threading.get_ident()
        if path == "/slow":
            time.sleep(1.5)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
        return [b"ok\n"]

    listener = srv.bind("127.0.0.1", 0)
    worker = srv.Worker(app, srv.ServerOptions(inline=lambda method, path: path == "/fast"), listener, None, multiprocess=False)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    host, port = listener.getsockname()[:2]
    try:
        slow = http.client.HTTPConnection(host, port, timeout=10)
        slow.request("GET", "/slow")
        time.sleep(0.2)
        fast = http.client.HTTPConnection(host, port, timeout=10)
        started = time.monotonic()
        for _ in range(3):
            fast.request("GET", "/fast")
            assert fast.getresponse().read() == b"ok\n"
        assert time.monotonic() - started < 1.0, "an inline request waited for a slow threaded one"
        assert slow.getresponse().read() == b"ok\n"
        assert seen["/fast"] == thread.ident  # the event-loop thread
        assert seen["/slow"] != thread.ident  # one of waitress's threads
        slow.close()
        fast.close()
    finally:
        worker.stop()
        thread.join(10)
        listener.close()


def test_tls_streams_a_large_response_to_a_slow_reader(ca: CA, run_cli: RunCli) -> None:
    big = os.urandom(3 * 1024 * 1024)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(big)))])
        return [big]

    cert, key = issue(run_cli, ca, "server", "localhost", "localhost,127.0.0.1")
    context = srv.tls_context(srv.TLSOptions(str(cert), str(key)))
    listener = srv.bind("127.0.0.1", 0)
    worker = srv.Worker(app, srv.ServerOptions(), listener, context, multiprocess=False)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        client = ssl.create_default_context(cafile=str(ca.cert))
        conn = http.client.HTTPSConnection("localhost", listener.getsockname()[1], context=client, timeout=20)
        for pause in (0.0, 0.002):
            conn.request("GET", "/")
            resp = conn.getresponse()
            got = bytearray()
            while chunk := resp.read(256 * 1024):
                got += chunk
                time.sleep(pause)
            assert resp.status == 200 and bytes(got) == big
        conn.close()
    finally:
        worker.stop()
        thread.join(10)
        listener.close()


# ---------------------------------------------------------------------------------------------------------
# HTTPS and mutual TLS


def test_https_with_a_certificate_from_our_ca(ca: CA, run_cli: RunCli) -> None:
    cert, key = issue(run_cli, ca, "server", "localhost", "localhost,127.0.0.1")
    with serving("-ca", str(ca.cert), "-ca-key", str(ca.key), "-tls-cert", str(cert), "-tls-key", str(key)) as server:
        assert server.url.startswith("https://127.0.0.1:")
        client = ssl.create_default_context(cafile=str(ca.cert))
        status, doc = post(server.url + SIGN, sign_body(), context=client)
        assert status == 200 and doc["success"]
        with socket.create_connection((server.host, server.port)) as raw, client.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            assert x509.load_der_x509_certificate(tls.getpeercert(binary_form=True) or b"") == load_cert(cert.read_text())


def test_min_tls_version_1_3(ca: CA, run_cli: RunCli) -> None:
    cert, key = issue(run_cli, ca, "server", "localhost", "localhost,127.0.0.1")
    with serving("-tls-cert", str(cert), "-tls-key", str(key), "-min-tls-version", "1.3") as server:
        tls12 = ssl.create_default_context(cafile=str(ca.cert))
        tls12.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(ssl.SSLError), socket.create_connection((server.host, server.port)) as raw:
            tls12.wrap_socket(raw, server_hostname="127.0.0.1")
        tls13 = ssl.create_default_context(cafile=str(ca.cert))
        with socket.create_connection((server.host, server.port)) as raw, tls13.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() == "TLSv1.3"
    result = run_serve("-tls-cert", str(cert), "-tls-key", str(key), "-min-tls-version", "1.0")
    assert result.returncode == 2 and "below 1.2 are not supported" in result.stderr


def test_mutual_tls(ca: CA, run_cli: RunCli, tmp_path: Path) -> None:
    cert, key = issue(run_cli, ca, "server", "localhost", "localhost,127.0.0.1")
    good = issue(run_cli, ca, "good", "client-good")
    bad = issue(run_cli, ca, "bad", "client-bad")
    stranger_ca = make_ca(run_cli, tmp_path / "stranger")
    stranger = issue(run_cli, stranger_ca, "stranger", "client-good")
    args = ["-ca", str(ca.cert), "-ca-key", str(ca.key), "-tls-cert", str(cert), "-tls-key", str(key)]
    with serving(*args, "-mutual-tls-ca", str(ca.cert), "-mutual-tls-cn", "^client-go+d$") as server:
        assert "Now listening with mutual TLS on https://" in server.log

        def client(pair: tuple[Path, Path] | None) -> ssl.SSLContext:
            ctx = ssl.create_default_context(cafile=str(ca.cert))
            if pair is not None:
                ctx.load_cert_chain(str(pair[0]), str(pair[1]))
            return ctx

        # no client certificate, or one from another CA: the handshake is refused (TLS 1.3 reports it on
        # the first read, so the refusal may surface as an SSL error or a reset connection)
        for ctx in (client(None), client(stranger)):
            conn = http.client.HTTPSConnection(server.host, server.port, context=ctx, timeout=10)
            with pytest.raises((ssl.SSLError, ConnectionError)):
                conn.request("POST", SIGN, body=sign_body())
                conn.getresponse()
            conn.close()
        server.wait_for(r"\[WARNING\] TLS handshake error from 127\.0\.0\.1:\d+: ")
        # a client certificate whose CN does not match: 403 "Invalid CN" in plain text, as cfssl
        req = urllib.request.Request(server.url + SIGN, data=sign_body(), method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=10, context=client(bad))
        assert refused.value.code == 403
        assert refused.value.read() == b"Invalid CN\n"
        assert refused.value.headers["Content-Type"] == "text/plain; charset=utf-8"
        server.wait_for(r'\[WARNING\] Rejected client cert CN "client-bad" does not match regex \^client-go\+d\$')
        status, doc = post(server.url + SIGN, sign_body(), context=client(good))
        assert status == 200 and doc["success"]


# ---------------------------------------------------------------------------------------------------------
# Pre-fork workers, shutdown


def socket_owner(server_port: int, client_port: int, pids: set[int]) -> int | None:
    """The process holding the server side of the loopback connection from ``client_port`` (Linux /proc)."""
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    inode = next(
        (f[9] for f in (line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]) if f[1] == local and f[2] == remote),
        None,
    )
    if inode is None:
        return None
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                        return pid
    return None


def wait_until(check: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    return check()


def test_workers_share_the_load_and_a_killed_worker_is_replaced(ca: CA) -> None:
    with serving("-ca", str(ca.cert), "-ca-key", str(ca.key), "-workers", "2") as server:
        assert "(2 worker processes)" in server.log
        workers = wait_until(lambda: len(server.children()) == 2 and server.children())
        assert workers and len(workers) == 2
        # keep-alive connections are spread evenly: a worker stops accepting while it is two ahead
        conns = [http.client.HTTPConnection(server.host, server.port, timeout=10) for _ in range(8)]
        owners: list[int | None] = []
        try:
            for conn in conns:
                conn.request("POST", SIGN, body=sign_body(), headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                assert resp.status == 200
                resp.read()
                assert conn.sock is not None
                owners.append(socket_owner(server.port, conn.sock.getsockname()[1], workers))
        finally:
            for conn in conns:
                conn.close()
        counts = sorted(owners.count(pid) for pid in workers)
        assert set(owners) == workers and counts[1] - counts[0] <= 2, f"8 connections spread as {counts}"
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        replaced = wait_until(lambda: (kids := server.children()) and len(kids) == 2 and victim not in kids and kids)
        assert replaced and len(replaced) == 2 and (workers - {victim}) < replaced
        server.wait_for(rf"\[WARNING\] worker {victim} died \(killed by signal 9\); starting a new one")
        for _ in range(4):
            assert post(server.url + SIGN, sign_body())[0] == 200
        assert server.stop() == 0
    assert all(not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text() for pid in replaced)


@pytest.mark.parametrize(("workers", "signum"), [("1", signal.SIGTERM), ("2", signal.SIGTERM), ("1", signal.SIGINT)])
def test_a_stop_signal_lets_a_request_in_progress_finish(ca: CA, workers: str, signum: signal.Signals) -> None:
    with serving("-ca", str(ca.cert), "-ca-key", str(ca.key), "-workers", workers) as server:
        body = sign_body()
        sock = socket.create_connection((server.host, server.port), timeout=15)
        try:
            head = f"POST {SIGN} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            sock.sendall(head.encode() + body[:50])
            time.sleep(0.5)  # the server has accepted and is reading the body
            server.proc.send_signal(signum)
            time.sleep(0.7)
            assert server.proc.poll() is None, "serve exited with a request in progress"
            with pytest.raises(ConnectionRefusedError):  # no longer accepting
                socket.create_connection((server.host, server.port), timeout=2).close()
            sock.sendall(body[50:])
            resp = http.client.HTTPResponse(sock)
            resp.begin()
            assert resp.status == 200 and resp.getheader("Connection") == "close"
            assert json.loads(resp.read())["success"] is True
        finally:
            sock.close()
        server.proc.wait(20)
        assert server.proc.returncode == 0, server.log


def test_loglevel_applies_in_the_workers(ca: CA, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cmd = [sys.executable, "-m", "cfsslpy", "serve", "-port", str(port), "-workers", "2", "-loglevel", "2"]
    cmd += ["-ca", str(ca.cert), "-ca-key", str(ca.key)]
    with (tmp_path / "stderr").open("w+") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        try:
            assert wait_until(lambda: post(f"http://127.0.0.1:{port}{SIGN}", sign_body())[0] == 200 if _listening(port) else False)
            for _ in range(3):
                assert post(f"http://127.0.0.1:{port}{SIGN}", sign_body())[0] == 200
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        err.seek(0)
        lines = err.read().splitlines()
    assert lines and all("[INFO]" not in line and "[DEBUG]" not in line for line in lines), lines


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------------------
# Startup errors


def test_a_broken_ca_stops_the_server(tmp_path: Path, ca: CA) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    result = run_serve("-ca", str(garbage), "-ca-key", str(ca.key))
    assert result.returncode == 1
    assert json.loads(result.stderr.strip().splitlines()[-1])["code"] in (1002, 1003)
    assert "Now listening" not in result.stderr
    result = run_serve("-ca", str(ca.cert))
    assert result.returncode == 1 and error_line(result.stderr).endswith("need CA key (provide one with -ca-key)")
    other = make_ca_pair(tmp_path)
    result = run_serve("-ca", str(ca.cert), "-ca-key", str(other))
    assert result.returncode == 1 and json.loads(result.stderr.strip().splitlines()[-1])["code"] == 2300


def make_ca_pair(tmp_path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "other-key.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    )
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-datadir", "d", "-ca", "ca.pem"], "-datadir brings its own CA and signing config"),
        (["-tls-cert", "c.pem"], "-tls-cert and -tls-key go together"),
        (["-mutual-tls-ca", "ca.pem"], "need HTTPS"),
        (["-workers", "-1"], "-workers must be 0"),
        (["extra"], "argument is provided but not defined"),
    ],
)
def test_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    proc = subprocess.run(serve_command(*args), capture_output=True, text=True, cwd=tmp_path, timeout=30)
    assert proc.returncode in (1, 2) and message in proc.stderr
    assert not (tmp_path / "d").exists()


def test_without_a_ca_only_the_signerless_endpoints_are_served(tmp_path: Path) -> None:
    with serving(cwd=tmp_path) as server:
        assert "couldn't initialize signer" in server.log
        status, doc = post(server.url + SIGN, sign_body())
        assert status == 404 and doc["success"] is False
        with urllib.request.urlopen(server.url + HEALTH, timeout=10) as resp:
            assert json.loads(resp.read())["result"] == {"healthy": True}


def test_serve_with_remote_forwards_to_another_server(ca: CA) -> None:
    with serving("-ca", str(ca.cert), "-ca-key", str(ca.key)) as upstream, serving("-remote", upstream.url) as front:
        assert "couldn't initialize signer" not in front.log
        status, doc = post(front.url + SIGN, sign_body())
        assert status == 200, doc
        load_cert(doc["result"]["certificate"]).verify_directly_issued_by(x509.load_pem_x509_certificate(ca.cert.read_bytes()))
        upstream.wait_for(r"path=/api/v1/cfssl/sign status=200")


def test_a_port_in_use_is_reported(ca: CA) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "cfsslpy", "serve", "-port", str(port), "-ca", str(ca.cert), "-ca-key", str(ca.key)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert proc.returncode == 1 and f"listen tcp 127.0.0.1:{port}: bind: address already in use" in proc.stderr


# ---------------------------------------------------------------------------------------------------------
# Interop: the real cfssl as a client of our serve


AUTH_KEY = "0123456789ABCDEF0123456789ABCDEF"


@pytest.mark.cfssl
def test_cfssl_gencert_and_sign_remote_against_our_serve(ca: CA, tmp_path: Path) -> None:
    cfssl = need("cfssl")
    csr_json = tmp_path / "csr.json"
    csr_json.write_text(json.dumps({"CN": "interop.example.net", "hosts": ["interop.example.net"], "key": {"algo": "ecdsa", "size": 256}}))
    csr_pem, _ = new_csr("signed.example.net", ("signed.example.net",))
    (tmp_path / "req.csr").write_text(csr_pem)
    with serving("-ca", str(ca.cert), "-ca-key", str(ca.key)) as server:
        gen = subprocess.run(
            [cfssl, "gencert", "-remote", server.url, str(csr_json)], capture_output=True, text=True, timeout=60, cwd=tmp_path
        )
        assert gen.returncode == 0, gen.stderr
        cert = load_cert(json.loads(gen.stdout)["cert"])
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.cert.read_bytes()))
        assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == [
            "interop.example.net"
        ]
        signed = subprocess.run([cfssl, "sign", "-remote", server.url, "req.csr"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert signed.returncode == 0, signed.stderr
        assert load_cert(json.loads(signed.stdout)["cert"]).subject.rfc4514_string() == "CN=signed.example.net"


@pytest.mark.cfssl
def test_cfssl_authenticated_remote_against_our_serve(ca: CA, tmp_path: Path) -> None:
    cfssl = need("cfssl")
    server_config = tmp_path / "server.json"
    server_config.write_text(
        json.dumps(
            {
                "signing": {"default": {"expiry": "720h", "usages": ["digital signature", "server auth"], "auth_key": "primary"}},
                "auth_keys": {"primary": {"type": "standard", "key": AUTH_KEY}},
            }
        )
    )
    csr_json = tmp_path / "csr.json"
    csr_json.write_text(json.dumps({"CN": "auth.example.net", "hosts": ["auth.example.net"], "key": {"algo": "ecdsa", "size": 256}}))

    def client_config(url: str, key: str) -> Path:
        path = tmp_path / f"client-{key[:4]}.json"
        path.write_text(
            json.dumps(
                {
                    "signing": {"default": {"auth_remote": {"remote": "ours", "auth_key": "k"}}},
                    "auth_keys": {"k": {"type": "standard", "key": key}},
                    "remotes": {"ours": url},
                }
            )
        )
        return path

    with serving("-ca", str(ca.cert), "-ca-key", str(ca.key), "-config", str(server_config)) as server:
        good = subprocess.run(
            [cfssl, "gencert", "-config", str(client_config(server.url, AUTH_KEY)), str(csr_json)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert good.returncode == 0, good.stderr
        load_cert(json.loads(good.stdout)["cert"]).verify_directly_issued_by(x509.load_pem_x509_certificate(ca.cert.read_bytes()))
        server.wait_for(r"path=/api/v1/cfssl/authsign status=200")
        wrong = subprocess.run(
            [cfssl, "gencert", "-config", str(client_config(server.url, "F" * 32)), str(csr_json)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert wrong.returncode != 0 or not wrong.stdout.strip()
        assert "invalid token" in wrong.stderr
        # without the key, plain /sign is not even registered: every profile needs authentication
        unauthenticated = subprocess.run(
            [cfssl, "gencert", "-remote", server.url, str(csr_json)], capture_output=True, text=True, timeout=60
        )
        assert not unauthenticated.stdout.strip() and "7400" in unauthenticated.stderr


# ---------------------------------------------------------------------------------------------------------
# Browser-borne requests (issue 10, item 4): a real -datadir server on loopback


def raw_post(port: int, path: str, body: bytes, headers: dict[str, str], timeout: float = 20.0) -> tuple[int, dict[str, Any]]:
    """A POST with exactly these headers (http.client adds only Host unless told otherwise, and Content-Length)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest("POST", path, skip_host="Host" in headers, skip_accept_encoding=True)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def raw_get(port: int, path: str, host: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host)
        conn.endheaders()
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def db_status(data: Path, serial: int) -> str:
    import sqlite3

    with contextlib.closing(sqlite3.connect(data / "certs.db")) as conn:
        (row,) = conn.execute("SELECT status FROM certificates WHERE serial_number = ?", (str(serial),)).fetchall()
    return str(row[0])


def test_a_web_page_cannot_revoke_sign_or_make_keys_on_a_datadir_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serving("-datadir", str(data)) as server:
        port, origin = server.port, server.url
        json_type = {"Content-Type": "application/json"}
        status, doc = raw_post(port, SIGN, sign_body(), json_type)
        assert status == 200, doc
        cert = load_cert(doc["result"]["certificate"])
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
        assert aki is not None
        revoke = json.dumps({"serial": str(cert.serial_number), "authority_key_id": aki.hex(), "reason": "keyCompromise"}).encode()
        refused = [
            {"Content-Type": "text/plain"},  # a cross-site <form enctype=text/plain> or fetch(no-cors)
            {"Content-Type": "application/x-www-form-urlencoded"},
            {"Content-Type": "application/json", "Origin": "http://evil.example"},
            {"Content-Type": "application/json", "Origin": "null"},
            {"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"},
            {"Content-Type": "application/json", "Host": f"rebind.evil.example:{port}"},
        ]
        for headers in refused:
            for path, body in (("/api/v1/cfssl/revoke", revoke), (SIGN, sign_body()), ("/api/v1/cfssl/newcert", b'{"request":{"CN":"x"}}')):
                status, doc = raw_post(port, path, body, headers)
                assert status in (403, 415), (headers, path, status, doc)
                assert doc["success"] is False and doc["result"] is None and doc["errors"][0]["code"] == status
        assert db_status(data, cert.serial_number) == "good"
        # same origin (the web UI) and plain cfssl clients are served
        same = {"Content-Type": "application/json; charset=utf-8", "Origin": origin, "Sec-Fetch-Site": "same-origin"}
        status, doc = raw_post(port, "/api/v1/cfssl/revoke", revoke, same)
        assert status == 200, doc
        assert db_status(data, cert.serial_number) == "revoked"
        assert "revoke is enabled without authentication" in server.log


def test_a_foreign_host_is_refused_and_allowed_hosts_admits_a_name(ca: CA) -> None:
    with serving("-ca", str(ca.cert), "-ca-key", str(ca.key), "-allowed-hosts", "ca.example.test") as server:
        port = server.port
        for host in (f"127.0.0.1:{port}", "localhost", f"[::1]:{port}", f"ca.example.test:{port}", "CA.Example.Test."):
            assert raw_get(port, HEALTH, host) == 200, host
            assert raw_get(port, "/", host) == 200, host
        for host in (f"evil.example:{port}", "ca.example.test.evil.example", "10.0.0.1"):
            assert raw_get(port, HEALTH, host) == 403, host
            assert raw_get(port, "/", host) == 403, host  # the web UI
        status, doc = raw_post(
            port, "/api/v1/cfssl/newkey", b'{"request":{"CN":"x"}}', {"Content-Type": "application/json", "Host": f"evil.example:{port}"}
        )
        assert status == 403 and "key" not in json.dumps(doc["result"])
        assert "-allowed-hosts" in doc["errors"][0]["message"]


def test_datadir_off_loopback_does_not_enable_revoke(tmp_path: Path) -> None:
    with serving("-datadir", str(tmp_path / "data"), "-address", "0.0.0.0") as server:
        assert "revoke is disabled: -datadir enables it only on a loopback address" in server.log
        status, doc = raw_post(server.port, "/api/v1/cfssl/revoke", b"{}", {"Content-Type": "application/json", "Host": "127.0.0.1"})
        assert status == 404, doc
        status, doc = raw_post(server.port, SIGN, sign_body(), {"Content-Type": "application/json", "Host": "127.0.0.1"})
        assert status == 200, doc


# ---------------------------------------------------------------------------------------------------------
# Outbound fetches (issue 10, item 5)

CERTINFO = "/api/v1/cfssl/certinfo"
JSON = {"Content-Type": "application/json"}


def certinfo_domain(port: int, domain: str) -> tuple[int, dict[str, Any]]:
    return raw_post(port, CERTINFO, json.dumps({"domain": domain}).encode(), JSON)


def test_certinfo_domain_follows_fetch_allow(ca: CA) -> None:
    from conftest import tls_server

    with tls_server(ca.cert, ca.key) as target:
        with serving("-ca", str(ca.cert), "-ca-key", str(ca.key)) as server:
            status, doc = certinfo_domain(server.port, f"127.0.0.1:{target}")
            assert status == 400 and doc["errors"][0]["code"] == 6000, doc
            assert "fetch policy" in doc["errors"][0]["message"]
            status, doc = certinfo_domain(server.port, "169.254.169.254:80")
            assert status == 400 and "fetch policy" in doc["errors"][0]["message"], doc
        with serving("-ca", str(ca.cert), "-ca-key", str(ca.key), "-fetch-allow", "127.0.0.1/32") as server:
            status, doc = certinfo_domain(server.port, f"127.0.0.1:{target}")
            assert status == 200, doc
            assert doc["result"]["subject"]["common_name"] == "Test ca ecdsa"
        with serving("-ca", str(ca.cert), "-ca-key", str(ca.key), "-fetch-allow", "none") as server:
            status, doc = certinfo_domain(server.port, f"127.0.0.1:{target}")
            assert status == 400 and "disabled" in doc["errors"][0]["message"], doc


def test_silent_hosts_cannot_hold_every_request_thread(ca: CA) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # never accepted: the TLS handshake never gets an answer
    target = silent.getsockname()[1]
    try:
        with serving("-ca", str(ca.cert), "-ca-key", str(ca.key), "-fetch-allow", "127.0.0.1/32") as server:
            statuses: list[int] = []
            lock = threading.Lock()

            def dial() -> None:
                status, _doc = certinfo_domain(server.port, f"127.0.0.1:{target}")
                with lock:
                    statuses.append(status)

            threads = [threading.Thread(target=dial) for _ in range(MAX_OUTBOUND + 6)]
            start = time.monotonic()
            for t in threads:
                t.start()
            time.sleep(0.5)
            with lock:
                early = list(statuses)
            # all but the slots were answered 503 at once
            assert sorted(early) == [503] * 6, early
            status, doc = raw_post(server.port, SIGN, sign_body(), JSON, timeout=5)
            assert status == 200, doc
            assert time.monotonic() - start < 1.5
            for t in threads:
                t.join(30)
            assert sorted(statuses) == [400] * MAX_OUTBOUND + [503] * 6
            assert time.monotonic() - start < 10  # the 5 s deadline
    finally:
        silent.close()


def test_a_burst_of_pipelined_requests_is_parsed_only_as_fast_as_it_is_answered() -> None:
    """40 clients each write 9,000 tiny pipelined requests (250 KB) at once and never read. Each connection
    parses a slice at a time and only while no request waits: a few hundred parsed requests per connection at
    most, not all 9,000 (before: 3,273 queued per connection and 94 MiB more memory)."""

    def rss_mib() -> int:
        status = Path("/proc/self/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]) // 1024

    listener = srv.bind("127.0.0.1", 0)
    worker = srv.Worker(hello, srv.ServerOptions(), listener, None, multiprocess=False)  # answered in a pool
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    one = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"  # 27 bytes
    burst = one * 9000
    clients: list[socket.socket] = []
    try:
        before = rss_mib()
        for _ in range(40):
            client = socket.create_connection(listener.getsockname()[:2], timeout=10)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client.sendall(burst)
            clients.append(client)
        time.sleep(2)
        deepest = max((len(c.queue) for c in list(worker.connections)), default=0)
        assert deepest <= 8 * 1024 // len(one) + 1, deepest  # at most one 8 KiB slice of these requests (303)
        assert rss_mib() - before < 40
        normal = http.client.HTTPConnection(*listener.getsockname()[:2], timeout=5)  # others are still served
        normal.request("GET", "/")
        assert normal.getresponse().read() == b"hello\n"
        normal.close()
    finally:
        for client in clients:
            client.close()
        worker.stop()
        thread.join(10)
        listener.close()
