"""The certdb accessor (cfssl's certdb): issued certificates, their revocation status, OCSP responses, and the
CRL numbers we hand out.

Revoking an unknown certificate is 11200 ``failed to revoke the certificate: certificate not found``; a
failed insert is 11100 (cfssl's codes and messages). A cfssl 2016 row (empty AKI column) is matched through
the AKI of its certificate, and the column filled in, when revoking.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from cfsslpy.certdb.connection import Connection, Execute, is_duplicate
from cfsslpy.certdb.dbconfig import DBConfig
from cfsslpy.certdb.dialect import CERT_COLUMNS, OCSP_COLUMNS, cert_row, ocsp_row, text
from cfsslpy.certdb.queries import CertificatePage, CertificateQuery, order, where
from cfsslpy.certdb.records import STATUSES, CertificateRecord, OCSPRecord, key_id_hex, record_aki
from cfsslpy.errors import Category, CfsslError, Reason
from cfsslpy.inputs import Stdin


class CertDB:
    """cfssl's certdb accessor over one database (SQLite or PostgreSQL). Thread-safe and fork-safe.

    Times (``now``) are injectable for tests; by default the current UTC time.
    """

    def __init__(self, config: DBConfig, *, busy_timeout: float = 10.0) -> None:
        self.config = config
        self._connection = Connection(config, busy_timeout=busy_timeout)
        self.dialect = self._connection.dialect

    @property
    def busy_timeout(self) -> float:
        return self._connection.busy_timeout

    # -- connections --------------------------------------------------------------------------------------

    def _connect(self) -> Any:
        """The driver's connection (tests reach for it to set up faults)."""
        return self._connection.connect()

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> CertDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

        def insert(execute: Execute) -> None:
            count = execute(f"INSERT INTO certificates ({CERT_COLUMNS}) VALUES ({', '.join('?' * 13)})", params)
            if count != 1:
                raise CfsslError(Category.CERT_STORE, Reason.INSERTION_FAILED, "failed to insert the certificate record")

        try:
            self._connection.write(insert)
        except CfsslError as exc:
            if exc.code == 11000 and is_duplicate(exc.message):
                raise CfsslError(
                    Category.CERT_STORE,
                    Reason.INSERTION_FAILED,
                    f"failed to insert the certificate record: serial {rec.serial} of issuer {rec.aki or '(none)'} already recorded",
                ) from None
            raise

    def get_certificate(self, serial: str, aki: str) -> list[CertificateRecord]:
        rows = self._connection.read(
            f"SELECT {CERT_COLUMNS} FROM certificates WHERE serial_number = ? AND authority_key_identifier = ?",
            (self.dialect.blob(serial), self.dialect.blob(aki)),
        )
        return [cert_row(r) for r in rows]

    def certificates_by_serial(self, serial: str) -> list[CertificateRecord]:
        rows = self._connection.read(f"SELECT {CERT_COLUMNS} FROM certificates WHERE serial_number = ?", (self.dialect.blob(serial),))
        return [cert_row(r) for r in rows]

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
        sql = f"SELECT {CERT_COLUMNS} FROM certificates WHERE {self.dialect.after('expiry')}{extra}"
        params: tuple[Any, ...] = (self.dialect.time_param(current), *extra_params)
        rows = self._connection.read(sql, params)
        records = [cert_row(r) for r in rows]
        if aki is not None:
            records = [r for r in records if record_aki(r) == aki]
        return records

    def search_certificates(self, query: CertificateQuery, *, now: dt.datetime | None = None) -> CertificatePage:
        """One page of the rows matching ``query`` (read-only; the web console's list), and their total."""
        current = now or dt.datetime.now(dt.timezone.utc)
        clause, params = where(self.dialect, query, current)
        total = self._connection.read(f"SELECT COUNT(*) FROM certificates{clause}", params)
        offset = (query.page - 1) * query.page_size
        rows = self._connection.read(
            f"SELECT {CERT_COLUMNS} FROM certificates{clause}{order(self.dialect, query)} LIMIT ? OFFSET ?",
            [*params, query.page_size, offset],
        )
        return CertificatePage([cert_row(r) for r in rows], int(total[0][0]), query.page, query.page_size)

    def last_crl_number(self, aki: str) -> int | None:
        """The last CRL number handed out for the issuer ``aki`` (read-only), None when none was."""
        rows = self._connection.read("SELECT crl_number FROM cfsslpy_crl_numbers WHERE authority_key_identifier = ?", (aki,))
        return int(text(rows[0][0])) if rows else None

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

        def update(execute: Execute) -> None:
            self._connection.serialise(execute, "revoke:" + serial)
            key = aki
            rows = self._connection.query(
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
            status, old_reason = text(rows[0][0]), rows[0][1]
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

        self._connection.write(update)
        (record,) = self.get_certificate(serial, aki)
        return record

    def _legacy_rows(self, serial: str) -> list[CertificateRecord]:
        rows = self._connection.query(
            f"SELECT {CERT_COLUMNS} FROM certificates WHERE serial_number = ? AND authority_key_identifier = ?",
            (self.dialect.blob(serial), self.dialect.blob("")),
        )
        return [cert_row(r) for r in rows]

    def issuers(self) -> list[str]:
        """The distinct authority key identifiers of recorded certificates (empty ones resolved from the PEM)."""
        rows = self._connection.read("SELECT DISTINCT authority_key_identifier FROM certificates")
        akis = {text(r[0]) for r in rows}
        if "" in akis:
            akis.discard("")
            legacy = self._connection.read(
                f"SELECT {CERT_COLUMNS} FROM certificates WHERE authority_key_identifier = ?", (self.dialect.blob(""),)
            )
            for r in legacy:
                akis.add(record_aki(cert_row(r)))
            akis.discard("")
        return sorted(akis)

    # -- OCSP responses -------------------------------------------------------------------------------------

    def upsert_ocsp(self, serial: str, aki: str, body: bytes, expiry: dt.datetime) -> None:
        """Store the response for (serial, aki), replacing the previous one (cfssl: update, else insert)."""
        d = self.dialect
        params = (d.body(body), d.time(expiry), d.blob(serial), d.blob(aki))

        def upsert(execute: Execute) -> None:
            if execute("UPDATE ocsp_responses SET body = ?, expiry = ? WHERE serial_number = ? AND authority_key_identifier = ?", params):
                return
            if (
                execute(f"INSERT INTO ocsp_responses ({OCSP_COLUMNS}) VALUES (?, ?, ?, ?)", (params[2], params[3], params[0], params[1]))
                != 1
            ):
                raise CfsslError(Category.CERT_STORE, Reason.INSERTION_FAILED, "failed to insert the OCSP record")

        self._connection.write(upsert)

    def upsert_ocsp_many(self, records: Sequence[OCSPRecord]) -> None:
        """Store many responses in one transaction (ocsprefresh): all or none."""
        d = self.dialect

        def upsert(execute: Execute) -> None:
            for rec in records:
                params = (d.body(rec.body), d.time(rec.expiry), d.blob(rec.serial), d.blob(rec.aki))
                if not execute(
                    "UPDATE ocsp_responses SET body = ?, expiry = ? WHERE serial_number = ? AND authority_key_identifier = ?", params
                ):
                    execute(
                        f"INSERT INTO ocsp_responses ({OCSP_COLUMNS}) VALUES (?, ?, ?, ?)", (params[2], params[3], params[0], params[1])
                    )

        self._connection.write(upsert)

    def get_ocsp(self, serial: str, aki: str) -> list[OCSPRecord]:
        rows = self._connection.read(
            f"SELECT {OCSP_COLUMNS} FROM ocsp_responses WHERE serial_number = ? AND authority_key_identifier = ?",
            (self.dialect.blob(serial), self.dialect.blob(aki)),
        )
        return [ocsp_row(r) for r in rows]

    def unexpired_ocsp(self, *, now: dt.datetime | None = None) -> list[OCSPRecord]:
        current = now or dt.datetime.now(dt.timezone.utc)
        rows = self._connection.read(
            f"SELECT {OCSP_COLUMNS} FROM ocsp_responses WHERE {self.dialect.after('expiry')}", (self.dialect.time_param(current),)
        )
        return [ocsp_row(r) for r in rows]

    # -- CRL numbers (ours) ---------------------------------------------------------------------------------

    def next_crl_number(self, aki: str, floor: int) -> int:
        """A CRL number for the issuer ``aki`` greater than every one handed out before, and at least ``floor``.

        Atomic across processes: two concurrent ``crl`` runs never get the same number.
        """

        def bump(execute: Execute) -> int:
            self._connection.serialise(execute, "crl_number:" + aki)
            rows = self._connection.query("SELECT crl_number FROM cfsslpy_crl_numbers WHERE authority_key_identifier = ?", (aki,))
            last = int(text(rows[0][0])) if rows else 0
            number = max(last + 1, floor)
            if rows:
                execute("UPDATE cfsslpy_crl_numbers SET crl_number = ? WHERE authority_key_identifier = ?", (str(number), aki))
            else:
                execute("INSERT INTO cfsslpy_crl_numbers (authority_key_identifier, crl_number) VALUES (?, ?)", (aki, str(number)))
            return number

        return self._connection.write(bump)


def open_db(spec: str, *, stdin: Stdin | None = None, environ: Mapping[str, str] | None = None) -> CertDB:
    """Load ``-db-config`` and connect (so a bad data source fails before any work is done)."""
    db = CertDB(DBConfig.load(spec, stdin=stdin, environ=environ))
    db._connection.open()
    return db
