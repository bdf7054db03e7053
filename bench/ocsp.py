#!/usr/bin/env python3
"""OCSP and CRLs from the certificate database: ``cfsslpy`` ocsprefresh, ocspserve and crl against ``cfssl``.

    python3 bench/ocsp.py                          # 2000 certificates (10% revoked), concurrency 16, 3 rounds
    python3 bench/ocsp.py --certs 20000 --duration 5
    python3 bench/ocsp.py --pyz dist/cfsslpy.pyz   # the built executable instead of the source tree

One SQLite certdb of ``--certs`` certificates (``--revoked`` of them revoked) of one EC P-256 CA, which is
also its own OCSP responder, is built with the core (``CertDB``), the certificates made with
``cryptography`` directly. Then:

1. ``ocsprefresh``: wall time of ``cfssl ocsprefresh`` and ours, each on a fresh copy of that database
   (tools alternating, ``--rounds`` runs each, median shown), in seconds and certificates per second.
   Both include process start-up; ours' start-up alone (``version``) is printed for scale.
2. ``ocspserve``: OCSP POST requests per second and p50/p99 latency, for ``cfssl ocspserve -responses``
   (the file from ``cfssl ocspdump``), ours with the same file, ours with ``-db-config`` (the responses
   our ocsprefresh stored), ours in live mode (``-db-config -ca -responder -responder-key``: signed on
   demand, then cached; with ``-cache-ttl 0`` every request is signed) and ours ``-responses`` with
   ``-workers 0`` (one worker per core). The client (one process per core, keep-alive HTTP/1.1, one
   connection per thread) posts ``--requests`` DER requests prepared up front for serials of the database,
   revoked ones among them; only a 200 carrying a successful OCSPResponse counts. Before timing, every
   server answers each request once and the answers are checked (serial, good/revoked). All servers listen
   at once and the client takes turns among them, round after round (median round shown). The client's own
   ceiling (cfssl serve's 404 path, as in bench/serve.py) is printed first.
3. ``crl`` (ours only: cfssl 2016 has no ``crl`` command): time to make the CRL of the revoked rows.

Without cfssl (``--cfssl``, default from PATH, else /usr/bin/cfssl) its rows are skipped with a note.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import http.client
import json
import os
import random
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from serve import (  # noqa: E402  (bench/serve.py: the same cells, ports and medians)
    Cell,
    free_port,
    median_cell,
    running,  # noqa: E402
)
from serve import measure as measure_ceiling  # noqa: E402
from serve import measure as measure_requests  # noqa: E402

from cfsslpy.certdb import CertDB, CertificateRecord, DBConfig  # noqa: E402

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
OCSP_HEADERS = {"Content-Type": "application/ocsp-request"}


@dataclass(frozen=True)
class PKI:
    ca: x509.Certificate
    certs: list[x509.Certificate]
    revoked: set[int]  # serial numbers
    aki: str


# ---------------------------------------------------------------------------------------------------------
# The database


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cfsslpy bench"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def build_db(work: Path, count: int, revoked_share: float) -> PKI:
    """ca.pem / ca-key.pem and pristine.db: ``count`` leaves of the CA, ``revoked_share`` of them revoked."""
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("bench OCSP CA"))
        .issuer_name(_name("bench OCSP CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)  # keyCertSign, cRLSign
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    (work / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (work / "ca-key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    )
    aki_ext = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    leaf_key = ec.generate_private_key(ec.SECP256R1()).public_key()  # one key for all leaves: only the rows matter
    certs = []
    for i in range(count):
        host = f"host{i}.bench.example.net"
        certs.append(
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca.subject)
            .public_key(leaf_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=90))
            .add_extension(aki_ext, critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .sign(key, hashes.SHA256())
        )
    revoked = {c.serial_number for c in random.Random(1).sample(certs, round(count * revoked_share))}
    aki = (aki_ext.key_identifier or b"").hex()
    db = CertDB(DBConfig("sqlite3", str(work / "pristine.db")))
    try:
        for cert in certs:
            db.insert_certificate(CertificateRecord.from_certificate(cert, pem=cert.public_bytes(serialization.Encoding.PEM).decode()))
        for serial in revoked:
            db.revoke(str(serial), aki, 1)  # keyCompromise
    finally:
        db.close()
    return PKI(ca, certs, revoked, aki)


def copy_db(work: Path, source: str, name: str) -> Path:
    """A fresh, identical copy of ``source``.db as ``name``.db, and its db-config ``name``.json."""
    target = work / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
        if Path(f"{work / source}.db{suffix}").exists():
            shutil.copyfile(f"{work / source}.db{suffix}", f"{target}{suffix}")
    conf = work / f"{name}.json"
    conf.write_text(json.dumps({"driver": "sqlite3", "data_source": str(target)}))
    return conf


def ocsp_rows(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return int(conn.execute("SELECT count(*) FROM ocsp_responses").fetchone()[0])


def timed(cmd: list[str], cwd: Path) -> tuple[float, bytes]:
    started = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"bench: {shlex.join(cmd)} failed (exit {result.returncode}):\n{result.stderr.decode(errors='replace')[-2000:]}")
    return elapsed, result.stdout


# ---------------------------------------------------------------------------------------------------------
# Client: bench/serve.py's, with an OCSP-aware success test


def ocsp_successful(data: bytes) -> bool:
    """``data`` starts an OCSPResponse whose responseStatus is successful (0), without parsing the rest."""
    if len(data) < 5 or data[0] != 0x30:
        return False
    header = 2 if data[1] < 0x80 else 2 + (data[1] & 0x7F)
    return data[header : header + 3] == b"\x0a\x01\x00"


def ocsp_accepted(status: int, data: bytes) -> bool:
    return status == 200 and ocsp_successful(data)


def measure(port: int, bodies: list[bytes], concurrency: int, warmup: float, duration: float) -> Cell:
    """bench/serve.py's client, POSTing DER requests; only a 200 with a successful OCSP response counts."""
    return measure_requests(port, "/", bodies, concurrency, warmup, duration, headers=OCSP_HEADERS, accept=ocsp_accepted)


