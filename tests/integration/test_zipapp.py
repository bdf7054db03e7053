"""The built executable, run the way users run it: ``./cfsslpy.pyz`` through its shebang, by an empty venv's
interpreter (no site-packages: everything must come from inside the pyz), with a read-only or missing HOME
and an environment reduced to PATH and LANG.

The pyz is built once per session (integration/pyz.py); a second pair of builds checks that the build is
reproducible. Every run gets its own TMPDIR, so the caches it unpacks are this module's own. The universal
side (every interpreter, every target, locked-down hosts, damaged caches) is in test_pyz_universal.py. Under a root user, the runs drop CAP_DAC_OVERRIDE (``setpriv``), otherwise root
could write into a 0555 HOME and the fallback would never be exercised.

With SoftHSM2 (marker ``softhsm``), the pyz also signs with keys on a throwaway token (integration/softhsm.py):
python-pkcs11 must come from inside the pyz too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from integration.pyz import ROOT, Run, build, built_pyz, manifest
from integration.softhsm import SoftHSM, softhsm

from tests.conftest import REQUIRE_INTEGRATION, need

__all__ = ["softhsm", "built_pyz"]  # the session fixtures, imported for pytest

pytestmark = [pytest.mark.integration, pytest.mark.zipapp]

# Stays uid 0 but obeys file modes, so a 0555 HOME is really read-only.
DROP_DAC = ["--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]


@dataclass
class Sandbox:
    base: Path
    pyz: Path
    cfssljson: Path
    bin: Path  # the empty venv's bin/, first on PATH, so the shebang's `env python3` finds it
    home: Path  # chmod 0555
    prefix: list[str]
    tmpdir: Path  # TMPDIR of every run

    def run(self, *args: str, env: dict[str, str], stdin: str = "", cwd: Path | None = None, program: Path | None = None) -> Run:
        full_env = {"PATH": f"{self.bin}:/usr/bin:/bin", "LANG": "C.UTF-8", "TMPDIR": str(self.tmpdir), **env}
        result = subprocess.run(
            [*self.prefix, str(program or self.pyz), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=full_env,
            cwd=cwd or self.base,
            timeout=120,
        )
        assert "Traceback" not in result.stderr, result.stderr
        return Run(result.returncode, result.stdout, result.stderr)

    def ro_home(self) -> dict[str, str]:
        return {"HOME": str(self.home)}

    @property
    def tmp_cache(self) -> Path:
        """Where the launcher unpacks when neither HOME nor XDG_CACHE_HOME is usable."""
        return self.tmpdir / f"cfsslpy-{os.geteuid()}"

    def cache_dirs(self, root: Path) -> list[Path]:
        return sorted(root.glob("cfsslpy-*-*/site-packages"))


def _unprivileged_prefix() -> list[str]:
    """Nothing for a normal user; for root, setpriv without CAP_DAC_OVERRIDE (if the container allows it)."""
    if os.geteuid() != 0:
        return []
    prefix = [need("setpriv", "setpriv (util-linux) is needed to run as root without CAP_DAC_OVERRIDE"), *DROP_DAC]
    probe = subprocess.run([*prefix, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        message = f"cannot drop CAP_DAC_OVERRIDE here (no CAP_SETPCAP?): {probe.stderr.strip()}"
        pytest.fail(message) if REQUIRE_INTEGRATION else pytest.skip(message)
    return prefix


@pytest.fixture(scope="module")
def sandbox(built_pyz: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    prefix = _unprivileged_prefix()
    base = tmp_path_factory.mktemp("zipapp")
    pyz = base / "cfsslpy.pyz"
    shutil.copy2(built_pyz, pyz)
    cfssljson = base / "cfssljson"
    cfssljson.symlink_to(pyz.name)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(base / "venv")], check=True, timeout=120)
    home = base / "home"
    home.mkdir()
    home.chmod(0o555)
    tmpdir = base / "tmp"
    tmpdir.mkdir()
    yield Sandbox(base, pyz, cfssljson, base / "venv" / "bin", home, prefix, tmpdir)
    home.chmod(0o755)


def test_bundle_holds_runtime_deps_and_assets_only(built_pyz: Path) -> None:
    document = manifest(built_pyz)
    with zipfile.ZipFile(built_pyz) as zf:
        names = zf.namelist()
    assert names[:3] == ["__main__.py", "cfsslpy-manifest.json", "sbom.cdx.json"]
    assert all(name.startswith("blobs/") for name in names[3:])
    for pair, own in document["pairs"].items():
        files = {entry[0] for entry in document["common"] + own}
        tops = {name.split("/")[0] for name in files}
        assert {"cfsslpy", "cfsslpy_assets", "cryptography", "pkcs11", "bottle.py", "httptools", "pg8000"} <= tops, pair
        assert "cfsslpy_assets/defaults/csr.json" in files
        assert not {t for t in tops if t.split("-")[0] in ("pytest", "_pytest", "shiv", "pkilint", "pip", "setuptools", "selenium")}, pair
        assert not any(name.endswith((".pyc", ".pyo")) or "__pycache__" in name for name in files), pair
    assert built_pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert os.access(built_pyz, os.X_OK)
    assert built_pyz.stat().st_size <= 40_000_000, "the pyz must stay within 40 MB"


@pytest.mark.parametrize("home", ["read-only", "unset"])
def test_version_without_usable_home(sandbox: Sandbox, home: str) -> None:
    env = sandbox.ro_home() if home == "read-only" else {}
    result = sandbox.run("version", env=env)
    assert result.status == 0, result.stderr
    assert result.stdout.startswith("Version:")
    assert f"Runtime: python{sys.version_info[0]}.{sys.version_info[1]}." in result.stdout  # the venv's, from inside the pyz
    assert list(sandbox.home.iterdir()) == []
    (cache,) = sandbox.cache_dirs(sandbox.tmp_cache)
    mode = sandbox.tmp_cache.stat()
    assert stat.S_IMODE(mode.st_mode) == 0o700 and mode.st_uid == os.geteuid()
    assert any(cache.rglob("__pycache__/*.pyc")), "the interpreter caches bytecode next to the unpacked sources"


def test_xdg_cache_home_is_used_before_tmp(sandbox: Sandbox, tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    (tmp_path / "tmp").mkdir()  # an empty TMPDIR: a tree unpacked there by an earlier test would be used as it is
    result = sandbox.run("version", env={**sandbox.ro_home(), "XDG_CACHE_HOME": str(xdg), "TMPDIR": str(tmp_path / "tmp")})
    assert result.status == 0, result.stderr
    assert sandbox.cache_dirs(xdg / "cfsslpy")
    assert list((tmp_path / "tmp").iterdir()) == []
    assert stat.S_IMODE((xdg / "cfsslpy").stat().st_mode) == 0o700


def test_shared_cache_directory_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    """Code is executed from the cache: a group/world-writable one must not be used."""
    xdg = tmp_path / "xdg"
    unsafe = xdg / "cfsslpy"
    unsafe.mkdir(parents=True)
    unsafe.chmod(0o777)
    result = sandbox.run("version", env={**sandbox.ro_home(), "XDG_CACHE_HOME": str(xdg)})
    assert result.status == 0, result.stderr
    assert list(unsafe.iterdir()) == []
    assert sandbox.cache_dirs(sandbox.tmp_cache)


def test_print_defaults_csr_is_embedded(sandbox: Sandbox) -> None:
    result = sandbox.run("print-defaults", "csr", env=sandbox.ro_home())
    assert result.status == 0, result.stderr
    assert json.loads(result.stdout) == json.loads((ROOT / "assets" / "defaults" / "csr.json").read_text())


def test_initca_then_server_certificate(sandbox: Sandbox, tmp_path: Path) -> None:
    env = sandbox.ro_home()
    (tmp_path / "ca-csr.json").write_text(
        json.dumps({"CN": "zipapp test CA", "key": {"algo": "ecdsa", "size": 256}, "names": [{"O": "cfsslpy"}]})
    )
    ca = sandbox.run("gencert", "-initca", "ca-csr.json", env=env, cwd=tmp_path)
    assert ca.status == 0, ca.stderr
    ca_cert = x509.load_pem_x509_certificate(ca.json["cert"].encode())
    assert ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ca_cert.verify_directly_issued_by(ca_cert)
    (tmp_path / "ca.pem").write_text(ca.json["cert"])
    (tmp_path / "ca-key.pem").write_text(ca.json["key"])

    server_csr = {"CN": "www.example.net", "hosts": ["www.example.net", "127.0.0.1"], "key": {"algo": "rsa", "size": 2048}}
    (tmp_path / "server-csr.json").write_text(json.dumps(server_csr))
    server = sandbox.run("gencert", "-ca", "ca.pem", "-ca-key", "ca-key.pem", "server-csr.json", env=env, cwd=tmp_path)
    assert server.status == 0, server.stderr
    cert = x509.load_pem_x509_certificate(server.json["cert"].encode())
    cert.verify_directly_issued_by(ca_cert)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ExtendedKeyUsageOID.SERVER_AUTH in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == [
        "www.example.net"
    ]
    key = serialization.load_pem_private_key(server.json["key"].encode(), None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]


def test_symlink_named_cfssljson_splits(sandbox: Sandbox, tmp_path: Path) -> None:
    env = sandbox.ro_home()
    (tmp_path / "csr.json").write_text(json.dumps({"CN": "split me", "key": {"algo": "ecdsa", "size": 256}}))
    generated = sandbox.run("gencert", "-initca", "csr.json", env=env, cwd=tmp_path)
    assert generated.status == 0, generated.stderr
    split = sandbox.run("-bare", "ca", env=env, stdin=generated.stdout, cwd=tmp_path, program=sandbox.cfssljson)
    assert split.status == 0, split.stderr
    assert x509.load_pem_x509_certificate((tmp_path / "ca.pem").read_bytes()).subject.rfc4514_string() == "CN=split me"
    x509.load_pem_x509_csr((tmp_path / "ca.csr").read_bytes())
    serialization.load_pem_private_key((tmp_path / "ca-key.pem").read_bytes(), None)
    assert stat.S_IMODE((tmp_path / "ca-key.pem").stat().st_mode) == 0o600


def test_bad_input_is_a_cfssl_json_error(sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "csr.json").write_text(json.dumps({"CN": "x", "key": {"algo": "foo"}}))
    result = sandbox.run("gencert", "-initca", "csr.json", env=sandbox.ro_home(), cwd=tmp_path)
    assert result.status == 1
    assert result.stdout == ""
    error = json.loads(result.stderr.strip().splitlines()[-1])
    assert error == {"code": 2400, "message": "invalid algorithm"}  # what cfssl 1.2 prints for this input


@pytest.mark.softhsm
@pytest.mark.openssl
def test_pkcs11_token_keys_from_the_pyz(softhsm: SoftHSM, sandbox: Sandbox, tmp_path: Path) -> None:
    """token list, gencert -initca, sign, gencrl and ocspsign with ``pkcs11:`` URIs, run by the built pyz; openssl checks."""
    openssl = need("openssl")
    env = {**sandbox.ro_home(), "SOFTHSM2_CONF": str(softhsm.conf)}

    def check(*args: str) -> str:
        proc = subprocess.run([openssl, *args], capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout + proc.stderr

    listed = sandbox.run("token", "list", "-module", softhsm.module, env=env)
    assert listed.status == 0, listed.stderr
    assert softhsm.label in [s.get("token", {}).get("label") for s in json.loads(listed.stdout)["slots"]], listed.stdout

    leaf_key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "leaf.csr").write_bytes(
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf.example.net")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("leaf.example.net")]), critical=False)
        .sign(leaf_key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    for name in ("ec", "rsa"):  # ECDSA and RSA PKCS#1 v1.5 mechanisms through the bundled python-pkcs11
        uri = softhsm.key_uri(name)
        (tmp_path / "ca-csr.json").write_text(json.dumps({"CN": f"zipapp token CA {name}", "names": [{"O": "cfsslpy"}]}))
        ca = sandbox.run("gencert", "-initca", "-ca-key", uri, "ca-csr.json", env=env, cwd=tmp_path)
        assert ca.status == 0, ca.stderr
        assert set(ca.json) == {"cert", "csr"}  # no key: it stays on the token
        (tmp_path / "ca.pem").write_text(ca.json["cert"])
        assert "ca.pem: OK" in check("verify", "-CAfile", "ca.pem", "ca.pem")

        signed = sandbox.run("sign", "-ca", "ca.pem", "-ca-key", uri, "leaf.csr", env=env, cwd=tmp_path)
        assert signed.status == 0, signed.stderr
        (tmp_path / "leaf.pem").write_text(signed.json["cert"])
        assert "leaf.pem: OK" in check("verify", "-CAfile", "ca.pem", "leaf.pem")
        serial = x509.load_pem_x509_certificate(signed.json["cert"].encode()).serial_number

        (tmp_path / "serials.txt").write_text(f"{serial}\n")
        crl = sandbox.run("gencrl", "serials.txt", "ca.pem", uri, "3600", env=env, cwd=tmp_path)
        assert crl.status == 0, crl.stderr
        (tmp_path / "crl.der").write_bytes(base64.b64decode(crl.stdout))  # cfssl's format: base64 DER
        out = check("crl", "-inform", "DER", "-in", "crl.der", "-CAfile", "ca.pem", "-noout", "-text")
        assert "verify OK" in out and format(serial, "X") in out.replace(":", "").upper(), out

        args = ["-ca", "ca.pem", "-responder", "ca.pem", "-responder-key", uri, "-cert", "leaf.pem", "-status", "revoked"]
        resp = sandbox.run("ocspsign", *args, "-reason", "keyCompromise", env=env, cwd=tmp_path)
        assert resp.status == 0, resp.stderr
        (tmp_path / "resp.der").write_bytes(base64.b64decode(resp.json["ocspResponse"]))
        out = check("ocsp", "-respin", "resp.der", "-issuer", "ca.pem", "-cert", "leaf.pem", "-CAfile", "ca.pem", "-resp_text")
        assert "Response verify OK" in out and "leaf.pem: revoked" in out and "Reason: keyCompromise" in out, out
    assert list(sandbox.home.iterdir()) == []


def test_build_is_reproducible(tmp_path: Path) -> None:
    """Two builds of the same tree are byte-identical (epoch pinned: a commit landing between them must not count)."""
    epoch = (
        subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%ct"], capture_output=True, text=True).stdout.strip() or "315532800"
    )
    first = build(tmp_path / "one" / "cfsslpy.pyz", epoch)
    second = build(tmp_path / "two" / "cfsslpy.pyz", epoch)
    if first.read_bytes() != second.read_bytes():
        with zipfile.ZipFile(first) as a, zipfile.ZipFile(second) as b:
            digests = [
                {i.filename: (hashlib.sha256(z.read(i)).hexdigest(), i.external_attr, i.date_time) for i in z.infolist()} for z in (a, b)
            ]
        differing = sorted(k for k in digests[0].keys() | digests[1].keys() if digests[0].get(k) != digests[1].get(k))
        pytest.fail(f"builds differ in {len(differing)} entries: {differing[:20]}")
