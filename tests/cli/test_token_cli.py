"""``token``: argument handling that needs no token (the SoftHSM tests are in integration/test_ceremony_softhsm.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cfsslpy.cli.command import Options
from cfsslpy.cli.token import interleaved
from tests.conftest import RunCli

URI = "pkcs11:token=CA;object=root?module-path=/nonexistent/libnothing.so&pin-value=12345678"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "token needs a subcommand: list, objects, generate, pubkey"),
        (("frob",), "unknown token subcommand 'frob'"),
        (("pubkey", "/etc/key.pem"), "want a pkcs11: URI"),
        (("generate", URI, "-algo", "dsa"), "-algo 'dsa': want rsa, ecdsa or ed25519"),
        (("generate", URI, "-id", "xyz"), "-id 'xyz' is not hex"),
        (("objects", URI, "-nope"), "flag provided but not defined: -nope"),
        (("list", "-h"), "-h/-help goes before the subcommand"),
    ],
)
def test_usage_errors_exit_2(run_cli: RunCli, args: tuple[str, ...], message: str) -> None:
    result = run_cli("token", *args)
    assert result.status == 2, result.stderr
    assert message in result.stderr
    assert "cfsslpy token list" in result.stderr  # the usage follows
    assert "12345678" not in result.stderr


def test_extra_arguments_are_refused(run_cli: RunCli) -> None:
    result = run_cli("token", "pubkey", URI, "extra")
    assert result.status == 1 and "too many arguments" in result.stderr


def test_missing_uri(run_cli: RunCli) -> None:
    result = run_cli("token", "pubkey")
    assert result.status == 1 and "not enough arguments" in result.stderr


def test_a_bad_uri_is_a_cfssl_error(run_cli: RunCli) -> None:
    result = run_cli("token", "pubkey", "pkcs11:token=CA;bogus=1")
    assert result.status == 1
    assert result.error["code"] == 2001 and "unknown path attribute 'bogus'" in result.error["message"]


def test_a_missing_module_is_a_cfssl_error_without_the_pin(run_cli: RunCli, tmp_path: Path) -> None:
    pytest.importorskip("pkcs11")
    for args in (("list", "-module", str(tmp_path / "libnothing.so")), ("pubkey", URI), ("generate", URI)):
        result = run_cli("token", *args)
        assert result.status == 1, args
        assert result.error["code"] in (2001, 2500), result.stderr
        assert "Traceback" not in result.stderr and "12345678" not in result.stderr


def test_help(run_cli: RunCli) -> None:
    result = run_cli("token", "-h")
    assert result.status == 0
    assert "token generate URI [-algo ecdsa|rsa|ed25519]" in result.stderr and "-module" in result.stderr


def test_interleaved_flags() -> None:
    opts = Options.from_values({"module": "/m.so"})
    merged, positionals = interleaved(opts, ["generate", "URI", "-algo", "rsa", "-size=3072", "-id", "0a"])
    assert positionals == ["generate", "URI"]
    assert (merged.algo, merged.size, merged.id, merged.module) == ("rsa", 3072, "0a", "/m.so")
    assert merged.given == {"module", "algo", "size", "id"}
    same, positionals = interleaved(opts, ["list"])
    assert same is opts and positionals == ["list"]
    _, positionals = interleaved(opts, ["objects", "--", "-weird"])
    assert positionals == ["objects", "-weird"]
