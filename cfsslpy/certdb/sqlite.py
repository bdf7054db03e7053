"""SQLite specifics of the certdb (the embedded default): opening the file, mattn/go-sqlite3's time layout, and
which driver errors are about the file itself.

The file is opened by :mod:`cfsslpy.sqlitedb`: WAL journal, ``synchronous=FULL`` (a committed record survives
a power loss), created 0600, lock contention waited out. In SQLite the ``blob`` columns hold TEXT (Go binds
strings as TEXT; a query with a TEXT parameter never matches a BLOB value), timestamps are TEXT in UTC.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3

from cfsslpy import sqlitedb
from cfsslpy.certdb.records import ZERO_TIME
from cfsslpy.errors import Category, CfsslError, Reason

# SQLite errors about the database file itself (full disk, unwritable, missing directory)
FILE_ERRORS = ("disk is full", "readonly database", "disk I/O error")


def format_time(value: dt.datetime | None) -> str:
    """mattn/go-sqlite3's layout for a UTC time: ``2026-11-26 18:00:00+00:00`` (fraction only when non-zero)."""
    value = ZERO_TIME if value is None else value.astimezone(dt.timezone.utc)
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if value.year < 1000:  # strftime does not pad years below 1000 on every platform
        text = f"{value.year:04d}" + text[text.index("-") :]
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "+00:00"


def open_sqlite(path: str, busy_timeout: float) -> sqlite3.Connection:
    if path.startswith("file:"):
        path = path[5:].split("?", 1)[0]
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise CfsslError(Category.CERT_STORE, Reason.UNKNOWN, "unable to open database file: no such file or directory")
    try:
        conn = sqlitedb.connect(path, busy_timeout=busy_timeout, synchronous="FULL")
    except OSError as exc:
        raise CfsslError(Category.CERT_STORE, Reason.UNKNOWN, f"unable to open database file: {exc.strerror or exc}") from None
    conn.text_factory = bytes  # a Go driver may have stored raw DER as TEXT: decode column by column
    conn.execute("PRAGMA foreign_keys = OFF")  # cfssl's FK is declared but never enforced by its driver
    return conn
