"""Reading inputs the way cfssl users name them, and writing outputs so a crash never leaves half a file.

Inputs: ``-`` is standard input; ``env:VAR`` is the value of an environment variable; ``file:path`` and a
bare path are files. ``pkcs11:`` URIs are not read here: key loading recognises them before calling us.

Outputs: :func:`write_atomic` writes to a temporary file in the target directory, fsyncs, sets the mode
and renames it over the target, so readers see either the old file or the whole new one. Private keys go
through :func:`write_secret` (mode 0600 from the first byte: the temporary file is created 0600).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

from cfsslpy.errors import PlainError

KNOWN_PREFIXES = ("env", "file")


@dataclass
class Stdin:
    """Standard input, read at most once and shared by every ``-`` argument of one invocation."""

    stream: BinaryIO | None = None
    _data: bytes | None = field(default=None, repr=False)

    def read(self) -> bytes:
        if self._data is None:
            stream = self.stream if self.stream is not None else sys.stdin.buffer
            self._data = stream.read()
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


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise PlainError(f"open {path}: no such file or directory") from None
    except IsADirectoryError:
        raise PlainError(f"read {path}: is a directory") from None
    except PermissionError:
        raise PlainError(f"open {path}: permission denied") from None
    except OSError as exc:
        raise PlainError(f"open {path}: {exc.strerror or exc}") from None


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


def write_secret(path: str, data: bytes) -> None:
    """Write a private key (or any secret) atomically with mode 0600."""
    write_atomic(path, data, 0o600)
