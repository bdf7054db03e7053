"""``cfsslpy json-split`` and the ``cfssljson`` name: Go flag syntax, exit statuses, messages, files."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from cfsslpy.cli.jsonsplit import USAGE
from cfsslpy.cli.main import ExitStatus
from cfsslpy.cli.version import version_text
from tests.conftest import RunCli

BARE = json.dumps({"cert": "CERT\n", "key": "KEY\n", "csr": "CSR\n"}).encode()
ENVELOPE = json.dumps(
    {"success": True, "result": {"certificate": "CERT\n", "private_key": "KEY\n", "certificate_request": "CSR\n"}}
).encode()


def files(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), stat.S_IMODE(p.stat().st_mode)) for p in sorted(directory.iterdir()) if p.is_file()}


EXPECTED = {"out-key.pem": (b"KEY\n", 0o600), "out.csr": (b"CSR\n", 0o644), "out.pem": (b"CERT\n", 0o644)}


@pytest.mark.parametrize("prog_args", [("cfsslpy", ["json-split"]), ("cfssljson", []), ("cfssljson-py", [])])
def test_bare_split_under_every_name(run_cli: RunCli, tmp_path: Path, prog_args: tuple[str, list[str]]) -> None:
    prog, head = prog_args
    result = run_cli(*head, "-bare", "out", stdin=BARE, prog=prog, cwd=tmp_path)
    assert (result.status, result.stdout, result.stderr) == (ExitStatus.SUCCESS, "", "")
    assert files(tmp_path) == EXPECTED


def test_envelope_is_the_default(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("json-split", "out", stdin=ENVELOPE, cwd=tmp_path)
    assert result.status == ExitStatus.SUCCESS, result.stderr
    assert files(tmp_path) == EXPECTED


def test_default_basename_is_cert(run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli("-bare", stdin=BARE, prog="cfssljson", cwd=tmp_path).status == ExitStatus.SUCCESS
    assert sorted(files(tmp_path)) == ["cert-key.pem", "cert.csr", "cert.pem"]


@pytest.mark.parametrize(
    "flags",
    [
        ["-f", "in.json", "-bare"],
        ["-f=in.json", "--bare"],
        ["--f", "in.json", "-bare=true"],
        ["--f=in.json", "-bare=1", "-bare=T"],
        ["-bare", "-f", "in.json", "--"],
    ],
)
def test_go_flag_syntax(run_cli: RunCli, tmp_path: Path, flags: list[str]) -> None:
    (tmp_path / "in.json").write_bytes(BARE)
    result = run_cli("json-split", *flags, "out", cwd=tmp_path)
    assert result.status == ExitStatus.SUCCESS, result.stderr
    assert sorted(files(tmp_path)) == ["in.json", *sorted(EXPECTED)]


def test_bare_false_means_envelope(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("-bare=false", "out", stdin=BARE, prog="cfssljson", cwd=tmp_path)
    # cfssljson's line, then what to do about it
    hint = 'hint: the input is not an API response (no "success") but bare output (cert, key, csr): add -bare\n'
    assert (result.status, result.stderr) == (ExitStatus.ERROR, "Request failed:\n" + hint)


def test_a_failed_envelope_gets_no_bare_hint(run_cli: RunCli, tmp_path: Path) -> None:
    envelope = json.dumps({"success": False, "result": {"cert": "C"}, "errors": [{"code": 1, "message": "no"}]}).encode()
    result = run_cli("out", stdin=envelope, prog="cfssljson", cwd=tmp_path)
    assert (result.status, result.stderr) == (ExitStatus.ERROR, "Request failed:\n\tno\n")


def test_double_dash_ends_flags(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("-bare", "--", "-weird", stdin=BARE, prog="cfssljson", cwd=tmp_path)
    assert result.status == ExitStatus.SUCCESS, result.stderr
    assert "-weird.pem" in files(tmp_path)


def test_stdout_mode_writes_no_files(run_cli: RunCli, tmp_path: Path) -> None:
    data = json.dumps({"cert": "C", "encrypted_key": "EK", "ocspResponse": "AAEC"}).encode()
    result = run_cli("json-split", "-bare", "-stdout", stdin=data, cwd=tmp_path)
    assert (result.status, result.stdout, result.stderr) == (ExitStatus.SUCCESS, "C\nRUs=\nAAEC\n", "")
    assert files(tmp_path) == {}


def test_version(run_cli: RunCli) -> None:
    result = run_cli("-version", prog="cfssljson")
    assert (result.status, result.stdout, result.stderr) == (ExitStatus.SUCCESS, version_text(), "")
    assert run_cli("json-split", "--version=true", "a", "b").stdout == version_text()


@pytest.mark.parametrize("flag", ["-h", "-help", "--help", "-h=x"])
def test_help_exits_zero(run_cli: RunCli, flag: str) -> None:
    result = run_cli("json-split", flag)
    assert (result.status, result.stdout, result.stderr) == (ExitStatus.SUCCESS, "", USAGE)
    assert result.stderr.startswith("Usage of cfssljson:\n  -bare\n    \tthe response from CFSSL is not wrapped")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-x"], "flag provided but not defined: -x"),
        (["--loglevel=1"], "flag provided but not defined: -loglevel"),
        (["-f"], "flag needs an argument: -f"),
        (["-bare=yes"], 'invalid boolean value "yes" for -bare: parse error'),
        (["---bare"], "bad flag syntax: ---bare"),
        (["-=x"], "bad flag syntax: -=x"),
        (
            ["-bare", "ca", "-f", "x.json"],
            "unexpected arguments after BASENAME 'ca': -f x.json\nhint: flags must come before arguments: move -f before ca",
        ),
        (["-bare", "ca", "more"], "unexpected arguments after BASENAME 'ca': more"),
        ([""], "BASENAME must not be empty"),
    ],
)
def test_usage_errors_exit_2(run_cli: RunCli, tmp_path: Path, args: list[str], message: str) -> None:
    result = run_cli(*args, stdin=BARE, prog="cfssljson", cwd=tmp_path)
    assert (result.status, result.stdout, result.stderr) == (ExitStatus.USAGE, "", f"{message}\n{USAGE}")
    assert files(tmp_path) == {}


def test_request_failed(run_cli: RunCli, tmp_path: Path) -> None:
    data = json.dumps(
        {"success": False, "result": None, "errors": [{"code": 1002, "message": "Failed to decode certificate"}, {"message": "two"}]}
    )
    result = run_cli("json-split", stdin=data.encode(), cwd=tmp_path)
    assert (result.status, result.stdout, result.stderr) == (
        ExitStatus.ERROR,
        "",
        "Request failed:\n\tFailed to decode certificate\n\ttwo\n",
    )


@pytest.mark.parametrize(
    ("args", "stdin", "stderr"),
    [
        (["-f", "missing.json"], b"", "Failed to read input: open missing.json: no such file or directory\n"),
        (["-bare"], b"", "Failed to parse input: unexpected end of JSON input\n"),
        (["-bare"], b'{"cert": 1}', 'Failed to parse input: the value of "cert" is a number, not a string\n'),
        (["-bare"], b'{"cert": "\xff"}', "Failed to parse input: input is not valid UTF-8 (byte 0xff at offset 10)\n"),
        (["-bare"], b'{"ocspResponse": "AAE"}', "Failed to parse ocspResponse: illegal base64 data at input byte 0\n"),
        (["-bare"], b'{"result": {"bundle": {"bundle": "B"}}}', "root parsing failed!\n"),
        (
            [],
            b'{"success": "yes"}',
            "Failed to parse input: json: cannot unmarshal string into Go struct field Response.success of type bool\n"
            "hint: <stdin>:1:13\n",  # cfsslpy: where the value is
        ),
        (["-bare", "out/ca"], BARE, "Failed to write out/ca.pem: directory out does not exist\n"),
        (
            ["-bare"],
            b"[" * 100_000 + b"]" * 100_000,
            "Failed to parse input: invalid character '[' exceeded max depth\nhint: <stdin>:1:513\n",
        ),
        ([], b'{"result":' * 100_000, "Failed to parse input: invalid character '{' exceeded max depth\nhint: <stdin>:1:5121\n"),
        (
            ["-bare", "x"],
            b'{"cert":"C","key":"K","x":' + b"[" * 900 + b"]" * 900 + b"}",
            "Failed to parse input: invalid character '[' exceeded max depth\nhint: <stdin>:1:538\n",
        ),
    ],
)
def test_errors_exit_1_with_one_clear_line_and_a_position(
    run_cli: RunCli, tmp_path: Path, args: list[str], stdin: bytes, stderr: str
) -> None:
    result = run_cli(*args, stdin=stdin, prog="cfssljson", cwd=tmp_path)
    assert (result.status, result.stdout, result.stderr) == (ExitStatus.ERROR, "", stderr)
    assert files(tmp_path) == {}


def test_bare_on_envelope_hints(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("json-split", "-bare", stdin=ENVELOPE, cwd=tmp_path)
    assert result.status == ExitStatus.ERROR
    assert "run without -bare" in result.stderr
    assert "Traceback" not in result.stderr


def test_basename_with_existing_directory(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    result = run_cli("json-split", "-bare", "out/ca", stdin=BARE, cwd=tmp_path)
    assert result.status == ExitStatus.SUCCESS, result.stderr
    assert sorted(files(tmp_path / "out")) == ["ca-key.pem", "ca.csr", "ca.pem"]


def test_gencert_initca_piped_into_json_split(run_cli: RunCli, tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    spec = tmp_path / "csr.json"
    spec.write_text(json.dumps({"CN": "json-split test CA", "key": {"algo": "ecdsa", "size": 256}}))
    made = run_cli("gencert", "-initca", str(spec), cwd=tmp_path)
    assert made.status == 0, made.stderr
    result = run_cli("json-split", "-bare", "ca", stdin=made.stdout.encode(), cwd=tmp_path)
    assert result.status == ExitStatus.SUCCESS, result.stderr
    got: dict[str, Any] = files(tmp_path)
    assert got["ca-key.pem"][1] == 0o600
    cert = x509.load_pem_x509_certificate(got["ca.pem"][0])
    key = load_pem_private_key(got["ca-key.pem"][0], None)
    assert cert.public_key() == key.public_key()
    assert x509.load_pem_x509_csr(got["ca.csr"][0]).subject == cert.subject
