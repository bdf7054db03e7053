"""json-split against the real cfssljson (2016 build): same inputs give byte-identical files with the same modes.

Both apply the umask to new files; cfssljson creates certificates 0664 and we 0644, so both run under
``umask 022`` (the usual one), where the modes agree.
"""

from __future__ import annotations

import base64
import json
import os
import random
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.cli.errlines import without_hints
from tests.conftest import RunCli, need

pytestmark = [pytest.mark.integration, pytest.mark.cfssl]


def files(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), stat.S_IMODE(p.stat().st_mode)) for p in sorted(directory.iterdir())}


def real_cfssljson(args: list[str], stdin: bytes, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    tool = need("cfssljson")
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["sh", "-c", 'umask 022; exec "$0" "$@"', tool, *args], input=stdin, cwd=cwd, capture_output=True, timeout=60)


@pytest.fixture
def cfssl_initca(tmp_path: Path) -> dict[str, Any]:
    cfssl = need("cfssl")
    spec = tmp_path / "ca-csr.json"
    spec.write_text(json.dumps({"CN": "interop CA", "names": [{"O": "cfsslpy"}], "key": {"algo": "ecdsa", "size": 256}}))
    proc = subprocess.run([cfssl, "gencert", "-initca", str(spec)], capture_output=True, timeout=60, check=True)
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def compare(run_cli: RunCli, tmp_path: Path, args: list[str], stdin: bytes) -> dict[str, tuple[bytes, int]]:
    theirs_dir, ours_dir = tmp_path / "theirs", tmp_path / "ours"
    ours_dir.mkdir(parents=True)
    proc = real_cfssljson(args, stdin, theirs_dir)
    old = os.umask(0o022)
    try:
        ours = run_cli("json-split", *args, stdin=stdin, cwd=ours_dir)
    finally:
        os.umask(old)
    assert proc.returncode == 0, proc.stderr
    assert ours.status == 0, ours.stderr
    assert ours.stdout == proc.stdout.decode()
    assert files(ours_dir) == files(theirs_dir)
    return files(ours_dir)


def test_real_gencert_initca_output_bare(run_cli: RunCli, tmp_path: Path, cfssl_initca: dict[str, Any]) -> None:
    stdin = json.dumps(cfssl_initca).encode()
    got = compare(run_cli, tmp_path, ["-bare", "ca"], stdin)
    assert {name: mode for name, (_, mode) in got.items()} == {"ca.pem": 0o644, "ca-key.pem": 0o600, "ca.csr": 0o644}


def test_real_gencert_initca_output_stdout(run_cli: RunCli, tmp_path: Path, cfssl_initca: dict[str, Any]) -> None:
    compare(run_cli, tmp_path, ["-bare", "-stdout"], json.dumps(cfssl_initca).encode())


def test_api_style_envelope(run_cli: RunCli, tmp_path: Path, cfssl_initca: dict[str, Any]) -> None:
    result = {
        "certificate": cfssl_initca["cert"],
        "certificate_request": cfssl_initca["csr"],
        "private_key": cfssl_initca["key"],
        "sums": {"certificate": {"md5": "x", "sha-1": "y"}},
    }
    stdin = json.dumps({"success": True, "result": result, "errors": [], "messages": [{"code": 5300, "message": "m"}]}).encode()
    compare(run_cli, tmp_path, ["srv"], stdin)


def test_ocsp_response(run_cli: RunCli, tmp_path: Path) -> None:
    der = bytes(random.Random(7).randrange(256) for _ in range(1500))
    stdin = json.dumps({"ocspResponse": base64.b64encode(der).decode()}).encode()
    got = compare(run_cli, tmp_path, ["-bare", "leaf"], stdin)
    assert got == {"leaf-response.der": (der, 0o644)}
    compare(run_cli, tmp_path / "stdout", ["-bare", "-stdout"], stdin)


