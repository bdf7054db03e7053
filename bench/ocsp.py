#!/usr/bin/env python3
"""OCSP and CRLs from the certificate database: ``cfsslpy`` ocsprefresh, ocspserve and crl against ``cfssl``.

    .venv/bin/python bench/ocsp.py                          # 2000 certificates (10% revoked); wrk -t1 -c8 -d5s, 3 rounds
    .venv/bin/python bench/ocsp.py --duration 2 --rounds 1  # a quick look
    python3 bench/ocsp.py --pyz dist/cfsslpy.pyz            # the built executable instead of `python -m cfsslpy`
    .venv/bin/python bench/ocsp.py --only ocsp-post -c 64   # one part (repeatable), 64 connections

One SQLite certdb of ``--certs`` certificates (``--revoked`` of them revoked) of one EC P-256 CA, which is
also its own OCSP responder, is built with the core (``CertDB``), the certificates made with
``cryptography`` directly. Then:

1. ``ocsprefresh``: wall time of cfssl 1.2.0's ``ocsprefresh``, cfssl 1.6.5's and ours, each on a fresh copy
   of that database (tools alternating, ``--rounds`` runs each, median shown), in seconds and certificates
   per second. All include process start-up; ours' start-up alone (``version``) is printed for scale. (1.6.5's
   static build has no SQLite driver, so this part runs ``cfssl-libsqlite3`` beside ``--cfssl165``: the same
   cfssl built with cgo against libsqlite3.)
2. ``ocspserve -responses FILE``, the file written by cfssl 1.2.0's ``ocspdump`` from its ocsprefresh (by
   ours when cfssl 1.2.0 is absent), served by cfssl 1.2.0, cfssl 1.6.5 and ``cfsslpy ocspserve -workers 2``
   and loaded by wrk with bench/serve.py's machinery (checks, rounds, medians; see its docstring):

   - ``ocsp-post``: POST of ``--requests`` DER requests (SHA-1 CertIDs for serials of the database, revoked
     ones among them), the same bytes for every server. Goal: at least 1.0x cfssl 1.6.5's requests/s.
   - ``ocsp-get``: GET of the same requests, base64 and URL-encoded in the path (RFC 6960 appendix A),
     leaving out those whose base64 holds ``//`` (Go's mux redirects such paths). Shown without a goal. Its
     last row is nginx serving the static tree ``cfsslpy ocsppublish`` wrote from our refreshed database,
     with the nginx locations it writes (``-nginx``): the same client against static files.
   - ``ocsp-modes``: cfsslpy's other sources under the POST load, without a peer: ``-db-config`` (the
     responses our ocsprefresh stored), live mode (``-db-config -ca -responder -responder-key``: signed on
     demand, then cached) and live mode with ``-cache-ttl 0`` (every request signed).

   Every answer is checked before timing: a successful OCSPResponse for that serial, good or revoked.
3. ``crl``: time to make the CRL of the revoked rows, ours and cfssl 1.6.5's (its SQLite build), alternating
   (cfssl 1.2.0 has no ``crl`` command); every CRL must list exactly the revoked rows.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from serve import (  # noqa: E402  (bench/serve.py: the shared servers, wrk runner and report)
    Check,
    Findings,
    HttpCell,
    Load,
    Peer,
    Server,
    WrkOptions,
    add_arguments,
    cfsslpy_command,
    cfsslpy_server,
    find_peers,
    free_port,
    print_header,
    print_plan,
    report,
    run_cells,
    servers_for,
    timed,
    write_ec_ca,
)

from cfsslpy.certdb import CertDB, CertificateRecord, DBConfig  # noqa: E402

OCSP_REQUEST = "application/ocsp-request"
PARTS = ["ocsprefresh", "ocsp-post", "ocsp-get", "ocsp-modes", "crl"]


@dataclass(frozen=True)
class PKI:
    ca: x509.Certificate
    certs: list[x509.Certificate]
    revoked: set[int]  # serial numbers
    aki: str


# ---------------------------------------------------------------------------------------------------------
# The database


def build_db(work: Path, count: int, revoked_share: float) -> PKI:
    """ca.pem / ca-key.pem and pristine.db: ``count`` leaves of the CA, ``revoked_share`` of them revoked."""
    now = dt.datetime.now(dt.timezone.utc)
    key, ca = write_ec_ca(work, "bench OCSP CA")
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
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


# ---------------------------------------------------------------------------------------------------------
# 1. ocsprefresh


SIGNER = ["-ca", "ca.pem", "-responder", "ca.pem", "-responder-key", "ca-key.pem"]


def ocsprefresh_part(
    cfssl: str | None, cfssl165: str | None, ours: list[str], work: Path, certs: int, rounds: int, show: bool
) -> list[str]:
    """ours.db (theirs.db with cfssl 1.2.0, theirs165.db with 1.6.5) refreshed; the timings printed when
    ``show``. Returns anomalies."""
    tools = [("cfssl 1.2.0", [cfssl])] if cfssl else []
    if cfssl165 and show:
        tools.append(("cfssl 1.6.5", [cfssl165]))
    tools.append(("cfsslpy", ours))
    names = {"cfssl 1.2.0": "theirs", "cfssl 1.6.5": "theirs165", "cfsslpy": "ours"}
    times: dict[str, list[float]] = {label: [] for label, _ in tools}
    anomalies = []
    for _ in range(rounds if show else 1):
        for label, cmd in tools:
            name = names[label]
            conf = copy_db(work, "pristine", name)
            times[label].append(timed([*cmd, "ocsprefresh", "-db-config", conf.name, *SIGNER], work)[0])
            rows = ocsp_rows(work / f"{name}.db")
            if rows != certs:
                anomalies.append(f"{label} ocsprefresh stored {rows} responses for {certs} certificates")
    if show:
        print(f"ocsprefresh: {certs} certificates, fresh copy of the database per run, median of {rounds}, tools alternating")
        header = f"{'tool':<12} {'seconds':>8} {'rows/s':>9} {'vs 1.2.0':>9} {'vs 1.6.5':>9}"
        print(header)
        print("-" * len(header))
        ours_med = statistics.median(times["cfsslpy"])
        for label, _ in tools:
            med = statistics.median(times[label])
            ratios = ["", ""]
            if label == "cfsslpy":
                for k, peer in enumerate(("cfssl 1.2.0", "cfssl 1.6.5")):
                    ratios[k] = f"{ours_med / statistics.median(times[peer]):.2f}x" if peer in times else "absent"
            print(f"{label:<12} {med:>8.2f} {certs / med:>9,.0f} {ratios[0]:>9} {ratios[1]:>9}")
        print("vs 1.2.0, vs 1.6.5: time ratio, ours/cfssl (lower is better)")
        print()
    return anomalies


# ---------------------------------------------------------------------------------------------------------
# 2. ocspserve


def ocsp_check(serials: list[int], revoked: set[int]) -> Check:
    """Request i's answer: a successful OCSPResponse for ``serials[i]``, revoked when it is."""

    def check(i: int, data: bytes) -> str | None:
        parsed = ocsp.load_der_ocsp_response(data)
        if parsed.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            return f"responseStatus {parsed.response_status.name}"
        want = ocsp.OCSPCertStatus.REVOKED if serials[i] in revoked else ocsp.OCSPCertStatus.GOOD
        if parsed.serial_number != serials[i] or parsed.certificate_status != want:
            return f"serial {serials[i]}: answered serial {parsed.serial_number} {parsed.certificate_status.name}"
        return None

    return check


