"""Reading inputs the way cfssl users name them, and writing outputs so a crash never leaves half a file.

Inputs: ``-`` is standard input; ``env:VAR`` is the value of an environment variable; ``file:path`` and a
bare path are files. ``pkcs11:`` URIs are not read here: key loading recognises them before calling us.

Every read is bounded (:data:`MAX_INPUT_BYTES`, 64 MiB): cfssl reads whatever it is given, so
``certinfo -cert /dev/zero`` grows until memory runs out. A regular file over the bound is refused from its
size before any byte is read; a device, FIFO or stream is read in chunks and refused once it passes the bound.
The refusal (:class:`InputTooLarge`) names the file and is a coded error (1001, cfssl's read failure) where
it reaches a face unchanged; callers that give read failures their own code (``except PlainError``: bundle's
4001/3001, key loading's 2001...) keep doing so, since it is also a :class:`PlainError`.

Outputs: :func:`write_atomic` writes to a temporary file in the target directory, fsyncs, sets the mode
and renames it over the target, so readers see either the old file or the whole new one. Private keys go
through :func:`write_secret` (mode 0600 from the first byte: the temporary file is created 0600).
Write failures are :class:`WriteFailed`, naming the file and the reason in Go's words.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

from cfsslpy.errors import Category, CfsslError, PlainError, Reason

KNOWN_PREFIXES = ("env", "file")
MAX_INPUT_BYTES = 64 * 1024 * 1024
_CHUNK = 1 << 20


class InputTooLarge(CfsslError, PlainError):
    """An input over :data:`MAX_INPUT_BYTES`: ``{"code":1001,"message":"read NAME: input is larger than 64 MiB"}``.

    Both a coded error (printed as cfssl's JSON where nobody rewraps it) and a :class:`PlainError` (so the
    callers that wrap read failures into their own category, as cfssl does, still do).
    """

    def __init__(self, name: str, limit: int) -> None:
        super().__init__(Category.CERTIFICATE, Reason.READ_FAILED, f"read {name}: {too_large_reason(limit)}")


class WriteFailed(PlainError):
    """A file could not be written: ``write PATH: no space left on device`` (Go's wording)."""

    def __init__(self, path: str, exc: OSError) -> None:
        self.path = path
        self.reason = os_reason(exc)
        super().__init__(f"write {path}: {self.reason}")


def too_large_reason(limit: int = MAX_INPUT_BYTES) -> str:
    if limit % (1024 * 1024) == 0:
        return f"input is larger than {limit // (1024 * 1024)} MiB"
    return f"input is larger than {limit} bytes"


def os_reason(exc: OSError) -> str:
    """An OSError's reason as Go words it: ``permission denied``, ``no space left on device``."""
    return exc.strerror.lower() if exc.strerror else str(exc)


def read_stream(stream: BinaryIO, name: str, limit: int | None = None) -> bytes:
    """Read ``stream`` to its end, at most ``limit`` bytes (:data:`MAX_INPUT_BYTES`); more is :class:`InputTooLarge`.

    Read in chunks, so a device or pipe that never ends costs at most ``limit`` bytes of memory.
    """
    limit = MAX_INPUT_BYTES if limit is None else limit
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = stream.read(min(_CHUNK, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise InputTooLarge(name, limit)


@dataclass
class Stdin:
    """Standard input, read at most once and shared by every ``-`` argument of one invocation."""

    stream: BinaryIO | None = None
    _data: bytes | None = field(default=None, repr=False)

    def read(self) -> bytes:
        if self._data is None:
            stream = self.stream if self.stream is not None else sys.stdin.buffer
            self._data = read_stream(stream, "standard input")
        return self._data


def split_prefix(spec: str) -> tuple[str, str]:
    """Split ``env:VAR`` / ``file:path`` into (prefix, rest); ("", spec) when there is no prefix."""
    head, sep, rest = spec.partition(":")
    if sep and head and "/" not in head and "\\" not in head and "." not in head:
        return head, rest
    return "", spec


def read_input(
    spec: str,
    *,
    stdin: Stdin | None = None,
    environ: Mapping[str, str] | None = None,
    allow_prefixes: bool = True,
) -> bytes:
    """Return the bytes named by ``spec``.

    ``allow_prefixes`` enables ``env:``/``file:`` (cfssl accepts them for ``-ca``, ``-ca-key`` and a few other
    flags). Unlike cfssl, a path that contains a colon still works when the file exists; an unknown prefix
    on a missing file is the error cfssl gives (``unknown prefix: x``).
    Errors are :class:`PlainError` with Go's wording (``open x: no such file or directory``); callers that
    need a cfssl code wrap them.
    """
    if spec == "-":
        if stdin is None:
            stdin = Stdin()
        return stdin.read()
    if allow_prefixes:
        prefix, rest = split_prefix(spec)
        if prefix == "env":
            env = os.environ if environ is None else environ
            if rest not in env:
                raise PlainError(f"environment variable {rest} is not set")
            return env[rest].encode("utf-8")
        if prefix == "file":
            return _read_file(rest)
        if prefix and not os.path.exists(spec):
            raise PlainError(f"unknown prefix: {prefix}")
    return _read_file(spec)


def read_path(path: str, limit: int | None = None) -> bytes:
    """The bytes of the file at ``path``, bounded like every input (:func:`read_stream`).

    A regular file larger than the bound is refused from its size, before anything is read. Errors are
    :class:`PlainError` in Go's words (``open x: no such file or directory``) or :class:`InputTooLarge`.
    """
    return _read_file(path, limit)


def _read_file(path: str, limit: int | None = None) -> bytes:
    limit = MAX_INPUT_BYTES if limit is None else limit
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            if stat.S_ISREG(st.st_mode) and st.st_size > limit:
                raise InputTooLarge(path, limit)
            return read_stream(fh, path, limit)
    except FileNotFoundError:
        raise PlainError(f"open {path}: no such file or directory") from None
    except IsADirectoryError:
        raise PlainError(f"read {path}: is a directory") from None
    except PermissionError:
        raise PlainError(f"open {path}: permission denied") from None
    except OSError as exc:
        raise PlainError(f"open {path}: {os_reason(exc)}") from None


def write_atomic(path: str, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically with permission bits ``mode`` (umask not applied).

    The temporary file is created with mode 0600 and only widened to ``mode`` after the data is on disk,
    so a secret is never briefly world-readable, and a crash leaves no partial target.
    """
    directory = os.path.dirname(os.path.abspath(path))
    import tempfile  # lazily: most invocations write nothing

    fd, tmp = tempfile.mkstemp(prefix=".cfsslpy-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def current_umask() -> int:
    """The process's umask, read without changing it where Linux shows it (``/proc/self/status``)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, hence the last resort)
    os.umask(mask)
    return mask


def creation_mode(path: str, mode: int) -> int:
    """The mode to give a file written at ``path``: ``mode`` less the umask, and never wider than the mode of
    a file already there (``os.open``'s rule for new files, kept for replaced ones)."""
    mode &= ~current_umask()
    try:
        mode &= stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        pass
    return mode


def write_secret(path: str, data: bytes) -> None:
    """Write a private key (or any secret) atomically with mode 0600."""
    write_atomic(path, data, 0o600)
