"""initca (new self-signed CAs), renewca and selfsign (reference §3.5, §7.1, §7.5)."""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import logging
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from cfsslpy.config import Config, SigningProfile
from cfsslpy.csr import CertificateRequest, csr_pem, generate_csr
from cfsslpy.errors import CfsslError
from cfsslpy.golang.json import HOUR
from cfsslpy.initca import ca_profile, new_ca, renew_ca, self_sign_ca
from cfsslpy.selfsign import WARNING, selfsign
from cfsslpy.signer import Issuer, LocalSigner, SignRequest

NOW = dt.datetime(2024, 5, 17, 18, 3, 41, tzinfo=dt.timezone.utc)
LATER = dt.datetime(2026, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc)
NB = dt.datetime(2024, 5, 17, 17, 59, tzinfo=dt.timezone.utc)


@functools.cache
def key(kind: str = "p256") -> Any:
    if kind == "rsa2048":
        return rsa.generate_private_key(65537, 2048)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key({"p256": ec.SECP256R1(), "p384": ec.SECP384R1()}[kind])


def req(obj: dict[str, Any] | None = None, **extra: Any) -> CertificateRequest:
    base: dict[str, Any] = {"CN": "Test CA", "names": [{"C": "US", "O": "cfsslpy"}]}
    base.update(obj or {})
    base.update(extra)
    return CertificateRequest.from_json(base)


def ext(cert: x509.Certificate, cls: type[Any]) -> Any:
    return cert.extensions.get_extension_for_class(cls).value


def has(cert: x509.Certificate, cls: type[Any]) -> bool:
    try:
        cert.extensions.get_extension_for_class(cls)
    except x509.ExtensionNotFound:
        return False
    return True


# ---------------------------------------------------------------------------------------------------------
# initca


def test_new_ca_defaults() -> None:
    cert, csr, k = new_ca(req(), now=NOW)
    assert isinstance(k, ec.EllipticCurvePrivateKey) and k.curve.name == "secp256r1"
    assert cert.not_valid_before_utc == NB
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(hours=43800)  # 1825 days, not calendar years
    assert ext(cert, x509.BasicConstraints) == x509.BasicConstraints(ca=True, path_length=None)
    assert ext(cert, x509.KeyUsage) == x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    assert [e.oid.dotted_string for e in cert.extensions] == ["2.5.29.15", "2.5.29.19", "2.5.29.14"]
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).critical
    assert not has(cert, x509.AuthorityKeyIdentifier) and not has(cert, x509.ExtendedKeyUsage)
    assert cert.issuer == cert.subject == csr.subject
    assert cert.subject.rfc4514_string() == "CN=Test CA,O=cfsslpy,C=US"
    cert.verify_directly_issued_by(cert)
    assert csr.public_key() == k.public_key() == cert.public_key()


def test_ca_expiry_and_backdate() -> None:
    cert, _, _ = new_ca(req(ca={"expiry": "2h30m", "backdate": "1h"}), now=NOW)
    assert cert.not_valid_before_utc == dt.datetime(2024, 5, 17, 17, 4, tzinfo=dt.timezone.utc)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(hours=2, minutes=30)


