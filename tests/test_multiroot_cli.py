"""The multirootca command handler (cfsslpy.cli.multirootca): flags checked before anything is read, and the
roots loaded before the socket is bound. The server itself runs in tests/integration/test_multiroot_interop.py."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from test_multiroot import two_roots

from cfsslpy.cli.context import IO
from cfsslpy.cli.multirootca import FLAGSET, MultirootOptions, run, split_address
from cfsslpy.errors import PlainError, UsageError
from cfsslpy.multiroot import RootsError


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (":8888", ("", 8888)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("[::1]:443", ("::1", 443)),
        ("ca.example.com:8888", ("ca.example.com", 8888)),
    ],
)
def test_go_listen_addresses(address: str, expected: tuple[str, int]) -> None:
    assert split_address(address) == expected


@pytest.mark.parametrize(
    ("address", "words"), [("8888", "missing port"), ("::1:8888", "too many colons"), (":http", "invalid port"), (":70000", "invalid port")]
)
def test_bad_listen_addresses(address: str, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        split_address(address)


def test_defaults_and_flag_table() -> None:
    opts = MultirootOptions()
    assert (opts.address, opts.roots, opts.label, opts.loglevel, opts.workers) == (":8888", "", "", 1, 1)
    assert MultirootOptions.flag_attrs == {
        "a": "address",
        "roots": "roots",
        "l": "label",
        "tls-cert": "tls_cert",
        "tls-key": "tls_key",
        "loglevel": "loglevel",  # cfssl's six, then serve's
        "mutual-tls-ca": "mutual_tls_ca",
        "mutual-tls-cn": "mutual_tls_cn",
        "min-tls-version": "min_tls_version",
        "workers": "workers",
    }
    assert set(FLAGSET) == set(MultirootOptions.flag_attrs)


def test_the_command_and_its_links_run_multirootca(run_cli: Any, tmp_path: Path) -> None:
    """``cfsslpy multirootca`` and a link named ``multirootca`` reach the same command: -h shows its own flags,
    a missing -roots is cfssl's fatal text, an unknown flag is Go's, an extra argument is refused."""
    from cfsslpy.cli.progs import PROGRAMS

    assert PROGRAMS["multirootca"] == PROGRAMS["cfssl-multirootca"] == "multirootca"
    result = run_cli("multirootca", "-h")
    assert result.status == 0 and "-roots" in result.stderr and "-mutual-tls-cn" in result.stderr and "-ca-key" not in result.stderr
    result = run_cli("multirootca")
    assert result.status == 1 and "no root file specified" in result.stderr
    link = run_cli("-h", prog="multirootca")
    assert link.status == 0 and "-roots" in link.stderr and "-ca-key" not in link.stderr
    assert run_cli(prog="multirootca").stderr.splitlines()[-1] == result.stderr.splitlines()[-1]
    result = run_cli("multirootca", "-bogus")
    assert result.status == 2 and "flag provided but not defined: -bogus" in result.stderr
    result = run_cli("multirootca", "-roots", str(tmp_path / "roots.conf"), "extra")
    assert result.status == 1 and "argument is provided but not defined" in result.stderr


@pytest.mark.parametrize(
    ("opts", "error", "words"),
    [
        (MultirootOptions(), PlainError, "no root file specified"),
        (MultirootOptions(roots="r.conf", tls_cert="c.pem"), UsageError, "-tls-cert and -tls-key go together"),
        (MultirootOptions(roots="r.conf", mutual_tls_ca="ca.pem"), UsageError, "need HTTPS"),
        (
            MultirootOptions(roots="r.conf", tls_cert="c", tls_key="k", mutual_tls_cn="^x"),
            UsageError,
            "-mutual-tls-cn needs -mutual-tls-ca",
        ),
        (MultirootOptions(roots="r.conf", workers=-1), UsageError, "-workers"),
        (MultirootOptions(roots="r.conf", address="nowhere"), UsageError, "missing port"),
    ],
)
def test_flags_are_checked_before_anything_is_read(opts: MultirootOptions, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        run(opts, IO())


def test_an_unusable_root_fails_before_the_socket_is_bound(tmp_path: Path) -> None:
    roots = two_roots(tmp_path, beta={"config": "missing.json"})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RootsError, match=r"roots\.conf:9: root 'beta': config: ") as info:
        run(MultirootOptions(address=f"127.0.0.1:{port}", roots=str(roots)), IO())
    assert info.value.label == "beta"
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))  # nobody listens there: nothing was half-started
