"""The multirootca command handler (cfsslpy.cli.multirootca): flags checked before anything is read, and the
roots loaded before the socket is bound. The server itself runs in tests/integration/test_multiroot_interop.py."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest
from test_multiroot import two_roots

from cfsslpy.cli.context import IO
from cfsslpy.cli.multirootca import FLAGS, MultirootOptions, run, split_address
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
    fields = {f.name for f in dataclasses.fields(MultirootOptions)}
    assert {field for _flag, field, _help in FLAGS} == fields
    assert [flag for flag, _f, _h in FLAGS][:6] == ["a", "roots", "l", "tls-cert", "tls-key", "loglevel"]  # cfssl's


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