def test_every_2016_field_with_edge_values(run_cli: RunCli, tmp_path: Path) -> None:
    obj = {
        "cert": "C\u00e9\ud800\n",
        "key": "",
        "private_key": "hidden by the empty key",
        "encrypted_key": "ENC",
        "certificate_request": "R",
        "bundle": "-----BEGIN CERTIFICATE-----\n",
        "ocspResponse": "AAEC\nAA==",
        "crt": "ignored",
    }
    stdin = json.dumps(obj).encode()
    compare(run_cli, tmp_path / "files", ["-bare", "x"], stdin)
    compare(run_cli, tmp_path / "stdout", ["-bare", "-stdout"], stdin)
    compare(run_cli, tmp_path / "empty", ["-bare", "y"], json.dumps({"encrypted_key": "", "bundle": "", "ocspResponse": ""}).encode())


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        ([], json.dumps({"success": False, "errors": [{"code": 1, "message": "one"}, None, {"message": "three"}]}).encode()),
        ([], b"{}"),
        ([], b'{"success":"yes"}'),
        ([], b'{"success":true,"result":[1]}'),
        ([], b'{"success":false,"errors":[{"int":1.5,"message":"m"}]}'),
        ([], b'{"success":false,"errors":["x"]}'),
        ([], b'{"success":false,"messages":[{"int":"1"}]}'),
        (["-bare"], b""),
        (["-bare"], b"[1]"),
        (["-bare"], b'{"ocspResponse":"AA EC"}'),
        (["-bare"], b'{"ocspResponse":"AAE"}'),
        (["-f", "missing.json"], b""),
    ],
)
def test_same_error_text_and_status(run_cli: RunCli, tmp_path: Path, args: list[str], stdin: bytes) -> None:
    proc = real_cfssljson(args, stdin, tmp_path / "theirs")
    ours = run_cli("json-split", *args, stdin=stdin, cwd=tmp_path / "theirs")
    assert (ours.status, ours.stdout, without_hints(ours.stderr)) == (proc.returncode, proc.stdout.decode(), proc.stderr.decode())
    assert list((tmp_path / "theirs").iterdir()) == []


def test_base64_decoder_matches_go(run_cli: RunCli, tmp_path: Path) -> None:
    rnd = random.Random(1)
    cases = ["\n", "QQ==\r\n", "QQ=\n=", "AA==A", "A===", "AAAA=", "é"]
    cases += ["".join(rnd.choice("AB+/=\n\r x") for _ in range(rnd.randint(1, 12))) for _ in range(60)]
    for text in cases:
        stdin = json.dumps({"ocspResponse": text}).encode()
        proc = real_cfssljson(["-bare", "-stdout"], stdin, tmp_path)
        ours = run_cli("json-split", "-bare", "-stdout", stdin=stdin, cwd=tmp_path)
        assert (ours.status, ours.stdout, without_hints(ours.stderr)) == (proc.returncode, proc.stdout.decode(), proc.stderr.decode()), (
            repr(text)
        )


def test_our_initca_output_split_by_real_cfssljson(run_cli: RunCli, tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    spec = tmp_path / "csr.json"
    spec.write_text(json.dumps({"CN": "cfsslpy CA", "key": {"algo": "rsa", "size": 2048}}))
    made = run_cli("gencert", "-initca", str(spec), cwd=tmp_path)
    assert made.status == 0, made.stderr
    proc = real_cfssljson(["-bare", "ca"], made.stdout.encode(), tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    got = files(tmp_path / "out")
    assert {name: mode for name, (_, mode) in got.items()} == {"ca.pem": 0o644, "ca-key.pem": 0o600, "ca.csr": 0o644}
    cert = x509.load_pem_x509_certificate(got["ca.pem"][0])
    key = load_pem_private_key(got["ca-key.pem"][0], None)
    assert cert.public_key() == key.public_key()
    assert x509.load_pem_x509_csr(got["ca.csr"][0]).is_signature_valid
