"""The command line explains itself: the top-level help, ``help CMD``, and a snapshot of every ``-h``.

The snapshots live in tests/cli/snapshots/ (one ``NAME.txt`` per command, ``cfsslpy.txt`` for the top level).
A change to any help text fails here until the snapshots are regenerated, on purpose: run
``CFSSLPY_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/cli/test_help.py`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cfsslpy.cli.main import COMMANDS, ExitStatus, load_command
from tests.conftest import RunCli

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("CFSSLPY_UPDATE_SNAPSHOTS") == "1"
SHIPPED = [name for name in COMMANDS if load_command(name) is not None]


@pytest.fixture(autouse=True)
def fixed_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")  # argparse wraps -h to the terminal's width


def check_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no snapshot {path.name}: run with CFSSLPY_UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(encoding="utf-8"), f"{name}: help changed; CFSSLPY_UPDATE_SNAPSHOTS=1 regenerates the snapshot"


def test_top_level_help_snapshot(run_cli: RunCli) -> None:
    result = run_cli("-h")
    assert (result.status, result.stdout) == (ExitStatus.SUCCESS, "")
    check_snapshot("cfsslpy", result.stderr)


@pytest.mark.parametrize("name", SHIPPED)
def test_command_help_snapshot(run_cli: RunCli, name: str) -> None:
    result = run_cli(name, "-h")
    assert (result.status, result.stdout) == (ExitStatus.SUCCESS, ""), result.stderr
    check_snapshot(name, result.stderr)


def test_every_snapshot_belongs_to_a_command() -> None:
    assert {path.stem for path in SNAPSHOTS.glob("*.txt")} == {"cfsslpy", *SHIPPED}


@pytest.mark.parametrize("name", SHIPPED)
def test_help_command_equals_dash_h(run_cli: RunCli, name: str) -> None:
    dash_h = run_cli(name, "-h")
    help_cmd = run_cli("help", name)
    assert (help_cmd.status, help_cmd.stdout, help_cmd.stderr) == (dash_h.status, dash_h.stdout, dash_h.stderr)


def test_the_top_level_help_is_one_line_per_command(run_cli: RunCli) -> None:
    lines = run_cli("help").stderr.splitlines()
    assert lines == run_cli().stderr.splitlines()[1:]  # "No command is given." then the same text
    start, end = lines.index("Available commands:") + 1, lines.index("Top-level flags:")
    listed = {line.split()[0]: line.split(None, 1)[1] for line in lines[start:end]}
    assert listed == {name: command.summary for name in SHIPPED if (command := load_command(name)) is not None}
    # the top level defines no flag (cfssl's neither): only -h is listed there, no flag of any command
    flags = lines[end + 1 :]
    assert flags[0].split() == ["-h,", "-help", "print", "this", "list"]
    assert not any(line.lstrip().startswith(("-ca", "-csr", "-config", "-responder")) for line in flags)


@pytest.mark.parametrize("args", [("help", "-h"), ("help", "--help")])
def test_help_of_help_is_the_top_level_help(run_cli: RunCli, args: tuple[str, ...]) -> None:
    result = run_cli(*args)
    assert (result.status, result.stderr) == (ExitStatus.SUCCESS, run_cli("-h").stderr)


def test_help_of_an_unknown_command(run_cli: RunCli) -> None:
    result = run_cli("help", "bogus")
    assert result.status == ExitStatus.ERROR
    assert result.stderr.splitlines()[:2] == ["Command bogus is not defined.", "Usage:"]
