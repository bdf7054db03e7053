"""A ceremony plan: the JSON document of steps, parsed, checked as a whole before anything runs, and described."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cfsslpy.ceremony.steps import PlanProblems, Problems, Step, parse_step, plan_error
from cfsslpy.ceremony.transcript import sha256_file
from cfsslpy.ceremony.validation import check_contents
from cfsslpy.golang.json import JSONDecodeError, loads
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
            obj = loads(data)
        except JSONDecodeError as exc:
            raise plan_error(f"{where}: not valid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise plan_error(f"{where}: want a JSON object with a steps list")
        problems = Problems()
        unknown = sorted(set(obj) - {"description", "steps"})
        if unknown:
            problems.add(f"{where}: unknown field {unknown[0]!r} (want description, steps)")
        description = obj.get("description", "")
        if not isinstance(description, str):
            problems.add(f"{where}: description must be a string")
        raw_steps = obj.get("steps")
        if not isinstance(raw_steps, list) or not raw_steps:
            problems.add(f"{where}: steps must be a non-empty list")
            raise PlanProblems(problems.found)
        directory = os.path.dirname(os.path.abspath(path))
        steps = []
        for i, raw in enumerate(raw_steps, start=1):  # every invalid step, not only the first
            with problems:
                steps.append(parse_step(i, raw, directory, where))
        problems.raise_any()
        return cls(path=os.path.abspath(path), sha256=hashlib.sha256(data).hexdigest(), description=description, steps=steps)

    def check(self, transcript: str) -> None:
        """Everything that can be checked before the first step: files, configs, profiles, overwrites.

        Every problem is reported (:class:`PlanProblems`), not only the first.
        """
        problems = Problems()
        produced: dict[str, int] = {}  # path -> step index
        transcript = os.path.abspath(transcript)
        if os.path.exists(transcript):
            problems.add(f"transcript {transcript} already exists (a ceremony is recorded once; choose another -transcript)")
        all_outputs: dict[str, int] = {}
        for step in self.steps:
            for name, path in step.outputs.items():
                if path in all_outputs:
                    problems.add(f"{step.label}: output {name} {path} is already an output of step {all_outputs[path]}")
                all_outputs.setdefault(path, step.index)
        for step in self.steps:
            before = len(problems.found)
            self._check_inputs(step, produced, all_outputs, problems)
            self._check_outputs(step, transcript, problems)
            if len(problems.found) == before:  # the contents only of a step whose files are all there
                with problems:
                    check_contents(step, produced)
            for path in step.outputs.values():
                produced[path] = step.index
        problems.raise_any()

    @staticmethod
    def _check_inputs(step: Step, produced: Mapping[str, int], all_outputs: Mapping[str, int], problems: Problems) -> None:
        for name, path in step.inputs.items():
            if path in step.outputs.values():
                problems.add(f"{step.label}: {name} {path} is both an input and an output")
            elif path not in produced and not os.path.isfile(path):
                later = all_outputs.get(path)
                hint = f" (produced only by the later step {later})" if later else ""
                problems.add(f"{step.label}: input {name} {path} does not exist and no earlier step produces it{hint}")

    def _check_outputs(self, step: Step, transcript: str, problems: Problems) -> None:
        for name, path in step.outputs.items():
            if os.path.lexists(path):
                problems.add(f"{step.label}: output {name} {path} already exists (refusing to overwrite)")
            elif path in (self.path, transcript):
                problems.add(f"{step.label}: output {name} {path} is the plan or the transcript")
            elif not os.path.isdir(os.path.dirname(path)):
                problems.add(f"{step.label}: output {name} {path}: directory {os.path.dirname(path)} does not exist")

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
