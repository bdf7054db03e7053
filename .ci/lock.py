#!/usr/bin/env python3
"""Re-resolve cfsslpy's locked dependency set (``requirements.lock``), or check it for drift.

    python3 .ci/lock.py            # re-resolve every pin to the newest releases and rewrite requirements.lock
    python3 .ci/lock.py --drift    # resolve the newest releases into a temporary lock, install it into a
                                   # throwaway venv and run the unit tests there; exit 1 if they fail
    python3 .ci/lock.py --check    # exit 1 unless requirements.lock is what the inputs below resolve to now

requirements.lock is one pip requirements file in hash-checking form: every distribution pinned with the
sha256 of every file PyPI has for it, resolved once for all of CPython 3.10-3.14 ("universal", with the
fewest versions per distribution, so the pyz carries one pure-Python copy for every interpreter). It has two
sections, marked by comment lines:

    # [runtime]   what build.py puts into dist/cfsslpy.pyz (pyproject's dependencies and the pkcs11 extra)
    # [tools]     what the tests and the build need on top (the test extra, pip, packaging, setuptools)

pip installs the whole file (`pip install --require-hashes -r requirements.lock`); build.py reads the
[runtime] section. The resolver is uv (a maintainer tool only: it is installed into a throwaway venv under
build/ and is neither a runtime nor a test dependency), because it is the one resolver that resolves for
every interpreter and platform at once instead of only for the one it runs on.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
UV = "uv==0.13.10"
PYTHONS = "3.10"  # the oldest supported; --universal covers every newer one
# What the tests and the build need besides pyproject's test extra: pip (build.py's tools venv bootstraps it
# from this pin when the host has none), packaging (build.py evaluates the lock's markers per target), and
# setuptools (the editable install of cfsslpy for the tests).
TOOLS = ["pip", "packaging", "setuptools>=77"]
HEADER = """\
# cfsslpy's locked dependencies: each distribution pinned, with the sha256 of every file of it on PyPI.
# Resolved for CPython 3.10-3.14 on every platform by `python3 .ci/lock.py` (do not edit by hand).
# [runtime] is what build.py puts into dist/cfsslpy.pyz; `python3 build.py --venv DIR` and .ci/run
# install the whole file: pip install --require-hashes -r requirements.lock
"""


def log(message: str) -> None:
    print(f"lock.py: {message}", file=sys.stderr, flush=True)


def uv(work: Path) -> Path:
    tools = ROOT / "build" / "lock-tools"
    exe = tools / "bin" / "uv"
    if not exe.exists() or UV.split("==")[1] not in subprocess.run([str(exe), "--version"], capture_output=True, text=True).stdout:
        log(f"installing {UV} into {tools.relative_to(ROOT)}")
        venv.EnvBuilder(with_pip=True, clear=True).create(tools)
        subprocess.run([str(tools / "bin" / "python"), "-m", "pip", "install", "-q", UV], check=True)
    return exe


def compile_(exe: Path, args: list[str], out: Path, work: Path) -> str:
    cmd = [
        str(exe),
        "pip",
        "compile",
        "--quiet",
        "--universal",
        "--fork-strategy",
        "fewest",
        "--python-version",
        PYTHONS,
        "--generate-hashes",
        "--no-header",
        "--annotation-style",
        "split",
        "--output-file",
        str(out),
        *args,
    ]
    subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, "UV_NO_CONFIG": "1"})
    # The annotations name the temporary inputs; say what they are instead, so that the lock is stable.
    text = out.read_text().replace(f"-c {work.relative_to(ROOT)}/runtime.txt", "[runtime]")
    return text.replace(f"-r {work.relative_to(ROOT)}/tools.in", "build tools (.ci/lock.py TOOLS)")


def entries(text: str) -> dict[str, str]:
    """Requirement blocks (``name==version ... --hash ...`` with their ``# via`` lines), keyed by name."""
    blocks: dict[str, str] = {}
    current: list[str] = []
    for line in text.splitlines():
        if re.match(r"^[A-Za-z0-9]", line):
            current = [line]
            name = re.split(r"[=;\s]", line, maxsplit=1)[0].lower()
            key = name
            n = 2
            while key in blocks:  # the same distribution pinned twice under different markers
                key, n = f"{name}#{n}", n + 1
            blocks[key] = ""
        if current:
            current.append(line) if current[0] != line else None
            blocks[key] = "\n".join(current)
    return blocks


def resolve(work: Path) -> str:
    exe = uv(work)
    runtime = compile_(exe, ["pyproject.toml", "--extra", "pkcs11"], work / "runtime.txt", work)
    (work / "tools.in").write_text("\n".join(TOOLS) + "\n")
    everything = compile_(
        exe,
        ["pyproject.toml", "--extra", "pkcs11", "--extra", "test", str(work / "tools.in"), "--constraint", str(work / "runtime.txt")],
        work / "all.txt",
        work,
    )
    ours, full = entries(runtime), entries(everything)
    pin = lambda block: re.split(r"[;\s]", block, maxsplit=1)[0]  # noqa: E731 - name==version
    for key, block in ours.items():
        if pin(full.get(key, "")) != pin(block):
            raise SystemExit(f"lock.py: {key} resolves differently with the tools than alone; refusing to write a split lock")
    # Each entry is written as the whole resolution has it: its markers are the union over the runtime and the
    # tools (typing-extensions: runtime needs it below 3.11 only, selenium everywhere), which is what pip must
    # see; build.py evaluates them too, so the pyz may carry a little more than strictly needed, never less.
    body = ["# [runtime]", *(full[k] for k in ours), "", "# [tools]", *(v for k, v in full.items() if k not in ours)]
    return HEADER + "\n".join(body) + "\n"


def drift(text: str, work: Path) -> int:
    (work / "requirements.lock").write_text(text)
    old = LOCK.read_text() if LOCK.exists() else ""
    pins = lambda t: sorted(line.split(" \\")[0] for line in t.splitlines() if re.match(r"^[A-Za-z0-9]", line))  # noqa: E731
    changed = [
        line
        for line in difflib.unified_diff(pins(old), pins(text), lineterm="", n=0)
        if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    log("newest releases against requirements.lock:" + ("".join(f"\n  {c}" for c in changed) if changed else " no change"))
    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = str(env_dir / "bin" / "python")
    pip = [python, "-m", "pip", "install", "-q", "--no-cache-dir", "--disable-pip-version-check"]
    subprocess.run([*pip, "--require-hashes", "-r", str(work / "requirements.lock")], check=True)
    subprocess.run([*pip, "--no-deps", "--no-build-isolation", "-e", str(ROOT)], check=True)
    log("unit tests (not integration) against the newest releases")
    result = subprocess.run([python, "-m", "pytest", "-q", "-x", "-m", "not integration", "-p", "no:cacheprovider"], cwd=ROOT)
    log("drift check " + ("passed" if result.returncode == 0 else f"FAILED (pytest exit {result.returncode})"))
    return 0 if result.returncode == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--drift", action="store_true", help="resolve the newest releases and run the unit tests against them")
    mode.add_argument("--check", action="store_true", help="fail unless requirements.lock is up to date")
    args = parser.parse_args()
    (ROOT / "build").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ROOT / "build", prefix="lock-") as tmp:
        work = Path(tmp)
        text = resolve(work)
        if args.drift:
            return drift(text, work)
        if args.check:
            same = LOCK.exists() and LOCK.read_text() == text
            log("requirements.lock is up to date" if same else "requirements.lock differs from a fresh resolution")
            return 0 if same else 1
        LOCK.write_text(text)
        log(f"wrote {LOCK.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
