"""POST /api/v1/cfssl/bundle, and the ``bundle`` option of sign, authsign and newcert (reference §2.3, §4.2)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from api.test_api_authsign import auth_body
from api.wsgi import Client, config_json, load_cert, new_csr
from cfsslpy.api.endpoints import NO_BUNDLER_MESSAGE, NO_HOSTS_MESSAGE
from cfsslpy.api.state import ApiState
from cfsslpy.bundler import Bundler
from cfsslpy.config import Config
from cfsslpy.signer import LocalSigner, load_issuer

LEAF_HOSTS = ["leaf.example.test", "www.example.test"]


# -- a three-level PKI built here, independently of cfsslpy ---------------------------------------------


@dataclass
class Pki:
    root: x509.Certificate
    inter: x509.Certificate
    leaf: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey
    dir: Path

    def pem(self, *certs: x509.Certificate) -> str:
        return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)

    @property
    def ca_bundle(self) -> Path:
        return self.dir / "roots.pem"

    @property
    def int_bundle(self) -> Path:
        return self.dir / "intermediates.pem"

    @property
    def inter_cert(self) -> Path:
        return self.dir / "inter.pem"

    @property
    def inter_key(self) -> Path:
        return self.dir / "inter-key.pem"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cfsslpy bundle tests"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool,
    hosts: list[str] | None = None,
    days: int = 3650,
) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    issuer_name = issuer[0].subject if issuer else _name(subject)
    signing_key = issuer[1] if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=not ca,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def build_pki(directory: Path) -> Pki:
    """Root -> intermediate -> leaf (ECDSA P-256, SHA-256), with roots.pem, intermediates.pem and the
    intermediate's certificate and key (a CA to sign with) written to ``directory`` (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    root_key, inter_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = issue("Bundle Test Root", root_key, None, ca=True)
    inter = issue("Bundle Test Intermediate", inter_key, (root, root_key), ca=True, days=1825)
    leaf = issue("leaf.example.test", leaf_key, (inter, inter_key), ca=False, hosts=LEAF_HOSTS, days=365)
    p = Pki(root, inter, leaf, leaf_key, directory)
    p.ca_bundle.write_text(p.pem(root))
    p.int_bundle.write_text(p.pem(inter))
    p.inter_cert.write_text(p.pem(inter))
    p.inter_key.write_bytes(
        inter_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    )
    return p


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return build_pki(tmp_path_factory.mktemp("bundle-pki"))


def leaf_key_pem(pki: Pki) -> str:
    return pki.leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()


@pytest.fixture
def bundler(pki: Pki) -> Bundler:
    return Bundler.from_files(str(pki.ca_bundle), str(pki.int_bundle))


@pytest.fixture
def bclient(bundler: Bundler, client_for: Callable[[ApiState], Client]) -> Client:
    """The API with a bundler and no signer (the bundle endpoint needs none)."""
    return client_for(ApiState(bundler=bundler))


def signing_state(pki: Pki, bundler: Bundler | None, *, sign_bundle: bool) -> ApiState:
    """A signer whose CA is the PKI's intermediate, so issued certificates chain to the PKI's root."""
    cfg = Config.from_json(config_json())
    signer = LocalSigner(load_issuer(str(pki.inter_cert), str(pki.inter_key)), cfg.signing)
    return ApiState(signer=signer, policy=cfg.signing, config=cfg, bundler=bundler, sign_bundle=sign_bundle)


class Spy:
    """A bundler that records how the endpoint calls it, answering through the real one."""

    def __init__(self, real: Bundler) -> None:
        self.real = real
        self.fetch_aia = real.fetch_aia
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def bundle(self, certs: list[x509.Certificate], key: Any = None, flavor: str = "ubiquitous", **kw: Any) -> Any:
        self.calls.append(("bundle", (len(certs), key is not None, flavor)))
        return self.real.bundle(certs, key, flavor, **kw)

    def bundle_from_remote(self, domain: str, ip: str = "", flavor: str = "ubiquitous") -> Any:
        self.calls.append(("remote", (domain, ip, flavor)))
        return self.real.bundle([self.real_leaf], None, flavor)

    real_leaf: x509.Certificate


