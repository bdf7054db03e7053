#!/usr/bin/env python3
"""Bundling against big certificate pools: ``cfsslpy bundle``, ``mkbundle`` and ``serve``'s /bundle against ``cfssl``.

    .venv/bin/python bench/bundle.py                                              # pools of 100 and 10,000, N=7 runs per tool and case
    .venv/bin/python bench/bundle.py --pools 100 1000 10000 -n 15
    python3 bench/bundle.py --pyz dist/cfsslpy.pyz                                # the built executable instead of the source tree
    .venv/bin/python bench/bundle.py --only serve-bundle --duration 2 --rounds 1  # the HTTP cells only, quickly

One EC P-256 chain (root, two intermediates, a serverAuth leaf) is made with ``cryptography``, plus the pool
filler: self-signed CA certificates and intermediates issued by them, all with one key (many serials and
subjects, each with its own random subject key identifier), written once to a temporary directory. A pool
of size P is a ``-ca-bundle`` of P certificates (the chain's root among P-1 filler roots) and an
``-int-bundle`` of P certificates (the two real intermediates among P-2 filler intermediates). Then:

1. ``bundle -cert leaf.pem -ca-bundle roots-P.pem -int-bundle ints-P.pem -flavor optimal``, cfssl 1.2.0,
   cfssl 1.6.5 and ours, tools alternating, one discarded warm-up each, median of ``-n`` runs. Before
   timing, every answer is checked: the same chain (``bundle``) and the same ``root``.
2. ``mkbundle -f out.pem <dir>`` over ``--mkbundle-certs`` certificates (filler roots in files of 100;
   none has a CRL or OCSP URL, so no tool touches the network): ``cfssl-mkbundle`` (1.2.0), 1.6.5's
   ``mkbundle`` and ours, same way. Every output must hold the same set of certificates (the order follows
   worker completion).
3. ``serve-bundle``: POST /api/v1/cfssl/bundle of the leaf (flavor optimal) to ``serve -ca-bundle
   roots-P.pem -int-bundle ints-P.pem`` of cfssl 1.2.0, cfssl 1.6.5 and ``cfsslpy -workers 2``, one cell per
   pool size, loaded by wrk with bench/serve.py's machinery (each answer checked first: the expected chain
   and root). Goal: at least 0.5x cfssl 1.6.5's requests/s, and a p99 no worse than either cfssl's.

In 1 and 2 every time includes process start-up; ours' start-up alone (``version``) is printed for scale.
Their ratios are ours/cfssl, per cfssl (lower is better; the goal is <= 1.00x against each).
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
from cryptography.x509.oid import ExtendedKeyUsageOID
from serve import (  # bench/serve.py: the shared servers, wrk runner and report
    Check,
    Findings,
    HttpCell,
    Load,
    WrkOptions,
    add_arguments,
    bench_name,
    cfsslpy_command,
    find_peers,
    print_header,
    print_plan,
    report,
    run_cells,
    servers_for,
    timed,
)

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
CA_USAGE = x509.KeyUsage(False, False, False, False, False, True, True, False, False)  # keyCertSign, cRLSign
PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
PARTS = ["bundle", "mkbundle", "serve-bundle"]
CLI_PEERS = ("1.2.0", "1.6.5")
Row = tuple[str, list[float | None], float]  # case, cfssl 1.2.0 and 1.6.5 seconds (None: absent), cfsslpy seconds


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
        .subject_name(bench_name(subject))
        .issuer_name(bench_name(issuer))
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


def side_by_side(theirs: list[list[str] | None], ours: list[str], n: int, cwd: Path) -> tuple[list[float | None], float]:
    """Medians of every command, run alternately (one discarded warm-up each) so load drift hits all alike;
    an absent peer (None) gets None."""
    cmds = [cmd for cmd in [*theirs, ours] if cmd]
    for cmd in cmds:
        timed(cmd, cwd)
    times: dict[int, list[float]] = {id(cmd): [] for cmd in cmds}
    for _ in range(n):
        for cmd in cmds:
            times[id(cmd)].append(timed(cmd, cwd)[0])
    return [statistics.median(times[id(cmd)]) if cmd else None for cmd in theirs], statistics.median(times[id(ours)])


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


def pem_set(data: bytes) -> set[bytes]:
    return {block.strip() for block in PEM_CERT.findall(data)}


def cli_rows(
    cfssls: list[str | None], ours: list[str], pools: list[int], chain: dict[str, bytes], n: int, work: Path, findings: Findings
) -> list[Row]:
    """Part 1: ``bundle`` of the leaf over each pool, every answer checked first."""
    rows = []
    expected_bundle = b"\n".join(chain[k].strip() for k in ("leaf", "int2", "int1"))
    for size in pools:
        tail = ["bundle", "-cert", "leaf.pem", "-ca-bundle", f"roots-{size}.pem", "-int-bundle", f"ints-{size}.pem", "-flavor", "optimal"]
        theirs_cmds = [[cfssl, *tail] if cfssl else None for cfssl in cfssls]
        labelled = [*((f"cfssl {label}", cmd) for label, cmd in zip(CLI_PEERS, theirs_cmds, strict=True)), ("cfsslpy", [*ours, *tail])]
        for label, cmd in labelled:
            if cmd is None:
                continue
            out = json.loads(timed(cmd, work)[1])
            if out.get("bundle", "").encode().strip() != expected_bundle or out.get("root", "").encode().strip() != chain["root"].strip():
                findings.anomalies.append(f"{label} bundle, pool {size}: not the expected chain (leaf, int2, int1; root separate)")
        theirs_s, ours_s = side_by_side(theirs_cmds, [*ours, *tail], n, work)
        rows.append((f"bundle, pool {size:,}", theirs_s, ours_s))
        print_row(*rows[-1])
    return rows


def mkbundle_row(mkbundles: list[str | None], ours: list[str], certs: int, n: int, work: Path, findings: Findings) -> Row:
    """Part 2: ``mkbundle`` over the files of mk/; every output must hold the same certificates."""
    files = len(list((work / "mk").iterdir()))
    theirs_cmds = [[mk, "-f", f"theirs-{label}.pem", "mk"] if mk else None for label, mk in zip(CLI_PEERS, mkbundles, strict=True)]
    theirs_s, ours_s = side_by_side(theirs_cmds, [*ours, "mkbundle", "-f", "ours.pem", "mk"], n, work)
    row = (f"mkbundle, {certs:,} certs ({files} files)", theirs_s, ours_s)
    print_row(*row)
    ours_set = pem_set((work / "ours.pem").read_bytes())
    if len(ours_set) != certs:
        findings.anomalies.append(f"cfsslpy mkbundle wrote {len(ours_set)} distinct certificates of {certs}")
    for label, mk in zip(CLI_PEERS, mkbundles, strict=True):
        if mk and pem_set((work / f"theirs-{label}.pem").read_bytes()) != ours_set:
            findings.anomalies.append(f"cfssl {label}'s mkbundle and cfsslpy mkbundle wrote different certificate sets")
    return row


def bundle_check(chain: dict[str, bytes]) -> Check:
    """A 200 whose JSON holds the chain leaf, int2, int1 and the real root."""
    want = [chain[k].strip() for k in ("leaf", "int2", "int1")]

    def check(i: int, data: bytes) -> str | None:
        doc = json.loads(data)
        if doc.get("success") is not True:
            return f"success={doc.get('success')!r}, errors {doc.get('errors')!r}"
        result = doc["result"]
        if [b.strip() for b in PEM_CERT.findall(result["bundle"].encode())] != want:
            return "not the expected chain (leaf, int2, int1)"
        if result["root"].encode().strip() != chain["root"].strip():
            return "not the expected root"
        return None

    return check


def serve_cells(args: argparse.Namespace, ours: list[str], chain: dict[str, bytes]) -> list[HttpCell]:
    """Part 3: POST /api/v1/cfssl/bundle of the leaf to each server, one cell per pool size."""
    body = json.dumps({"certificate": chain["leaf"].decode(), "flavor": "optimal"}).encode()
    peers = find_peers(args)
    return [
        HttpCell(
            f"bundle-{size}",
            Load("POST", ("/api/v1/cfssl/bundle",), (body,), "application/json"),
            bundle_check(chain),
            servers_for(["serve", "-ca-bundle", f"roots-{size}.pem", "-int-bundle", f"ints-{size}.pem"], peers, ours, args.workers),
            goal=0.5,
            p99_goal=True,
        )
        for size in args.pools
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.add_argument(
        "--cfssl-mkbundle", default=shutil.which("cfssl-mkbundle") or "/usr/bin/cfssl-mkbundle", help="cfssl 1.2.0's mkbundle"
    )
    parser.add_argument("--mkbundle165", help="cfssl 1.6.5's mkbundle (default: mkbundle beside --cfssl165)")
    parser.add_argument("--no-venv", action="store_true", help="run the pyz with this interpreter itself (its .pth files included)")
    parser.add_argument("--pools", type=int, nargs="+", default=[100, 10000], help="pool sizes (default 100 10000)")
    parser.add_argument("--mkbundle-certs", type=int, default=10000, help="certificates mkbundle reads (default 10000; 0 skips it)")
    parser.add_argument(
        "-n", type=int, default=7, help="timed runs per tool and case of parts 1-2, after one discarded warm-up (default 7)"
    )
    parser.add_argument("--only", choices=PARTS, action="append", help="one part only (repeatable)")
    args = parser.parse_args()
    if min(args.pools) < 3:
        raise SystemExit("bench: a pool holds at least the root and the two intermediates (--pools >= 3)")
    parts = set(args.only or PARTS)
    mkbundle_certs = args.mkbundle_certs if "mkbundle" in parts else 0
    opts = WrkOptions.from_args(args)
    peers = find_peers(args)
    cfssls = [peer.path for peer in peers]  # parts 1-2: cfssl 1.2.0 and 1.6.5 (CLI_PEERS order)
    mkbundle165 = args.mkbundle165 or (str(Path(peers[1].path).parent / "mkbundle") if peers[1].path else "")
    mkbundles = [shutil.which(mk) if mk else None for mk in (args.cfssl_mkbundle, mkbundle165)]
    ours = cfsslpy_command(args.pyz)
    began = time.monotonic()
    venv_dir = None
    if args.pyz and not args.no_venv:
        # as bench/cli.py: the pyz run by an empty venv, without the developer environment's .pth files
        venv_dir = tempfile.mkdtemp(prefix="cfsslpy-bench-venv-")
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv_dir], check=True)
        ours = [str(Path(venv_dir) / "bin" / "python"), str(args.pyz.resolve())]
        os.environ["SHIV_ROOT"] = str(Path(venv_dir) / "shiv")  # where the pyz unpacks: the floor below imports from it
    print_header(peers, ours, opts if "serve-bundle" in parts else None)
    findings = Findings()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="cfsslpy-bench-bundle-") as tmp:
        work = Path(tmp)
        # Bytecode as an installed cfsslpy (or the pyz) has it: compiled once by the warm-up runs, into a private
        # cache, even where PYTHONDONTWRITEBYTECODE is set (else every run recompiles the source tree).
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        t0 = time.perf_counter()
        chain = build_inputs(work, args.pools, mkbundle_certs)
        print(
            f"inputs: EC P-256 chain (root, 2 intermediates, leaf); pools {', '.join(f'{p:,}' for p in args.pools)} "
            f"(-ca-bundle and -int-bundle of that many certificates each); built in {time.perf_counter() - t0:.1f} s"
        )
        if parts & {"bundle", "mkbundle"}:
            timed([*ours, "version"], work)  # a pyz unpacks its libraries on its first run: not timed below
            startup = statistics.median(timed([*ours, "version"], work)[0] for _ in range(5))
            print(f"cfsslpy start-up (`version`): {startup * 1e3:.0f} ms, included in every cfsslpy time of parts 1-2")
            print(f"N={args.n} timed runs per tool and case (one warm-up discarded), tools alternating; medians")
            print()
            header = f"{'case':<34} {'1.2.0 ms':>9} {'1.6.5 ms':>9} {'cfsslpy ms':>11} {'vs 1.2.0':>8} {'vs 1.6.5':>8}"
            print(header)
            print("-" * len(header))
        if "bundle" in parts:
            rows += cli_rows(cfssls, ours, args.pools, chain, args.n, work, findings)
            print_floor(ours, venv_dir, args.n, work, rows)
        if mkbundle_certs:
            rows.append(mkbundle_row(mkbundles, ours, mkbundle_certs, args.n, work, findings))
        if rows:
            print_cli_footer(ours, rows, cfssls, mkbundles if mkbundle_certs > 0 else None)
        if "serve-bundle" in parts:
            cells = serve_cells(args, ours, chain)
            print()
            print_plan(cells, opts, work)
            results = run_cells(cells, opts, work, findings)
            report(cells, results, peers)
    findings.print()
    print(f"total bench time {time.monotonic() - began:.0f} s")
    if venv_dir is not None:
        shutil.rmtree(venv_dir, ignore_errors=True)
    return 1 if findings.anomalies else 0


def print_floor(ours: list[str], venv_dir: str | None, n: int, work: Path, rows: list[Row]) -> None:
    floor_ms = x509_floor(ours, venv_dir, n, work)
    if floor_ms is not None:
        print(
            f"floor: the same interpreter importing the pyz's cryptography.x509 takes {floor_ms:.1f} ms,"
            " which any Python X.509 tool pays first"
        )
        for name, _theirs, ours_s in rows:
            print(f"  {name}: cfsslpy is {ours_s * 1e3 - floor_ms:.1f} ms above that floor")


def print_cli_footer(ours: list[str], rows: list[Row], cfssls: list[str | None], mkbundles: list[str | None] | None) -> None:
    for label, cfssl in zip(CLI_PEERS, cfssls, strict=True):
        if not cfssl:
            print(f"(cfssl {label} absent: no figures, no ratios against it)")
    print("ratio: ours/cfssl wall time, per cfssl (lower is better; goal <= 1.00x against each)")
    print("timed commands (in the work directory; P = pool size):")
    ours_text = shlex.join([Path(ours[0]).name, *ours[1:]])
    for cmd in [*(c for c in cfssls if c), ours_text]:
        print(f"  {cmd} bundle -cert leaf.pem -ca-bundle roots-P.pem -int-bundle ints-P.pem -flavor optimal")
    if mkbundles is not None:
        for label, mk in zip(CLI_PEERS, mkbundles, strict=True):
            if mk:
                print(f"  {mk} -f theirs-{label}.pem mk")
        print(f"  {ours_text} mkbundle -f ours.pem mk")
    for column, label in enumerate(CLI_PEERS):
        slower = [name for name, theirs_s, ours_s in rows if (t := theirs_s[column]) is not None and ours_s > t]
        verdict = "ok" if not slower else "MISSED: " + ", ".join(slower)
        if not any(theirs_s[column] for _, theirs_s, _ in rows):
            verdict = "n/a (absent)"
        print(f"goal (no slower than cfssl {label}): {verdict}")


def print_row(name: str, theirs_s: list[float | None], ours_s: float) -> None:
    theirs = " ".join(f"{t * 1e3:9.1f}" if t else f"{'absent':>9}" for t in theirs_s)
    ratios = " ".join(f"{ours_s / t:7.2f}x" if t else f"{'-':>8}" for t in theirs_s)
    print(f"{name:<34} {theirs} {ours_s * 1e3:11.1f} {ratios}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
