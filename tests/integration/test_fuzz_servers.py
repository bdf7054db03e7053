"""Seeded random fuzzing of a real ``serve`` and a real ``ocspserve`` over raw sockets: they must stay up.

Each case is bytes made from a valid request (a sign POST, a health GET, an OCSP POST or GET) by one mutation
class (see ``HTTP_MUTATIONS`` and ``DER_MUTATIONS``), written to a fresh connection as they are, optionally
half-closed, read for a short while and closed. After every case the process must be alive with no
"Traceback" and no dead worker in its stderr; every ``CHECK_EVERY`` cases and at the end a normal request must
succeed (a sign within 1 s; an OCSP request answered ``good``); at the end no server-side connection of the
port may be left in CLOSE-WAIT.

Case ``i`` of seed ``s`` is made by ``random.Random(s * CASE_STRIDE + i)`` from the run's valid requests, so a
failure names the seed, the index, the mutation class and the bytes sent: ``make_case(s, i, bases, der, port)``
makes it again (the CSR's signature and the OCSP PKI are fresh on each run, so a few bytes differ).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import random
import re
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_ocsp_hostile import assert_good, good_request, settled
from test_ocspserve import Pki, ocspserve, pki, stored_responses
from test_serve import HEALTH, SIGN, new_csr, serving, sign_body

from cfsslpy.ocspresponder import responses_text

__all__ = ["pki"]  # the fixture, imported for pytest

pytestmark = [pytest.mark.integration, pytest.mark.openssl]

SEEDS = (1, 20240611, 987654321)
CASES_PER_SEED = 120
CHECK_EVERY = 25
CASE_STRIDE = 100_000  # case i of seed s: random.Random(s * CASE_STRIDE + i)
FIRST_BYTE_TIMEOUT = 0.25  # how long a case waits for the server's first byte (a partial request gets none)
NEXT_BYTES_TIMEOUT = 0.05
SIGN_DEADLINE = 1.0
MAX_LONG_HEADER = 100_000
MAX_NESTING = 40_000  # the deepest JSON body stays under serve's 1 MiB body limit, so it is parsed
CLOSE_WAIT = "08"  # /proc/net/tcp state
DIED = re.compile(r"worker \d+ died")

Mutation = Callable[[random.Random, "Request"], bytes]


# ---------------------------------------------------------------------------------------------------------
# requests and their mutations


@dataclass(frozen=True)
class Request:
    """A valid request: its head lines (the request line first) and its body."""

    lines: tuple[bytes, ...]
    body: bytes = b""

    def render(self, lines: list[bytes] | None = None, body: bytes | None = None) -> bytes:
        return b"\r\n".join(self.lines if lines is None else lines) + b"\r\n\r\n" + (self.body if body is None else body)

    def with_body(self, body: bytes, extra: tuple[bytes, ...] = ()) -> bytes:
        """The same head with ``body`` (and its Content-Length instead of any framing header)."""
        kept = [line for line in self.lines if not line.lower().startswith((b"content-length:", b"transfer-encoding:"))]
        return self.render([*kept, *extra, b"Content-Length: %d" % len(body)], body)


def make_request(method: str, path: str, port: int, body: bytes = b"", content_type: str = "") -> Request:
    lines = [f"{method} {path} HTTP/1.1".encode(), f"Host: 127.0.0.1:{port}".encode(), b"User-Agent: fuzz", b"Accept: */*"]
    if content_type:
        lines.append(f"Content-Type: {content_type}".encode())
    if body or method == "POST":
        lines.append(b"Content-Length: %d" % len(body))
    return Request(tuple(lines), body)


CONTROL = bytes(range(32)) + b"\x7f"
NASTY = CONTROL + bytes(range(0x80, 0x100)) + b" :;,\"'\\()<>@[]{}?=/"
TOKEN = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~"


def junk(rng: random.Random, alphabet: bytes, low: int, high: int) -> bytes:
    return bytes(rng.choice(alphabet) for _ in range(rng.randint(low, high)))


def flip(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if out:
            out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data))] if data else data


def extend(rng: random.Random, data: bytes) -> bytes:
    """Bytes inserted (random, or a copy of a slice of ``data``) at a random point or at the end."""
    at = rng.choice([len(data), rng.randint(0, len(data))])
    if data and rng.random() < 0.5:
        start = rng.randrange(len(data))
        extra = data[start : start + rng.randint(1, 64)] * rng.randint(1, 4)
    else:
        extra = rng.randbytes(rng.randint(1, 256))
    return data[:at] + extra + data[at:]


def m_flip(rng: random.Random, req: Request) -> bytes:
    return flip(rng, req.render())


def m_truncate(rng: random.Random, req: Request) -> bytes:
    return truncate(rng, req.render())


def m_duplicate_header(rng: random.Random, req: Request) -> bytes:
    lines = list(req.lines)
    lines.insert(rng.randint(1, len(lines)), rng.choice(lines[1:]))
    return req.render(lines)


def m_remove_header(rng: random.Random, req: Request) -> bytes:
    lines = list(req.lines)
    del lines[rng.randint(1, len(lines) - 1)]
    return req.render(lines)


def m_random_header(rng: random.Random, req: Request) -> bytes:
    lines = list(req.lines)
    for _ in range(rng.randint(1, 5)):
        name = junk(rng, rng.choice([TOKEN, NASTY]), 0, 40)
        value = junk(rng, rng.choice([TOKEN, NASTY, CONTROL]), 0, 200)
        line = rng.choice([name + b": " + value, name + b":" + value, name + value, b" " + value, b"\t" + name])  # no colon, folded
        lines.insert(rng.randint(1, len(lines)), line.replace(b"\r\n", b"\r"))
    return req.render(lines)


def m_content_length(rng: random.Random, req: Request) -> bytes:
    n = len(req.body)
    values = [
        b"-1",
        b"-%d" % rng.randint(1, 10**12),
        b"9" * rng.randint(10, 400),
        b"%d" % (n + rng.randint(1, 2000)),
        b"%d" % max(n - rng.randint(1, 50), 0),
        b"1e9",
        b"0x10",
        b" %d " % n,
        b"+%d" % n,
        b"",
        b"%d, %d" % (n, n + 1),
        b"18446744073709551617",
        junk(rng, NASTY, 1, 20),
    ]
    extra = tuple(b"Content-Length: " + rng.choice(values) for _ in range(rng.randint(1, 2)))
    kept = [line for line in req.lines if not line.lower().startswith(b"content-length:")]
    return req.render([*kept, *extra])


TRANSFER_ENCODINGS = [b"chunked", b"Chunked", b"gzip, chunked", b"chunked, gzip", b" chunked", b"chunked\x00", b"identity", b"chunked\x0b"]


def chunked(rng: random.Random, body: bytes, bad: bool) -> bytes:
    """``body`` as one good chunk, or (``bad``) as chunks with wrong, negative, huge or malformed sizes and framing."""
    if not bad:
        return (b"%x\r\n" % len(body) + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    out, rest = b"", body
    while rest:
        n = rng.randint(1, 300)
        piece, rest = rest[:n], rest[n:]
        size = rng.choice(
            [
                b"%x" % n,
                b"%x" % (n + rng.randint(1, 100)),
                b"-5",
                b"f" * rng.randint(9, 40),
                b"zz",
                b"",
                b"0x10",
                b"%x;ext=" % n + junk(rng, NASTY, 0, 20),
            ]
        )
        out += size + rng.choice([b"\r\n", b"\r\n", b"\n", b""]) + piece + rng.choice([b"\r\n", b"\r\n", b"", b"XX"])
    if rng.random() < 0.5:
        out += b"0\r\n" + (junk(rng, NASTY, 0, 40) + b"\r\n" if rng.random() < 0.5 else b"") + b"\r\n"
    return out


def m_cl_and_te(rng: random.Random, req: Request) -> bytes:
    te = b"Transfer-Encoding: " + rng.choice(TRANSFER_ENCODINGS)
    lines = list(req.lines)
    if not any(line.lower().startswith(b"content-length:") for line in lines):
        lines.append(b"Content-Length: %d" % len(req.body))
    lines.insert(rng.randint(1, len(lines)), te)
    return req.render(lines, chunked(rng, req.body, rng.random() < 0.5) if rng.random() < 0.5 else None)


def m_bad_chunks(rng: random.Random, req: Request) -> bytes:
    lines = [line for line in req.lines if not line.lower().startswith(b"content-length:")]
    lines.append(b"Transfer-Encoding: chunked")
    return req.render(lines, chunked(rng, req.body or rng.randbytes(rng.randint(1, 600)), True))


METHODS = [b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"TRACE", b"CONNECT", b"HEAD", b"PRI", b"get", b"G E T", b"", b"POST POST"]


def m_method(rng: random.Random, req: Request) -> bytes:
    method = rng.choice([*METHODS, junk(rng, TOKEN, 1, 30), junk(rng, NASTY, 1, 30)])
    line = method + b" " + req.lines[0].split(b" ", 1)[1]
    return req.render([line, *req.lines[1:]])


def m_nul_request_line(rng: random.Random, req: Request) -> bytes:
    line = bytearray(req.lines[0])
    for _ in range(rng.randint(1, 3)):
        line.insert(rng.randint(0, len(line)), 0)
    return req.render([bytes(line), *req.lines[1:]])


def m_garbage(rng: random.Random, req: Request) -> bytes:
    return rng.randbytes(rng.randint(1, 4096))


def m_pipelined(rng: random.Random, req: Request) -> bytes:
    single = [m for m in HTTP_MUTATIONS.values() if m not in (m_pipelined, m_long_header, m_nested_json)]  # small ones
    return b"".join(req.render() if rng.random() < 0.5 else rng.choice(single)(rng, req) for _ in range(rng.randint(2, 6)))


def m_long_header(rng: random.Random, req: Request) -> bytes:
    size = rng.choice([rng.randint(1, 8_000), rng.randint(8_000, 70_000), rng.randint(60_000, MAX_LONG_HEADER)])
    lines = list(req.lines)
    where = rng.choice(["value", "name", "path", "many"])
    if where == "value":
        lines.insert(1, b"X-Long: " + b"a" * size)
    elif where == "name":
        lines.insert(1, b"X" * size + b": 1")
    elif where == "path":
        method, target, version = lines[0].split(b" ", 2)
        lines[0] = b" ".join([method, target + b"/" + b"A" * size, version])
    else:
        lines[1:1] = [b"X-%d: %d" % (i, i) for i in range(size // 16)]
    return req.render(lines)


def m_nested_json(rng: random.Random, req: Request) -> bytes:
    depth = rng.choice([rng.randint(1, 200), rng.randint(900, 1100), rng.randint(1_000, MAX_NESTING)])
    if rng.random() < 0.5:
        body = b"[" * depth + b"]" * depth
    else:
        body = b'{"certificate_request":' * depth + b'""' + b"}" * depth
    if rng.random() < 0.3:
        body = body[: rng.randrange(len(body))]  # unbalanced
    return req.with_body(body)


INVALID_UTF8 = [
    b"\xff",
    b"\xfe",
    b"\xc3\x28",
    b"\xa0\xa1",
    b"\xe2\x28\xa1",
    b"\xed\xa0\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\xc0\xaf",
    b"\xf4\x90\x80\x80",
]


def m_invalid_utf8(rng: random.Random, req: Request) -> bytes:
    body = req.body or b'{"certificate_request": "x"}'
    for _ in range(rng.randint(1, 10)):
        at = rng.randint(0, len(body))
        body = body[:at] + rng.choice(INVALID_UTF8) + body[at:]
    return req.with_body(body)


HTTP_MUTATIONS: dict[str, Mutation] = {
    "byte flips": m_flip,
    "truncation": m_truncate,
    "duplicated header": m_duplicate_header,
    "removed header": m_remove_header,
    "random headers": m_random_header,
    "bad Content-Length": m_content_length,
    "CL and TE": m_cl_and_te,
    "bad chunks": m_bad_chunks,
    "random method": m_method,
    "NUL in request line": m_nul_request_line,
    "binary garbage": m_garbage,
    "pipelined": m_pipelined,
    "long header": m_long_header,
    "nested JSON": m_nested_json,
    "invalid UTF-8 body": m_invalid_utf8,
}

DER_MUTATIONS: dict[str, Callable[[random.Random, bytes], bytes]] = {"DER flips": flip, "DER truncation": truncate, "DER extension": extend}


def http_bases(port: int, sign: bytes, der: bytes) -> list[Request]:
    """The valid requests the HTTP mutations start from (each server answers some of them 404)."""
    return [
        make_request("POST", SIGN, port, sign, "application/json"),
        make_request("GET", HEALTH, port),
        ocsp_by_post(port, der),
        ocsp_by_get(port, der),
    ]


def ocsp_by_post(port: int, der: bytes) -> Request:
    return make_request("POST", "/", port, der, "application/ocsp-request")


def ocsp_by_get(port: int, der: bytes, rng: random.Random | None = None) -> Request:
    encoded = base64.b64encode(der)
    style = rng.choice(["quoted", "raw", "urlsafe", "unpadded"]) if rng else "quoted"
    if style == "urlsafe":
        encoded = base64.urlsafe_b64encode(der)
    elif style == "unpadded":
        encoded = encoded.rstrip(b"=")
    path = urllib.parse.quote(encoded, safe="") if style == "quoted" else encoded.decode("ascii")
    return make_request("GET", "/" + path, port)


@dataclass(frozen=True)
class Case:
    seed: int
    index: int
    kind: str
    data: bytes
    half_close: bool

    def describe(self) -> str:
        text = repr(self.data)
        if len(text) > 700:
            text = f"{text[:400]} ...<{len(self.data)} bytes in all>... {text[-200:]}"
        return f"seed={self.seed} index={self.index} kind={self.kind!r} half_close={self.half_close} data={text}"


def make_case(seed: int, index: int, bases: list[Request], der: bytes | None, port: int) -> Case:
    """Case ``index`` of ``seed``: an HTTP mutation of one of ``bases``, or (with ``der``) one of the DER request."""
    rng = random.Random(seed * CASE_STRIDE + index)
    if der is not None and rng.random() < 0.5:
        kind = rng.choice(sorted(DER_MUTATIONS))
        mutated = DER_MUTATIONS[kind](rng, der)
        by_post = rng.random() < 0.5
        data = (ocsp_by_post(port, mutated) if by_post else ocsp_by_get(port, mutated, rng)).render()
        kind += " by POST" if by_post else " by GET"
    else:
        kind = rng.choice(sorted(HTTP_MUTATIONS))
        data = HTTP_MUTATIONS[kind](rng, rng.choice(bases))
    return Case(seed, index, kind, data, rng.random() < 0.5)


# ---------------------------------------------------------------------------------------------------------
# sending, and what must hold


def send(port: int, case: Case) -> bytes:
    """The case's bytes on a fresh connection; whatever comes back within the short timeouts; closed."""
    chunks: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with contextlib.suppress(OSError):  # the server may close (or reset) before everything is written
            s.sendall(case.data)
            if case.half_close:
                s.shutdown(socket.SHUT_WR)
        s.settimeout(FIRST_BYTE_TIMEOUT)
        with contextlib.suppress(OSError):
            while chunk := s.recv(65536):
                chunks.append(chunk)
                s.settimeout(NEXT_BYTES_TIMEOUT)
    return b"".join(chunks)


