"""``certinfo`` through the CLI in-process: targets and their precedence, stdin, output format, errors (§1.3)."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import tls_server
from cryptography import x509

from cfsslpy.cli.certinfo import NO_TARGET, go_json_indent
from tests.cli.errlines import error_line
from tests.conftest import CA, RunCli, write_csr_json


@dataclass
class Leaf:
    cert: Path
    key: Path
    csr: Path


@pytest.fixture
def leaf(run_cli: RunCli, ec_ca: CA, tmp_path: Path) -> Leaf:
    spec = write_csr_json(
        tmp_path / "leaf-csr.json",
        {
            "CN": "leaf <&> example",
            "hosts": ["leaf.example.com", "10.0.0.1", "ops@example.com", "www.example.com"],
            "names": [{"C": "US", "O": "Org One", "OU": "Ops"}, {"O": "Org Two"}],
            "key": {"algo": "ecdsa", "size": 256},
        },
    )
    result = run_cli("gencert", "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key), str(spec))
    assert result.status == 0, result.stderr
    out = result.json
    paths = Leaf(tmp_path / "leaf.pem", tmp_path / "leaf-key.pem", tmp_path / "leaf.csr")
    paths.cert.write_text(out["cert"])
    paths.key.write_text(out["key"])
    paths.csr.write_text(out["csr"])
    return paths


def ski(cert: x509.Certificate) -> str:
    digest = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    return ":".join(f"{b:02X}" for b in digest)


def test_cert_file(run_cli: RunCli, leaf: Leaf, ec_ca: CA) -> None:
    result = run_cli("certinfo", "-cert", str(leaf.cert))
    assert result.status == 0, result.stderr
    assert result.stderr == ""
    info = result.json
    cert = x509.load_pem_x509_certificate(leaf.cert.read_bytes())
    ca = x509.load_pem_x509_certificate(ec_ca.cert.read_bytes())
    assert list(info) == [
        "subject",
        "issuer",
        "serial_number",
        "sans",
        "not_before",
        "not_after",
        "sigalg",
        "authority_key_id",
        "subject_key_id",
        "pem",
    ]
    assert info["subject"] == {
        "common_name": "leaf <&> example",
        "country": "US",
        "organization": "Org One,Org Two",
        "organizational_unit": "Ops",
        "names": ["US", "Org One", "Org Two", "Ops", "leaf <&> example"],
    }
    assert info["issuer"] == {
        "common_name": "Test ca ecdsa",
        "country": "US",
        "organization": "cfsslpy tests",
        "names": ["US", "cfsslpy tests", "Test ca ecdsa"],
    }
    assert info["serial_number"] == str(cert.serial_number)
    assert info["sans"] == ["leaf.example.com", "www.example.com", "10.0.0.1"]  # no email
    assert info["not_before"] == cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert info["not_after"] == cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert info["sigalg"] == "ECDSAWithSHA256"
    assert info["authority_key_id"] == ski(ca)  # self-signed CAs have no AKI; the leaf's is the CA's SKI
    assert info["subject_key_id"] == ski(cert)
    assert info["pem"] == leaf.cert.read_text()


def test_output_is_go_marshal_indent_with_newline(run_cli: RunCli, leaf: Leaf) -> None:
    result = run_cli("certinfo", "-cert", str(leaf.cert))
    assert result.stdout.startswith('{\n  "subject": {\n    "common_name": "leaf \\u003c\\u0026\\u003e example",\n')
    assert result.stdout.endswith("\n}\n")
    assert result.stdout == go_json_indent(result.json) + "\n"


def test_go_json_indent_escapes() -> None:
    assert go_json_indent({"a": "<&>\b\f\u2028\\b é", "b": [], "c": {}, "n": 10**40}) == (
        '{\n  "a": "\\u003c\\u0026\\u003e\\u0008\\u000c\\u2028\\\\b é",\n  "b": [],\n  "c": {},\n  "n": ' + str(10**40) + "\n}"
    )


def test_cert_from_stdin(run_cli: RunCli, leaf: Leaf) -> None:
    from_file = run_cli("certinfo", "-cert", str(leaf.cert))
    from_stdin = run_cli("certinfo", "-cert", "-", stdin=leaf.cert.read_bytes())
    assert from_stdin.status == 0 and from_stdin.stdout == from_file.stdout


def test_csr_file_and_stdin(run_cli: RunCli, leaf: Leaf) -> None:
    result = run_cli("certinfo", "-csr", str(leaf.csr))
    assert result.status == 0, result.stderr
    info = result.json
    assert info["Subject"]["CommonName"] == "leaf <&> example"
    assert info["Subject"]["Organization"] == ["Org One", "Org Two"]
    assert info["DNSNames"] == ["leaf.example.com", "www.example.com"]
    assert info["EmailAddresses"] == ["ops@example.com"]
    assert info["IPAddresses"] == ["10.0.0.1"]
    assert info["SignatureAlgorithm"] == 10 and info["PublicKeyAlgorithm"] == 3
    assert set(info["PublicKey"]) == {"Curve", "X", "Y"}
    assert run_cli("certinfo", "-csr", "-", stdin=leaf.csr.read_bytes()).stdout == result.stdout


def test_precedence_cert_then_csr_then_domain(run_cli: RunCli, leaf: Leaf) -> None:
    closed = f"127.0.0.1:{free_port()}"
    both = run_cli("certinfo", "-domain", closed, "-csr", str(leaf.csr), "-cert", str(leaf.cert))
    assert both.status == 0 and "subject" in both.json
    csr_over_domain = run_cli("certinfo", "-domain", closed, "-csr", str(leaf.csr))
    assert csr_over_domain.status == 0 and "Subject" in csr_over_domain.json


def test_no_target(run_cli: RunCli) -> None:
    result = run_cli("certinfo")
    assert (result.status, result.stdout, error_line(result.stderr)) == (1, "", NO_TARGET)
    assert result.stderr.startswith(NO_TARGET + "\nhint: usage: cfsslpy certinfo ")
    assert NO_TARGET == "Must specify certinfo target through -cert, -csr, -domain or -serial + -aki"


def test_serial_and_aki_need_a_db_config(run_cli: RunCli) -> None:
    # the lookup itself is tested in tests/api/test_api_certinfo_db.py
    result = run_cli("certinfo", "-serial", "1", "-aki", "ab")
    assert result.status == 1
    assert error_line(result.stderr) == "cannot lookup certificate from serial without db access (provide -db-config)"
    assert error_line(run_cli("certinfo", "-serial", "1").stderr) == NO_TARGET


def test_extra_arguments_are_rejected(run_cli: RunCli, leaf: Leaf) -> None:
    result = run_cli("certinfo", "-cert", str(leaf.cert), "extra")
    assert result.status == 1 and result.stdout == ""
    assert result.stderr == (
        "too many arguments are provided, please check with usage\n"
        "hint: usage: cfsslpy certinfo (-cert file | -csr file | -domain host[:port] [-ip address] | -serial S -aki A -db-config file)\n"
        "hint: 'cfsslpy certinfo -h' lists its flags\n"
    )


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        (b"", 1002, "Failed to decode certificate"),
        (b"-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n", 1003, "Failed to parse certificate"),
    ],
)
def test_bad_cert_errors(run_cli: RunCli, tmp_path: Path, content: bytes, code: int, message: str) -> None:
    path = tmp_path / "bad.pem"
    path.write_bytes(content)
    result = run_cli("certinfo", "-cert", str(path))
    assert result.status == 1 and result.stdout == ""
    assert result.error == {"code": code, "message": message}


def test_two_certs_in_one_file(run_cli: RunCli, leaf: Leaf, ec_ca: CA, tmp_path: Path) -> None:
    path = tmp_path / "two.pem"
    path.write_text(leaf.cert.read_text() + ec_ca.cert.read_text())
    assert run_cli("certinfo", "-cert", str(path)).error == {"code": 1003, "message": "the PEM file should contain only one object"}


def test_bad_csr_errors(run_cli: RunCli, leaf: Leaf, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csr"
    empty.write_bytes(b"")
    assert run_cli("certinfo", "-csr", str(empty)).error == {"code": 9002, "message": "CSR Decode failed"}
    not_a_csr = run_cli("certinfo", "-csr", str(leaf.cert))
    assert not_a_csr.status == 1 and not_a_csr.error["code"] == 9003


def test_missing_file(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("certinfo", "-cert", str(tmp_path / "nope.pem"))
    assert result.status == 1
    assert result.stderr == f"open {tmp_path / 'nope.pem'}: no such file or directory\n"


def test_help(run_cli: RunCli) -> None:
    result = run_cli("certinfo", "-h")
    assert result.status == 0
    for flag in ("-cert", "-csr", "-domain", "-ip", "-serial", "-aki", "-db-config"):
        assert flag in result.stderr


# ---------------------------------------------------------------------------------------------------- -domain


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_domain_describes_the_served_leaf(run_cli: RunCli, leaf: Leaf) -> None:
    expected = run_cli("certinfo", "-cert", str(leaf.cert)).stdout
    with tls_server(leaf.cert, leaf.key) as port:
        result = run_cli("certinfo", "-domain", f"127.0.0.1:{port}")
        via_ip = run_cli("certinfo", "-domain", f"leaf.example.invalid:{port}", "-ip", "127.0.0.1")
    assert result.status == 0, result.stderr
    assert result.stdout == expected
    assert via_ip.status == 0, via_ip.stderr
    assert via_ip.stdout == expected


def test_domain_dial_error(run_cli: RunCli) -> None:
    port = free_port()
    result = run_cli("certinfo", "-domain", f"127.0.0.1:{port}")
    assert result.status == 1 and result.stdout == ""
    assert result.error == {"code": 6000, "message": f"dial tcp 127.0.0.1:{port}: connect: connection refused"}
