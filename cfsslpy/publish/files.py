"""The published tree on disk: atomic replacement, removal, and "only touch what changed".

Every file is written to a temporary file in its own directory and renamed over the target, so a web
server reading the tree sees the old bytes or the new ones, never a partial file. Response files are not
fsynced one by one (two fsyncs each would bound a 100,000-certificate run by the disk's sync rate, where
:func:`cfsslpy.inputs.write_atomic` fits keys and configs): a file lost or left empty by a crash does not
parse, and the next run signs it again. Files are world-readable (0644 less the umask): they are public.
"""

from __future__ import annotations

import filecmp
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from cfsslpy.inputs import current_umask

TEMP_PREFIX = ".publish-"


def temp_name(path: str) -> str:
    """A fresh temporary name beside ``path`` (same directory, so the rename is atomic)."""
    head, tail = os.path.split(path)
    return os.path.join(head, f"{TEMP_PREFIX}{secrets.token_hex(6)}-{tail[:32]}")


def read_if_exists(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def replace_file(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp + rename), making its directory when needed."""
    tmp = temp_name(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def write_if_changed(path: str, data: bytes) -> bool:
    """Replace ``path`` with ``data`` unless it already holds exactly those bytes; True when written."""
    if read_if_exists(path) == data:
        return False
    replace_file(path, data)
    return True


@contextmanager
def streamed_if_changed(path: str, changed: list[bool]) -> Iterator[BinaryIO]:
    """Write a large file (the index) through a temporary file; on success it replaces ``path`` only when
    its bytes differ (``changed[0]`` says which), so an unchanged index keeps its mtime and ETag."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = temp_name(path)
    fh = open(tmp, "xb")  # noqa: SIM115 -- closed below, before the comparison
    try:
        yield fh
        fh.close()
        os.chmod(tmp, 0o644 & ~current_umask())
        if os.path.exists(path) and filecmp.cmp(tmp, path, shallow=False):
            changed[:] = [False]
            os.unlink(tmp)
        else:
            changed[:] = [True]
            os.replace(tmp, path)
    except BaseException:
        fh.close()
        _unlink_quietly(tmp)
        raise


def remove_file(root: str, relpath: str) -> bool:
    """Remove ``root/relpath`` and the directories it leaves empty (up to, not including, ``root``).
    False when it was not there."""
    path = os.path.join(root, relpath)
    try:
        os.unlink(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    parent = os.path.dirname(path)
    stop = os.path.abspath(root)
    while os.path.abspath(parent).startswith(stop + os.sep):
        try:
            os.rmdir(parent)
        except OSError:  # not empty (or gone): the directories above are in use too
            break
        parent = os.path.dirname(parent)
    return True


def walk_files(root: str) -> Iterator[str]:
    """Every file under ``root`` as a ``/``-separated relative path (temporary files included)."""
    for directory, _dirs, names in os.walk(root):
        rel = os.path.relpath(directory, root)
        for name in names:
            yield name if rel == "." else f"{rel.replace(os.sep, '/')}/{name}"


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
