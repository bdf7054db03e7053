#!/usr/bin/env python3
"""HTTP signing throughput: ``cfsslpy serve`` (1 worker and one per core) against ``cfssl serve``.

    python3 bench/serve.py                        # EC and RSA CA, concurrency 8 and 64, 5 s per cell
    python3 bench/serve.py --duration 10 --only rsa
    python3 bench/serve.py --pyz dist/cfsslpy.pyz # the built executable instead of the source tree

Same machine, same CA files, same CSRs (ECDSA P-256 leaves), same client for every server: POST
``/api/v1/cfssl/sign`` over keep-alive HTTP/1.1 connections, one per client thread, spread over one
client process per core (so the client is not limited by one GIL). Each cell runs ``--warmup`` seconds
untimed, then ``--duration`` seconds timed; it prints requests per second, p50 and p99 latency, and the
ratio to cfssl. The client's own ceiling is measured first against cfssl's 404 path (Go answers it almost
for free), so a server figure near that ceiling means the client, not the server, was the limit. Client and
servers share the CPUs: on a small machine that ceiling matters.

The three servers of a CA type listen at the same time and the client takes turns among them for
``--rounds`` rounds (median shown), so a change in machine load hits all of them alike.

Goals (issue: serve): at least cfssl's throughput with an RSA CA, and at least 0.6x with an EC CA, using all
cores.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[1]
SIGN = "/api/v1/cfssl/sign"
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True)
class Cell:
    rps: float
    p50: float  # seconds
    p99: float
    errors: int
    sample: str = ""


# ---------------------------------------------------------------------------------------------------------
# Client


Accept = Callable[[int, bytes], bool]  # (HTTP status, body) -> the request succeeded


def _client_process(
    port: int,
    path: str,
    bodies: list[bytes],
    threads: int,
    start: float,
    stop: float,
    out: Connection,
    headers: dict[str, str] | None = None,
    accept: Accept | None = None,
) -> None:
    """``threads`` keep-alive clients; latencies of the requests that finished between ``start`` and ``stop``.

    By default a POST of JSON succeeds on 200 and a GET (no bodies) on 200 or 404; ``accept`` overrides that
    (bench/ocsp.py: a 200 must also carry a successful OCSP response)."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        bad: list[str] = []
        n = index
        method = "POST" if bodies else "GET"
        sent = headers if headers is not None else ({"Content-Type": "application/json"} if bodies else {})
        while True:
            body = bodies[n % len(bodies)] if bodies else None
            n += threads
            t0 = time.monotonic()
            if t0 >= stop:
                break
            try:
                conn.request(method, path, body=body, headers=sent)
                resp = conn.getresponse()
                data = resp.read()
                if accept is not None:
                    ok = accept(resp.status, data)
                    data = f"HTTP {resp.status}, {data[:16].hex()}".encode()
                else:
                    ok = resp.status == 200 or (not bodies and resp.status == 404)
            except (OSError, http.client.HTTPException) as exc:
                ok, data = False, repr(exc).encode()
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            t1 = time.monotonic()
            if start <= t0 and t1 <= stop:
                if ok:
                    mine.append(t1 - t0)
                else:
                    bad.append(data[:200].decode(errors="replace"))
        conn.close()
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    out.send((latencies, errors))
    out.close()


def measure(
    port: int,
    path: str,
    bodies: list[bytes],
    concurrency: int,
    warmup: float,
    duration: float,
    *,
    headers: dict[str, str] | None = None,
    accept: Accept | None = None,
) -> Cell:
    processes = min(CORES, concurrency)
    ctx = multiprocessing.get_context("fork")
    start = time.monotonic() + warmup
    stop = start + duration
    pipes, procs = [], []
    for i in range(processes):
        threads = concurrency // processes + (1 if i < concurrency % processes else 0)
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_client_process, args=(port, path, bodies, threads, start, stop, child, headers, accept))
        proc.start()
        child.close()
        pipes.append(parent)
        procs.append(proc)
    latencies: list[float] = []
    errors: list[str] = []
    for pipe in pipes:
        lat, err = pipe.recv()
        latencies.extend(lat)
        errors.extend(err)
    for proc in procs:
        proc.join(30)
    if not latencies:
        return Cell(0.0, 0.0, 0.0, len(errors), errors[0] if errors else "")
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return Cell(len(latencies) / duration, statistics.median(latencies), p99, len(errors), errors[0] if errors else "")


# ---------------------------------------------------------------------------------------------------------
# Servers


