"""The certdb schema as numbered migrations, applied by a small runner that keeps goose's books.

cfssl defines its schema as goose migration files (``certdb/<dialect>/migrations/NNN_Name.sql``) and expects
an administrator to run ``goose up`` before the first start. The files are shipped here unchanged
(``sqlite/`` and ``pg/``, byte for byte cfssl's at v1.6.5, 96259aa2, and still at its master), beside our
own additions, numbered from 1001 so they never take a number cfssl may use later:

* ``001`` (cfssl): the ``certificates`` and ``ocsp_responses`` tables;
* ``002`` (cfssl): the ``issued_at``, ``not_before``, ``metadata``, ``sans`` and ``common_name`` columns;
* ``1001`` (cfsslpy): ``cfsslpy_crl_numbers``, the last CRL number issued per authority key identifier;
* ``1002`` (cfsslpy, PostgreSQL only): ``cfsslpy_auth_replay``, authsign's replay guard shared by every
  ``serve`` instance on the database (:mod:`cfsslpy.certdb.replay`; an SQLite certdb is one host's, whose
  guard keeps its own file, so that dialect has no 1002).

:func:`migrate_sqlite` and :func:`migrate_postgres` bring a database up to date on every first connection.
They read goose's ``goose_db_version`` table with goose's rules (the newest row of a version says whether it
is applied), apply every missing migration in version order inside one transaction, and record each one as
goose does (a row ``(version_id, is_applied=true)``; the table is created with goose's own DDL and its
version 0 row). cfssl's own ``goose up`` afterwards finds nothing to do. Writers are serialised by
``BEGIN IMMEDIATE`` (SQLite) or a transaction-scoped advisory lock (PostgreSQL), and the version table is
read again once the lock is held, so processes starting together apply each migration once.

goose takes the newest applied row as the current version and runs only files above it. Once 1001 is
recorded, a ``goose up`` with a future cfssl ``003`` would therefore skip it; this runner does not (it
applies every unrecorded version), so such a file belongs here too.

A migration whose tables and columns are all already there (an earlier cfsslpy added them without a version
row) is only recorded; one that is partly there runs only its statements whose objects are missing. A
recorded migration whose table was dropped gets it back (as cfsslpy always did), without a second row. A
database whose versions are all recorded and whose objects all exist is only read, so a role without write
rights can use it; on PostgreSQL such a role may also use a schema whose version rows are missing, or that
lacks tables of our own migrations (from 1001: a newer cfsslpy's reader on a database an older one made);
they are left for the next writer.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from cfsslpy import sqlitedb

GOOSE_TABLE = "goose_db_version"
OURS_FROM = 1001  # the first version number of our own migrations (cfssl's are below)

# goose's dialect.go, verbatim (SQLite keeps the DDL text in sqlite_master): the version table, which goose
# creates with a first row (version 0, applied)
_GOOSE_DDL = {
    "sqlite": """CREATE TABLE goose_db_version (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                version_id INTEGER NOT NULL,
                is_applied INTEGER NOT NULL,
                tstamp TIMESTAMP DEFAULT (datetime('now'))
            );""",
    "pg": """CREATE TABLE goose_db_version (
            \tid serial NOT NULL,
                version_id bigint NOT NULL,
                is_applied boolean NOT NULL,
                tstamp timestamp NULL default now(),
                PRIMARY KEY(id)
            );""",
}

# a schema object a statement creates: (table, None) for a table, (table, column) for a column
SchemaObject = tuple[str, str | None]

_CREATE_TABLE = re.compile(r"^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?\"?(\w+)\"?", re.I)
_ALTER_TABLE = re.compile(r"^\s*ALTER\s+TABLE\s+\"?(\w+)\"?", re.I)
_ADD_COLUMN = re.compile(r"\bADD\s+COLUMN\s+(?:IF\s+NOT\s+EXISTS\s+)?\"?(\w+)\"?", re.I)


@dataclass(frozen=True)
class Statement:
    """One statement of a migration's Up section and the tables/columns it creates."""

    sql: str
    creates: tuple[SchemaObject, ...]


@dataclass(frozen=True)
class Migration:
    """One numbered migration file (``NNN_Name.sql``): its version, name and Up statements."""

    version: int
    name: str
    statements: tuple[Statement, ...]

    @property
    def creates(self) -> tuple[SchemaObject, ...]:
        return tuple(obj for statement in self.statements for obj in statement.creates)


