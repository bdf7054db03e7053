"""Go ``flag`` syntax, -loglevel, flags without effect, env:/file: inputs, exit statuses, command dispatch."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

import cfsslpy.cli.version as version_module
from cfsslpy.cli.command import Options
from cfsslpy.cli.flags import FLAGS, HelpRequested, tokenize
from cfsslpy.cli.main import COMMANDS, ExitStatus
from cfsslpy.errors import UsageError
from tests.conftest import CA, RunCli

LOG_LINE = re.compile(r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} \[(DEBUG|INFO|WARNING|ERROR|CRITICAL|FATAL)\] ")


# -- the tokenizer: Go's flag.Parse over cfssl's global flag set -------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["-ca", "ca.pem", "x"],
        ["-ca=ca.pem", "x"],
        ["--ca", "ca.pem", "x"],
        ["--ca=ca.pem", "x"],
    ],
    ids=["-f v", "-f=v", "--f v", "--f=v"],
)
def test_value_flag_spellings(argv: list[str]) -> None:
    assert tokenize(argv) == ({"ca": "ca.pem"}, ["x"])


def test_value_may_contain_equals_and_start_with_a_dash() -> None:
    assert tokenize(["-hostname=a=b", "-cn", "-x-"]) == ({"hostname": "a=b", "cn": "-x-"}, [])


@pytest.mark.parametrize(
    ("argv", "value", "rest"),
    [
        (["-initca", "csr.json"], True, ["csr.json"]),
        (["--initca", "csr.json"], True, ["csr.json"]),
        (["-initca=true", "csr.json"], True, ["csr.json"]),
        (["-initca=false", "csr.json"], False, ["csr.json"]),
        (["-initca=1"], True, []),
        (["-initca=F"], False, []),
        # a boolean never takes the next word: "false" is the first positional argument
        (["-initca", "false"], True, ["false"]),
    ],
)
def test_boolean_flags(argv: list[str], value: bool, rest: list[str]) -> None:
    assert tokenize(argv) == ({"initca": value}, rest)


def test_parsing_stops_at_the_first_non_flag() -> None:
    # cfssl sign csr.pem -ca ca.pem: -ca is a positional argument
    assert tokenize(["csr.pem", "-ca", "ca.pem"]) == ({}, ["csr.pem", "-ca", "ca.pem"])


def test_a_lone_dash_is_a_positional_argument() -> None:
    assert tokenize(["-ca", "ca.pem", "-", "-ca-key", "k"]) == ({"ca": "ca.pem"}, ["-", "-ca-key", "k"])


def test_double_dash_ends_the_flags() -> None:
    assert tokenize(["-ca", "c", "--", "-ca-key", "k"]) == ({"ca": "c"}, ["-ca-key", "k"])


def test_the_last_occurrence_wins() -> None:
    assert tokenize(["-ca", "a", "-ca", "b"]) == ({"ca": "b"}, [])


@pytest.mark.parametrize("flag", ["-h", "-help", "--h", "--help"])
def test_help(flag: str) -> None:
    with pytest.raises(HelpRequested):
        tokenize([flag])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-ca-k", "x"], "flag provided but not defined: -ca-k"),  # no abbreviations
        (["-c", "x"], "flag provided but not defined: -c"),
        (["-nope"], "flag provided but not defined: -nope"),
        (["---ca", "x"], "bad flag syntax: ---ca"),
        (["-=x"], "bad flag syntax: -=x"),
        (["-ca"], "flag needs an argument: -ca"),
        (["-initca=yes"], 'invalid boolean value "yes" for -initca: parse error'),
        (["-initca="], 'invalid boolean value "" for -initca: parse error'),
        (["-port", "eighty"], 'invalid value "eighty" for flag -port: parse error'),
        (["-port", " 80"], 'invalid value " 80" for flag -port: parse error'),
        (["-port", "9223372036854775808"], 'invalid value "9223372036854775808" for flag -port: value out of range'),
    ],
)
def test_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        tokenize(argv)
    assert info.value.message == message


@pytest.mark.parametrize(
    ("text", "value"), [("8080", 8080), ("0x10", 16), ("010", 8), ("0o10", 8), ("0b11", 3), ("1_000", 1000), ("-1", -1), ("+2", 2)]
)
def test_integers_parse_like_go_strconv(text: str, value: int) -> None:
    assert tokenize(["-port", text]) == ({"port": value}, [])


def test_every_flag_has_a_typed_option_with_its_default() -> None:
    opts = Options()
    for name, flag in FLAGS.items():
        assert getattr(opts, name.replace("-", "_")) == flag.default, name
    parsed = Options.from_values({"ca-key": "k", "initca": True, "port": 1})
    assert (parsed.ca_key, parsed.initca, parsed.port) == ("k", True, 1)
    assert parsed.given == {"ca-key", "initca", "port"}


# -- through the CLI -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["-h", "-help", "--help"])
def test_command_help_exits_0_on_stderr(run_cli: RunCli, flag: str) -> None:
    result = run_cli("sign", flag)
    assert result.status == ExitStatus.SUCCESS
    assert result.stdout == ""
    assert result.stderr.startswith("usage: cfsslpy sign -ca cert -ca-key key")
    for name in ("-ca CERT", "-ca-key KEY", "-hostname", "-loglevel N"):
        assert name in result.stderr
    assert "example:" in result.stderr


def test_undefined_flag_exits_2_with_usage(run_cli: RunCli) -> None:
    result = run_cli("sign", "-ca-k", "x", "y.csr")
    assert result.status == ExitStatus.USAGE
    assert result.stdout == ""
    first, second = result.stderr.splitlines()[:2]
    assert first == "flag provided but not defined: -ca-k"
    assert second.startswith("usage: cfsslpy sign")


def test_flags_after_the_first_argument_are_arguments(run_cli: RunCli, ec_ca: CA) -> None:
    # like cfssl: "-ca" after the CSR is the SUBJECT file name, then one too many arguments
    result = run_cli("sign", "x.csr", "-ca", str(ec_ca.cert))
    assert result.status == ExitStatus.ERROR
    lines = result.stderr.strip().splitlines()
    assert lines[:3] == [
        "too many arguments are provided, please check with usage",
        "hint: flags must come before arguments: move -ca before x.csr",
        "hint: usage: cfsslpy sign -ca cert -ca-key key [-config config] [-profile profile] [-hostname hostname] CSR [SUBJECT]",
    ]
    assert lines[-1] == "hint: 'cfsslpy sign -h' lists its flags"


def test_dash_reads_stdin(run_cli: RunCli, ec_ca: CA, tmp_path: Path) -> None:
    spec = json.dumps({"CN": "from stdin", "hosts": ["stdin.example"]}).encode()
    result = run_cli("gencert", "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key), "-", stdin=spec)
    assert result.status == 0, result.stderr
    assert set(result.json) == {"cert", "csr", "key"}


def test_double_dash_then_a_file_named_like_a_flag(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "-odd.json").write_text(json.dumps({"CN": "odd"}))
    result = run_cli("genkey", "--", "-odd.json")
    assert result.status == 0, result.stderr
    assert set(result.json) == {"csr", "key"}


# -- -loglevel ------------------------------------------------------------------------------------------------


def warning_run(run_cli: RunCli, ca: CA, level: str) -> str:
    spec = Path(ca.dir, "leaf.json")
    spec.write_text(json.dumps({"CN": "leaf"}))  # no hosts: cfssl's WARNING (an unknown -profile is now an error)
    result = run_cli("gencert", "-loglevel", level, "-ca", str(ca.cert), "-ca-key", str(ca.key), str(spec))
    assert result.status == 0, result.stderr
    return result.stderr


def test_loglevel_filters_by_severity(run_cli: RunCli, ec_ca: CA) -> None:
    assert '[WARNING] This certificate lacks a "hosts" field.' in warning_run(run_cli, ec_ca, "1")
    assert "[WARNING] This certificate lacks" in warning_run(run_cli, ec_ca, "2")
    assert "[WARNING]" not in warning_run(run_cli, ec_ca, "3")
    assert warning_run(run_cli, ec_ca, "5") == ""


def test_loglevel_0_shows_debug(run_cli: RunCli, ec_ca: CA, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n")
    csr = tmp_path / "x.csr"
    csr.write_text("")
    args = ("sign", "-ca", str(broken), "-ca-key", str(ec_ca.key), str(csr))
    quiet = run_cli(*args)
    loud = run_cli("sign", "-loglevel", "0", *args[1:])
    assert "[DEBUG]" not in quiet.stderr
    assert "[DEBUG] certificate parsing error" in loud.stderr
    assert quiet.error == loud.error == {"code": 1003, "message": "Failed to parse certificate"}


def test_log_lines_use_go_log_format(run_cli: RunCli, ec_ca: CA) -> None:
    lines = [line for line in warning_run(run_cli, ec_ca, "1").splitlines() if "[" in line]
    assert lines
    for line in lines:
        assert LOG_LINE.match(line), line


def test_the_cli_leaves_logging_as_it_found_it(run_cli: RunCli, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    before = logging.getLogger("cfsslpy")
    state = (list(before.handlers), before.level, before.propagate)
    run_cli("version")
    after = logging.getLogger("cfsslpy")
    assert (list(after.handlers), after.level, after.propagate) == state


# -- flags without effect ---------------------------------------------------------------------------------------


def test_flag_without_effect_on_the_command_is_a_warning(run_cli: RunCli) -> None:
    result = run_cli("version", "-ca", "ca.pem", "-initca")
    assert result.status == 0
    assert "[WARNING] flag -ca has no effect on version" in result.stderr
    assert "[WARNING] flag -initca has no effect on version" in result.stderr
    assert result.stdout.startswith("Version: ")


def test_loglevel_itself_never_warns(run_cli: RunCli) -> None:
    result = run_cli("version", "-loglevel", "1")
    assert result.stderr == ""


def test_flags_without_effect_in_the_chosen_mode(run_cli: RunCli, tmp_path: Path) -> None:
    spec = tmp_path / "ca.json"
    spec.write_text(json.dumps({"CN": "mode CA"}))
    result = run_cli("gencert", "-initca", "-hostname", "x.example", str(spec))
    assert result.status == 0, result.stderr
    assert "[WARNING] flag -hostname has no effect with -initca" in result.stderr


# -- env: and file: for -ca / -ca-key --------------------------------------------------------------------------


def test_env_and_file_prefixes_for_ca_and_key(run_cli: RunCli, ec_ca: CA, tmp_path: Path) -> None:
    spec = tmp_path / "leaf.json"
    spec.write_text(json.dumps({"CN": "leaf", "hosts": ["leaf.example"]}))
    result = run_cli(
        "gencert", "-ca", "env:TEST_CA_PEM", "-ca-key", f"file:{ec_ca.key}", str(spec), env={"TEST_CA_PEM": ec_ca.cert.read_text()}
    )
    assert result.status == 0, result.stderr
    result = run_cli(
        "gencert", "-ca", f"file:{ec_ca.cert}", "-ca-key", "env:TEST_CA_KEY", str(spec), env={"TEST_CA_KEY": ec_ca.key.read_text()}
    )
    assert result.status == 0, result.stderr


def test_a_path_with_a_colon_still_works_when_the_file_exists(run_cli: RunCli, ec_ca: CA, tmp_path: Path) -> None:
    odd = tmp_path / "odd:ca.pem"
    odd.write_bytes(ec_ca.cert.read_bytes())
    spec = tmp_path / "leaf.json"
    spec.write_text(json.dumps({"CN": "leaf", "hosts": ["leaf.example"]}))
    result = run_cli("gencert", "-ca", "odd:ca.pem", "-ca-key", str(ec_ca.key), str(spec), cwd=tmp_path)
    assert result.status == 0, result.stderr


# -- exit statuses: each value of the enum ---------------------------------------------------------------------


def test_exit_status_values() -> None:
    assert {s.name: int(s) for s in ExitStatus} == {"SUCCESS": 0, "ERROR": 1, "USAGE": 2, "INTERRUPTED": 130}


def test_exit_status_success(run_cli: RunCli) -> None:
    assert run_cli("version").status == ExitStatus.SUCCESS == 0


def test_exit_status_error(run_cli: RunCli) -> None:
    result = run_cli("sign", "-ca", "missing.pem", "-ca-key", "missing-key.pem", "x.csr")
    assert result.status == ExitStatus.ERROR == 1


def test_exit_status_usage(run_cli: RunCli) -> None:
    assert run_cli("sign", "-nope").status == ExitStatus.USAGE == 2


def test_exit_status_interrupted(run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(version_module, "COMMAND", dataclasses.replace(version_module.COMMAND, run=interrupted))
    result = run_cli("version")
    assert result.status == ExitStatus.INTERRUPTED == 130
    assert result.stdout == ""
    assert result.stderr == "interrupted\n"


def test_an_unexpected_exception_is_one_line_without_traceback(run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(version_module, "COMMAND", dataclasses.replace(version_module.COMMAND, run=broken))
    result = run_cli("version")
    assert result.status == ExitStatus.ERROR
    assert result.stderr == "internal error: RuntimeError: boom (set CFSSLPY_DEBUG=1 for a traceback)\n"
    debug = run_cli("version", env={"CFSSLPY_DEBUG": "1"})
    assert "Traceback" in debug.stderr and debug.status == ExitStatus.ERROR


# -- commands ---------------------------------------------------------------------------------------------------


def test_no_command(run_cli: RunCli) -> None:
    result = run_cli()
    assert result.status == ExitStatus.ERROR
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[:4] == ["No command is given.", "Usage:", "  cfsslpy COMMAND [-flag value ...] [ARGUMENTS]", "Available commands:"]
    assert lines[-4:-2] == ["Top-level flags:", "  -h, -help       print this list"]


def test_unknown_command(run_cli: RunCli) -> None:
    result = run_cli("bogus")
    assert result.status == ExitStatus.ERROR
    lines = result.stderr.splitlines()
    assert lines[:2] == ["Command bogus is not defined.", "Usage:"]
    summaries = {line.split()[0]: line.split(None, 1)[1] for line in lines[4 : lines.index("Top-level flags:")]}
    assert list(summaries) == list(COMMANDS)
    assert summaries["sign"] == "signs a client cert with a host name by a given CA and CA key"
    assert summaries["print-defaults"] == "print default configurations"


@pytest.mark.parametrize("args", [("-h",), ("--help",), ("help",)])
def test_top_level_help(run_cli: RunCli, args: tuple[str, ...]) -> None:
    result = run_cli(*args)
    assert result.status == ExitStatus.SUCCESS
    assert result.stderr.startswith("Usage:\n  cfsslpy COMMAND [-flag value ...] [ARGUMENTS]\nAvailable commands:\n  sign ")
    assert result.stderr.count("\n") < 40  # one line per command, not every flag


def test_top_level_double_dash(run_cli: RunCli) -> None:
    result = run_cli("--", "version")
    assert result.status == 0 and result.stdout.startswith("Version: ")


def test_top_level_flags_are_undefined(run_cli: RunCli) -> None:
    # cfssl's top level defines no flags: "-loglevel" before the command is a usage error
    result = run_cli("-loglevel", "0", "version")
    assert result.status == ExitStatus.USAGE
    assert result.stderr.splitlines()[0] == "flag provided but not defined: -loglevel"


def test_every_listed_command_has_help(run_cli: RunCli) -> None:
    for name in COMMANDS:
        if name == "json-split":
            continue
        result = run_cli(name, "-h")
        assert result.status == 0, name
        assert result.stderr.startswith(f"usage: cfsslpy {name}"), name