def median_cell(cells: list[Cell]) -> Cell:
    """The round with the median throughput (its latencies come with it); errors are summed over rounds."""
    ordered = sorted(cells, key=lambda c: c.rps)
    mid = ordered[len(ordered) // 2]
    errors = sum(c.errors for c in cells)
    sample = next((c.sample for c in cells if c.sample), "")
    return Cell(mid.rps, mid.p50, mid.p99, errors, sample)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def running(cmd: list[str], port: int, cwd: Path, log: Path | None = None) -> Iterator[None]:
    """``cmd`` started in ``cwd`` until it listens on ``port``; stopped afterwards. Its stderr goes to ``log``
    when given (read afterwards for errors under load), else nowhere."""
    if log is None:
        proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        with log.open("wb") as err:
            proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:] if log is not None else ""
                raise SystemExit(f"bench: {' '.join(cmd)} exited with status {proc.returncode}" + (f":\n{tail}" if tail else ""))
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"bench: {' '.join(cmd)} did not listen on port {port}") from None
                time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def make_inputs(work: Path, ours: list[str]) -> list[bytes]:
    for algo, size in (("ecdsa", 256), ("rsa", 2048)):
        spec = work / f"{algo}-ca-csr.json"
        spec.write_text(json.dumps({"CN": f"bench {algo} CA", "names": [{"O": "cfsslpy bench"}], "key": {"algo": algo, "size": size}}))
        result = subprocess.run([*ours, "gencert", "-initca", str(spec)], capture_output=True, check=True, cwd=work)
        doc = json.loads(result.stdout)
        name = "ec" if algo == "ecdsa" else "rsa"
        (work / f"{name}-ca.pem").write_text(doc["cert"])
        (work / f"{name}-ca-key.pem").write_text(doc["key"])
    bodies = []
    for i in range(32):
        key = ec.generate_private_key(ec.SECP256R1())
        name = f"host{i}.bench.example.net"
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256())
        )
        bodies.append(json.dumps({"certificate_request": csr.public_bytes(serialization.Encoding.PEM).decode()}).encode())
    return bodies


# ---------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfssl", default=shutil.which("cfssl"), help="the cfssl binary (default: from PATH)")
    parser.add_argument("--pyz", type=Path, help="run this cfsslpy executable instead of the source tree")
    parser.add_argument("--duration", type=float, default=5.0, help="timed seconds per cell (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="untimed seconds before each cell (default 1)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 64], help="client concurrency levels (default 8 64)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all servers; the median is shown (default 3)")
    parser.add_argument("--only", choices=["ec", "rsa"], help="one CA type only")
    args = parser.parse_args()
    if not args.cfssl:
        raise SystemExit("bench: cfssl not found (apt-get install golang-cfssl, or --cfssl PATH)")
    ours = [sys.executable, str(args.pyz.resolve())] if args.pyz else [sys.executable, "-m", "cfsslpy"]
    env_note = f"{args.pyz}" if args.pyz else "source tree"
    print(f"machine: {CORES} cores; python {sys.version.split()[0]}; cfsslpy from the {env_note}; cfssl {args.cfssl}")
    print(
        f"client: {min(CORES, max(args.concurrency))} processes x threads, keep-alive, {args.warmup:g}s warm-up + {args.duration:g}s per cell"
    )
    with tempfile.TemporaryDirectory(prefix="cfsslpy-bench-serve-") as tmp:
        work = Path(tmp)
        bodies = make_inputs(work, ours)
        # The client's ceiling: cfssl's 404 path costs the Go server next to nothing.
        port = free_port()
        with running([args.cfssl, "serve", "-address", "127.0.0.1", "-port", str(port)], port, work):
            for c in args.concurrency:
                cell = measure(port, "/nothing-here", [], c, args.warmup, args.duration)
                print(f"client ceiling at concurrency {c}: {cell.rps:,.0f} req/s (GET 404 from cfssl; p50 {cell.p50 * 1e3:.2f} ms)")
        print()
        header = f"{'CA':<4} {'server':<28} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs cfssl':>9}"
        print(header)
        print("-" * len(header))
        verdicts = []
        for kind in ("ec", "rsa"):
            if args.only and kind != args.only:
                continue
            ca = ["-ca", f"{kind}-ca.pem", "-ca-key", f"{kind}-ca-key.pem"]
            servers = [
                ("cfssl serve", [args.cfssl, "serve", *ca]),
                ("cfsslpy serve -workers 1", [*ours, "serve", "-workers", "1", *ca]),
                (f"cfsslpy serve -workers 0 ({CORES})", [*ours, "serve", "-workers", "0", *ca]),
            ]
            ports = {label: free_port() for label, _ in servers}
            samples: dict[tuple[str, int], list[Cell]] = {}
            with contextlib.ExitStack() as stack:
                # All three listen at once (an idle server costs nothing); the client takes turns, round after
                # round, so a change in machine load hits every server alike. Each figure is the median round.
                for label, cmd in servers:
                    stack.enter_context(running([*cmd, "-address", "127.0.0.1", "-port", str(ports[label])], ports[label], work))
                for _ in range(args.rounds):
                    for c in args.concurrency:
                        for label, _ in servers:
                            samples.setdefault((label, c), []).append(measure(ports[label], SIGN, bodies, c, args.warmup, args.duration))
            results = {key: median_cell(cells) for key, cells in samples.items()}
            for label, _ in servers:
                for c in args.concurrency:
                    cell = results[(label, c)]
                    base = results[("cfssl serve", c)]
                    ratio = f"{cell.rps / base.rps:.2f}x" if base.rps else "-"
                    errors = f"  {cell.errors} errors, e.g. {cell.sample!r}" if cell.errors else ""
                    print(
                        f"{kind.upper():<4} {label:<28} {c:>4} {cell.rps:>9,.0f} {cell.p50 * 1e3:>8.2f} {cell.p99 * 1e3:>8.2f} {ratio:>9}{errors}"
                    )
            goal = 1.0 if kind == "rsa" else 0.6
            best = max(results[(servers[2][0], c)].rps / results[("cfssl serve", c)].rps for c in args.concurrency)
            verdicts.append(
                f"{kind.upper()} CA, all cores: best {best:.2f}x cfssl (goal >= {goal:g}x): {'met' if best >= goal else 'NOT met'}"
            )
        print()
        for line in verdicts:
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
