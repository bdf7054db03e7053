"""Error messages that explain themselves: the usage line after an argument error, a flag after the arguments,
the module a token needs, the location of a JSON syntax error. cfssl's error line itself is unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from cfsslpy.cli.main import ExitStatus
from tests.conftest import RunCli


def test_print_defaults_without_a_type_shows_its_usage_and_the_templates(run_cli: RunCli) -> None:
    result = run_cli("print-defaults")
    assert (result.status, result.stdout) == (ExitStatus.ERROR, "")
    assert result.stderr == (
        "not enough arguments are supplied --- please refer to the usage\n"
        "hint: default configurations are available for: config, csr ('list' lists them)\n"
        "hint: usage: cfsslpy print-defaults TYPE   (TYPE: list, config, csr)\n"
        "hint: 'cfsslpy print-defaults -h' lists its flags\n"
    )


@pytest.mark.parametrize(
    ("args", "usage"),
    [
        (("genkey",), "usage: cfsslpy genkey [-initca] CSRJSON"),
        (("genkey", "a.json", "b.json"), "usage: cfsslpy genkey [-initca] CSRJSON"),
        (("selfsign", "x.example"), "usage: cfsslpy selfsign HOSTNAME CSRJSON"),
        (("info", "extra"), "usage: cfsslpy info -config config -ca cert -ca-key key [-profile profile]"),
    ],
)
def test_every_argument_error_shows_the_usage_line(run_cli: RunCli, args: tuple[str, ...], usage: str) -> None:
    result = run_cli(*args)
    assert result.status == ExitStatus.ERROR
    lines = result.stderr.splitlines()
    assert f"hint: {usage}" in lines
    assert lines[-1] == f"hint: 'cfsslpy {args[0]} -h' lists its flags"


def test_every_usage_error_shows_the_usage_line(run_cli: RunCli) -> None:
    result = run_cli("genkey", "-nope", "x.json")
    assert result.status == ExitStatus.USAGE
    lines = result.stderr.splitlines()
    assert lines[:2] == ["flag provided but not defined: -nope", "usage: cfsslpy genkey [-initca] CSRJSON"]


def test_a_flag_after_the_arguments_gets_a_hint(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "csr.json").write_text('{"CN": "x"}')
    result = run_cli("genkey", "csr.json", "-initca")
    assert result.status == ExitStatus.ERROR
    assert result.stderr.splitlines()[:2] == [
        "only one argument is accepted, please check with usage",
        "hint: flags must come before arguments: move -initca before csr.json",
    ]
    two = run_cli("gencert", "csr.json", "-ca", "ca.pem", "--ca-key=k.pem")
    assert "hint: flags must come before arguments: move -ca, -ca-key before csr.json" in two.stderr.splitlines()


def test_a_flag_after_a_file_read_as_an_argument_gets_the_hint(run_cli: RunCli, tmp_path: Path) -> None:
    # sign CSR SUBJECT: "-profile" is read as the SUBJECT file, which does not exist
    (tmp_path / "x.csr").write_text("not a csr")
    result = run_cli("sign", "-ca", "ca.pem", "-ca-key", "ca-key.pem", "x.csr", "-profile")
    assert result.status == ExitStatus.ERROR
    assert "hint: flags must come before arguments: move -profile before x.csr" in result.stderr.splitlines()


def test_no_hint_when_the_words_after_the_arguments_are_not_flags(run_cli: RunCli) -> None:
    result = run_cli("genkey", "a.json", "-", "b.json")
    assert "hint: flags must" not in result.stderr


def test_token_list_without_a_module_mentions_module(run_cli: RunCli) -> None:
    pytest.importorskip("pkcs11")
    env = {"CFSSLPY_PKCS11_MODULE": ""}
    listed = run_cli("token", "list", env=env)
    lines = listed.stderr.splitlines()
    assert listed.status == ExitStatus.ERROR
    assert lines[0].startswith('{"code":2001,"message":"no PKCS#11 module')
    assert lines[1] == (
        "hint: pass the module's path with -module (token list -module /usr/lib/softhsm/libsofthsm2.so) or set CFSSLPY_PKCS11_MODULE"
    )
    objects = run_cli("token", "objects", "pkcs11:token=CA", env=env)
    assert objects.stderr.splitlines()[1] == (
        "hint: add the module's path to the URI (pkcs11:token=...?module-path=/usr/lib/softhsm/libsofthsm2.so), "
        "or set CFSSLPY_PKCS11_MODULE"
    )


# -- JSON errors name the file, line and column ------------------------------------------------------------


def error_and_hint(stderr: str) -> tuple[str, str]:
    lines = stderr.splitlines()
    assert len(lines) == 2 and lines[1].startswith("hint: "), stderr
    return lines[0], lines[1].removeprefix("hint: ")


def test_a_csr_json_syntax_error_is_located(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "csr.json").write_text('{"CN": "x",\n "hosts": ["a"\n "b"]}')
    result = run_cli("genkey", "csr.json")
    assert result.status == ExitStatus.ERROR
    assert error_and_hint(result.stderr) == ("invalid character '\"' after array element", "csr.json:3:2")


def test_a_csr_json_type_error_is_located(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "csr.json").write_text('{"CN": "x",\n "names": [{"C": "US"}, {"O": 5}]}')
    result = run_cli("genkey", "csr.json")
    assert error_and_hint(result.stderr) == ("json: cannot unmarshal number into Go struct field Name.O of type string", "csr.json:2:31")


def test_csr_json_on_stdin_is_named_stdin(run_cli: RunCli) -> None:
    result = run_cli("genkey", "-", stdin=b'{"CN": "x",,}')
    assert error_and_hint(result.stderr)[1] == "<stdin>:1:12"


def test_a_truncated_config_is_located_at_its_end(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"signing": {\n  "default": {"expiry": "1h"}\n')
    result = run_cli("sign", "-config", "config.json", "-ca", "ca.pem", "-ca-key", "ca-key.pem", "x.csr")
    line, hint = error_and_hint(result.stderr)
    assert line == 'Failed to load config file: {"code":5200,"message":"failed to unmarshal configuration: unexpected end of JSON input"}'
    assert hint == "config.json:3:1"


def test_a_config_type_error_is_located(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"signing": {\n  "default": {\n    "expiry": 5}}}')
    result = run_cli("sign", "-config", "config.json", "-ca", "ca.pem", "-ca-key", "ca-key.pem", "x.csr")
    assert error_and_hint(result.stderr)[1] == "config.json:3:15"


def test_a_db_config_json_error_is_located(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "db.json").write_text('{"driver": "sqlite3",\n "data_source": }')
    result = run_cli("ocspdump", "-db-config", "db.json")
    assert result.status == ExitStatus.ERROR
    assert error_and_hint(result.stderr)[1] == "db.json:2:17"


def test_json_split_input_errors_are_located(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "out.json").write_text('{"cert": "C",\n "key": tru}')
    result = run_cli("-bare", "-f", "out.json", prog="cfssljson")
    line, hint = error_and_hint(result.stderr)
    assert line.startswith("Failed to parse input: invalid character '}' in literal true")
    assert hint == "out.json:2:12"


def test_a_valid_document_with_another_error_gets_no_location(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "csr.json").write_text('{"CN": "x", "key": {"algo": "rsa", "size": 512}}')
    result = run_cli("genkey", "csr.json")
    assert result.status == ExitStatus.ERROR and "hint:" not in result.stderr