def check_answers(port: int, requests: list[tuple[bytes, int]], revoked: set[int]) -> list[str]:
    """Every request once: a successful response for that serial with the right status. Problems, if any."""
    problems: list[str] = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for body, serial in requests:
            conn.request("POST", "/", body=body, headers=OCSP_HEADERS)
            resp = conn.getresponse()
            data = resp.read()
            try:
                parsed = ocsp.load_der_ocsp_response(data)
                if parsed.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
                    problems.append(f"serial {serial}: HTTP {resp.status}, {parsed.response_status.name}")
                    continue
                want = ocsp.OCSPCertStatus.REVOKED if serial in revoked else ocsp.OCSPCertStatus.GOOD
                if parsed.serial_number != serial or parsed.certificate_status != want:
                    problems.append(f"serial {serial}: answered serial {parsed.serial_number} {parsed.certificate_status.name}")
            except ValueError as exc:
                problems.append(f"serial {serial}: HTTP {resp.status}, unparseable ({exc})")
    finally:
        conn.close()
    return problems


# ---------------------------------------------------------------------------------------------------------
# Servers


def log_problems(log: Path) -> list[str]:
    """Lines of a server's stderr that look like trouble (tracebacks, errors, warnings)."""
    words = ("Traceback", "ERROR", "Error", "[WARNING]", "[ERROR]", "[CRITICAL]", "panic", "exception")
    return [line for line in log.read_text(errors="replace").splitlines() if any(w in line for w in words)]