def load(dialect: str) -> tuple[Migration, ...]:
    """The migrations of ``dialect`` (``"sqlite"`` or ``"pg"``), in version order, from the package data."""
    found = []
    for entry in resources.files(__name__).joinpath(dialect).iterdir():
        name = entry.name
        if not name.endswith(".sql"):
            continue
        number, _, rest = name.partition("_")
        found.append(Migration(int(number), rest[: -len(".sql")], up_statements(entry.read_text(encoding="utf-8"))))
    return tuple(sorted(found, key=lambda m: m.version))


def up_statements(text: str) -> tuple[Statement, ...]:
    """The statements of a goose file's ``-- +goose Up`` section, split as goose splits them.

    goose ends a statement at a line whose text ends with ``;`` and ignores ``--`` comment lines. Our files
    need nothing more (no ``StatementBegin``/``StatementEnd`` blocks), so those are refused.
    """
    statements: list[Statement] = []
    section = ""
    buffer: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("-- +goose"):
            directive = stripped[len("-- +goose") :].strip()
            if directive not in ("Up", "Down"):
                raise ValueError(f"unsupported goose directive: {directive}")
            section = directive
            continue
        if section != "Up" or stripped.startswith("--") or not stripped:
            continue
        buffer.append(line)
        if stripped.endswith(";"):
            sql = "\n".join(buffer).strip()
            statements.append(Statement(sql, _creates(sql)))
            buffer = []
    if buffer:
        raise ValueError("a statement of the Up section does not end with ';'")
    return tuple(statements)


def _creates(sql: str) -> tuple[SchemaObject, ...]:
    created = _CREATE_TABLE.match(sql)
    if created:
        return ((created.group(1).lower(), None),)
    altered = _ALTER_TABLE.match(sql)
    if altered:
        table = altered.group(1).lower()
        return tuple((table, column.lower()) for column in _ADD_COLUMN.findall(sql))
    return ()


def applied_versions(rows: Iterable[Sequence[Any]]) -> set[int]:
    """The applied versions, by goose's rule: rows in ``id`` order, the newest row of a version decides."""
    state: dict[int, bool] = {}
    for version, is_applied in rows:
        state[int(version)] = bool(is_applied)
    return {version for version, applied in state.items() if applied}


@dataclass(frozen=True)
class Step:
    """One migration to bring about: the statements still to run, and whether to record its version."""

    migration: Migration
    statements: tuple[str, ...]
    record: bool


def plan(migrations: Sequence[Migration], applied: set[int], present: set[SchemaObject]) -> list[Step]:
    """What to do, in version order: every unrecorded migration, and every recorded one whose objects are gone.

    A statement is skipped when everything it creates is already there, so a migration an earlier cfsslpy
    applied without recording the version is only recorded. A recorded migration with a missing table or
    column (a table dropped by hand) gets it back, as cfsslpy always did, and is not recorded twice.
    """
    steps = []
    for migration in migrations:
        todo = tuple(s.sql for s in migration.statements if not s.creates or not set(s.creates) <= present)
        recorded = migration.version in applied
        if todo and recorded:
            todo = tuple(s.sql for s in migration.statements if s.creates and not set(s.creates) & present)
        if not recorded or todo:
            steps.append(Step(migration, todo, not recorded))
    return steps


# -----------------------------------------------------------------------------------------------------------
# the runner, over a minimal view of a connection


@dataclass
class _Cursor:
    """What the runner needs of a database: run a statement, fetch rows, describe the schema."""

    execute: Callable[[str, Sequence[Any]], list[Any]]
    present: Callable[[set[str]], set[SchemaObject]]
    placeholder: str
    true: Any


def _run(cur: _Cursor, dialect: str, migrations: Sequence[Migration]) -> None:
    """Apply and record what is missing (the caller holds the lock and commits)."""
    present, applied = _state(cur, migrations)
    if applied is None:
        cur.execute(_GOOSE_DDL[dialect], ())
        _record(cur, 0)
    for step in plan(migrations, applied or set(), present):
        for sql in step.statements:
            cur.execute(sql, ())
        if step.record:
            _record(cur, step.migration.version)


def _record(cur: _Cursor, version: int) -> None:
    p = cur.placeholder
    cur.execute(f"INSERT INTO goose_db_version (version_id, is_applied) VALUES ({p}, {p})", (version, cur.true))


def _state(cur: _Cursor, migrations: Sequence[Migration]) -> tuple[set[SchemaObject], set[int] | None]:
    """The tables/columns of the migrations that exist, and the applied versions (``None``: no version table)."""
    present = cur.present({table for m in migrations for table, _ in m.creates} | {GOOSE_TABLE})
    if (GOOSE_TABLE, None) not in present:
        return present, None
    return present, applied_versions(cur.execute("SELECT version_id, is_applied FROM goose_db_version ORDER BY id", ()))


