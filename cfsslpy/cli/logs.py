"""cfssl's ``-loglevel`` (0 debug .. 5 fatal) mapped onto the ``cfsslpy`` loggers, in one place.

Applied by :func:`cfsslpy.cli.runner.run_command` to every command (mkbundle's flag set has ``-loglevel``
too; cfssljson's has none and runs at cfssl's default, info).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from cfsslpy.cli.context import IO

LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR, 4: logging.CRITICAL, 5: logging.CRITICAL + 5}
logging.addLevelName(logging.CRITICAL + 5, "FATAL")


class GoLogFormatter(logging.Formatter):
    """Go ``log`` format with cfssl's level tags: ``2026/11/26 17:59:00 [WARNING] message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s [%(levelname)s] %(message)s", datefmt="%Y/%m/%d %H:%M:%S")
        self._cached = (-1, "")  # (second, its text), replaced in one assignment: threads log too

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        """The time to the second, formatted once per second (a busy server logs thousands of lines a second)."""
        second = int(record.created)
        cached = self._cached
        if cached[0] != second:
            cached = (second, super().formatTime(record, datefmt))
            self._cached = cached
        return cached[1]


@contextlib.contextmanager
def cli_logging(io: IO, level: int) -> Iterator[None]:
    """cfssl's ``-loglevel`` (0 debug .. 5 fatal) on the ``cfsslpy`` loggers, written to ``io.stderr``.

    The logger's previous handlers, level and propagation are restored afterwards, so running the CLI
    in-process (tests, embedding) leaves logging as it found it.
    """
    root = logging.getLogger("cfsslpy")
    saved = (list(root.handlers), root.level, root.propagate)
    handler = logging.StreamHandler(io.stderr)
    handler.setFormatter(GoLogFormatter())
    for old in saved[0]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LEVELS.get(level, logging.DEBUG if level < 0 else logging.CRITICAL + 5))
    root.propagate = False
    # the record fields no cfsslpy format prints: gathering them is a tenth of a busy server's logging
    gathered = (logging.logThreads, logging.logProcesses, logging.logMultiprocessing)
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    try:
        yield
    finally:
        logging.logThreads, logging.logProcesses, logging.logMultiprocessing = gathered
        root.removeHandler(handler)
        for old in saved[0]:
            root.addHandler(old)
        root.setLevel(saved[1])
        root.propagate = saved[2]
