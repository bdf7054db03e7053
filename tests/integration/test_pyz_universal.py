"""The universal pyz: every target inside it, run under every CPython this machine has, and its launcher on
hosts that make unpacking hard (no HOME, noexec tmp, a cache a tmp cleaner has half deleted, old builds).

- Static checks: every (version, machine) target is present; each ELF file's machine type is its target's;
  no ELF file needs a GLIBC_ symbol version above 2.28 (``readelf -V``); the extension modules are the
  target's; the manifest and SBOM agree with requirements.lock.
- Under each installed CPython 3.10-3.14 (pyenv's, Debian's): version, gencert -initca, sign, ocspsign,
  json-split and a PKCS#11 sign through SoftHSM2, each checked with cryptography and openssl. A version that
  is not installed is skipped; CFSSLPY_REQUIRE_INTEGRATION=1 requires 3.10-3.13.
- Unsupported interpreters and platforms: one line on stderr, exit 1.
- The launcher: noexec TMPDIR and missing HOME (a private mount namespace with noexec tmpfs mounts),
  partial deletion, concurrent first runs, pruning of other builds.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509 import ocsp
from integration.pyz import MACHINE, REQUIRED, ROOT, SUPPORTED, built_pyz, interpreters, manifest, run_pyz
from integration.softhsm import SoftHSM, softhsm

from tests.conftest import REQUIRE_INTEGRATION, need

__all__ = ["built_pyz", "softhsm"]

pytestmark = [pytest.mark.integration, pytest.mark.zipapp]

ELF_MACHINES = {"x86_64": "Advanced Micro Devices X86-64", "aarch64": "AArch64"}
PAIRS = [f"cp{v.replace('.', '')}-{m}" for m in ELF_MACHINES for v in SUPPORTED]


def _missing(message: str) -> None:
    if REQUIRE_INTEGRATION:
        pytest.fail(f"{message} (required: CFSSLPY_REQUIRE_INTEGRATION=1)")
    pytest.skip(message)


# -- static checks ------------------------------------------------------------------------------------------


def test_every_target_is_carried(built_pyz: Path) -> None:
    document = manifest(built_pyz)
    assert sorted(document["pairs"]) == sorted(PAIRS)
    assert document["glibc"] == [2, 28]
    for pair, own in document["pairs"].items():
        version, machine = pair[2:].split("-")
        extensions = [rel for rel, *_ in document["common"] + own if rel.endswith(".so")]
        by_name = {rel.split("/")[-1].split(".")[0]: rel for rel in extensions}
        assert {"_cffi_backend", "_rust", "_pkcs11"} <= set(by_name), (pair, extensions)
        assert by_name["_rust"].endswith(".abi3.so")  # cryptography: the stable ABI, one file per machine
        for name in ("_cffi_backend", "_pkcs11"):
            assert by_name[name].endswith(f".cpython-{version}-{machine}-linux-gnu.so"), (pair, by_name[name])
        assert not any(f"cpython-{other}" in rel for rel in extensions for other in ("310", "311", "312", "313", "314") if other != version)
    # cryptography's library is the same file for every version of a machine: stored once
    rust = {pair: next(e[1] for e in own if e[0].endswith("_rust.abi3.so")) for pair, own in document["pairs"].items()}
    assert len(set(rust.values())) == len(ELF_MACHINES)


def test_elf_machine_types_and_glibc_versions(built_pyz: Path, tmp_path: Path) -> None:
    readelf = need("readelf", "readelf (binutils) reads the ELF headers and symbol versions")
    document = manifest(built_pyz)
    checked = 0
    with zipfile.ZipFile(built_pyz) as archive:
        for pair, own in document["pairs"].items():
            machine = pair.split("-")[1]
            for rel, digest, *_ in document["common"] + own:
                data = archive.read(f"blobs/{digest}")
                if not data.startswith(b"\x7fELF"):
                    continue
                path = tmp_path / digest
                path.write_bytes(data)
                header = subprocess.run([readelf, "-h", str(path)], capture_output=True, text=True, check=True).stdout
                found = re.search(r"Machine:\s+(.+)", header)
                assert found and found.group(1).strip() == ELF_MACHINES[machine], (pair, rel, found and found.group(1))
                versions = subprocess.run([readelf, "-V", "-W", str(path)], capture_output=True, text=True, check=True).stdout
                needed = {(int(a), int(b)) for a, b in re.findall(r"GLIBC_(\d+)\.(\d+)", versions)}
                assert needed and max(needed) <= (2, 28), (pair, rel, max(needed))
                checked += 1
    assert checked >= 3 * len(PAIRS)


def test_manifest_and_sbom_come_from_the_lock(built_pyz: Path) -> None:
    lock = (ROOT / "requirements.lock").read_text()
    runtime = lock.split("# [runtime]", 1)[1].split("# [tools]", 1)[0]
    locked = set(re.findall(r"--hash=sha256:([0-9a-f]{64})", runtime))
    document = manifest(built_pyz)
    wheels = {(name, digest) for files in document["wheels"].values() for name, digest in files}
    assert wheels and {digest for _, digest in wheels} <= locked
    with zipfile.ZipFile(built_pyz) as archive:
        sbom = json.loads(archive.read("sbom.cdx.json"))
        blobs = {name[6:] for name in archive.namelist() if name.startswith("blobs/")}
    assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"] == "1.6"
    assert {(c["purl"].split("file_name=")[1], c["hashes"][0]["content"]) for c in sbom["components"]} == wheels
    used = {e[1] for e in document["common"]} | {e[1] for own in document["pairs"].values() for e in own}
    assert used == blobs  # every blob is used, every used blob is there


# -- every installed interpreter ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", SUPPORTED)
def test_runs_under_each_cpython(version: str, built_pyz: Path, softhsm: SoftHSM, tmp_path: Path) -> None:
    """version, gencert -initca, sign, ocspsign, json-split and a PKCS#11 sign, under every interpreter of ``version``."""
    found = interpreters(version)
    if not found:
        message = f"CPython {version} is not installed on this machine"
        _missing(message) if version in REQUIRED else pytest.skip(message)
    openssl = need("openssl")
    for python in found:
        work = tmp_path / Path(python).as_posix().strip("/").replace("/", "_")
        work.mkdir()
        env = {"HOME": str(work), "SHIV_ROOT": str(work / "cache"), "SOFTHSM2_CONF": str(softhsm.conf)}

        def cfssl(*args: str, stdin: str = "", python: str = python, work: Path = work, env: dict[str, str] = env) -> str:
            result = run_pyz(python, built_pyz, *args, env=env, stdin=stdin, cwd=work)
            assert result.status == 0, f"{python}: cfsslpy {' '.join(args)}: {result.stderr}"
            return result.stdout

        def verify(*args: str, work: Path = work) -> str:
            result = subprocess.run([openssl, *args], capture_output=True, text=True, cwd=work, timeout=60)
            assert result.returncode == 0, result.stdout + result.stderr
            return result.stdout + result.stderr

        assert f"Runtime: python{version}." in cfssl("version")
        (work / "ca-csr.json").write_text(json.dumps({"CN": f"universal CA {version}", "key": {"algo": "ecdsa", "size": 256}}))
        cfssl("json-split", "-bare", "ca", stdin=cfssl("gencert", "-initca", "ca-csr.json"))
        (work / "leaf-csr.json").write_text(
            json.dumps({"CN": "leaf.example.net", "hosts": ["leaf.example.net"], "key": {"algo": "rsa", "size": 2048}})
        )
        cfssl("json-split", "-bare", "leaf", stdin=cfssl("genkey", "leaf-csr.json"))
        cfssl("json-split", "-bare", "leaf", stdin=cfssl("sign", "-ca", "ca.pem", "-ca-key", "ca-key.pem", "leaf.csr"))
        assert "leaf.pem: OK" in verify("verify", "-CAfile", "ca.pem", "leaf.pem")
        assert oct((work / "ca-key.pem").stat().st_mode & 0o777) == "0o600"

        answer = json.loads(
            cfssl(
                "ocspsign", "-ca", "ca.pem", "-responder", "ca.pem", "-responder-key", "ca-key.pem", "-cert", "leaf.pem", "-status", "good"
            )
        )
        response = ocsp.load_der_ocsp_response(base64.b64decode(answer["ocspResponse"]))
        leaf = x509.load_pem_x509_certificate((work / "leaf.pem").read_bytes())
        assert response.certificate_status == ocsp.OCSPCertStatus.GOOD and response.serial_number == leaf.serial_number

        (work / "token-ca.pem").write_text(softhsm_ca_pem(cfssl, softhsm, work))
        signed = json.loads(cfssl("sign", "-ca", "token-ca.pem", "-ca-key", softhsm.key_uri("ec"), "leaf.csr"))
        (work / "token-leaf.pem").write_text(signed["cert"])
        assert "token-leaf.pem: OK" in verify("verify", "-CAfile", "token-ca.pem", "token-leaf.pem")
        selfcheck = json.loads(cfssl("selfcheck"))
        assert selfcheck["problems"] == [] and selfcheck["target"] == f"cp{version.replace('.', '')}-{MACHINE}"


