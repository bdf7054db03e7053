"""build.py's pieces (the lock reader, the targets, the content-addressed layout) and the launcher's cache
rules, in-process; the built executable itself is tested in integration/test_pyz_universal.py."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from cfsslpy import launcher

ROOT = Path(__file__).resolve().parents[1]


def _build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cfsslpy_build", ROOT / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["cfsslpy_build"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


build = _build_module()
H1, H2, H3 = "a" * 64, "b" * 64, "c" * 64

LOCK = f"""\
# header
# [runtime]
cffi==2.1.1 ; platform_python_implementation != 'PyPy' \\
    --hash=sha256:{H1} \\
    --hash=sha256:{H2}
    # via cryptography
Typing_Extensions==4.16.0 ; python_full_version < '3.11' \\
    --hash=sha256:{H3}

# [tools]
pip==26.3 \\
    --hash=sha256:{H1}
"""


def test_read_lock_sections_markers_hashes(tmp_path: Path) -> None:
    (tmp_path / "requirements.lock").write_text(LOCK)
    pins = build.read_lock(tmp_path / "requirements.lock")
    assert [(p.name, p.version, p.section) for p in pins] == [
        ("cffi", "2.1.1", "runtime"),
        ("typing-extensions", "4.16.0", "runtime"),
        ("pip", "26.3", "tools"),
    ]
    assert pins[0].marker == "platform_python_implementation != 'PyPy'" and pins[0].hashes == (H1, H2)
    assert pins[1].marker == "python_full_version < '3.11'"
    assert pins[2].line == f"pip==26.3 --hash=sha256:{H1}"


@pytest.mark.parametrize(
    "text, says",
    [
        ("# [runtime]\ncffi>=2 \\\n    --hash=sha256:" + H1 + "\n", "cannot read this entry"),
        ("# [runtime]\ncffi==2.1.1\n", "cannot read this entry"),  # no hash: not a lock
        ("cffi==2.1.1 --hash=sha256:" + H1 + "\n", "cannot read this entry"),  # outside a section
        ("# [tools]\npip==26.3 --hash=sha256:" + H1 + "\n", "has no [runtime] section"),
    ],
)
def test_read_lock_refuses_what_is_not_a_lock(tmp_path: Path, text: str, says: str) -> None:
    (tmp_path / "requirements.lock").write_text(text)
    with pytest.raises(build.BuildError, match=says.replace("[", r"\[").replace("]", r"\]")):
        build.read_lock(tmp_path / "requirements.lock")


def test_the_lock_in_the_repository_is_readable_and_has_the_runtime() -> None:
    pins = build.read_lock()
    runtime = {p.name for p in pins if p.section == "runtime"}
    assert set(build.REQUIRED) <= runtime
    assert {"pip", "packaging", "pytest"} <= {p.name for p in pins if p.section == "tools"}
    assert all(p.hashes for p in pins)


def test_targets_are_every_version_on_both_machines() -> None:
    assert [p.name for p in build.PAIRS] == [f"cp3{m}-{a}" for a in ("x86_64", "aarch64") for m in range(10, 15)]
    aarch64 = build.Pair(3, 12, "aarch64")
    assert aarch64.platforms[0] == "manylinux_2_28_aarch64" and "manylinux2014_aarch64" in aarch64.platforms
    assert not any("x86_64" in p for p in aarch64.platforms)
    assert all(int(p.split("_")[2]) <= 28 for p in build.Pair(3, 10, "x86_64").platforms if p.startswith("manylinux_2_"))
    args = aarch64.pip_target()
    assert args[args.index("--python-version") + 1] == "3.12" and "cp312" in args and "abi3" in args
    assert aarch64.marker_environment()["python_full_version"] == "3.12.0"


def test_layout_stores_each_content_once_and_splits_common_from_own(tmp_path: Path) -> None:
    files = {"same.py": b"shared", "other.py": b"shared", "ext.so": b"x86", "ext2.so": b"arm"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    layout = build.Layout()
    for pair in ("cp310-x86_64", "cp310-aarch64"):
        layout.add(pair, "pkg/same.py", tmp_path / "same.py")
        layout.add(pair, "pkg/also.py", tmp_path / "other.py")
    layout.add("cp310-x86_64", "pkg/_ext.so", tmp_path / "ext.so")
    layout.add("cp310-aarch64", "pkg/_ext.so", tmp_path / "ext2.so")
    common, own = layout.split()
    assert [entry[0] for entry in common] == ["pkg/also.py", "pkg/same.py"]
    assert [entry[0] for entry in own["cp310-x86_64"]] == ["pkg/_ext.so"]
    assert own["cp310-x86_64"][0][1] != own["cp310-aarch64"][0][1]
    assert len(layout.blobs) == 3  # "shared" once, and the two libraries


# -- the launcher ------------------------------------------------------------------------------------------


@pytest.fixture()
def bundle(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    values: dict[str, object] = {"build_id": "f" * 64, "pairs": ["cp311-x86_64"], "glibc": [2, 28], "entry": "x:y"}
    monkeypatch.setattr(launcher, "BUNDLE", values)
    return values


def _tree(root: Path, files: dict[str, bytes], build_id: str) -> Path:
    tree = root / "tree"
    for rel, data in files.items():
        (tree / "site-packages" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / "site-packages" / rel).write_bytes(data)
    (tree / ".complete").write_text("\n".join([build_id, *(f"{len(d)} {r}" for r, d in files.items())]) + "\n")
    return tree


def test_complete_needs_every_file_with_its_size(tmp_path: Path, bundle: dict[str, object]) -> None:
    tree = _tree(tmp_path, {"a/b.py": b"12345", "c.so": b"xy"}, str(bundle["build_id"]))
    assert launcher._complete(str(tree))
    (tree / "site-packages" / "c.so").write_bytes(b"xyz")
    assert not launcher._complete(str(tree))
    (tree / "site-packages" / "c.so").unlink()
    assert not launcher._complete(str(tree))
    other = _tree(tmp_path / "o", {"a.py": b"1"}, "another build")
    assert not launcher._complete(str(other))
    assert not launcher._complete(str(tmp_path / "missing"))


def test_private_accepts_only_a_0700_directory_of_ours(tmp_path: Path) -> None:
    root = tmp_path / "cache" / "cfsslpy"
    assert launcher._private(str(root), True) is None
    assert oct(root.stat().st_mode & 0o777) == "0o700" and oct(root.parent.stat().st_mode & 0o777) == "0o700"
    root.chmod(0o755)
    assert "mode 0755" in str(launcher._private(str(root), False))
    (tmp_path / "file").write_text("")
    assert launcher._private(str(tmp_path / "file"), False) == "not a directory"
    assert "cannot create it" in str(launcher._private(str(tmp_path / "no" / "such" / "dir"), True))
    assert not (tmp_path / "no").exists()  # never a chain of parents (HOME itself is not created)


def test_prune_removes_only_stale_caches_of_other_builds(tmp_path: Path) -> None:
    old = time.time() - 3 * 86400
    names = {"cfsslpy-old-cp311-x86_64": old, "cfsslpy-new-cp311-x86_64": time.time(), ".tmp-cfsslpy-x-1-aa": old, "mine": old}
    for name, when in names.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / ".complete").write_text("")
        os.utime(tmp_path / name / ".complete", (when, when))
        os.utime(tmp_path / name, (when, when))
    keep = "cfsslpy-keep-cp311-x86_64"
    (tmp_path / keep).mkdir()
    launcher._prune(str(tmp_path), keep)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfsslpy-keep-cp311-x86_64", "cfsslpy-new-cp311-x86_64", "mine"]


def test_candidates_order_and_home_handling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "/x/cache")
    monkeypatch.setenv("HOME", "/home/u")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1")
    monkeypatch.setenv("TMPDIR", "relative/not/used")
    uid = os.geteuid()
    assert launcher._candidates() == [
        "/x/cache/cfsslpy",
        "/home/u/.cache/cfsslpy",
        "/run/user/1/cfsslpy",
        f"/var/tmp/cfsslpy-{uid}",
        f"/tmp/cfsslpy-{uid}",
        f"/dev/shm/cfsslpy-{uid}",
    ]
    monkeypatch.setenv("HOME", "/")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert "/.cache/cfsslpy" not in launcher._candidates()


def test_launcher_refuses_to_run_unbuilt(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        launcher.main()
    assert stopped.value.code == 1
    assert "only inside the executable" in capsys.readouterr().err


# -- --serve --port: the port is checked before anything is built or created ----------------------------------


def test_serve_on_a_busy_port_fails_before_building_or_creating_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    def no_build(out: Path) -> Path:
        raise AssertionError("built although the port is busy")

    monkeypatch.setattr(build, "build", no_build)
    monkeypatch.setattr(build, "BUILD", tmp_path / "build")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        status = build.main(["--serve", str(tmp_path / "data"), "--port", str(port)])
    assert status == 1
    err = capsys.readouterr().err
    assert f"--serve: cannot listen on 127.0.0.1:{port} (" in err
    assert "pick another port with --port (nothing was created)" in err
    assert sorted(tmp_path.iterdir()) == []  # no data directory, no build directory


def test_run_serve_checks_the_port_before_it_creates_the_data_directory(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(build.BuildError, match=f"cannot listen on 127.0.0.1:{port}"):
            build.run_serve(tmp_path / "app.pyz", sys.executable, tmp_path / "data", port)
    assert not (tmp_path / "data").exists()


def test_a_free_port_passes_and_port_is_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    build.check_port_free(port)  # free again: no error
    for bad in ("0", "65536", "http"):
        with pytest.raises(SystemExit) as exc:
            build.main(["--serve", str(tmp_path / "d"), "--port", bad])
        assert exc.value.code == 2
        assert "--port: " in capsys.readouterr().err
    assert build.main(["--port", "9000", "--skip-smoke"]) == 1
    assert "error: --port is for --serve" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
