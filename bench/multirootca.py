#!/usr/bin/env python3
"""Authenticated signing under load: ``cfsslpy multirootca`` against cfssl 1.2.0's and 1.6.5's multirootca.

    .venv/bin/python bench/multirootca.py                          # EC and RSA roots; wrk -t1 -c8 -d5s, 3 rounds
    .venv/bin/python bench/multirootca.py --duration 2 --rounds 1  # a quick look
    python3 bench/multirootca.py --pyz dist/cfsslpy.pyz            # the built executable instead of `python -m cfsslpy`
    .venv/bin/python bench/multirootca.py --only authsign-rsa      # one cell

One roots file with two roots, ``ec`` (an EC P-256 CA) and ``rsa`` (an RSA 2048 CA), made as bench/serve.py
makes its sign-ec and sign-rsa CAs (``cfsslpy gencert -initca``), each with its own signing config whose
default profile requires an auth key of its own (the two configs name their keys the same way). Every path
in the roots file is absolute, since cfssl reads relative ones from its working directory and cfsslpy from
the roots file's. The same file is served at once by cfssl 1.2.0's multirootca (Debian's golang-cfssl,
``/usr/bin/multirootca``), cfssl 1.6.5's (``../shared/peers/cfssl-1.6.5/multirootca`` from the project root)
and ``cfsslpy multirootca -workers 2``, each with ``-l ec``.

Cells: POST /api/v1/cfssl/authsign of bench/serve.py's 32 ECDSA P-256 leaf CSRs in turn, as cfssl's client
sends them: the inner request ``{"certificate_request": CSR, "label": ROOT}`` in base64, and a token, the
HMAC-SHA256 of those inner bytes with that root's auth key. ``authsign-ec`` asks for root ``ec``,
``authsign-rsa`` for root ``rsa``. Before timing, every answer is checked: status 200, ``success``, and a
certificate for that CSR's host whose signature verifies with that root's CA certificate. Goal: at least
1.0x cfssl 1.6.5's requests per second in each cell.

Servers, checks, wrk load, rounds, medians, the table and the findings are bench/serve.py's (see its
docstring); the peers' multirootca binaries are found beside ``--cfssl`` and ``--cfssl165`` unless
``--multirootca`` / ``--multirootca165`` name them.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from serve import (  # noqa: E402  (bench/serve.py: the shared servers, wrk runner and report)
    JSON,
    Check,
    Findings,
    HttpCell,
    Load,
    Peer,
    Server,
    WrkOptions,
    add_arguments,
    cfsslpy_command,
    free_port,
    make_inputs,
    print_header,
    print_plan,
    report,
    run_cells,
)

AUTHSIGN = "/api/v1/cfssl/authsign"
# One auth key per root (hex, 16 bytes), under the same name in both configs: isolation must not hang on names.
AUTH_KEYS = {"ec": "0123456789ABCDEF0123456789ABCDEF", "rsa": "FFEEDDCCBBAA99887766554433221100"}
GOAL = 1.0  # cfsslpy's authsign requests/s over cfssl 1.6.5's, in each cell


def find_multirootcas(args: argparse.Namespace) -> list[Peer]:
    """cfssl 1.2.0's and 1.6.5's multirootca (by default beside that cfssl); the version is that cfssl's
    (multirootca has no version flag)."""
    peers = []
    for label, cfssl, wanted in (("1.2.0", args.cfssl, args.multirootca), ("1.6.5", args.cfssl165, args.multirootca165)):
        cfssl_path = shutil.which(cfssl)
        if wanted is None:
            wanted = str(Path(cfssl_path or cfssl).parent / "multirootca")
        path = shutil.which(wanted)
        version = ""
        if path and cfssl_path:
            out = subprocess.run([cfssl_path, "version"], capture_output=True, text=True).stdout.split("\n")[0]
            version = f"{out} per {cfssl_path}"
        peers.append(Peer(label, path, wanted, version))
    return peers


def write_roots(work: Path) -> Path:
    """``roots.conf`` in ``work`` naming the CAs ``make_inputs`` made there, a signing config each."""
    sections = []
    for label, key_hex in AUTH_KEYS.items():
        config = {
            "signing": {"default": {"auth_key": "bench", "expiry": "8760h", "usages": ["digital signature", "server auth"]}},
            "auth_keys": {"bench": {"type": "standard", "key": key_hex}},
        }
        (work / f"{label}-config.json").write_text(json.dumps(config))
        sections += [
            f"[ {label} ]",
            f"private = file://{work / f'{label}-ca-key.pem'}",
            f"certificate = {work / f'{label}-ca.pem'}",
            f"config = {work / f'{label}-config.json'}",
            "",
        ]
    roots = work / "roots.conf"
    roots.write_text("\n".join(sections))
    return roots


def authsign_bodies(sign_bodies: list[bytes], label: str) -> tuple[bytes, ...]:
    """cfssl's AuthenticatedRequest around each sign body, for root ``label``: the inner request (the CSR and
    the label) in base64, and its HMAC-SHA256 with the root's auth key as the token."""
    key = bytes.fromhex(AUTH_KEYS[label])
    out = []
    for body in sign_bodies:
        inner = json.dumps({"certificate_request": json.loads(body)["certificate_request"], "label": label}).encode()
        token = hmac.new(key, inner, hashlib.sha256).digest()
        out.append(json.dumps({"token": base64.b64encode(token).decode(), "request": base64.b64encode(inner).decode()}).encode())
    return tuple(out)