def chain_pems(text: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(text.encode()) if text else []


# -- POST /bundle -------------------------------------------------------------------------------------------


def test_bundle_is_registered_only_with_a_bundler(client: Client, bclient: Client) -> None:
    client.post("bundle", {"certificate": "x"}).assert_error(404, 404, "404 page not found")
    assert bclient.post("bundle", {}).status == 400


def test_bundle_a_leaf_builds_the_chain_to_the_root(bclient: Client, pki: Pki, bundler: Bundler) -> None:
    r = bclient.post("bundle", {"certificate": pki.pem(pki.leaf)})
    result = r.assert_ok()
    assert list(result) == sorted(result)  # cfssl's bundle JSON is a Go map: keys sorted
    assert chain_pems(result["bundle"]) == [pki.leaf, pki.inter]
    assert chain_pems(result["root"]) == [pki.root]
    assert chain_pems(result["crt"]) == [pki.leaf]
    assert result["key"] == ""
    assert result["status"]["rebundled"] is True  # the intermediate came from -int-bundle
    assert sorted(result["hostnames"]) == sorted(["leaf.example.test", *LEAF_HOSTS[1:]])
    # exactly the core's bundle JSON for the same input and the default flavor
    expected = bundler.bundle([pki.leaf], None, "ubiquitous").to_json()
    assert {k: v for k, v in result.items() if k != "hostnames"} == {k: v for k, v in expected.items() if k != "hostnames"}


def test_bundle_with_the_full_chain_is_not_rebundled(bclient: Client, pki: Pki) -> None:
    result = bclient.post("bundle", {"certificate": pki.pem(pki.leaf, pki.inter), "flavor": "optimal"}).assert_ok()
    assert chain_pems(result["bundle"]) == [pki.leaf, pki.inter]
    assert result["status"]["rebundled"] is False


def test_flavor_default_and_given(bundler: Bundler, pki: Pki, client_for: Callable[[ApiState], Client]) -> None:
    spy = Spy(bundler)
    c = client_for(ApiState(bundler=spy))  # type: ignore[arg-type]
    c.post("bundle", {"certificate": pki.pem(pki.leaf)}).assert_ok()
    c.post("bundle", {"certificate": pki.pem(pki.leaf), "flavor": ""}).assert_ok()
    c.post("bundle", {"certificate": pki.pem(pki.leaf), "flavor": "optimal"}).assert_ok()
    c.post("bundle", {"certificate": pki.pem(pki.leaf, pki.inter), "flavor": "force"}).assert_ok()
    assert [call[1][2] for call in spy.calls] == ["ubiquitous", "ubiquitous", "optimal", "force"]


def test_force_flavor_keeps_the_given_chain_without_root(bclient: Client, pki: Pki) -> None:
    result = bclient.post("bundle", {"certificate": pki.pem(pki.leaf, pki.inter), "flavor": "force"}).assert_ok()
    assert chain_pems(result["bundle"]) == [pki.leaf, pki.inter]
    assert result["root"] == ""


def test_private_key_is_matched_and_returned(bclient: Client, pki: Pki) -> None:
    key = leaf_key_pem(pki)
    result = bclient.post("bundle", {"certificate": pki.pem(pki.leaf), "private_key": key}).assert_ok()
    assert serialization.load_pem_private_key(result["key"].encode(), None).public_key() == pki.leaf_key.public_key()
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    bclient.post("bundle", {"certificate": pki.pem(pki.leaf), "private_key": other.decode()}).assert_error(
        400, 2300, "Private key does not match public key"
    )


def test_domain_and_ip_are_checked_against_the_leaf(bclient: Client, pki: Pki) -> None:
    leaf = pki.pem(pki.leaf)
    bclient.post("bundle", {"certificate": leaf, "domain": "www.example.test"}).assert_ok()
    bclient.post("bundle", {"certificate": leaf, "domain": "WWW.Example.Test"}).assert_ok()  # case-insensitive
    bclient.post("bundle", {"certificate": leaf, "domain": "other.example.test"}).assert_error(
        400, 1200, "x509: certificate is valid for leaf.example.test, www.example.test, not other.example.test"
    )
    bclient.post("bundle", {"certificate": leaf, "ip": "10.0.0.1"}).assert_error(
        400, 1200, "x509: cannot validate certificate for 10.0.0.1 because it doesn't contain any IP SANs"
    )
    # domain first, then ip; empty values are not checked
    bclient.post("bundle", {"certificate": leaf, "domain": "", "ip": ""}).assert_ok()
    bclient.post("bundle", {"certificate": leaf, "domain": "nope.test", "ip": "10.0.0.1"}).assert_error(400, 1200)


def test_certificate_wins_over_domain(bundler: Bundler, pki: Pki, client_for: Callable[[ApiState], Client]) -> None:
    spy = Spy(bundler)
    c = client_for(ApiState(bundler=spy))  # type: ignore[arg-type]
    c.post("bundle", {"domain": "leaf.example.test", "certificate": pki.pem(pki.leaf)}).assert_ok()
    assert [name for name, _ in spy.calls] == ["bundle"]


def test_domain_fetches_from_the_remote(bundler: Bundler, pki: Pki, client_for: Callable[[ApiState], Client]) -> None:
    spy = Spy(bundler)
    spy.real_leaf = pki.leaf
    c = client_for(ApiState(bundler=spy))  # type: ignore[arg-type]
    c.post("bundle", {"domain": "leaf.example.test", "ip": "192.0.2.1", "flavor": "optimal"}).assert_ok()
    c.post("bundle", {"domain": "leaf.example.test"}).assert_ok()
    assert spy.calls == [("remote", ("leaf.example.test", "192.0.2.1", "optimal")), ("remote", ("leaf.example.test", "", "ubiquitous"))]


@pytest.mark.parametrize("body", [{}, {"ip": "10.0.0.1"}, {"flavor": "optimal"}, None])
def test_neither_certificate_nor_domain(bclient: Client, body: Any) -> None:
    bclient.post("bundle", "null" if body is None else body).assert_error(400, 400, "no valid parameter sets found")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"certificate": 1}, "json: cannot unmarshal number into Go value of type string"),
        ({"domain": "x", "flavor": True}, "json: cannot unmarshal bool into Go value of type string"),
        ({"certificate": ["a"]}, "json: cannot unmarshal array into Go value of type string"),
        ([], "json: cannot unmarshal array into Go value of type map[string]string"),
        ('"text"', "json: cannot unmarshal string into Go value of type map[string]string"),
        ("{", "unexpected end of JSON input"),
    ],
)
def test_non_string_values_are_cfssl_500s(bclient: Client, body: Any, message: str) -> None:
    """cfssl decodes the body into a map[string]string; its error is untyped: 500, code 0 [2016✔]."""
    bclient.post("bundle", body).assert_error(500, 0, message)


