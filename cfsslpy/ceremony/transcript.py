"""The hash-chained transcript of a ceremony: its format, the canonical hashing of an entry, the writer."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from cfsslpy.inputs import write_atomic

FORMAT = "cfsslpy-ceremony-transcript/1"


def sha256_file(path: str) -> str | None:
    """The file's SHA-256 (hex), or None when it does not exist."""
    try:
        with open(path, "rb") as fh:
            digest = hashlib.sha256()
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
            return digest.hexdigest()
    except FileNotFoundError:
        return None


def canonical_json(obj: Any) -> bytes:
    """The bytes an entry's hash covers: keys sorted, no whitespace, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def entry_hash(entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


def utc_text(now: dt.datetime) -> str:
    return now.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_transcript(plan_path: str) -> str:
    """``PLAN.transcript.json`` beside the plan (``ceremony.json`` -> ``ceremony.transcript.json``)."""
    base, ext = os.path.splitext(os.path.abspath(plan_path))
    return f"{base}.transcript.json" if ext.lower() == ".json" else f"{base}{ext}.transcript.json"


class Transcript:
    """The hash-chained record of one ceremony, rewritten atomically after every entry."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.entries: list[dict[str, Any]] = []

    def rel(self, path: str) -> str:
        return os.path.relpath(path, os.path.dirname(self.path))

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        entry = {"seq": len(self.entries), **entry, "prev": self.entries[-1]["hash"] if self.entries else ""}
        entry["hash"] = entry_hash(entry)
        self.entries.append(entry)
        data = json.dumps({"format": FORMAT, "entries": self.entries}, indent=2, ensure_ascii=False) + "\n"
        write_atomic(self.path, data.encode("utf-8"), 0o644)
        return entry