def authsign_check(ca_pem: Path) -> Check:
    """A 200 whose JSON holds a certificate for request i's host, signed by the CA of ``ca_pem``."""
    ca = x509.load_pem_x509_certificate(ca_pem.read_bytes())

    def check(i: int, data: bytes) -> str | None:
        doc = json.loads(data)
        if doc.get("success") is not True:
            return f"success={doc.get('success')!r}, errors {doc.get('errors')!r}"
        cert = x509.load_pem_x509_certificate(doc["result"]["certificate"].encode())
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if not cn or cn[0].value != f"host{i % 32}.bench.example.net":
            return f"certificate for {cert.subject.rfc4514_string()}"
        try:
            cert.verify_directly_issued_by(ca)
        except (InvalidSignature, ValueError, TypeError) as exc:
            return f"certificate for {cert.subject.rfc4514_string()} does not verify with {ca_pem.name} ({exc!r})"
        return None

    return check


def multiroot_servers(peers: list[Peer], ours: list[str], roots: Path, workers: int) -> tuple[Server, ...]:
    """cfssl 1.2.0's and 1.6.5's multirootca and ``cfsslpy multirootca -workers N`` on the same roots file."""
    servers = []
    for peer in peers:
        port = free_port()
        cmd = (peer.path, "-a", f"127.0.0.1:{port}", "-roots", str(roots), "-l", "ec") if peer.path else None
        servers.append(Server(f"cfssl {peer.label}", cmd, port, peer.label))
    port = free_port()
    cmd = (*ours, "multirootca", "-a", f"127.0.0.1:{port}", "-roots", str(roots), "-l", "ec", "-workers", str(workers))
    return (*servers, Server(f"cfsslpy -workers {workers}", cmd, port))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.add_argument("--multirootca", help="cfssl 1.2.0's multirootca (default: beside --cfssl)")
    parser.add_argument("--multirootca165", help="cfssl 1.6.5's multirootca (default: beside --cfssl165)")
    parser.add_argument("--only", choices=["authsign-ec", "authsign-rsa"], action="append", help="one cell only (repeatable)")
    args = parser.parse_args()
    opts = WrkOptions.from_args(args)
    peers = find_multirootcas(args)
    ours = cfsslpy_command(args.pyz)
    began = time.monotonic()
    print_header(peers, [*ours, "multirootca"], opts)
    with tempfile.TemporaryDirectory(prefix="cfsslpy-bench-multirootca-") as tmp:
        work = Path(tmp)
        sign_bodies = make_inputs(work, ours)
        roots = write_roots(work)
        servers = multiroot_servers(peers, ours, roots, args.workers)
        cells = [
            HttpCell(
                f"authsign-{label}",
                Load("POST", (AUTHSIGN,), authsign_bodies(sign_bodies, label), JSON),
                authsign_check(work / f"{label}-ca.pem"),
                servers,
                goal=GOAL,
            )
            for label in AUTH_KEYS
            if not args.only or f"authsign-{label}" in args.only
        ]
        print("inputs: EC P-256 and RSA 2048 CAs (cfsslpy gencert -initca) as roots 'ec' and 'rsa', each with its own auth key;")
        print(f"  32 ECDSA P-256 CSRs; roots file {roots}:")
        print("".join(f"    {line}\n" for line in roots.read_text().splitlines() if line))
        print_plan(cells, opts, work)
        findings = Findings()
        results = run_cells(cells, opts, work, findings)
    missed = report(cells, results, peers)
    findings.print()
    print(f"goals missed: {', '.join(missed) if missed else 'none'}")
    print(f"total bench time {time.monotonic() - began:.0f} s")
    return 1 if findings.anomalies else 0


if __name__ == "__main__":
    sys.exit(main())