def test_null_values_are_empty_strings(bclient: Client, pki: Pki) -> None:
    bclient.post("bundle", {"certificate": pki.pem(pki.leaf), "flavor": None, "domain": None}).assert_ok()


def test_bad_certificates(bclient: Client, pki: Pki) -> None:
    r = bclient.post("bundle", {"certificate": "not a certificate"})
    assert r.status == 400 and 1000 <= r.error["code"] < 2000, r.body
    bclient.post("bundle", {"certificate": pki.pem(pki.root)}).assert_error(400, 1100, "Certificate is self signed")


def test_bundle_needs_post(bclient: Client) -> None:
    bclient.get("bundle").assert_error(405, 405, 'Method is not allowed:"GET"')


# -- the bundle option of sign, authsign and newcert -----------------------------------------------------------


def test_sign_returns_the_bundle(pki: Pki, bundler: Bundler, client_for: Callable[[ApiState], Client]) -> None:
    c = client_for(signing_state(pki, bundler, sign_bundle=True))
    r = c.post("sign", {"certificate_request": new_csr("s.example.test", ["s.example.test"]), "bundle": True})
    result = r.assert_ok()
    assert list(result) == ["bundle", "certificate"]  # a Go map: keys sorted
    assert r.body.index(b'"bundle"') < r.body.index(b'"certificate"')
    assert r.json["messages"] == []
    cert = load_cert(result["certificate"])
    assert chain_pems(result["bundle"]["bundle"]) == [cert, pki.inter]
    assert chain_pems(result["bundle"]["root"]) == [pki.root]
    assert result["bundle"]["crt"] + "\n" == result["certificate"]
    # without the flag: no bundle
    assert list(c.post("sign", {"certificate_request": new_csr()}).assert_ok()) == ["certificate"]


