#!/usr/bin/env python3
"""Bundling against big certificate pools: ``cfsslpy bundle`` and ``mkbundle`` against ``cfssl``, same run.

    python3 bench/bundle.py                          # pools of 100 and 10,000, N=7 runs per tool and case
    python3 bench/bundle.py --pools 100 1000 10000 -n 15
    python3 bench/bundle.py --pyz dist/cfsslpy.pyz   # the built executable instead of the source tree

One EC P-256 chain (root, two intermediates, a serverAuth leaf) is made with ``cryptography``, plus the pool
filler: self-signed CA certificates and intermediates issued by them, all with one key (many serials and
subjects, each with its own random subject key identifier), written once to a temporary directory. A pool
of size P is a ``-ca-bundle`` of P certificates (the chain's root among P-1 filler roots) and an
``-int-bundle`` of P certificates (the two real intermediates among P-2 filler intermediates). Then:

1. ``bundle -cert leaf.pem -ca-bundle roots-P.pem -int-bundle ints-P.pem -flavor optimal``, cfssl 2016 and
   ours, tools alternating, one discarded warm-up each, median of ``-n`` runs. Before timing, both answers
   are checked: the same chain (``bundle``) and the same ``root``.
2. ``mkbundle -f out.pem <dir>`` over ``--mkbundle-certs`` certificates (filler roots in files of 100;
   none has a CRL or OCSP URL, so neither tool touches the network): ``cfssl-mkbundle`` and ours, same
   way. Both outputs must hold the same set of certificates (the order follows worker completion).

Every time includes process start-up; ours' start-up alone (``version``) is printed for scale. Ratios are
ours/cfssl (lower is better; the goal is <= 1.00x).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = Path(__file__).resolve().parents[1]
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
CA_USAGE = x509.KeyUsage(False, False, False, False, False, True, True, False, False)  # keyCertSign, cRLSign
PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cfsslpy bench"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _cert(
    subject: str,
    public: ec.EllipticCurvePublicKey,
    issuer: str,
    signer: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    days: int,
    ski: bytes | None = None,
    aki: bytes | None = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(hours=1))
        .not_valid_after(NOW + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier(ski or x509.SubjectKeyIdentifier.from_public_key(public).digest), critical=False)
    )
    if aki is not None:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier(aki, None, None), critical=False)
    if ca:
        builder = builder.add_extension(CA_USAGE, critical=True)
    else:
        builder = builder.add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
    return builder.sign(signer, hashes.SHA256())


def build_inputs(work: Path, pools: list[int], mkbundle_certs: int) -> dict[str, bytes]:
    """leaf.pem, roots-P.pem / ints-P.pem per pool size, mk/ (files of 100 roots); returns the real chain's PEMs."""
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(4)]
    ids = [x509.SubjectKeyIdentifier.from_public_key(k.public_key()).digest for k in keys]
    root = _cert("bench root", keys[0].public_key(), "bench root", keys[0], ca=True, days=3650, ski=ids[0])
    int1 = _cert("bench intermediate 1", keys[1].public_key(), "bench root", keys[0], ca=True, days=1825, ski=ids[1], aki=ids[0])
    int2 = _cert("bench intermediate 2", keys[2].public_key(), "bench intermediate 1", keys[1], ca=True, days=1000, ski=ids[2], aki=ids[1])
    leaf = _cert("www.bench.example.net", keys[3].public_key(), "bench intermediate 2", keys[2], ca=False, days=365, aki=ids[2])
    (work / "leaf.pem").write_bytes(_pem(leaf))

    filler_key = ec.generate_private_key(ec.SECP256R1())  # one key for every filler certificate
    public = filler_key.public_key()
    need_roots = max([*pools, mkbundle_certs]) - 1
    need_ints = max(pools) - 2
    roots = [
        _pem(_cert(f"filler root {i}", public, f"filler root {i}", filler_key, ca=True, days=3650, ski=os.urandom(20)))
        for i in range(need_roots)
    ]
    ints = []
    for i in range(need_ints):
        issuer = f"filler root {i % max(need_roots, 1)}"
        ints.append(_pem(_cert(f"filler intermediate {i}", public, issuer, filler_key, ca=True, days=1825, ski=os.urandom(20))))
    for size in pools:
        # the real certificates in the middle of the pool: neither tool gets them first or last by luck
        r = roots[: size - 1]
        (work / f"roots-{size}.pem").write_bytes(b"".join(r[: len(r) // 2] + [_pem(root)] + r[len(r) // 2 :]))
        m = ints[: size - 2]
        (work / f"ints-{size}.pem").write_bytes(b"".join(m[: len(m) // 2] + [_pem(int1), _pem(int2)] + m[len(m) // 2 :]))
    mk = work / "mk"
    mk.mkdir()
    source = roots[:mkbundle_certs]
    if len(source) < mkbundle_certs:
        source.append(_pem(root))
    for start in range(0, len(source), 100):
        (mk / f"certs-{start // 100:04d}.pem").write_bytes(b"".join(source[start : start + 100]))
    return {"root": _pem(root), "int1": _pem(int1), "int2": _pem(int2), "leaf": _pem(leaf)}


def timed(cmd: list[str], cwd: Path) -> tuple[float, bytes]:
    started = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"bench: {shlex.join(cmd)} failed (exit {result.returncode}):\n{result.stderr.decode(errors='replace')[-2000:]}")
    return elapsed, result.stdout


def side_by_side(theirs: list[str] | None, ours: list[str], n: int, cwd: Path) -> tuple[float | None, float]:
    """Medians of both commands, run alternately (one discarded warm-up each) so load drift hits both alike."""
    if theirs:
        timed(theirs, cwd)
    timed(ours, cwd)
    t_theirs: list[float] = []
    t_ours: list[float] = []
    for _ in range(n):
        if theirs:
            t_theirs.append(timed(theirs, cwd)[0])
        t_ours.append(timed(ours, cwd)[0])
    return (statistics.median(t_theirs) if theirs else None), statistics.median(t_ours)


def x509_floor(ours: list[str], venv_dir: str | None, n: int, cwd: Path) -> float | None:
    """Milliseconds for the pyz's interpreter to start and import cryptography.x509 from the pyz's unpacked
    libraries (None when not running a pyz by a venv, or the libraries cannot be found)."""
    if venv_dir is None:
        return None
    site_packages = next(iter(sorted((Path(venv_dir) / "shiv").glob("cfsslpy-*/site-packages"))), None)
    if site_packages is None:
        return None
    cmd = [ours[0], "-c", "import cryptography.x509"]
    env = {**os.environ, "PYTHONPATH": str(site_packages)}
    subprocess.run(cmd, cwd=cwd, env=env, check=True)  # warm-up
    times = []
    for _ in range(n):
        started = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=env, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def _bundle_accepted(status: int, data: bytes) -> bool:
    return status == 200 and b'"success":true' in data


def serve_rows(cfssl: str | None, ours: list[str], sizes: list[int], leaf_pem: str, work: Path, duration: float) -> list[str]:
    """POST /api/v1/cfssl/bundle on ``serve`` with each pool (loaded once, at start-up): requests per second and
    latency at concurrency 8, with bench/serve.py's client. Returns anomalies."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from serve import free_port, measure, running

    body = json.dumps({"certificate": leaf_pem, "flavor": "optimal"}).encode()
    problems: list[str] = []
    print()
    print(f"serve: POST /api/v1/cfssl/bundle of the leaf (flavor optimal), concurrency 8, 0.5 s warm-up + {duration:g} s")
    print(f"{'server':<34} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs cfssl':>9}")
    for size in sizes:
        cells = {}
        for label, cmd in (("cfssl", [cfssl, "serve"] if cfssl else None), ("cfsslpy", [*ours, "serve", "-loglevel", "2"])):
            if cmd is None:
                continue
            port = free_port()
            full = [*cmd, "-address", "127.0.0.1", "-port", str(port), "-ca-bundle", f"roots-{size}.pem", "-int-bundle", f"ints-{size}.pem"]
            with running(full, port, work, work / f"serve-{label}-{size}.log"):
                cell = measure(
                    port,
                    "/api/v1/cfssl/bundle",
                    [body],
                    8,
                    0.5,
                    duration,
                    headers={"Content-Type": "application/json"},
                    accept=_bundle_accepted,
                )
            cells[label] = cell
            if cell.errors:
                problems.append(f"{label} serve, pool {size}: {cell.errors} failed requests ({cell.sample[:80]})")
            ratio = (
                f"{cell.rps / cells['cfssl'].rps:8.2f}x" if label == "cfsslpy" and "cfssl" in cells and cells["cfssl"].rps else f"{'':>9}"
            )
            print(
                f"{label + ' serve, pool ' + format(size, ','):<34} {cell.rps:9,.0f} {cell.p50 * 1e3:8.2f} {cell.p99 * 1e3:8.2f} {ratio}",
                flush=True,
            )
    print("vs cfssl: requests per second, ours/cfssl (higher is better)")
    return problems


def pem_set(data: bytes) -> set[bytes]:
    return {block.strip() for block in PEM_CERT.findall(data)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfssl", default=shutil.which("cfssl") or "/usr/bin/cfssl", help="the real cfssl (default: from PATH)")
    parser.add_argument(
        "--cfssl-mkbundle", default=shutil.which("cfssl-mkbundle") or "/usr/bin/cfssl-mkbundle", help="the real cfssl-mkbundle"
    )
    parser.add_argument("--pyz", type=Path, help="run this cfsslpy executable (by an empty venv) instead of the source tree")
    parser.add_argument("--no-venv", action="store_true", help="run the pyz with this interpreter itself (its .pth files included)")
    parser.add_argument("--pools", type=int, nargs="+", default=[100, 10000], help="pool sizes for bundle (default 100 10000)")
    parser.add_argument("--mkbundle-certs", type=int, default=10000, help="certificates mkbundle reads (default 10000; 0 skips it)")
    parser.add_argument("--serve-seconds", type=float, default=3.0, help="timed seconds per serve /bundle cell (0 skips them)")
    parser.add_argument("-n", type=int, default=7, help="timed runs per tool and case, after one discarded warm-up (default 7)")
    args = parser.parse_args()
    if min(args.pools) < 3:
        raise SystemExit("bench: a pool holds at least the root and the two intermediates (--pools >= 3)")
    cfssl = args.cfssl if shutil.which(args.cfssl) else None
    mkbundle = args.cfssl_mkbundle if shutil.which(args.cfssl_mkbundle) else None
    ours = [sys.executable, str(args.pyz.resolve())] if args.pyz else [sys.executable, "-m", "cfsslpy"]
    began = time.monotonic()
    venv_dir = None
    if args.pyz and not args.no_venv:
        # as bench/cli.py: the pyz run by an empty venv, without the developer environment's .pth files
        venv_dir = tempfile.mkdtemp(prefix="cfsslpy-bench-venv-")
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv_dir], check=True)
        ours = [str(Path(venv_dir) / "bin" / "python"), str(args.pyz.resolve())]
        os.environ["SHIV_ROOT"] = str(Path(venv_dir) / "shiv")  # where the pyz unpacks: the floor below imports from it

    print(f"command: {shlex.join(sys.orig_argv)}")
    cfssl_version = subprocess.run([cfssl, "version"], capture_output=True, text=True).stdout.split("\n")[0] if cfssl else ""
    print(
        f"machine: {CORES} cores; python {sys.version.split()[0]}; cfsslpy from the {args.pyz or 'source tree'}"
        + (" (run by an empty venv)" if args.pyz and not args.no_venv else "")
        + "; "
        + (f"cfssl {cfssl} ({cfssl_version})" if cfssl else f"cfssl not found ({args.cfssl}): its rows are skipped")
    )
    anomalies: list[str] = []
    with tempfile.TemporaryDirectory(prefix="cfsslpy-bench-bundle-") as tmp:
        work = Path(tmp)
        if not args.pyz:  # cwd is the work directory: `-m cfsslpy` must still find the source tree
            os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        # Bytecode as an installed cfsslpy (or the pyz) has it: compiled once by the warm-up runs, into a private
        # cache, even where PYTHONDONTWRITEBYTECODE is set (else every run recompiles the source tree).
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        t0 = time.perf_counter()
        chain = build_inputs(work, args.pools, args.mkbundle_certs)
        print(
            f"inputs: EC P-256 chain (root, 2 intermediates, leaf); pools {', '.join(f'{p:,}' for p in args.pools)} "
            f"(-ca-bundle and -int-bundle of that many certificates each); built in {time.perf_counter() - t0:.1f} s"
        )
        timed([*ours, "version"], work)  # a pyz unpacks its libraries on its first run: not timed below
        startup = statistics.median(timed([*ours, "version"], work)[0] for _ in range(5))
        print(f"cfsslpy start-up (`version`): {startup * 1e3:.0f} ms, included in every cfsslpy time below")
        print(f"N={args.n} timed runs per tool and case (one warm-up discarded), tools alternating; medians")
        print()
        header = f"{'case':<34} {'cfssl ms':>9} {'cfsslpy ms':>11} {'ratio':>7}"
        print(header)
        print("-" * len(header))
        rows: list[tuple[str, float | None, float]] = []

        expected_bundle = b"\n".join(chain[k].strip() for k in ("leaf", "int2", "int1"))
        for size in args.pools:
            tail = [
                "bundle",
                "-cert",
                "leaf.pem",
                "-ca-bundle",
                f"roots-{size}.pem",
                "-int-bundle",
                f"ints-{size}.pem",
                "-flavor",
                "optimal",
            ]
            theirs_cmd = [cfssl, *tail] if cfssl else None
            for label, cmd in (("cfssl", theirs_cmd), ("cfsslpy", [*ours, *tail])):
                if cmd is None:
                    continue
                out = json.loads(timed(cmd, work)[1])
                if (
                    out.get("bundle", "").encode().strip() != expected_bundle
                    or out.get("root", "").encode().strip() != chain["root"].strip()
                ):
                    anomalies.append(f"{label} bundle, pool {size}: not the expected chain (leaf, int2, int1; root separate)")
            theirs_s, ours_s = side_by_side(theirs_cmd, [*ours, *tail], args.n, work)
            rows.append((f"bundle, pool {size:,}", theirs_s, ours_s))
            print_row(*rows[-1])

        floor_ms = x509_floor(ours, venv_dir, args.n, work)
        if floor_ms is not None:
            print(
                f"floor: the same interpreter importing the pyz's cryptography.x509 takes {floor_ms:.1f} ms, which any"
                " Python X.509 tool pays before any work"
            )
            for name, _theirs, ours_s in rows:
                print(f"  {name}: cfsslpy is {ours_s * 1e3 - floor_ms:.1f} ms above that floor")

        if args.mkbundle_certs:
            files = len(list((work / "mk").iterdir()))
            theirs_cmd = [mkbundle, "-f", "theirs.pem", "mk"] if mkbundle else None
            ours_cmd = [*ours, "mkbundle", "-f", "ours.pem", "mk"]
            theirs_s, ours_s = side_by_side(theirs_cmd, ours_cmd, args.n, work)
            rows.append((f"mkbundle, {args.mkbundle_certs:,} certs ({files} files)", theirs_s, ours_s))
            print_row(*rows[-1])
            ours_set = pem_set((work / "ours.pem").read_bytes())
            if len(ours_set) != args.mkbundle_certs:
                anomalies.append(f"cfsslpy mkbundle wrote {len(ours_set)} distinct certificates of {args.mkbundle_certs}")
            if mkbundle and pem_set((work / "theirs.pem").read_bytes()) != ours_set:
                anomalies.append("cfssl-mkbundle and cfsslpy mkbundle wrote different certificate sets")
        if args.serve_seconds > 0:
            anomalies.extend(serve_rows(cfssl, ours, args.pools, chain["leaf"].decode(), work, args.serve_seconds))
            print()
        if not cfssl:
            print("(cfssl not found: no cfssl figures, no ratios)")
        print("ratio: ours/cfssl wall time (lower is better; goal <= 1.00x)")
        print("timed commands (in the work directory; P = pool size):")
        ours_text = shlex.join([Path(ours[0]).name, *ours[1:]])
        print("  cfssl bundle -cert leaf.pem -ca-bundle roots-P.pem -int-bundle ints-P.pem -flavor optimal")
        print(f"  {ours_text} bundle -cert leaf.pem -ca-bundle roots-P.pem -int-bundle ints-P.pem -flavor optimal")
        if args.mkbundle_certs:
            print(f"  cfssl-mkbundle -f theirs.pem mk            {ours_text} mkbundle -f ours.pem mk")
        slower = [name for name, theirs_s, ours_s in rows if theirs_s and ours_s > theirs_s]
        print(f"goal (no slower than cfssl): {'met' if not slower else 'missed: ' + ', '.join(slower)}")
    print()
    print(f"anomalies: {'none' if not anomalies else ''}")
    for line in anomalies:
        print(f"  - {line}")
    print(f"total bench time {time.monotonic() - began:.0f} s")
    if venv_dir is not None:
        shutil.rmtree(venv_dir, ignore_errors=True)
    return 1 if anomalies else 0


def print_row(name: str, theirs_s: float | None, ours_s: float) -> None:
    theirs = f"{theirs_s * 1e3:9.1f}" if theirs_s else f"{'-':>9}"
    ratio = f"{ours_s / theirs_s:6.2f}x" if theirs_s else f"{'-':>7}"
    print(f"{name:<34} {theirs} {ours_s * 1e3:11.1f} {ratio}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
