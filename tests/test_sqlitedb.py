from __future__ import annotations

import multiprocessing
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cfsslpy import sqlitedb


def test_is_busy_recognises_lock_errors_only() -> None:
    assert sqlitedb.is_busy(sqlite3.OperationalError("database is locked"))
    assert not sqlitedb.is_busy(sqlite3.OperationalError("no such table: x"))
    assert not sqlitedb.is_busy(ValueError("database is locked"))


def test_retry_busy_retries_until_success_and_gives_up_at_the_deadline() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise sqlite3.OperationalError("database is locked")
        return "done"

    assert sqlitedb.retry_busy(flaky, 5) == "done"
    assert len(calls) == 3

    def always_locked() -> None:
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(sqlite3.OperationalError, match="locked"):
        sqlitedb.retry_busy(always_locked, 0.05)


def test_retry_busy_does_not_retry_other_errors() -> None:
    calls = []

    def broken() -> None:
        calls.append(1)
        raise sqlite3.OperationalError("disk I/O error")

    with pytest.raises(sqlite3.OperationalError):
        sqlitedb.retry_busy(broken, 5)
    assert calls == [1]


def test_connect_creates_the_file_0600_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    conn = sqlitedb.connect(str(path))
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_write_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    conn = sqlitedb.connect(str(tmp_path / "x.db"))
    try:
        conn.execute("CREATE TABLE t (v INTEGER)")

        def half(c: sqlite3.Connection) -> None:
            c.execute("INSERT INTO t VALUES (1)")
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            sqlitedb.write_transaction(conn, half, 1)
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0
        assert not conn.in_transaction
    finally:
        conn.close()


def _hammer(path: str, barrier: multiprocessing.synchronize.Barrier, n: int) -> None:
    conn = sqlitedb.connect(path)
    sqlitedb.write_transaction(conn, lambda c: c.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)"), 10)
    barrier.wait(10)
    for i in range(n):
        sqlitedb.write_transaction(conn, lambda c, i=i: c.execute("INSERT INTO t VALUES (?)", (i,)), 10)
    conn.close()


def test_fresh_file_opened_by_many_processes_at_once_loses_no_write(tmp_path: Path) -> None:
    # Switching a new file to WAL and WAL recovery return SQLITE_BUSY without calling the busy handler:
    # without retry_busy a few of these processes fail with "database is locked".
    ctx = multiprocessing.get_context("fork")
    for round_ in range(5):
        path = str(tmp_path / f"r{round_}.db")
        barrier = ctx.Barrier(8)
        procs = [ctx.Process(target=_hammer, args=(path, barrier, 25)) for _ in range(8)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        conn = sqlite3.connect(path)
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 8 * 25
        conn.close()


_WRITER = """
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
for i in range(50):
    c.execute("INSERT INTO t VALUES (?)", ("child",))
c.close()
"""
_COUNTER = """
import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM t").fetchone()[0])
"""


def test_opening_a_second_connection_keeps_the_first_ones_locks(tmp_path: Path) -> None:
    # POSIX locks belong to the process: closing any descriptor of the file drops them all. If connect()
    # opened and closed an existing database file itself, the first connection would lose its shared lock;
    # the child, closing last, would then delete the WAL the first connection still writes to, and those
    # writes would be invisible to every other process (lost records, then a malformed database).
    path = str(tmp_path / "x.db")
    first = sqlitedb.connect(path)
    first.execute("CREATE TABLE t (v TEXT)")
    first.execute("INSERT INTO t VALUES ('first')")
    second = sqlitedb.connect(path)  # e.g. a second CertDB in the same process
    subprocess.run([sys.executable, "-c", _WRITER, path], check=True, timeout=60)
    for _ in range(10):
        first.execute("INSERT INTO t VALUES ('first')")
    seen = subprocess.run([sys.executable, "-c", _COUNTER, path], check=True, capture_output=True, text=True, timeout=60)
    assert int(seen.stdout) == 61
    second.close()
    first.close()
