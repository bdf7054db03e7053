"""The certdb's connection to its database: one per process (re-opened after ``fork``), thread-safe, every
write one transaction, driver errors turned into cfssl's.

**SQLite**: every write is one ``BEGIN IMMEDIATE`` transaction (:mod:`cfsslpy.sqlitedb`). **PostgreSQL**
(several serve/ocspserve instances behind a load balancer) goes through pg8000 (:mod:`cfsslpy.pgdriver`); a
read that fails because the connection was lost is retried once on a new one. The schema migrations the
database lacks are applied on the first connection (:mod:`cfsslpy.migrations`).

Database errors are 11000 with the driver's text (never the DSN's password).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from cfsslpy import migrations, sqlitedb
from cfsslpy.certdb.dbconfig import DBConfig
from cfsslpy.certdb.dialect import POSTGRES, SQLITE
from cfsslpy.certdb.sqlite import FILE_ERRORS, open_sqlite
from cfsslpy.errors import Category, CfsslError, Reason, Unavailable

log = logging.getLogger("cfsslpy.certdb")  # the name the module had before it became a package

T = TypeVar("T")

# What a write transaction's body is handed: execute(sql, params) -> the rowcount
Execute = Callable[[str, Sequence[Any]], int]


class Connection:
    """The connection to the database of ``config``. Thread-safe and fork-safe."""

    def __init__(self, config: DBConfig, *, busy_timeout: float) -> None:
        self.config = config
        self.busy_timeout = busy_timeout
        self.dialect = SQLITE if config.driver == "sqlite3" else POSTGRES
        self._lock = threading.RLock()
        self._conn: Any = None
        self._inherited: list[Any] = []
        self._pid = os.getpid()
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _call(ref, "_after_fork"))

    def _after_fork(self) -> None:
        self._lock = threading.RLock()
        if self._conn is not None:
            self._inherited.append(self._conn)  # never used nor closed in the child (SQLite's rule)
        self._conn = None
        self._pid = os.getpid()

    def connect(self) -> Any:
        """The driver's connection, opened (and the schema brought up to date) on first use."""
        if self._conn is not None:
            return self._conn
        if self.config.driver == "sqlite3":
            conn = open_sqlite(self.config.data_source, self.busy_timeout)
        else:
            from cfsslpy import pgdriver

            conn = pgdriver.connect(self.config.data_source)
        try:
            self._conn = conn
            self._ensure_schema()
        except BaseException:
            self._conn = None
            _close_quietly(conn)
            raise
        return conn

    def open(self) -> None:
        """Connect now, under the lock, with driver errors as cfssl's (so a bad data source fails up front)."""
        with self._lock, self.errors():
            self.connect()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                _close_quietly(self._conn)
                self._conn = None

    def _ensure_schema(self) -> None:
        """Apply the schema migrations this database lacks (:mod:`cfsslpy.migrations`)."""
        conn = self._conn
        if self.config.driver == "sqlite3":
            migrations.migrate_sqlite(conn, timeout=self.busy_timeout)
        else:
            from cfsslpy import pgdriver

            pgdriver.ensure_schema(conn)

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Driver errors become cfssl's 11000 with the driver's text (never the DSN's password)."""
        try:
            yield
        except CfsslError:
            raise
        except Exception as exc:
            if not _is_db_error(exc):
                raise
            lost = self.config.driver != "sqlite3" and _is_connection_error(exc)
            if lost and self._conn is not None:
                # the server restarted or the network dropped: the next call connects again
                _close_quietly(self._conn)
                self._conn = None
            message = _driver_message(exc)
            if self.config.driver == "sqlite3" and any(part in message for part in FILE_ERRORS):
                message = f"{self.config.data_source}: {message}"  # a write failure names the file
            log.debug("certdb error on %s: %s", self.config.redacted(), message)
            if not lost and self.config.driver != "sqlite3":
                from cfsslpy import pgdriver

                lost = pgdriver.server_state(exc) in pgdriver.UNAVAILABLE_STATES  # shutting down, starting up
            raise (Unavailable if lost else CfsslError)(Category.CERT_STORE, Reason.UNKNOWN, message) from None

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run a query. On PostgreSQL a read that fails because the connection was lost is retried once on a
        new connection (reads are safe to repeat; writes are not retried: the caller sees 11000)."""
        try:
            return self._read_once(sql, params)
        except CfsslError:
            if self.config.driver == "sqlite3" or self._conn is not None:
                raise
            return self._read_once(sql, params)

    def _read_once(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._lock, self.errors():
            conn = self.connect()

            def query() -> list[Any]:
                cur = conn.cursor()
                try:
                    cur.execute(self.dialect.sql(sql), tuple(params))
                    return list(cur.fetchall())
                finally:
                    cur.close()

            if self.config.driver == "sqlite3":
                return sqlitedb.retry_busy(query, self.busy_timeout)
            try:
                return query()
            finally:
                conn.rollback()  # end the implicit read transaction (no snapshot held between calls)

    def write(self, body: Callable[[Execute], T]) -> T:
        """Run ``body(execute)`` in one write transaction; ``execute(sql, params)`` returns the rowcount."""
        with self._lock, self.errors():
            conn = self.connect()
            if self.config.driver == "sqlite3":
                return sqlitedb.write_transaction(conn, lambda c: body(self._executor(c)), self.busy_timeout)
            try:
                result = body(self._executor(conn))
                conn.commit()
                return result
            except BaseException:
                _rollback_quietly(conn)
                raise

    def _executor(self, conn: Any) -> Execute:
        def execute(sql: str, params: Sequence[Any] = ()) -> int:
            cur = conn.cursor()
            try:
                cur.execute(self.dialect.sql(sql), tuple(params))
                return int(cur.rowcount)
            finally:
                cur.close()

        return execute

    def query(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """A query inside the caller's write transaction (the lock is held)."""
        cur = self._conn.cursor()
        try:
            cur.execute(self.dialect.sql(sql), tuple(params))
            return list(cur.fetchall())
        finally:
            cur.close()

    def serialise(self, execute: Execute, key: str) -> None:
        """Make a read-then-write on ``key`` exclusive until the transaction ends. SQLite's ``BEGIN IMMEDIATE``
        already is; PostgreSQL (READ COMMITTED) needs a transaction-scoped advisory lock, or two processes
        read the same value and both write what they derived from it."""
        if self.config.driver == "postgres":
            execute("SELECT pg_advisory_xact_lock(hashtext(?))", (key,))


def _is_db_error(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.Error):
        return True
    module = type(exc).__module__ or ""
    return module.startswith("pg8000") or module.startswith("scramp") or isinstance(exc, (OSError, ConnectionError))


def _is_connection_error(exc: BaseException) -> bool:
    """A lost connection (as opposed to an SQL error): pg8000's InterfaceError, or a socket error."""
    return isinstance(exc, (OSError, ConnectionError)) or type(exc).__name__ == "InterfaceError"


def _driver_message(exc: BaseException) -> str:
    if isinstance(exc, sqlite3.Error):
        return str(exc)
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], dict):  # pg8000: {"S": severity, "C": code, "M": message, ...}
        return str(args[0].get("M", exc))
    return str(exc)


def is_duplicate(message: str) -> bool:
    """The driver's message says a unique constraint refused the row (SQLite or PostgreSQL wording)."""
    return "UNIQUE constraint failed" in message or "duplicate key" in message


def _close_quietly(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # closing a broken connection must not hide the original error
        pass


def _rollback_quietly(conn: Any) -> None:
    try:
        conn.rollback()
    except Exception:
        pass


def _call(ref: weakref.ref[Any], method: str) -> None:
    obj = ref()
    if obj is not None:
        getattr(obj, method)()
