"""cfssl's "standard" authentication provider (HMAC-SHA256 tokens) and our opt-in authsign replay guard.

**Standard provider (cfssl's, reference §2.3).** ``token = HMAC-SHA256(key, request || ad)``: ``key`` is the
hex-decoded ``auth_keys.<name>.key`` of the config (hex, ``env:VAR`` holding hex, or ``file:path`` holding
hex), ``request`` the exact bytes carried base64-encoded in the authsign body's ``request`` field, and ``ad``
empty. A token is checked against the profile's ``auth_key`` and then its ``prev_auth_key`` (key rotation);
the comparison is constant-time (:func:`hmac.compare_digest`). cfssl ignores the body's ``timestamp`` and
``remote_address``. Keys and tokens never appear in errors or logs.

**Replay guard (our addition, off unless a profile sets ``auth_replay_window``).** A standard token can be
replayed for ever: anyone who once saw an authsign body can get the same CSR signed again. A profile with
``"auth_replay_window": "5m"`` (a Go duration; absent or 0 = off) changes the rules for authsign on that
profile:

* the body must carry ``timestamp``, an integer number of Unix seconds (cfssl's clients already send one);
  a missing or zero timestamp is refused (400 ``missing timestamp``);
* the token must cover it: ``token = HMAC-SHA256(key, request || ad)`` with ``ad`` = the timestamp written
  in decimal ASCII digits (a leading ``-`` if negative, no leading zeros, no spaces): for request bytes
  ``R`` and timestamp 1700000000 the MAC input is ``R + b"1700000000"``. This is cfssl's own ``ad`` hook;
  a token made without the timestamp (every cfssl client) is refused with ``invalid token``;
* the timestamp must be within ± the window of the server's clock (else 400 ``stale timestamp``);
* each valid token is accepted once: a second use while its timestamp is still inside the window is
  refused with ``invalid token`` (afterwards it is refused as stale).

Seen tokens (their SHA-256, never the token itself) are kept by :class:`ReplayGuard` in a small SQLite
file shared by every worker process of a pre-forked server (WAL journal, busy timeout); a process-private
in-memory database is used when no file is given (one process only). ``serve`` with a PostgreSQL certdb
keeps them in that database instead (:mod:`cfsslpy.certdb.replay`), so several instances behind one load
balancer accept each token once between them. A client whose profile has
``auth_remote`` and ``auth_replay_window`` sends timestamped tokens (:meth:`AuthenticatedRequest.build`).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cfsslpy import sqlitedb
from cfsslpy.errors import PlainError
from cfsslpy.golang.decode import BYTES, INT64, decode, go_struct
from cfsslpy.inputs import read_path

log = logging.getLogger(__name__)

# what a request whose token cannot be checked against the replay guard's store is told (HTTP 503)
UNAVAILABLE = "replay guard unavailable"


def decode_key(spec: str, environ: Mapping[str, str] | None = None) -> bytes:
    """Return the raw HMAC key for a config ``key`` value; ValueError (without the key) if it is unusable."""
    env = os.environ if environ is None else environ
    if spec.startswith("env:"):
        text = env.get(spec[4:], "")
    elif spec.startswith("file:"):
        try:
            text = read_path(spec[5:], limit=64 * 1024).decode("ascii").strip()  # a key file is tiny
        except (PlainError, UnicodeDecodeError):
            raise ValueError("auth key file unreadable") from None
    else:
        text = spec
    try:
        key = binascii.unhexlify(text.strip())
    except (binascii.Error, ValueError):
        raise ValueError("auth key is not valid hex") from None
    if not key:
        raise ValueError("auth key is empty")
    return key


def token(key: bytes, request: bytes, ad: bytes = b"") -> bytes:
    """HMAC-SHA256(key, request || ad)."""
    return hmac.digest(key, request + ad, "sha256")  # the one-shot C path: no HMAC object per request


def verify(key: bytes, request: bytes, presented: bytes, ad: bytes = b"") -> bool:
    """Constant-time check of a presented token."""
    return hmac.compare_digest(token(key, request, ad), presented)


def verify_any(keys: Sequence[bytes | None], request: bytes, presented: bytes, ad: bytes = b"") -> bool:
    """True when ``presented`` is the token of ``request || ad`` under any of ``keys`` (None entries skipped).

    Every key is tried, so the time taken does not tell which one matched.
    """
    ok = False
    for key in keys:
        if key is not None:
            ok |= verify(key, request, presented, ad)
    return ok


def timestamp_ad(timestamp: int) -> bytes:
    """The replay guard's additional data: the timestamp in decimal ASCII (``b"1700000000"``)."""
    return str(int(timestamp)).encode("ascii")


# ---------------------------------------------------------------------------------------------------------
# The authsign body


