"""Running a checked ceremony plan: each step's action, its outputs written all or none, the transcript entry."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cfsslpy import __version__
from cfsslpy.ceremony.actions import RUNNERS, StepIO
from cfsslpy.ceremony.plan import Plan, step_view
from cfsslpy.ceremony.steps import Step, plan_error
from cfsslpy.ceremony.transcript import FORMAT, Transcript, utc_text
from cfsslpy.errors import CfsslError, Error, PlainError
from cfsslpy.inputs import write_atomic, write_secret


def write_outputs(step: Any, outputs: list[tuple[str, str, bytes, int]]) -> None:
    """A step's outputs, all or none: every path is checked first (none may have appeared since the plan was
    checked), then each is written atomically (keys 0600); if one write fails, the ones written are removed,
    so no output exists that the transcript does not record."""
    for _, path, _data, _mode in outputs:
        if os.path.lexists(path):
            raise plan_error(f"{step.label}: output {path} appeared during the ceremony (refusing to overwrite)")
    written: list[str] = []
    try:
        for _, path, data, mode in outputs:
            if mode == 0o600:
                write_secret(path, data)
            else:
                write_atomic(path, data, mode)
            written.append(path)
    except (OSError, Error) as exc:
        for path in written:
            with contextlib.suppress(OSError):
                os.unlink(path)
        message = exc.message if isinstance(exc, Error) else str(exc)
        raise PlainError(f"{step.label}: writing the outputs failed ({message}); none of them was kept") from None


@dataclass
class RunResult:
    transcript: str
    steps: int
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {"transcript": self.transcript, "steps": self.steps, "hash": self.hash}


Confirm = Callable[[Step, dict[str, Any]], bool]


def run(
    plan: Plan,
    transcript_path: str,
    *,
    confirm: Confirm | None = None,
    environ: Mapping[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    """Check the plan, then run its steps in order, recording each in the transcript.

    ``confirm(step, view)`` is asked before each step (None: no questions); a ``False`` answer stops the
    ceremony after the steps done (PlainError). A failing step stops it too: its outputs are not written, and
    the transcript records the steps before it.
    """
    plan.check(transcript_path)
    transcript = Transcript(transcript_path)
    transcript.append(
        {
            "type": "header",
            "format": FORMAT,
            "tool": f"cfsslpy {__version__}",
            "plan": {"path": transcript.rel(plan.path), "sha256": plan.sha256},
            "description": plan.description,
            "steps": len(plan.steps),
            "started": utc_text(dt.datetime.now(dt.timezone.utc)),
            "host": socket.gethostname(),
        }
    )
    produced: dict[str, int] = {}
    for step in plan.steps:
        if confirm is not None and not confirm(step, step_view(step, produced)):
            raise PlainError(f"{step.label} declined: ceremony stopped after {step.index - 1} step(s); transcript {transcript.path}")
        sio = StepIO(step)
        try:
            RUNNERS[step.action](sio, environ)
        except Error as exc:
            message = exc.message if exc.message.startswith(step.label) else f"{step.label}: {exc.message}"
            if isinstance(exc, CfsslError):
                raise CfsslError(exc.category, exc.reason, message) from None
            raise PlainError(message) from None
        except (OSError, ValueError) as exc:  # a file or a library refusing: still a labelled cfssl-style error
            raise PlainError(f"{step.label}: {exc}") from None
        write_outputs(step, sio.outputs)
        transcript.append(
            {
                "type": "step",
                "step": step.index,
                "action": step.action,
                "name": step.name,
                "parameters": step.parameters(),
                "inputs": [{"field": n, "path": transcript.rel(p), "sha256": h} for n, p, h in sio.inputs],
                "outputs": [{"field": n, "path": transcript.rel(p), "sha256": hashlib.sha256(d).hexdigest()} for n, p, d, _ in sio.outputs],
                "time": utc_text(dt.datetime.now(dt.timezone.utc)),
            }
        )
        for path in step.outputs.values():
            produced[path] = step.index
        if progress is not None:
            progress(f"{step.label}: done ({', '.join(transcript.rel(p) for _, p, _, _ in sio.outputs)})")
    return RunResult(transcript.path, len(plan.steps), transcript.entries[-1]["hash"])
