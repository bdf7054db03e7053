"""A bounded load test of ``serve``: 2,000 sign requests at concurrency 32 over keep-alive connections.

Asserts zero errors, and that the memory of the server processes (VmRSS of the supervisor and its
workers) after the run stays within a small bound of what it was after a 200-request warm-up: nothing
accumulates per request or per connection.
"""

from __future__ import annotations

import http.client
import itertools
import json
import threading
import time
from pathlib import Path

import pytest
from conftest import RunCli, make_ca
from integration.test_serve import SIGN, new_csr, serving

pytestmark = [pytest.mark.integration]

CONCURRENCY = 32
WARMUP = 200
REQUESTS = 2000
# Allowed RSS growth over the whole server (2 workers + supervisor) between the warm-up and the end.
RSS_SLACK = 6 * 1024 * 1024


def rss(pids: set[int]) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def load(conns: list[http.client.HTTPConnection], bodies: list[bytes], total: int) -> list[str]:
    """``total`` sign requests, one thread per keep-alive connection; the errors.

    The same connections serve the warm-up and the measured run, so the run reaches exactly the worker
    processes (and threads) the warm-up reached.
    """
    counter = itertools.count()
    lock = threading.Lock()
    errors: list[str] = []

    def client(conn: http.client.HTTPConnection) -> None:
        while True:
            with lock:
                n = next(counter)
            if n >= total:
                return
            try:
                conn.request("POST", SIGN, body=bodies[n % len(bodies)], headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                if resp.status != 200 or not json.loads(data)["success"]:
                    errors.append(f"{resp.status}: {data[:200]!r}")
            except Exception as exc:  # every failure is counted, none may happen
                errors.append(repr(exc))
                conn.close()  # http.client reconnects on the next request

    threads = [threading.Thread(target=client, args=(conn,)) for conn in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "load threads did not finish"
    return errors


def test_sign_load_has_no_errors_and_flat_memory(run_cli: RunCli, tmp_path: Path) -> None:
    ca = make_ca(run_cli, tmp_path / "ca")
    bodies = [
        json.dumps({"certificate_request": new_csr(f"host{i}.example.net", (f"host{i}.example.net",))[0]}).encode() for i in range(64)
    ]
    with serving("-ca", str(ca.cert), "-ca-key", str(ca.key), "-workers", "2") as server:
        pids = {server.proc.pid, *server.children()}
        assert len(pids) == 3
        conns = [http.client.HTTPConnection(server.host, server.port, timeout=30) for _ in range(CONCURRENCY)]
        try:
            assert load(conns, bodies, WARMUP) == []
            before = rss(pids)
            started = time.monotonic()
            errors = load(conns, bodies, REQUESTS)
            elapsed = time.monotonic() - started
            after = rss(pids)
        finally:
            for conn in conns:
                conn.close()
        assert errors == [], f"{len(errors)} errors, first: {errors[:3]}"
        assert {server.proc.pid, *server.children()} == pids, "a worker was replaced during the run"
        growth = after - before
        print(f"{REQUESTS} signs in {elapsed:.1f}s ({REQUESTS / elapsed:.0f}/s); RSS {before / 2**20:.1f} -> {after / 2**20:.1f} MiB")
        assert growth < RSS_SLACK, f"server RSS grew by {growth / 2**20:.1f} MiB over {REQUESTS} requests"
        assert server.stop() == 0
