"""Hostile clients against a real ``serve`` over raw loopback sockets: the server answers, closes and goes on.

Every test starts ``cfsslpy serve`` with a CA built at test time (``serving`` from test_serve.py: 127.0.0.1,
a port the kernel picks, always stopped), does something a hostile or careless client does, and then checks
what every test here ends with (:func:`still_serving`): a normal sign is answered 200 within 1 s, no
server-side connection of the port is left in CLOSE-WAIT, and no "Traceback" was logged.

What is checked, by section: malformed HTTP (each kind 50 times, then 600 mixed over 4 threads) is answered
400 (431 or 414 for a request line over the limit; 505 is also accepted for the HTTP/2 preface) in exactly
one response, the server closes the connection, and logs at most one line per request; 2,000 idle
connections (half of them with half a request line) do not keep a sign waiting; 64 keep-alive clients signing
for 20 s see no error and flat memory; a 32 MiB body written whole before reading (as urllib does) gets the
413 envelope, not a reset, and with ``Expect: 100-continue`` the refusal comes before the body; 900 bytes of
nested JSON are answered 400 with a cfssl error code, and a lone surrogate never a 5xx; pipelined requests are
answered in order; a client that pipelines thousands of requests and never reads does not make the server buffer their
responses. (Slow-loris headers and bodies are in test_serve.py.)

serve has no flags for its connection deadlines, so the "closed eventually" half of the last item is not
checked here: at the default idle and request deadlines (30 s, 60 s) it would take most of this file's budget.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import http.client
import io
import json
import random
import re
import resource
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import CA
from test_fuzz_servers import close_wait_anywhere
from test_ocsp_hostile import settled
from test_serve import HEALTH, SIGN, Serve, ca, new_csr, post, raw_post, serving, sign_body
from test_serve_load import rss

__all__ = ["ca"]  # the fixture, imported for pytest

pytestmark = [pytest.mark.integration]

SIGN_DEADLINE = 1.0  # a normal sign, measured from connect to the parsed answer
JSON = {"Content-Type": "application/json"}
STATUS_LINE = re.compile(rb"(?:^|\r\n)HTTP/1\.[01] (\d{3}) ")
MiB = 1024 * 1024
REPLY_DEADLINE = 2.0  # for the answer to a malformed request and the server's close
MAX_FAILURES = 5


def ca_args(ca: CA) -> list[str]:
    return ["-ca", str(ca.cert), "-ca-key", str(ca.key)]


def timed_sign(server: Serve) -> tuple[int, float]:
    """A normal sign on a fresh connection: its status (0 when the connection failed) and how long it took."""
    body = sign_body()  # the CSR is made before the clock starts
    started = time.monotonic()
    try:
        status, doc = post(server.url + SIGN, body, timeout=10)
    except (OSError, ValueError):  # refused, reset, timed out; or an answer that is not JSON
        return 0, time.monotonic() - started
    return (status if status != 200 or doc.get("success") is True else -1), time.monotonic() - started


def still_serving(server: Serve) -> None:
    """What every test ends with: a sign within 1 s, no CLOSE-WAIT left on the port, no traceback in the log."""
    status, elapsed = timed_sign(server)
    assert status == 200 and elapsed < SIGN_DEADLINE, f"a normal sign afterwards: status {status} after {elapsed:.2f}s"
    leftover = settled(lambda: close_wait_anywhere(server.port), 3.0)
    assert leftover == [], "connections left in CLOSE-WAIT:\n" + "\n".join(leftover)
    assert "Traceback" not in server.log, server.log[-4000:]


def server_rss(server: Serve) -> int:
    """VmRSS of the serve process and its worker processes, in bytes."""
    return rss({server.proc.pid, *server.children()})


# ---------------------------------------------------------------------------------------------------------
# 1. Malformed HTTP


@dataclass(frozen=True)
class Reply:
    """What a raw exchange got back, and whether the server closed (FIN or reset) before the read deadline."""

    data: bytes
    closed: bool

    @property
    def statuses(self) -> list[int]:
        return [int(m) for m in STATUS_LINE.findall(self.data)]


def hit(port: int, data: bytes, deadline: float = REPLY_DEADLINE) -> Reply:
    """``data`` written as it is on a fresh connection, never shut down by us; everything read until the
    server closes or ``deadline`` passes."""
    chunks: list[bytes] = []
    closed = False
    with socket.create_connection(("127.0.0.1", port), timeout=deadline) as s:
        with contextlib.suppress(OSError):  # the server may answer and close before everything is written
            s.sendall(data)
        end = time.monotonic() + deadline
        try:
            while (left := end - time.monotonic()) > 0:
                s.settimeout(left)
                chunk = s.recv(65536)
                if not chunk:
                    closed = True
                    break
                chunks.append(chunk)
        except TimeoutError:
            pass
        except OSError:
            closed = True
    return Reply(b"".join(chunks), closed)


def head(method: bytes, path: str, *headers: bytes) -> bytes:
    """A request line, ``Host: 127.0.0.1``, ``headers`` (each without its CRLF) and the blank line."""
    return b"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n" % (method, path.encode()) + b"".join(h + b"\r\n" for h in headers) + b"\r\n"


def garbage(i: int) -> bytes:
    """Something like a TLS ClientHello followed by random bytes: not HTTP at all."""
    return b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + random.Random(i).randbytes(500) + b"\r\n\r\n"


JSON_TYPE = b"Content-Type: application/json"
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # and an empty SETTINGS frame
SMUGGLED = head(b"GET", HEALTH)
CL_AND_TE = (
    head(b"POST", SIGN, JSON_TYPE, b"Content-Length: %d" % (5 + len(SMUGGLED)), b"Transfer-Encoding: chunked") + b"0\r\n\r\n" + SMUGGLED
)

# kind -> (the bytes of its i-th case, the statuses it may be answered with)
MALFORMED: dict[str, tuple[Callable[[int], bytes], frozenset[int]]] = {
    "binary garbage": (garbage, frozenset({400})),
    "header line without a colon": (lambda i: head(b"GET", HEALTH, b"This line has no colon"), frozenset({400})),
    # RFC 9112 6.3: reject it, or frame by Transfer-Encoding and close after answering. Either way the
    # (empty) chunked body is no sign request, and the GET behind it must never be answered.
    "Content-Length and Transfer-Encoding": (lambda i: CL_AND_TE, frozenset({400})),
    "NUL byte in the method": (lambda i: head(b"GE\x00T", HEALTH), frozenset({400})),
    "over-long request line": (lambda i: head(b"GET", "/" + "A" * 100_000), frozenset({400, 414, 431})),
    "invalid chunk size": (
        lambda i: head(b"POST", SIGN, JSON_TYPE, b"Transfer-Encoding: chunked") + b"zz\r\n{}\r\n0\r\n\r\n",
        frozenset({400}),
    ),
    "HTTP/2 preface": (lambda i: H2_PREFACE, frozenset({400, 505})),  # 505 is what Go's net/http answers
}


def verdict(kind: str, i: int, reply: Reply) -> str | None:
    """Why ``reply`` is wrong for case ``i`` of ``kind``, or None: one allowed status, then the server's close."""
    allowed = MALFORMED[kind][1]
    statuses = reply.statuses
    if len(statuses) != 1 or statuses[0] not in allowed:
        return f"{kind} #{i}: statuses {statuses} (want one of {sorted(allowed)}), got {reply.data[:120]!r}"
    if not reply.closed:
        return f"{kind} #{i}: answered {statuses[0]} but the connection was left open"
    return None