@pytest.mark.parametrize(
    ("ca", "pathlen"),
    [
        ({"pathlen": 2}, 2),
        ({"pathlen": 0}, None),
        ({"pathlen": 0, "pathlenzero": True}, 0),
        ({"pathlen": 1, "pathlenzero": True}, 1),
        ({}, None),
    ],
)
def test_pathlen_rules(ca: dict[str, Any], pathlen: int | None, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        cert, csr, _ = new_ca(req(ca=ca), now=NOW)
    assert ext(cert, x509.BasicConstraints) == x509.BasicConstraints(ca=True, path_length=pathlen)
    if ca.get("pathlen") and ca.get("pathlenzero"):
        assert any("ignore pathlenzero" in r.getMessage() for r in caplog.records)


def test_crl_url_and_hosts() -> None:
    cert, csr, _ = new_ca(req(crl_url="http://crl.example.com/root.crl", hosts=["ca.example.com", "10.1.1.1"]), now=NOW)
    assert [n.value for dp in ext(cert, x509.CRLDistributionPoints) for n in dp.full_name] == ["http://crl.example.com/root.crl"]
    # the CSR keeps every host; the CA certificate keeps only the IP (reference §7.3 item 12)
    assert len(list(ext(csr, x509.SubjectAlternativeName))) == 2
    assert list(ext(cert, x509.SubjectAlternativeName)) == [x509.IPAddress(ipaddress.ip_address("10.1.1.1"))]


@pytest.mark.parametrize(
    "obj", [{"CN": "", "names": []}, {"CN": "", "names": [{"C": ""}]}, {"CN": "", "names": [{"C": "US"}, {"OID": {"1.2.3": "x"}}]}]
)
def test_missing_subject_information(obj: dict[str, Any]) -> None:
    with pytest.raises(CfsslError) as exc:
        new_ca(req(obj))
    assert (exc.value.code, exc.value.message) == (5300, "missing subject information")


@pytest.mark.parametrize(
    ("key_obj", "message"),
    [({"algo": "rsa"}, "RSA key is too weak"), ({"algo": "ecdsa", "size": 123}, "invalid curve"), ({"algo": "x"}, "invalid algorithm")],
)
def test_key_errors(key_obj: dict[str, Any], message: str) -> None:
    with pytest.raises(CfsslError) as exc:
        new_ca(req(key=key_obj))
    assert (exc.value.code, exc.value.message) == (2400, message)


@pytest.mark.parametrize(("algo", "size", "cls"), [("ecdsa", 384, ec.EllipticCurvePrivateKey), ("ed25519", 0, ed25519.Ed25519PrivateKey)])
def test_key_algorithms(algo: str, size: int, cls: type[Any]) -> None:
    cert, _, k = new_ca(req(key={"algo": algo, "size": size}), now=NOW)
    assert isinstance(k, cls)
    cert.verify_directly_issued_by(cert)


def test_self_sign_ca_with_an_existing_key() -> None:
    k = key("p384")
    cert, csr = self_sign_ca(req(), k, now=NOW)
    assert cert.public_key() == k.public_key()
    assert ext(cert, x509.SubjectKeyIdentifier) == x509.SubjectKeyIdentifier.from_public_key(k.public_key())
    assert cert.signature_hash_algorithm is not None and cert.signature_hash_algorithm.name == "sha384"


def test_ca_profile_from_config() -> None:
    cfg = Config.from_json(
        {
            "signing": {
                "profiles": {
                    "root": {"expiry": "87600h", "usages": ["cert sign", "crl sign"], "ca_constraint": {"is_ca": True, "max_path_len": 1}},
                    "leaf": {"expiry": "1h", "usages": ["server auth"]},
                }
            }
        }
    )
    cert, _, _ = new_ca(req(), cfg.signing.profiles["root"], now=NOW)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(hours=87600)
    assert ext(cert, x509.BasicConstraints).path_length == 1
    with pytest.raises(CfsslError) as exc:
        new_ca(req(), cfg.signing.profiles["leaf"])
    assert exc.value.code == 5300


def test_ca_profile_helper() -> None:
    profile = ca_profile(req(ca={"pathlen": 3, "expiry": "10h", "backdate": "1m"}, crl_url="http://c"))
    assert (profile.expiry, profile.backdate, profile.crl_url) == (10 * HOUR, 60 * 10**9, "http://c")
    assert profile.ca_constraint.path_length() == 3 and profile.usages == ["cert sign", "crl sign"]
    assert ca_profile(req()).expiry == 43800 * HOUR


def test_name_constraints_in_the_ca_section() -> None:
    cert, _, _ = new_ca(req(ca={"name_constraints": {"permitted": {"dns": ["corp.example"]}, "excluded": {"ip": ["0.0.0.0/0"]}}}), now=NOW)
    nc = cert.extensions.get_extension_for_class(x509.NameConstraints)
    assert nc.critical
    assert nc.value.permitted_subtrees == [x509.DNSName("corp.example")]
    assert nc.value.excluded_subtrees == [x509.IPAddress(ipaddress.ip_network("0.0.0.0/0"))]


# ---------------------------------------------------------------------------------------------------------
# renewca


def _root_and_leaf(obj: dict[str, Any] | None = None) -> tuple[x509.Certificate, Any, x509.Certificate]:
    root, _ = self_sign_ca(req(obj), key("p256"), now=NOW)
    signer = LocalSigner(Issuer(key("p256"), root), Config.default().signing)
    leaf_csr = csr_pem(generate_csr(CertificateRequest.from_json({"CN": "leaf", "hosts": ["leaf.example.com"]}), key("p384")))
    # signed while the root is valid: an expired CA cannot sign (a 1000h root made at NOW expired in 2024)
    when = min(dt.datetime.now(dt.timezone.utc), root.not_valid_after_utc - dt.timedelta(hours=1))
    leaf = signer.sign(SignRequest(request=leaf_csr), now=when)
    return root, key("p256"), leaf


def test_renew_keeps_key_subject_pathlen_lifetime_and_crl() -> None:
    root, k, _ = _root_and_leaf({"ca": {"pathlen": 1, "expiry": "1000h"}, "crl_url": "http://crl.example.com/r.crl", "hosts": ["10.2.2.2"]})
    renewed = renew_ca(root, k, now=LATER)
    assert renewed.subject.public_bytes() == root.subject.public_bytes()
    assert renewed.public_key() == root.public_key()
    assert ext(renewed, x509.SubjectKeyIdentifier) == ext(root, x509.SubjectKeyIdentifier)
    assert ext(renewed, x509.BasicConstraints) == x509.BasicConstraints(ca=True, path_length=1)
    assert renewed.not_valid_before_utc == dt.datetime(2026, 2, 3, 4, 0, tzinfo=dt.timezone.utc)
    assert renewed.not_valid_after_utc - renewed.not_valid_before_utc == dt.timedelta(hours=1000)
    assert [n.value for dp in ext(renewed, x509.CRLDistributionPoints) for n in dp.full_name] == ["http://crl.example.com/r.crl"]
    assert list(ext(renewed, x509.SubjectAlternativeName)) == [x509.IPAddress(ipaddress.ip_address("10.2.2.2"))]
    assert renewed.serial_number != root.serial_number
    assert not has(renewed, x509.AuthorityKeyIdentifier)


def test_renewed_ca_still_verifies_the_old_leaves() -> None:
    root, k, leaf = _root_and_leaf()
    renewed = renew_ca(root, k, now=dt.datetime.now(dt.timezone.utc))
    verifier = PolicyBuilder().store(Store([renewed])).build_server_verifier(x509.DNSName("leaf.example.com"))
    assert verifier.verify(leaf, [])[-1] == renewed


def test_renew_keeps_a_foreign_subject_byte_for_byte() -> None:
    # a root made elsewhere: CN first, an emailAddress attribute, a UTF8String that could be printable
    k = key("p256")
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Foreign Root", x509.name._ASN1Type.UTF8String),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Elsewhere"),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "pki@example.com"),
        ]
    )
    root = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(k.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(k, hashes.SHA256())
    )
    renewed = renew_ca(root, k, now=LATER)
    assert renewed.subject.public_bytes() == root.subject.public_bytes()
    assert renewed.not_valid_after_utc - renewed.not_valid_before_utc == dt.timedelta(days=30)


