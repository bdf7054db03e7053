"""mkbundle's inputs: the files under the given paths walked, read (bounded) and their certificate blocks parsed."""

from __future__ import annotations

import binascii
import logging
import os
import stat
from collections.abc import Sequence

from cryptography import x509

from cfsslpy.errors import PlainError
from cfsslpy.inputs import MAX_INPUT_BYTES, InputTooLarge, read_stream, too_large_reason
from cfsslpy.mkbundle.results import Found, Problem, Source
from cfsslpy.pem import lenient_body_der
from cfsslpy.pem import pem_blocks as pem_blocks  # re-exported by cfsslpy.mkbundle

log = logging.getLogger(__name__)


def walk(paths: Sequence[str], problems: list[Problem]) -> list[tuple[str, int]]:
    """(path, size) of the regular files under ``paths`` (directories recursively, entries sorted, links
    followed, each file once).

    A path that does not exist raises :class:`PlainError` (Go's ``lstat`` wording); unreadable directories and
    dangling links found while walking are recorded in ``problems``.
    """
    for path in paths:
        if not os.path.lexists(path):
            raise PlainError(f"lstat {path}: no such file or directory")
    seen: set[tuple[int, int]] = set()
    files: list[tuple[str, int]] = []

    def visit(path: str) -> None:
        try:
            st = os.stat(path)
        except OSError as exc:
            problems.append(Problem(path, _os_message(exc, "stat")))
            return
        key = (st.st_dev, st.st_ino)
        if key in seen:  # a second link to a file, or a directory loop
            log.debug("%s: already visited", path)
            return
        seen.add(key)
        if stat.S_ISDIR(st.st_mode):
            try:
                names = sorted(os.listdir(path))
            except OSError as exc:
                problems.append(Problem(path, _os_message(exc, "open")))
                return
            for name in names:
                visit(os.path.join(path, name))
        elif stat.S_ISREG(st.st_mode):
            files.append((path, st.st_size))

    for path in paths:
        visit(path)
    return files


def _os_message(exc: OSError, op: str) -> str:
    return f"{op}: {(exc.strerror or str(exc)).lower()}"


def parse_file(path: str, data: bytes, problems: list[Problem]) -> list[Found]:
    """Every certificate in the PEM blocks of ``data``; bad certificate blocks go to ``problems``."""
    found: list[Found] = []
    for number, label, body in pem_blocks(data):
        if label != b"CERTIFICATE":
            continue
        try:
            der = lenient_body_der(body)
        except binascii.Error as exc:
            problems.append(Problem(path, f"invalid base64: {exc}", number))
            continue
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError as exc:
            problems.append(Problem(path, f"x509: malformed certificate ({exc})", number))
            continue
        found.append(Found(cert, der, Source(path, number)))
    return found


def _read(path: str, size: int) -> bytes:
    # os.read rather than open(): no buffered file object per file (a third of the time for 10,000 files)
    if size > MAX_INPUT_BYTES:
        raise InputTooLarge(path, MAX_INPUT_BYTES)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, size + 1)
        if len(data) <= size:
            return data
        with os.fdopen(os.dup(fd), "rb") as rest:  # the file grew since it was listed: the bounded reader
            return data + read_stream(rest, path, MAX_INPUT_BYTES - len(data))
    except InputTooLarge:
        raise InputTooLarge(path, MAX_INPUT_BYTES) from None
    finally:
        os.close(fd)


def read_all(paths: Sequence[str], problems: list[Problem]) -> tuple[list[Found], int]:
    """(certificates in walk order, number of files read)."""
    files = walk(paths, problems)
    found: list[Found] = []
    for path, size in files:
        try:
            data = _read(path, size)
        except OSError as exc:
            problems.append(Problem(path, _os_message(exc, "open")))
            continue
        except InputTooLarge:
            problems.append(Problem(path, too_large_reason()))
            continue
        log.debug("Loading %s", path)
        found.extend(parse_file(path, data, problems))
    return found, len(files)
