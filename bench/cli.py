#!/usr/bin/env python3
"""Wall-clock CLI benchmark: the built ``cfsslpy.pyz`` against the real ``cfssl``, same inputs, side by side.

    python3 build.py --skip-smoke && python3 bench/cli.py            # defaults: N=15, RSA initca N=31
    python3 bench/cli.py -n 31 --imports                              # more runs, plus where imports go

Each operation runs both tools alternately, the first run of each discarded (warm: the pyz's libraries are
already unpacked, the page cache is hot), and prints medians, ours/cfssl ratios and the targets. The pyz is
run by an empty venv of ``--python`` (no site-packages, no .pth files of the developer's environment), the
way ``./cfsslpy.pyz`` runs on a clean host; the interpreter's own start-up is printed as the floor.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Case:
    name: str
    args: list[str]
    target: str  # shown beside the figures
    check: Callable[[float, float], bool] | None  # (cfssl median, ours median) -> met
    rsa_keygen: bool = False


CASES = [
    Case("version", ["version"], "<= 40 ms", lambda cfssl, ours: ours <= 0.040),
    Case("gencert -initca ecdsa-256", ["gencert", "-initca", "ec-csr.json"], "", None),
    Case(
        "gencert -initca rsa-2048", ["gencert", "-initca", "rsa-csr.json"], "<= 1.1x cfssl", lambda cfssl, ours: ours <= 1.1 * cfssl, True
    ),
    Case(
        "sign, EC CA", ["sign", "-ca", "ec-ca.pem", "-ca-key", "ec-ca-key.pem", "leaf.csr"], "<= 90 ms", lambda cfssl, ours: ours <= 0.090
    ),
    Case(
        "sign, RSA CA",
        ["sign", "-ca", "rsa-ca.pem", "-ca-key", "rsa-ca-key.pem", "leaf.csr"],
        "<= 90 ms",
        lambda cfssl, ours: ours <= 0.090,
    ),
]


def timed(cmd: list[str], cwd: Path, env: dict[str, str], need_output: bool = True) -> float:
    started = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0 or (need_output and not result.stdout):
        raise SystemExit(f"bench: {' '.join(cmd)} failed (exit {result.returncode}):\n{result.stderr.decode(errors='replace')}")
    return elapsed


def floor_of(cmd: list[str], n: int, cwd: Path, env: dict[str, str]) -> float:
    timed(cmd, cwd, env, need_output=False)  # warm-up, discarded
    return statistics.median(timed(cmd, cwd, env, need_output=False) for _ in range(n))


def side_by_side(a: list[str], b: list[str], n: int, cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Medians of a and b, run alternately so drift in machine load hits both alike."""
    timed(a, cwd, env)
    timed(b, cwd, env)
    ta, tb = [], []
    for _ in range(n):
        ta.append(timed(a, cwd, env))
        tb.append(timed(b, cwd, env))
    return statistics.median(ta), statistics.median(tb)


def write_inputs(work: Path, cfssl: str, env: dict[str, str]) -> None:
    """The same CSR JSON and CA files for both tools; the CAs and the CSR to sign are made by cfssl."""
    names = [{"C": "US", "ST": "CA", "L": "San Francisco", "O": "cfsslpy bench"}]
    for algo, size, prefix in (("ecdsa", 256, "ec"), ("rsa", 2048, "rsa")):
        (work / f"{prefix}-csr.json").write_text(
            json.dumps({"CN": f"bench {prefix} CA", "names": names, "key": {"algo": algo, "size": size}})
        )
        out = json.loads(
            subprocess.run([cfssl, "gencert", "-initca", f"{prefix}-csr.json"], cwd=work, env=env, capture_output=True, check=True).stdout
        )
        (work / f"{prefix}-ca.pem").write_text(out["cert"])
        (work / f"{prefix}-ca-key.pem").write_text(out["key"])
    leaf = {"CN": "www.example.net", "hosts": ["www.example.net", "example.net"], "names": names, "key": {"algo": "ecdsa", "size": 256}}
    (work / "leaf-csr.json").write_text(json.dumps(leaf))
    out = json.loads(subprocess.run([cfssl, "genkey", "leaf-csr.json"], cwd=work, env=env, capture_output=True, check=True).stdout)
    (work / "leaf.csr").write_text(out["csr"])