def test_sign_bundles_with_the_optimal_flavor(pki: Pki, bundler: Bundler, client_for: Callable[[ApiState], Client]) -> None:
    spy = Spy(bundler)
    c = client_for(signing_state(pki, spy, sign_bundle=True))  # type: ignore[arg-type]
    c.post("sign", {"certificate_request": new_csr(), "bundle": True}).assert_ok()
    assert spy.calls == [("bundle", (1, False, "optimal"))]


def test_without_the_sign_option_the_bundler_is_not_used(pki: Pki, bundler: Bundler, client_for: Callable[[ApiState], Client]) -> None:
    """serve without both -ca-bundle and -int-bundle: /bundle works, the option answers with cfssl's 5300."""
    spy = Spy(bundler)
    c = client_for(signing_state(pki, spy, sign_bundle=False))  # type: ignore[arg-type]
    r = c.post("sign", {"certificate_request": new_csr(), "bundle": True})
    assert list(r.assert_ok()) == ["certificate"]
    assert r.json["messages"] == [{"code": 5300, "message": NO_BUNDLER_MESSAGE}]
    assert spy.calls == []
    c.post("bundle", {"certificate": pki.pem(pki.leaf)}).assert_ok()


def test_sign_bundle_failure_is_the_error(pki: Pki, tmp_path: Path, client_for: Callable[[ApiState], Client]) -> None:
    """The new certificate does not chain to the roots: cfssl returns the bundler's error, not the certificate."""
    other_root = issue("Unrelated Root", ec.generate_private_key(ec.SECP256R1()), None, ca=True)
    (tmp_path / "other.pem").write_text(pki.pem(other_root))
    unrelated = Bundler.from_files(str(tmp_path / "other.pem"), str(pki.int_bundle))
    c = client_for(signing_state(pki, unrelated, sign_bundle=True))
    r = c.post("sign", {"certificate_request": new_csr(), "bundle": True})
    assert r.status == 400 and 1200 <= r.error["code"] < 1300, r.body


def test_authsign_returns_the_bundle(pki: Pki, bundler: Bundler, client_for: Callable[[ApiState], Client]) -> None:
    c = client_for(signing_state(pki, bundler, sign_bundle=True))
    inner = {"certificate_request": new_csr("a.example.test", ["a.example.test"]), "profile": "auth", "bundle": True}
    result = c.post("authsign", auth_body(inner)).assert_ok()
    assert list(result) == ["bundle", "certificate"]
    assert chain_pems(result["bundle"]["bundle"]) == [load_cert(result["certificate"]), pki.inter]


def test_newcert_returns_the_bundle(pki: Pki, bundler: Bundler, client_for: Callable[[ApiState], Client]) -> None:
    c = client_for(signing_state(pki, bundler, sign_bundle=True))
    r = c.post("newcert", {"request": {"CN": "n.example.test", "hosts": ["n.example.test"]}, "bundle": True})
    result = r.assert_ok()
    assert list(result) == ["bundle", "certificate", "certificate_request", "private_key", "sums"]
    assert r.json["messages"] == []
    cert = load_cert(result["certificate"])
    assert chain_pems(result["bundle"]["bundle"]) == [cert, pki.inter]
    assert chain_pems(result["bundle"]["root"]) == [pki.root]


def test_newcert_bundle_without_hosts_keeps_the_hosts_message(pki: Pki, bundler: Bundler, client_for: Callable[[ApiState], Client]) -> None:
    c = client_for(signing_state(pki, bundler, sign_bundle=True))
    r = c.post("newcert", {"request": {"CN": "nohosts"}, "bundle": True})
    assert "bundle" in r.assert_ok()
    assert r.json["messages"] == [{"code": 5300, "message": NO_HOSTS_MESSAGE}]
