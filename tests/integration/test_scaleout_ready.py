"""The certdb readiness probe behind ``GET /api/v1/cfsslpy/ready`` (issue 15): bounded in time, one probe at a time.

A PostgreSQL "server" that accepts connections and never answers (a stuck host, a black-holed network after
the TCP handshake) must not hold a readiness request for longer than the probe's timeout, nor pile up
threads: while the one probe is stuck, every check fails at once. The database coming back makes the next
check pass. SQLite certdbs are probed the same way.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cfsslpy.certdb import DBConfig
from cfsslpy.certdb.ready import Readiness
from cfsslpy.errors import CfsslError

pytestmark = [pytest.mark.integration]


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port whose server accepts connections and then says nothing."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not done.is_set():
            try:
                accepted.append(listener.accept()[0])
            except (TimeoutError, OSError):
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        done.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        listener.close()


def test_a_silent_database_fails_the_check_within_the_timeout(silent_server: int) -> None:
    probe = Readiness(DBConfig("postgres", f"postgres://cfssl@127.0.0.1:{silent_server}/certs?sslmode=disable"), timeout=0.5)
    start = time.monotonic()
    with pytest.raises(CfsslError) as info:
        probe.check()
    assert 0.4 < time.monotonic() - start < 3.0
    assert (info.value.code, info.value.message) == (11000, "the certificate database did not answer within 0.5s")
    # the stuck probe is still the one in flight: further checks fail at once, without a new thread
    threads = threading.active_count()
    for _ in range(5):
        start = time.monotonic()
        with pytest.raises(CfsslError):
            probe.check()
        assert time.monotonic() - start < 0.2
    assert threading.active_count() == threads


def test_an_unreachable_database_fails_with_the_drivers_text() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    probe = Readiness(DBConfig("postgres", f"postgres://cfssl@127.0.0.1:{port}/certs?sslmode=disable"), timeout=5.0)
    with pytest.raises(CfsslError) as info:
        probe.check()
    assert info.value.code == 11000 and "connection refused" in info.value.message, info.value.message


def test_sqlite_certdb_is_ready_and_a_missing_directory_is_not(tmp_path: Path) -> None:
    ready = Readiness(DBConfig("sqlite3", str(tmp_path / "certs.db")))
    ready.check()
    ready.check()
    ready.close()
    missing = Readiness(DBConfig("sqlite3", str(tmp_path / "no" / "such" / "certs.db")))
    with pytest.raises(CfsslError) as info:
        missing.check()
    assert info.value.code == 11000
