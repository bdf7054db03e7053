"""The progress bar of ocsprefresh, crl, gencrl and mkbundle: on a terminal only, never in a pipe, never with
``-progress=false``. A real pseudo-terminal (the pty module) for the process test, a stream that says it is a
terminal for the in-process ones."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from cfsslpy.certdb import CertDB, DBConfig
from cfsslpy.cli.context import IO
from cfsslpy.cli.main import main
from cfsslpy.cli.progress import MANY_ROWS, ProgressBar
from cfsslpy.inputs import Stdin
from tests.cli.test_crl_cli import issue_leaf, load_ca, record, ski
from tests.conftest import CA, RunCli

REPO = Path(__file__).resolve().parents[2]


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_on_terminal(*args: str, cwd: Path) -> tuple[int, str, str]:
    """Run the CLI in-process with a stderr that is a terminal: (status, stdout, stderr)."""
    out, err = io.StringIO(), Tty()
    status = main(list(args), IO(stdin=Stdin(io.BytesIO()), stdout=out, stderr=err, environ=dict(os.environ)), prog="cfsslpy")
    return status, out.getvalue(), err.getvalue()


# -- the bar itself --------------------------------------------------------------------------------------------


def test_the_bar_redraws_in_place_and_ends_its_line() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, "things", interval=3600)
    bar(0, 4)
    bar(1, 4)  # within the interval: not redrawn
    bar(4, 4)  # the last one always is
    bar.finish()
    assert stream.getvalue() == f"\r[{'.' * 30}] 0/4 things\r[{'#' * 30}] 4/4 things\n"
    bar.finish()  # once only
    assert stream.getvalue().count("\n") == 1


def test_a_short_run_or_a_disabled_bar_draws_nothing() -> None:
    stream = io.StringIO()
    with ProgressBar(stream, "x", min_total=10) as bar:
        bar(9, 9)
    with ProgressBar(stream, "x", enabled=False) as bar:
        bar(5, 10)
    assert stream.getvalue() == ""


# -- a real terminal -----------------------------------------------------------------------------------------


@pytest.fixture
def gencrl_inputs(run_cli: RunCli, tmp_path: Path, ec_ca: CA) -> list[str]:
    serials = tmp_path / "serials.txt"
    serials.write_text("".join(f"{n}\n" for n in range(1, MANY_ROWS + 51)))
    return ["gencrl", str(serials), str(ec_ca.cert), str(ec_ca.key)]


def spawn(args: list[str], cwd: Path, *, terminal: bool) -> tuple[int, str, str]:
    """The CLI in a process whose stderr is a pseudo-terminal (or a pipe): (status, stdout, stderr)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "cfsslpy", *args]
    if not terminal:
        proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, env=env, check=False)
        return proc.returncode, proc.stdout, proc.stderr
    master, slave = pty.openpty()
    try:
        with subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=env) as proc:
            os.close(slave)
            slave = -1
            assert proc.stdout is not None
            stdout = proc.stdout.read()
            chunks = []
            while True:
                ready, _, _ = select.select([master], [], [], 30)
                if not ready:
                    break
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the process closed its end
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            status = proc.wait(timeout=60)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    return status, stdout.decode(), b"".join(chunks).decode("utf-8", "replace")


def test_gencrl_draws_the_bar_on_a_terminal_only(gencrl_inputs: list[str], tmp_path: Path) -> None:
    total = MANY_ROWS + 50
    status, stdout, stderr = spawn(gencrl_inputs, tmp_path, terminal=True)
    assert status == 0, stderr
    assert f"] {total}/{total} CRL entries" in stderr and stderr.startswith("\r[")
    crl = x509.load_der_x509_crl(base64.b64decode(stdout))
    assert len(crl) == total  # stdout is the CRL alone

    status, piped_out, piped_err = spawn(gencrl_inputs, tmp_path, terminal=False)
    assert status == 0 and piped_err == "" and "\r" not in piped_err
    assert len(x509.load_der_x509_crl(base64.b64decode(piped_out))) == total

    status, _, silenced = spawn(["gencrl", "-progress=false", *gencrl_inputs[1:]], tmp_path, terminal=True)
    assert status == 0 and "CRL entries" not in silenced and "\r" not in silenced


# -- each command, in-process ----------------------------------------------------------------------------------


def test_gencrl_of_few_entries_draws_no_bar(run_cli: RunCli, tmp_path: Path, ec_ca: CA) -> None:
    (tmp_path / "few.txt").write_text("1\n2\n")
    status, _, stderr = run_on_terminal("gencrl", str(tmp_path / "few.txt"), str(ec_ca.cert), str(ec_ca.key), cwd=tmp_path)
    assert (status, stderr) == (0, "")


def db_with(tmp_path: Path, ca: CA, rows: int, *, revoke: bool) -> Path:
    config = tmp_path / "db.json"
    config.write_text(json.dumps({"driver": "sqlite3", "data_source": str(tmp_path / "certs.db")}))
    aki = ski(load_ca(ca)[0]).hex()
    with CertDB(DBConfig.from_json(config.read_bytes())) as db:
        for serial in range(1, rows + 1):
            db.insert_certificate(record(issue_leaf(ca, serial, expires=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=9))))
            if revoke:
                db.revoke(str(serial), aki, 1)
    return config


def test_crl_over_many_rows_draws_the_bar(tmp_path: Path, ec_ca: CA) -> None:
    config = db_with(tmp_path, ec_ca, MANY_ROWS, revoke=True)
    args = ("crl", "-db-config", str(config), "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key))
    status, stdout, stderr = run_on_terminal(*args, cwd=tmp_path)
    assert status == 0, stderr
    assert stderr.startswith("\r[") and stderr.endswith(f"] {MANY_ROWS}/{MANY_ROWS} CRL entries\n")
    assert len(x509.load_der_x509_crl(base64.b64decode(stdout))) == MANY_ROWS
    status, _, stderr = run_on_terminal(*args[:1], "-progress=false", *args[1:], cwd=tmp_path)
    assert (status, stderr) == (0, "")


def test_ocsprefresh_shows_each_response_signed(tmp_path: Path, ec_ca: CA) -> None:
    config = db_with(tmp_path, ec_ca, 5, revoke=False)
    args = ["-db-config", str(config), "-ca", str(ec_ca.cert), "-responder", str(ec_ca.cert), "-responder-key", str(ec_ca.key)]
    status, _, stderr = run_on_terminal("ocsprefresh", "-loglevel", "2", *args, cwd=tmp_path)
    assert status == 0, stderr
    assert stderr.startswith(f"\r[{'.' * 30}] 0/5 OCSP responses signed")
    assert stderr.endswith(f"\r[{'#' * 30}] 5/5 OCSP responses signed\n")
    status, _, stderr = run_on_terminal("ocsprefresh", "-loglevel", "2", "-progress=false", *args, cwd=tmp_path)
    assert (status, stderr) == (0, "")


def test_progress_is_accepted_by_every_command_and_read_by_four(run_cli: RunCli) -> None:
    result = run_cli("version", "-progress=false")
    assert result.status == 0 and "flag -progress has no effect on version" in result.stderr
    for name in ("ocsprefresh", "crl", "gencrl", "mkbundle"):
        assert "-progress" in run_cli(name, "-h").stderr, name