def send_malformed(server: Serve, cases: list[tuple[str, int]], threads: int) -> None:
    """Every (kind, i) case on its own connection (until ``MAX_FAILURES`` went wrong); then the log, a sign."""
    assert timed_sign(server)[0] == 200  # warm: the first sign of a process loads what it needs
    logged_before = len(server.lines)
    failures: list[str] = []

    def one(case: tuple[str, int]) -> None:
        if len(failures) < MAX_FAILURES:  # a server that leaves connections open costs a deadline each
            kind, i = case
            failure = verdict(kind, i, hit(server.port, MALFORMED[kind][0](i)))
            if failure is not None:
                failures.append(failure)

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, cases))
    assert not failures, f"malformed requests answered wrongly (of {len(cases)}, stopped after {MAX_FAILURES}): " + "; ".join(failures)
    assert server.proc.poll() is None, server.log[-4000:]
    still_serving(server)
    time.sleep(0.3)  # the last access lines
    lines = [line for line in server.lines[logged_before:] if f"path={SIGN} status=200" not in line]
    assert len(lines) <= len(cases), f"{len(lines)} log lines for {len(cases)} bad requests:\n" + "\n".join(lines[:10])


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_each_kind_of_malformed_request_is_refused_and_closed(ca: CA, kind: str) -> None:
    with serving(*ca_args(ca)) as server:
        send_malformed(server, [(kind, i) for i in range(50)], threads=1)


