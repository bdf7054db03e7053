"""Running the publisher again and again (``-loop``), for hosts without cron or systemd timers."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from cfsslpy.errors import Error

log = logging.getLogger(__name__)

T = TypeVar("T")


def repeat(
    period: dt.timedelta,
    once: Callable[[], T],
    *,
    report: Callable[[T], None],
    runs: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Call ``once`` every ``period`` (start to start; at once again when a run took longer), ``runs`` times
    or until interrupted. A run that fails with a cfssl error (the database is down, a CRL could not be
    signed) is logged and the next run tries again: the published tree keeps its last good state meanwhile.
    Programming errors and interrupts end the loop."""
    done = 0
    while runs is None or done < runs:
        started = clock()
        try:
            report(once())
        except Error as exc:
            log.error("publishing failed (retrying in %s): %s", period, exc)
        done += 1
        if runs is not None and done >= runs:
            return
        sleep(max(0.0, period.total_seconds() - (clock() - started)))
