"""Issue 11, unsafe defaults around files: json-split's modes and the umask, bounded reads, write failures under
``serve -datadir``, and ``mkbundle`` with nothing usable.

* json-split creates files with at most ``0644 & ~umask`` (keys ``0600``) and never widens a file it replaces;
  checked under umask 022 and 077, in process and in a real process.
* Every input read is bounded (64 MiB): ``/dev/zero``, a sparse file over the bound, a FIFO and standard input
  each give a coded error naming the input, quickly and without growing the process.
* A write that fails while ``serve -datadir`` sets up its directory names the file and the reason (a real full
  tmpfs where this process may mount one, an injected ENOSPC everywhere), and leaves a directory the next run
  initialises.
* ``mkbundle`` with nothing usable exits 1 with a coded error and writes nothing.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cfsslpy import datadir, inputs, jsonsplit
from cfsslpy.errors import CfsslError, PlainError
from tests import bundle_pki
from tests.conftest import RunCli, need

CERT_JSON = {"cert": "CERT\n", "key": "KEY\n", "csr": "CSR\n"}


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def run_process(*args: str, stdin: bytes = b"", mask: int | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "cfsslpy", *args]
    if mask is not None:
        command = ["sh", "-c", f'umask {mask:03o}; exec "$0" "$@"', *command]
    return subprocess.run(command, input=stdin, capture_output=True, timeout=120, cwd=cwd, check=False)


# -- json-split and the umask ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("mask", "cert_mode", "csr_mode"), [(0o022, 0o644, 0o644), (0o077, 0o600, 0o600), (0o000, 0o644, 0o644)])
def test_json_split_new_files_respect_the_umask(run_cli: RunCli, tmp_path: Path, mask: int, cert_mode: int, csr_mode: int) -> None:
    with umask(mask):
        result = run_cli("json-split", "-bare", "out", stdin=json.dumps(CERT_JSON).encode())
    assert result.status == 0, result.stderr
    assert {p.name: mode_of(p) for p in tmp_path.glob("out*")} == {"out.pem": cert_mode, "out-key.pem": 0o600, "out.csr": csr_mode}
    assert (tmp_path / "out.pem").read_bytes() == b"CERT\n"


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_json_split_never_widens_an_existing_file(run_cli: RunCli, tmp_path: Path, mask: int) -> None:
    for name, existing in {"out.pem": 0o600, "out-key.pem": 0o400, "out.csr": 0o666}.items():
        (tmp_path / name).write_bytes(b"old")
        (tmp_path / name).chmod(existing)
    with umask(mask):
        result = run_cli("json-split", "-bare", "out", stdin=json.dumps(CERT_JSON).encode())
    assert result.status == 0, result.stderr
    modes = {p.name: mode_of(p) for p in tmp_path.glob("out*")}
    # the 0600 certificate stays 0600, the 0400 key stays 0400, the 0666 request is narrowed to 0644 & ~umask
    assert modes == {"out.pem": 0o600, "out-key.pem": 0o400, "out.csr": 0o644 & ~mask}
    assert (tmp_path / "out-key.pem").read_bytes() == b"KEY\n"


@pytest.mark.parametrize(("mask", "cert_mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_json_split_modes_in_a_real_process(tmp_path: Path, mask: int, cert_mode: int) -> None:
    proc = run_process("json-split", "-bare", "out", stdin=json.dumps(CERT_JSON).encode(), mask=mask, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert {p.name: mode_of(p) for p in tmp_path.glob("out*")} == {"out.pem": cert_mode, "out-key.pem": 0o600, "out.csr": cert_mode}


CFSSLJSON = {"1.2.0": "cfssljson", "1.6.5": str(Path(__file__).resolve().parents[2] / "shared/peers/cfssl-1.6.5/cfssljson")}


@pytest.mark.integration
@pytest.mark.cfssl
@pytest.mark.parametrize("release", sorted(CFSSLJSON))
@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_json_split_new_file_modes_match_cfssljson_under_a_umask(release: str, mask: int, tmp_path: Path) -> None:
    """New files: cfssljson writes certificates 0664 less the umask, we 0644 less it: the same under 022 and 077.
    A replaced file: cfssljson keeps its mode, we never widen it and narrow it to the same bound."""
    tool = need(CFSSLJSON[release], f"cfssljson {release} is not installed")
    stdin = json.dumps(CERT_JSON).encode()
    theirs, ours = tmp_path / "theirs", tmp_path / "ours"
    theirs.mkdir()
    ours.mkdir()
    for directory in (theirs, ours):
        (directory / "out.csr").write_bytes(b"old")
        (directory / "out.csr").chmod(0o600)
    sh = ["sh", "-c", f'umask {mask:03o}; exec "$0" "$@"']
    proc = subprocess.run([*sh, tool, "-bare", "out"], input=stdin, capture_output=True, timeout=60, cwd=theirs, check=False)
    assert proc.returncode == 0, proc.stderr
    assert run_process("json-split", "-bare", "out", stdin=stdin, mask=mask, cwd=ours).returncode == 0

    def modes(directory: Path) -> dict[str, int]:
        return {p.name: mode_of(p) for p in directory.glob("out*")}

    assert modes(ours) == modes(theirs) == {"out.pem": 0o644 & ~mask, "out-key.pem": 0o600, "out.csr": 0o600}


def test_creation_mode_reads_the_umask_without_changing_it(tmp_path: Path) -> None:
    with umask(0o027):
        assert inputs.current_umask() == 0o027
        assert inputs.creation_mode(str(tmp_path / "new"), 0o644) == 0o640
        assert os.umask(0o027) == 0o027  # still set as it was


# -- bounded reads ---------------------------------------------------------------------------------------------

LIMIT_MESSAGE = "input is larger than 64 MiB"


@pytest.fixture(scope="module")
def ca_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("ca")
    key = bundle_pki.ec_key(0xCAFE)
    root = bundle_pki.self_signed_root("Bounded Root", key, 1)
    paths = {"ca": directory / "ca.pem", "ca_key": directory / "ca-key.pem", "csr_json": directory / "csr.json"}
    paths["ca"].write_bytes(root.public_bytes(serialization.Encoding.PEM))
    paths["ca_key"].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    paths["csr_json"].write_text(json.dumps({"CN": "bounded.example.com", "hosts": ["bounded.example.com"]}))
    return paths


def zero_cases(ca: dict[str, Path]) -> dict[str, tuple[list[str], int]]:
    """Each command reading /dev/zero somewhere, and the code cfssl gives a read failure there."""
    c, k = str(ca["ca"]), str(ca["ca_key"])
    return {
        "certinfo -cert": (["certinfo", "-cert", "/dev/zero"], 1001),
        "certinfo -csr": (["certinfo", "-csr", "/dev/zero"], 1001),
        "sign CSR": (["sign", "-ca", c, "-ca-key", k, "/dev/zero"], 1001),
        "sign -ca-key": (["sign", "-ca", c, "-ca-key", "/dev/zero", "/dev/zero"], 1001),
        "gencert CSR JSON": (["gencert", "-ca", c, "-ca-key", k, "/dev/zero"], 1001),
        "gencert -ca-key": (["gencert", "-ca", c, "-ca-key", "/dev/zero", str(ca["csr_json"])], 1001),
        "bundle -cert": (["bundle", "-cert", "/dev/zero"], 1001),
        "bundle -key": (["bundle", "-cert", c, "-key", "/dev/zero"], 2001),
        "bundle -ca-bundle": (["bundle", "-cert", c, "-ca-bundle", "/dev/zero"], 4001),
        "bundle -int-bundle": (["bundle", "-cert", c, "-int-bundle", "/dev/zero"], 3001),
    }


@pytest.mark.parametrize(
    "case",
    [
        "certinfo -cert",
        "certinfo -csr",
        "sign CSR",
        "sign -ca-key",
        "gencert CSR JSON",
        "gencert -ca-key",
        "bundle -cert",
        "bundle -key",
        "bundle -ca-bundle",
        "bundle -int-bundle",
    ],
)
def test_dev_zero_is_a_coded_error_naming_the_file(run_cli: RunCli, ca_files: dict[str, Path], case: str) -> None:
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    args, code = zero_cases(ca_files)[case]
    started = time.monotonic()
    result = run_cli(*args)
    assert time.monotonic() - started < 30
    assert result.status == 1 and result.stdout == ""
    assert result.error == {"code": code, "message": f"read /dev/zero: {LIMIT_MESSAGE}"}


def test_dev_zero_in_a_real_process_stays_small(ca_files: dict[str, Path]) -> None:
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = run_process("certinfo", "-cert", "/dev/zero")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert proc.returncode == 1
    assert json.loads(proc.stderr.decode().strip().splitlines()[-1]) == {"code": 1001, "message": f"read /dev/zero: {LIMIT_MESSAGE}"}
    # the bound plus the interpreter: far below the gigabytes an unbounded read reaches in a second
    assert max(before, peak_kib) < 400 * 1024


def test_standard_input_is_bounded(run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "MAX_INPUT_BYTES", 1024)
    result = run_cli("certinfo", "-cert", "-", stdin=b"A" * 2048)
    assert result.error == {"code": 1001, "message": "read standard input: input is larger than 1024 bytes"}


def test_a_regular_file_over_the_bound_is_refused_from_its_size(tmp_path: Path, run_cli: RunCli) -> None:
    big = tmp_path / "big.pem"
    with open(big, "wb") as fh:  # sparse: no disk is used
        fh.truncate(inputs.MAX_INPUT_BYTES + 1)
    reads: list[int] = []
    real_read = inputs.read_stream

    def counting(stream: object, name: str, limit: int | None = None) -> bytes:
        reads.append(1)
        return real_read(stream, name, limit)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(inputs, "read_stream", counting)
        result = run_cli("certinfo", "-cert", str(big))
    assert result.error == {"code": 1001, "message": f"read {big}: {LIMIT_MESSAGE}"}
    assert reads == []  # refused before a byte was read


def test_the_error_is_also_a_plain_error_for_callers_that_give_reads_their_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "MAX_INPUT_BYTES", 8)
    path = tmp_path / "nine"
    path.write_bytes(b"123456789")
    with pytest.raises(PlainError) as info:
        inputs.read_input(str(path))
    assert isinstance(info.value, CfsslError) and info.value.code == 1001
    assert info.value.message == f"read {path}: input is larger than 8 bytes"
    path.write_bytes(b"12345678")  # the bound itself is allowed
    assert inputs.read_input(str(path)) == b"12345678"


@contextlib.contextmanager
def endless_fifo(path: Path) -> Iterator[None]:
    """A FIFO at ``path`` whose writer sends data until the reader goes away."""
    os.mkfifo(path)
    stop = threading.Event()

    def writer() -> None:
        try:
            fd = os.open(path, os.O_WRONLY)
        except OSError:
            return
        try:
            while not stop.is_set():
                os.write(fd, b"{" * 65536)
        except OSError:  # EPIPE once the reader closed it
            pass
        finally:
            os.close(fd)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(OSError):  # unblock a writer still waiting for a reader
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
        thread.join(10)


def test_json_split_from_an_endless_fifo(run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonsplit, "MAX_INPUT", 1 << 20)
    fifo = tmp_path / "pipe"
    with endless_fifo(fifo):
        result = run_cli("json-split", "-f", str(fifo), "out")
    assert result.status == 1
    assert result.stderr.strip().splitlines()[-1] == f"Failed to read input: read {fifo}: input is larger than 1 MiB"
    assert not list(tmp_path.glob("out*"))


def test_json_split_from_an_endless_fifo_at_the_real_bound(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    with endless_fifo(fifo):
        proc = run_process("json-split", "-f", str(fifo), "out", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.decode().strip().splitlines()[-1] == f"Failed to read input: read {fifo}: {LIMIT_MESSAGE}"


# -- write failures during serve -datadir ----------------------------------------------------------------------


def test_an_injected_full_disk_names_the_file_and_leaves_nothing_half_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = datadir.write_atomic

    def full_at_the_certificate(path: str, data: bytes, mode: int = 0o644) -> None:
        if path.endswith(datadir.CA_CERT):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, data, mode)

    monkeypatch.setattr(datadir, "write_atomic", full_at_the_certificate)
    with pytest.raises(inputs.WriteFailed) as info:
        datadir.ensure_ca(tmp_path / "d")
    assert info.value.message == f"write {tmp_path / 'd' / datadir.CA_CERT}: no space left on device"
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [datadir.LOCK]  # the key and config are gone again
    monkeypatch.setattr(datadir, "write_atomic", real)
    cert, key, _ = datadir.ensure_ca(tmp_path / "d")  # with room again, the next run initialises
    x509.load_pem_x509_certificate(Path(cert).read_bytes())
    assert mode_of(Path(key)) == 0o600


def test_an_unwritable_certdb_config_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    datadir.ensure_ca(tmp_path)

    def refuse(path: str, data: bytes) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(datadir, "write_secret", refuse)
    with pytest.raises(inputs.WriteFailed) as info:
        datadir.ensure_certdb(tmp_path)
    assert info.value.message == f"write {tmp_path / datadir.CERTDB_CONFIG}: permission denied"


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """An 8 KiB tmpfs (room for the CA key and config, not the certificate); skipped where mounting is not allowed."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(mount)], capture_output=True, timeout=30, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True, timeout=30, check=False)


