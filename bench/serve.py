#!/usr/bin/env python3
"""HTTP signing under load: ``cfsslpy serve`` against cfssl 1.2.0 and cfssl 1.6.5 ``serve``, driven by wrk.

    .venv/bin/python bench/serve.py                          # sign with an EC and an RSA CA; wrk -t1 -c8 -d5s, 3 rounds
    .venv/bin/python bench/serve.py --duration 2 --rounds 1  # a quick look
    python3 bench/serve.py --pyz dist/cfsslpy.pyz            # the built executable instead of `python -m cfsslpy`
    .venv/bin/python bench/serve.py --only sign-rsa -c 64    # one cell, 64 connections

Cells: POST /api/v1/cfssl/sign of ECDSA P-256 leaf CSRs (32 of them, in turn) to servers holding an EC
P-256 CA (``sign-ec``) or an RSA 2048 CA (``sign-rsa``): cfssl 1.2.0 (Debian's golang-cfssl), cfssl 1.6.5
(../shared/peers/cfssl-1.6.5/cfssl from the project root) and ``cfsslpy serve -workers 2``, with the same CA
files. Goals: sign-ec at least 1.0x cfssl 1.6.5's requests per second, sign-rsa at least 1.5x; in both, a
p99 latency no worse than either cfssl's. POST /api/v1/cfssl/bundle is measured by bench/bundle.py (which
builds the certificate pools) with the machinery below.

The machinery, shared by bench/ocsp.py, bench/bundle.py and bench/pkcs11.py:

- Servers. Every server of a run listens at once on 127.0.0.1 (a free port each; the exact command lines are
  printed first), its stderr in a log that is searched for errors afterwards. Each is stopped at the end
  (SIGTERM, then SIGKILL after 10 s). A peer that is not found is shown as ``absent``.
- Checking. Before timing, every distinct request of a cell is sent once to every server through urllib
  (no redirects followed) and each answer is checked: status 200 and the right content (the certificate
  for that CSR, the expected chain, the OCSP status of that serial). A server that fails is not timed for
  that cell, so a server that answers errors fast cannot win.
- Load. wrk (``-t1 -c8 -d5s --latency`` by default) runs a Lua script written at run time that cycles
  through the cell's requests; wrk sends ``Host: 127.0.0.1:PORT``, JSON bodies go with ``Content-Type:
  application/json``. One untimed wrk run (``--warmup`` seconds) per cell and server, then ``--rounds``
  rounds, each running every cell on every server in turn, so drift in machine load hits all alike. A row
  is the median round by requests per second (successful responses only), with that round's p50 and p99
  from wrk's latency distribution; non-2xx responses and socket errors are summed over all rounds and a
  row with any is marked.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[1]
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
CFSSL120 = shutil.which("cfssl") or "/usr/bin/cfssl"
CFSSL165 = str(ROOT.parent / "shared" / "peers" / "cfssl-1.6.5" / "cfssl")
SIGN = "/api/v1/cfssl/sign"
JSON = "application/json"


# ---------------------------------------------------------------------------------------------------------
# The tools: peers, cfsslpy, options


@dataclass(frozen=True)
class Peer:
    label: str  # "1.2.0", "1.6.5": the ratio columns
    path: str | None  # None when not found
    wanted: str
    version: str = ""


def find_peers(args: argparse.Namespace) -> list[Peer]:
    peers = []
    for label, wanted in (("1.2.0", args.cfssl), ("1.6.5", args.cfssl165)):
        path = shutil.which(wanted)
        version = subprocess.run([path, "version"], capture_output=True, text=True).stdout.split("\n")[0] if path else ""
        peers.append(Peer(label, path, wanted, version))
    return peers


def cfsslpy_command(pyz: Path | None) -> list[str]:
    """How to run cfsslpy: the built pyz by this interpreter, else ``-m cfsslpy`` from this source tree, which
    is put on PYTHONPATH (for this process's children) since every command runs in a temporary directory."""
    if pyz is not None:
        return [sys.executable, str(pyz.resolve())]
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return [sys.executable, "-m", "cfsslpy"]


@dataclass(frozen=True)
class WrkOptions:
    wrk: str
    threads: int
    connections: int
    duration: int  # seconds (wrk takes whole seconds)
    warmup: int
    timeout: int
    rounds: int

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> WrkOptions:
        if not shutil.which(args.wrk):
            raise SystemExit(f"bench: wrk not found ({args.wrk}; apt-get install wrk, or --wrk PATH)")
        if args.connections < args.threads or min(args.threads, args.duration, args.rounds) < 1:
            raise SystemExit("bench: need --threads >= 1, --connections >= --threads, --duration >= 1, --rounds >= 1")
        return cls(args.wrk, args.threads, args.connections, args.duration, args.warmup, args.timeout, args.rounds)

    def argv(self, seconds: int, script: Path, port: int) -> list[str]:
        return [
            self.wrk,
            f"-t{self.threads}",
            f"-c{self.connections}",
            f"-d{seconds}s",
            f"--timeout={self.timeout}s",
            "--latency",
            f"--script={script}",
            f"http://127.0.0.1:{port}/",
        ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every HTTP bench takes: the servers and the load."""
    tools = parser.add_argument_group("servers")
    tools.add_argument("--cfssl", default=CFSSL120, help="cfssl 1.2.0 (default: %(default)s)")
    tools.add_argument("--cfssl165", default=CFSSL165, help="cfssl 1.6.5 (default: %(default)s)")
    tools.add_argument("--pyz", type=Path, help="run this built cfsslpy (dist/cfsslpy.pyz) instead of the source tree")
    tools.add_argument("--workers", type=int, default=2, help="cfsslpy's -workers (default %(default)s)")
    load = parser.add_argument_group("load (wrk)")
    load.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk", help="the wrk binary (default: %(default)s)")
    load.add_argument("-t", "--threads", type=int, default=1, help="wrk threads (default %(default)s)")
    load.add_argument("-c", "--connections", type=int, default=8, help="wrk connections (default %(default)s)")
    load.add_argument("-d", "--duration", type=int, default=5, help="timed seconds per wrk run (default %(default)s)")
    load.add_argument("--warmup", type=int, default=1, help="untimed seconds per cell and server first (0: none; default %(default)s)")
    load.add_argument("--timeout", type=int, default=10, help="wrk --timeout seconds; slower answers are errors (default %(default)s)")
    load.add_argument("--rounds", type=int, default=3, help="rounds over all servers; the median is shown (default %(default)s)")


def print_header(peers: list[Peer], ours: list[str], opts: WrkOptions | None) -> None:
    print(f"command: {shlex.join(sys.orig_argv)}")
    print(f"machine: nproc {CORES}; python {sys.version.split()[0]} ({sys.executable}); {os.uname().sysname} {os.uname().release}")
    for peer in peers:
        print(f"cfssl {peer.label}: " + (f"{peer.path} ({peer.version})" if peer.path else f"absent ({peer.wanted} not found)"))
    source = f"PYTHONPATH={os.environ['PYTHONPATH']}" if "-m" in ours else "the built executable"
    print(f"cfsslpy: {shlex.join(ours)} ({source})")
    if opts is not None:
        version = subprocess.run([opts.wrk, "-v"], capture_output=True, text=True).stdout.split("\n")[0].strip()
        print(f"wrk: {version}")


def timed(cmd: list[str], cwd: Path) -> tuple[float, bytes]:
    """Wall time and stdout of ``cmd``, which must succeed."""
    started = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"bench: {shlex.join(cmd)} failed (exit {result.returncode}):\n{result.stderr.decode(errors='replace')[-2000:]}")
    return elapsed, result.stdout


def bench_name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cfsslpy bench"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def write_ec_ca(work: Path, cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed EC P-256 CA valid for a year (keyCertSign, cRLSign, a subject key identifier), written
    to ``work``/ca.pem and ca-key.pem (an ``EC PRIVATE KEY``, which every cfssl reads): the CA of the database benchmarks."""
    now = dt.datetime.now(dt.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(bench_name(cn))
        .issuer_name(bench_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)  # keyCertSign, cRLSign
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    (work / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (work / "ca-key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return key, ca


# ---------------------------------------------------------------------------------------------------------
# Server processes


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port nobody listens on now, never the same one twice in a run."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


@contextlib.contextmanager
def running(cmd: list[str], port: int, cwd: Path, log: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """``cmd`` started in ``cwd`` until it listens on ``port``; stopped afterwards (SIGTERM, then SIGKILL after
    10 s). Its stderr goes to ``log`` when given (read afterwards for errors under load), else nowhere."""
    with open(log or os.devnull, "wb") as err:
        proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:] if log is not None else ""
                raise SystemExit(f"bench: {shlex.join(cmd)} exited with status {proc.returncode}" + (f":\n{tail}" if tail else ""))
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"bench: {shlex.join(cmd)} did not listen on port {port}") from None
                time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def log_problems(log: Path, start: int = 0) -> list[str]:
    """Lines of a server's stderr, from byte ``start`` on, that look like trouble (warnings, errors, panics)."""
    words = ("Traceback", "ERROR", "Error", "[WARNING]", "[ERROR]", "[CRITICAL]", "[FATAL]", "panic", "exception")
    text = log.read_bytes()[start:].decode(errors="replace")
    return [line for line in text.splitlines() if any(w in line for w in words)]


@dataclass(frozen=True)
class Server:
    label: str  # its row in a cell: "cfssl 1.2.0", "cfssl 1.6.5", "cfsslpy", ...
    cmd: tuple[str, ...] | None  # None: the program is absent
    port: int
    peer: str | None = None  # "1.2.0" / "1.6.5" for a cfssl server; None for cfsslpy


def cfsslpy_server(label: str, ours: list[str], args: list[str], workers: int) -> Server:
    port = free_port()
    return Server(label, (*ours, *args, "-workers", str(workers), "-address", "127.0.0.1", "-port", str(port)), port)


def servers_for(args: list[str], peers: list[Peer], ours: list[str], workers: int) -> tuple[Server, ...]:
    """cfssl 1.2.0, cfssl 1.6.5 and cfsslpy ``-workers N``, each running ``args`` (e.g. ``serve -ca ...``)."""
    servers = []
    for peer in peers:
        port = free_port()
        cmd = (peer.path, *args, "-address", "127.0.0.1", "-port", str(port)) if peer.path else None
        servers.append(Server(f"cfssl {peer.label}", cmd, port, peer.label))
    return (*servers, cfsslpy_server("cfsslpy", ours, args, workers))


# ---------------------------------------------------------------------------------------------------------
# wrk


@dataclass(frozen=True)
class Cell:
    rps: float  # successful responses per second
    p50: float  # seconds
    p99: float
    errors: int  # non-2xx responses + socket errors
    sample: str = ""  # what the errors were
    non2xx: int = 0
    socket_errors: int = 0


@dataclass(frozen=True)
class Load:
    """What wrk sends: request i is ``method paths[i % len] bodies[i % len]``, i cycling over the longer list."""

    method: str
    paths: tuple[str, ...]
    bodies: tuple[bytes, ...] = ()
    content_type: str | None = None

    def __len__(self) -> int:
        return max(len(self.paths), len(self.bodies))

    def request(self, i: int) -> tuple[str, bytes | None]:
        return self.paths[i % len(self.paths)], (self.bodies[i % len(self.bodies)] if self.bodies else None)


def lua_string(data: bytes) -> str:
    """A Lua string literal of ``data``: printable ASCII as is, anything else as a decimal escape."""
    plain = set(range(0x20, 0x7F)) - {ord('"'), ord("\\")}
    return '"' + "".join(chr(b) if b in plain else f"\\{b:03d}" for b in data) + '"'


def write_script(load: Load, path: Path) -> Path:
    """The wrk script of ``load``: one request after another, in order, per thread."""
    lines = [
        "-- bench/serve.py: cycle through the cell's requests",
        f"wrk.method = {lua_string(load.method.encode())}",
    ]
    if load.content_type:
        lines.append(f'wrk.headers["Content-Type"] = {lua_string(load.content_type.encode())}')
    lines += [
        "local paths = {" + ", ".join(lua_string(p.encode()) for p in load.paths) + "}",
        "local bodies = {\n" + ",\n".join(lua_string(b) for b in load.bodies) + "\n}",
        "local n, i = math.max(#paths, #bodies), 0",
        "request = function()",
        "  i = i % n + 1",
        "  local body = nil",
        "  if #bodies > 0 then body = bodies[(i - 1) % #bodies + 1] end",
        "  return wrk.format(nil, paths[(i - 1) % #paths + 1], nil, body)",
        "end",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_wrk(out: str) -> Cell:
    """Throughput, latency percentiles and errors from the output of ``wrk --latency``."""
    done = re.search(r"^\s*(\d+) requests in ", out, re.M)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    if done is None or rate is None:
        raise SystemExit(f"bench: unexpected wrk output:\n{out}")
    requests = int(done[1])
    pct = {p: float(v) * _UNITS[u] for p, v, u in re.findall(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", out, re.M)}
    non2xx = int(m[1]) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    socket_errors = sum(map(int, sock.groups())) if sock else 0
    sample = "; ".join(filter(None, [f"{non2xx} non-2xx" if non2xx else "", sock[0] if sock else ""]))
    ok = requests - non2xx
    rps = float(rate[1]) * ok / requests if requests else 0.0
    return Cell(rps, pct.get("50", 0.0), pct.get("99", 0.0), non2xx + socket_errors, sample, non2xx, socket_errors)


def run_wrk(opts: WrkOptions, port: int, script: Path, seconds: int) -> Cell:
    argv = opts.argv(seconds, script, port)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + opts.timeout + 60)
    if out.returncode != 0:
        raise SystemExit(f"bench: {shlex.join(argv)} failed (exit {out.returncode}):\n{out.stdout}{out.stderr}")
    return parse_wrk(out.stdout)


def median_cell(cells: list[Cell]) -> Cell:
    """The round with the median throughput (its latencies come with it); errors are summed over rounds."""
    mid = sorted(cells, key=lambda c: c.rps)[len(cells) // 2]
    sample = next((c.sample for c in cells if c.sample), "")
    return Cell(
        mid.rps,
        mid.p50,
        mid.p99,
        sum(c.errors for c in cells),
        sample,
        sum(c.non2xx for c in cells),
        sum(c.socket_errors for c in cells),
    )


def measure(port: int, path: str, bodies: list[bytes], concurrency: int, warmup: float, duration: float) -> Cell:
    """One wrk cell POSTing JSON ``bodies`` in turn over ``concurrency`` connections, after ``warmup`` s
    untimed (bench/pkcs11.py's serve part)."""
    opts = WrkOptions(shutil.which("wrk") or "/usr/bin/wrk", 1, concurrency, max(1, round(duration)), math.ceil(warmup), 10, 1)
    with tempfile.TemporaryDirectory(prefix="cfsslpy-bench-wrk-") as tmp:
        script = write_script(Load("POST", (path,), tuple(bodies), JSON), Path(tmp) / "load.lua")
        if opts.warmup:
            run_wrk(opts, port, script, opts.warmup)
        return run_wrk(opts, port, script, opts.duration)


# ---------------------------------------------------------------------------------------------------------
# Cells: check, time, report


Check = Callable[[int, bytes], str | None]  # (index of the request, 200 response body) -> what is wrong, or None


@dataclass(frozen=True)
class HttpCell:
    name: str
    load: Load
    check: Check
    servers: tuple[Server, ...]
    goal: float | None = None  # cfsslpy's requests/s at least this times cfssl 1.6.5's
    p99_goal: bool = False  # cfsslpy's p99 no worse than each cfssl's


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a 3xx is an answer to report, not to follow


_URLLIB = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())


def check_server(cell: HttpCell, port: int) -> str | None:
    """Each distinct request of ``cell`` once through urllib; the first problem, or None when all are right."""
    for i in range(len(cell.load)):
        path, body = cell.load.request(i)
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=cell.load.method)
        if cell.load.content_type:
            req.add_header("Content-Type", cell.load.content_type)
        try:
            with _URLLIB.open(req, timeout=30) as resp:
                status, data = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, data = exc.code, exc.read()
        except OSError as exc:
            return f"request {i}: {exc!r}"
        if status != 200:
            return f"request {i}: HTTP {status} {data[:120]!r}"
        try:
            problem = cell.check(i, data)
        except (ValueError, KeyError, TypeError) as exc:
            problem = f"unreadable answer ({exc!r}): {data[:120]!r}"
        if problem:
            return f"request {i}: {problem}"
    return None


def print_plan(cells: list[HttpCell], opts: WrkOptions, work: Path) -> None:
    print(f"servers (in {work}, all listening during the run):")
    seen: set[int] = set()
    for cell in cells:
        for server in cell.servers:
            if server.port not in seen:
                seen.add(server.port)
                print(f"  {server.label:<22} " + (shlex.join(server.cmd) if server.cmd else "absent"))
    print(f"load: {shlex.join(opts.argv(opts.duration, Path('CELL.lua'), 0)).replace(':0/', ':PORT/')}")
    warmup = f"after one untimed run of {opts.warmup} s per cell and server" if opts.warmup else "no warm-up"
    print(f"  {opts.rounds} round(s), servers in turn, {warmup}")
    for cell in cells:
        path, body = cell.load.request(0)
        shown = path if len(cell.load.paths) == 1 else "/<base64 request>"
        size = f", {len(body):,}-byte bodies" if body is not None else ""
        kind = f", Content-Type: {cell.load.content_type}" if cell.load.content_type else ""
        print(f"  {cell.name}: {cell.load.method} {shown}, {len(cell.load)} distinct request(s) in turn{kind}{size}")
    print()


Results = dict[tuple[str, str], Cell | str]  # (cell, server label) -> median cell, or why there is none


@dataclass
class Findings:
    """What went wrong: anomalies of cfsslpy (they make the exit status 1) and notes about the peers."""

    anomalies: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, server: Server, text: str) -> None:
        (self.notes if server.peer else self.anomalies).append(f"{server.label}: {text}")

    def print(self) -> None:
        print()
        for title, lines in (("anomalies (cfsslpy)", self.anomalies), ("notes (cfssl)", self.notes)):
            print(f"{title}: {'none' if not lines else ''}")
            for line in lines:
                print(f"  - {line}")


def run_cells(cells: list[HttpCell], opts: WrkOptions, work: Path, findings: Findings) -> Results:
    """Start every server of ``cells``, check their answers, time the cells round after round (servers in
    turn) and stop the servers. Adds to ``findings`` what looks wrong: a failed check, errors under load, a
    server that died during the run, error lines in a server's log."""
    results: Results = {}
    servers = {s.port: s for cell in cells for s in cell.servers if s.cmd is not None}
    logs = {port: work / f"server-{port}.log" for port in servers}
    scripts = {cell.name: write_script(cell.load, work / f"{cell.name}.lua") for cell in cells}
    timed_pairs: list[tuple[HttpCell, Server]] = []
    rounds: dict[tuple[HttpCell, Server], list[Cell]] = {}
    with contextlib.ExitStack() as stack:
        procs = {port: stack.enter_context(running(list(s.cmd or ()), port, work, logs[port])) for port, s in servers.items()}
        for cell in cells:
            for server in cell.servers:
                if server.cmd is None:
                    results[(cell.name, server.label)] = "absent"
                elif problem := check_server(cell, server.port):
                    results[(cell.name, server.label)] = "failed"
                    findings.add(server, f"{cell.name}: wrong answer before timing (so not timed), {problem}")
                else:
                    timed_pairs.append((cell, server))
        # Start-up warnings (cfssl: no OCSP signer; cfsslpy: authsign disabled) are not trouble under load.
        offsets = {port: logs[port].stat().st_size for port in servers}
        if opts.warmup:
            for cell, server in timed_pairs:
                run_wrk(opts, server.port, scripts[cell.name], opts.warmup)
        for _ in range(opts.rounds):
            for cell, server in timed_pairs:
                rounds.setdefault((cell, server), []).append(run_wrk(opts, server.port, scripts[cell.name], opts.duration))
        for port, proc in procs.items():
            if proc.poll() is not None:
                findings.add(servers[port], f"exited during the run (status {proc.returncode})")
    for (cell, server), cells_of in rounds.items():
        results[(cell.name, server.label)] = median = median_cell(cells_of)
        if median.errors:
            findings.add(server, f"{cell.name}: {median.errors} errors over {len(cells_of)} rounds, e.g. {median.sample}")
    for port, server in servers.items():
        trouble = log_problems(logs[port], offsets[port])
        if trouble:
            findings.add(server, f"{len(trouble)} warning/error lines in its log under load (port {port}), e.g. {trouble[0][:200]!r}")
    return results


def _ratio(ours: Cell | str | None, theirs: Cell | str | None) -> str:
    if isinstance(theirs, str) or theirs is None:
        return theirs or "-"
    if not isinstance(ours, Cell) or not theirs.rps:
        return "-"
    return f"{ours.rps / theirs.rps:.2f}x"


def report(cells: list[HttpCell], results: Results, peers: list[Peer]) -> list[str]:
    """The table (a row per cell and server) and the goals; returns the goals missed."""
    labels = [p.label for p in peers]
    header = f"{'cell':<16} {'server':<22} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}" + "".join(f" {'vs ' + lb:>9}" for lb in labels)
    header += f" {'non-2xx':>8} {'sock err':>8}"
    print(header)
    print("-" * len(header))
    for cell in cells:
        by_peer = {s.peer: results.get((cell.name, s.label)) for s in cell.servers if s.peer}
        for server in cell.servers:
            got = results.get((cell.name, server.label))
            if not isinstance(got, Cell):
                why = "failed the check, not timed (see below)" if got == "failed" else got or "-"
                print(f"{cell.name:<16} {server.label:<22} {why:>9}")
                continue
            ratios = "".join(f" {'' if server.peer else _ratio(got, by_peer.get(lb)):>9}" for lb in labels)
            mark = "  << errors" if got.errors else ""
            print(
                f"{cell.name:<16} {server.label:<22} {got.rps:>9,.0f} {got.p50 * 1e3:>8.2f} {got.p99 * 1e3:>8.2f}{ratios}"
                f" {got.non2xx:>8} {got.socket_errors:>8}{mark}"
            )
    print("req/s: successful responses per second (median round); vs: cfsslpy's req/s over that cfssl's; errors: all rounds")
    missed: list[str] = []
    goals = [cell for cell in cells if cell.goal is not None or cell.p99_goal]
    if goals:
        print()
        print("goals (cfsslpy):")
    for cell in goals:
        ours = next((results.get((cell.name, s.label)) for s in cell.servers if s.peer is None), None)
        theirs = {s.peer: results.get((cell.name, s.label)) for s in cell.servers if s.peer}
        clean = isinstance(ours, Cell) and not ours.errors
        if cell.goal is not None:
            base = theirs.get("1.6.5")
            if not isinstance(base, Cell):
                figure, verdict = f"cfssl 1.6.5 {base or 'absent'}", "n/a"
            else:
                figure = _ratio(ours, base)
                verdict = "ok" if clean and isinstance(ours, Cell) and ours.rps >= cell.goal * base.rps else "MISSED"
            verdict += "" if clean or verdict == "n/a" else " (errors or no figure)"
            print(f"  {cell.name:<16} {f'req/s >= {cell.goal:g}x cfssl 1.6.5':<28} {figure:<44} {verdict}")
            if verdict.startswith("MISSED"):
                missed.append(f"{cell.name} req/s")
        if cell.p99_goal:
            found = {lb: c for lb, c in theirs.items() if isinstance(c, Cell)}
            if not found or not isinstance(ours, Cell):
                figure, verdict = "no figures", "n/a" if not found else "MISSED"
            else:
                worse = [lb for lb, c in found.items() if ours.p99 > c.p99]
                figure = f"{ours.p99 * 1e3:.2f} ms (" + ", ".join(f"{lb} {c.p99 * 1e3:.2f}" for lb, c in found.items()) + ")"
                verdict = ("MISSED vs " + ", ".join(worse)) if worse else "ok" if clean else "MISSED (errors)"
            print(f"  {cell.name:<16} {'p99 <= each cfssl p99':<28} {figure:<44} {verdict}")
            if verdict.startswith("MISSED"):
                missed.append(f"{cell.name} p99")
    return missed


# ---------------------------------------------------------------------------------------------------------
# Sign


def make_inputs(work: Path, ours: list[str]) -> list[bytes]:
    """ec-ca.pem / ec-ca-key.pem and rsa-ca.pem / rsa-ca-key.pem (cfsslpy gencert -initca) in ``work``; the
    bodies of 32 sign requests (ECDSA P-256 CSRs for host<i>.bench.example.net)."""
    for algo, size in (("ecdsa", 256), ("rsa", 2048)):
        spec = work / f"{algo}-ca-csr.json"
        spec.write_text(json.dumps({"CN": f"bench {algo} CA", "names": [{"O": "cfsslpy bench"}], "key": {"algo": algo, "size": size}}))
        doc = json.loads(timed([*ours, "gencert", "-initca", str(spec)], work)[1])
        name = "ec" if algo == "ecdsa" else "rsa"
        (work / f"{name}-ca.pem").write_text(doc["cert"])
        (work / f"{name}-ca-key.pem").write_text(doc["key"])
    key = ec.generate_private_key(ec.SECP256R1())
    bodies = []
    for i in range(32):
        name = f"host{i}.bench.example.net"
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256())
        )
        bodies.append(json.dumps({"certificate_request": csr.public_bytes(serialization.Encoding.PEM).decode()}).encode())
    return bodies


def sign_check(ca_pem: Path) -> Check:
    """A 200 whose JSON holds a certificate of the CA for request i's host."""
    issuer = x509.load_pem_x509_certificate(ca_pem.read_bytes()).subject

    def check(i: int, data: bytes) -> str | None:
        doc = json.loads(data)
        if doc.get("success") is not True:
            return f"success={doc.get('success')!r}, errors {doc.get('errors')!r}"
        cert = x509.load_pem_x509_certificate(doc["result"]["certificate"].encode())
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if cert.issuer != issuer or not cn or cn[0].value != f"host{i % 32}.bench.example.net":
            return f"certificate for {cert.subject.rfc4514_string()} by {cert.issuer.rfc4514_string()}"
        return None

    return check


GOALS = {"ec": 1.0, "rsa": 1.5}  # cfsslpy's sign requests/s over cfssl 1.6.5's


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.add_argument("--only", choices=["sign-ec", "sign-rsa"], action="append", help="one cell only (repeatable)")
    args = parser.parse_args()
    opts = WrkOptions.from_args(args)
    peers = find_peers(args)
    ours = cfsslpy_command(args.pyz)
    began = time.monotonic()
    print_header(peers, ours, opts)
    with tempfile.TemporaryDirectory(prefix="cfsslpy-bench-serve-") as tmp:
        work = Path(tmp)
        bodies = tuple(make_inputs(work, ours))
        cells = [
            HttpCell(
                f"sign-{kind}",
                Load("POST", (SIGN,), bodies, JSON),
                sign_check(work / f"{kind}-ca.pem"),
                servers_for(["serve", "-ca", f"{kind}-ca.pem", "-ca-key", f"{kind}-ca-key.pem"], peers, ours, args.workers),
                goal=goal,
                p99_goal=True,
            )
            for kind, goal in GOALS.items()
            if not args.only or f"sign-{kind}" in args.only
        ]
        print("inputs: EC P-256 and RSA 2048 CAs (cfsslpy gencert -initca), 32 ECDSA P-256 CSRs")
        print_plan(cells, opts, work)
        findings = Findings()
        results = run_cells(cells, opts, work, findings)
    report(cells, results, peers)
    findings.print()
    print(f"total bench time {time.monotonic() - began:.0f} s")
    return 1 if findings.anomalies else 0


if __name__ == "__main__":
    sys.exit(main())
