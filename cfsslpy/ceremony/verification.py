"""Verifying a ceremony transcript: the hash chain recomputed, every recorded file re-hashed."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from cfsslpy.ceremony.transcript import FORMAT, entry_hash, sha256_file
from cfsslpy.errors import Category, CfsslError, Reason
from cfsslpy.inputs import read_path


@dataclass
class FileCheck:
    path: str
    sha256: str
    status: str  # ok, changed, missing
    step: int
    role: str  # input or output
    field: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "status": self.status, "step": self.step, "role": self.role, "field": self.field}


@dataclass
class VerifyReport:
    transcript: str
    entries: int = 0
    steps_planned: int = 0
    steps_recorded: int = 0
    final_hash: str = ""
    problems: list[str] = field(default_factory=list)
    files: list[FileCheck] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.steps_planned > 0 and self.steps_recorded == self.steps_planned

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "transcript": self.transcript,
            "ok": self.ok,
            "complete": self.complete,
            "entries": self.entries,
            "steps_planned": self.steps_planned,
            "steps_recorded": self.steps_recorded,
            "final_hash": self.final_hash,
            "problems": list(self.problems),
            "missing": [f.path for f in self.files if f.status == "missing"],
            "files": [f.to_json() for f in self.files],
        }


def _load_transcript(path: str) -> list[Any]:
    data = read_path(path)
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CfsslError(Category.CERTIFICATE, Reason.VERIFY_FAILED, f"ceremony transcript {path}: not valid JSON: {exc}") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT or not isinstance(obj.get("entries"), list) or not obj["entries"]:
        raise CfsslError(Category.CERTIFICATE, Reason.VERIFY_FAILED, f"ceremony transcript {path}: not a {FORMAT} transcript")
    entries: list[Any] = obj["entries"]
    return entries


def verify(transcript_path: str) -> VerifyReport:
    """Recompute the transcript's hash chain and re-hash every recorded file still present.

    A broken link (an entry's ``hash`` or ``prev`` or ``seq`` wrong: an edited, removed, inserted or moved
    entry), a changed file or an incomplete ceremony is a problem; a missing file is listed but is not one
    (key files and CSRs are often kept elsewhere).
    """
    path = os.path.abspath(transcript_path)
    entries = _load_transcript(path)
    report = VerifyReport(transcript=path, entries=len(entries))
    base = os.path.dirname(path)
    prev = ""
    expected_step = 1
    for seq, entry in enumerate(entries):
        where = f"entry {seq}"
        if not isinstance(entry, dict):
            report.problems.append(f"{where}: not a JSON object")
            prev = ""
            continue
        if entry.get("seq") != seq:
            report.problems.append(f"{where}: seq is {entry.get('seq')!r} (entries removed, inserted or reordered)")
        if entry.get("hash") != entry_hash(entry):
            report.problems.append(f"{where}: hash does not match its content (entry edited)")
        if entry.get("prev") != prev:
            report.problems.append(f"{where}: prev does not match the previous entry's hash (chain broken)")
        prev = str(entry.get("hash", ""))
        if seq == 0:
            if entry.get("type") != "header":
                report.problems.append(f"{where}: the first entry is not the header")
            planned = entry.get("steps")
            report.steps_planned = planned if isinstance(planned, int) and not isinstance(planned, bool) else 0
            continue
        if entry.get("type") != "step":
            report.problems.append(f"{where}: type {entry.get('type')!r}, want step")
            continue
        if entry.get("step") != expected_step:
            report.problems.append(f"{where}: records step {entry.get('step')!r}, want step {expected_step}")
        expected_step += 1
        report.steps_recorded += 1
        recorded_step = entry.get("step")
        step_index = recorded_step if isinstance(recorded_step, int) else 0
        for role in ("input", "output"):
            records = entry.get(f"{role}s")
            if not isinstance(records, list):
                report.problems.append(f"{where}: {role}s is not a list")
                continue
            for record in records:
                if not isinstance(record, dict) or not isinstance(record.get("path"), str) or not isinstance(record.get("sha256"), str):
                    report.problems.append(f"{where}: malformed {role} record")
                    continue
                file_path = os.path.join(base, record["path"])
                digest = sha256_file(file_path)
                status = "missing" if digest is None else ("ok" if digest == record["sha256"] else "changed")
                report.files.append(FileCheck(record["path"], record["sha256"], status, step_index, role, str(record.get("field", ""))))
                if status == "changed":
                    report.problems.append(f"step {step_index}: {role} {record['path']} changed since the ceremony (sha256 mismatch)")
    report.final_hash = prev
    if report.steps_planned and report.steps_recorded < report.steps_planned:
        report.problems.append(f"ceremony incomplete: {report.steps_recorded} of {report.steps_planned} steps recorded")
    elif report.steps_recorded > report.steps_planned:
        report.problems.append(f"{report.steps_recorded} steps recorded, the header planned {report.steps_planned}")
    return report
