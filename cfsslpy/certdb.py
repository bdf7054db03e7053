"""The certificate database (cfssl's certdb): issued certificates, their revocation status, OCSP responses.

**Configuration** (``-db-config``, reference §4.4): ``{"driver": "sqlite3"|"postgres", "data_source": DSN}``.
Errors are cfssl's: 5200 ``could not read configuration file`` / ``failed to unmarshal configuration: …`` /
``invalid db configuration``; a driver we do not have is refused up front (cfssl: ``sql: unknown driver``).

**Schema**: cfssl's ``certificates`` and ``ocsp_responses`` tables (migrations 001 and 002, reference §4.4),
column for column, so a database written by cfssl opens here and the other way round. cfssl never creates
its tables (it expects goose to have run); we apply cfssl's goose migration files, and our own numbered
additions (``cfsslpy_crl_numbers``: the last CRL number issued per authority key identifier, which cfssl
ignores), on the first connection, recording each in goose's ``goose_db_version`` table so a later ``goose
up`` finds nothing to do (:mod:`cfsslpy.migrations`).

**Values** are stored the way cfssl's Go drivers store them, because both programs must read each other's
rows: in SQLite the ``blob`` columns hold TEXT (Go binds strings as TEXT; a query with a TEXT parameter never
matches a BLOB value), timestamps are TEXT in mattn/go-sqlite3's layout ``2006-01-02 15:04:05.999999999-07:00``
in UTC, and "not revoked" is Go's zero time ``0001-01-01 00:00:00+00:00``. Serial numbers are decimal
strings, authority key identifiers lowercase hex without separators. cfssl 2016 wrote an empty AKI; such
rows are matched through the AKI of their certificate (and the column filled in) when revoking.

**SQLite** (the embedded default): WAL journal, ``synchronous=FULL`` (a committed record survives a power
loss), created 0600, one connection per process (re-opened after ``fork``), lock contention waited out
(:mod:`cfsslpy.sqlitedb`). Every write is one ``BEGIN IMMEDIATE`` transaction. **PostgreSQL** (several
serve/ocspserve instances behind a load balancer) goes through pg8000, a pure-Python driver that the single
executable carries; DSNs are ``postgres://user:pass@host:port/db?sslmode=…`` URLs, as cfssl's lib/pq takes.

Database errors are 11000 with the driver's text; a failed insert is 11100; revoking an unknown certificate
is 11200 ``failed to revoke the certificate: certificate not found`` (cfssl's codes and messages).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from cryptography import x509

from cfsslpy import migrations, sqlitedb
from cfsslpy.errors import Category, CfsslError, Reason, policy_error
from cfsslpy.gojson import JSONDecodeError, loads
from cfsslpy.inputs import Stdin, read_input

log = logging.getLogger(__name__)

T = TypeVar("T")

DRIVERS = ("sqlite3", "postgres")
STATUSES = ("good", "revoked", "unknown")
ZERO_TIME = dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc)


# -----------------------------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True)
class DBConfig:
    driver: str
    data_source: str

    @classmethod
    def from_json(cls, data: bytes) -> DBConfig:
        try:
            obj = loads(data)
        except JSONDecodeError as exc:
            raise policy_error(f"failed to unmarshal configuration: {exc}") from None
        if not isinstance(obj, dict):
            raise policy_error("invalid db configuration")
        lowered = {k.lower(): v for k, v in obj.items()}
        driver = lowered.get("driver")
        source = lowered.get("data_source")
        if not isinstance(driver, str) or not isinstance(source, str) or not driver or not source:
            raise policy_error("invalid db configuration")
        if driver in ("postgresql", "pgx"):
            driver = "postgres"
        if driver not in DRIVERS:
            raise CfsslError(
                Category.CERT_STORE,
                Reason.UNKNOWN,
                f'unsupported database driver "{driver}" (supported: sqlite3, postgres)',
            )
        return cls(driver, source)

    @classmethod
    def load(cls, spec: str, *, stdin: Stdin | None = None, environ: Mapping[str, str] | None = None) -> DBConfig:
        """The ``-db-config`` file (a path, ``file:``/``env:``); a relative SQLite path is relative to the
        current directory, as in cfssl."""
        try:
            data = read_input(spec, stdin=stdin, environ=environ)
        except Exception:
            raise policy_error("could not read configuration file") from None
        return cls.from_json(data)

    def redacted(self) -> str:
        """The data source for messages: a PostgreSQL URL without its password."""
        if self.driver != "postgres" or "@" not in self.data_source:
            return self.data_source
        head, _, tail = self.data_source.rpartition("@")
        scheme, sep, userinfo = head.partition("://")
        user = userinfo.split(":", 1)[0]
        return f"{scheme}{sep}{user}:***@{tail}" if sep else "***@" + tail


# -----------------------------------------------------------------------------------------------------------
# records


def format_time(value: dt.datetime | None) -> str:
    """mattn/go-sqlite3's layout for a UTC time: ``2026-11-26 18:00:00+00:00`` (fraction only when non-zero)."""
    value = ZERO_TIME if value is None else value.astimezone(dt.timezone.utc)
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if value.year < 1000:  # strftime does not pad years below 1000 on every platform
        text = f"{value.year:04d}" + text[text.index("-") :]
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "+00:00"


