"""The one flag parser (cfsslpy.cli.goflag, Go's ``flag`` package) behind cfssl, cfssljson and mkbundle, and the
typed options each command declares (cfsslpy.cli.command.Options)."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import pytest

import cfsslpy.cli.runner as runner_module
import cfsslpy.cli.version as version_module
from cfsslpy.cli import jsonsplit, mkbundle
from cfsslpy.cli.command import Command, Options
from cfsslpy.cli.context import IO
from cfsslpy.cli.flags import FLAGS
from cfsslpy.cli.goflag import Flag, HelpRequested, parse, print_defaults
from cfsslpy.cli.main import COMMANDS, ExitStatus, load_command
from cfsslpy.cli.runner import run_command
from cfsslpy.cli.token import TokenOptions, interleaved
from cfsslpy.errors import PlainError, UsageError
from cfsslpy.inputs import Stdin
from tests.conftest import CA, RunCli

TOY = {f.name: f for f in (Flag("f", "-", "input file"), Flag("v", False, "verbose"), Flag("n", 4, "workers"), Flag("long-name", "", "x"))}


# -- Go's flag.Parse -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "values", "rest"),
    [
        (["-f", "a", "x"], {"f": "a"}, ["x"]),
        (["--f", "a", "x"], {"f": "a"}, ["x"]),
        (["-f=a", "x"], {"f": "a"}, ["x"]),
        (["--f=a=b", "x"], {"f": "a=b"}, ["x"]),
        (["-f", "-v"], {"f": "-v"}, []),  # a value may look like a flag
        (["-v", "x"], {"v": True}, ["x"]),
        (["-v=false", "x"], {"v": False}, ["x"]),
        (["-v", "false"], {"v": True}, ["false"]),  # a boolean never takes the next word
        (["-n", "0x10"], {"n": 16}, []),
        (["-long-name", "y"], {"long-name": "y"}, []),
        (["x", "-f", "a"], {}, ["x", "-f", "a"]),  # parsing stops at the first positional argument
        (["-f", "a", "-", "-v"], {"f": "a"}, ["-", "-v"]),  # "-" alone is a positional argument
        (["-v", "--", "-f", "a"], {"v": True}, ["-f", "a"]),  # "--" ends the flags and is dropped
        (["-f", "a", "-f", "b"], {"f": "b"}, []),  # the last one wins
        ([], {}, []),
    ],
)
def test_go_flag_rules(argv: list[str], values: dict[str, Any], rest: list[str]) -> None:
    assert parse(argv, TOY) == (values, rest)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-x"], "flag provided but not defined: -x"),
        (["--x=1"], "flag provided but not defined: -x"),
        (["-lon", "y"], "flag provided but not defined: -lon"),  # no abbreviations
        (["---f"], "bad flag syntax: ---f"),
        (["-=f"], "bad flag syntax: -=f"),
        (["-f"], "flag needs an argument: -f"),
        (["-v=maybe"], 'invalid boolean value "maybe" for -v: parse error'),
        (["-n", "four"], 'invalid value "four" for flag -n: parse error'),
    ],
)
def test_go_flag_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse(argv, TOY)
    assert info.value.message == message


@pytest.mark.parametrize("flag", ["-h", "-help", "--h", "--help", "-h=1"])
def test_help_is_asked_for(flag: str) -> None:
    with pytest.raises(HelpRequested):
        parse(["-v", flag, "-x"], TOY)


def test_flag_kinds_come_from_the_defaults() -> None:
    assert [TOY[name].kind for name in ("f", "v", "n")] == [str, bool, int]
    assert {flag.kind for flag in FLAGS.values()} == {str, bool, int}


def test_print_defaults_is_gos_layout() -> None:
    assert print_defaults(TOY) == (
        '  -f string\n    \tinput file (default "-")\n'  # strings quoted
        "  -long-name string\n    \tx\n"  # a zero default is not shown
        "  -n int\n    \tworkers (default 4)\n"
        "  -v\tverbose\n"  # a one-letter boolean keeps its help on the same line
    )


# -- the three programs parse with it ------------------------------------------------------------------------


@pytest.fixture
def parse_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], Any]]:
    calls: list[tuple[list[str], Any]] = []

    def spy(argv: list[str], flags: Any) -> tuple[dict[str, Any], list[str]]:
        calls.append((list(argv), flags))
        return parse(argv, flags)

    monkeypatch.setattr(runner_module, "parse", spy)
    return calls


@pytest.mark.parametrize(
    ("prog", "args", "flagset", "usage_start"),
    [
        ("cfsslpy", ["version", "-x"], FLAGS, "usage: cfsslpy version"),
        ("cfsslpy", ["json-split", "-x"], jsonsplit.FLAGSET, "Usage of cfssljson:"),
        ("cfssljson", ["-x"], jsonsplit.FLAGSET, "Usage of cfssljson:"),
        ("cfsslpy", ["mkbundle", "-x"], mkbundle.FLAGSET, "usage: cfsslpy mkbundle"),
        ("cfssl-mkbundle", ["-x"], mkbundle.FLAGSET, "usage: cfssl-mkbundle"),
    ],
)
def test_every_program_uses_the_one_parser(
    run_cli: RunCli, parse_calls: list[tuple[list[str], Any]], prog: str, args: list[str], flagset: Any, usage_start: str
) -> None:
    result = run_cli(*args, prog=prog)
    assert [flags for _, flags in parse_calls] == [flagset]
    assert result.status == ExitStatus.USAGE
    first, rest = result.stderr.split("\n", 1)
    assert first == "flag provided but not defined: -x"
    assert rest.startswith(usage_start)


@pytest.mark.parametrize(
    ("prog", "args", "usage_start"),
    [
        ("cfsslpy", ["sign", "-h"], "usage: cfsslpy sign"),
        ("cfssljson", ["--help"], "Usage of cfssljson:"),
        ("mkbundle", ["-help"], "usage: mkbundle"),
    ],
)
def test_every_program_prints_its_usage_for_help(run_cli: RunCli, prog: str, args: list[str], usage_start: str) -> None:
    result = run_cli(*args, prog=prog)
    assert (result.status, result.stdout) == (ExitStatus.SUCCESS, "")
    assert result.stderr.startswith(usage_start)


def test_the_go_usage_texts_come_from_the_flag_sets() -> None:
    assert jsonsplit.USAGE.startswith("Usage of cfssljson:\n" + print_defaults(jsonsplit.FLAGSET) + "\n")
    assert "flags:\n" + print_defaults(mkbundle.FLAGSET) + "\nexample:" in mkbundle.usage("mkbundle")


def test_double_dash_in_each_program(run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli("-bare", "--", "-odd", stdin=b'{"cert": "C"}', prog="cfssljson").status == 0
    assert (tmp_path / "-odd.pem").read_text() == "C"
    assert run_cli("mkbundle", "--", "-missing").stderr == "lstat -missing: no such file or directory\n"
    (tmp_path / "-odd.json").write_text('{"CN": "odd"}')
    assert run_cli("genkey", "--", "-odd.json").status == 0


# -- typed options: exactly the declared flags ------------------------------------------------------------------


def commands() -> list[Command[Any]]:
    loaded = [load_command(name) for name in COMMANDS]
    return [command for command in loaded if command is not None]


@pytest.mark.parametrize("command", commands(), ids=lambda command: command.name)
def test_options_hold_exactly_the_declared_flags(command: Command[Any]) -> None:
    options = command.options
    declared = set(options.flag_attrs.values())
    assert options.flag_names and set(options.flag_names) <= set(options.flagset) or command.name == "print-defaults"
    every = {name: flag.default for name, flag in options.flagset.items()}
    opts = options.from_values(every)
    assert set(vars(opts)) == declared | {"given"}
    assert opts.given == set(options.flagset)
    for name in set(options.flagset) - set(options.flag_names):
        with pytest.raises(AttributeError):
            getattr(opts, options.flagset[name].attribute)
    defaults = options()
    for name in options.flag_names:
        assert getattr(defaults, options.flag_attrs[name]) == options.flagset[name].default
    assert defaults.given == frozenset()
    assert command.flags == list(options.flag_names)


def test_a_command_reads_only_what_it_declares() -> None:
    opts = TokenOptions.from_values({"algo": "rsa", "ca": "ca.pem", "size": 3072})
    assert (opts.algo, opts.size, opts.module, opts.id) == ("rsa", 3072, "", "")
    assert opts.given == {"algo", "ca", "size"}
    assert not hasattr(opts, "ca")
    with pytest.raises(AttributeError, match="read-only"):
        opts.algo = "ecdsa"  # type: ignore[misc]
    with pytest.raises(TypeError, match="reads no flag -ca"):
        TokenOptions(ca="x")


def test_interleaved_flags_keep_the_options_type() -> None:
    opts = TokenOptions.from_values({"module": "/m.so"})
    merged, positionals = interleaved(opts, ["generate", "URI", "-algo", "rsa", "-ca", "x"])
    assert type(merged) is TokenOptions and positionals == ["generate", "URI"]
    assert (merged.module, merged.algo) == ("/m.so", "rsa")
    assert merged.given == {"module", "algo", "ca"}


def test_a_declaration_must_name_a_flag_of_its_type() -> None:
    with pytest.raises(TypeError, match="no-such-flag"):

        class Bad(Options):
            no_such_flag: str

    with pytest.raises(TypeError, match="port"):

        class WrongType(Options):
            port: str


def test_shared_option_classes_compose() -> None:
    from cfsslpy.cli.common import REMOTE_FLAGS, RemoteOptions, SignerOptions
    from cfsslpy.cli.sign import BUNDLE_FLAGS, SignOptions

    assert REMOTE_FLAGS == ["remote", "tls-remote-ca", "mutual-tls-client-cert", "mutual-tls-client-key"]
    assert BUNDLE_FLAGS == ["bundle", "ca-bundle", "int-bundle"]
    assert set(RemoteOptions.flag_names) < set(SignerOptions.flag_names) < set(SignOptions.flag_names)
    assert set(SignOptions.flag_names) == {"hostname", "csr", "db-config", *SignerOptions.flag_names, *BUNDLE_FLAGS}


# -- flags a command does not read ----------------------------------------------------------------------------


def test_info_does_not_read_db_config(run_cli: RunCli, ec_ca: CA, tmp_path: Path) -> None:
    # info warned that -db-config has no effect, yet opened (and created) the database; it does not read it now
    db = tmp_path / "db.json"
    result = run_cli("info", "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key), "-db-config", str(db))
    assert result.status == 0, result.stderr
    assert "[WARNING] flag -db-config has no effect on info" in result.stderr
    assert set(result.json) == {"certificate", "usages", "expiry"}


def test_own_flag_sets_accept_no_cfssl_flags(run_cli: RunCli) -> None:
    assert run_cli("json-split", "-ca", "x").stderr.startswith("flag provided but not defined: -ca\n")
    assert run_cli("-loglevel", "1", prog="cfssljson").status == ExitStatus.USAGE


# -- a command with its own flag set is a small registration ---------------------------------------------------

SERVER_FLAGS = {
    f.name: f for f in (Flag("a", ":8888", "listening address", attr="address"), Flag("roots", "", "roots file"), FLAGS["loglevel"])
}


class ToyOptions(Options, flagset=SERVER_FLAGS):
    address: str  # -a
    roots: str


def toy_run(opts: ToyOptions, args: list[str], io: IO) -> int:
    if not opts.roots:
        raise PlainError("no root file specified", hint="give -roots FILE")
    io.out(f"{opts.address} {opts.roots} {args}\n")
    return 0


TOY_COMMAND = Command(
    name="toy", summary="a server", usage="toy [-a addr] -roots file", options=ToyOptions, example="toy -roots roots.conf", run=toy_run
)


def run_toy(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = run_command(TOY_COMMAND, list(argv), IO(stdin=Stdin(io.BytesIO()), stdout=out, stderr=err), "toy")
    return status, out.getvalue(), err.getvalue()


def test_a_command_with_its_own_flag_set() -> None:
    assert run_toy("-a", ":9000", "-roots=r.conf", "x") == (0, ":9000 r.conf ['x']\n", "")
    assert ToyOptions.flag_names == ("a", "roots") and ToyOptions.flag_attrs == {"a": "address", "roots": "roots"}
    status, _, err = run_toy("-ca", "x")
    assert (status, err.splitlines()[0]) == (ExitStatus.USAGE, "flag provided but not defined: -ca")
    status, _, err = run_toy()
    assert (status, err) == (ExitStatus.ERROR, "no root file specified\nhint: give -roots FILE\n")
    status, _, err = run_toy("-h")
    assert status == ExitStatus.SUCCESS and err.startswith("usage: toy [-a addr] -roots file")
    for line in ("-a VALUE", "listening address (default :8888)", "-roots VALUE", "-loglevel N", "example:\n  toy -roots roots.conf"):
        assert line in err
    assert "cfssl's flags" not in err


# -- hints -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "stderr_start", "status"),
    [
        (PlainError("boom", hint="look at x.json"), "boom\nhint: look at x.json\n", ExitStatus.ERROR),
        (UsageError("bad flag", hint="try -y"), "bad flag\nhint: try -y\nusage: cfsslpy version", ExitStatus.USAGE),
        (PlainError("no hint"), "no hint\n", ExitStatus.ERROR),
    ],
)
def test_an_error_hint_follows_the_error_line(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, error: Exception, stderr_start: str, status: int
) -> None:
    def failing(*_: object) -> int:
        raise error

    monkeypatch.setattr(version_module, "COMMAND", dataclasses.replace(version_module.COMMAND, run=failing))
    result = run_cli("version")
    assert result.status == status
    assert result.stderr.startswith(stderr_start)
    if stderr_start == "no hint\n":
        assert result.stderr == stderr_start
