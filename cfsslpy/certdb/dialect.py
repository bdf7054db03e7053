"""How the certdb's values are written and read back in each SQL dialect, the way cfssl's Go drivers store them
(both programs must read each other's rows).

SQLite holds the ``blob`` columns as TEXT and timestamps in mattn/go-sqlite3's layout (:mod:`.sqlite`);
PostgreSQL (pg8000) takes bytes and aware datetimes. "Not revoked" is Go's zero time ``0001-01-01
00:00:00+00:00``. Rows are read into :class:`~cfsslpy.certdb.records.CertificateRecord` and
:class:`~cfsslpy.certdb.records.OCSPRecord` whichever driver (or program) wrote them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cfsslpy.certdb.records import ZERO_TIME, CertificateRecord, OCSPRecord
from cfsslpy.certdb.sqlite import format_time
from cfsslpy.errors import Category, CfsslError, Reason
from cfsslpy.golang.json import loads

CERT_COLUMNS = (
    "serial_number, authority_key_identifier, ca_label, status, reason, expiry, revoked_at, pem, "
    "issued_at, not_before, metadata, sans, common_name"
)
OCSP_COLUMNS = "serial_number, authority_key_identifier, body, expiry"


@dataclass
class Dialect:
    name: str
    placeholder: str
    blob: Callable[[str], Any]  # how a cfssl "blob" string column value is bound
    time: Callable[[dt.datetime | None], Any]
    body: Callable[[bytes], Any]

    def sql(self, text: str) -> str:
        """``text`` with its ``?`` placeholders in this driver's style."""
        return text.replace("?", self.placeholder) if self.placeholder != "?" else text

    def after(self, column: str) -> str:
        """SQL: ``column`` is strictly after the bound time (SQLite normalises any stored layout first)."""
        return f"{self.time_column(column)} > ?"

    def time_column(self, column: str) -> str:
        """SQL: ``column`` as a value that compares and sorts as a time (SQLite normalises any stored layout)."""
        return f"datetime({column})" if self.name == "sqlite3" else column

    def time_order(self, column: str) -> str:
        """SQL: ``column`` as a value to sort by, keeping fractions of a second (SQLite's ``datetime()`` drops
        them, and two certificates issued in the same second must still sort in issue order)."""
        return f"julianday({column})" if self.name == "sqlite3" else column

    def time_param(self, when: dt.datetime) -> Any:
        """``when`` bound for comparison with :meth:`after`."""
        if self.name == "sqlite3":
            return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        return when.astimezone(dt.timezone.utc)


SQLITE = Dialect(
    name="sqlite3",
    placeholder="?",
    blob=lambda s: s,
    time=format_time,
    body=lambda b: b,
)
POSTGRES = Dialect(
    name="postgres",
    placeholder="%s",
    blob=lambda s: s.encode("utf-8"),
    time=lambda t: ZERO_TIME if t is None else t.astimezone(dt.timezone.utc),
    body=lambda b: b,
)


# mattn/go-sqlite3's SQLiteTimestampFormats (date, then optionally "T" or " ", minutes, seconds, a fraction of
# up to nanoseconds, a zone); matched explicitly because datetime.fromisoformat's syntax differs per Python version
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


def text(value: Any) -> str:
    """A text column as ``str``, whichever type the driver returned ("" for NULL)."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _json_or_none(value: Any) -> Any:
    string = text(value)
    if string in ("", "null"):
        return None
    try:
        return loads(string)  # golang.json's: depth-limited, like every JSON this package reads
    except ValueError:
        return string


def cert_row(row: Sequence[Any]) -> CertificateRecord:
    """A row selected as :data:`CERT_COLUMNS`."""
    revoked_at = parse_time(row[6])
    if revoked_at is not None and revoked_at.year <= 1:
        revoked_at = None
    reason = row[4]
    sans = _json_or_none(row[11])
    return CertificateRecord(
        serial=text(row[0]),
        aki=text(row[1]),
        ca_label=text(row[2]),
        status=text(row[3]),
        reason=int(reason) if reason is not None else 0,
        expiry=parse_time(row[5]) or ZERO_TIME,
        revoked_at=revoked_at,
        pem=text(row[7]),
        issued_at=parse_time(row[8]),
        not_before=parse_time(row[9]),
        metadata=_json_or_none(row[10]),
        sans=[str(s) for s in sans] if isinstance(sans, list) else None,
        common_name=text(row[12]) if row[12] is not None else None,
    )


def ocsp_row(row: Sequence[Any]) -> OCSPRecord:
    """A row selected as :data:`OCSP_COLUMNS`."""
    body = row[2]
    if isinstance(body, str):  # written as TEXT by a Go driver: the raw DER bytes as a string
        body = body.encode("latin-1", "replace")
    return OCSPRecord(serial=text(row[0]), aki=text(row[1]), body=bytes(body), expiry=parse_time(row[3]) or ZERO_TIME)