# ---------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfssl", default=shutil.which("cfssl") or "/usr/bin/cfssl", help="the real cfssl (default: from PATH)")
    parser.add_argument("--pyz", type=Path, help="run this cfsslpy executable instead of the source tree")
    parser.add_argument("--certs", type=int, default=2000, help="certificates in the database (default 2000)")
    parser.add_argument("--revoked", type=float, default=0.1, help="share of them revoked (default 0.1)")
    parser.add_argument("--requests", type=int, default=256, help="distinct OCSP requests the client cycles through (default 256)")
    parser.add_argument("--duration", type=float, default=3.0, help="timed seconds per ocspserve cell (default 3)")
    parser.add_argument("--warmup", type=float, default=0.5, help="untimed seconds before each cell (default 0.5)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16], help="client concurrency levels (default 16)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every measurement; the median is shown (default 3)")
    parser.add_argument("--only", choices=["ocsprefresh", "ocspserve", "crl"], action="append", help="one part only (repeatable)")
    args = parser.parse_args()
    parts = set(args.only or ["ocsprefresh", "ocspserve", "crl"])
    cfssl = args.cfssl if args.cfssl and shutil.which(args.cfssl) else None
    ours = [sys.executable, str(args.pyz.resolve())] if args.pyz else [sys.executable, "-m", "cfsslpy"]
    began = time.monotonic()

    print(f"command: {shlex.join(sys.orig_argv)}")
    cfssl_version = subprocess.run([cfssl, "version"], capture_output=True, text=True).stdout.split("\n")[0] if cfssl else ""
    print(
        f"machine: {CORES} cores; python {sys.version.split()[0]}; cfsslpy from the {args.pyz or 'source tree'}; "
        + (f"cfssl {cfssl} ({cfssl_version})" if cfssl else f"cfssl not found ({args.cfssl}): its rows are skipped")
    )
    anomalies: list[str] = []
    with tempfile.TemporaryDirectory(prefix="cfsslpy-bench-ocsp-") as tmp:
        work = Path(tmp)
        if not args.pyz:  # cwd is the work directory: `-m cfsslpy` must still find the source tree
            os.environ["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")])
            )
        t0 = time.perf_counter()
        pki = build_db(work, args.certs, args.revoked)
        n_revoked = len(pki.revoked)
        print(
            f"certdb: SQLite, {args.certs} certificates ({n_revoked} revoked) of one EC P-256 CA (its own OCSP responder); "
            f"built in {time.perf_counter() - t0:.1f} s"
        )
        timed([*ours, "version"], work)  # a pyz unpacks its libraries on its first run: not timed below
        startup = statistics.median(timed([*ours, "version"], work)[0] for _ in range(3))
        print(f"cfsslpy start-up (`version`): {startup * 1e3:.0f} ms, included in every cfsslpy command time below")
        signer = ["-ca", "ca.pem", "-responder", "ca.pem", "-responder-key", "ca-key.pem"]

        # 1. ocsprefresh --------------------------------------------------------------------------------
        copy_db(work, "pristine", "ours")  # the database ocspserve -db-config reads, if ocsprefresh is skipped
        if "ocsprefresh" in parts or "ocspserve" in parts:
            tools = [("cfssl", [cfssl])] if cfssl else []
            tools.append(("cfsslpy", ours))
            times: dict[str, list[float]] = {label: [] for label, _ in tools}
            for _ in range(args.rounds if "ocsprefresh" in parts else 1):
                for label, cmd in tools:
                    name = "theirs" if label == "cfssl" else "ours"
                    conf = copy_db(work, "pristine", name)
                    elapsed, _out = timed([*cmd, "ocsprefresh", "-db-config", conf.name, *signer], work)
                    times[label].append(elapsed)
                    rows = ocsp_rows(work / f"{name}.db")
                    if rows != args.certs:
                        anomalies.append(f"{label} ocsprefresh stored {rows} responses for {args.certs} certificates")
            if "ocsprefresh" in parts:
                print()
                print(
                    f"ocsprefresh: {args.certs} certificates, fresh copy of the database per run, median of {args.rounds}, tools alternating"
                )
                header = f"{'tool':<10} {'seconds':>8} {'rows/s':>9} {'vs cfssl':>9}"
                print(header)
                print("-" * len(header))
                base = statistics.median(times["cfssl"]) if cfssl else None
                for label, _ in tools:
                    med = statistics.median(times[label])
                    ratio = f"{med / base:.2f}x" if base else "-"
                    print(f"{label:<10} {med:>8.2f} {args.certs / med:>9,.0f} {ratio:>9}")
                if not cfssl:
                    print("(cfssl not found: no cfssl row)")
                print("vs cfssl: time ratio, ours/cfssl (lower is better)")

        # 2. ocspserve ------------------------------------------------------------------------------------
        if "ocspserve" in parts:
            # The responses file: cfssl's own dump (cfssl's ocsprefresh); without cfssl, ours.
            if cfssl:
                _, dump = timed([cfssl, "ocspdump", "-db-config", "theirs.json"], work)
                source = "cfssl ocspdump"
            else:
                _, dump = timed([*ours, "ocspdump", "-db-config", "ours.json"], work)
                source = "cfsslpy ocspdump"
            (work / "responses").write_bytes(dump)
            sizes = [len(base64.b64decode(line)) for line in dump.split()]
            rng = random.Random(2)
            chosen = rng.sample(pki.certs, min(args.requests, len(pki.certs)))
            requests = [
                (
                    ocsp.OCSPRequestBuilder().add_certificate(cert, pki.ca, hashes.SHA1()).build().public_bytes(serialization.Encoding.DER),
                    cert.serial_number,
                )
                for cert in chosen
            ]
            bodies = [body for body, _ in requests]
            in_mix = sum(1 for _, serial in requests if serial in pki.revoked)
            print()
            print(
                f"ocspserve: POST of {len(requests)} distinct DER requests (SHA-1 CertIDs, {in_mix} revoked), "
                f"-responses file from {source} ({len(sizes)} responses, {statistics.median(sizes):.0f} bytes each)"
            )
            print(
                f"client: {min(CORES, max(args.concurrency))} processes x threads, keep-alive, "
                f"{args.warmup:g}s warm-up + {args.duration:g}s per cell, rounds: {args.rounds} (median round shown)"
            )
            ceilings: dict[int, float] = {}
            if cfssl:
                port = free_port()
                with running([cfssl, "serve", "-address", "127.0.0.1", "-port", str(port)], port, work, work / "ceiling.log"):
                    for c in args.concurrency:
                        cell = measure_ceiling(port, "/nothing-here", [], c, args.warmup, args.duration)
                        ceilings[c] = cell.rps
                        print(
                            f"client ceiling at concurrency {c}: {cell.rps:,.0f} req/s (GET 404 from cfssl serve; p50 {cell.p50 * 1e3:.2f} ms)"
                        )
            else:
                print("client ceiling: not measured (it uses cfssl serve's 404 path)")
            live = ["-db-config", "ours.json", *signer]
            servers: list[tuple[str, list[str]]] = []
            if cfssl:
                servers.append(("cfssl -responses", [cfssl, "ocspserve", "-responses", "responses"]))
            servers += [
                ("cfsslpy -responses", [*ours, "ocspserve", "-responses", "responses"]),
                ("cfsslpy -db-config (stored)", [*ours, "ocspserve", "-db-config", "ours.json"]),
                ("cfsslpy live (cached)", [*ours, "ocspserve", *live]),
                ("cfsslpy live -cache-ttl 0", [*ours, "ocspserve", *live, "-cache-ttl", "0"]),
                (f"cfsslpy -responses -workers 0 ({CORES})", [*ours, "ocspserve", "-responses", "responses", "-workers", "0"]),
            ]
            ports = {label: free_port() for label, _ in servers}
            logs = {label: work / f"server-{i}.log" for i, (label, _) in enumerate(servers)}
            samples: dict[tuple[str, int], list[Cell]] = {}
            with contextlib.ExitStack() as stack:
                for label, cmd in servers:
                    port = ports[label]
                    stack.enter_context(running([*cmd, "-address", "127.0.0.1", "-port", str(port)], port, work, logs[label]))
                for label, _ in servers:
                    problems = check_answers(ports[label], requests, pki.revoked)
                    if problems:
                        anomalies.append(f"{label}: {len(problems)}/{len(requests)} wrong answers, e.g. {problems[0]}")
                for _ in range(args.rounds):
                    for c in args.concurrency:
                        for label, _ in servers:
                            samples.setdefault((label, c), []).append(measure(ports[label], bodies, c, args.warmup, args.duration))
            results = {key: median_cell(cells) for key, cells in samples.items()}
            header = f"{'server':<34} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs cfssl':>9}"
            print(header)
            print("-" * len(header))
            for label, _ in servers:
                for c in args.concurrency:
                    cell = results[(label, c)]
                    base_cell = results.get(("cfssl -responses", c))
                    ratio = f"{cell.rps / base_cell.rps:.2f}x" if base_cell and base_cell.rps else "-"
                    errors = f"  {cell.errors} errors, e.g. {cell.sample!r}" if cell.errors else ""
                    if c in ceilings and cell.rps >= 0.9 * ceilings[c]:
                        errors += "  (at the client's ceiling: client-bound)"
                    print(f"{label:<34} {c:>4} {cell.rps:>9,.0f} {cell.p50 * 1e3:>8.2f} {cell.p99 * 1e3:>8.2f} {ratio:>9}{errors}")
                    if cell.errors:
                        anomalies.append(f"{label} at concurrency {c}: {cell.errors} failed requests, e.g. {cell.sample!r}")
            if not cfssl:
                print("(cfssl not found: no cfssl row, no ratios)")
            print("vs cfssl: throughput ratio, ours/cfssl (higher is better)")
            for label, _ in servers:
                trouble = log_problems(logs[label])
                if trouble:
                    anomalies.append(f"{label}: {len(trouble)} error lines in its log, e.g. {trouble[0][:200]!r}")

        # 3. crl ----------------------------------------------------------------------------------------------
        if "crl" in parts:
            conf = copy_db(work, "pristine", "crl")
            crl_times = []
            der = b""
            for _ in range(args.rounds):
                elapsed, out = timed([*ours, "crl", "-db-config", conf.name, "-ca", "ca.pem", "-ca-key", "ca-key.pem"], work)
                crl_times.append(elapsed)
                der = base64.b64decode(out)
            crl = x509.load_der_x509_crl(der)
            listed = len(list(crl))
            if listed != n_revoked:
                anomalies.append(f"crl lists {listed} certificates, the database has {n_revoked} revoked")
            med = statistics.median(crl_times)
            print()
            print(f"crl (cfsslpy only; cfssl 2016 has no crl command): {n_revoked} revoked rows of {args.certs}, median of {args.rounds}")
            print(
                f"cfsslpy crl: {med:.2f} s ({n_revoked / med:,.0f} revoked rows/s, {med - startup:.2f} s above start-up), {len(der):,} bytes DER"
            )

    print()
    print(f"anomalies: {'none' if not anomalies else ''}")
    for line in anomalies:
        print(f"  - {line}")
    print(f"total bench time {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