def test_600_mixed_malformed_requests_from_4_threads(ca: CA) -> None:
    kinds = list(MALFORMED)
    with serving(*ca_args(ca)) as server:
        send_malformed(server, [(kinds[i % len(kinds)], i) for i in range(600)], threads=4)


# ---------------------------------------------------------------------------------------------------------
# 2. Idle connections

IDLE = 2000
HALF_LINE = b"POST /api/v1/cfssl/si"


@contextlib.contextmanager
def open_file_limit(need: int) -> Iterator[None]:
    """RLIMIT_NOFILE's soft limit raised to the hard one (inherited by the server started inside)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {need}: cannot hold {IDLE} connections on both ends")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def connect_all(port: int, socks: list[socket.socket], n: int, timeout: float) -> int:
    """``n`` non-blocking connections dialled at once, appended to ``socks`` (the caller closes them); how many
    were established within ``timeout``."""
    with selectors.DefaultSelector() as sel:
        for _ in range(n):
            s = socket.socket()
            socks.append(s)
            s.setblocking(False)
            err = s.connect_ex(("127.0.0.1", port))
            assert err in (0, errno.EINPROGRESS), errno.errorcode.get(err, err)
            sel.register(s, selectors.EVENT_WRITE)
        established = 0
        deadline = time.monotonic() + timeout
        while sel.get_map() and (left := deadline - time.monotonic()) > 0:
            for key, _ in sel.select(left):
                sel.unregister(key.fileobj)
                established += key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0  # type: ignore[union-attr]
    return established


@pytest.mark.parametrize("workers", [[], ["-workers", "2"]], ids=["default", "2 workers"])
def test_2000_idle_connections_do_not_hold_up_a_sign(ca: CA, workers: list[str]) -> None:
    with open_file_limit(4200), serving(*ca_args(ca), *workers) as server:
        assert timed_sign(server)[0] == 200
        socks: list[socket.socket] = []
        try:
            established = connect_all(server.port, socks, IDLE, timeout=5.0)
            for s in socks[::2]:
                with contextlib.suppress(OSError):  # one that is not established yet
                    s.send(HALF_LINE)
            time.sleep(0.5)  # the server has seen them all
            status, elapsed = timed_sign(server)
            assert status == 200 and elapsed < SIGN_DEADLINE and established == IDLE, (
                f"with {established}/{IDLE} idle connections established: a sign got status {status} after {elapsed:.2f}s"
            )
        finally:
            for s in socks:
                s.close()
        assert server.proc.poll() is None
        still_serving(server)


# ---------------------------------------------------------------------------------------------------------
# 3. Many keep-alive clients

CLIENTS = 64
LOAD_SECONDS = 20.0
WARM_UP = 5.0
LOAD_RSS_SLACK = 10 * MiB


def sign_until(server: Serve, body: bytes, end: float, errors: list[str], done: list[int]) -> None:
    """Sign requests on one keep-alive connection until ``end``; failures into ``errors``, the count into ``done``."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    count = 0
    try:
        while time.monotonic() < end:
            try:
                conn.request("POST", SIGN, body=body, headers=JSON)
                resp = conn.getresponse()
                data = resp.read()
                if resp.status != 200:
                    errors.append(f"{resp.status}: {data[:200]!r}")
                count += 1
            except Exception as exc:  # every failure is counted; none may happen
                errors.append(repr(exc))
                conn.close()  # http.client dials again on the next request
    finally:
        conn.close()
        done.append(count)