def softhsm_ca_pem(cfssl: object, token: SoftHSM, work: Path) -> str:
    """A CA certificate for the token's EC key, made by the pyz itself."""
    (work / "token-ca-csr.json").write_text(json.dumps({"CN": "universal token CA"}))
    made = json.loads(cfssl("gencert", "-initca", "-ca-key", token.key_uri("ec"), "token-ca-csr.json"))  # type: ignore[operator]
    cert: str = made["cert"]
    return cert


def test_unsupported_interpreters_get_one_line(built_pyz: Path, tmp_path: Path) -> None:
    old = [p for v in ("2.7", "3.6", "3.7", "3.8", "3.9") for p in interpreters(v)]
    if not old:
        pytest.skip("no CPython older than 3.10 on this machine")
    for python in old:
        result = run_pyz(python, built_pyz, "version", env={"HOME": str(tmp_path)})
        assert result.status == 1 and result.stdout == ""
        assert result.stderr.count("\n") == 1, result.stderr
        assert "runs on CPython 3.10-3.14 on Linux x86_64 or aarch64 with glibc >= 2.28" in result.stderr, result.stderr
    assert not any(tmp_path.iterdir()), "nothing is unpacked for an unsupported interpreter"


@pytest.mark.parametrize(
    "pretend, says",
    [
        ("os.uname = lambda: os.uname_result(('Linux', 'h', 'r', 'v', 'riscv64'))", "this is cpython {v} on linux riscv64"),
        ("os.confstr = lambda name: (_ for _ in ()).throw(ValueError(name))", "with a C library other than glibc"),
        ("os.confstr = lambda name: 'glibc 2.17'", "with glibc 2.17"),
        ("sys.platform = 'darwin'", "this is cpython {v} on darwin"),
        ("sys.abiflags = 't'", "this is cpython {v} (free-threaded) on linux"),
    ],
    ids=["riscv64", "musl", "old-glibc", "macos", "free-threaded"],
)
def test_unsupported_platforms_get_one_line(built_pyz: Path, tmp_path: Path, pretend: str, says: str) -> None:
    """The launcher's checks, with the host's answers replaced before it runs (runpy, as python runs a pyz)."""
    code = f"import os, sys, runpy; {pretend}; sys.argv = [{str(built_pyz)!r}, 'version']; runpy.run_path({str(built_pyz)!r}, run_name='__main__')"
    result = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=60
    )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert says.format(v=f"{sys.version_info[0]}.{sys.version_info[1]}") in result.stderr, result.stderr