def test_serve_datadir_on_a_full_tmpfs(tiny_tmpfs: Path) -> None:
    data = tiny_tmpfs / "dd"
    proc = run_process("serve", "-datadir", str(data), "-address", "127.0.0.1", "-port", "0")
    stderr = proc.stderr.decode()
    assert proc.returncode == 1
    assert stderr.strip().splitlines()[-1] == f"write {data / datadir.CA_CERT}: no space left on device"
    assert "internal error" not in stderr and "Traceback" not in stderr
    assert sorted(p.name for p in data.iterdir()) == [datadir.LOCK]


# -- mkbundle with nothing usable ------------------------------------------------------------------------------


def test_mkbundle_with_nothing_parsable_writes_nothing(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "junk.pem").write_text("not a certificate\n")
    result = run_cli("mkbundle", "-f", "out.crt", "in")
    assert result.status == 1
    assert result.error == {"code": 1002, "message": "no certificate could be parsed from 1 file; out.crt was not written"}
    assert not (tmp_path / "out.crt").exists()


def test_mkbundle_with_everything_dropped_keeps_the_previous_bundle(run_cli: RunCli, tmp_path: Path) -> None:
    key = bundle_pki.ec_key(0xE0)
    expired = bundle_pki.self_signed_root("Expired Root", key, 1, not_after=bundle_pki.EXPIRED_NOT_AFTER)
    (tmp_path / "expired.pem").write_bytes(expired.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "out.crt").write_bytes(b"previous bundle\n")
    result = run_cli("mkbundle", "-f", "out.crt", "expired.pem")
    assert result.status == 1
    assert result.error == {"code": 1000, "message": "the only certificate found was dropped (1 expired); out.crt was not written"}
    assert "Skipping CN=Expired Root" in result.stderr  # the report says why before the error
    assert (tmp_path / "out.crt").read_bytes() == b"previous bundle\n"