def test_64_keep_alive_clients_for_20_seconds(ca: CA) -> None:
    bodies = [sign_body(new_csr(f"host{i}.example.net", (f"host{i}.example.net",))[0]) for i in range(CLIENTS)]
    with serving(*ca_args(ca)) as server:
        errors: list[str] = []
        done: list[int] = []
        started = time.monotonic()
        end = started + LOAD_SECONDS
        threads = [threading.Thread(target=sign_until, args=(server, body, end, errors, done)) for body in bodies]
        for t in threads:
            t.start()
        time.sleep(max(0.0, started + WARM_UP - time.monotonic()))
        warm = server_rss(server)
        for t in threads:
            t.join(LOAD_SECONDS + 60)
        final = server_rss(server)
        assert not any(t.is_alive() for t in threads), "client threads did not finish"
        total = sum(done)
        print(f"{total} signs from {CLIENTS} clients in {LOAD_SECONDS:g}s; RSS {warm / MiB:.1f} -> {final / MiB:.1f} MiB")
        assert errors == [], f"{len(errors)} errors in {total} requests; first: {errors[:3]}"
        assert abs(final - warm) < LOAD_RSS_SLACK, f"server RSS went from {warm / MiB:.1f} to {final / MiB:.1f} MiB under steady load"
        still_serving(server)


# ---------------------------------------------------------------------------------------------------------
# 4. A body over the limit, written whole


BIG = 32 * MiB


def test_a_32_mib_body_written_before_reading_gets_the_413_envelope(ca: CA) -> None:
    with serving(*ca_args(ca)) as server:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
        try:
            conn.request("POST", SIGN, body=b"x" * BIG, headers=JSON)  # as urllib does: the whole body, then read
            resp = conn.getresponse()
            status, raw = resp.status, resp.read()
        except OSError as exc:
            pytest.fail(f"a client that writes its 32 MiB body before reading got {exc!r}, not the 413")
        finally:
            conn.close()
        assert status == 413, raw[:300]
        doc = json.loads(raw)
        assert doc["success"] is False and doc["result"] is None, doc
        (error,) = doc["errors"]
        assert error["code"] == 413 and "too large" in error["message"], doc
        still_serving(server)


def head_only(port: int, request: bytes, timeout: float = 5.0) -> bytes:
    """``request``'s head sent with no body; what the server sends until its first blank line (or ``timeout``)."""
    got = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        with contextlib.suppress(TimeoutError):
            while b"\r\n\r\n" not in got and (chunk := s.recv(65536)):
                got += chunk
    return got


def test_expect_100_continue_with_a_body_over_the_limit_is_refused_before_the_body(ca: CA) -> None:
    with serving(*ca_args(ca)) as server:
        got = head_only(server.port, head(b"POST", SIGN, JSON_TYPE, b"Content-Length: %d" % BIG, b"Expect: 100-continue"))
        statuses = [int(m) for m in STATUS_LINE.findall(got)]
        assert statuses[:1] in ([413], [417]), f"before any body byte the server sent {got[:200]!r}"
        still_serving(server)


# ---------------------------------------------------------------------------------------------------------
# 5. JSON that parsers choke on