# -- the launcher on difficult hosts ---------------------------------------------------------------------------


def _namespace() -> list[str]:
    unshare = need("unshare", "unshare (util-linux) makes a private mount namespace")
    probe = subprocess.run([unshare, "-m", "sh", "-c", "mount -t tmpfs -o noexec tmpfs /mnt"], capture_output=True, text=True)
    if probe.returncode != 0:
        _missing(f"cannot mount a tmpfs in a private mount namespace here: {probe.stderr.strip()}")
    return [unshare, "-m", "sh", "-ec"]


def test_noexec_everywhere_and_no_home_is_one_clear_line(built_pyz: Path) -> None:
    python = os.path.realpath(sys.executable)  # not a venv under /tmp, which the mounts below hide
    script = (  # the pyz moves to /mnt (exec-capable, this namespace only) before /tmp is hidden
        f"mount -t tmpfs tmpfs /mnt; cp {built_pyz} /mnt/cfsslpy.pyz; "
        "for d in /tmp /var/tmp /dev/shm; do mount -t tmpfs -o noexec tmpfs $d; done; cd /; "
        f"exec env -i PATH=/usr/bin:/bin HOME=/nonexistent TMPDIR=/tmp {python} /mnt/cfsslpy.pyz sign -ca x.pem -ca-key y.pem z.csr"
    )
    result = subprocess.run([*_namespace(), script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert "/tmp/cfsslpy-0: on a filesystem mounted noexec" in result.stderr.replace(f"cfsslpy-{os.geteuid()}", "cfsslpy-0")
    assert "set SHIV_ROOT to a directory" in result.stderr
    assert not os.path.exists("/nonexistent")


def test_noexec_tmpdir_falls_back_to_an_exec_capable_place(built_pyz: Path, tmp_path: Path) -> None:
    """TMPDIR on noexec tmpfs and HOME missing: /var/tmp (a fresh, exec-capable tmpfs here) is used, and sign works."""
    (tmp_path / "csr.json").write_text(json.dumps({"CN": "fallback CA", "key": {"algo": "ecdsa", "size": 256}}))
    script = (
        "mount -t tmpfs -o noexec tmpfs /mnt; mount -t tmpfs tmpfs /var/tmp; "
        f"cd {tmp_path}; env -i PATH=/usr/bin:/bin HOME=/nonexistent TMPDIR=/mnt {sys.executable} {built_pyz} gencert -initca csr.json > ca.json; "
        "echo mnt: $(ls -A /mnt); echo var: $(ls -A /var/tmp/cfsslpy-*)"
    )
    result = subprocess.run([*_namespace(), script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    cert = x509.load_pem_x509_certificate(json.loads((tmp_path / "ca.json").read_text())["cert"].encode())
    cert.verify_directly_issued_by(cert)
    listing = dict(line.split(":", 1) for line in result.stdout.splitlines())
    assert listing["var"].strip().startswith("cfsslpy-"), result.stdout  # unpacked in /var/tmp/cfsslpy-<uid>
    assert "cfsslpy-" not in listing["mnt"].replace(f"cfsslpy-{os.geteuid()}", ""), result.stdout  # nothing in noexec TMPDIR


def _tree(root: Path) -> Path:
    (tree,) = root.glob("cfsslpy-*-*")
    return tree


def test_partly_deleted_cache_is_unpacked_again(built_pyz: Path, tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "SHIV_ROOT": str(tmp_path / "cache")}
    assert run_pyz(sys.executable, built_pyz, "version", env=env).status == 0
    tree = _tree(tmp_path / "cache")
    site = tree / "site-packages"
    (rust,) = site.glob("cryptography/hazmat/bindings/_rust*.so")
    rust.unlink()  # what a tmp cleaner does to files it thinks unused
    (site / "cfsslpy" / "signer" / "local.py").unlink()
    shutil.rmtree(site / "bottle.py", ignore_errors=True)
    (site / "bottle.py").unlink(missing_ok=True)
    (tmp_path / "csr.json").write_text(json.dumps({"CN": "after cleanup", "key": {"algo": "ecdsa", "size": 256}}))
    result = run_pyz(sys.executable, built_pyz, "gencert", "-initca", "csr.json", env=env, cwd=tmp_path)
    assert result.status == 0, result.stderr
    assert rust.exists() and (site / "cfsslpy" / "signer" / "local.py").exists()
    check = run_pyz(sys.executable, built_pyz, "selfcheck", env=env)
    assert check.status == 0 and check.json["problems"] == [], check.stdout + check.stderr
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [tree.name]  # no temporary or stale trees left


def test_selfcheck_reports_a_modified_file(built_pyz: Path, tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "SHIV_ROOT": str(tmp_path / "cache")}
    assert run_pyz(sys.executable, built_pyz, "version", env=env).status == 0
    site = _tree(tmp_path / "cache") / "site-packages"
    target = site / "cfsslpy" / "pem.py"
    data = target.read_bytes()
    target.write_bytes(data[:-1] + (b"#" if data[-1:] != b"#" else b" "))  # same size: only hashing notices
    (site / "cfsslpy" / "planted.py").write_text("print('hi')\n")
    result = run_pyz(sys.executable, built_pyz, "selfcheck", env=env)
    assert result.status == 1
    problems = result.json["problems"]
    assert any(p.startswith("modified: cfsslpy/pem.py") for p in problems), problems
    assert "unexpected: cfsslpy/planted.py" in problems
    assert "problem(s) with the unpacked files" in result.stderr
    sbom = run_pyz(sys.executable, built_pyz, "selfcheck", "-sbom", env=env)
    assert sbom.status == 0 and sbom.json["bomFormat"] == "CycloneDX"
    verbose = run_pyz(sys.executable, built_pyz, "version", "-verbose", env=env)
    assert verbose.status == 0 and re.search(
        r"^  cryptography \S+  cryptography-\S+-abi3-manylinux_2_28_\w+\.whl  sha256:[0-9a-f]{64}$", verbose.stdout, re.M
    ), verbose.stdout


def test_concurrent_first_runs_share_one_tree(built_pyz: Path, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SHIV_ROOT": str(tmp_path / "cache")}
    procs = [
        subprocess.Popen([sys.executable, str(built_pyz), "version"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        for _ in range(4)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    assert all(out.startswith(b"Version:") and b"Traceback" not in err for out, err in results)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [_tree(tmp_path / "cache").name]


def test_other_builds_unused_for_a_day_are_pruned(built_pyz: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    old, recent, abandoned = (
        (cache / f"cfsslpy-{'0' * 16}-cp311-x86_64"),
        (cache / f"cfsslpy-{'1' * 16}-cp311-x86_64"),
        (cache / ".tmp-cfsslpy-x-1-ab"),
    )
    for tree in (old, recent, abandoned):
        (tree / "site-packages").mkdir(parents=True)
        (tree / ".complete").write_text("x\n")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old / ".complete", (two_days_ago, two_days_ago))
    os.utime(abandoned, (two_days_ago, two_days_ago))
    os.utime(abandoned / ".complete", (two_days_ago, two_days_ago))
    unrelated = cache / "notes.txt"
    unrelated.write_text("mine")
    result = run_pyz(sys.executable, built_pyz, "version", env={"HOME": str(tmp_path), "SHIV_ROOT": str(cache)})
    assert result.status == 0, result.stderr
    names = sorted(p.name for p in cache.iterdir())
    assert old.name not in names and abandoned.name not in names
    assert recent.name in names and unrelated.name in names and _tree_names(cache) == 2


def _tree_names(cache: Path) -> int:
    return len([p for p in cache.iterdir() if p.name.startswith("cfsslpy-")])


def test_cache_directories_are_private(built_pyz: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    result = run_pyz(sys.executable, built_pyz, "version", env={"HOME": str(home)})
    assert result.status == 0, result.stderr
    root = home / ".cache" / "cfsslpy"
    assert oct(root.stat().st_mode & 0o777) == "0o700"
    tree = _tree(root)
    assert oct(tree.stat().st_mode & 0o777) == "0o700"
    listing = (tree / ".complete").read_text().splitlines()
    assert len(listing) > 1000 and all(re.fullmatch(r"\d+ \S+", line) for line in listing[1:])
