"""``sign -bundle`` / ``gencert -bundle`` (the chain as ``result.bundle``, split by ``json-split -bare``), and
``serve -ca-bundle -int-bundle -int-dir -metadata`` (the bundle endpoint and the sign option, in a real process)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from api.test_api_bundle import Pki, build_pki, chain_pems
from api.wsgi import new_csr
from cli.test_serve_db import API, call, refused, serving
from conftest import RunCli, write_csr_json
from cryptography import x509


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return build_pki(tmp_path_factory.mktemp("bundle-pki"))


def signer_flags(pki: Pki) -> list[str]:
    return ["-ca", str(pki.inter_cert), "-ca-key", str(pki.inter_key)]


def bundle_flags(pki: Pki) -> list[str]:
    return ["-bundle", "-ca-bundle", str(pki.ca_bundle), "-int-bundle", str(pki.int_bundle)]


@pytest.fixture
def csr_file(tmp_path: Path) -> Path:
    path = tmp_path / "leaf.csr"
    path.write_text(new_csr("cli.example.test", ["cli.example.test"]))
    return path


@pytest.fixture
def csr_json(tmp_path: Path) -> Path:
    return write_csr_json(tmp_path / "csr.json", {"CN": "gen.example.test", "hosts": ["gen.example.test"]})


def check_bundle(out: dict[str, Any], pki: Pki) -> x509.Certificate:
    cert = x509.load_pem_x509_certificate(out["cert"].encode())
    assert list(out["result"]) == ["bundle"]
    bundle = out["result"]["bundle"]
    assert chain_pems(bundle["bundle"]) == [cert, pki.inter]
    assert chain_pems(bundle["root"]) == [pki.root]
    return cert


def test_sign_bundle_prints_the_chain(run_cli: RunCli, pki: Pki, csr_file: Path) -> None:
    r = run_cli("sign", *signer_flags(pki), *bundle_flags(pki), str(csr_file))
    assert r.status == 0, r.stderr
    assert list(r.json) == ["cert", "csr", "result"]
    assert r.json["csr"] == csr_file.read_text()
    check_bundle(r.json, pki)
    assert r.stdout.endswith("}\n")


def test_gencert_bundle_prints_the_chain(run_cli: RunCli, pki: Pki, csr_json: Path) -> None:
    r = run_cli("gencert", *signer_flags(pki), *bundle_flags(pki), str(csr_json))
    assert r.status == 0, r.stderr
    assert list(r.json) == ["cert", "csr", "key", "result"]
    cert = check_bundle(r.json, pki)
    assert cert.subject.rfc4514_string() == "CN=gen.example.test"


def test_json_split_bare_writes_bundle_and_root(run_cli: RunCli, pki: Pki, csr_json: Path, tmp_path: Path) -> None:
    """What cfssljson -bare does with a nested result.bundle: <base>-bundle.pem = bundle + "\\n" + root."""
    out = run_cli("gencert", *signer_flags(pki), *bundle_flags(pki), str(csr_json))
    assert out.status == 0, out.stderr
    split = run_cli("-bare", "server", stdin=out.stdout.encode(), prog="cfssljson")
    assert split.status == 0, split.stderr
    bundle = out.json["result"]["bundle"]
    assert (tmp_path / "server-bundle.pem").read_text() == bundle["bundle"] + "\n" + bundle["root"]
    assert (tmp_path / "server-root.pem").read_text() == bundle["root"]
    assert (tmp_path / "server.pem").read_text() == out.json["cert"]
    assert (tmp_path / "server-key.pem").stat().st_mode & 0o777 == 0o600
    chain = x509.load_pem_x509_certificates((tmp_path / "server-bundle.pem").read_bytes())
    assert chain[1:] == [pki.inter, pki.root]


@pytest.mark.parametrize("command", ["sign", "gencert"])
@pytest.mark.parametrize("missing", ["-ca-bundle", "-int-bundle"])
def test_bundle_needs_both_bundles(run_cli: RunCli, pki: Pki, csr_file: Path, csr_json: Path, command: str, missing: str) -> None:
    flags = bundle_flags(pki)
    i = flags.index(missing)
    del flags[i : i + 2]
    arg = csr_file if command == "sign" else csr_json
    r = run_cli(command, *signer_flags(pki), *flags, str(arg))
    assert r.status == 2, r.stderr
    assert "-bundle needs -ca-bundle (roots) and -int-bundle (intermediates)" in r.stderr
    assert r.stdout == ""


def test_bundle_files_without_bundle_are_ignored(run_cli: RunCli, pki: Pki, csr_file: Path) -> None:
    r = run_cli("sign", *signer_flags(pki), *bundle_flags(pki)[1:], str(csr_file))
    assert r.status == 0, r.stderr
    assert list(r.json) == ["cert", "csr"]
    assert "flag -ca-bundle has no effect without -bundle" in r.stderr


def test_initca_ignores_bundle(run_cli: RunCli, pki: Pki, csr_json: Path) -> None:
    r = run_cli("gencert", "-initca", *bundle_flags(pki), str(csr_json))
    assert r.status == 0, r.stderr
    assert list(r.json) == ["cert", "csr", "key"]
    assert "flag -bundle has no effect with -initca" in r.stderr


def test_unreadable_bundle_fails_before_signing(run_cli: RunCli, pki: Pki, csr_file: Path, tmp_path: Path) -> None:
    r = run_cli(
        "sign", *signer_flags(pki), "-bundle", "-ca-bundle", str(tmp_path / "nope.pem"), "-int-bundle", str(pki.int_bundle), str(csr_file)
    )
    assert r.status == 1 and r.stdout == ""
    assert r.error["code"] == 4001, r.stderr


def test_a_chain_that_cannot_be_built_is_an_error(run_cli: RunCli, pki: Pki, csr_file: Path, tmp_path: Path) -> None:
    """-ca-bundle without the PKI's root: the certificate is signed but its chain does not verify (12xx)."""
    from api.test_api_bundle import issue
    from cryptography.hazmat.primitives.asymmetric import ec

    other = tmp_path / "other-root.pem"
    other.write_text(pki.pem(issue("Unrelated Root", ec.generate_private_key(ec.SECP256R1()), None, ca=True)))
    r = run_cli("sign", *signer_flags(pki), "-bundle", "-ca-bundle", str(other), "-int-bundle", str(pki.int_bundle), str(csr_file))
    assert r.status == 1 and r.stdout == ""
    assert 1200 <= r.error["code"] < 1300, r.stderr


