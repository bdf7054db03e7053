"""Happy paths of sign, gencert, genkey, gencsr, selfsign, info, print-defaults and version: output shapes as cfssl's.

cfssl's output rules (reference §1.3, §7.6): compact Go JSON; PrintCert keys ``cert``, ``csr``, ``key`` present
only when set, in that order, then ``\\n``; ``info`` in struct order with no trailing newline; ``sign`` echoes
the CSR file's bytes; ``print-defaults`` templates byte for byte plus one empty line.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID

from cfsslpy.golang.json import go_json_dumps
from cfsslpy.keys import load_private_key, public_key_matches
from tests.conftest import CA, Result, RunCli

CONFIG_TEMPLATE = """{
    "signing": {
        "default": {
            "expiry": "168h"
        },
        "profiles": {
            "www": {
                "expiry": "8760h",
                "usages": [
                    "signing",
                    "key encipherment",
                    "server auth"
                ]
            },
            "client": {
                "expiry": "8760h",
                "usages": [
                    "signing",
                    "key encipherment",
                    "client auth"
                ]
            }
        }
    }
}
"""
CSR_TEMPLATE = """{
    "CN": "example.net",
    "hosts": [
        "example.net",
        "www.example.net"
    ],
    "key": {
        "algo": "ecdsa",
        "size": 256
    },
    "names": [
        {
            "C": "US",
            "ST": "CA",
            "L": "San Francisco"
        }
    ]
}
"""


def printed(result: Result, keys: list[str]) -> dict[str, str]:
    """cfssl's PrintCert: exactly ``keys`` in order, compact Go JSON, one trailing newline."""
    assert result.status == 0, result.stderr
    assert result.stdout.endswith("}\n") and result.stdout.count("\n") == 1
    data: dict[str, str] = json.loads(result.stdout)
    assert list(data) == keys
    assert result.stdout == go_json_dumps(data) + "\n"
    return data


def write(path: Path, obj: Any) -> str:
    path.write_text(json.dumps(obj))
    return str(path)


def cert_of(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def csr_of(pem: str) -> x509.CertificateSigningRequest:
    return x509.load_pem_x509_csr(pem.encode())


def sans(obj: x509.Certificate | x509.CertificateSigningRequest) -> list[str]:
    try:
        ext = obj.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except x509.ExtensionNotFound:
        return []
    return [str(v) for v in ext.get_values_for_type(x509.DNSName)] + [str(v) for v in ext.get_values_for_type(x509.IPAddress)]


def attr(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in name.get_attributes_for_oid(oid)]


def is_ca(cert: x509.Certificate) -> bool:
    return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)


@pytest.fixture
def leaf_csr(run_cli: RunCli, tmp_path: Path) -> Path:
    spec = write(tmp_path / "leaf.json", {"CN": "leaf", "hosts": ["leaf.example.com", "10.0.0.1"], "names": [{"C": "US", "O": "From CSR"}]})
    data = printed(run_cli("genkey", spec), ["csr", "key"])
    path = tmp_path / "leaf.csr"
    path.write_text(data["csr"])
    return path


# -- sign -----------------------------------------------------------------------------------------------------