def _up_to_date(cur: _Cursor, migrations: Sequence[Migration]) -> bool:
    """True when every migration is recorded and its objects exist (read only: nothing to lock or write)."""
    present, applied = _state(cur, migrations)
    return applied is not None and not plan(migrations, applied, present)


def _only_records(cur: _Cursor, migrations: Sequence[Migration], *, missing_ok: int | None = None) -> bool:
    """True when every table and column is there and only version rows are missing; with ``missing_ok``, the
    objects of migrations numbered from it may be missing too."""
    present, applied = _state(cur, migrations)
    steps = plan(migrations, applied or set(), present)
    return applied is not None and not any(s.statements for s in steps if missing_ok is None or s.migration.version < missing_ok)


# -----------------------------------------------------------------------------------------------------------
# SQLite


def migrate_sqlite(conn: sqlite3.Connection, *, timeout: float) -> None:
    """Bring an SQLite certdb up to date. ``conn`` is in autocommit mode (:func:`cfsslpy.sqlitedb.connect`);
    the work is one ``BEGIN IMMEDIATE`` transaction, retried while the file is busy."""
    migrations = load("sqlite")
    cur = _sqlite_cursor(conn)
    if sqlitedb.retry_busy(lambda: _up_to_date(cur, migrations), timeout):
        return
    sqlitedb.write_transaction(conn, lambda _: _run(cur, "sqlite", migrations), timeout)


def _sqlite_cursor(conn: sqlite3.Connection) -> _Cursor:
    def execute(sql: str, params: Sequence[Any]) -> list[Any]:
        return list(conn.execute(sql, tuple(params)).fetchall())

    def present(tables: set[str]) -> set[SchemaObject]:
        found: set[SchemaObject] = set()
        for (name,) in execute("SELECT name FROM sqlite_master WHERE type = 'table'", ()):
            table = _text(name).lower()
            if table in tables:
                found.add((table, None))
                found.update((table, _text(row[1]).lower()) for row in execute(f'PRAGMA table_info("{table}")', ()))
        return found

    return _Cursor(execute, present, "?", 1)


def _text(value: Any) -> str:
    return bytes(value).decode() if isinstance(value, (bytes, bytearray, memoryview)) else str(value)


# -----------------------------------------------------------------------------------------------------------
# PostgreSQL


def migrate_postgres(conn: Any, *, lock_key: int) -> None:
    """Bring a PostgreSQL certdb up to date over a DB-API connection (pg8000, autocommit off), then commit.

    Writers take ``pg_advisory_xact_lock(lock_key)`` and read the schema again under it. The catalog is read
    with plain queries, not ``to_regclass``: those go through the backend's catalog cache, which does not yet
    see tables another process committed while this transaction waited for the lock.
    """
    migrations = load("pg")
    cur = _pg_cursor(conn)
    try:
        if _up_to_date(cur, migrations):
            conn.rollback()
            return
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
        _run(cur, "pg", migrations)
        conn.commit()
    except BaseException as exc:
        _rollback_quietly(conn)
        if _sqlstate(exc) == "42501" and _only_records(cur, migrations, missing_ok=OURS_FROM):
            # a role without write rights (a read-only ocspserve) on a schema that has cfssl's tables, whose
            # versions an earlier cfsslpy did not record or that lacks a table of ours an older cfsslpy did not
            # make (such a reader never writes there): usable as it is, the next writer completes it
            conn.rollback()
            return
        raise


def _rollback_quietly(conn: Any) -> None:
    try:
        conn.rollback()
    except Exception:  # the connection is broken: the original error is the one to report
        pass


def _sqlstate(exc: BaseException) -> str:
    args = getattr(exc, "args", ())
    return str(args[0].get("C", "")) if args and isinstance(args[0], dict) else ""  # pg8000's error fields


def _pg_cursor(conn: Any) -> _Cursor:
    def execute(sql: str, params: Sequence[Any]) -> list[Any]:
        cur = conn.cursor()
        try:
            if params:
                cur.execute(sql, tuple(params))
            else:
                cur.execute(sql)
            return list(cur.fetchall()) if cur.description else []
        finally:
            cur.close()

    def present(tables: set[str]) -> set[SchemaObject]:
        wanted = sorted(tables)
        rows = execute(
            "SELECT c.relname, a.attname FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
            f"WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname IN ({', '.join('%s' for _ in wanted)})",
            wanted,
        )
        found: set[SchemaObject] = {(str(table), None) for table, _ in rows}
        found.update((str(table), str(column)) for table, column in rows if column is not None)
        return found

    return _Cursor(execute, present, "%s", True)
