"""Bounded thread pools for requests that may block, one per kind of blocking work.

A request that waits on something outside the process (an outbound TLS dial or AIA fetch, a PKCS#11 token,
a database write, a key generation that takes seconds) runs in the pool of its kind, never on the event
loop. Each pool has its own threads, so one kind cannot starve another: eight ``certinfo -domain`` calls to
a silent host fill the ``outbound`` pool and wait there, while ``sign`` keeps its own capacity.

Every pool is bounded twice: at most ``threads`` requests run and at most ``queue`` more wait; beyond that a
request is answered 503 at once (``Retry-After: 1``). A request that waited longer than ``queue_timeout``
before a thread took it is answered 503 instead of being run late (its client has likely given up).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

log = logging.getLogger("cfsslpy.api.server")


@dataclass(frozen=True)
class PoolSpec:
    """One pool: ``threads`` running, ``queue`` waiting, ``queue_timeout`` seconds of waiting at most."""

    threads: int
    queue: int = 64
    queue_timeout: float = 10.0


class Busy(Exception):
    """The pool is full (``threads`` running and ``queue`` waiting)."""


class Pool:
    def __init__(self, name: str, spec: PoolSpec) -> None:
        self.name = name
        self.spec = spec
        self._executor: ThreadPoolExecutor | None = None  # threads start on first use (after fork)
        self._lock = threading.Lock()
        self._inflight = 0

    def submit(self, work: Callable[[], None], late: Callable[[float], None]) -> None:
        """Run ``work()`` on a thread of this pool, or ``late(waited)`` if it waited past the queue deadline.

        Raises :class:`Busy` when the pool is full. Neither callable may raise (they answer the request)."""
        with self._lock:
            if self._inflight >= self.spec.threads + self.spec.queue:
                raise Busy(self.name)
            self._inflight += 1
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.spec.threads, thread_name_prefix=f"cfsslpy-{self.name}")
        queued = time.monotonic()

        def run() -> None:
            try:
                waited = time.monotonic() - queued
                if waited > self.spec.queue_timeout:
                    late(waited)
                else:
                    work()
            finally:
                with self._lock:
                    self._inflight -= 1

        try:
            self._executor.submit(run)
        except RuntimeError:  # shut down meanwhile
            with self._lock:
                self._inflight -= 1
            raise Busy(self.name) from None

    @property
    def inflight(self) -> int:
        return self._inflight

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


class Pools:
    """The worker's pools, by name (``default`` always exists)."""

    def __init__(self, specs: dict[str, PoolSpec]) -> None:
        self.pools = {name: Pool(name, spec) for name, spec in specs.items()}

    def get(self, name: str) -> Pool:
        return self.pools.get(name) or self.pools["default"]

    def busy(self) -> int:
        return sum(pool.inflight for pool in self.pools.values())

    def shutdown(self) -> None:
        for pool in self.pools.values():
            pool.shutdown()
