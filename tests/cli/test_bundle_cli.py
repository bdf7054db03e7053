"""``bundle`` through the CLI in-process: targets, flags, inputs, output format and errors (reference §1.3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bundle_pki import BundlePKI, build_pki, write_pki
from conftest import tls_server
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from cfsslpy.bundler import ECDSA_WARNING, NO_METADATA_WARNING, SHA2_WARNING
from cfsslpy.cli.bundle import NO_TARGET
from tests.cli.errlines import error_line, hints
from tests.conftest import RunCli


@pytest.fixture(scope="module")
def pki() -> BundlePKI:
    return build_pki()


@pytest.fixture
def files(pki: BundlePKI, tmp_path: Path) -> dict[str, Path]:
    return write_pki(pki, tmp_path / "pki")


def test_no_target(run_cli: RunCli) -> None:
    result = run_cli("bundle")
    assert (result.status, result.stdout, error_line(result.stderr)) == (1, "", NO_TARGET)
    assert hints(result.stderr)[0].startswith("usage: cfsslpy bundle ")


def test_bundle_from_file_prints_json_without_newline(run_cli: RunCli, files: dict[str, Path], pki: BundlePKI) -> None:
    result = run_cli("bundle", "-cert", str(files["leaf"]), "-ca-bundle", str(files["roots"]), "-int-bundle", str(files["ints"]))
    assert result.status == 0, result.stderr
    assert not result.stdout.endswith("\n")
    doc = result.json
    assert list(doc) == sorted(doc)
    assert doc["bundle"] == pki.pem("leaf", "int2", "int1").decode().strip()
    assert doc["status"]["messages"] == [SHA2_WARNING, ECDSA_WARNING, NO_METADATA_WARNING]
    assert "[WARNING] No metadata, Ubiquitous falls back to Optimal." in result.stderr


def test_bundle_with_key_and_stdin(run_cli: RunCli, files: dict[str, Path], pki: BundlePKI) -> None:
    common = ["-ca-bundle", str(files["roots"]), "-int-bundle", str(files["ints"])]
    result = run_cli("bundle", "-cert", "-", *common, stdin=pki.pem("leaf"))
    assert result.status == 0, result.stderr
    result = run_cli("bundle", "-cert", str(files["leaf"]), "-key", str(files["leaf-key"]), *common)
    assert result.status == 0, result.stderr
    assert result.json["key"].startswith("-----BEGIN EC PRIVATE KEY-----")
    result = run_cli("bundle", "-cert", str(files["leaf"]), "-key", str(files["int1-key"]), *common)
    assert (result.status, result.error) == (1, {"code": 2300, "message": "Private key does not match public key"})


def test_pkcs12_input_with_password(run_cli: RunCli, files: dict[str, Path], pki: BundlePKI, tmp_path: Path) -> None:
    p12 = tmp_path / "leaf.p12"
    key = pki.keys["leaf"]
    p12.write_bytes(pkcs12.serialize_key_and_certificates(b"leaf", key, pki.leaf, None, serialization.BestAvailableEncryption(b"0")))  # type: ignore[arg-type]
    common = ["-ca-bundle", str(files["roots"]), "-int-bundle", str(files["ints"])]
    result = run_cli("bundle", "-cert", str(p12), *common)  # default -password "0"
    assert result.status == 0, result.stderr
    assert result.json["key"].startswith("-----BEGIN EC PRIVATE KEY-----")
    p12.write_bytes(pkcs12.serialize_key_and_certificates(b"leaf", key, pki.leaf, None, serialization.BestAvailableEncryption(b"s3cret")))  # type: ignore[arg-type]
    assert run_cli("bundle", "-cert", str(p12), "-password", "s3cret", *common).status == 0
    assert run_cli("bundle", "-cert", str(p12), *common).error["code"] == 1002


def test_force_ignores_pools(run_cli: RunCli, files: dict[str, Path], pki: BundlePKI, tmp_path: Path) -> None:
    chain = tmp_path / "chain.pem"
    chain.write_bytes(pki.pem("int1", "int2", "leaf"))  # reversed on purpose
    result = run_cli("bundle", "-flavor", "force", "-cert", str(chain), "-ca-bundle", str(tmp_path / "missing.pem"))
    assert result.status == 0, result.stderr
    doc = result.json
    assert doc["bundle"] == pki.pem("leaf", "int2", "int1").decode().strip()
    assert doc["root"] == "" and doc["status"]["untrusted_root_stores"] is None


def test_optimal_flavor_and_metadata_file_errors_are_ignored(run_cli: RunCli, files: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "meta.json"
    bad.write_text("{not json")
    result = run_cli(
        "bundle",
        "-flavor",
        "optimal",
        "-metadata",
        str(bad),
        "-cert",
        str(files["leaf"]),
        "-ca-bundle",
        str(files["roots"]),
        "-int-bundle",
        str(files["ints"]),
    )
    assert result.status == 0, result.stderr
    assert "platform metadata failed to parse" in result.stderr


def test_metadata_file(run_cli: RunCli, files: dict[str, Path], tmp_path: Path) -> None:
    meta = files["roots"].parent / "meta.json"
    meta.write_text(json.dumps([{"name": "P", "weight": 1, "hash_algo": "SHA2", "key_algo": "ECDSA256", "keystore": "root.pem"}]))
    result = run_cli(
        "bundle", "-metadata", str(meta), "-cert", str(files["leaf"]), "-ca-bundle", str(files["roots"]), "-int-bundle", str(files["ints"])
    )
    assert result.status == 0, result.stderr
    assert result.json["status"]["messages"] == [SHA2_WARNING, ECDSA_WARNING]


def test_int_dir_stash(run_cli: RunCli, files: dict[str, Path], pki: BundlePKI, tmp_path: Path) -> None:
    chain = tmp_path / "chain.pem"
    chain.write_bytes(pki.pem("leaf", "int2", "int1"))
    stash = tmp_path / "stash"
    assert run_cli("bundle", "-cert", str(chain), "-ca-bundle", str(files["roots"]), "-int-dir", str(stash)).status == 0
    assert len(list(stash.glob("*.crt"))) == 2
    result = run_cli("bundle", "-cert", str(files["leaf"]), "-ca-bundle", str(files["roots"]), "-int-dir", str(stash))
    assert result.status == 0, result.stderr


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["-cert", "missing.pem", "-ca-bundle", "ROOTS"], 1001),
        (["-cert", "GARBAGE", "-ca-bundle", "ROOTS"], 1002),
        (["-cert", "LEAF", "-ca-bundle", "missing.pem"], 4001),
        (["-cert", "LEAF", "-ca-bundle", "GARBAGE"], 4003),
        (["-cert", "LEAF", "-ca-bundle", "ROOTS", "-int-bundle", "GARBAGE"], 3003),
        (["-cert", "LEAF", "-ca-bundle", "ROOTS"], 1220),
        (["-cert", "ROOT", "-ca-bundle", "ROOTS"], 1100),
        (["-cert", "LEAF", "-key", "missing.pem", "-ca-bundle", "ROOTS"], 2001),
    ],
)
def test_errors(run_cli: RunCli, files: dict[str, Path], tmp_path: Path, args: list[str], code: int) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("garbage")
    subst = {"ROOTS": str(files["roots"]), "LEAF": str(files["leaf"]), "ROOT": str(files["root"]), "GARBAGE": str(garbage)}
    result = run_cli("bundle", *[subst.get(a, a) for a in args])
    assert result.status == 1 and result.stdout == ""
    assert result.error["code"] == code
    assert "Traceback" not in result.stderr


def test_extra_arguments_rejected(run_cli: RunCli, files: dict[str, Path]) -> None:
    assert run_cli("bundle", "-cert", str(files["leaf"]), "extra").status == 1


@pytest.mark.integration
def test_domain(run_cli: RunCli, files: dict[str, Path], pki: BundlePKI, tmp_path: Path) -> None:
    full = tmp_path / "full.pem"
    full.write_bytes(pki.pem("leaf", "int2", "int1"))
    with tls_server(full, files["leaf-key"]) as port:
        result = run_cli("bundle", "-domain", f"leaf.example.com:{port}", "-ip", "127.0.0.1", "-ca-bundle", str(files["roots"]))
    assert result.status == 0, result.stderr
    assert result.json["bundle"] == pki.pem("leaf", "int2", "int1").decode().strip()
    result = run_cli("bundle", "-domain", f"leaf.example.com:{port}", "-ip", "127.0.0.1", "-ca-bundle", str(files["roots"]))
    assert result.status == 1 and result.error["code"] == 6000
