"""authsign's replay guard kept in a PostgreSQL certdb: several ``serve`` instances, one set of seen tokens.

:class:`cfsslpy.auth.ReplayGuard` keeps the tokens it has seen in an SQLite file by default, which is one
host's: two ``serve`` instances behind a load balancer would each accept the same token once. With a
PostgreSQL certdb, :class:`PostgresTokens` keeps them in that database's ``cfsslpy_auth_replay`` table
(migration 1002): one row per token digest, written with ``INSERT ... ON CONFLICT DO NOTHING``, so of any
number of concurrent uses across instances exactly one inserts the row (is fresh) and the others see a
replay. The guard has its own connection (one per process, re-made after ``fork`` and after a lost
connection), so a token check never waits behind a certificate insert.

Rows whose window has closed are purged at most once a minute per process, in a transaction of their own,
by one instance at a time (``pg_try_advisory_xact_lock``); a token is refused as stale before its row could
expire, so correctness never depends on the purge. Any database error refuses the request (fail closed):
HTTP 503 ``replay guard unavailable``, as the SQLite guard answers.
"""

from __future__ import annotations

import logging
import threading
import time

from cfsslpy.auth import UNAVAILABLE
from cfsslpy.certdb.connection import Connection, Execute
from cfsslpy.certdb.dbconfig import DBConfig
from cfsslpy.errors import CfsslError, PlainError

log = logging.getLogger(__name__)

TABLE = "cfsslpy_auth_replay"
PURGE_INTERVAL = 60.0  # seconds between two purges of expired rows by one process
# pg_try_advisory_xact_lock key for the purge ("cfsslrpl" in ASCII, as an int8)
PURGE_LOCK = int.from_bytes(b"cfsslrpl", "big")


class PostgresTokens:
    """A :class:`cfsslpy.auth.TokenStore` in the PostgreSQL certdb of ``config``."""

    def __init__(self, config: DBConfig, *, busy_timeout: float = 10.0, purge_interval: float = PURGE_INTERVAL) -> None:
        if config.driver != "postgres":
            raise ValueError("the certdb replay guard needs a PostgreSQL certdb")
        self.config = config
        self.purge_interval = purge_interval
        self._connection = Connection(config, busy_timeout=busy_timeout)
        self._purge_lock = threading.Lock()
        self._next_purge = 0.0

    def first_use(self, digest: bytes, expires: float, now: float) -> bool:
        """Insert ``digest`` unless present (one statement, atomic across instances); True when inserted."""

        def record(execute: Execute) -> bool:
            inserted = execute(f"INSERT INTO {TABLE} (digest, expires) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING", (digest, expires))
            return inserted == 1

        try:
            fresh = self._connection.write(record)
        except CfsslError as exc:
            log.error("replay guard table in %s unusable: %s", self.config.redacted(), exc.message)
            raise PlainError(UNAVAILABLE, status=503) from None
        self._maybe_purge(now)
        return fresh

    def _maybe_purge(self, now: float) -> None:
        with self._purge_lock:
            if now < self._next_purge:
                return
            self._next_purge = now + self.purge_interval
        self.purge(now)

    def purge(self, now: float | None = None) -> int:
        """Delete the rows whose window closed before ``now`` (default: the clock); the number deleted, or 0
        when another instance is purging. A failure is logged, never raised (the rows only take space)."""
        current = time.time() if now is None else now

        def delete(execute: Execute) -> int:
            # the lock's result is read through the rowcount of a query that keeps a row only when it was taken
            if execute("SELECT 1 WHERE pg_try_advisory_xact_lock(?)", (PURGE_LOCK,)) != 1:
                return 0
            return execute(f"DELETE FROM {TABLE} WHERE expires <= ?", (current,))

        try:
            return self._connection.write(delete)
        except CfsslError as exc:
            log.warning("replay guard: purging expired tokens failed: %s", exc.message)
            return 0

    def close(self) -> None:
        self._connection.close()
