"""Readiness of the certdb: does the database answer a trivial query within a bound?

A load balancer asks every ``serve`` instance whether it can do its work; an instance whose certificate
database is unreachable cannot record what it signs, so it must be taken out of rotation (while it stays
alive: liveness is cfssl's ``/health``, which never looks at the database). :class:`Readiness` runs
``SELECT 1`` on a connection of its own (so it never queues behind a slow certificate insert), at most one
probe at a time per process: a probe still running after ``timeout`` seconds (a silent network, a stuck
server) makes every check fail at once until it ends, instead of piling up threads.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from concurrent.futures import Future
from typing import Any

from cfsslpy.certdb.connection import Connection
from cfsslpy.certdb.dbconfig import DBConfig
from cfsslpy.errors import Category, CfsslError, Reason

DEFAULT_TIMEOUT = 2.0


class Readiness:
    """Checks the database of ``config``; :meth:`check` raises 11000 when it does not answer in time."""

    def __init__(self, config: DBConfig, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.config = config
        self.timeout = timeout
        self._connection = Connection(config, busy_timeout=timeout)
        self._lock = threading.Lock()
        self._probe: Future[None] | None = None
        self._started = 0.0
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _reset(ref))

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._probe = None  # a probe thread of the parent does not exist in the child

    def check(self) -> None:
        """Return when the database answered ``SELECT 1``; raise CfsslError 11000 (the driver's text, or
        that it did not answer within ``timeout`` seconds) otherwise."""
        with self._lock:
            probe = self._probe
            if probe is None or probe.done():
                probe = self._probe = Future()
                self._started = time.monotonic()
                threading.Thread(target=self._run, args=(probe,), name="certdb-readiness", daemon=True).start()
            left = self._started + self.timeout - time.monotonic()
        try:
            probe.result(timeout=max(left, 0.0))
        except TimeoutError:
            raise CfsslError(
                Category.CERT_STORE, Reason.UNKNOWN, f"the certificate database did not answer within {self.timeout:g}s"
            ) from None

    def _run(self, probe: Future[None]) -> None:
        try:
            self._connection.read("SELECT 1")
        except BaseException as exc:  # handed to the waiting request (CfsslError 11000 for a database error)
            probe.set_exception(exc)
        else:
            probe.set_result(None)

    def close(self) -> None:
        self._connection.close()


def _reset(ref: weakref.ref[Any]) -> None:
    obj = ref()
    if obj is not None:
        obj._after_fork()
