"""Shared test fixtures: an in-process CLI runner, CAs built at test time, and integration gating."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from cfsslpy.cli.context import IO
from cfsslpy.cli.main import main
from cfsslpy.inputs import Stdin

REQUIRE_INTEGRATION = os.environ.get("CFSSLPY_REQUIRE_INTEGRATION") == "1"


# cfssl's goose migration 001 for SQLite, without 002's columns: the certdb schema a cfssl 2016 user has. Read
# from the shipped file, whose bytes tests/test_migrations.py pins to cfssl's; its Up section only (SQLite's
# executescript skips the goose comment lines)
CFSSL_2016_SQLITE_SCHEMA = (
    (resources.files("cfsslpy.migrations") / "sqlite" / "001_CreateCertificates.sql")
    .read_text(encoding="utf-8")
    .partition("-- +goose Down")[0]
)


def need(tool: str, reason: str | None = None) -> str:
    """Path of an external tool; skip (or fail under CFSSLPY_REQUIRE_INTEGRATION=1) when it is missing."""
    path = shutil.which(tool)
    if path is None:
        message = reason or f"{tool} is not installed"
        if REQUIRE_INTEGRATION:
            pytest.fail(f"{message} (required: CFSSLPY_REQUIRE_INTEGRATION=1)")
        pytest.skip(message)
    return path


@dataclass
class Result:
    status: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def error(self) -> dict[str, Any]:
        """The cfssl error JSON: the last line of stderr before any trailing ``hint:`` lines."""
        from tests.cli.errlines import error_line

        error: dict[str, Any] = json.loads(error_line(self.stderr))
        return error


RunCli = Callable[..., Result]


@pytest.fixture
def run_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunCli:
    """Run the CLI in-process: ``run_cli("sign", "-ca", ..., stdin=b"...", env={...}, prog="cfssljson")``."""

    def _run(*args: str, stdin: bytes = b"", env: dict[str, str] | None = None, prog: str = "cfsslpy", cwd: Path | None = None) -> Result:
        out, err = io.StringIO(), io.StringIO()
        environ = dict(os.environ)
        environ.pop("CFSSL_CA_PK_PASSWORD", None)
        environ.update(env or {})
        ctx = IO(stdin=Stdin(io.BytesIO(stdin)), stdout=out, stderr=err, environ=environ)
        monkeypatch.chdir(cwd or tmp_path)
        status = main(list(args), ctx, prog=prog)
        return Result(int(status), out.getvalue(), err.getvalue())

    return _run


@dataclass
class CA:
    cert: Path
    key: Path
    dir: Path


def write_csr_json(path: Path, obj: dict[str, Any]) -> Path:
    path.write_text(json.dumps(obj))
    return path


def make_ca(
    run_cli: RunCli, directory: Path, algo: str = "ecdsa", size: int = 256, name: str = "ca", extra: dict[str, Any] | None = None
) -> CA:
    directory.mkdir(parents=True, exist_ok=True)
    obj: dict[str, Any] = {"CN": f"Test {name} {algo}", "names": [{"C": "US", "O": "cfsslpy tests"}], "key": {"algo": algo, "size": size}}
    obj.update(extra or {})
    spec = write_csr_json(directory / f"{name}-csr.json", obj)
    result = run_cli("gencert", "-initca", str(spec))
    assert result.status == 0, result.stderr
    data = result.json
    cert = directory / f"{name}.pem"
    key = directory / f"{name}-key.pem"
    cert.write_text(data["cert"])
    key.write_text(data["key"])
    key.chmod(0o600)
    return CA(cert, key, directory)


@pytest.fixture
def ec_ca(run_cli: RunCli, tmp_path: Path) -> CA:
    return make_ca(run_cli, tmp_path / "ec-ca")


@pytest.fixture
def rsa_ca(run_cli: RunCli, tmp_path: Path) -> CA:
    return make_ca(run_cli, tmp_path / "rsa-ca", "rsa", 2048)


@contextlib.contextmanager
def tls_server(cert: Path, key: Path) -> Iterator[int]:
    """A loopback TLS server on a free port that completes handshakes until stopped (always stopped)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            try:
                conn.settimeout(5)
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except OSError:
                pass
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(10)
        listener.close()
