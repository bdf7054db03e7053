"""``ceremony``: run a scripted offline CA ceremony from a plan, or verify a ceremony's transcript."""

from __future__ import annotations

import os
import sys
from typing import Any

from cfsslpy import ceremony as core
from cfsslpy.ceremony import Plan, Step, default_transcript
from cfsslpy.ceremony.steps import PlanProblems
from cfsslpy.cli.command import Command, Options
from cfsslpy.cli.common import log, no_more_args, pop_arg, print_json
from cfsslpy.cli.context import IO
from cfsslpy.cli.jsonhints import json_location
from cfsslpy.cli.token import interleaved
from cfsslpy.errors import Category, CfsslError, Reason, UsageError


class CeremonyOptions(Options):
    dry_run: bool
    transcript: str
    yes: bool
    write: str


def run(opts: CeremonyOptions, args: list[str], io: IO) -> int:
    # bind and validate: PLAN or "verify TRANSCRIPT", flags before or after it; nothing read yet
    opts, args = interleaved(opts, args)
    first, args = pop_arg(args)
    if first == "example":
        no_more_args(args)
        return _example(opts, io)
    if "write" in opts.given:
        raise UsageError("-write is for ceremony example")
    if first == "verify":
        transcript, args = pop_arg(args)
        no_more_args(args)
        for flag in ("dry-run", "yes", "transcript"):
            if flag in opts.given:
                raise UsageError(f"-{flag} has no meaning with ceremony verify")
        report = core.verify(transcript)
        print_json(io, report.to_json())
        if not report.ok:
            raise CfsslError(Category.CERTIFICATE, Reason.VERIFY_FAILED, f"ceremony transcript verification failed: {report.problems[0]}")
        return 0
    no_more_args(args)
    if opts.dry_run and opts.yes:
        raise UsageError("-dry-run and -yes cannot be used together")
    interactive = _stdin_is_terminal(io)
    if not opts.dry_run and not opts.yes and not interactive:
        raise UsageError("ceremony: standard input is not a terminal, so no step can be confirmed: pass -yes to run every step")
    transcript = opts.transcript or default_transcript(first)
    try:
        with json_location(first):
            plan = Plan.load(first)
        if opts.dry_run:
            plan.check(transcript)
            print_json(io, plan.describe(transcript))
            return 0
        confirm = None if opts.yes else (lambda step, view: _confirm(io, step, view))
        result = core.run(plan, transcript, confirm=confirm, environ=io.environ, progress=lambda text: log.info("%s", text))
    except PlanProblems as exc:
        if len(exc.problems) > 1:  # every one of them, then the error line
            io.err(f"{len(exc.problems)} problems in {first}:\n" + "".join(f"  - {problem}\n" for problem in exc.problems))
        raise
    print_json(io, result.to_json())
    return 0


def _example(opts: CeremonyOptions, io: IO) -> int:
    """The example plan on stdout, or with -write DIR the plan and its input files in DIR."""
    from cfsslpy.resources import read_asset

    plan = read_asset("examples", "ceremony-plan.json")
    if not opts.write:
        io.out(plan.decode("utf-8"))
        return 0
    from cfsslpy.ceremony.example import PLAN, write_example

    for path in write_example(opts.write, plan):
        log.info("wrote %s", path)
    log.info("next: cfsslpy ceremony -dry-run %s", os.path.join(opts.write, PLAN))
    return 0


def _stdin_is_terminal(io: IO) -> bool:
    stream = io.stdin.stream if io.stdin.stream is not None else sys.stdin
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _readline(io: IO) -> str:
    stream: Any = io.stdin.stream if io.stdin.stream is not None else sys.stdin
    line = stream.readline()
    return line.decode("utf-8", "replace") if isinstance(line, bytes) else str(line)


def describe_step(view: dict[str, Any]) -> str:
    """A step as the ceremony officer reads it before saying yes."""
    title = f"step {view['step']}: {view['action']}" + (f" ({view['name']})" if view.get("name") else "")
    lines = [title]
    if view.get("comment"):
        lines.append(f"  {view['comment']}")
    for name, value in view["parameters"].items():
        lines.append(f"  {name}: {value}")
    for item in view["inputs"]:
        if "from_step" in item:
            state = f"from step {item['from_step']}"
        else:
            state = f"sha256 {item['sha256']}" if "sha256" in item else "MISSING"
        lines.append(f"  in  {item['field']}: {item['path']} ({state})")
    for item in view["outputs"]:
        lines.append(f"  out {item['field']}: {item['path']}")
    return "\n".join(lines) + "\n"


def _confirm(io: IO, step: Step, view: dict[str, Any]) -> bool:
    io.err(describe_step(view) + f"Run {step.label}? [y/N] ")
    return _readline(io).strip().lower() in ("y", "yes")  # end of input is a no


COMMAND = Command(
    name="ceremony",
    summary="run a scripted offline CA ceremony from a plan, or verify its transcript",
    usage=(
        "cfsslpy ceremony PLAN.json [-dry-run] [-transcript FILE] [-yes]\n"
        "       cfsslpy ceremony verify TRANSCRIPT\n"
        "       cfsslpy ceremony example [-write DIR]"
    ),
    options=CeremonyOptions,
    example="cfsslpy ceremony -dry-run root-ceremony.json && cfsslpy ceremony root-ceremony.json",
    run=run,
    flags_anywhere=True,
    description="Run the steps of PLAN.json in order (generate-key, generate-csr, self-sign, sign, ocsp-responder,\n"
    "crl; keys are files or pkcs11: URIs; paths are relative to the plan). The whole plan is checked first:\n"
    "no output may exist already. Each step is shown and confirmed on the terminal (-yes: no questions; without\n"
    "a terminal -yes is required). Every step is recorded in a hash-chained transcript (default\n"
    "PLAN.transcript.json beside the plan), written after each step; the final hash is printed: write it on\n"
    "the paper record. -dry-run prints the plan with the SHA-256 of every existing input and changes nothing.\n"
    "'ceremony verify TRANSCRIPT' checks the chain and re-hashes every file still present (exit 1 on a\n"
    "problem). 'ceremony example' prints an example plan (root key on a token, intermediate, OCSP, CRL).",
)
