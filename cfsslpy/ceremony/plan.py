"""A ceremony plan: the JSON document of steps, parsed, checked as a whole before anything runs, and described."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cfsslpy.ceremony.steps import Step, parse_step, plan_error
from cfsslpy.ceremony.transcript import sha256_file
from cfsslpy.ceremony.validation import check_contents
from cfsslpy.inputs import read_path


@dataclass
class Plan:
    path: str  # absolute
    sha256: str
    description: str
    steps: list[Step]

    @property
    def directory(self) -> str:
        return os.path.dirname(self.path)

    @classmethod
    def load(cls, path: str) -> Plan:
        """Read and parse the plan: JSON shape, actions, fields and their types (not yet the files)."""
        path = os.path.abspath(path)
        return cls.from_bytes(read_path(path), path)  # bounded; errors name the file

    @classmethod
    def from_bytes(cls, data: bytes, path: str) -> Plan:
        where = f"ceremony plan {os.path.basename(path)}"
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise plan_error(f"{where}: not valid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise plan_error(f"{where}: want a JSON object with a steps list")
        unknown = sorted(set(obj) - {"description", "steps"})
        if unknown:
            raise plan_error(f"{where}: unknown field {unknown[0]!r} (want description, steps)")
        description = obj.get("description", "")
        if not isinstance(description, str):
            raise plan_error(f"{where}: description must be a string")
        raw_steps = obj.get("steps")
        if not isinstance(raw_steps, list) or not raw_steps:
            raise plan_error(f"{where}: steps must be a non-empty list")
        directory = os.path.dirname(os.path.abspath(path))
        steps = [parse_step(i, raw, directory, where) for i, raw in enumerate(raw_steps, start=1)]
        return cls(path=os.path.abspath(path), sha256=hashlib.sha256(data).hexdigest(), description=description, steps=steps)

    def check(self, transcript: str) -> None:
        """Everything that can be checked before the first step: files, configs, profiles, overwrites."""
        produced: dict[str, int] = {}  # path -> step index
        transcript = os.path.abspath(transcript)
        if os.path.exists(transcript):
            raise plan_error(f"transcript {transcript} already exists (a ceremony is recorded once; choose another -transcript)")
        all_outputs: dict[str, int] = {}
        for step in self.steps:
            for name, path in step.outputs.items():
                if path in all_outputs:
                    raise plan_error(f"{step.label}: output {name} {path} is already an output of step {all_outputs[path]}")
                all_outputs[path] = step.index
        for step in self.steps:
            for name, path in step.inputs.items():
                if path in step.outputs.values():
                    raise plan_error(f"{step.label}: {name} {path} is both an input and an output")
                if path in produced:
                    continue
                if not os.path.isfile(path):
                    later = all_outputs.get(path)
                    hint = f" (produced only by the later step {later})" if later else ""
                    raise plan_error(f"{step.label}: input {name} {path} does not exist and no earlier step produces it{hint}")
            for name, path in step.outputs.items():
                if os.path.lexists(path):
                    raise plan_error(f"{step.label}: output {name} {path} already exists (refusing to overwrite)")
                if path in (self.path, transcript):
                    raise plan_error(f"{step.label}: output {name} {path} is the plan or the transcript")
                if not os.path.isdir(os.path.dirname(path)):
                    raise plan_error(f"{step.label}: output {name} {path}: directory {os.path.dirname(path)} does not exist")
            check_contents(step, produced)
            for path in step.outputs.values():
                produced[path] = step.index

    def describe(self, transcript: str) -> dict[str, Any]:
        """The dry-run view: every step with its parameters, inputs (SHA-256 of those that exist) and outputs."""
        produced: dict[str, int] = {}
        steps = []
        for step in self.steps:
            steps.append(step_view(step, produced))
            for path in step.outputs.values():
                produced[path] = step.index
        out: dict[str, Any] = {"plan": {"path": self.path, "sha256": self.sha256}}
        if self.description:
            out["description"] = self.description
        out["transcript"] = os.path.abspath(transcript)
        out["steps"] = steps
        return out


def step_view(step: Step, produced: Mapping[str, int] | None = None) -> dict[str, Any]:
    """A step as shown by a dry run and before confirmation."""
    view: dict[str, Any] = {"step": step.index, "action": step.action}
    if step.name:
        view["name"] = step.name
    if step.comment:
        view["comment"] = step.comment
    view["parameters"] = step.parameters()
    inputs = []
    for name, path in step.inputs.items():
        item: dict[str, Any] = {"field": name, "path": path}
        if produced and path in produced:
            item["from_step"] = produced[path]
        else:
            digest = sha256_file(path)
            if digest is not None:
                item["sha256"] = digest
            else:
                item["missing"] = True
        inputs.append(item)
    view["inputs"] = inputs
    view["outputs"] = [
        {"field": name, "path": path, "exists": True} if os.path.lexists(path) else {"field": name, "path": path}
        for name, path in step.outputs.items()
    ]
    return view