def close_wait_anywhere(port: int) -> list[str]:
    """Server-side sockets of ``port`` (any local address, IPv4 or IPv6) in CLOSE-WAIT."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[1].endswith(f":{port:04X}") and fields[3] == CLOSE_WAIT:
                    found.append(f"{table}: {line.strip()}")
    return found


@dataclass
class Target:
    name: str
    port: int
    proc: subprocess.Popen[str]
    lines: list[str]
    bases: list[Request]
    der: bytes | None
    healthy: Callable[[], None]


def run_fuzz(target: Target) -> int:
    """Every seed's cases against ``target``; the number of cases sent."""
    sent = 0
    for seed in SEEDS:
        recent: list[Case] = []
        for index in range(CASES_PER_SEED):
            case = make_case(seed, index, target.bases, target.der, target.port)
            recent = [*recent[-2:], case]
            try:
                send(target.port, case)
            except OSError as exc:
                pytest.fail(f"{target.name}: could not send (server gone?): {exc!r}\n{case.describe()}")
            sent += 1
            alive_and_quiet(target, recent)
            if (index + 1) % CHECK_EVERY == 0 or index + 1 == CASES_PER_SEED:
                checkpoint(target, recent)
    return sent


def alive_and_quiet(target: Target, recent: list[Case]) -> None:
    log = "\n".join(target.lines)
    where = "\n".join(case.describe() for case in recent)
    assert target.proc.poll() is None, f"{target.name} exited ({target.proc.poll()}) after:\n{where}\n{log[-4000:]}"
    assert "Traceback" not in log and not DIED.search(log), f"{target.name} logged a failure after:\n{where}\n{log[-4000:]}"


