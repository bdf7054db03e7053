"""Read-only searches over ``certificates`` for the web console (cfsslpy additions): a bounded page of rows
matching a search and a status filter, sorted by expiry or issue time, with the total count.

Every value reaches the database as a bound parameter; the only text built into the SQL comes from the fixed
choices below (sort keys, directions, filters). The search matches the common name and the SANs (a
case-insensitive substring) or the serial number (exactly: decimal, or hex with a ``0x`` prefix or colons).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from cfsslpy.certdb.dialect import Dialect
from cfsslpy.certdb.records import CertificateRecord
from cfsslpy.errors import Category, CfsslError, Reason

MAX_PAGE_SIZE = 100
MAX_SEARCH = 128
MAX_PAGE = 1_000_000
# "good" rows whose expiry is this close count as expiring soon (and are what the "expiring" filter shows)
EXPIRING_SOON = dt.timedelta(days=30)

FILTERS = ("", "good", "revoked", "unknown", "expiring", "expired")
SORTS = {"expiry": "expiry", "issued": "issued_at"}


@dataclass(frozen=True)
class CertificateQuery:
    """What to list: ``search`` (CN, SAN substring or serial), ``status`` (one of :data:`FILTERS`; "" for
    every row), ``sort`` (``expiry`` or ``issued``), ``descending``, ``page`` (from 1) and ``page_size``.

    Out-of-range values are refused (9 ``BAD_REQUEST`` of the certificate category) rather than clamped, so a
    client never silently gets something other than what it asked for.
    """

    search: str = ""
    status: str = ""
    sort: str = "expiry"
    descending: bool = False
    page: int = 1
    page_size: int = 25
    expiring_within: dt.timedelta = EXPIRING_SOON

    def __post_init__(self) -> None:
        problems = []
        if len(self.search) > MAX_SEARCH:
            problems.append(f"search is longer than {MAX_SEARCH} characters")
        if self.status not in FILTERS:
            problems.append(f"unknown status filter {self.status!r}: want one of {', '.join(f for f in FILTERS if f)}")
        if self.sort not in SORTS:
            problems.append(f"unknown sort {self.sort!r}: want expiry or issued")
        if not 1 <= self.page <= MAX_PAGE:
            problems.append(f"page must be between 1 and {MAX_PAGE}")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            problems.append(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        if problems:
            raise CfsslError(Category.CERTIFICATE, Reason.BAD_REQUEST, "; ".join(problems))


@dataclass(frozen=True)
class CertificatePage:
    """One page of rows and the number of rows matching the query on every page."""

    records: list[CertificateRecord]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def _like(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with LIKE's own wildcards escaped (``\\`` is the escape)."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _serial(text: str) -> str | None:
    """The decimal form of a search that reads as a serial number, else None."""
    value = text.strip()
    try:
        if value.lower().startswith("0x"):
            number = int(value[2:], 16)
        elif ":" in value:
            number = int(value.replace(":", ""), 16)
        elif value.isdigit():
            number = int(value, 10)
        else:
            return None
    except ValueError:
        return None
    return str(number) if 0 < number.bit_length() <= 160 else None


def where(dialect: Dialect, query: CertificateQuery, now: dt.datetime) -> tuple[str, list[Any]]:
    """The WHERE clause (with its leading keyword, or "") and its parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    text_column = "CAST(sans AS TEXT)"
    search = query.search.strip()
    if search:
        pattern = _like(search)
        match = f"LOWER(common_name) LIKE ? ESCAPE '\\' OR LOWER({text_column}) LIKE ? ESCAPE '\\'"
        params += [pattern, pattern]
        serial = _serial(search)
        if serial is not None:
            match += " OR serial_number = ?"
            params.append(dialect.blob(serial))
        clauses.append(f"({match})")
    expiry = dialect.time_column("expiry")
    if query.status in ("good", "revoked", "unknown"):
        clauses.append("status = ?")
        params.append(dialect.blob(query.status))
        if query.status == "good":
            clauses.append(f"{expiry} > ?")
            params.append(dialect.time_param(now))
    elif query.status == "expiring":
        clauses.append(f"status = ? AND {expiry} > ? AND NOT {expiry} > ?")
        params += [dialect.blob("good"), dialect.time_param(now), dialect.time_param(now + query.expiring_within)]
    elif query.status == "expired":
        clauses.append(f"NOT {expiry} > ?")
        params.append(dialect.time_param(now))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def order(dialect: Dialect, query: CertificateQuery) -> str:
    """ORDER BY for the query: the sort column (rows without one last), then the serial, for a stable order."""
    column = dialect.time_order(SORTS[query.sort])
    direction = "DESC" if query.descending else "ASC"
    return f" ORDER BY CASE WHEN {column} IS NULL THEN 1 ELSE 0 END, {column} {direction}, serial_number {direction}"