def test_renew_refuses_non_ca_mismatched_keys_and_intermediates() -> None:
    root, k, leaf = _root_and_leaf()
    with pytest.raises(CfsslError) as exc:
        renew_ca(leaf, key("p384"))
    assert (exc.value.code, exc.value.message) == (5300, "input certificate is not a CA cert")
    with pytest.raises(CfsslError) as exc:
        renew_ca(root, key("p384"))
    assert exc.value.code == 2300
    signing = Config.from_json(
        {"signing": {"profiles": {"ca": {"expiry": "10h", "usages": ["cert sign"], "ca_constraint": {"is_ca": True}}}}}
    ).signing
    inter_csr = csr_pem(generate_csr(CertificateRequest.from_json({"CN": "Intermediate"}), key("ed25519")))
    inter = LocalSigner(Issuer(k, root), signing).sign(SignRequest(request=inter_csr, profile="ca"), now=NOW)
    with pytest.raises(CfsslError) as exc:
        renew_ca(inter, key("ed25519"))
    assert exc.value.code == 5300 and "self-signed" in exc.value.message


# ---------------------------------------------------------------------------------------------------------
# selfsign


def test_selfsign_defaults() -> None:
    cert, csr, k = selfsign(CertificateRequest.from_json({"CN": "self.example.com", "hosts": ["self.example.com", "127.0.0.1"]}), now=NOW)
    # cfssl's selfsign has its own clock rule: now - 5 minutes .. now + expiry, not rounded [2016 observed]
    assert cert.not_valid_before_utc == NOW - dt.timedelta(minutes=5)
    assert cert.not_valid_after_utc == NOW + dt.timedelta(hours=2190)
    assert cert.issuer == cert.subject
    # Go omits the AKI here; RFC 5280 only exempts self-signed CAs, so the leaf names its own key
    assert ext(cert, x509.AuthorityKeyIdentifier).key_identifier == ext(cert, x509.SubjectKeyIdentifier).digest
    assert not ext(cert, x509.BasicConstraints).ca
    # cfssl 2016 left the SANs out; the newest (and we) keep them
    assert [n.value for n in ext(cert, x509.SubjectAlternativeName)] == ["self.example.com", ipaddress.ip_address("127.0.0.1")]
    cert.verify_directly_issued_by(cert)
    assert csr.public_key() == k.public_key()
    assert "Self-signed certificates are dangerous" in WARNING


def test_selfsign_with_a_profile() -> None:
    cfg = Config.from_json(
        {
            "signing": {
                "default": {"expiry": "1h", "usages": ["server auth"]},
                "profiles": {"client": {"expiry": "5h", "usages": ["client auth"]}},
            }
        }
    )
    cert, _, _ = selfsign(CertificateRequest.from_json({"CN": "c", "key": {"algo": "ed25519"}}), cfg.signing, "client", now=NOW)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(hours=5, minutes=5)
    assert list(ext(cert, x509.ExtendedKeyUsage)) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]


def test_self_signing_needs_the_matching_key() -> None:
    signer = LocalSigner(Issuer(key("p256")), Config.default().signing)
    other = generate_csr(CertificateRequest.from_json({"CN": "x"}), key("p384"))
    with pytest.raises(CfsslError) as exc:
        signer.sign_csr(other, SignRequest(request=b""), SigningProfile.builtin_default())
    assert exc.value.code == 2300
