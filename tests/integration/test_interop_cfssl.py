"""Interoperability with the real cfssl (the Debian 2016 build, ``golang-cfssl``).

* a CSR made by ``cfssl genkey`` is signed by us, and a CSR made by us is signed by ``cfssl sign``;
* for the same CSR JSON, config and CA, ``cfssl gencert`` and ``cfsslpy gencert`` produce certificates that
  agree on the subject DER, the extension OIDs / criticality / order, key usages, basic constraints, SANs,
  validity length and signature algorithm — except for the deliberate differences listed in ``DIFFERENCES``
  (each one asserted where it shows);
* ``gencert -initca`` and ``selfsign`` likewise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import CA, RunCli, make_ca
from cryptography import x509
from cryptography.x509.oid import ExtensionOID
from integration.helpers import cfssl_json, extension_layout, key_usage_bits, lifetime, need, openssl_verify, run, spk_sha1, write

pytestmark = [pytest.mark.integration, pytest.mark.cfssl, pytest.mark.openssl]

# Deliberate differences between cfssl 2016 and cfsslpy that these tests meet (README, compatibility):
DIFFERENCES = {
    "ec-key-encipherment": "keyEncipherment is left out for EC/Ed25519 subject keys (RFC 8813 §3 forbids it); cfssl sets it",
    "uri-san": "hosts with a URI scheme become URI SANs as in the newest cfssl; the 2016 build makes them DNS SANs",
    "selfsign-san": "selfsign keeps the request's SANs (newest cfssl does); the 2016 build has no SAN",
    "selfsign-aki": "selfsign leaves carry an AKI (RFC 5280 §4.2.1.1 exempts only self-signed CAs); Go omits it",
    "2016-subject-extras": "cfssl 2016 drops non-standard subject attributes (emailAddress) when signing; newest and we keep them",
    "2016-csr-uris": "cfssl 2016 does not copy URI SANs from a CSR when signing (it predates Go's URI support)",
}

CONFIG = {
    "signing": {
        "default": {"expiry": "168h", "usages": ["signing", "key encipherment", "server auth"]},
        "profiles": {
            "www": {"expiry": "8760h", "usages": ["signing", "key encipherment", "server auth"]},
            "client": {"expiry": "8760h", "usages": ["signing", "key encipherment", "client auth"]},
            "ca": {
                "expiry": "43800h",
                "usages": ["cert sign", "crl sign"],
                "ca_constraint": {"is_ca": True, "max_path_len": 0, "max_path_len_zero": True},
            },
            "urls": {
                "expiry": "720h",
                "usages": ["digital signature", "server auth", "client auth"],
                "ocsp_url": "http://ocsp.example.com",
                "crl_url": "http://crl.example.com/ca.crl",
                "issuer_urls": ["http://ca.example.com/ca.crt"],
            },
        },
    }
}

HOSTS = ["www.example.com", "10.0.0.1", "2001:db8::5", "admin@example.com", "api.example.com", "spiffe://example.org/ns/web"]


def csr_json(algo: str, size: int, **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "CN": "www.example.com",
        "hosts": HOSTS,
        "key": {"algo": algo, "size": size},
        "names": [{"C": "US", "ST": "California", "L": "San Francisco", "O": "Example & Co", "OU": "Web"}],
    }
    obj.update(extra)
    return obj


@pytest.fixture(scope="module")
def cas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CA]:
    """An RSA and an EC CA made by cfssl itself, shared by the module."""
    need("cfssl")
    base = tmp_path_factory.mktemp("cfssl-cas")
    out = {}
    for name, algo, size in (("rsa", "rsa", 2048), ("ec", "ecdsa", 384)):
        spec = write(
            base / f"{name}-csr.json",
            json.dumps({"CN": f"cfssl {name} root", "names": [{"C": "US", "O": "cfssl"}], "key": {"algo": algo, "size": size}}),
        )
        result = cfssl_json("gencert", "-initca", str(spec))
        out[name] = CA(write(base / f"{name}.pem", result["cert"]), write(base / f"{name}-key.pem", result["key"]), base)
    return out


def load(pem_text: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem_text.encode())


def ext(cert: x509.Certificate, cls: type[Any]) -> Any:
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def sans(cert: x509.Certificate) -> dict[str, list[str]]:
    san = ext(cert, x509.SubjectAlternativeName)
    if san is None:
        return {"dns": [], "email": [], "ip": [], "uri": []}
    return {
        "dns": san.get_values_for_type(x509.DNSName),
        "email": san.get_values_for_type(x509.RFC822Name),
        "ip": [str(i) for i in san.get_values_for_type(x509.IPAddress)],
        "uri": san.get_values_for_type(x509.UniformResourceIdentifier),
    }


# ---------------------------------------------------------------------------------------------------------
# Signing each other's CSRs


@pytest.mark.parametrize("ca_name", ["rsa", "ec"])
@pytest.mark.parametrize(("algo", "size"), [("ecdsa", 256), ("rsa", 2048)])
def test_we_sign_a_csr_made_by_cfssl_genkey(
    cas: dict[str, CA], run_cli: RunCli, tmp_path: Path, ca_name: str, algo: str, size: int
) -> None:
    spec = write(tmp_path / "csr.json", json.dumps(csr_json(algo, size)))
    generated = cfssl_json("genkey", str(spec))
    csr_file = write(tmp_path / "go.csr", generated["csr"])
    config = write(tmp_path / "config.json", json.dumps(CONFIG))
    ca = cas[ca_name]
    result = run_cli("sign", "-ca", str(ca.cert), "-ca-key", str(ca.key), "-config", str(config), "-profile", "www", str(csr_file))
    assert result.status == 0, result.stderr
    assert result.json["csr"] == generated["csr"]  # sign echoes the input CSR
    cert = load(result.json["cert"])
    csr = x509.load_pem_x509_csr(generated["csr"].encode())
    assert cert.subject.public_bytes() == csr.subject.public_bytes()
    assert cert.public_key() == csr.public_key()
    # cfssl 2016 classified the spiffe:// host as a DNS name in its CSR ("uri-san"); we copy what the CSR says
    assert sans(cert) == {
        "dns": ["www.example.com", "api.example.com", "spiffe://example.org/ns/web"],
        "email": ["admin@example.com"],
        "ip": ["10.0.0.1", "2001:db8::5"],
        "uri": [],
    }
    openssl_verify(ca.cert, write(tmp_path / "cert.pem", result.json["cert"]), purpose="sslserver")


@pytest.mark.parametrize("ca_algo", [("ecdsa", 256), ("rsa", 2048)])
@pytest.mark.parametrize(("algo", "size"), [("ecdsa", 384), ("rsa", 2048), ("ed25519", 0)])
def test_cfssl_signs_a_csr_made_by_us(run_cli: RunCli, tmp_path: Path, ca_algo: tuple[str, int], algo: str, size: int) -> None:
    need("cfssl")
    ca = make_ca(run_cli, tmp_path / "ca", *ca_algo)
    spec = write(tmp_path / "csr.json", json.dumps(csr_json(algo, size)))
    result = run_cli("genkey", str(spec))
    assert result.status == 0, result.stderr
    csr_file = write(tmp_path / "py.csr", result.json["csr"])
    if algo == "ed25519":
        # the 2016 build has no Ed25519 support at all: it refuses the CSR
        proc = run(need("cfssl"), "sign", "-ca", str(ca.cert), "-ca-key", str(ca.key), str(csr_file), check=False)
        assert b'"code":' in proc.stderr or proc.returncode != 0
        return
    signed = cfssl_json("sign", "-ca", str(ca.cert), "-ca-key", str(ca.key), str(csr_file))
    cert = load(signed["cert"])
    csr = x509.load_pem_x509_csr(result.json["csr"].encode())
    assert cert.subject.public_bytes() == csr.subject.public_bytes()
    assert cert.public_key() == csr.public_key()
    expected = {"dns": ["www.example.com", "api.example.com"], "email": ["admin@example.com"], "ip": ["10.0.0.1", "2001:db8::5"], "uri": []}
    assert sans(cert) == expected  # our CSR has the URI SAN, cfssl 2016 drops it ("2016-csr-uris")
    csr_san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert csr_san.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://example.org/ns/web"]
    openssl_verify(ca.cert, write(tmp_path / "cert.pem", signed["cert"]))


# ---------------------------------------------------------------------------------------------------------
# Same inputs, same certificate


def compare(go: x509.Certificate, py: x509.Certificate, *, ec_subject_key: bool, is_ca: bool = False) -> None:
    """Assert agreement field by field; each exception is one of DIFFERENCES."""
    assert py.subject.public_bytes() == go.subject.public_bytes()
    assert py.issuer.public_bytes() == go.issuer.public_bytes()
    assert extension_layout(py) == extension_layout(go)
    go_ku, py_ku = key_usage_bits(go), key_usage_bits(py)
    if ec_subject_key and "key_encipherment" in go_ku:
        go_ku = go_ku - {"key_encipherment"}  # "ec-key-encipherment"
    assert py_ku == go_ku
    assert ext(py, x509.ExtendedKeyUsage) == ext(go, x509.ExtendedKeyUsage)
    assert ext(py, x509.BasicConstraints) == ext(go, x509.BasicConstraints)
    assert ext(py, x509.AuthorityInformationAccess) == ext(go, x509.AuthorityInformationAccess)
    assert ext(py, x509.CRLDistributionPoints) == ext(go, x509.CRLDistributionPoints)
    go_sans, py_sans = sans(go), sans(py)
    if not is_ca:
        # "uri-san": 2016 put the URI host among the DNS names, in host order (it is last in HOSTS)
        assert go_sans["dns"] == py_sans["dns"] + py_sans["uri"]
        assert go_sans["uri"] == [] and py_sans["uri"] == ["spiffe://example.org/ns/web"]
    else:
        assert go_sans == py_sans
    assert {k: v for k, v in py_sans.items() if k in ("email", "ip")} == {k: v for k, v in go_sans.items() if k in ("email", "ip")}
    assert lifetime(py) == lifetime(go)
    assert py.signature_algorithm_oid == go.signature_algorithm_oid
    # key identifiers: both follow RFC 5280 method 1 and the AKI is the issuer's SKI
    for cert in (go, py):
        assert ext(cert, x509.SubjectKeyIdentifier).digest == spk_sha1(cert)
    assert ext(py, x509.AuthorityKeyIdentifier) == ext(go, x509.AuthorityKeyIdentifier)
    assert py.version == go.version == x509.Version.v3
    assert 0 < py.serial_number < 2**159 and 0 < go.serial_number < 2**159


@pytest.mark.parametrize("ca_name", ["rsa", "ec"])
@pytest.mark.parametrize("profile", ["www", "client", "ca", "urls"])
@pytest.mark.parametrize(("algo", "size"), [("ecdsa", 256), ("rsa", 2048)])
def test_gencert_agrees_with_cfssl(
    cas: dict[str, CA], run_cli: RunCli, tmp_path: Path, ca_name: str, profile: str, algo: str, size: int
) -> None:
    ca = cas[ca_name]
    spec = write(tmp_path / "csr.json", json.dumps(csr_json(algo, size)))
    config = write(tmp_path / "config.json", json.dumps(CONFIG))
    args = ["gencert", "-ca", str(ca.cert), "-ca-key", str(ca.key), "-config", str(config), "-profile", profile, str(spec)]
    go = load(cfssl_json(*args)["cert"])
    result = run_cli(*args)
    assert result.status == 0, result.stderr
    py = load(result.json["cert"])
    compare(go, py, ec_subject_key=algo == "ecdsa", is_ca=profile == "ca")
    if profile == "ca":
        assert ext(py, x509.BasicConstraints) == x509.BasicConstraints(ca=True, path_length=0)
        assert sans(py) == {"dns": [], "email": [], "ip": ["10.0.0.1", "2001:db8::5"], "uri": []}  # CA keeps only IP SANs
    if profile == "www" and algo == "ecdsa":
        assert "key_encipherment" in key_usage_bits(go) and "key_encipherment" not in key_usage_bits(py)
    openssl_verify(ca.cert, write(tmp_path / "py.pem", py))


def test_hostname_override_agrees_with_cfssl(cas: dict[str, CA], run_cli: RunCli, tmp_path: Path) -> None:
    ca = cas["rsa"]
    spec = write(tmp_path / "csr.json", json.dumps(csr_json("rsa", 2048)))
    args = ["gencert", "-ca", str(ca.cert), "-ca-key", str(ca.key), "-hostname", "other.example.com,192.0.2.9,ops@example.com", str(spec)]
    go = load(cfssl_json(*args)["cert"])
    result = run_cli(*args)
    assert result.status == 0, result.stderr
    py = load(result.json["cert"])
    assert sans(py) == sans(go) == {"dns": ["other.example.com"], "email": ["ops@example.com"], "ip": ["192.0.2.9"], "uri": []}
    assert extension_layout(py) == extension_layout(go)
    assert lifetime(py) == lifetime(go)  # no config: the built-in 8760h default


def test_subject_identical_to_cfssl_with_one_value_per_type(cas: dict[str, CA], run_cli: RunCli, tmp_path: Path) -> None:
    names = [{"C": "US", "ST": "Québec", "L": "a_b", "O": "Org One", "OU": "*.wild"}]
    spec = write(
        tmp_path / "csr.json", json.dumps({"CN": "*.example.com", "serialnumber": "SN 42", "names": names, "hosts": ["a.example.com"]})
    )
    args = ["gencert", "-ca", str(cas["ec"].cert), "-ca-key", str(cas["ec"].key), str(spec)]
    go = load(cfssl_json(*args)["cert"])
    result = run_cli(*args)
    assert result.status == 0, result.stderr
    assert load(result.json["cert"]).subject.public_bytes() == go.subject.public_bytes()


def test_subject_string_types_agree_with_cfssl(cas: dict[str, CA], run_cli: RunCli, tmp_path: Path) -> None:
    names = [
        {"C": "US", "ST": "Québec", "L": "a_b", "O": "Org One", "OU": "*.wild"},
        {"C": "CA", "O": "Org Two", "OU": "x@y"},
    ]
    spec = write(
        tmp_path / "csr.json", json.dumps({"CN": "*.example.com", "serialnumber": "SN 42", "names": names, "hosts": ["a.example.com"]})
    )
    args = ["gencert", "-ca", str(cas["ec"].cert), "-ca-key", str(cas["ec"].key), str(spec)]
    go = load(cfssl_json(*args)["cert"])
    result = run_cli(*args)
    assert result.status == 0, result.stderr
    py = load(result.json["cert"])

    # Same attributes, order and string tags; cfssl groups a repeated type into one multi-valued RDN
    # (C=US+C=CA), which X.501 forbids: we emit one RDN per value (README, compatibility).
    def view(name: x509.Name) -> list[tuple[str, str, Any]]:
        return [(a.oid.dotted_string, str(a.value), a._type) for a in name]

    assert sorted(view(py.subject), key=str) == sorted(view(go.subject), key=str)
    assert [t[0] for t in view(py.subject)] == [t[0] for t in view(go.subject)]  # same type order
    assert all(len(rdn) == 1 for rdn in py.subject.rdns)
    assert any(len(rdn) > 1 for rdn in go.subject.rdns)


@pytest.mark.parametrize(
    ("algo", "size", "ca"),
    [
        ("rsa", 2048, None),
        ("ecdsa", 256, {"pathlen": 1}),
        ("ecdsa", 384, {"pathlen": 0, "pathlenzero": True, "expiry": "1h"}),
        ("rsa", 3072, {"pathlen": 0, "expiry": "8760h"}),
    ],
)
def test_initca_agrees_with_cfssl(run_cli: RunCli, tmp_path: Path, algo: str, size: int, ca: dict[str, Any] | None) -> None:
    obj: dict[str, Any] = {
        "CN": "Interop Root",
        "names": [{"C": "US", "ST": "CA", "O": "Interop & Co"}],
        "key": {"algo": algo, "size": size},
    }
    if ca is not None:
        obj["ca"] = ca
    spec = write(tmp_path / "ca.json", json.dumps(obj))
    go = load(cfssl_json("gencert", "-initca", str(spec))["cert"])
    result = run_cli("gencert", "-initca", str(spec))
    assert result.status == 0, result.stderr
    py = load(result.json["cert"])
    assert py.subject.public_bytes() == go.subject.public_bytes()
    assert extension_layout(py) == extension_layout(go)
    assert key_usage_bits(py) == key_usage_bits(go) == {"key_cert_sign", "crl_sign"}
    assert ext(py, x509.BasicConstraints) == ext(go, x509.BasicConstraints)
    assert lifetime(py) == lifetime(go)
    assert py.signature_algorithm_oid == go.signature_algorithm_oid
    assert ext(py, x509.AuthorityKeyIdentifier) is None and ext(go, x509.AuthorityKeyIdentifier) is None
    assert ext(py, x509.SubjectKeyIdentifier).digest == spk_sha1(py)


def test_selfsign_agrees_with_cfssl(run_cli: RunCli, tmp_path: Path) -> None:
    spec = write(tmp_path / "csr.json", json.dumps(csr_json("rsa", 2048)))
    go = load(cfssl_json("selfsign", "www.example.com", str(spec))["cert"])
    result = run_cli("selfsign", "www.example.com", str(spec))
    assert result.status == 0, result.stderr
    py = load(result.json["cert"])
    assert py.subject.public_bytes() == go.subject.public_bytes() == py.issuer.public_bytes()
    assert key_usage_bits(py) == key_usage_bits(go)
    assert ext(py, x509.ExtendedKeyUsage) == ext(go, x509.ExtendedKeyUsage)
    assert ext(py, x509.BasicConstraints) == ext(go, x509.BasicConstraints)
    assert abs(lifetime(py) - lifetime(go)).total_seconds() <= 2  # now - 5m .. now + 2190h, both
    assert py.signature_algorithm_oid == go.signature_algorithm_oid
    # "selfsign-san" and "selfsign-aki": the only extensions cfssl 2016 does not emit
    go_layout = extension_layout(go)
    py_layout = [
        e
        for e in extension_layout(py)
        if e[0] not in (ExtensionOID.SUBJECT_ALTERNATIVE_NAME.dotted_string, ExtensionOID.AUTHORITY_KEY_IDENTIFIER.dotted_string)
    ]
    assert py_layout == go_layout
    assert ext(go, x509.SubjectAlternativeName) is None and ext(go, x509.AuthorityKeyIdentifier) is None
    # cfsslpy's CLI uses the HOSTNAME argument as the SAN list (cfssl reads and ignores it)
    assert sans(py) == {"dns": ["www.example.com"], "email": [], "ip": [], "uri": []}
    assert ext(py, x509.AuthorityKeyIdentifier).key_identifier == ext(py, x509.SubjectKeyIdentifier).digest


def test_cfssl_loads_keys_we_generate(run_cli: RunCli, tmp_path: Path) -> None:
    """RSA PKCS#1 and EC SEC1 keys from cfsslpy work as cfssl CA keys (and the reverse is covered by ``cas``)."""
    for algo, size in (("rsa", 2048), ("ecdsa", 521)):
        ca = make_ca(run_cli, tmp_path / f"ca-{algo}", algo, size)
        spec = write(tmp_path / "leaf.json", json.dumps({"CN": "leaf", "hosts": ["leaf.example.com"]}))
        cert = load(cfssl_json("gencert", "-ca", str(ca.cert), "-ca-key", str(ca.key), str(spec))["cert"])
        assert cert.issuer == x509.load_pem_x509_certificate(ca.cert.read_bytes()).subject