def checkpoint(target: Target, recent: list[Case]) -> None:
    try:
        target.healthy()
    except (AssertionError, OSError) as exc:
        where = "\n".join(case.describe() for case in recent)
        pytest.fail(f"{target.name}: a normal request failed ({exc!r}) after:\n{where}\n" + "\n".join(target.lines)[-4000:])
    alive_and_quiet(target, recent)


def sign_within_deadline(port: int, body: bytes) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        started = time.monotonic()
        conn.request("POST", SIGN, body=body, headers={"Content-Type": "application/json"})
        reply = conn.getresponse()
        doc = json.loads(reply.read())
        elapsed = time.monotonic() - started
    finally:
        conn.close()
    assert reply.status == 200 and doc["success"] is True, doc
    assert elapsed < SIGN_DEADLINE, f"a normal sign took {elapsed:.2f}s"


def finish(target: Target, sent: int) -> None:
    assert sent == len(SEEDS) * CASES_PER_SEED
    target.healthy()
    alive_and_quiet(target, [])
    leftover = settled(lambda: close_wait_anywhere(target.port))
    assert leftover == [], f"{target.name}: connections left in CLOSE-WAIT after the fuzz:\n" + "\n".join(leftover)


# ---------------------------------------------------------------------------------------------------------
# the tests


def test_serve_survives_mutated_requests(tmp_path: Path, pki: Pki) -> None:
    body = sign_body(new_csr()[0])
    with serving("-datadir", str(tmp_path / "data")) as server:
        port = server.port
        bases = http_bases(port, body, good_request(pki))
        target = Target("serve", port, server.proc, server.lines, bases, None, lambda: sign_within_deadline(port, body))
        target.healthy()
        finish(target, run_fuzz(target))


def test_ocspserve_survives_mutated_requests(pki: Pki) -> None:
    responses = pki.dir / "responses"
    responses.write_text(responses_text(stored_responses(pki)))
    der = good_request(pki)
    with ocspserve("-responses", str(responses)) as server:
        port = urllib.parse.urlsplit(server.url).port
        assert port is not None
        bases = http_bases(port, sign_body(new_csr()[0]), der)
        target = Target("ocspserve", port, server.proc, server.lines, bases, der, lambda: assert_good(port, pki))
        target.healthy()
        finish(target, run_fuzz(target))
