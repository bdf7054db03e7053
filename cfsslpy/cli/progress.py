"""The progress bar of long commands (ocsprefresh, crl, gencrl, mkbundle): drawn on stderr only when stderr is a
terminal and ``-progress`` is not false, so pipes, logs and tests see nothing of it.

The core operations take a plain callback ``progress(done, total)``; :class:`ProgressBar` is the CLI's one
implementation of it.
"""

from __future__ import annotations

import threading
import time
from typing import TextIO

from cfsslpy.cli.context import IO

MANY_ROWS = 200  # crl, gencrl: a CRL of fewer entries is made in a blink, without a bar


def is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


class ProgressBar:
    """``[#####.....] done/total label``, redrawn in place with ``\\r`` at most ten times a second.

    Silent unless ``enabled`` (see :func:`progress_bar`); ``min_total``: a run of fewer items draws nothing
    (a CRL of three entries needs no bar). Thread-safe: mkbundle's workers report from their threads.
    """

    def __init__(self, stream: TextIO, label: str, *, enabled: bool = True, min_total: int = 1, interval: float = 0.1) -> None:
        self.stream = stream
        self.label = label
        self.enabled = enabled
        self.min_total = min_total
        self.interval = interval
        self._last = 0.0
        self._drawn = False
        self._lock = threading.Lock()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total < self.min_total:
            return
        with self._lock:
            now = time.monotonic()
            if self._drawn and done < total and now - self._last < self.interval:
                return
            self._last = now
            width = 30
            filled = width * min(done, total) // max(total, 1)
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {self.label}")
            self.stream.flush()
            self._drawn = True

    def finish(self) -> None:
        """End the bar's line (if one was drawn), so that what follows starts on a line of its own."""
        with self._lock:
            if self._drawn:
                self.stream.write("\n")
                self.stream.flush()
                self._drawn = False

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()


def progress_bar(io: IO, label: str, *, wanted: bool = True, min_total: int = 1) -> ProgressBar:
    """The bar for a command: drawn when ``wanted`` (its ``-progress`` flag) and stderr is a terminal."""
    return ProgressBar(io.stderr, label, enabled=wanted and is_terminal(io.stderr), min_total=min_total)
