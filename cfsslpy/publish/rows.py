"""The certdb's unexpired certificates, streamed in pages (the certdb's own readers return whole lists).

A publisher walks every current certificate, 100,000 or more, and must keep its memory flat: the rows
are read with keyset pagination on the ``certificates`` primary key (serial number, then AKI), one page
at a time, over a connection of its own opened through the certdb's connection API (read only). Rows come
in the byte order of those columns, which for their ASCII text is Python's string order: the publisher
relies on it to match the previous run's index.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from cfsslpy.certdb import CertDB, CertificateRecord, parse_time
from cfsslpy.certdb.connection import Connection
from cfsslpy.certdb.dialect import text
from cfsslpy.certdb.records import ZERO_TIME

PAGE_SIZE = 1000
# what a publisher needs of a row (the certdb's full rows cost two more timestamps and two JSON columns each)
COLUMNS = "serial_number, authority_key_identifier, status, reason, expiry, revoked_at, pem"


def _record(row: Any) -> CertificateRecord:
    revoked_at = parse_time(row[5])
    return CertificateRecord(
        serial=text(row[0]),
        aki=text(row[1]),
        status=text(row[2]),
        reason=int(row[3]) if row[3] is not None else 0,
        expiry=parse_time(row[4]) or ZERO_TIME,
        revoked_at=None if revoked_at is None or revoked_at.year <= 1 else revoked_at,  # Go's zero time: not revoked
        pem=text(row[6]),
    )


def current_certificates(db: CertDB, *, now: dt.datetime, page_size: int = PAGE_SIZE) -> Iterator[CertificateRecord]:
    """Every row whose expiry is after ``now``, ordered by (serial number, AKI column), ``page_size`` at a time.

    The AKI is the column as stored (empty for cfssl 2016 rows; resolve it with ``with_aki``). Each page is
    its own short read, so no snapshot is held across the walk: a row revoked meanwhile is seen as it is
    when its page is read.
    """
    dialect = db.dialect
    conn = Connection(db.config, busy_timeout=db.busy_timeout)
    base = f"SELECT {COLUMNS} FROM certificates WHERE {dialect.after('expiry')}"
    order = f" ORDER BY serial_number, authority_key_identifier LIMIT {int(page_size)}"
    after: tuple[str, str] | None = None  # the last row's key columns
    try:
        while True:
            params: list[Any] = [dialect.time_param(now)]
            sql = base
            if after is not None:
                sql += " AND (serial_number > ? OR (serial_number = ? AND authority_key_identifier > ?))"
                # bound as the columns are stored (SQLite: TEXT; a bytes value would be a BLOB, greater than any TEXT)
                params += [dialect.blob(after[0]), dialect.blob(after[0]), dialect.blob(after[1])]
            rows = conn.read(sql + order, params)
            for row in rows:
                yield _record(row)
            if len(rows) < page_size:
                return
            after = (text(rows[-1][0]), text(rows[-1][1]))
    finally:
        conn.close()
