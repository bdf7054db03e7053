"""Removing the files of certificates that are no longer published (expired, or gone from the certdb).

The previous run's index lists every certificate it published with its files, ordered by serial number
as the certdb hands rows out; this run walks the certdb in the same order. :class:`Pruner` advances
through the old index in step, so it holds only the entries of one serial number at a time: a file the
old index lists and this run did not publish again is removed. Without a usable old index (first run,
deleted or damaged index) the publisher instead remembers every path it publishes and sweeps the tree
at the end (:func:`sweep`), the one case where memory grows with the number of certificates.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

from cfsslpy.publish.files import remove_file, walk_files
from cfsslpy.publish.index import IndexEntry, IndexUnreadable, read_entries

log = logging.getLogger(__name__)


def usable_index(path: str) -> bool:
    """The old index reads to its end and is ordered by serial number (checked before anything is removed)."""
    if not os.path.exists(path):
        return False
    last = ""
    try:
        for entry in read_entries(path):
            if entry.serial < last:
                log.warning("%s is not ordered by serial number: sweeping the tree instead", path)
                return False
            last = entry.serial
    except IndexUnreadable as exc:
        log.warning("the previous index is unusable (%s): sweeping the tree for files no longer published", exc)
        return False
    return True


class Pruner:
    """Removes under ``root`` what ``old`` lists and the current run does not publish (see the module docstring)."""

    def __init__(self, root: str, old: Iterator[IndexEntry]) -> None:
        self.root = root
        self.removed = 0
        self._old = old
        self._pending = next(old, None)
        self._serial: str | None = None
        self._kept: set[str] = set()
        self._old_same: set[str] = set()
        self._in_order = True

    def see(self, serial: str, paths: tuple[str, ...]) -> None:
        """The current run reached the certdb row ``serial`` and published ``paths`` for it (maybe none)."""
        if not self._in_order:
            return
        if serial != self._serial:
            if self._serial is not None and serial < self._serial:
                log.warning("the certdb returned serial %s after %s: not removing old files this run", serial, self._serial)
                self._in_order = False
                return
            self._flush()
            self._serial = serial
            while self._pending is not None and self._pending.serial <= serial:
                if self._pending.serial < serial:
                    self._remove(self._pending.paths)
                else:
                    self._old_same.update(self._pending.paths)
                self._pending = next(self._old, None)
        self._kept.update(paths)

    def finish(self) -> int:
        """Remove what is left of the old index; the number of files removed in all."""
        if self._in_order:
            self._flush()
            while self._pending is not None:
                self._remove(self._pending.paths)
                self._pending = next(self._old, None)
        return self.removed

    def _flush(self) -> None:
        self._remove(tuple(self._old_same - self._kept))
        self._old_same = set()
        self._kept = set()

    def _remove(self, paths: tuple[str, ...]) -> None:
        for path in paths:
            if remove_file(self.root, path):
                self.removed += 1


def sweep(root: str, subdir: str, published: set[str]) -> int:
    """Remove every file under ``root/subdir`` not in ``published`` (relative paths); the number removed."""
    removed = 0
    base = f"{root}/{subdir}"
    for rel in list(walk_files(base)):
        if f"{subdir}/{rel}" not in published and remove_file(root, f"{subdir}/{rel}"):
            removed += 1
    return removed
