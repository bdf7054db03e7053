"""SQLite files shared by several processes: opening them safely and riding out lock contention.

Several cfsslpy processes may use one SQLite file at once (pre-forked ``serve`` workers, a ``revoke`` run
beside a running ``ocspserve``). SQLite serialises writers with file locks and makes a blocked connection
wait through its busy handler, but not in every case: switching a new file to WAL, running WAL recovery,
or upgrading a read transaction to a write one returns ``SQLITE_BUSY`` at once. :func:`retry_busy` retries
those with a jittered backoff until the caller's deadline, so contention costs time, never a request or a
record; any other error (a full disk, a corrupt file) is raised at once.

Connections are opened in autocommit mode (``isolation_level=None``): callers write ``BEGIN IMMEDIATE`` /
``COMMIT`` themselves, so a write transaction takes the write lock up front instead of failing half-way.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_BUSY_CODES = frozenset(code for code in (getattr(sqlite3, "SQLITE_BUSY", 5), getattr(sqlite3, "SQLITE_LOCKED", 6)) if code is not None)


def is_busy(exc: BaseException) -> bool:
    """True for SQLite's transient "database is locked / busy" conditions (worth retrying)."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _BUSY_CODES
    text = str(exc)
    return "locked" in text or "busy" in text


def retry_busy(operation: Callable[[], T], timeout: float) -> T:
    """Run ``operation`` until it does not fail with a busy/locked error or ``timeout`` seconds pass.

    ``operation`` must be safe to repeat: it starts and ends its own transaction (rolling back on error).
    """
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        try:
            return operation()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.1)


def connect(path: str | None, *, busy_timeout: float = 5.0, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """Open ``path`` (``None``: a private in-memory database) for shared multi-process use.

    A new file is created 0600 before SQLite touches it (it may hold secrets' digests or certificates). File
    databases use the WAL journal, so readers never block the writer nor the writer the readers, and
    ``synchronous`` (``NORMAL``: durable across a process crash; ``FULL``: also across power loss).
    """
    if path is None:
        return sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    _create_private(path)
    conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")

        def pragmas() -> None:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")

        retry_busy(pragmas, busy_timeout)
        conn.execute(f"PRAGMA synchronous = {synchronous}")
    except BaseException:
        conn.close()
        raise
    return conn


def _create_private(path: str) -> None:
    """Create ``path`` empty and 0600 if it does not exist yet (SQLite gives its -wal/-shm files the same mode).

    An existing file is never opened here: SQLite's locks are POSIX advisory locks, which the kernel drops
    for the whole process when *any* descriptor of the file is closed. Opening and closing an existing
    database beside a live connection of this process would silently release that connection's locks; a
    process elsewhere would then believe it was the last user, checkpoint and reset the WAL under us, and the
    file would be corrupt ("database disk image is malformed"). A file that did not exist holds no locks.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def write_transaction(conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], T], timeout: float) -> T:
    """Run ``body(conn)`` inside ``BEGIN IMMEDIATE`` … ``COMMIT``, retried as a whole while the file is busy.

    Any exception from ``body`` rolls the transaction back and propagates.
    """

    def attempt() -> T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = body(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    return retry_busy(attempt, timeout)
