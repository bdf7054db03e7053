"""The real cfssl (2016 build) against our CLI on the same bad inputs: same exit status and error code.

Every row of ``tests/cli/test_bad_input.py`` that claims cfssl behaves the same (no ``cfssl=`` note) is run
through ``/usr/bin/cfssl`` with the same files. JSON errors must carry the same code; plain-text errors
must be the same line. (JSON messages may differ where cfssl shows Go-internal text, e.g. asn1 errors.)
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.cli.errlines import error_line
from tests.cli.test_bad_input import CASES, FIRST_LINE, Case, build_materials, listing, stage
from tests.conftest import RunCli, need

pytestmark = [pytest.mark.integration, pytest.mark.cfssl]

SAME = [pytest.param(c, id=c.id) for c in CASES if c.cfssl is None and c.xfail is None]


@pytest.fixture(scope="module")
def materials(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return build_materials(tmp_path_factory.mktemp("materials"))


def the_error(case: Case, stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert lines
    return lines[0] if case.usage or case.id in FIRST_LINE else error_line(stderr)


def summary(case: Case, status: int, stdout: str, stderr: str) -> tuple[int, bool, object]:
    """(status, stdout empty, the error code for JSON errors or the plain line)."""
    line = the_error(case, stderr)
    if case.code is not None:
        return status, stdout == "", json.loads(line)["code"]
    return status, stdout == "", line


def test_most_rows_are_checked_against_cfssl() -> None:
    assert len(SAME) >= 60


@pytest.mark.parametrize("case", SAME)
def test_cfssl_gives_the_same_code(case: Case, run_cli: RunCli, materials: dict[str, bytes], tmp_path: Path) -> None:
    cfssl = need("cfssl")
    theirs_dir, ours_dir = tmp_path / "cfssl", tmp_path / "ours"
    stage(theirs_dir, materials, case)
    stage(ours_dir, materials, case)
    before = listing(theirs_dir)
    env = {k: v for k, v in os.environ.items() if k != "CFSSL_CA_PK_PASSWORD"} | case.env
    proc = subprocess.run([cfssl, *case.args], input=case.stdin, cwd=theirs_dir, env=env, capture_output=True, timeout=60)
    theirs_err = proc.stderr.decode("utf-8", "replace")
    assert "panic" not in theirs_err, theirs_err
    ours = run_cli(*case.args, stdin=case.stdin, env=case.env, cwd=ours_dir)
    assert summary(case, proc.returncode, proc.stdout.decode(), theirs_err) == summary(case, ours.status, ours.stdout, ours.stderr)
    assert listing(theirs_dir) == before


# -- happy paths: the same bytes (print-defaults) or the same output shape -------------------------------------


@pytest.mark.parametrize("args", [("print-defaults", "config"), ("print-defaults", "csr"), ("print-defaults", "list")])
def test_print_defaults_is_byte_identical(args: tuple[str, ...], run_cli: RunCli) -> None:
    proc = subprocess.run([need("cfssl"), *args], capture_output=True, timeout=60)
    ours = run_cli(*args)
    theirs = proc.stdout.decode()
    if args[-1] == "list":  # cfssl lists the templates in Go map order
        theirs, mine = sorted(theirs.splitlines()), sorted(ours.stdout.splitlines())
        assert (proc.returncode, theirs) == (ours.status, mine)
        return
    assert (proc.returncode, theirs) == (ours.status, ours.stdout)


def shape(stdout: str) -> tuple[list[str], bool]:
    """The keys in output order and whether a trailing newline follows."""
    return list(json.loads(stdout)), stdout.endswith("\n")


@pytest.mark.parametrize(
    "args",
    [
        ("sign", "-ca", "ca.pem", "-ca-key", "ca-key.pem", "leaf.csr"),
        ("gencert", "-ca", "ca.pem", "-ca-key", "ca-key.pem", "leaf.json"),
        ("gencert", "-initca", "ca-csr.json"),
        ("gencert", "-initca", "-ca-key", "ca-key.pem", "ca-csr.json"),
        ("gencert", "-renewca", "-ca", "ca.pem", "-ca-key", "ca-key.pem"),
        ("genkey", "leaf.json"),
        ("genkey", "-initca", "ca-csr.json"),
        ("selfsign", "leaf.example.com", "leaf.json"),
        ("info", "-config", "config.json", "-ca", "ca.pem", "-ca-key", "ca-key.pem", "-profile", "www"),
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_output_shape_matches(args: tuple[str, ...], run_cli: RunCli, materials: dict[str, bytes], tmp_path: Path) -> None:
    case = Case(
        "shape",
        args,
        files={
            "config.json": b'{"signing":{"default":{"expiry":"1h"},"profiles":{"www":{"expiry":"8760h","usages":["signing","server auth"]}}}}'
        },
    )
    stage(tmp_path / "cfssl", materials, case)
    stage(tmp_path / "ours", materials, case)
    proc = subprocess.run([need("cfssl"), *args], cwd=tmp_path / "cfssl", capture_output=True, timeout=60)
    ours = run_cli(*args, cwd=tmp_path / "ours")
    assert proc.returncode == ours.status == 0, (proc.stderr, ours.stderr)
    assert shape(proc.stdout.decode()) == shape(ours.stdout)
    if args[0] == "sign":
        assert json.loads(proc.stdout)["csr"] == json.loads(ours.stdout)["csr"] == materials["leaf.csr"].decode()
    if args[0] == "info":
        theirs, mine = json.loads(proc.stdout), json.loads(ours.stdout)
        assert theirs == mine