# mattn/go-sqlite3's SQLiteTimestampFormats (date, then optionally "T" or " ", minutes, seconds, a fraction of
# up to nanoseconds, a zone); matched explicitly because datetime.fromisoformat's syntax differs per Python version
# SQLite errors about the database file itself (full disk, unwritable, missing directory)
_FILE_ERRORS = ("disk is full", "readonly database", "disk I/O error")

_STORED_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?", re.ASCII)


def parse_time(value: Any) -> dt.datetime | None:
    """A timestamp as any driver may have stored it; ``None`` for NULL. The zero time is returned as is."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc)
    m = _STORED_TIME.fullmatch(str(value).strip())
    if m is None:
        raise CfsslError(Category.CERT_STORE, Reason.UNKNOWN, f"unparseable timestamp {value!r} in the database")
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    offset = dt.timedelta(0)
    if zone and zone != "Z":
        digits = zone[1:].replace(":", "")
        offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0)) * (-1 if zone[0] == "-" else 1)
    try:
        return dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "")[:6].ljust(6, "0")),  # Go writes nanoseconds; the rest is cut off
            dt.timezone(offset),
        )
    except ValueError:
        raise CfsslError(Category.CERT_STORE, Reason.UNKNOWN, f"unparseable timestamp {value!r} in the database") from None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _json_or_none(value: Any) -> Any:
    text = _text(value)
    if text in ("", "null"):
        return None
    try:
        return loads(text)  # gojson's: depth-limited, like every JSON this package reads
    except ValueError:
        return text


def key_id_hex(cert: x509.Certificate) -> str:
    """Lowercase hex of the certificate's authority key identifier ("" when it has none)."""
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        return ""
    return (aki.key_identifier or b"").hex()


@dataclass(frozen=True)
class CertificateRecord:
    """One row of ``certificates`` (cfssl's CertificateRecord)."""

    serial: str
    aki: str
    pem: str
    expiry: dt.datetime
    status: str = "good"
    reason: int = 0
    revoked_at: dt.datetime | None = None  # None: not revoked (stored as Go's zero time)
    ca_label: str = ""
    issued_at: dt.datetime | None = None
    not_before: dt.datetime | None = None
    metadata: Any = None
    sans: list[str] | None = None
    common_name: str | None = None

    @classmethod
    def from_certificate(
        cls,
        cert: x509.Certificate,
        *,
        pem: str,
        ca_label: str = "",
        metadata: Any = None,
        issued_at: dt.datetime | None = None,
        status: str = "good",
        reason: int = 0,
        revoked_at: dt.datetime | None = None,
    ) -> CertificateRecord:
        """The record cfssl writes on issuance: the AKI from the certificate, DNS SANs only, the subject CN."""
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            dns = san.get_values_for_type(x509.DNSName)
        except x509.ExtensionNotFound:
            dns = []
        cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        cn = cns[0].value if cns else ""
        return cls(
            serial=str(cert.serial_number),
            aki=key_id_hex(cert),
            pem=pem,
            expiry=cert.not_valid_after_utc,
            status=status,
            reason=reason,
            revoked_at=revoked_at,
            ca_label=ca_label,
            issued_at=issued_at or dt.datetime.now(dt.timezone.utc),
            not_before=cert.not_valid_before_utc,
            metadata=metadata,
            sans=list(dns) or None,
            common_name=cn if isinstance(cn, str) else cn.decode("utf-8", "replace"),
        )

    def certificate(self) -> x509.Certificate:
        try:
            return x509.load_pem_x509_certificate(self.pem.encode("ascii", "replace"))
        except ValueError:
            raise CfsslError(Category.CERTIFICATE, Reason.PARSE_FAILED) from None

    @property
    def is_revoked(self) -> bool:
        return self.status == "revoked"

    def to_json(self) -> dict[str, Any]:
        """The record as cfssl's JSON tags name it (certinfo -db-config, API certinfo)."""
        return {
            "serial_number": self.serial,
            "authority_key_identifier": self.aki,
            "ca_label": self.ca_label,
            "status": self.status,
            "reason": self.reason,
            "expiry": _rfc3339(self.expiry),
            "revoked_at": _rfc3339(self.revoked_at or ZERO_TIME),
            "pem": self.pem,
        }