def nginx_server(ours: list[str], work: Path) -> Server:
    """nginx serving the tree ``cfsslpy ocsppublish`` writes from the refreshed database (``ours.json``), with
    the location blocks it writes (``-nginx``): static files, no cfsslpy process on the request path."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    port = free_port()
    if nginx is None:
        return Server("nginx (ocsppublish tree)", None, port)
    tree, snippet = work / "published", work / "published-nginx.conf"
    t0 = time.perf_counter()
    timed([*ours, "ocsppublish", "-db-config", "ours.json", *SIGNER, "-dir", str(tree), "-nginx", str(snippet)], work)
    print(f"ocsppublish: the tree for nginx written in {time.perf_counter() - t0:.1f} s (bench/publish.py times the publisher)")
    (work / "nginx-temp").mkdir(exist_ok=True)
    conf = work / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""  # as root, nginx's workers would drop to nobody
    conf.write_text(
        f"""{user}daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/nginx-temp; proxy_temp_path {work}/nginx-temp; fastcgi_temp_path {work}/nginx-temp;
    uwsgi_temp_path {work}/nginx-temp; scgi_temp_path {work}/nginx-temp;
    server {{
        listen 127.0.0.1:{port};
        include {snippet};
    }}
}}
"""
    )
    return Server("nginx (ocsppublish tree)", (nginx, "-e", str(work / "nginx-error.log"), "-c", str(conf)), port)


def ocspserve_cells(
    pki: PKI, parts: set[str], peers: list[Peer], ours: list[str], workers: int, n_requests: int, work: Path
) -> list[HttpCell]:
    """The cells of the parts asked for; every request for a serial of the database (a sample, fixed seed)."""
    chosen = random.Random(2).sample(pki.certs, min(n_requests, len(pki.certs)))
    ders = [
        ocsp.OCSPRequestBuilder().add_certificate(c, pki.ca, hashes.SHA1()).build().public_bytes(serialization.Encoding.DER) for c in chosen
    ]
    serials = [c.serial_number for c in chosen]
    post = Load("POST", ("/",), tuple(ders), OCSP_REQUEST)
    get = [(urllib.parse.quote(base64.b64encode(der).decode(), safe=""), serial) for der, serial in zip(ders, serials, strict=True)]
    get = [(path, serial) for path, serial in get if "//" not in "/" + urllib.parse.unquote(path)]
    servers = servers_for(["ocspserve", "-responses", "responses"], peers, ours, workers)
    live = ["ocspserve", "-db-config", "ours.json", *SIGNER]
    modes: tuple[Server, ...] = (
        cfsslpy_server("cfsslpy -db-config", ours, ["ocspserve", "-db-config", "ours.json"], workers),
        cfsslpy_server("cfsslpy live", ours, live, workers),
        cfsslpy_server("cfsslpy live ttl 0", ours, [*live, "-cache-ttl", "0"], workers),
    )
    cells = []
    if "ocsp-post" in parts:
        cells.append(HttpCell("ocsp-post", post, ocsp_check(serials, pki.revoked), servers, goal=1.0))
    if "ocsp-get" in parts:
        load = Load("GET", tuple("/" + path for path, _ in get))
        cells.append(HttpCell("ocsp-get", load, ocsp_check([s for _, s in get], pki.revoked), (*servers, nginx_server(ours, work))))
    if "ocsp-modes" in parts:
        cells.append(HttpCell("ocsp-modes", post, ocsp_check(serials, pki.revoked), modes))
    return cells


def write_responses(cfssl: str | None, ours: list[str], work: Path) -> str:
    """work/responses, the -responses file: cfssl 1.2.0's ocspdump of its refreshed database, else ours'."""
    if cfssl:
        dump, source = timed([cfssl, "ocspdump", "-db-config", "theirs.json"], work)[1], "cfssl 1.2.0 ocspdump"
    else:
        dump, source = timed([*ours, "ocspdump", "-db-config", "ours.json"], work)[1], "cfsslpy ocspdump"
    (work / "responses").write_bytes(dump)
    sizes = [len(base64.b64decode(line)) for line in dump.split()]
    return f"-responses file from {source}: {len(sizes)} responses, {statistics.median(sizes):.0f} bytes each"


# ---------------------------------------------------------------------------------------------------------
# 3. crl


def crl_part(ours: list[str], cfssl165: str | None, work: Path, pki: PKI, certs: int, rounds: int, startup: float) -> list[str]:
    """``crl`` of the revoked rows by ours and cfssl 1.6.5 (with SQLite), alternating; 1.2.0 has no crl command."""
    conf = copy_db(work, "pristine", "crl")
    args = ["crl", "-db-config", conf.name, "-ca", "ca.pem", "-ca-key", "ca-key.pem"]
    tools = [("cfssl 1.6.5", [cfssl165])] if cfssl165 else []
    tools.append(("cfsslpy", ours))
    times: dict[str, list[float]] = {label: [] for label, _ in tools}
    anomalies = []
    n_revoked = len(pki.revoked)
    for _ in range(rounds):
        for label, cmd in tools:
            elapsed, out = timed([*cmd, *args], work)
            times[label].append(elapsed)
            der = base64.b64decode(out)
            listed = len(list(x509.load_der_x509_crl(der)))
            if listed != n_revoked:
                anomalies.append(f"{label} crl lists {listed} certificates, the database has {n_revoked} revoked")
    print(f"crl (cfssl 1.2.0 has no crl command): {n_revoked} revoked rows of {certs}, median of {rounds}, tools alternating")
    med = statistics.median(times["cfsslpy"])
    for label, _ in tools:
        m = statistics.median(times[label])
        print(f"{label} crl: {m:.2f} s ({n_revoked / m:,.0f} revoked rows/s)")
    base = statistics.median(times["cfssl 1.6.5"]) if cfssl165 else None
    print(
        f"cfsslpy: {med - startup:.2f} s above start-up; vs 1.6.5: {f'{med / base:.2f}x' if base else 'absent'} (time ratio, lower is better)"
    )
    return sorted(set(anomalies))


# ---------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.add_argument("--certs", type=int, default=2000, help="certificates in the database (default %(default)s)")
    parser.add_argument("--revoked", type=float, default=0.1, help="share of them revoked (default %(default)s)")
    parser.add_argument("--requests", type=int, default=256, help="distinct OCSP requests wrk cycles through (default %(default)s)")
    parser.add_argument("--only", choices=PARTS, action="append", help="one part only (repeatable)")
    parser.add_argument("--cfssl165-sqlite", help="cfssl 1.6.5 with SQLite, for ocsprefresh (default: cfssl-libsqlite3 beside --cfssl165)")
    args = parser.parse_args()
    parts = set(args.only or PARTS)
    http = bool(parts & {"ocsp-post", "ocsp-get", "ocsp-modes"})
    opts = WrkOptions.from_args(args)
    peers = find_peers(args)
    ours = cfsslpy_command(args.pyz)
    cfssl = peers[0].path  # 1.2.0: ocsprefresh and ocspdump
    # 1.6.5's ocsprefresh: its static cfssl cannot open SQLite, its cgo build beside it can
    sqlite165 = args.cfssl165_sqlite or (str(Path(peers[1].path).parent / "cfssl-libsqlite3") if peers[1].path else "")
    cfssl165 = shutil.which(sqlite165) if sqlite165 else None
    began = time.monotonic()
    print_header(peers, ours, opts if http else None)
    findings = Findings()
    with tempfile.TemporaryDirectory(prefix="cfsslpy-bench-ocsp-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        pki = build_db(work, args.certs, args.revoked)
        print(
            f"certdb: SQLite, {args.certs} certificates ({len(pki.revoked)} revoked) of one EC P-256 CA (its own OCSP responder); "
            f"built in {time.perf_counter() - t0:.1f} s"
        )
        timed([*ours, "version"], work)  # a pyz unpacks its libraries on its first run: not timed below
        startup = statistics.median(timed([*ours, "version"], work)[0] for _ in range(3))
        print(f"cfsslpy start-up (`version`): {startup * 1e3:.0f} ms, included in every cfsslpy command time below")
        print()
        if "ocsprefresh" in parts or http:  # ocspserve needs the refreshed databases
            findings.anomalies += ocsprefresh_part(cfssl, cfssl165, ours, work, args.certs, args.rounds, "ocsprefresh" in parts)
        if http:
            print(write_responses(cfssl, ours, work))
            cells = ocspserve_cells(pki, parts, peers, ours, args.workers, args.requests, work)
            print_plan(cells, opts, work)
            results = run_cells(cells, opts, work, findings)
            report(cells, results, peers)
            print()
        if "crl" in parts:
            findings.anomalies += crl_part(ours, cfssl165, work, pki, args.certs, args.rounds, startup)
    findings.print()
    print(f"total bench time {time.monotonic() - began:.0f} s")
    return 1 if findings.anomalies else 0


if __name__ == "__main__":
    sys.exit(main())
