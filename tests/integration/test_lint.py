"""Every kind of certificate we issue, for every CA and subject key type, must

* verify with ``openssl verify -x509_strict`` (with ``-untrusted`` for chains through an intermediate),
* verify with cryptography's RFC 5280 / web PKI verifier (server or client policy), and
* pass pkilint's RFC 5280 linter (``lint_pkix_cert``) without an ERROR or FATAL finding.

The matrix: CA keys RSA 2048 / RSA 4096 / P-256 / P-384 / Ed25519 x subject keys RSA 2048 / P-256 / P-384 /
Ed25519 x profiles server / client / intermediate CA, plus self-signed CAs, selfsign leaves and a "kitchen
sink" certificate using every optional field.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.verification import PolicyBuilder, Store
from integration.helpers import key, lint, lint_errors, need, openssl_verify, write

from cfsslpy.config import Config
from cfsslpy.csr import CertificateRequest, csr_pem, generate_csr
from cfsslpy.initca import self_sign_ca
from cfsslpy.selfsign import selfsign
from cfsslpy.signer import Issuer, LocalSigner, SignRequest

pytestmark = [pytest.mark.integration, pytest.mark.openssl]

CA_KINDS = ["rsa2048", "rsa4096", "p256", "p384", "ed25519"]
LEAF_KINDS = ["rsa2048", "p256", "p384", "ed25519"]
PROFILES = ["server", "client", "intermediate"]
LEAF_ALGOS = {"rsa2048": ("rsa", 2048), "p256": ("ecdsa", 256), "p384": ("ecdsa", 384), "ed25519": ("ed25519", 0)}

SIGNING = Config.from_json(
    {
        "signing": {
            "default": {
                "expiry": "8760h",
                "usages": ["signing", "key encipherment", "server auth"],
                "ocsp_url": "http://ocsp.example.com",
                "crl_url": "http://crl.example.com/ca.crl",
                "issuer_urls": ["http://ca.example.com/ca.crt"],
            },
            "profiles": {
                "server": {
                    "expiry": "2160h",
                    "usages": ["signing", "key encipherment", "server auth"],
                    "Policies": [{"ID": "2.23.140.1.2.1"}],
                },
                "client": {"expiry": "2160h", "usages": ["signing", "key encipherment", "client auth"]},
                "intermediate": {
                    "expiry": "43800h",
                    "usages": ["cert sign", "crl sign"],
                    "ca_constraint": {"is_ca": True, "max_path_len": 0, "max_path_len_zero": True},
                },
            },
        }
    }
).signing

# cryptography's verifier implements the web PKI profile, which does not allow Ed25519 CA keys (CA/B Forum
# Baseline Requirements §7.1.3); openssl verify covers those chains.
WEBPKI_CA_KINDS = {"rsa2048", "rsa4096", "p256", "p384"}


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@functools.cache
def root(ca_kind: str) -> Issuer:
    req = CertificateRequest.from_json({"CN": f"Lint Root {ca_kind}", "names": [{"C": "US", "O": "cfsslpy lint"}], "ca": {"pathlen": 1}})
    cert, _ = self_sign_ca(req, key(ca_kind), now=now())
    return Issuer(key(ca_kind), cert)


def csr(subject_kind: str, obj: dict[str, Any]) -> bytes:
    return csr_pem(generate_csr(CertificateRequest.from_json(obj), key(subject_kind)))


@functools.cache
def issued(ca_kind: str, leaf_kind: str, profile: str) -> x509.Certificate:
    if profile == "intermediate":
        obj: dict[str, Any] = {
            "CN": f"Lint Intermediate {leaf_kind}",
            "names": [{"C": "US", "O": "cfsslpy lint"}],
            "ca": {"pathlen": 0, "pathlenzero": True},
        }
        subject_key = f"{leaf_kind}#intermediate"
    else:
        host = f"{profile}-{leaf_kind}.example.com"
        obj = {"CN": host, "hosts": [host, "192.0.2.10"], "names": [{"C": "US", "O": "cfsslpy lint"}]}
        subject_key = leaf_kind
    signer = LocalSigner(root(ca_kind), SIGNING)
    return signer.sign(SignRequest(request=csr(subject_key, obj), profile=profile), now=now())


@functools.cache
def below_intermediate(ca_kind: str, leaf_kind: str) -> x509.Certificate:
    """A server certificate signed by the intermediate (P-256 subject key)."""
    inter = Issuer(key(f"{leaf_kind}#intermediate"), issued(ca_kind, leaf_kind, "intermediate"))
    host = f"deep-{leaf_kind}.example.com"
    return LocalSigner(inter, SIGNING).sign(SignRequest(request=csr("p256", {"CN": host, "hosts": [host]}), profile="server"), now=now())


def cryptography_verify(
    anchor: x509.Certificate, cert: x509.Certificate, intermediates: list[x509.Certificate], profile: str, host: str
) -> None:
    builder = PolicyBuilder().store(Store([anchor])).time(now())
    if profile == "client":
        verified = builder.build_client_verifier().verify(cert, intermediates)
        assert verified.chain[-1] == anchor
        assert x509.DNSName(host) in (verified.subjects or [])
    else:
        chain = builder.build_server_verifier(x509.DNSName(host)).verify(cert, intermediates)
        assert chain[-1] == anchor


# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ca_kind", CA_KINDS)
def test_root(ca_kind: str, tmp_path: Path) -> None:
    cert = root(ca_kind).cert
    assert lint_errors(cert) == []
    ca_file = write(tmp_path / "root.pem", cert)
    openssl_verify(ca_file, ca_file)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("leaf_kind", LEAF_KINDS)
@pytest.mark.parametrize("ca_kind", CA_KINDS)
def test_issued(ca_kind: str, leaf_kind: str, profile: str, tmp_path: Path) -> None:
    anchor = root(ca_kind).cert
    cert = issued(ca_kind, leaf_kind, profile)
    assert lint_errors(cert) == []
    ca_file = write(tmp_path / "root.pem", anchor)
    cert_file = write(tmp_path / "cert.pem", cert)
    if profile == "intermediate":
        openssl_verify(ca_file, cert_file)
        leaf = below_intermediate(ca_kind, leaf_kind)
        assert lint_errors(leaf) == []
        openssl_verify(ca_file, write(tmp_path / "leaf.pem", leaf), untrusted=cert_file, purpose="sslserver")
        if ca_kind in WEBPKI_CA_KINDS and leaf_kind in WEBPKI_CA_KINDS:
            cryptography_verify(anchor, leaf, [cert], "server", f"deep-{leaf_kind}.example.com")
        return
    openssl_verify(ca_file, cert_file, purpose="sslserver" if profile == "server" else "sslclient")
    if ca_kind in WEBPKI_CA_KINDS:
        cryptography_verify(anchor, cert, [], profile, f"{profile}-{leaf_kind}.example.com")


@pytest.mark.parametrize("leaf_kind", LEAF_KINDS)
def test_selfsign(leaf_kind: str, tmp_path: Path) -> None:
    algo, size = LEAF_ALGOS[leaf_kind]
    req = CertificateRequest.from_json(
        {"CN": "self.example.com", "hosts": ["self.example.com", "127.0.0.1"], "key": {"algo": algo, "size": size}}
    )
    cert, _, k = selfsign(req, now=now())
    assert isinstance(k, ed25519.Ed25519PrivateKey) == (leaf_kind == "ed25519")
    assert lint_errors(cert) == []
    cert_file = write(tmp_path / "self.pem", cert)
    openssl_verify(cert_file, cert_file, purpose="sslserver")
    if leaf_kind != "ed25519":
        cryptography_verify(cert, cert, [], "server", "self.example.com")


KITCHEN_SINK_SIGNING = Config.from_json(
    {
        "signing": {
            "default": {"expiry": "1h", "usages": ["server auth"]},
            "profiles": {
                "sink": {
                    "expiry": "720h",
                    "usages": ["signing", "content commitment", "key encipherment", "server auth", "client auth", "email protection"],
                    "ocsp_url": "http://ocsp.example.com",
                    "crl_url": "http://crl.example.com/ca.crl",
                    "issuer_urls": ["http://ca.example.com/a.crt", "http://ca.example.com/b.crt"],
                    "ocsp_no_check": True,
                    "copy_extensions": True,
                    "Policies": [
                        {
                            "ID": "1.3.6.1.4.1.99999.1",
                            "Qualifiers": [
                                {"Type": "id-qt-cps", "Value": "http://cps.example.com/cps"},
                                {"Type": "id-qt-unotice", "Value": "Notice: test use only"},
                            ],
                        },
                        {"ID": "2.23.140.1.2.2"},
                    ],
                },
                "ocsp": {"expiry": "720h", "usages": ["signing", "ocsp signing"], "ocsp_no_check": True},
                "nc-intermediate": {
                    "expiry": "8760h",
                    "usages": ["cert sign", "crl sign"],
                    "ca_constraint": {"is_ca": True, "max_path_len": 0, "max_path_len_zero": True},
                    "name_constraints": {"permitted": {"dns": ["example.com"], "ip": ["192.0.2.0/24"], "email": ["example.com"]}},
                },
            },
        }
    }
).signing

# pkilint's RFC 5280 checks that we knowingly do not satisfy in the kitchen-sink certificate:
#   pkix.invalid_uri_syntax — pkilint validates URIs with the `validators` package, which only knows web URLs;
#     spiffe:// and urn: URIs are valid RFC 3986 URIs (see test_interop for the cfssl comparison).
#   pkix.invalid_domain_name_syntax — "*.example.com" wildcards are not RFC 1034 preferred-name syntax but are what
#     every TLS client expects (RFC 6125); cfssl emits them the same way.
SINK_ALLOWED = frozenset({"pkix.invalid_uri_syntax", "pkix.invalid_domain_name_syntax"})


def test_kitchen_sink_leaf(tmp_path: Path) -> None:
    obj = {
        "CN": "sink.example.com",
        "serialnumber": "SINK-0001",
        "names": [
            {"C": "US", "ST": "California", "L": "San Francisco", "O": "Example & Co", "OU": "Platform", "E": "pki@example.com"},
            {"C": "DE", "O": "Beispiel GmbH", "OU": "Zürich Office", "OID": {"0.9.2342.19200300.100.1.25": "com"}},
            {"OID": {"0.9.2342.19200300.100.1.25": "example"}},
        ],
        "hosts": [
            "sink.example.com",
            "*.sink.example.com",
            "192.0.2.1",
            "2001:db8::1",
            "ops@example.com",
            "https://sink.example.com/id",
            "spiffe://example.com/ns/prod/sa/sink",
            "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
        ],
        "delegation_enabled": True,
        "extensions": [{"id": [1, 3, 6, 1, 4, 1, 99999, 2], "critical": False, "value": "DAVoZWxsbw=="}],
    }
    cert = LocalSigner(root("p256"), KITCHEN_SINK_SIGNING).sign(SignRequest(request=csr("p384", obj), profile="sink"), now=now())
    assert lint_errors(cert, allow=SINK_ALLOWED) == []
    flagged = {f[2] for f in lint_errors(cert) if f[1] in SINK_ALLOWED}
    assert flagged == {
        'Invalid URI syntax: "spiffe://example.com/ns/prod/sa/sink"',
        'Invalid URI syntax: "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"',
        'Invalid domain name syntax: "*.sink.example.com"',
    }
    # repeated C/O/OU values are separate RDNs, never one multi-valued RDN with a repeated type
    assert not [f for f in lint(cert) if f[1] == "pkix.rdn_contains_duplicate_attribute_types"]
    openssl_verify(write(tmp_path / "root.pem", root("p256").cert), write(tmp_path / "sink.pem", cert), purpose="sslserver")
    cryptography_verify(root("p256").cert, cert, [], "server", "www.sink.example.com")


def test_ocsp_responder_certificate(tmp_path: Path) -> None:
    cert = LocalSigner(root("rsa2048"), KITCHEN_SINK_SIGNING).sign(
        SignRequest(request=csr("p256", {"CN": "OCSP Responder"}), profile="ocsp"), now=now()
    )
    assert lint_errors(cert) == []
    openssl_verify(write(tmp_path / "root.pem", root("rsa2048").cert), write(tmp_path / "ocsp.pem", cert), purpose="ocsphelper")


def test_name_constrained_chain(tmp_path: Path) -> None:
    inter_key = key("p256#nc")
    inter = LocalSigner(root("p384"), KITCHEN_SINK_SIGNING).sign(
        SignRequest(
            request=csr_pem(generate_csr(CertificateRequest.from_json({"CN": "NC Intermediate"}), inter_key)), profile="nc-intermediate"
        ),
        now=now(),
    )
    assert lint_errors(inter) == []
    leaf = LocalSigner(Issuer(inter_key, inter), SIGNING).sign(
        SignRequest(
            request=csr("p256", {"CN": "ok.example.com", "hosts": ["ok.example.com", "192.0.2.7", "me@example.com"]}), profile="server"
        ),
        now=now(),
    )
    assert lint_errors(leaf) == []
    openssl_verify(
        write(tmp_path / "root.pem", root("p384").cert), write(tmp_path / "leaf.pem", leaf), untrusted=write(tmp_path / "inter.pem", inter)
    )


def test_openssl_rejects_what_we_refuse_to_sign(tmp_path: Path) -> None:
    """Sanity check of the harness: a certificate outside the constraints (built by hand) fails openssl verify."""
    from cryptography.hazmat.primitives import hashes

    need("openssl")
    inter_key = key("p256#nc")
    inter = LocalSigner(root("p384"), KITCHEN_SINK_SIGNING).sign(
        SignRequest(
            request=csr_pem(generate_csr(CertificateRequest.from_json({"CN": "NC Intermediate"}), inter_key)), profile="nc-intermediate"
        ),
        now=now(),
    )
    bad = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "evil")]))
        .issuer_name(inter.subject)
        .public_key(key("p256").public_key())
        .serial_number(1)
        .not_valid_before(now() - dt.timedelta(hours=1))
        .not_valid_after(now() + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("evil.org")]), critical=False)
        .sign(inter_key, hashes.SHA256())
    )
    with pytest.raises(AssertionError, match="name constraint|permitted subtree"):
        openssl_verify(
            write(tmp_path / "root.pem", root("p384").cert),
            write(tmp_path / "bad.pem", bad),
            untrusted=write(tmp_path / "inter.pem", inter),
        )
