#!/usr/bin/env python3
"""Wall-clock CLI benchmark: the built ``cfsslpy.pyz`` against cfssl 1.2.0 and cfssl 1.6.5, same inputs, side by side.

    python3 build.py --skip-smoke && python3 bench/cli.py   # every CPython 3.10-3.14 found; N=15, RSA initca N=31
    python3 bench/cli.py --python /usr/bin/python3.11 --imports   # one interpreter, plus where imports go

One table per interpreter (``--python``, repeatable; default: one CPython per minor version 3.10-3.14 found,
pyenv's before Debian's). In each, every operation runs the three tools alternately, the first run of each
discarded (warm: the pyz's libraries are already unpacked, the page cache is hot), and prints medians, the
ours/cfssl ratios and the targets. The pyz is run by an empty venv of the interpreter (no site-packages, no
.pth files of the developer's environment), the way ``./cfsslpy.pyz`` runs on a clean host; the interpreter's
own start-up is printed as the floor. The first run of a build (a brand-new empty ``SHIV_ROOT``: unpack, then
start) is the median of ``--n-cold`` such runs of ``version``. The pyz is copied once at the start, so a
rebuild of dist/ during the run does not mix two builds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CFSSL165 = ROOT.parent / "shared" / "peers" / "cfssl-1.6.5" / "cfssl"
MINORS = range(10, 15)  # CPython 3.10-3.14
MB = 1_000_000
SIZE_LIMIT = 40 * MB  # bytes
COLD_LIMIT = 1.5  # seconds


@dataclass(frozen=True)
class Case:
    name: str
    args: list[str]
    limit: float | None = None  # seconds: ours' median must be at most this
    factor: float | None = None  # ours' median must be at most factor x each peer's median
    rsa_keygen: bool = False

    @property
    def target(self) -> str:
        if self.limit is not None:
            return f"<= {self.limit * 1000:.0f} ms"
        return f"<= {self.factor}x cfssl" if self.factor is not None else ""

    def verdict(self, peers: dict[str, float], ours: float) -> str:
        """ok, MISS (naming the peers missed, for a ratio target), n/a (no peer to compare with) or empty (no target)."""
        if self.limit is not None:
            return "ok" if ours <= self.limit else "MISS"
        if self.factor is None:
            return ""
        if not peers:
            return "n/a"
        missed = [label for label, theirs in peers.items() if ours > self.factor * theirs]
        return f"MISS vs {', '.join(missed)}" if missed else "ok"


CASES = [
    Case("version", ["version"], limit=0.040),
    Case("gencert -initca ecdsa-256", ["gencert", "-initca", "ec-csr.json"]),
    Case("gencert -initca rsa-2048", ["gencert", "-initca", "rsa-csr.json"], factor=1.1, rsa_keygen=True),
    Case("sign, EC CA", ["sign", "-ca", "ec-ca.pem", "-ca-key", "ec-ca-key.pem", "leaf.csr"], limit=0.090),
    Case("sign, RSA CA", ["sign", "-ca", "rsa-ca.pem", "-ca-key", "rsa-ca-key.pem", "leaf.csr"], limit=0.090),
]
SIGN_EC = CASES[3]
COLD = "first run (cold), version"


@dataclass(frozen=True)
class Peer:
    label: str  # "1.2.0", "1.6.5": the column names
    path: str | None  # None when not found
    wanted: str  # what was asked for (the option's value)
    version: str = ""


def find_peer(label: str, wanted: str) -> Peer:
    path = shutil.which(wanted)
    if path is None:
        return Peer(label, None, wanted)
    out = subprocess.run([path, "version"], capture_output=True, text=True)
    return Peer(label, path, wanted, out.stdout.split("\n")[0] or f"exit {out.returncode}")


def default_pythons() -> list[str]:
    """One interpreter per minor version 3.10-3.14: pyenv's newest patch release, else Debian's /usr/bin/python3.X."""
    found = []
    for minor in MINORS:
        pyenv = [
            path
            for path in (Path.home() / ".pyenv" / "versions").glob(f"3.{minor}.*/bin/python3.{minor}")
            if re.fullmatch(rf"3\.{minor}\.\d+", path.parents[1].name)  # not 3.13.0t (free-threaded) and the like
        ]
        pyenv.sort(key=lambda path: int(path.parents[1].name.split(".")[2]), reverse=True)
        chosen = next((path for path in [*pyenv, Path(f"/usr/bin/python3.{minor}")] if os.access(path, os.X_OK)), None)
        if chosen is not None:
            found.append(str(chosen))
    return found


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


def alternating(cmds: list[list[str]], n: int, cwd: Path, env: dict[str, str]) -> list[float]:
    """Medians of each command, run in turn (a, b, c, a, b, c, ...) so drift in machine load hits all alike."""
    for cmd in cmds:
        timed(cmd, cwd, env)  # warm-up, discarded
    times: list[list[float]] = [[] for _ in cmds]
    for _ in range(n):
        for cmd, runs in zip(cmds, times, strict=True):
            runs.append(timed(cmd, cwd, env))
    return [statistics.median(runs) for runs in times]


def cold_start(ours: list[str], n: int, base: Path, cwd: Path, env: dict[str, str]) -> float:
    """Median of ``n`` runs of ``version``, each with a brand-new empty SHIV_ROOT (unpack, then start)."""
    times = []
    for i in range(n):
        root = base / f"cold-{i}"
        root.mkdir(mode=0o700)
        times.append(timed([*ours, "version"], cwd, {**env, "SHIV_ROOT": str(root)}))
        if not any(root.glob("cfsslpy-*/site-packages")):
            raise SystemExit(f"bench: the cold run did not unpack into its SHIV_ROOT {root}")
        shutil.rmtree(root)
    return statistics.median(times)


def write_inputs(work: Path, maker: list[str], env: dict[str, str]) -> None:
    """The same CSR JSON and CA files for every tool; the CAs and the CSR to sign are made by ``maker``."""
    names = [{"C": "US", "ST": "CA", "L": "San Francisco", "O": "cfsslpy bench"}]
    for algo, size, prefix in (("ecdsa", 256, "ec"), ("rsa", 2048, "rsa")):
        (work / f"{prefix}-csr.json").write_text(
            json.dumps({"CN": f"bench {prefix} CA", "names": names, "key": {"algo": algo, "size": size}})
        )
        out = json.loads(
            subprocess.run([*maker, "gencert", "-initca", f"{prefix}-csr.json"], cwd=work, env=env, capture_output=True, check=True).stdout
        )
        (work / f"{prefix}-ca.pem").write_text(out["cert"])
        (work / f"{prefix}-ca-key.pem").write_text(out["key"])
    leaf = {"CN": "www.example.net", "hosts": ["www.example.net", "example.net"], "names": names, "key": {"algo": "ecdsa", "size": 256}}
    (work / "leaf-csr.json").write_text(json.dumps(leaf))
    out = json.loads(subprocess.run([*maker, "genkey", "leaf-csr.json"], cwd=work, env=env, capture_output=True, check=True).stdout)
    (work / "leaf.csr").write_text(out["csr"])


def import_profile(cmd: list[str], cwd: Path, env: dict[str, str], top: int, top_self: int) -> list[str]:
    """The slowest imports of one warm run, from ``python -X importtime``: by cumulative time, then by own time."""
    result = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], cwd=cwd, env=env, capture_output=True, text=True)
    rows: list[tuple[int, int, str]] = []
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "self [us]" not in line:
            own_us, cumulative_us, raw = line[len("import time:") :].split("|")
            rows.append((int(cumulative_us), int(own_us), raw[1:]))  # raw: one space, then 2 per nesting level
    total = sum(cumulative for cumulative, _, name in rows if not name.startswith(" "))
    lines = [f"    {'cumul':>6} {'self':>6}  module  (ms; top-level imports total {total / 1000:.1f} ms, {len(rows)} modules)"]
    for cumulative, own, name in sorted(rows, reverse=True)[:top]:
        lines.append(f"    {cumulative / 1000:6.1f} {own / 1000:6.1f}  {name.strip()}")
    lines.append(f"    by own time (self), top {top_self}:")
    for cumulative, own, name in sorted(rows, key=lambda row: row[1], reverse=True)[:top_self]:
        lines.append(f"    {cumulative / 1000:6.1f} {own / 1000:6.1f}  {name.strip()}")
    return lines


def ms(seconds: float | None, width: int) -> str:
    return f"{seconds * 1000:{width}.1f}" if seconds is not None else f"{'-':>{width}}"


def ratio(ours: float, theirs: float | None, width: int) -> str:
    return f"{ours / theirs:{width - 1}.2f}x" if theirs else f"{'-':>{width}}"


def bench_interpreter(
    interpreter: str, args: argparse.Namespace, pyz: Path, peers: list[Peer], base: Path, work: Path
) -> dict[str, str] | None:
    """Print one interpreter's table; returns its summary cells (target -> "value verdict"), None if it cannot run."""
    base.mkdir()
    python = interpreter
    if not args.no_venv:
        made = subprocess.run([interpreter, "-m", "venv", "--without-pip", str(base / "venv")], capture_output=True, text=True)
        if made.returncode != 0:
            print(f"== {interpreter}: cannot make its venv, skipped ==\n{made.stderr.strip()}\n")
            return None
        python = str(base / "venv" / "bin" / "python")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": str(base), "SHIV_ROOT": str(base / "shiv")}
    ours = [python, str(pyz)]
    version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True).stdout.strip()
    timed([*ours, "version"], work, env)  # unpack the libraries once: everything in the table is warm
    site_packages = next((base / "shiv").glob("cfsslpy-*/site-packages"))
    print(
        f"== CPython {version}: {interpreter}{', run by an empty venv' if not args.no_venv else ''}; cache {site_packages.parent.name} =="
    )

    floor = floor_of([python, "-c", "pass"], args.n, work, env)
    floor_s = floor_of([python, "-S", "-c", "pass"], args.n, work, env)
    print(f"floor:   `python -c pass` {floor * 1000:.1f} ms, `python -S -c pass` {floor_s * 1000:.1f} ms (interpreter start-up alone)")
    # What any Python program that signs X.509 pays before doing anything: the interpreter plus importing
    # the bundled cryptography's x509 and key modules (from the pyz's own unpacked libraries).
    crypto_env = {**env, "PYTHONPATH": str(site_packages)}
    crypto_import = "import cryptography.x509, cryptography.hazmat.primitives.asymmetric.ec, cryptography.hazmat.primitives.serialization"
    crypto_floor = floor_of([python, "-c", crypto_import], args.n, work, crypto_env)
    print(f"         `python -c 'import cryptography.x509 ...'` {crypto_floor * 1000:.1f} ms (the floor of any Python X.509 signer)")
    print()

    present = [peer for peer in peers if peer.path is not None]
    header = "".join(f" {'cfssl ' + peer.label + ' ms':>15}" for peer in peers) + f" {'cfsslpy ms':>11}"
    header += "".join(f" {'vs ' + peer.label:>9}" for peer in peers)
    print(f"{'operation':<27}{header}   {'target':<14} verdict")
    summary: dict[str, str] = {}
    for case in CASES:
        if args.only and not any(word in case.name for word in args.only):
            continue
        n = args.n_rsa if case.rsa_keygen else args.n
        medians = alternating([*([peer.path, *case.args] for peer in present), [*ours, *case.args]], n, work, env)
        theirs = {peer.label: median for peer, median in zip(present, medians[:-1], strict=True)}
        ours_s = medians[-1]
        verdict = case.verdict(theirs, ours_s)
        row = "".join(f" {ms(theirs.get(peer.label), 15)}" for peer in peers) + f" {ms(ours_s, 11)}"
        row += "".join(f" {ratio(ours_s, theirs.get(peer.label), 9)}" for peer in peers)
        above = "" if case.name == "version" else f"  ({(ours_s - crypto_floor) * 1000:+.1f} ms above the X.509 floor)"
        print(f"{case.name:<27}{row}   {case.target:<14} {verdict}{above}")
        if case.limit is not None:
            summary[f"{case.name} {case.target}"] = f"{ours_s * 1000:.1f} ms {verdict}"
        elif case.factor is not None:
            worst = max((ours_s / t for t in theirs.values()), default=None)
            short = verdict.split(" vs ")[0]  # the peers missed are in the table
            summary[f"{case.name} {case.target}"] = f"{worst:.2f}x {short}" if worst is not None else short
    if args.n_cold > 0:
        cold = cold_start(ours, args.n_cold, base, work, env)
        verdict = "ok" if cold <= COLD_LIMIT else "MISS"
        row = "".join(f" {ms(None, 15)}" for _ in peers) + f" {ms(cold, 11)}" + "".join(f" {ms(None, 9)}" for _ in peers)
        print(f"{COLD:<27}{row}   {'<= ' + str(COLD_LIMIT) + ' s':<14} {verdict}  (median of {args.n_cold}, each a new empty SHIV_ROOT)")
        summary[f"{COLD} <= {COLD_LIMIT} s"] = f"{cold * 1000:.0f} ms {verdict}"

    if args.imports:
        for label, cmd in (("version", ["version"]), (SIGN_EC.name, SIGN_EC.args)):
            print(f"\nslowest imports of `{label}` (CPython {version}, warm):")
            print("\n".join(import_profile([*ours, *cmd], work, env, args.imports_top, 15)))
    print()
    return {"": f"CPython {version}", **summary}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--pyz", type=Path, default=ROOT / "dist" / "cfsslpy.pyz", help="the built executable (python3 build.py)")
    parser.add_argument("--cfssl", default=shutil.which("cfssl") or "/usr/bin/cfssl", help="cfssl 1.2.0 (Debian's golang-cfssl)")
    parser.add_argument("--cfssl165", default=str(CFSSL165), help="cfssl 1.6.5")
    parser.add_argument(
        "--python", action="append", help="interpreter whose empty venv runs the pyz (repeatable; default: every CPython 3.10-3.14 found)"
    )
    parser.add_argument(
        "--no-venv", action="store_true", help="run the pyz with --python itself (its site-packages and .pth files included)"
    )
    parser.add_argument("-n", type=int, default=15, help="timed runs per tool and operation (after one discarded warm-up)")
    parser.add_argument("--n-rsa", type=int, default=31, help="timed runs for RSA key generation (slow, high variance)")
    parser.add_argument("--n-cold", type=int, default=5, help="first runs (each with a new empty SHIV_ROOT) per interpreter; 0: none")
    parser.add_argument("--only", action="append", help="run only cases whose name contains this (repeatable)")
    parser.add_argument(
        "--imports", action="store_true", help="also show the slowest imports of `version` and `sign` (python -X importtime)"
    )
    parser.add_argument("--imports-top", type=int, default=25, help="rows of the cumulative import list")
    args = parser.parse_args()

    if not args.pyz.exists():
        raise SystemExit(f"bench: {args.pyz} not found; build it first: python3 build.py --skip-smoke")
    interpreters = args.python or default_pythons()
    if not interpreters:
        raise SystemExit("bench: no CPython 3.10-3.14 found (pyenv's or /usr/bin/python3.X); pass --python")
    peers = [find_peer("1.2.0", args.cfssl), find_peer("1.6.5", args.cfssl165)]
    with tempfile.TemporaryDirectory(prefix="cfsslpy-bench-") as tmp:
        base = Path(tmp)
        pyz = base / "cfsslpy.pyz"
        shutil.copyfile(args.pyz, pyz)  # one build for the whole run, whatever happens to dist/ meanwhile
        if not zipfile.is_zipfile(pyz):
            raise SystemExit(f"bench: {args.pyz} is not a zip (being rebuilt?); try again, or copy it and pass --pyz")
        size = pyz.stat().st_size
        size_verdict = "ok" if size <= SIZE_LIMIT else "MISS"
        digest = hashlib.sha256(pyz.read_bytes()).hexdigest()[:12]
        print(
            f"cfsslpy: {args.pyz} (sha256 {digest}…), {size / MB:.1f} MB ({size:,} bytes): target <= {SIZE_LIMIT // MB} MB {size_verdict}"
        )
        for peer in peers:
            found = f"{peer.path} ({peer.version})" if peer.path else f"not found ({peer.wanted}): its columns are '-'"
            print(f"cfssl {peer.label}: {found}")
        print(f"python:  {', '.join(interpreters)}")
        print(
            f"N={args.n} (RSA keygen N={args.n_rsa}, cold N={args.n_cold}), medians of warm runs, tools alternating; {os.cpu_count()} cores"
        )
        print()

        work = base / "work"
        work.mkdir()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": str(base), "SHIV_ROOT": str(base / "shiv")}
        maker = next(([peer.path] for peer in peers if peer.path), [sys.executable, str(pyz)])
        write_inputs(work, maker, env)

        results = []
        for i, interpreter in enumerate(interpreters):
            cells = bench_interpreter(interpreter, args, pyz, peers, base / f"py{i}", work)
            if cells is not None:
                results.append(cells)

    print(f"summary (cfsslpy; pyz size {size / MB:.1f} MB: <= {SIZE_LIMIT // MB} MB {size_verdict})")
    rows = list(dict.fromkeys(key for cells in results for key in cells))
    for key in rows:
        print(f"  {key:<45}" + "".join(f" {cells.get(key, '-'):>18}" for cells in results))
    missed = [] if size_verdict == "ok" else [f"pyz size <= {SIZE_LIMIT // MB} MB"]
    for cells in results:
        misses = [key for key, cell in cells.items() if "MISS" in cell]
        missed += [f"{cells['']}: {'; '.join(misses)}"] if misses else []
    absent = [f"cfssl {peer.label}" for peer in peers if peer.path is None]
    print("\ntargets missed:\n  " + "\n  ".join(missed) if missed else "\nall targets met")
    if absent:
        print(f"not measured: {', '.join(absent)} (not found)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