@go_struct("auth.AuthenticatedRequest", {"timestamp": INT64, "remote_address": BYTES, "token": BYTES, "request": BYTES})
@dataclass
class AuthenticatedRequest:
    """cfssl's ``auth.AuthenticatedRequest``, the authsign body.

    JSON: ``{"timestamp": <int64, omitted when 0>, "remote_address": <base64, omitted when empty>,
    "token": <base64>, "request": <base64>}`` (Go ``[]byte`` fields are standard base64 with padding).
    """

    token: bytes = b""
    request: bytes = b""
    timestamp: int = 0
    remote_address: bytes = b""

    def to_json(self) -> dict[str, Any]:
        """The body in cfssl's field order, ready for :func:`cfsslpy.golang.json.go_json_dumps`."""
        import base64

        out: dict[str, Any] = {}
        if self.timestamp:
            out["timestamp"] = self.timestamp
        if self.remote_address:
            out["remote_address"] = base64.b64encode(self.remote_address).decode("ascii")
        out["token"] = base64.b64encode(self.token).decode("ascii")
        out["request"] = base64.b64encode(self.request).decode("ascii")
        return out

    @classmethod
    def from_json(cls, obj: Any) -> AuthenticatedRequest:
        """Decode as Go's encoding/json would (case-insensitive keys, Go's error wording on failure)."""
        return decode(cls, obj, null=False)

    @classmethod
    def build(cls, key: bytes, request: bytes, *, timestamp: int | None = None, timestamped: bool = False) -> AuthenticatedRequest:
        """What a client sends: ``timestamp`` defaults to now; ``timestamped`` makes the token cover it
        (a server profile with ``auth_replay_window`` requires that; a cfssl server refuses it)."""
        ts = int(time.time()) if timestamp is None else timestamp
        ad = timestamp_ad(ts) if timestamped else b""
        return cls(token=token(key, request, ad), request=request, timestamp=ts)


# ---------------------------------------------------------------------------------------------------------
# Replay guard


class TokenStore(Protocol):
    """Where a :class:`ReplayGuard` keeps the digests of the tokens it has seen (SQLite here; the PostgreSQL
    certdb's table in :mod:`cfsslpy.certdb.replay`)."""

    def first_use(self, digest: bytes, expires: float, now: float) -> bool:
        """Record ``digest`` until ``expires``; False when it is already recorded. Raises PlainError (503)
        when the store cannot be used: the guard fails closed."""
        ...

    def close(self) -> None: ...


class ReplayGuard:
    """Remembers valid authsign tokens until their timestamp window closes; shared across processes.

    By default the tokens are kept in SQLite (:class:`SQLiteTokens`): ``path`` is a file every worker process
    of one server opens, ``None`` a private in-memory database (one process only). ``store`` replaces that,
    e.g. with the PostgreSQL certdb's table that several ``serve`` instances share
    (:class:`cfsslpy.certdb.replay.PostgresTokens`).

    Failures to reach the store refuse the request (fail closed, 503 ``replay guard unavailable``).
    """

    def __init__(self, path: str | None = None, *, busy_timeout: float = 5.0, store: TokenStore | None = None) -> None:
        self.path = path
        self.store: TokenStore = store if store is not None else SQLiteTokens(path, busy_timeout=busy_timeout)

    def first_use(self, presented: bytes, expires: float, *, now: float | None = None) -> bool:
        """Record ``presented`` until ``expires`` (Unix time); False when it was already recorded (a replay).

        Only the token's SHA-256 is stored. Raises PlainError (503) when the store cannot be used.
        """
        current = time.time() if now is None else now
        return self.store.first_use(hashlib.sha256(presented).digest(), expires, current)

    def close(self) -> None:
        self.store.close()


class SQLiteTokens:
    """The SQLite token store.

    ``path`` is a SQLite file that every worker process opens (created 0600; WAL journal so readers never
    block the single writer; a busy timeout so concurrent workers wait instead of failing). ``None`` keeps
    the tokens in a private in-memory database: enough for one process, not for a pre-forked server.
    Each process opens its own connection on first use (never one inherited across ``fork``).
    """

    def __init__(self, path: str | None = None, *, busy_timeout: float = 5.0) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        # Connections inherited across fork must never be used or closed (SQLite's rule): kept unreachable here.
        self._inherited: list[sqlite3.Connection] = []
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _call(ref, "_after_fork"))

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        if self._conn is not None:
            self._inherited.append(self._conn)
        self._conn = None
        self._pid = os.getpid()

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        conn = sqlitedb.connect(self.path, busy_timeout=self.busy_timeout)
        try:

            def schema(c: sqlite3.Connection) -> None:
                c.execute("CREATE TABLE IF NOT EXISTS seen_tokens (digest BLOB PRIMARY KEY, expires REAL NOT NULL) WITHOUT ROWID")
                c.execute("CREATE INDEX IF NOT EXISTS seen_tokens_expires ON seen_tokens (expires)")

            sqlitedb.write_transaction(conn, schema, self.busy_timeout)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def first_use(self, digest: bytes, expires: float, now: float) -> bool:
        """Expired rows are purged on the way; lock contention between processes is waited out (up to
        ``busy_timeout``)."""

        def record(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM seen_tokens WHERE expires <= ?", (now,))
            cursor = conn.execute(
                "INSERT INTO seen_tokens (digest, expires) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING",
                (digest, expires),
            )
            return cursor.rowcount == 1

        with self._lock:
            try:
                conn = self._connect()
                return sqlitedb.write_transaction(conn, record, self.busy_timeout)
            except (sqlite3.Error, OSError) as exc:
                self._abandon_transaction()
                log.error("replay guard database %s unusable: %s", self.path or ":memory:", exc)
                raise PlainError(UNAVAILABLE, status=503) from None

    def _abandon_transaction(self) -> None:
        conn = self._conn
        if conn is not None and conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _call(ref: weakref.ref[Any], method: str) -> None:
    obj = ref()
    if obj is not None:
        getattr(obj, method)()
