#!/usr/bin/env python3
"""Two builds of cfsslpy side by side: wall-clock start-up and one-shot commands, runs alternating.

    python3 bench/builds.py OLD.pyz NEW.pyz            # 21 runs per command and build
    python3 bench/builds.py OLD.pyz NEW.pyz -n 41 --python /usr/bin/python3.11

For a renovation that must not make anything slower: both executables run the same commands in the same
temporary directory, one after the other, for every run, so drift in the machine's load hits both alike;
the first run of each (unpacking, cold caches) is discarded. Prints each command's median per build and
new/old. The inputs (an EC P-256 CA, a leaf CSR) are made by NEW once, before timing. bench/cli.py compares
a build with cfssl instead.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    "version": ["version"],
    "gencert -initca ecdsa-256": ["gencert", "-initca", "ec-csr.json"],
    "sign, EC CA": ["sign", "-ca", "ec-ca.pem", "-ca-key", "ec-ca-key.pem", "leaf.csr"],
    "certinfo -cert": ["certinfo", "-cert", "ec-ca.pem"],
    "json-split -h": ["json-split", "-h"],
}


def run(python: str, pyz: str, args: list[str], work: Path) -> tuple[float, bytes]:
    started = time.perf_counter()
    proc = subprocess.run([python, pyz, *args], cwd=work, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0 and args[-1] != "-h":
        raise SystemExit(f"{pyz} {' '.join(args)}: exit {proc.returncode}: {proc.stderr.decode(errors='replace')[-500:]}")
    return elapsed, proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", help="the earlier build (a cfsslpy.pyz)")
    parser.add_argument("new", help="the later build")
    parser.add_argument("-n", type=int, default=21, help="timed runs per command and build (default %(default)s)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter that runs both (default: this one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cfsslpy-bench-builds-") as tmp:
        work = Path(tmp)
        (work / "ec-csr.json").write_text(json.dumps({"CN": "bench CA", "key": {"algo": "ecdsa", "size": 256}}))
        leaf = {"CN": "leaf.example.com", "hosts": ["leaf.example.com"], "key": {"algo": "ecdsa", "size": 256}}
        (work / "leaf.json").write_text(json.dumps(leaf))
        ca = json.loads(run(args.python, args.new, ["gencert", "-initca", "ec-csr.json"], work)[1])
        (work / "ec-ca.pem").write_text(ca["cert"])
        (work / "ec-ca-key.pem").write_text(ca["key"])
        (work / "leaf.csr").write_text(json.loads(run(args.python, args.new, ["genkey", "leaf.json"], work)[1])["csr"])
        print(f"old: {args.old}\nnew: {args.new}\nrun by {args.python}, {args.n} timed runs each, alternating\n")
        print(f"{'command':28s} {'old ms':>8s} {'new ms':>8s} {'new/old':>8s}")
        for name, words in CASES.items():
            run(args.python, args.old, words, work)
            run(args.python, args.new, words, work)
            old, new = [], []
            for _ in range(args.n):
                old.append(run(args.python, args.old, words, work)[0])
                new.append(run(args.python, args.new, words, work)[0])
            a, b = statistics.median(old) * 1e3, statistics.median(new) * 1e3
            print(f"{name:28s} {a:8.1f} {b:8.1f} {b / a:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
