"""Hostile JSON through the CLI (issue 10) beyond the error table of test_bad_input.py: what is not an error.

cfssl's genkey (Go's encoding/json) turns a lone ``\\ud800`` escape into U+FFFD and goes on; so do we,
rather than failing later when the subject is encoded.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.conftest import RunCli


def test_genkey_with_lone_surrogates_gives_replacement_characters(run_cli: RunCli, tmp_path: Path) -> None:
    spec = tmp_path / "csr.json"
    spec.write_bytes(b'{"CN": "\\ud800x", "names": [{"O": "\\udc00"}], "hosts": ["h.example"], "key": {"algo": "ecdsa", "size": 256}}')
    result = run_cli("genkey", str(spec))
    assert result.status == 0, result.stderr
    csr = x509.load_pem_x509_csr(result.json["csr"].encode())
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "\ufffdx"
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "\ufffd"


def test_json_split_writes_replacement_characters_for_lone_surrogates(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("-bare", "out", stdin=b'{"cert": "C\\ud800\\n"}', prog="cfssljson", cwd=tmp_path)
    assert result.status == 0, result.stderr
    assert (tmp_path / "out.pem").read_bytes() == "C\ufffd\n".encode()