def _rfc3339(value: dt.datetime) -> str:
    value = value.astimezone(dt.timezone.utc)
    return f"{value.year:04d}" + value.strftime("-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class OCSPRecord:
    """One row of ``ocsp_responses``: the DER response for (serial, AKI), valid until ``expiry``."""

    serial: str
    aki: str
    body: bytes
    expiry: dt.datetime


@dataclass
class _Dialect:
    name: str
    placeholder: str
    blob: Callable[[str], Any]  # how a cfssl "blob" string column value is bound
    time: Callable[[dt.datetime | None], Any]
    body: Callable[[bytes], Any]
    expired_before: str = field(default="")  # SQL: "<column> > <param>" for a time column


_SQLITE = _Dialect(
    name="sqlite3",
    placeholder="?",
    blob=lambda s: s,
    time=format_time,
    body=lambda b: b,
)
_POSTGRES = _Dialect(
    name="postgres",
    placeholder="%s",
    blob=lambda s: s.encode("utf-8"),
    time=lambda t: ZERO_TIME if t is None else t.astimezone(dt.timezone.utc),
    body=lambda b: b,
)

_CERT_COLUMNS = (
    "serial_number, authority_key_identifier, ca_label, status, reason, expiry, revoked_at, pem, "
    "issued_at, not_before, metadata, sans, common_name"
)
_OCSP_COLUMNS = "serial_number, authority_key_identifier, body, expiry"


def _cert_row(row: Sequence[Any]) -> CertificateRecord:
    revoked_at = parse_time(row[6])
    if revoked_at is not None and revoked_at.year <= 1:
        revoked_at = None
    reason = row[4]
    sans = _json_or_none(row[11])
    return CertificateRecord(
        serial=_text(row[0]),
        aki=_text(row[1]),
        ca_label=_text(row[2]),
        status=_text(row[3]),
        reason=int(reason) if reason is not None else 0,
        expiry=parse_time(row[5]) or ZERO_TIME,
        revoked_at=revoked_at,
        pem=_text(row[7]),
        issued_at=parse_time(row[8]),
        not_before=parse_time(row[9]),
        metadata=_json_or_none(row[10]),
        sans=[str(s) for s in sans] if isinstance(sans, list) else None,
        common_name=_text(row[12]) if row[12] is not None else None,
    )


def _ocsp_row(row: Sequence[Any]) -> OCSPRecord:
    body = row[2]
    if isinstance(body, str):  # written as TEXT by a Go driver: the raw DER bytes as a string
        body = body.encode("latin-1", "replace")
    return OCSPRecord(serial=_text(row[0]), aki=_text(row[1]), body=bytes(body), expiry=parse_time(row[3]) or ZERO_TIME)


# -----------------------------------------------------------------------------------------------------------
# the database


class CertDB:
    """cfssl's certdb accessor over one database (SQLite or PostgreSQL). Thread-safe and fork-safe.

    Times (``now``) are injectable for tests; by default the current UTC time.
    """

    def __init__(self, config: DBConfig, *, busy_timeout: float = 10.0) -> None:
        self.config = config
        self.busy_timeout = busy_timeout
        self.dialect = _SQLITE if config.driver == "sqlite3" else _POSTGRES
        self._lock = threading.RLock()
        self._conn: Any = None
        self._inherited: list[Any] = []
        self._pid = os.getpid()
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _call(ref, "_after_fork"))

    # -- connections --------------------------------------------------------------------------------------

    def _after_fork(self) -> None:
        self._lock = threading.RLock()
        if self._conn is not None:
            self._inherited.append(self._conn)  # never used nor closed in the child (SQLite's rule)
        self._conn = None
        self._pid = os.getpid()

    def _connect(self) -> Any:
        if self._conn is not None:
            return self._conn
        if self.config.driver == "sqlite3":
            conn = _open_sqlite(self.config.data_source, self.busy_timeout)
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

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                _close_quietly(self._conn)
                self._conn = None

    def __enter__(self) -> CertDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Driver errors become cfssl's 11000 with the driver's text (never the DSN's password)."""
        try:
            yield
        except CfsslError:
            raise
        except Exception as exc:
            if not _is_db_error(exc):
                raise
            if self.config.driver != "sqlite3" and _is_connection_error(exc) and self._conn is not None:
                # the server restarted or the network dropped: the next call connects again
                _close_quietly(self._conn)
                self._conn = None
            message = _driver_message(exc)
            if self.config.driver == "sqlite3" and any(part in message for part in _FILE_ERRORS):
                message = f"{self.config.data_source}: {message}"  # a write failure names the file
            log.debug("certdb error on %s: %s", self.config.redacted(), message)
            raise CfsslError(Category.CERT_STORE, Reason.UNKNOWN, message) from None

    def _sql(self, text: str) -> str:
        return text.replace("?", self.dialect.placeholder) if self.dialect.placeholder != "?" else text

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run a query. On PostgreSQL a read that fails because the connection was lost is retried once on a
        new connection (reads are safe to repeat; writes are not retried: the caller sees 11000)."""
        try:
            return self._read_once(sql, params)
        except CfsslError:
            if self.config.driver == "sqlite3" or self._conn is not None:
                raise
            return self._read_once(sql, params)

    def _read_once(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._lock, self._errors():
            conn = self._connect()

            def query() -> list[Any]:
                cur = conn.cursor()
                try:
                    cur.execute(self._sql(sql), tuple(params))
                    return list(cur.fetchall())
                finally:
                    cur.close()

            if self.config.driver == "sqlite3":
                return sqlitedb.retry_busy(query, self.busy_timeout)
            try:
                return query()
            finally:
                conn.rollback()  # end the implicit read transaction (no snapshot held between calls)

    def _write(self, body: Callable[[Any], T]) -> T:
        """Run ``body(execute)`` in one write transaction; ``execute(sql, params)`` returns the rowcount."""
        with self._lock, self._errors():
            conn = self._connect()
            if self.config.driver == "sqlite3":
                return sqlitedb.write_transaction(conn, lambda c: body(self._executor(c)), self.busy_timeout)
            try:
                result = body(self._executor(conn))
                conn.commit()
                return result
            except BaseException:
                _rollback_quietly(conn)
                raise

    def _executor(self, conn: Any) -> Callable[[str, Sequence[Any]], int]:
        def execute(sql: str, params: Sequence[Any] = ()) -> int:
            cur = conn.cursor()
            try:
                cur.execute(self._sql(sql), tuple(params))
                return int(cur.rowcount)
            finally:
                cur.close()

        return execute

    # -- schema ---------------------------------------------------------------------------------------------

    def _ensure_schema(self) -> None:
        """Apply the schema migrations this database lacks (:mod:`cfsslpy.migrations`)."""
        conn = self._conn
        if self.config.driver == "sqlite3":
            migrations.migrate_sqlite(conn, timeout=self.busy_timeout)
        else:
            from cfsslpy import pgdriver

            pgdriver.ensure_schema(conn)

    # -- certificates ---------------------------------------------------------------------------------------

    def insert_certificate(self, rec: CertificateRecord) -> None:
        """Record an issued certificate (committed durably before this returns)."""
        if rec.status not in STATUSES:
            raise CfsslError(Category.CERT_STORE, Reason.INSERTION_FAILED, f"invalid status {rec.status!r}")
        d = self.dialect
        params = (
            d.blob(rec.serial),
            d.blob(rec.aki),
            d.blob(rec.ca_label),
            d.blob(rec.status),
            rec.reason,
            d.time(rec.expiry),
            d.time(rec.revoked_at),
            d.blob(rec.pem),
            None if rec.issued_at is None else d.time(rec.issued_at),
            None if rec.not_before is None else d.time(rec.not_before),
            json.dumps(rec.metadata, separators=(",", ":")),
            json.dumps(rec.sans, separators=(",", ":")),
            rec.common_name,
        )

        def insert(execute: Callable[[str, Sequence[Any]], int]) -> None:
            count = execute(f"INSERT INTO certificates ({_CERT_COLUMNS}) VALUES ({', '.join('?' * 13)})", params)
            if count != 1:
                raise CfsslError(Category.CERT_STORE, Reason.INSERTION_FAILED, "failed to insert the certificate record")

        try:
            self._write(insert)
        except CfsslError as exc:
            if exc.code == 11000 and _is_duplicate(exc.message):
                raise CfsslError(
                    Category.CERT_STORE,
                    Reason.INSERTION_FAILED,
                    f"failed to insert the certificate record: serial {rec.serial} of issuer {rec.aki or '(none)'} already recorded",
                ) from None
            raise

    def get_certificate(self, serial: str, aki: str) -> list[CertificateRecord]:
        rows = self._read(
            f"SELECT {_CERT_COLUMNS} FROM certificates WHERE serial_number = ? AND authority_key_identifier = ?",
            (self.dialect.blob(serial), self.dialect.blob(aki)),
        )
        return [_cert_row(r) for r in rows]

    def certificates_by_serial(self, serial: str) -> list[CertificateRecord]:
        rows = self._read(f"SELECT {_CERT_COLUMNS} FROM certificates WHERE serial_number = ?", (self.dialect.blob(serial),))
        return [_cert_row(r) for r in rows]

    def unexpired_certificates(self, aki: str | None = None, *, now: dt.datetime | None = None) -> list[CertificateRecord]:
        """Rows whose expiry is after ``now`` (cfssl: ``CURRENT_TIMESTAMP < expiry``), optionally of one issuer."""
        return self._select_unexpired("", aki, now)

    def revoked_unexpired(self, aki: str | None = None, *, now: dt.datetime | None = None) -> list[CertificateRecord]:
        """Revoked rows that have not expired: what a CRL lists."""
        return self._select_unexpired(" AND status = ?", aki, now, (self.dialect.blob("revoked"),))

    def _select_unexpired(
        self, extra: str, aki: str | None, now: dt.datetime | None, extra_params: tuple[Any, ...] = ()
    ) -> list[CertificateRecord]:
        current = now or dt.datetime.now(dt.timezone.utc)
        sql = f"SELECT {_CERT_COLUMNS} FROM certificates WHERE {self._after('expiry')}{extra}"
        params: tuple[Any, ...] = (self._time_param(current), *extra_params)
        rows = self._read(sql, params)
        records = [_cert_row(r) for r in rows]
        if aki is not None:
            records = [r for r in records if _record_aki(r) == aki]
        return records

    def _after(self, column: str) -> str:
        """SQL: ``column`` is strictly after the bound time (SQLite normalises any stored layout first)."""
        if self.config.driver == "sqlite3":
            return f"datetime({column}) > ?"
        return f"{column} > ?"

    def _time_param(self, when: dt.datetime) -> Any:
        if self.config.driver == "sqlite3":
            return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        return when.astimezone(dt.timezone.utc)

    def revoke(self, serial: str, aki: str, reason: int, *, now: dt.datetime | None = None) -> CertificateRecord:
        """Mark (serial, aki) revoked at ``now`` with ``reason``; 11200 when no such certificate is recorded.

        A row written by cfssl 2016 (empty AKI column) matches when its certificate's AKI is ``aki``; the
        column is filled in on the way. Revoking an already revoked certificate updates the reason but keeps
        the first revocation time (RFC 5280 §5.3: a certificateHold made permanent keeps its date; cfssl
        overwrites it). ``removeFromCRL`` (8) releases a certificate on hold (reason 6) back to ``good``
        and is refused (8200) for any other certificate; putting an already revoked certificate on hold is
        refused too (a permanent revocation is never undone).
        """
        d = self.dialect
        when = now or dt.datetime.now(dt.timezone.utc)

        def update(execute: Callable[[str, Sequence[Any]], int]) -> None:
            self._serialise(execute, "revoke:" + serial)
            key = aki
            rows = self._conn_query(
                "SELECT status, reason FROM certificates WHERE serial_number = ? AND authority_key_identifier = ?",
                (d.blob(serial), d.blob(aki)),
            )
            if not rows:  # cfssl 2016 rows: empty AKI column, matched through the certificate
                for rec in self._legacy_rows(serial):
                    if key_id_hex(rec.certificate()) == aki:
                        key = ""
                        rows = [(rec.status, rec.reason)]
                        break
            if not rows:
                raise CfsslError(Category.CERT_STORE, Reason.RECORD_NOT_FOUND, "failed to revoke the certificate: certificate not found")
            status, old_reason = _text(rows[0][0]), rows[0][1]
            where = (d.blob(serial), d.blob(key))
            if reason == 8:
                if status != "revoked" or old_reason != 6:
                    raise CfsslError(
                        Category.OCSP,
                        Reason.INVALID_STATUS,
                        "removeFromCRL releases a certificate on hold (certificateHold) only",
                    )
                execute(
                    "UPDATE certificates SET status = ?, revoked_at = ?, reason = 0, authority_key_identifier = ? "
                    "WHERE serial_number = ? AND authority_key_identifier = ?",
                    (d.blob("good"), d.time(None), d.blob(aki), *where),
                )
                return
            if status == "revoked" and reason == 6 and old_reason != 6:
                raise CfsslError(Category.OCSP, Reason.INVALID_STATUS, "a revoked certificate cannot be put on hold (certificateHold)")
            revoked_at = None if status == "revoked" else d.time(when)
            if revoked_at is None:
                execute(
                    "UPDATE certificates SET reason = ?, authority_key_identifier = ? WHERE serial_number = ? AND authority_key_identifier = ?",
                    (reason, d.blob(aki), *where),
                )
            else:
                execute(
                    "UPDATE certificates SET status = ?, revoked_at = ?, reason = ?, authority_key_identifier = ? "
                    "WHERE serial_number = ? AND authority_key_identifier = ?",
                    (d.blob("revoked"), revoked_at, reason, d.blob(aki), *where),
                )

        self._write(update)
        (record,) = self.get_certificate(serial, aki)
        return record

    def _serialise(self, execute: Callable[[str, Sequence[Any]], int], key: str) -> None:
        """Make a read-then-write on ``key`` exclusive until the transaction ends. SQLite's ``BEGIN IMMEDIATE``
        already is; PostgreSQL (READ COMMITTED) needs a transaction-scoped advisory lock, or two processes
        read the same value and both write what they derived from it."""
        if self.config.driver == "postgres":
            execute("SELECT pg_advisory_xact_lock(hashtext(?))", (key,))

    def _legacy_rows(self, serial: str) -> list[CertificateRecord]:
        rows = self._conn_query(
            f"SELECT {_CERT_COLUMNS} FROM certificates WHERE serial_number = ? AND authority_key_identifier = ?",
            (self.dialect.blob(serial), self.dialect.blob("")),
        )
        return [_cert_row(r) for r in rows]

    def _conn_query(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """A query inside the caller's transaction (the lock is held)."""
        cur = self._conn.cursor()
        try:
            cur.execute(self._sql(sql), tuple(params))
            return list(cur.fetchall())
        finally:
            cur.close()

    def issuers(self) -> list[str]:
        """The distinct authority key identifiers of recorded certificates (empty ones resolved from the PEM)."""
        rows = self._read("SELECT DISTINCT authority_key_identifier FROM certificates")
        akis = {_text(r[0]) for r in rows}
        if "" in akis:
            akis.discard("")
            for r in self._read(f"SELECT {_CERT_COLUMNS} FROM certificates WHERE authority_key_identifier = ?", (self.dialect.blob(""),)):
                akis.add(_record_aki(_cert_row(r)))
            akis.discard("")
        return sorted(akis)

    # -- OCSP responses -------------------------------------------------------------------------------------

    def upsert_ocsp(self, serial: str, aki: str, body: bytes, expiry: dt.datetime) -> None:
        """Store the response for (serial, aki), replacing the previous one (cfssl: update, else insert)."""
        d = self.dialect
        params = (d.body(body), d.time(expiry), d.blob(serial), d.blob(aki))

        def upsert(execute: Callable[[str, Sequence[Any]], int]) -> None:
            if execute("UPDATE ocsp_responses SET body = ?, expiry = ? WHERE serial_number = ? AND authority_key_identifier = ?", params):
                return
            if (
                execute(f"INSERT INTO ocsp_responses ({_OCSP_COLUMNS}) VALUES (?, ?, ?, ?)", (params[2], params[3], params[0], params[1]))
                != 1
            ):
                raise CfsslError(Category.CERT_STORE, Reason.INSERTION_FAILED, "failed to insert the OCSP record")

        self._write(upsert)

    def upsert_ocsp_many(self, records: Sequence[OCSPRecord]) -> None:
        """Store many responses in one transaction (ocsprefresh): all or none."""
        d = self.dialect

        def upsert(execute: Callable[[str, Sequence[Any]], int]) -> None:
            for rec in records:
                params = (d.body(rec.body), d.time(rec.expiry), d.blob(rec.serial), d.blob(rec.aki))
                if not execute(
                    "UPDATE ocsp_responses SET body = ?, expiry = ? WHERE serial_number = ? AND authority_key_identifier = ?", params
                ):
                    execute(
                        f"INSERT INTO ocsp_responses ({_OCSP_COLUMNS}) VALUES (?, ?, ?, ?)", (params[2], params[3], params[0], params[1])
                    )

        self._write(upsert)

    def get_ocsp(self, serial: str, aki: str) -> list[OCSPRecord]:
        rows = self._read(
            f"SELECT {_OCSP_COLUMNS} FROM ocsp_responses WHERE serial_number = ? AND authority_key_identifier = ?",
            (self.dialect.blob(serial), self.dialect.blob(aki)),
        )
        return [_ocsp_row(r) for r in rows]

    def unexpired_ocsp(self, *, now: dt.datetime | None = None) -> list[OCSPRecord]:
        current = now or dt.datetime.now(dt.timezone.utc)
        rows = self._read(f"SELECT {_OCSP_COLUMNS} FROM ocsp_responses WHERE {self._after('expiry')}", (self._time_param(current),))
        return [_ocsp_row(r) for r in rows]

    # -- CRL numbers (ours) ---------------------------------------------------------------------------------

    def next_crl_number(self, aki: str, floor: int) -> int:
        """A CRL number for the issuer ``aki`` greater than every one handed out before, and at least ``floor``.

        Atomic across processes: two concurrent ``crl`` runs never get the same number.
        """

        def bump(execute: Callable[[str, Sequence[Any]], int]) -> int:
            self._serialise(execute, "crl_number:" + aki)
            rows = self._conn_query("SELECT crl_number FROM cfsslpy_crl_numbers WHERE authority_key_identifier = ?", (aki,))
            last = int(_text(rows[0][0])) if rows else 0
            number = max(last + 1, floor)
            if rows:
                execute("UPDATE cfsslpy_crl_numbers SET crl_number = ? WHERE authority_key_identifier = ?", (str(number), aki))
            else:
                execute("INSERT INTO cfsslpy_crl_numbers (authority_key_identifier, crl_number) VALUES (?, ?)", (aki, str(number)))
            return number

        return self._write(bump)


def _record_aki(rec: CertificateRecord) -> str:
    """The row's AKI, from its certificate when the column is empty (cfssl 2016 rows). A row whose PEM does not
    parse is an error (11000), never an empty AKI: a revoked certificate would silently drop out of its CRL."""
    if rec.aki:
        return rec.aki
    try:
        return key_id_hex(rec.certificate())
    except CfsslError:
        raise CfsslError(
            Category.CERT_STORE,
            Reason.UNKNOWN,
            f"certificate record {rec.serial} has no authority key identifier and its PEM does not parse",
        ) from None


def with_aki(rec: CertificateRecord) -> CertificateRecord:
    """The record with its AKI resolved from the certificate when the column is empty (cfssl 2016 rows)."""
    return rec if rec.aki else replace(rec, aki=_record_aki(rec))


def open_db(spec: str, *, stdin: Stdin | None = None, environ: Mapping[str, str] | None = None) -> CertDB:
    """Load ``-db-config`` and connect (so a bad data source fails before any work is done)."""
    db = CertDB(DBConfig.load(spec, stdin=stdin, environ=environ))
    with db._lock, db._errors():
        db._connect()
    return db


def recorder(db: CertDB) -> Callable[[x509.Certificate, Any], None]:
    """A :data:`cfsslpy.signer.Recorder` that inserts every issued certificate before it is handed out."""
    from cryptography.hazmat.primitives import serialization

    def record(cert: x509.Certificate, req: Any) -> None:
        pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
        metadata = getattr(req, "metadata", None)
        db.insert_certificate(
            CertificateRecord.from_certificate(cert, pem=pem, ca_label=getattr(req, "label", "") or "", metadata=metadata)
        )

    return record


# -----------------------------------------------------------------------------------------------------------
# SQLite specifics


def _open_sqlite(path: str, busy_timeout: float) -> sqlite3.Connection:
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


# -----------------------------------------------------------------------------------------------------------
# helpers


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


def _is_duplicate(message: str) -> bool:
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