def import_profile(cmd: list[str], cwd: Path, env: dict[str, str], top: int) -> list[str]:
    """The slowest imports (cumulative, ms) of one warm run, from ``python -X importtime``."""
    result = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], cwd=cwd, env=env, capture_output=True, text=True)
    rows: list[tuple[int, int, str]] = []
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "self [us]" not in line:
            own_us, cumulative_us, raw = line[len("import time:") :].split("|")
            rows.append((int(cumulative_us), int(own_us), raw[1:]))  # raw: one space, then 2 per nesting level
    total = sum(cumulative for cumulative, _, name in rows if not name.startswith(" "))
    lines = [f"    {'cumul':>6} {'self':>6}  module  (top-level imports total {total / 1000:.1f} ms)"]
    for cumulative, own, name in sorted(rows, reverse=True)[:top]:
        lines.append(f"    {cumulative / 1000:6.1f} {own / 1000:6.1f}  {name.strip()}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--pyz", type=Path, default=ROOT / "dist" / "cfsslpy.pyz", help="the built executable (python3 build.py)")
    parser.add_argument("--cfssl", default=shutil.which("cfssl") or "/usr/bin/cfssl", help="the real cfssl")
    parser.add_argument("--python", default=sys.executable, help="interpreter whose empty venv runs the pyz")
    parser.add_argument(
        "--no-venv", action="store_true", help="run the pyz with --python itself (its site-packages and .pth files included)"
    )
    parser.add_argument("-n", type=int, default=15, help="timed runs per tool and operation (after one discarded warm-up)")
    parser.add_argument("--n-rsa", type=int, default=31, help="timed runs for RSA key generation (slow, high variance)")
    parser.add_argument("--only", action="append", help="run only cases whose name contains this (repeatable)")
    parser.add_argument(
        "--imports", action="store_true", help="also show the slowest imports of `version` and `sign` (python -X importtime)"
    )
    args = parser.parse_args()

    if not args.pyz.exists():
        raise SystemExit(f"bench: {args.pyz} not found; build it first: python3 build.py --skip-smoke")
    if not shutil.which(args.cfssl):
        raise SystemExit(f"bench: cfssl not found ({args.cfssl}); apt-get install golang-cfssl")
    with tempfile.TemporaryDirectory(prefix="cfsslpy-bench-") as tmp:
        base = Path(tmp)
        work = base / "work"
        work.mkdir()
        python = args.python
        if not args.no_venv:
            subprocess.run([args.python, "-m", "venv", "--without-pip", str(base / "venv")], check=True)
            python = str(base / "venv" / "bin" / "python")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": str(base), "SHIV_ROOT": str(base / "shiv")}
        ours = [python, str(args.pyz.resolve())]
        write_inputs(work, args.cfssl, env)
        timed([*ours, "version"], work, env)  # unpack the libraries once: everything below is warm

        version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True).stdout.strip()
        cfssl_version = subprocess.run([args.cfssl, "version"], capture_output=True, text=True).stdout.split("\n")[0]
        digest = hashlib.sha256(args.pyz.read_bytes()).hexdigest()[:12]
        print(
            f"cfsslpy: {args.pyz} (sha256 {digest}…) run by {'an empty venv of ' if not args.no_venv else ''}{args.python} (CPython {version})"
        )
        print(f"cfssl:   {args.cfssl} ({cfssl_version}); N={args.n} (RSA keygen N={args.n_rsa}), medians of warm runs, tools alternating")
        floor = floor_of([python, "-c", "pass"], args.n, work, env)
        floor_s = floor_of([python, "-S", "-c", "pass"], args.n, work, env)
        print(f"floor:   `python -c pass` {floor * 1000:.1f} ms, `python -S -c pass` {floor_s * 1000:.1f} ms (interpreter start-up alone)")
        # What any Python program that signs X.509 pays before doing anything: the interpreter plus importing
        # the bundled cryptography's x509 and key modules (from the pyz's own unpacked libraries).
        site_packages = next((base / "shiv").glob("*/site-packages"))
        crypto_env = {**env, "PYTHONPATH": str(site_packages)}
        crypto_import = "import cryptography.x509, cryptography.hazmat.primitives.asymmetric.ec, cryptography.hazmat.primitives.serialization"
        crypto_floor = floor_of([python, "-c", crypto_import], args.n, work, crypto_env)
        print(f"         `python -c 'import cryptography.x509 ...'` {crypto_floor * 1000:.1f} ms (the floor of any Python X.509 signer)")
        print()
        print(f"{'operation':<27} {'cfssl ms':>9} {'cfsslpy ms':>11} {'ratio':>7}   {'target':<14} {'':<4}")
        missed = []
        for case in CASES:
            if args.only and not any(word in case.name for word in args.only):
                continue
            n = args.n_rsa if case.rsa_keygen else args.n
            theirs_s, ours_s = side_by_side([args.cfssl, *case.args], [*ours, *case.args], n, work, env)
            verdict = ""
            if case.check is not None:
                verdict = "ok" if case.check(theirs_s, ours_s) else "MISS"
                if verdict == "MISS":
                    missed.append(case.name)
            above = "" if case.name == "version" else f"  ({(ours_s - crypto_floor) * 1000:+.1f} ms above the X.509 floor)"
            print(f"{case.name:<27} {theirs_s * 1000:9.1f} {ours_s * 1000:11.1f} {ours_s / theirs_s:6.2f}x   {case.target:<14} {verdict}{above}")
        if args.imports:
            for label, cmd in (("version", ["version"]), ("sign, EC CA", CASES[3].args)):
                print(f"\nslowest imports of `{label}`:")
                print("\n".join(import_profile([*ours, *cmd], work, env, 25)))
    print(f"\ntargets missed: {', '.join(missed)}" if missed else "\nall targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
