"""Reading ``-`` / path / ``env:VAR`` / ``file:path``, and atomic writes with exact modes (0600 for secrets)."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from cfsslpy.errors import PlainError
from cfsslpy.inputs import Stdin, read_input, split_prefix, write_atomic, write_secret

# -- reading ------------------------------------------------------------------------------------------------


def test_dash_is_stdin_read_once_and_shared() -> None:
    stream = io.BytesIO(b"data")
    stdin = Stdin(stream)
    assert read_input("-", stdin=stdin) == b"data"
    assert read_input("-", stdin=stdin) == b"data"  # a second "-" sees the same bytes
    assert stream.tell() == 4


def test_plain_path(tmp_path: Path) -> None:
    path = tmp_path / "a.pem"
    path.write_bytes(b"x")
    assert read_input(str(path)) == b"x"


def test_file_prefix(tmp_path: Path) -> None:
    path = tmp_path / "a.pem"
    path.write_bytes(b"x")
    assert read_input(f"file:{path}") == b"x"


def test_env_prefix_reads_the_variable() -> None:
    assert read_input("env:MY_PEM", environ={"MY_PEM": "pem text"}) == b"pem text"


def test_env_prefix_unset_variable() -> None:
    with pytest.raises(PlainError) as info:
        read_input("env:NOPE", environ={})
    assert info.value.message == "environment variable NOPE is not set"


def test_prefixes_can_be_disabled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PlainError) as info:
        read_input("env:X", environ={"X": "y"}, allow_prefixes=False)
    assert info.value.message == "open env:X: no such file or directory"


def test_unknown_prefix_on_a_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PlainError) as info:
        read_input("pkcs12:thing")
    assert info.value.message == "unknown prefix: pkcs12"


def test_a_path_with_a_colon_works_when_the_file_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "odd:name.pem").write_bytes(b"x")
    assert read_input("odd:name.pem") == b"x"


@pytest.mark.parametrize(
    ("spec", "prefix"),
    [
        ("env:VAR", ("env", "VAR")),
        ("file:/a/b", ("file", "/a/b")),
        ("/abs/path", ("", "/abs/path")),
        ("./x:y", ("", "./x:y")),
        ("a.b:c", ("", "a.b:c")),
        ("C:\\x", ("C", "\\x")),
    ],
)
def test_split_prefix(spec: str, prefix: tuple[str, str]) -> None:
    assert split_prefix(spec) == prefix


def test_missing_file_uses_go_wording(tmp_path: Path) -> None:
    with pytest.raises(PlainError) as info:
        read_input(str(tmp_path / "missing.pem"))
    assert info.value.message == f"open {tmp_path / 'missing.pem'}: no such file or directory"


def test_directory_uses_go_wording(tmp_path: Path) -> None:
    with pytest.raises(PlainError) as info:
        read_input(str(tmp_path))
    assert info.value.message == f"read {tmp_path}: is a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file_uses_go_wording(tmp_path: Path) -> None:
    path = tmp_path / "secret.pem"
    path.write_bytes(b"x")
    path.chmod(0)
    with pytest.raises(PlainError) as info:
        read_input(str(path))
    assert info.value.message == f"open {path}: permission denied"


# -- writing --------------------------------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("file_mode", [0o644, 0o664, 0o600, 0o400])
def test_write_atomic_sets_the_exact_mode_whatever_the_umask(tmp_path: Path, file_mode: int) -> None:
    old = os.umask(0o077)
    try:
        path = tmp_path / "out.pem"
        write_atomic(str(path), b"content", file_mode)
    finally:
        os.umask(old)
    assert path.read_bytes() == b"content"
    assert mode(path) == file_mode


def test_write_secret_is_0600(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "key.pem"
        write_secret(str(path), b"private")
    finally:
        os.umask(old)
    assert mode(path) == 0o600
    assert path.read_bytes() == b"private"


def test_write_atomic_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "out.pem"
    path.write_bytes(b"old content, longer than the new one")
    path.chmod(0o666)
    write_atomic(str(path), b"new", 0o644)
    assert path.read_bytes() == b"new"
    assert mode(path) == 0o644


def test_a_secret_is_never_readable_by_others_while_being_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    old = os.umask(0)
    try:
        write_atomic(str(tmp_path / "cert.pem"), b"x", 0o644)
    finally:
        os.umask(old)
    assert seen == [0o600]  # the data reached the disk while only the owner could read it


def test_no_temporary_file_is_left_when_the_rename_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        write_secret(str(tmp_path / "key.pem"), b"private")
    assert list(tmp_path.iterdir()) == []


def test_no_temporary_file_is_left_when_writing_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", fail)
    target = tmp_path / "key.pem"
    target.write_bytes(b"previous")
    with pytest.raises(OSError):
        write_secret(str(target), b"private")
    assert [p.name for p in tmp_path.iterdir()] == ["key.pem"]
    assert target.read_bytes() == b"previous"  # the old file is untouched


def test_writing_into_a_missing_directory_fails_cleanly(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        write_atomic(str(tmp_path / "missing" / "out.pem"), b"x")
    assert list(tmp_path.iterdir()) == []
