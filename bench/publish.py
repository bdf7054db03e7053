#!/usr/bin/env python3
"""The static publisher (``ocsppublish``, :mod:`cfsslpy.publish`): responses written per second, and memory.

    .venv/bin/python bench/publish.py               # 100,000 certificates
    .venv/bin/python bench/publish.py --n 20000     # a quicker look

One SQLite certdb of ``--n`` certificates of one EC P-256 CA, which is also its own OCSP responder (so
every response is signed with ECDSA P-256), is built with ``cryptography`` and bulk-inserted (the
publisher only reads it). Then, in a child process pinned to one CPU core (``sched_setaffinity``), so that
building the database does not count in its memory:

1. **first run**: an empty directory; every certificate gets its two responses (SHA-1 and SHA-256 CertIDs),
   the CRL and the index are written. Shown: responses written per second (goal: at least 10,000 with an
   EC responder on one core, issue 15) and the run's wall time.
2. **second run**: nothing changed; every stored response is read back and judged still good (none is
   re-signed), the index is compared. Shown: certificates checked per second.
3. the peak RSS of that process (``resource.getrusage``), next to the same measure for a database a tenth the
   size: the publisher streams rows and never holds the responses, so the two should be close (flat memory).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from serve import write_ec_ca  # noqa: E402  (bench/serve.py: the shared bench CA)

from cfsslpy.certdb import CertDB, DBConfig  # noqa: E402

GOAL = 10_000  # responses written per second, EC responder, one core (issue 15)
COLUMNS = (
    "serial_number, authority_key_identifier, ca_label, status, reason, expiry, revoked_at, pem, "
    "issued_at, not_before, metadata, sans, common_name"
)


def build(work: Path, count: int) -> None:
    """ca.pem, ca-key.pem and certs.db with ``count`` leaves (streamed into the database, never all in memory)."""
    now = dt.datetime.now(dt.timezone.utc)
    key, ca = write_ec_ca(work, "bench publish CA")
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    db = CertDB(DBConfig("sqlite3", str(work / "certs.db")))
    db.unexpired_certificates()  # the first query makes the schema (the certdb's own migrations)
    d = db.dialect
    db.close()
    aki_ext = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    aki = (aki_ext.key_identifier or b"").hex()
    leaf_key = ec.generate_private_key(ec.SECP256R1()).public_key()  # one key for all leaves: only the rows matter
    conn = sqlite3.connect(str(work / "certs.db"))
    batch: list[tuple[object, ...]] = []
    for i in range(count):
        host = f"host{i}.bench.example.net"
        cert = (
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
        pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        row = (str(cert.serial_number), aki, "", "good", 0, d.time(cert.not_valid_after_utc), d.time(None), pem)
        batch.append((*row, d.time(now), d.time(cert.not_valid_before_utc), "null", json.dumps([host]), host))
        if len(batch) == 5000 or i == count - 1:
            with conn:
                conn.executemany(f"INSERT INTO certificates ({COLUMNS}) VALUES ({', '.join('?' * 13)})", batch)
            batch = []
    conn.close()


def child(work: Path, out: Path) -> int:
    """The measured process: two publishing runs on one core; prints a JSON line of figures."""
    from cfsslpy.crl import load_crl_issuer
    from cfsslpy.ocsp import load_signer
    from cfsslpy.publish import CRLIssuer, Issuer, publish

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    signer = load_signer(str(work / "ca.pem"), str(work / "ca.pem"), str(work / "ca-key.pem"))
    cert, key = load_crl_issuer(str(work / "ca.pem"), str(work / "ca-key.pem"))
    issuers = [Issuer(signer, CRLIssuer(cert, key, dt.timedelta(days=7)))]
    db = CertDB(DBConfig("sqlite3", str(work / "certs.db")))
    figures: dict[str, float] = {}
    now = dt.datetime.now(dt.timezone.utc)
    # first publication; nothing changed; 50 hours later, every 96h response within its 48h margin: all re-signed
    for label, when in (("first", now), ("same", now), ("refresh", now + dt.timedelta(hours=50))):
        wall, cpu = time.perf_counter(), time.process_time()
        report = publish(db, issuers, str(out), now=when)
        figures[f"{label}_s"] = time.perf_counter() - wall
        figures[f"{label}_cpu"] = time.process_time() - cpu
        figures[f"{label}_written"] = report.written
        figures[f"{label}_kept"] = report.kept
    db.close()
    figures["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures))
    return 0


def measure(work: Path) -> dict[str, float]:
    out = work / "pub"
    shutil.rmtree(out, ignore_errors=True)
    result = subprocess.run([sys.executable, __file__, "--child", str(work), str(out)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"publisher run failed:\n{result.stderr}")
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="certificates in the database (default 100000)")
    parser.add_argument("--dir", default="", help="where to build the databases and trees (default: a temporary directory; e.g. /dev/shm)")
    parser.add_argument("--child", nargs=2, metavar=("WORK", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(Path(args.child[0]), Path(args.child[1]))
    small_n = max(1, args.n // 10)
    with tempfile.TemporaryDirectory(prefix="bench-publish-", dir=args.dir or None) as tmp:
        rows = []
        for count in (small_n, args.n):
            work = Path(tmp) / f"n{count}"
            work.mkdir()
            started = time.perf_counter()
            build(work, count)
            print(f"built a certdb of {count} certificates in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            rows.append((count, measure(work)))
            shutil.rmtree(work)
    where = os.path.dirname(tmp)
    print(f"ocsppublish, EC P-256 responder, one core, SQLite certdb, tree under {where} ({os.cpu_count()} CPUs on this host)")
    print(
        f"{'certificates':>12}  {'first: written/s':>16} {'(per CPU-s)':>11}  {'refresh: written/s':>18} {'(per CPU-s)':>11}"
        f"  {'unchanged: checked/s':>20}  {'peak RSS':>9}"
    )
    for count, f in rows:
        assert f["first_written"] == 2 * count and f["same_kept"] == 2 * count and f["refresh_written"] == 2 * count, f
        print(
            f"{count:>12}  {f['first_written'] / f['first_s']:>16,.0f} {f['first_written'] / f['first_cpu']:>11,.0f}"
            f"  {f['refresh_written'] / f['refresh_s']:>18,.0f} {f['refresh_written'] / f['refresh_cpu']:>11,.0f}"
            f"  {f['same_kept'] / 2 / f['same_s']:>20,.0f}  {f['rss_mib']:>5.1f} MiB"
        )
    big = rows[-1][1]
    for label, what in (("first", "first publication (each certificate's signature checked once)"), ("refresh", "refresh (re-signing)")):
        rate = big[f"{label}_written"] / big[f"{label}_s"]
        print(f"goal >= {GOAL:,} responses written/s on one core, {what}: {'met' if rate >= GOAL else 'NOT met'} ({rate:,.0f}/s wall)")
    print(f"memory: peak RSS {rows[0][1]['rss_mib']:.1f} MiB at {rows[0][0]} certificates, {big['rss_mib']:.1f} MiB at {args.n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
