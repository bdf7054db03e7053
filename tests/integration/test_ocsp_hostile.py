"""Hostile requests against a real ``ocspserve`` (issue 10: "a serving stack that one packet cannot stop").

Each request cfssl answers (zero, two or 200 CertIDs, unknown hashes, garbage, truncated DER, bad base64, a 60
KB URL, by POST and by GET) is sent to a real server process on a loopback port; after every one the server
must still answer a normal request ``good``, with the same processes (no worker died and none was replaced)
and no connection left in CLOSE-WAIT. Then the server's error path itself, in-process: an application that
raises is answered 500 in one log line and the worker goes on; the error task never assumes a parsed request;
log fields are quoted and bounded.

What cfssl answers (1.2.0 and 1.6.5, measured with their binaries): zero CertIDs, unknown hashes, garbage,
truncated or trailing DER: 400 ``malformedRequest``; several CertIDs: the first one is answered (Go's parser
ignores the rest), where we answer 400 ``malformedRequest`` (cryptography refuses such requests; see
:func:`cfsslpy.ocspresponder.parse_request`). cfssl 1.2.0 answers every GET 400 (it does not strip the
leading ``/``); 1.6.5 answers as for POST, and a GET path that is not base64 400 with no body, as we do.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import io
import logging
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from test_ocspresponder import cert_id_der, der_tlv, ocsp_request
from test_ocspserve import Pki, ask, make_db, ocspserve, pki, stored_responses

from cfsslpy.api import server as srv
from cfsslpy.errors import logfmt
from cfsslpy.ocspresponder import MALFORMED_REQUEST, responses_text

__all__ = ["pki"]  # the fixture, imported for pytest

pytestmark = [pytest.mark.integration, pytest.mark.openssl]

CLOSE_WAIT = "08"  # /proc/net/tcp state
SHA1_OID = "06052b0e03021a"


# ---------------------------------------------------------------------------------------------------------
# requests


def good_request(pki: Pki, leaf: str = "a-good") -> bytes:
    ca = pki.ca[pki.issuer_of[leaf]].cert
    request = ocsp.OCSPRequestBuilder().add_certificate(pki.leaf[leaf].cert, ca, hashes.SHA1()).build()
    return request.public_bytes(serialization.Encoding.DER)


def hostile_bodies(pki: Pki) -> dict[str, bytes]:
    """DER (or not) request bodies cfssl answers ``malformedRequest`` (400), except several CertIDs (see above)."""
    good = good_request(pki)
    one = cert_id_der(good)
    unknown_hash = der_tlv(
        0x30, der_tlv(0x30, bytes.fromhex("06032a0304") + b"\x05\x00") + der_tlv(0x04, b"\x11" * 20) * 2 + b"\x02\x01\x05"
    )
    md5 = der_tlv(
        0x30, der_tlv(0x30, bytes.fromhex("06082a864886f70d0205") + b"\x05\x00") + der_tlv(0x04, b"\x11" * 16) * 2 + b"\x02\x01\x05"
    )
    assert ocsp_request([one]) == good  # the raw builder makes exactly what cryptography makes
    return {
        "no CertID": ocsp_request([]),
        "two CertIDs": ocsp_request([one, one]),
        "200 CertIDs": ocsp_request([one] * 200),
        "unknown hash OID": ocsp_request([unknown_hash]),
        "MD5 CertID": ocsp_request([md5]),
        "garbage": b"\x30\x03garbage",
        "truncated DER": good[:-5],
        "trailing bytes": good + b"\x00\x00",
        "empty": b"",
    }


def exchange(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    """One request on a fresh connection (closed afterwards): (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request(method, path, body=body)
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


def raw_exchange(port: int, data: bytes) -> bytes:
    """Bytes written as they are (no HTTP client in the way); everything the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def assert_good(port: int, pki: Pki) -> None:
    status, body = exchange(port, "POST", "/", good_request(pki))
    assert status == 200
    response = ocsp.load_der_ocsp_response(body)
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD


def close_wait(port: int) -> list[str]:
    """Server-side sockets of ``port`` in CLOSE-WAIT (the client left, the server never closed)."""
    local = f"0100007F:{port:04X}"
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return [line for line in lines if line.split()[1] == local and line.split()[3] == CLOSE_WAIT]


def settled(check: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while (value := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def worker_pids(log: str) -> set[int]:
    return {int(pid) for pid in re.findall(r"worker (\d+) started", log)}


# ---------------------------------------------------------------------------------------------------------
# a real ocspserve, in each of its modes


@contextlib.contextmanager
def responder(pki: Pki, mode: str) -> Iterator[Any]:
    if mode == "file, 2 workers":
        responses = pki.dir / "responses"
        responses.write_text(responses_text(stored_responses(pki)))
        with ocspserve("-responses", str(responses), "-workers", "2") as server:
            yield server
        return
    db, config = make_db(pki)
    if mode == "db stored":
        a, b = pki.signer("a"), pki.signer("b")
        for der, (leaf, signer) in zip(
            stored_responses(pki), (("a-good", a), ("b-revoked", b), ("a-unknown", a), ("b-good", b)), strict=True
        ):
            cert = pki.leaf[leaf].cert
            db.upsert_ocsp(str(cert.serial_number), signer.issuer_aki, der, ocsp.load_der_ocsp_response(der).next_update_utc)
        db.close()
        with ocspserve("-db-config", str(config)) as server:
            yield server
        return
    db.close()
    live = ["-ca", str(pki.ca["a"].path), "-responder", str(pki.responder["a"].path), "-responder-key", str(pki.responder["a"].key_path)]
    with ocspserve("-db-config", str(config), *live, "-workers", "2") as server:
        yield server


@pytest.mark.parametrize("mode", ["file, 2 workers", "db stored", "live, 2 workers"])
def test_hostile_requests_are_answered_and_stop_nothing(pki: Pki, mode: str) -> None:
    with responder(pki, mode) as server:
        port = urllib.parse.urlsplit(server.url).port
        assert port is not None
        pids = worker_pids(server.log) if "workers" in mode else set()
        assert len(pids) == (2 if "workers" in mode else 0), server.log
        assert_good(port, pki)
        answers: dict[str, tuple[int, bytes]] = {}
        for name, der in hostile_bodies(pki).items():
            answers[f"POST {name}"] = exchange(port, "POST", "/", der)
            assert_good(port, pki)
            answers[f"GET {name}"] = exchange(port, "GET", "/" + urllib.parse.quote(base64.b64encode(der).decode(), safe=""))
            assert_good(port, pki)
        assert answers == dict.fromkeys(answers, (400, MALFORMED_REQUEST)), answers
        # cfssl: 400 without a body for a path that is not base64; 400 malformedRequest for a 60 KB one that is
        assert exchange(port, "GET", "/not*base64") == (400, b"")
        assert exchange(port, "GET", "/" + "A" * 60_000) == (400, MALFORMED_REQUEST)
        assert_good(port, pki)
        # beyond the header limit (64 KiB), and not HTTP at all: the transport's errors, as the error envelope
        assert exchange(port, "GET", "/" + "A" * 70_000)[0] == 431
        assert raw_exchange(port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n").startswith(b"HTTP/1.1 400 Bad Request")
        # a client that sends half a request and leaves
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n\x30\x62")
        assert_good(port, pki)
        assert ask(server.url, pki, "a-good").status == "good"  # openssl ocsp too
        # the same processes, none died or was replaced, and no connection was left behind
        assert server.proc.poll() is None
        assert worker_pids(server.log) == pids, server.log
        assert "died" not in server.log and "Traceback" not in server.log, server.log
        assert settled(lambda: close_wait(port)) == []


def test_a_path_with_a_newline_and_a_control_character_is_one_quoted_log_line(pki: Pki) -> None:
    responses = pki.dir / "responses"
    responses.write_text(responses_text(stored_responses(pki)))
    with ocspserve("-responses", str(responses)) as server:
        port = urllib.parse.urlsplit(server.url).port
        assert port is not None
        forged = "/%0A2026/01/01 00:00:00 [ERROR] FORGED%1B[2J" + "x" * 1000
        reply = raw_exchange(port, f"GET {forged.replace(' ', '%20')} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        assert reply.startswith(b"HTTP/1.1 400 ")
        assert_good(port, pki)
        deadline = time.monotonic() + 5
        while "status=200" not in server.log.rsplit("FORGED", 1)[-1] and time.monotonic() < deadline:
            time.sleep(0.05)
        lines = [line for line in server.lines if "FORGED" in line]
        access = [line for line in lines if " method=GET " in line]
        assert len(access) == 1, server.log
        assert all(re.match(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[\w+\] ", line) and "[ERROR] FORGED" not in line[:30] for line in lines), (
            lines
        )
        assert all("\x1b" not in line and len(line) < 600 for line in lines), lines
        assert "\\n2026/01/01 00:00:00 [ERROR] FORGED\\u001b[2J" in access[0]


# ---------------------------------------------------------------------------------------------------------
# the server's error path, in-process


@contextlib.contextmanager
def worker(app: Any, inline: bool, direct: Any = None) -> Iterator[tuple[int, threading.Thread]]:
    listener = srv.bind("127.0.0.1", 0)
    options = srv.ServerOptions(inline=(lambda method, path: True) if inline else None, direct=direct)
    w = srv.Worker(app, options, listener, None, multiprocess=False)
    thread = threading.Thread(target=w.run, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], thread
    finally:
        w.stop()
        thread.join(10)
        listener.close()
        assert not thread.is_alive()


def failing_app(environ: dict[str, Any], start_response: Any) -> Any:
    path = environ["PATH_INFO"]
    if path == "/raise":
        raise NotImplementedError("OCSP request contains more than one request")
    if path == "/raise-after-headers":

        def body() -> Iterator[bytes]:
            yield b"partial"
            raise RuntimeError("failed half-way")

        start_response("200 OK", [("Content-Type", "text/plain")])
        return body()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\n"]


@pytest.mark.parametrize("inline", [True, False], ids=["on the loop thread", "in a pool thread"])
def test_an_application_that_raises_gets_500_in_one_line_and_the_worker_goes_on(inline: bool, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO), worker(failing_app, inline) as (port, thread):
        for _ in range(3):
            status, body = exchange(port, "POST", "/raise", b"x")
            assert status == 500
            assert body == b'{"success":false,"result":null,"errors":[{"code":0,"message":"internal server error"}],"messages":[]}\n'
            assert exchange(port, "GET", "/fine") == (200, b"ok\n")
        # a failure half-way through the body: responses are collected whole before anything is sent, so
        # the client gets a clean 500, never a truncated 200
        assert exchange(port, "GET", "/raise-after-headers")[0] == 500
        assert exchange(port, "GET", "/fine") == (200, b"ok\n")
        assert thread.is_alive()
        assert settled(lambda: close_wait(port)) == []
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 4, [r.getMessage() for r in errors]  # one line per failure, nothing else
    assert all(r.name == "cfsslpy.api.access" and r.exc_info is None and "\n" not in r.getMessage() for r in errors)
    assert errors[0].getMessage().startswith("method=POST path=/raise status=500 bytes=")
    assert 'error="NotImplementedError: OCSP request contains more than one request"' in errors[0].getMessage()


def test_a_direct_handler_that_raises_is_answered_500_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    """The server's own hook (``ServerOptions.direct``, the OCSP hot path) failing: 500, one line, and the
    same connection and worker go on."""

    def direct(request: Any, remote: str) -> Any:
        if request.path == "/boom":
            raise AttributeError("'Request' object has no attribute 'command'")
        return None

    with caplog.at_level(logging.INFO), worker(failing_app, True, direct) as (port, thread):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/boom")
        reply = conn.getresponse()
        assert reply.status == 500 and reply.getheader("Connection") == "close"
        assert reply.read() == b'{"success":false,"result":null,"errors":[{"code":0,"message":"internal server error"}],"messages":[]}\n'
        conn.close()
        assert exchange(port, "GET", "/fine") == (200, b"ok\n")
        assert thread.is_alive()
        assert settled(lambda: close_wait(port)) == []
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.exc_info is None and record.getMessage().startswith("method=GET path=/boom status=500 bytes=")
    assert "AttributeError" in record.getMessage()


def test_the_event_loop_reports_errors_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.new_event_loop()
    try:
        with caplog.at_level(logging.INFO):
            srv.loop_error(loop, {"message": "Exception in callback\nforged line", "exception": ValueError("bad\nthing")})
    finally:
        loop.close()
    (record,) = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is None and "\n" not in record.getMessage()
    assert "ValueError" in record.getMessage()


@pytest.mark.parametrize(
    "value, logged",
    [
        ("plain", "plain"),
        ("a b", '"a b"'),
        ("evil\n2026/01/01 00:00:00 [ERROR] forged", '"evil\\n2026/01/01 00:00:00 [ERROR] forged"'),
        ("\x1b[2J", '"\\u001b[2J"'),
        ("x" * 10_000, "x" * 256),
        ("\n" * 10_000, '"' + "\\n" * 256 + '"'),
    ],
)
def test_log_fields_are_quoted_and_bounded(value: str, logged: str) -> None:
    assert logfmt(value) == logged


def test_a_rejected_client_cn_is_logged_quoted_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    app = srv.require_client_cn(failing_app, re.compile("^client-good$"))
    environ = {
        srv.CLIENT_CN: "client-bad\n2026/01/01 00:00:00 [ERROR] forged" + "x" * 5000,
        "PATH_INFO": "/fine",
        "wsgi.input": io.BytesIO(),
    }
    seen: list[str] = []
    with caplog.at_level(logging.INFO):
        assert app(environ, lambda status, headers: seen.append(status)) == [b"Invalid CN\n"]
    assert seen == ["403 Forbidden"]
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.startswith('Rejected client cert CN "client-bad\\n2026/01/01 00:00:00 [ERROR] forged')
    assert "\n" not in message and len(message) < 400
    assert message.endswith(" does not match regex ^client-good$")


def test_a_failing_deadline_sweep_is_one_log_line_and_the_worker_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from cfsslpy.api.connection import Connection

    def broken(self: Connection, now: float) -> str | None:
        raise RuntimeError("sweep bug")

    monkeypatch.setattr(Connection, "overdue", broken)
    with caplog.at_level(logging.INFO), worker(failing_app, True) as (port, thread):
        idle = socket.create_connection(("127.0.0.1", port))  # something for the sweep to look at
        time.sleep(0.8)  # a few sweeps
        assert thread.is_alive()
        assert exchange(port, "GET", "/fine") == (200, b"ok\n")
        idle.close()
    failures = [r for r in caplog.records if "deadline sweep failed" in r.getMessage()]
    assert failures and all(r.exc_info is None and "RuntimeError: sweep bug" in r.getMessage() for r in failures)
