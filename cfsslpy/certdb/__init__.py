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

The package, by job: :mod:`~cfsslpy.certdb.dbconfig` (the ``-db-config`` document),
:mod:`~cfsslpy.certdb.records` (the record types and the AKI that ties a row to its issuer),
:mod:`~cfsslpy.certdb.dialect` (how values are written and read back in each SQL dialect),
:mod:`~cfsslpy.certdb.sqlite` (SQLite specifics), :mod:`~cfsslpy.certdb.connection` (one connection per
process, transactions, driver errors), :mod:`~cfsslpy.certdb.db` (:class:`CertDB` and its queries) and
:mod:`~cfsslpy.certdb.recording` (recording from the signer), :mod:`~cfsslpy.certdb.queries` (the web
console's read-only searches).
"""

from __future__ import annotations

from cfsslpy.certdb.db import CertDB, open_db
from cfsslpy.certdb.dbconfig import DRIVERS, DBConfig
from cfsslpy.certdb.dialect import parse_time
from cfsslpy.certdb.queries import EXPIRING_SOON, MAX_PAGE_SIZE, MAX_SEARCH, CertificatePage, CertificateQuery
from cfsslpy.certdb.recording import recorder
from cfsslpy.certdb.records import STATUSES, ZERO_TIME, CertificateRecord, OCSPRecord, key_id_hex, with_aki
from cfsslpy.certdb.sqlite import format_time

__all__ = [
    "DRIVERS",
    "EXPIRING_SOON",
    "MAX_PAGE_SIZE",
    "MAX_SEARCH",
    "STATUSES",
    "ZERO_TIME",
    "CertDB",
    "CertificatePage",
    "CertificateQuery",
    "CertificateRecord",
    "DBConfig",
    "OCSPRecord",
    "format_time",
    "key_id_hex",
    "open_db",
    "parse_time",
    "recorder",
    "with_aki",
]
