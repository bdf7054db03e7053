#!/usr/bin/env python3
"""Signing with the CA key on a PKCS#11 token (SoftHSM2) against the same kind of key in a file.

    python3 bench/pkcs11.py                          # EC P-256 and RSA 2048 CAs, 1 and 2 processes, both parts
    python3 bench/pkcs11.py --duration 3 --rounds 5  # steadier figures
    python3 bench/pkcs11.py --pyz dist/cfsslpy.pyz   # the built executable for the CAs and the servers
    python3 bench/pkcs11.py --only ec --part serve   # a subset

A throwaway SoftHSM2 token is made in a temporary directory (its own ``softhsm2.conf`` via SOFTHSM2_CONF,
``softhsm2-util --init-token --free``), and an EC P-256 and an RSA 2048 key pair are generated on it with
``cfsslpy.pkcs11.generate_key_pair``. Each token key gets a self-signed CA (``gencert -initca -ca-key URI``);
the file CAs of the same algorithms come from ``gencert -initca`` as in bench/serve.py, whose inputs (the same
32 ECDSA P-256 leaf CSRs) and HTTP client are reused. Two measurements, each a fixed ``--duration`` after
``--warmup`` untimed seconds, ``--rounds`` rounds alternating token and file (median round shown):

1. ``core``: ``LocalSigner(load_issuer(ca, key_spec))`` signing the pre-made CSRs in a loop, in 1 and in 2
   forked worker processes; each worker loads the issuer and logs in to the token itself. Always the source
   tree's cfsslpy (``--pyz`` does not apply). certs/s is the sum over workers; p50/p99 are per signature.
2. ``serve``: ``serve -workers 1`` and ``-workers 2`` with the token CA key and with the file key, driven by
   bench/serve.py's keep-alive client at ``--concurrency`` (client processes share the machine's cores).

Columns: certificates per second, p50 and p99 latency, token/file (the same algorithm, processes and part) and
2p/1p (the gain from a second process). The token and everything on it are removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import multiprocessing
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# This file is named pkcs11.py: with its directory on sys.path, `import pkcs11` (python-pkcs11, inside
# cfsslpy.pkcs11) would import this script again. Drop bench/ and load bench/serve.py by path instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(ROOT))


def _load_serve_helpers() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("bench_serve", BENCH / "serve.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_serve"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bench_serve = _load_serve_helpers()
Cell: Any = bench_serve.Cell  # requests (here: certificates) per second, p50, p99, errors, sample
SIGN = bench_serve.SIGN

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
LABEL = "cfsslpy-bench"
SO_PIN = "87654321"
PIN = "246810"
ALGOS = {"ec": ("ecdsa", 256), "rsa": ("rsa", 2048)}
FORK = multiprocessing.get_context("fork")


# ---------------------------------------------------------------------------------------------------------
# The token


def make_token(root: Path, util: str, module: str) -> dict[str, str]:
    """Init a token under ``root`` (SOFTHSM2_CONF must already point at ``root``/softhsm2.conf); key URIs by kind."""
    (root / "tokens").mkdir()
    init = subprocess.run(
        [util, "--init-token", "--free", "--label", LABEL, "--so-pin", SO_PIN, "--pin", PIN],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if init.returncode != 0:
        raise SystemExit(f"bench: softhsm2-util --init-token failed: {init.stdout}{init.stderr}")
    pin_file = root / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)
    uris = {kind: f"pkcs11:token={LABEL};object=bench-{kind}?module-path={module}&pin-source=file:{pin_file}" for kind in ALGOS}
    # Generated in a forked child, so that this process never initialises the module: every worker forked
    # later starts with a clean library and logs in on its own.
    child = FORK.Process(target=_generate, args=(uris,))
    child.start()
    child.join(300)
    if child.exitcode != 0:
        raise SystemExit(f"bench: key generation on the token failed (exit {child.exitcode})")
    return uris


def _generate(uris: dict[str, str]) -> None:
    from cfsslpy import pkcs11

    for kind, uri in uris.items():
        algo, size = ALGOS[kind]
        pkcs11.generate_key_pair(uri, algo, size)


# ---------------------------------------------------------------------------------------------------------
# 1. In-process signing


def _sign_worker(ca: str, key_spec: str, csrs: list[bytes], conn: Connection) -> None:
    from cfsslpy.config import Config
    from cfsslpy.signer import LocalSigner, SignRequest, load_issuer

    try:
        signer = LocalSigner(load_issuer(ca, key_spec), Config.default().signing)
        signer.sign(SignRequest(request=csrs[0]))  # the first signature logs in and finds the key
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        conn.send(f"{type(exc).__name__}: {exc}")
        return
    conn.send("ready")
    start, stop = conn.recv()
    latencies: list[float] = []
    errors: list[str] = []
    n = 0
    while True:
        t0 = time.monotonic()
        if t0 >= stop:
            break
        try:
            signer.sign(SignRequest(request=csrs[n % len(csrs)]))
            ok = True
        except Exception as exc:  # noqa: BLE001
            ok = False
            errors.append(f"{type(exc).__name__}: {exc}")
        n += 1
        t1 = time.monotonic()
        if start <= t0 and t1 <= stop and ok:
            latencies.append(t1 - t0)
    conn.send((latencies, errors))
    conn.close()


def measure_core(ca: Path, key_spec: str, csrs: list[bytes], processes: int, warmup: float, duration: float) -> Any:
    pipes, procs = [], []
    for i in range(processes):
        parent, child = FORK.Pipe()
        # each worker starts on another CSR, so two workers do not sign the same one at the same moment
        proc = FORK.Process(target=_sign_worker, args=(str(ca), key_spec, csrs[i:] + csrs[:i], child))
        proc.start()
        child.close()
        pipes.append(parent)
        procs.append(proc)
        # one at a time: SoftHSM's file store fails now and then (CKR_GENERAL_ERROR, or the token not found)
        # when two processes open it at the same moment (SoftHSMv2 issue 757), so each worker has logged in
        # before the next starts
        ready = parent.recv()
        if ready != "ready":
            for pipe, proc in zip(pipes, procs, strict=True):
                pipe.close()  # a waiting worker gets EOF and ends
                proc.join(30)
            raise SystemExit(f"bench: signing worker for {key_spec} failed: {ready}")
    try:
        start = time.monotonic() + warmup
        stop = start + duration
        for pipe in pipes:
            pipe.send((start, stop))
        latencies: list[float] = []
        errors: list[str] = []
        for pipe in pipes:
            lat, err = pipe.recv()
            latencies.extend(lat)
            errors.extend(err)
    finally:
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
    if not latencies:
        return Cell(0.0, 0.0, 0.0, len(errors), errors[0] if errors else "")
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return Cell(len(latencies) / duration, statistics.median(latencies), p99, len(errors), errors[0] if errors else "")


# ---------------------------------------------------------------------------------------------------------


def token_ca(ours: list[str], work: Path, kind: str, uri: str) -> Path:
    spec = work / f"token-{kind}-ca-csr.json"
    spec.write_text(json.dumps({"CN": f"bench token {kind} CA", "names": [{"O": "cfsslpy bench"}]}))
    result = subprocess.run([*ours, "gencert", "-initca", "-ca-key", uri, str(spec)], capture_output=True, text=True, cwd=work, check=False)
    if result.returncode != 0:
        raise SystemExit(f"bench: gencert -initca -ca-key {uri} failed: {result.stderr}")
    ca = work / f"token-{kind}-ca.pem"
    ca.write_text(json.loads(result.stdout)["cert"])
    return ca


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pyz", type=Path, help="run this cfsslpy executable (CAs, servers) instead of the source tree")
    parser.add_argument("--module", help="the SoftHSM2 PKCS#11 module (default: the usual Debian/Fedora paths)")
    parser.add_argument("--duration", type=float, default=1.0, help="timed seconds per cell (default 1)")
    parser.add_argument("--warmup", type=float, default=0.5, help="untimed seconds before each cell (default 0.5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds alternating token and file; the median is shown (default 3)")
    parser.add_argument("--concurrency", type=int, default=8, help="HTTP client concurrency for serve (default 8)")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2], help="worker processes (default 1 2)")
    parser.add_argument("--only", choices=sorted(ALGOS), help="one CA algorithm only")
    parser.add_argument("--part", choices=["core", "serve"], action="append", help="one part only (repeatable)")
    args = parser.parse_args()
    parts = args.part or ["core", "serve"]
    kinds = [args.only] if args.only else list(ALGOS)
    util = shutil.which("softhsm2-util")
    module = args.module or next((m for m in MODULE_CANDIDATES if os.path.exists(m)), None)
    if util is None or module is None:
        raise SystemExit("bench: SoftHSM2 is not installed (Debian: apt-get install softhsm2)")
    if importlib.util.find_spec("pkcs11") is None:
        raise SystemExit("bench: python-pkcs11 is not installed (pip install python-pkcs11)")
    ours = [sys.executable, str(args.pyz.resolve())] if args.pyz else [sys.executable, "-m", "cfsslpy"]
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(
        f"machine: {CORES} cores; python {sys.version.split()[0]}; cfsslpy from {args.pyz or 'the source tree'} "
        f"(core part: the source tree); module {module}"
    )
    print(
        f"cells: {args.warmup:g}s warm-up + {args.duration:g}s timed, median of {args.rounds} rounds; "
        f"serve client: concurrency {args.concurrency}, keep-alive; leaf CSRs ECDSA P-256"
    )
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cfsslpy-bench-pkcs11-") as tmp:
        work = Path(tmp)
        conf = work / "softhsm2.conf"
        conf.write_text(
            f"directories.tokendir = {work / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
        )
        os.environ["SOFTHSM2_CONF"] = str(conf)  # this process's children and every server see only this token
        uris = make_token(work, util, module)
        bodies = bench_serve.make_inputs(work, ours)  # ec-ca.pem/ec-ca-key.pem, rsa-ca.pem/rsa-ca-key.pem
        csrs = [json.loads(b)["certificate_request"].encode() for b in bodies]
        cas = {(kind, "file"): (work / f"{kind}-ca.pem", str(work / f"{kind}-ca-key.pem")) for kind in kinds}
        for kind in kinds:
            cas[(kind, "token")] = (token_ca(ours, work, kind, uris[kind]), uris[kind])
        print(f"setup (token, keys, CAs, CSRs): {time.monotonic() - t_start:.1f}s")
        print()

        results: dict[tuple[str, str, str, int], Any] = {}
        for part in parts:
            for kind in kinds:
                samples: dict[tuple[str, int], list[Any]] = {}
                with contextlib.ExitStack() as stack:
                    ports: dict[tuple[str, int], int] = {}
                    if part == "serve":
                        for key_kind in ("file", "token"):
                            ca, key_spec = cas[(kind, key_kind)]
                            for n in args.processes:
                                port = bench_serve.free_port()
                                ports[(key_kind, n)] = port
                                cmd = [*ours, "serve", "-workers", str(n), "-ca", str(ca), "-ca-key", key_spec]
                                stack.enter_context(bench_serve.running([*cmd, "-address", "127.0.0.1", "-port", str(port)], port, work))
                    for _ in range(args.rounds):
                        for n in args.processes:
                            for key_kind in ("file", "token"):
                                ca, key_spec = cas[(kind, key_kind)]
                                if part == "core":
                                    cell = measure_core(ca, key_spec, csrs, n, args.warmup, args.duration)
                                else:
                                    cell = bench_serve.measure(
                                        ports[(key_kind, n)], SIGN, bodies, args.concurrency, args.warmup, args.duration
                                    )
                                samples.setdefault((key_kind, n), []).append(cell)
                for (key_kind, n), cells in samples.items():
                    results[(part, kind, key_kind, n)] = bench_serve.median_cell(cells)

        header = f"{'part':<6} {'CA':<9} {'key':<6} {'procs':>5} {'certs/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'token/file':>10} {'2p/1p':>6}"
        print(header)
        print("-" * len(header))
        anomalies = []
        for part in parts:
            for kind in kinds:
                for key_kind in ("file", "token"):
                    for n in args.processes:
                        cell = results[(part, kind, key_kind, n)]
                        file_cell = results[(part, kind, "file", n)]
                        ratio = f"{cell.rps / file_cell.rps:.2f}x" if key_kind == "token" and file_cell.rps else ""
                        one = results.get((part, kind, key_kind, 1))
                        scale = f"{cell.rps / one.rps:.2f}x" if n != 1 and one and one.rps else ""
                        name = "EC P-256" if kind == "ec" else "RSA 2048"
                        print(
                            f"{part:<6} {name:<9} {key_kind:<6} {n:>5} {cell.rps:>9,.0f} {cell.p50 * 1e3:>8.2f} "
                            f"{cell.p99 * 1e3:>8.2f} {ratio:>10} {scale:>6}"
                        )
                        if cell.errors:
                            anomalies.append(f"{part} {kind} {key_kind} x{n}: {cell.errors} errors, e.g. {cell.sample!r}")
        print()
        print(f"total: {time.monotonic() - t_start:.0f}s")
        for line in anomalies:
            print(f"anomaly: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