# -- serve ------------------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_serve_with_both_bundles(pki: Pki) -> None:
    with serving(*signer_flags(pki), "-ca-bundle", str(pki.ca_bundle), "-int-bundle", str(pki.int_bundle)) as (url, _log):
        status, doc = call(url + API + "sign", {"certificate_request": new_csr("s.example.test", ["s.example.test"]), "bundle": True})
        assert status == 200, doc
        result = doc["result"]
        assert list(result) == ["bundle", "certificate"] and doc["messages"] == []
        cert = x509.load_pem_x509_certificate(result["certificate"].encode())
        assert chain_pems(result["bundle"]["bundle"]) == [cert, pki.inter]
        status, doc = call(url + API + "bundle", {"certificate": result["certificate"], "domain": "s.example.test"})
        assert status == 200, doc
        assert chain_pems(doc["result"]["bundle"]) == [cert, pki.inter]
        assert chain_pems(doc["result"]["root"]) == [pki.root]


@pytest.mark.integration
def test_serve_with_one_bundle_has_no_sign_option(pki: Pki) -> None:
    with serving(*signer_flags(pki), "-int-bundle", str(pki.int_bundle)) as (url, log):
        status, doc = call(url + API + "sign", {"certificate_request": new_csr("s.example.test", ["s.example.test"]), "bundle": True})
        assert status == 200, doc
        assert list(doc["result"]) == ["certificate"]
        assert doc["messages"] == [
            {"code": 5300, "message": "This request requires a bundler, but one is not initialized for the API server."}
        ]
        status, doc = call(url + API + "bundle", {})
        assert (status, doc["errors"][0]["message"]) == (400, "no valid parameter sets found")
        assert any("needs both -ca-bundle and -int-bundle" in line for line in log)


@pytest.mark.integration
def test_serve_disable_bundle(pki: Pki) -> None:
    with serving(*signer_flags(pki), "-disable", "bundle") as (url, _log):
        status, doc = call(url + API + "bundle", {"domain": "example.com"})
        assert status == 404, doc


@pytest.mark.integration
@pytest.mark.parametrize(
    ("flag", "code"),
    [("-ca-bundle", 4001), ("-int-bundle", 3001)],
)
def test_an_unreadable_bundle_stops_the_server(pki: Pki, tmp_path: Path, flag: str, code: int) -> None:
    result = refused(*signer_flags(pki), flag, str(tmp_path / "missing.pem"))
    assert result.returncode == 1, result.stderr
    assert "Now listening" not in result.stderr and "cannot build the bundler" in result.stderr
    assert json.loads(result.stderr.strip().splitlines()[-1])["code"] == code


@pytest.mark.integration
def test_bad_metadata_stops_the_server(pki: Pki, tmp_path: Path) -> None:
    bad = tmp_path / "metadata.json"
    bad.write_text('[{"name": "X", "weight": 1, "hash_algo": "MD5", "key_algo": "RSA"}]')
    result = refused(*signer_flags(pki), "-metadata", str(bad))
    assert result.returncode == 1, result.stderr
    assert "Now listening" not in result.stderr and "cannot build the bundler" in result.stderr