def test_sign(run_cli: RunCli, ec_ca: CA, leaf_csr: Path) -> None:
    data = printed(run_cli("sign", "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key), str(leaf_csr)), ["cert", "csr"])
    cert = cert_of(data["cert"])
    assert cert.issuer == cert_of(ec_ca.cert.read_text()).subject
    assert sans(cert) == ["leaf.example.com", "10.0.0.1"]
    assert not is_ca(cert)


def test_sign_echoes_the_csr_bytes_verbatim(run_cli: RunCli, ec_ca: CA, leaf_csr: Path, tmp_path: Path) -> None:
    odd = tmp_path / "odd.csr"
    text = "a comment before the block\r\n" + leaf_csr.read_text() + "trailing text <&>\n"
    odd.write_text(text, newline="")
    result = run_cli("sign", "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key), str(odd))
    data = printed(result, ["cert", "csr"])
    assert data["csr"] == text
    assert "\\u003c\\u0026\\u003e" in result.stdout  # Go escapes <, & and > in JSON strings


def test_sign_csr_flag_and_stdin(run_cli: RunCli, ec_ca: CA, leaf_csr: Path) -> None:
    by_flag = printed(run_cli("sign", "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key), "-csr", str(leaf_csr)), ["cert", "csr"])
    by_stdin = printed(
        run_cli("sign", "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key), "-", stdin=leaf_csr.read_bytes()), ["cert", "csr"]
    )
    assert by_flag["csr"] == by_stdin["csr"] == leaf_csr.read_text()


def test_sign_subject_file_overrides_per_attribute(run_cli: RunCli, ec_ca: CA, leaf_csr: Path, tmp_path: Path) -> None:
    subject = write(tmp_path / "subject.json", {"CN": "overridden", "names": [{"O": "From Subject"}]})
    data = printed(run_cli("sign", "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key), str(leaf_csr), subject), ["cert", "csr"])
    name = cert_of(data["cert"]).subject
    assert attr(name, NameOID.COMMON_NAME) == ["overridden"]
    assert attr(name, NameOID.ORGANIZATION_NAME) == ["From Subject"]
    assert attr(name, NameOID.COUNTRY_NAME) == ["US"]  # not in the override: kept from the CSR


def test_sign_hostname_replaces_every_san(run_cli: RunCli, ec_ca: CA, leaf_csr: Path) -> None:
    args = ("sign", "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key), "-hostname", "a.example,192.0.2.7", str(leaf_csr))
    cert = cert_of(printed(run_cli(*args), ["cert", "csr"])["cert"])
    assert sans(cert) == ["a.example", "192.0.2.7"]


def test_sign_with_config_profile(run_cli: RunCli, ec_ca: CA, leaf_csr: Path, tmp_path: Path) -> None:
    config = write(tmp_path / "config.json", json.loads(CONFIG_TEMPLATE))
    args = ("sign", "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key), "-config", config, "-profile", "client", str(leaf_csr))
    cert = cert_of(printed(run_cli(*args), ["cert", "csr"])["cert"])
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(hours=8760)


# -- gencert ---------------------------------------------------------------------------------------------------


def test_gencert(run_cli: RunCli, ec_ca: CA, tmp_path: Path) -> None:
    spec = write(tmp_path / "csr.json", {"CN": "server", "hosts": ["server.example"], "key": {"algo": "rsa", "size": 2048}})
    result = run_cli("gencert", "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key), spec)
    data = printed(result, ["cert", "csr", "key"])
    cert = cert_of(data["cert"])
    assert public_key_matches(load_private_key(data["key"].encode()), cert.public_key())
    assert data["key"].startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    assert sans(cert) == sans(csr_of(data["csr"])) == ["server.example"]
    assert 'lacks a "hosts" field' not in result.stderr


def test_gencert_hostname_replaces_hosts_in_csr_and_cert(run_cli: RunCli, ec_ca: CA, tmp_path: Path) -> None:
    spec = write(tmp_path / "csr.json", {"CN": "server", "hosts": ["old.example"]})
    data = printed(
        run_cli("gencert", "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key), "-hostname", "new.example,127.0.0.1", spec),
        ["cert", "csr", "key"],
    )
    assert sans(csr_of(data["csr"])) == ["new.example", "127.0.0.1"]
    assert sans(cert_of(data["cert"])) == ["new.example", "127.0.0.1"]


def test_gencert_cn_and_crl(run_cli: RunCli, ec_ca: CA, tmp_path: Path) -> None:
    spec = write(tmp_path / "csr.json", {"CN": "json name", "hosts": ["server.example"]})
    args = ("gencert", "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key), "-cn", "flag name", "-crl", "http://crl.example/ca.crl", spec)
    data = printed(run_cli(*args), ["cert", "csr", "key"])
    cert = cert_of(data["cert"])
    assert attr(cert.subject, NameOID.COMMON_NAME) == ["flag name"]
    assert attr(csr_of(data["csr"]).subject, NameOID.COMMON_NAME) == ["flag name"]
    dp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for point in dp for n in (point.full_name or [])] == ["http://crl.example/ca.crl"]


def test_gencert_without_hosts_warns_after_success(run_cli: RunCli, ec_ca: CA, tmp_path: Path) -> None:
    spec = write(tmp_path / "csr.json", {"CN": "no hosts"})
    result = run_cli("gencert", "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key), spec)
    printed(result, ["cert", "csr", "key"])
    assert '[WARNING] This certificate lacks a "hosts" field.' in result.stderr
    assert 'specifically, section 10.2.3 ("Information Requirements").' in result.stderr


def test_gencert_initca(run_cli: RunCli, tmp_path: Path) -> None:
    spec = write(tmp_path / "ca.json", {"CN": "Root", "names": [{"O": "cfsslpy"}], "ca": {"expiry": "87600h"}})
    data = printed(run_cli("gencert", "-initca", spec), ["cert", "csr", "key"])
    cert = cert_of(data["cert"])
    assert is_ca(cert) and cert.issuer == cert.subject
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(hours=87600)


def test_gencert_initca_with_existing_key_prints_no_key(run_cli: RunCli, ec_ca: CA, tmp_path: Path) -> None:
    spec = write(tmp_path / "ca.json", {"CN": "Same key, new CA"})
    data = printed(run_cli("gencert", "-initca", "-ca-key", str(ec_ca.key), spec), ["cert", "csr"])
    assert public_key_matches(load_private_key(ec_ca.key.read_bytes()), cert_of(data["cert"]).public_key())


def test_gencert_renewca(run_cli: RunCli, ec_ca: CA) -> None:
    data = printed(run_cli("gencert", "-renewca", "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key)), ["cert"])
    old, new = cert_of(ec_ca.cert.read_text()), cert_of(data["cert"])
    assert new.subject == old.subject and new.public_key() == old.public_key()
    assert new.serial_number != old.serial_number
    assert new.not_valid_after_utc - new.not_valid_before_utc == old.not_valid_after_utc - old.not_valid_before_utc


# -- genkey / gencsr ------------------------------------------------------------------------------------------


def test_genkey_validates_nothing_without_initca(run_cli: RunCli, tmp_path: Path) -> None:
    data = printed(run_cli("genkey", write(tmp_path / "empty.json", {})), ["csr", "key"])
    csr = csr_of(data["csr"])
    assert len(csr.subject) == 0 and csr.is_signature_valid
    assert data["key"].startswith("-----BEGIN EC PRIVATE KEY-----\n")


def test_genkey_initca(run_cli: RunCli, tmp_path: Path) -> None:
    data = printed(run_cli("genkey", "-initca", write(tmp_path / "ca.json", {"CN": "genkey root"})), ["cert", "csr", "key"])
    assert is_ca(cert_of(data["cert"]))


def test_gencsr_from_csr_json_prints_the_key_file_verbatim(run_cli: RunCli, ec_ca: CA, tmp_path: Path) -> None:
    spec = write(tmp_path / "csr.json", {"CN": "renewed", "hosts": ["r.example"]})
    data = printed(run_cli("gencsr", "-key", str(ec_ca.key), spec), ["csr", "key"])
    assert data["key"] == ec_ca.key.read_text()
    csr = csr_of(data["csr"])
    assert public_key_matches(load_private_key(ec_ca.key.read_bytes()), csr.public_key())
    assert sans(csr) == ["r.example"]


def test_gencsr_with_cert_extracts_the_request(run_cli: RunCli, ec_ca: CA, tmp_path: Path) -> None:
    spec = write(tmp_path / "csr.json", {"CN": "server", "hosts": ["server.example", "192.0.2.1"], "names": [{"C": "US", "O": "Org"}]})
    issued = printed(run_cli("gencert", "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key), spec), ["cert", "csr", "key"])
    (tmp_path / "server.pem").write_text(issued["cert"])
    (tmp_path / "server-key.pem").write_text(issued["key"])
    data = printed(run_cli("gencsr", "-key", str(tmp_path / "server-key.pem"), "-cert", str(tmp_path / "server.pem")), ["csr", "key"])
    csr = csr_of(data["csr"])
    assert csr.subject == cert_of(issued["cert"]).subject
    assert sans(csr) == ["server.example", "192.0.2.1"]
    hosts = printed(
        run_cli("gencsr", "-key", str(tmp_path / "server-key.pem"), "-cert", str(tmp_path / "server.pem"), "-hostname", "h.example"),
        ["csr", "key"],
    )
    assert sans(csr_of(hosts["csr"])) == ["h.example"]


# -- selfsign ------------------------------------------------------------------------------------------------


def test_selfsign(run_cli: RunCli, tmp_path: Path) -> None:
    spec = write(tmp_path / "csr.json", {"CN": "self", "hosts": ["ignored.example"]})
    result = run_cli("selfsign", "self.example,192.0.2.9", spec)
    data = printed(result, ["cert", "csr", "key"])
    assert "*** WARNING ***\n\nSelf-signed certificates are dangerous." in result.stderr
    assert result.stderr.endswith("*** WARNING ***\n\n")
    cert = cert_of(data["cert"])
    assert cert.issuer == cert.subject and not is_ca(cert)
    assert sans(cert) == ["self.example", "192.0.2.9"]  # cfssl ignores HOSTNAME; we use it (README)
    # cfssl's selfsign: notBefore = now - 5 min, notAfter = now + 2190h
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(hours=2190, minutes=5)


# -- info ---------------------------------------------------------------------------------------------------


def test_info(run_cli: RunCli, ec_ca: CA, tmp_path: Path) -> None:
    config = write(tmp_path / "config.json", json.loads(CONFIG_TEMPLATE))
    result = run_cli("info", "-config", config, "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key), "-profile", "www")
    assert result.status == 0, result.stderr
    assert not result.stdout.endswith("\n")
    data = json.loads(result.stdout)
    assert list(data) == ["certificate", "usages", "expiry"]
    assert result.stdout == go_json_dumps(data)
    assert data["certificate"] == ec_ca.cert.read_text().rstrip("\n")
    assert data["usages"] == ["signing", "key encipherment", "server auth"]
    assert data["expiry"] == "8760h"


def test_info_default_profile(run_cli: RunCli, ec_ca: CA, tmp_path: Path) -> None:
    config = write(tmp_path / "config.json", json.loads(CONFIG_TEMPLATE))
    data = json.loads(run_cli("info", "-config", config, "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key)).stdout)
    assert data["usages"] == [] and data["expiry"] == "168h"


def test_info_without_config_uses_the_builtin_default(run_cli: RunCli, ec_ca: CA) -> None:
    # cfssl requires -config (or -remote); we accept -ca/-ca-key alone
    data = json.loads(run_cli("info", "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key)).stdout)
    assert data["usages"] == ["signing", "key encipherment", "server auth", "client auth"] and data["expiry"] == "8760h"


# -- print-defaults / version --------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "template"), [("config", CONFIG_TEMPLATE), ("csr", CSR_TEMPLATE)])
def test_print_defaults_byte_exact(run_cli: RunCli, name: str, template: str) -> None:
    result = run_cli("print-defaults", name)
    assert result.status == 0 and result.stderr == ""
    assert result.stdout == template + "\n"


def test_print_defaults_list(run_cli: RunCli) -> None:
    result = run_cli("print-defaults", "list")
    assert result.status == 0
    assert result.stdout == "Default configurations are available for:\n\tconfig\n\tcsr\n"


def test_print_defaults_unknown_type_fails(run_cli: RunCli) -> None:
    # cfssl prints the list on stdout and exits 0
    result = run_cli("print-defaults", "cofnig")
    assert result.status == 1 and result.stdout == ""
    assert result.stderr.startswith("unknown default configuration 'cofnig'; Default configurations are available for:")


def test_version(run_cli: RunCli) -> None:
    result = run_cli("version")
    assert result.status == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert result.stdout.endswith("\n") and len(lines) == 3
    assert lines[0].startswith("Version: ") and lines[1].startswith("Revision: cfsslpy-") and lines[2].startswith("Runtime: python")


def test_the_default_csr_template_is_usable(run_cli: RunCli, ec_ca: CA, tmp_path: Path) -> None:
    spec = tmp_path / "csr.json"
    spec.write_text(run_cli("print-defaults", "csr").stdout)
    data = printed(run_cli("gencert", "-ca", str(ec_ca.cert), "-ca-key", str(ec_ca.key), str(spec)), ["cert", "csr", "key"])
    cert = cert_of(data["cert"])
    assert sans(cert) == ["example.net", "www.example.net"]
    assert attr(cert.subject, NameOID.LOCALITY_NAME) == ["San Francisco"]