def nested(size: int) -> bytes:
    return b"[" * (size // 2) + b"]" * (size // 2)


PREFIX = b'{"certificate_request":'
NESTED_BODIES = {
    "the whole body": nested(900),
    "the certificate_request": PREFIX + nested(900 - len(PREFIX) - 1) + b"}",
}


@pytest.mark.parametrize("where", list(NESTED_BODIES))
def test_900_bytes_of_nesting_is_a_400_with_a_cfssl_code(ca: CA, where: str) -> None:
    body = NESTED_BODIES[where]
    assert len(body) == 900
    with serving(*ca_args(ca)) as server:
        status, doc = raw_post(server.port, SIGN, body, JSON)
        assert status == 400 and doc["success"] is False, doc
        code = doc["errors"][0]["code"]
        assert isinstance(code, int) and code not in (0, 500), doc
        still_serving(server)


def test_a_lone_surrogate_in_a_string_field_is_never_a_server_error(ca: CA) -> None:
    """``"\\ud800"`` is valid JSON text but no Unicode: Python decodes it to a string UTF-8 cannot encode, Go to
    U+FFFD. Where the field must be a CSR or a host name the request is a client error; where cfssl goes on
    (an unknown profile is 5400, a subject CN is a UTF8String) any answer but a 5xx."""
    csr = new_csr()[0]
    invalid = {
        "certificate_request": {"certificate_request": "\ud800"},
        "hosts": {"certificate_request": csr, "hosts": ["\ud800.example.net"]},
    }
    tolerated = {
        "profile": {"certificate_request": csr, "profile": "\ud800"},
        "subject CN": {"certificate_request": csr, "subject": {"CN": "x\ud800"}},
    }
    with serving(*ca_args(ca)) as server:
        answers = {field: raw_post(server.port, SIGN, json.dumps(req).encode(), JSON) for field, req in {**invalid, **tolerated}.items()}
        wrong = {field: answers[field] for field in invalid if not 400 <= answers[field][0] < 500}
        wrong |= {field: answers[field] for field in tolerated if answers[field][0] >= 500}
        assert not wrong, wrong
        still_serving(server)


# ---------------------------------------------------------------------------------------------------------
# 6. Pipelining


class _Shared:
    """One buffered reader handed to each http.client.HTTPResponse in turn, never closed by them: a response
    must not take the next one's bytes away when it is done."""

    def __init__(self, reader: io.BufferedReader) -> None:
        self.reader = reader

    def makefile(self, *args: Any, **kwargs: Any) -> _Shared:
        return self

    def readline(self, size: int | None = -1) -> bytes:
        return self.reader.readline(-1 if size is None else size)

    def read(self, size: int | None = -1) -> bytes:
        return self.reader.read(size)

    def readinto(self, buffer: Any) -> int:
        return self.reader.readinto(buffer)

    def close(self) -> None:
        pass


def read_responses(sock: socket.socket, n: int) -> list[tuple[int, bytes]]:
    shared = _Shared(io.BufferedReader(socket.SocketIO(sock, "rb")))
    out = []
    for _ in range(n):
        resp = http.client.HTTPResponse(shared)  # type: ignore[arg-type]
        resp.begin()
        out.append((resp.status, resp.read()))
    return out


def test_three_pipelined_requests_are_answered_in_order(ca: CA) -> None:
    body = sign_body()
    health = head(b"GET", HEALTH)
    sign = head(b"POST", SIGN, JSON_TYPE, b"Content-Length: %d" % len(body))
    with serving(*ca_args(ca)) as server:
        with socket.create_connection((server.host, server.port), timeout=10) as s:
            s.sendall(health + sign + body + health)
            replies = read_responses(s, 3)
        assert [status for status, _ in replies] == [200, 200, 200], replies
        docs = [json.loads(raw) for _, raw in replies]
        assert docs[0]["result"] == {"healthy": True} and docs[2]["result"] == {"healthy": True}, docs
        assert "certificate" in docs[1]["result"], docs[1]
        still_serving(server)


# ---------------------------------------------------------------------------------------------------------
# 7. A client that pipelines and never reads

PIPELINE_RSS_SLACK = 50 * MiB


@pytest.mark.parametrize(("path", "count"), [(HEALTH, 2000), ("/static/app.js", 4000)], ids=["health", "app.js"])
def test_a_client_that_pipelines_and_never_reads_does_not_grow_the_server(ca: CA, path: str, count: int) -> None:
    """``count`` GETs written at once (or until the server stops taking them for 2 s), none of the answers read:
    the server must stop reading from a client whose answers it cannot send, not buffer them all."""
    request = head(b"GET", path)
    with serving(*ca_args(ca)) as server:
        assert timed_sign(server)[0] == 200
        before = server_rss(server)
        with socket.create_connection((server.host, server.port), timeout=2.0) as hog:
            with contextlib.suppress(TimeoutError):  # the server stopped reading: what we want
                hog.sendall(request * count)
            time.sleep(2.0)  # time to answer what it read
            grown = server_rss(server) - before
            status, elapsed = timed_sign(server)
            assert status == 200 and elapsed < SIGN_DEADLINE, f"another client's sign: status {status} after {elapsed:.2f}s"
            assert grown < PIPELINE_RSS_SLACK, f"server RSS grew by {grown / MiB:.1f} MiB for a client that does not read"
        assert server.proc.poll() is None
        still_serving(server)


def test_reply_status_parsing() -> None:
    """The helpers' own parsing: status lines at the start and after a body, never inside one."""
    reply = Reply(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\nHTTP/1.0 505 x\r\n", True)
    assert reply.statuses == [400, 505]
    assert Reply(b'{"m":"HTTP/1.1 200 OK"}', True).statuses == []
    assert all(verdict(kind, 0, Reply(b"HTTP/1.1 400 Bad\r\n\r\n", True)) is None for kind in MALFORMED)
    assert verdict("binary garbage", 0, Reply(b"HTTP/1.1 400 Bad\r\n\r\n", False)) is not None
