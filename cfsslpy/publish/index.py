"""The index of a published tree (``index.json``): what was published, for people, scripts and the next run.

It is one JSON document, written a line per certificate so that it can be written and read back as a
stream (100,000 certificates stay 100,000 lines, never one object in memory)::

    {"version": 1,
    "issuers": [
    {"aki": "…", "subject": "CN=…", "responder": "CN=…", "crl": {"der": "crl/….crl", "pem": "crl/….pem", "number": "…", "nextUpdate": "…"}}
    ],
    "certificates": [
    {"serial": "1234", "aki": "…", "status": "good", "nextUpdate": "2026-12-11T16:00:00Z", "paths": ["ocsp/MFMw…", "ocsp/MF8w…"]},
    …
    ],
    "maxAge": 86400}

Paths are relative to the tree's root and ``/``-separated; ``nextUpdate`` is the earliest of the
certificate's responses; ``maxAge`` is the run's Cache-Control max-age for responses, in seconds. Nothing in
it changes unless a response or CRL changed, so an unchanged run leaves the file (and its ETag) alone.
The next run reads the previous index back, in step with the certdb (both are ordered by serial number),
to find the files of certificates that are gone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

INDEX_NAME = "index.json"
VERSION = 1
_CERTS_OPEN = '"certificates": ['


class IndexUnreadable(Exception):
    """The previous index is missing or not in this layout (the publisher then sweeps the tree instead)."""


@dataclass(frozen=True)
class IndexEntry:
    serial: str
    aki: str
    paths: tuple[str, ...]


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(", ", ": "), ensure_ascii=True)


class IndexWriter:
    """Writes the index to an open binary file, a line at a time."""

    def __init__(self, fh: BinaryIO, issuers: list[dict[str, object]]) -> None:
        self._fh = fh
        self._first = True
        lines = [f'{{"version": {VERSION},', '"issuers": [']
        lines += [_dumps(issuer) + ("," if i < len(issuers) - 1 else "") for i, issuer in enumerate(issuers)]
        lines += ["],", _CERTS_OPEN]
        fh.write(("\n".join(lines) + "\n").encode("ascii"))

    def certificate(self, entry: dict[str, object]) -> None:
        prefix = "" if self._first else ",\n"
        self._first = False
        self._fh.write((prefix + _dumps(entry)).encode("ascii"))

    def close(self, max_age: int) -> None:
        self._fh.write((("" if self._first else "\n") + f'],\n"maxAge": {int(max_age)}}}\n').encode("ascii"))


def read_entries(path: str) -> Iterator[IndexEntry]:
    """The certificates of a previous index, in file order. :class:`IndexUnreadable` when there is none or it
    is not an index written by this module (raised before the first entry, or midway for a damaged file)."""
    try:
        fh = open(path, encoding="ascii")  # noqa: SIM115 -- a generator: closed in finally
    except OSError as exc:
        raise IndexUnreadable(str(exc)) from None
    try:
        for line in fh:
            if line.rstrip("\n") == _CERTS_OPEN:
                break
        else:
            raise IndexUnreadable(f"{path}: no certificate list")
        for line in fh:
            text = line.rstrip("\n").rstrip(",")
            if text == "]":
                return
            try:
                obj = json.loads(text)
                yield IndexEntry(str(obj["serial"]), str(obj["aki"]), tuple(str(p) for p in obj["paths"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise IndexUnreadable(f"{path}: a damaged certificate line") from exc
        raise IndexUnreadable(f"{path}: the certificate list is not closed")
    except UnicodeDecodeError as exc:
        raise IndexUnreadable(f"{path}: not ASCII") from exc
    finally:
        fh.close()
