"""The built executable for the integration tests: one build per test session, and the interpreters to run it.

``built_pyz`` (session fixture) runs ``build.py --skip-smoke --out`` once; import it into a test module
(``from integration.pyz import built_pyz``). :func:`interpreters` finds every CPython of this machine by minor
version: pyenv's, Debian's ``/usr/bin/python3.X`` and whatever ``python3.X`` is on PATH.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 900
SUPPORTED = ("3.10", "3.11", "3.12", "3.13", "3.14")
REQUIRED = ("3.10", "3.11", "3.12", "3.13")  # what CFSSLPY_REQUIRE_INTEGRATION=1 insists on: this machine's image has them
MACHINE = os.uname().machine


def build(out: Path, epoch: str | None = None) -> Path:
    env = dict(os.environ)
    if epoch is not None:
        env["SOURCE_DATE_EPOCH"] = epoch
    result = subprocess.run(
        [sys.executable, str(ROOT / "build.py"), "--skip-smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=BUILD_TIMEOUT,
    )
    if result.returncode != 0:
        pytest.fail(f"build.py failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    return out


@pytest.fixture(scope="session")
def built_pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("build") / "cfsslpy.pyz")


def manifest(pyz: Path) -> dict[str, Any]:
    with zipfile.ZipFile(pyz) as archive:
        document: dict[str, Any] = json.loads(archive.read("cfsslpy-manifest.json"))
    return document


def interpreters(version: str) -> list[str]:
    """Every distinct CPython ``version`` (e.g. "3.12") on this machine, by real path."""
    found: dict[str, str] = {}
    home = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates = sorted(glob.glob(f"{home}/versions/{version}.*/bin/python{version}"))
    candidates += [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    which = shutil.which(f"python{version}")
    if which and "/shims/" not in which:
        candidates.append(which)
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            found.setdefault(os.path.realpath(candidate), candidate)
    return sorted(found.values())


@dataclass
class Run:
    status: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.stdout)
        return data


def run_pyz(python: str, pyz: Path, *args: str, env: dict[str, str], stdin: str = "", cwd: Path | None = None, timeout: float = 120) -> Run:
    """Run the pyz by ``python`` in an environment reduced to PATH, LANG and ``env``; never a traceback."""
    full_env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **env}
    result = subprocess.run([python, str(pyz), *args], input=stdin, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout)
    assert "Traceback" not in result.stderr, result.stderr
    return Run(result.returncode, result.stdout, result.stderr)
