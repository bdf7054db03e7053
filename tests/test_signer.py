"""The local signer: every field of an issued certificate, parsed back and checked against the reference (§3.8, §7)."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import ipaddress
import logging
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier, SignatureAlgorithmOID
from cryptography.x509.verification import PolicyBuilder, Store
from dsa_vectors import DSA_CSR
from integration.helpers import key as shared_key
from pyasn1.codec.der import decoder as der_decoder
from pyasn1_alt_modules import rfc5280

from cfsslpy.config import Config, Signing, SigningProfile
from cfsslpy.csr import CAConfig, CertificateRequest, NameConstraints, csr_pem, generate_csr
from cfsslpy.errors import CfsslError
from cfsslpy.initca import self_sign_ca
from cfsslpy.keys import PrivateKey, encode_private_key
from cfsslpy.signer import (
    Issuer,
    LocalSigner,
    RequestExtension,
    SignRequest,
    SubjectOverride,
    issue,
    load_issuer,
    new_serial,
    round_minute,
)

NOW = dt.datetime(2024, 5, 17, 18, 3, 41, tzinfo=dt.timezone.utc)
HOUR = dt.timedelta(hours=1)

KU, EKU, BC, SKI, AKI = "2.5.29.15", "2.5.29.37", "2.5.29.19", "2.5.29.14", "2.5.29.35"
AIA, SAN, CRLDP, POLICIES, NC = "1.3.6.1.5.5.7.1.1", "2.5.29.17", "2.5.29.31", "2.5.29.32", "2.5.29.30"
OCSP_NOCHECK, DELEGATION = "1.3.6.1.5.5.7.48.1.5", "1.3.6.1.4.1.44363.44"


# ---------------------------------------------------------------------------------------------------------
# Helpers


def key(kind: str) -> PrivateKey:
    """One key per kind for the whole session, shared with the integration tests (RSA 4096 is slow to generate)."""
    return shared_key(kind)


def fresh_key(kind: str, tag: str) -> PrivateKey:
    """A second, distinct key of a kind (``tag`` names it)."""
    return shared_key(f"{kind}#{tag}")


def csr_for(k: PrivateKey, obj: dict[str, Any] | None = None) -> bytes:
    """A CSR PEM from CSR JSON (default: CN leaf.example.com, one DNS host)."""
    if obj is None:
        obj = {"CN": "leaf.example.com", "hosts": ["leaf.example.com"]}
    return csr_pem(generate_csr(CertificateRequest.from_json(obj), k))


def root(kind: str = "p256", ca: dict[str, Any] | None = None, cn: str = "Test Root") -> Issuer:
    obj: dict[str, Any] = {"CN": cn, "names": [{"C": "US", "O": "cfsslpy tests"}]}
    if ca is not None:
        obj["ca"] = ca
    cert, _ = self_sign_ca(CertificateRequest.from_json(obj), key(kind), now=NOW)
    return Issuer(key(kind), cert)


@functools.cache
def default_root() -> Issuer:
    return root()


def policy(signing: dict[str, Any] | None = None) -> Signing:
    if signing is None:
        return Config.default().signing
    return Config.from_json({"signing": signing}).signing


def sign(
    csr: bytes,
    signing: dict[str, Any] | Signing | None = None,
    issuer: Issuer | None = None,
    now: dt.datetime = NOW,
    **kwargs: Any,
) -> x509.Certificate:
    pol = signing if isinstance(signing, Signing) else policy(signing)
    signer = LocalSigner(issuer or default_root(), pol)
    return signer.sign(SignRequest(request=csr, **kwargs), now=now)


def profiles(**named: dict[str, Any]) -> dict[str, Any]:
    """A signing section with an 8760h server default and the given named profiles."""
    return {"default": {"expiry": "8760h", "usages": ["signing", "key encipherment", "server auth"]}, "profiles": named}


def raw_extensions(cert: x509.Certificate) -> list[tuple[str, bool, bytes]]:
    """(OID, critical, extnValue DER) straight from the DER, in order."""
    tbs, _ = der_decoder.decode(cert.tbs_certificate_bytes, asn1Spec=rfc5280.TBSCertificate())
    return [(str(e["extnID"]), bool(e["critical"]), bytes(e["extnValue"])) for e in tbs["extensions"]]


def oids(cert: x509.Certificate) -> list[str]:
    return [oid for oid, _, _ in raw_extensions(cert)]


def critical(cert: x509.Certificate) -> dict[str, bool]:
    return {oid: crit for oid, crit, _ in raw_extensions(cert)}


def ext(cert: x509.Certificate, cls: type[Any]) -> Any:
    return cert.extensions.get_extension_for_class(cls).value


def has_ext(cert: x509.Certificate, cls: type[Any]) -> bool:
    try:
        cert.extensions.get_extension_for_class(cls)
    except x509.ExtensionNotFound:
        return False
    return True


def error_code(exc: pytest.ExceptionInfo[CfsslError]) -> int:
    return exc.value.code


def spk_bits(public_key: Any) -> bytes:
    """The subjectPublicKey BIT STRING payload, computed independently of cryptography's SKI helper."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def rdn_view(name: x509.Name) -> list[list[tuple[str, str]]]:
    return [sorted((a.oid.dotted_string, str(a.value)) for a in rdn) for rdn in name.rdns]


C, ST, L, ORG, OU, CN, SN = (o.dotted_string for o in (NameOID.COUNTRY_NAME, NameOID.STATE_OR_PROVINCE_NAME, NameOID.LOCALITY_NAME,
                                                      NameOID.ORGANIZATION_NAME, NameOID.ORGANIZATIONAL_UNIT_NAME, NameOID.COMMON_NAME,
                                                      NameOID.SERIAL_NUMBER))  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Validity (§7.1 item 1)


def test_validity_rounds_to_the_nearest_minute_and_backdates_five_minutes() -> None:
    cert = sign(csr_for(key("p256")))
    assert cert.not_valid_before_utc == dt.datetime(2024, 5, 17, 17, 59, tzinfo=dt.timezone.utc)  # the spec's 18:03:41 example
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(hours=8760)


@pytest.mark.parametrize(
    ("second", "micro", "expected_minute"),
    [(29, 999_999, 3), (30, 0, 4), (59, 0, 4), (0, 0, 3)],
)
def test_round_minute_is_go_round_half_up(second: int, micro: int, expected_minute: int) -> None:
    now = dt.datetime(2024, 5, 17, 18, 3, second, micro, tzinfo=dt.timezone.utc)
    assert round_minute(now) == dt.datetime(2024, 5, 17, 18, expected_minute, tzinfo=dt.timezone.utc)


def test_profile_backdate_and_expiry() -> None:
    cert = sign(csr_for(key("p256")), profiles(short={"expiry": "2h", "backdate": "1h", "usages": ["server auth"]}), profile="short")
    assert cert.not_valid_before_utc == dt.datetime(2024, 5, 17, 17, 4, tzinfo=dt.timezone.utc)
    # notAfter = notBefore + expiry, so backdating shortens the lifetime measured from now
    assert cert.not_valid_after_utc == dt.datetime(2024, 5, 17, 19, 4, tzinfo=dt.timezone.utc)


def test_profile_absolute_not_before_not_after() -> None:
    signing = profiles(
        fixed={"expiry": "1h", "usages": ["server auth"], "not_before": "2024-01-01T00:00:00Z", "not_after": "2025-01-01T00:00:00Z"}
    )
    cert = sign(csr_for(key("p256")), signing, profile="fixed")
    assert cert.not_valid_before_utc == dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    assert cert.not_valid_after_utc == dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)


def test_request_validity_wins_and_naive_times_are_utc() -> None:
    # inside the CA's life (2024-05-17 .. 2029-05-16): a later notAfter would be cut to the CA's
    cert = sign(csr_for(key("p256")), not_before=dt.datetime(2026, 1, 1, 12), not_after=dt.datetime(2026, 2, 1, 12))
    assert cert.not_valid_before_utc == dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc)
    assert cert.not_valid_after_utc == dt.datetime(2026, 2, 1, 12, tzinfo=dt.timezone.utc)


def test_naive_clock_is_utc() -> None:
    cert = sign(csr_for(key("p256")), now=NOW.replace(tzinfo=None))
    assert cert.not_valid_before_utc == dt.datetime(2024, 5, 17, 17, 59, tzinfo=dt.timezone.utc)


def test_non_utc_clock_is_converted() -> None:
    cest = dt.timezone(dt.timedelta(hours=2))
    cert = sign(csr_for(key("p256")), now=NOW.astimezone(cest))
    assert cert.not_valid_before_utc == dt.datetime(2024, 5, 17, 17, 59, tzinfo=dt.timezone.utc)


def test_not_after_before_not_before_is_refused() -> None:
    with pytest.raises(CfsslError) as exc:
        sign(
            csr_for(key("p256")),
            not_before=dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc),
            not_after=dt.datetime(2029, 1, 1, tzinfo=dt.timezone.utc),
        )
    assert error_code(exc) == 5200


def test_expiry_falls_back_to_the_default_profile() -> None:
    signing = policy(profiles(p={"expiry": "1h", "usages": ["server auth"]}))
    signing.profiles["p"].expiry = 0  # a profile built in code without expiry
    cert = sign(csr_for(key("p256")), signing, profile="p")
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(hours=8760)


def test_utc_time_until_2049_generalized_time_from_2050() -> None:
    long_root = root(ca={"expiry": "262800h"}, cn="Long Root")  # 30 years: the leaf may not outlive its CA
    not_before, not_after = dt.datetime(2049, 6, 1, tzinfo=dt.timezone.utc), dt.datetime(2050, 6, 1, tzinfo=dt.timezone.utc)
    cert = sign(csr_for(key("p256")), issuer=long_root, not_before=not_before, not_after=not_after)
    tbs, _ = der_decoder.decode(cert.tbs_certificate_bytes, asn1Spec=rfc5280.TBSCertificate())
    assert tbs["validity"]["notBefore"].getName() == "utcTime"
    assert tbs["validity"]["notAfter"].getName() == "generalTime"


# ---------------------------------------------------------------------------------------------------------
# Serials (§7.1 item 3)


def test_serials_are_positive_159_bit_values() -> None:
    serials = [new_serial() for _ in range(200)]
    assert all(0 < s < 2**159 for s in serials)
    assert max(s.bit_length() for s in serials) >= 155  # really random over 159 bits
    assert len(set(serials)) == len(serials)


def test_issued_serial_fits_in_20_der_bytes() -> None:
    cert = sign(csr_for(key("p256")))
    tbs, _ = der_decoder.decode(cert.tbs_certificate_bytes, asn1Spec=rfc5280.TBSCertificate())
    assert 0 < int(tbs["serialNumber"]) < 2**159
    assert cert.serial_number == int(tbs["serialNumber"])


def test_client_provided_serial_numbers() -> None:
    signing = profiles(cps={"expiry": "1h", "usages": ["server auth"], "ClientProvidesSerialNumbers": True})
    with pytest.raises(CfsslError) as exc:
        sign(csr_for(key("p256")), signing, profile="cps")
    assert (exc.value.code, exc.value.message) == (1400, "Missing serial number in request")
    cert = sign(csr_for(key("p256")), signing, profile="cps", serial=123456789)
    assert cert.serial_number == 123456789
    for bad in (0, -5, 2**159):
        with pytest.raises(CfsslError) as exc:
            sign(csr_for(key("p256")), signing, profile="cps", serial=bad)
        assert exc.value.code == 1300
    # without the profile flag a request serial is ignored
    assert sign(csr_for(key("p256")), serial=42).serial_number != 42


# ---------------------------------------------------------------------------------------------------------
# Key identifiers (§7.1 item 4)


@pytest.mark.parametrize("kind", ["rsa2048", "p256", "p384", "ed25519"])
def test_ski_is_sha1_of_the_subject_public_key_bits(kind: str) -> None:
    cert = sign(csr_for(key(kind)))
    assert ext(cert, x509.SubjectKeyIdentifier).digest == hashlib.sha1(spk_bits(key(kind).public_key())).digest()


def test_aki_is_the_issuer_ski_key_identifier_only() -> None:
    issuer = default_root()
    cert = sign(csr_for(key("p256")))
    aki = ext(cert, x509.AuthorityKeyIdentifier)
    assert aki.key_identifier == ext(issuer.cert, x509.SubjectKeyIdentifier).digest
    assert aki.authority_cert_issuer is None and aki.authority_cert_serial_number is None
    assert not critical(cert)[AKI]


def test_self_signed_ca_has_no_aki() -> None:
    assert not has_ext(default_root().cert, x509.AuthorityKeyIdentifier)
    assert has_ext(default_root().cert, x509.SubjectKeyIdentifier)


def test_issuer_without_ski_gets_method_1_aki() -> None:
    k = key("p384")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "No SKI CA")])
    ca = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(k.public_key()).serial_number(7)
        .not_valid_before(NOW - HOUR).not_valid_after(NOW + 1000 * HOUR)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(k, hashes.SHA384())
    )  # fmt: skip
    cert = sign(csr_for(key("p256")), issuer=Issuer(k, ca))
    assert ext(cert, x509.AuthorityKeyIdentifier).key_identifier == hashlib.sha1(spk_bits(k.public_key())).digest()


def test_self_issued_certificate_with_another_key_keeps_its_aki() -> None:
    # Go drops the AKI whenever issuer and subject names are equal; RFC 5280 needs it unless self-signed.
    issuer = default_root()
    cert = sign(csr_for(key("p384"), {"CN": "Test Root", "names": [{"C": "US", "O": "cfsslpy tests"}]}))
    assert cert.subject == issuer.cert.subject
    assert has_ext(cert, x509.AuthorityKeyIdentifier)


# ---------------------------------------------------------------------------------------------------------
# Extensions: order, criticality, encodings (§3.8 "Resulting extension order")


def test_leaf_extension_order_and_criticality() -> None:
    cert = sign(csr_for(key("rsa2048")))
    assert oids(cert) == [KU, EKU, BC, SKI, AKI, SAN]
    assert critical(cert) == {KU: True, EKU: False, BC: True, SKI: False, AKI: False, SAN: False}


def test_ca_false_is_an_empty_sequence() -> None:
    raw = dict((oid, value) for oid, _, value in raw_extensions(sign(csr_for(key("p256")))))
    assert raw[BC] == b"\x30\x00"


def test_full_extension_order() -> None:
    signing = {
        "default": {"expiry": "1h", "usages": ["server auth"], "ocsp_url": "http://ocsp.example.com",
                    "crl_url": "http://crl.example.com/ca.crl", "issuer_urls": ["http://ca.example.com/ca.crt"]},
        "profiles": {"full": {
            "expiry": "8760h", "usages": ["signing", "server auth", "client auth"], "copy_extensions": True,
            "allowed_extensions": ["1.2.3.4.6"], "ocsp_no_check": True,
            "Policies": [{"ID": "2.23.140.1.2.1"}],
        }},
    }  # fmt: skip
    k = key("p256")
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "full.example.com")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("full.example.com")]), critical=False)
        .add_extension(x509.UnrecognizedExtension(ObjectIdentifier("1.2.3.4.5"), b"\x05\x00"), critical=False)
        .add_extension(x509.UnrecognizedExtension(ObjectIdentifier(DELEGATION), b"\x05\x00"), critical=False)
        .sign(k, hashes.SHA256())
    )
    cert = sign(csr.public_bytes(serialization.Encoding.PEM), signing, profile="full",
                extensions=[RequestExtension(ObjectIdentifier("1.2.3.4.6"), True, b"\x05\x00")])  # fmt: skip
    assert oids(cert) == [KU, EKU, BC, SKI, AKI, AIA, SAN, CRLDP, "1.2.3.4.5", DELEGATION, "1.2.3.4.6", POLICIES, OCSP_NOCHECK]
    assert critical(cert)["1.2.3.4.6"] is True
    aia = ext(cert, x509.AuthorityInformationAccess)
    assert [(d.access_method.dotted_string, d.access_location.value) for d in aia] == [
        ("1.3.6.1.5.5.7.48.1", "http://ocsp.example.com"),
        ("1.3.6.1.5.5.7.48.2", "http://ca.example.com/ca.crt"),
    ]


def test_ca_extension_order() -> None:
    signing = profiles(ca={"expiry": "8760h", "usages": ["cert sign", "crl sign"], "ca_constraint": {"is_ca": True},
                           "crl_url": "http://crl.example.com/sub.crl",
                           "name_constraints": {"permitted": {"dns": ["example.com"]}}})  # fmt: skip
    cert = sign(csr_for(key("p256"), {"CN": "Sub CA", "hosts": ["10.0.0.1"]}), signing, profile="ca")
    assert oids(cert) == [KU, BC, SKI, AKI, SAN, NC, CRLDP]
    assert critical(cert) == {KU: True, BC: True, SKI: False, AKI: False, SAN: False, NC: True, CRLDP: False}


def test_ocsp_no_check_is_a_non_critical_null() -> None:
    cert = sign(
        csr_for(key("p256")), profiles(o={"expiry": "1h", "usages": ["ocsp signing", "signing"], "ocsp_no_check": True}), profile="o"
    )
    raw = {oid: (crit, value) for oid, crit, value in raw_extensions(cert)}
    assert raw[OCSP_NOCHECK] == (False, b"\x05\x00")
    assert ext(cert, x509.ExtendedKeyUsage) == x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING])


def test_policies_cps_is_ia5string_and_user_notice_utf8string() -> None:
    signing = profiles(p={"expiry": "1h", "usages": ["server auth"], "Policies": [
        {"ID": "1.2.3.4", "Qualifiers": [{"Type": "id-qt-cps", "Value": "http://cps.example.com"},
                                          {"Type": "id-qt-unotice", "Value": "Notice text"}]},
        {"ID": "2.23.140.1.2.2"},
    ]})  # fmt: skip
    cert = sign(csr_for(key("p256")), signing, profile="p")
    value = dict((oid, v) for oid, _, v in raw_extensions(cert))[POLICIES]
    policies, _ = der_decoder.decode(value, asn1Spec=rfc5280.CertificatePolicies())
    assert [str(p["policyIdentifier"]) for p in policies] == ["1.2.3.4", "2.23.140.1.2.2"]
    quals = policies[0]["policyQualifiers"]
    assert str(quals[0]["policyQualifierId"]) == "1.3.6.1.5.5.7.2.1"
    cps, _ = der_decoder.decode(bytes(quals[0]["qualifier"]))
    assert cps.tagSet == rfc5280.CPSuri.tagSet and str(cps) == "http://cps.example.com"
    assert str(quals[1]["policyQualifierId"]) == "1.3.6.1.5.5.7.2.2"
    notice, _ = der_decoder.decode(bytes(quals[1]["qualifier"]), asn1Spec=rfc5280.UserNotice())
    assert notice["explicitText"].getName() == "utf8String"
    assert str(notice["explicitText"]["utf8String"]) == "Notice text"
    assert not policies[1]["policyQualifiers"].isValue


def test_url_fallback_to_the_default_profile() -> None:
    signing = {
        "default": {"expiry": "1h", "usages": ["server auth"], "ocsp_url": "http://ocsp.d", "crl_url": "http://crl.d/x.crl",
                    "issuer_urls": ["http://ca.d/ca.crt"]},
        "profiles": {
            "inherit": {"expiry": "1h", "usages": ["server auth"]},
            "own": {"expiry": "1h", "usages": ["server auth"], "ocsp_url": "http://ocsp.p", "crl_url": "http://crl.p/x.crl",
                    "issuer_urls": ["http://ca.p/a.crt", "http://ca.p/b.crt"]},
            "no_issuers": {"expiry": "1h", "usages": ["server auth"], "issuer_urls": []},
        },
    }  # fmt: skip

    def urls(cert: x509.Certificate) -> tuple[list[str], list[str], list[str]]:
        aia = ext(cert, x509.AuthorityInformationAccess) if has_ext(cert, x509.AuthorityInformationAccess) else []
        ocsp = [d.access_location.value for d in aia if d.access_method.dotted_string.endswith(".1")]
        issuers = [d.access_location.value for d in aia if d.access_method.dotted_string.endswith(".2")]
        crl = [n.value for dp in ext(cert, x509.CRLDistributionPoints) for n in dp.full_name]
        return ocsp, issuers, crl

    csr = csr_for(key("p256"))
    assert urls(sign(csr, signing, profile="inherit")) == (["http://ocsp.d"], ["http://ca.d/ca.crt"], ["http://crl.d/x.crl"])
    assert urls(sign(csr, signing, profile="own")) == (
        ["http://ocsp.p"],
        ["http://ca.p/a.crt", "http://ca.p/b.crt"],
        ["http://crl.p/x.crl"],
    )
    # an explicit empty issuer_urls list does not fall back (only an absent key does)
    assert urls(sign(csr, signing, profile="no_issuers")) == (["http://ocsp.d"], [], ["http://crl.d/x.crl"])
    # crl_override (gencert -crl) replaces the profile's CRL DP
    assert urls(sign(csr, signing, profile="own", crl_override="http://override/x.crl"))[2] == ["http://override/x.crl"]


def test_no_url_extensions_without_urls() -> None:
    cert = sign(csr_for(key("p256")))
    assert not has_ext(cert, x509.AuthorityInformationAccess)
    assert not has_ext(cert, x509.CRLDistributionPoints)


# ---------------------------------------------------------------------------------------------------------
# Key usages (§3.3) and the RFC 5280 / 8813 filtering (deliberate difference)


def test_rsa_leaf_gets_the_default_usages() -> None:
    cert = sign(csr_for(key("rsa2048")))
    ku = ext(cert, x509.KeyUsage)
    assert ku.digital_signature and ku.key_encipherment and not ku.key_cert_sign
    assert list(ext(cert, x509.ExtendedKeyUsage)) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]


@pytest.mark.parametrize("kind", ["p256", "ed25519"])
def test_key_encipherment_is_dropped_for_ec_and_ed25519_keys(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    # asked for by a user-written profile: a WARNING
    user = profiles(www={"expiry": "1h", "usages": ["signing", "key encipherment", "server auth"]})
    with caplog.at_level(logging.DEBUG, logger="cfsslpy.signer"):
        cert = sign(csr_for(key(kind)), user, profile="www")
    ku = ext(cert, x509.KeyUsage)
    assert ku.digital_signature and not ku.key_encipherment
    assert any("key encipherment" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    # asked for by cfssl's built-in default profile (no -config): dropped all the same, but only a DEBUG line
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="cfsslpy.signer"):
        cert = sign(csr_for(key(kind)))
    assert not ext(cert, x509.KeyUsage).key_encipherment
    notes = [r for r in caplog.records if "key encipherment" in r.getMessage()]
    assert notes and all(r.levelno == logging.DEBUG for r in notes)


def test_cert_sign_is_dropped_on_a_non_ca(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="cfsslpy.signer"):
        cert = sign(csr_for(key("p256")), profiles(x={"expiry": "1h", "usages": ["signing", "cert sign", "crl sign"]}), profile="x")
    ku = ext(cert, x509.KeyUsage)
    assert ku.digital_signature and ku.crl_sign and not ku.key_cert_sign
    assert any("cert sign" in r.getMessage() for r in caplog.records)


def test_ca_profile_without_cert_sign_gets_it(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="cfsslpy.signer"):
        cert = sign(
            csr_for(key("p256"), {"CN": "Sub"}),
            profiles(ca={"expiry": "1h", "usages": ["crl sign"], "ca_constraint": {"is_ca": True}}),
            profile="ca",
        )
    ku = ext(cert, x509.KeyUsage)
    assert ku.key_cert_sign and ku.crl_sign
    assert any("keyCertSign" in r.getMessage() for r in caplog.records)


def test_encipher_only_needs_key_agreement() -> None:
    signing = profiles(
        a={"expiry": "1h", "usages": ["key agreement", "encipher only", "decipher only"]},
        b={"expiry": "1h", "usages": ["signing", "encipher only"]},
    )
    ku = ext(sign(csr_for(key("p256")), signing, profile="a"), x509.KeyUsage)
    assert ku.key_agreement and ku.encipher_only and ku.decipher_only
    ku = ext(sign(csr_for(key("p256")), signing, profile="b"), x509.KeyUsage)
    assert ku.digital_signature and not ku.key_agreement
    with pytest.raises(ValueError):
        _ = ku.encipher_only  # only defined with key agreement


def test_key_agreement_is_dropped_for_rsa() -> None:
    cert = sign(csr_for(key("rsa2048")), profiles(a={"expiry": "1h", "usages": ["signing", "key agreement"]}), profile="a")
    assert not ext(cert, x509.KeyUsage).key_agreement


def test_ekus_only_means_no_key_usage_extension() -> None:
    cert = sign(csr_for(key("p256")), profiles(a={"expiry": "1h", "usages": ["server auth", "server auth", "client auth"]}), profile="a")
    assert oids(cert)[:2] == [EKU, BC]
    # duplicates are removed (cfssl keeps them; a repeated EKU OID is meaningless)
    assert list(ext(cert, x509.ExtendedKeyUsage)) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]


def test_every_usage_string() -> None:
    names = ["any", "server auth", "client auth", "code signing", "email protection", "s/mime", "ipsec end system", "ipsec tunnel",
             "ipsec user", "timestamping", "ocsp signing", "microsoft sgc", "netscape sgc"]  # fmt: skip
    cert = sign(
        csr_for(key("rsa2048")),
        profiles(a={"expiry": "1h", "usages": ["signing", "content commitment", "key encipherment", "data encipherment", *names]}),
        profile="a",
    )
    ku = ext(cert, x509.KeyUsage)
    assert ku.digital_signature and ku.content_commitment and ku.key_encipherment and ku.data_encipherment
    assert [o.dotted_string for o in ext(cert, x509.ExtendedKeyUsage)] == [
        "2.5.29.37.0", "1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2", "1.3.6.1.5.5.7.3.3", "1.3.6.1.5.5.7.3.4", "1.3.6.1.5.5.7.3.5",
        "1.3.6.1.5.5.7.3.6", "1.3.6.1.5.5.7.3.7", "1.3.6.1.5.5.7.3.8", "1.3.6.1.5.5.7.3.9", "1.3.6.1.4.1.311.10.3.3", "2.16.840.1.113730.4.1",
    ]  # fmt: skip


def test_no_key_usage_is_5100() -> None:
    with pytest.raises(CfsslError) as exc:
        sign(csr_for(key("p256")), {"default": {"expiry": "168h"}})
    assert (exc.value.code, exc.value.message) == (5100, "Invalid policy: no key usage available")


def test_only_forbidden_usages_is_5100() -> None:
    with pytest.raises(CfsslError) as exc:
        sign(csr_for(key("p256")), profiles(a={"expiry": "1h", "usages": ["key encipherment"]}), profile="a")
    assert exc.value.code == 5100


# ---------------------------------------------------------------------------------------------------------
# Subject (§7.2)


def test_subject_canonical_order_one_rdn_per_value() -> None:
    obj = {
        "CN": "leaf.example.com",
        "serialnumber": "12345",
        "names": [{"OU": "ou1", "O": "o1", "L": "Town", "ST": "State", "C": "US"}, {"O": "o2", "C": "GB", "OU": ""}],
        "hosts": ["leaf.example.com"],
    }
    cert = sign(csr_for(key("p256"), obj))
    assert rdn_view(cert.subject) == [
        [(C, "US")], [(C, "GB")], [(ST, "State")], [(L, "Town")], [(ORG, "o1")], [(ORG, "o2")], [(OU, "ou1")],
        [(CN, "leaf.example.com")], [(SN, "12345")],
    ]  # fmt: skip


def test_foreign_subject_is_reencoded_in_canonical_order() -> None:
    k = key("p256")
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, "foreign", _ASN1Type.UTF8String),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Org"),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
        x509.NameAttribute(NameOID.EMAIL_ADDRESS, "me@example.com"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Org2"),
    ])  # fmt: skip
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(k, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    cert = sign(csr)
    assert rdn_view(cert.subject) == [
        [(C, "DE")],
        [(ORG, "Org")],
        [(ORG, "Org2")],
        [(CN, "foreign")],
        [("1.2.840.113549.1.9.1", "me@example.com")],
    ]
    assert [a._type for a in cert.subject] == [_ASN1Type.PrintableString] * 4 + [_ASN1Type.IA5String]
    # the subject email is mirrored into the SAN (RFC 5280 §4.1.2.6; cfssl does not)
    assert ext(cert, x509.SubjectAlternativeName).get_values_for_type(x509.RFC822Name) == ["me@example.com"]


@pytest.mark.parametrize(
    ("value", "printable"),
    [
        ("Example Co", True), ("A-Z a-z 0-9 '()+,-./:=?", True), ("*.example.com", False), ("a&b", False), ("a@b", False),
        ("a_b", False), ("a!b", False), ("Zürich", False), ("semi;colon", False),
    ],
)  # fmt: skip
def test_printable_or_utf8_string(value: str, printable: bool) -> None:
    cert = sign(csr_for(key("p256"), {"CN": value, "names": [{"O": value, "L": value}], "hosts": ["x.example.com"]}))
    expected = _ASN1Type.PrintableString if printable else _ASN1Type.UTF8String
    assert {a._type for a in cert.subject} == {expected}
    assert {a.value for a in cert.subject} == {value}


def test_extra_attributes_come_last_each_in_its_own_rdn() -> None:
    obj = {
        "CN": "x",
        "names": [{"C": "US", "E": "a@example.com", "OID": {"1.2.3.4": "one", "2.5.4.12": "Title_x"}}, {"E": "b@example.com"}],
    }
    cert = sign(csr_for(key("p256"), obj))
    assert rdn_view(cert.subject) == [
        [(C, "US")], [(CN, "x")], [("1.2.840.113549.1.9.1", "a@example.com")], [("1.2.3.4", "one")], [("2.5.4.12", "Title_x")],
        [("1.2.840.113549.1.9.1", "b@example.com")],
    ]  # fmt: skip
    types = [a._type for a in cert.subject]
    # emailAddress keeps its IA5String syntax (Go uses Printable/UTF8 — deliberate difference); OID values follow Go's rule
    assert types == [_ASN1Type.PrintableString, _ASN1Type.PrintableString, _ASN1Type.IA5String, _ASN1Type.PrintableString,
                     _ASN1Type.UTF8String, _ASN1Type.IA5String]  # fmt: skip


@pytest.mark.parametrize(
    ("names", "cn", "needle"),
    [
        ([{"C": "USA"}], "x", "country"),
        ([{"C": "é1"}], "x", "country"),
        ([{"O": "o" * 65}], "x", "longer than 64"),
        ([{"E": "é@example.com"}], "x", "IA5String"),
        ([], "c" * 65, "longer than 64"),
    ],
)
def test_unencodable_subject_values_are_refused(names: list[dict[str, str]], cn: str, needle: str) -> None:
    with pytest.raises(CfsslError) as exc:
        csr_for(key("p256"), {"CN": cn, "names": names})
    assert exc.value.code == 9300 and needle in exc.value.message


def test_serial_number_attribute_must_be_printable() -> None:
    with pytest.raises(CfsslError) as exc:
        csr_for(key("p256"), {"CN": "x", "serialnumber": "a_b"})
    assert exc.value.code == 9300 and "PrintableString" in exc.value.message


# ---------------------------------------------------------------------------------------------------------
# Subject override (§3.7)


def test_subject_override_merges_per_attribute_type() -> None:
    csr = csr_for(
        key("p256"),
        {
            "CN": "csr-cn",
            "serialnumber": "csr-sn",
            "names": [{"C": "US", "O": "csr-o", "OU": "csr-ou", "E": "e@example.com"}],
            "hosts": ["a.example.com"],
        },
    )
    override = SubjectOverride.from_json(
        {"cn": "over", "names": [{"O": "o1"}, {"O": "o2", "E": "ignored@example.com", "OID": {"1.2.3": "x"}, "SerialNumber": "ignored"}]}
    )
    cert = sign(csr, subject=override)
    assert rdn_view(cert.subject) == [[(C, "US")], [(ORG, "o1")], [(ORG, "o2")], [(OU, "csr-ou")], [(CN, "over")], [(SN, "csr-sn")]]
    cert = sign(csr, subject=SubjectOverride.from_json({"SerialNumber": "new-sn"}))
    assert rdn_view(cert.subject)[-1] == [(SN, "new-sn")]
    # CSR extras (here emailAddress) are dropped when an override is given
    assert all(a.oid != NameOID.EMAIL_ADDRESS for a in cert.subject)


# ---------------------------------------------------------------------------------------------------------
# SANs (§7.3)


def test_san_classification_and_order() -> None:
    hosts = [
        "c@example.com",
        "10.0.0.1",
        "spiffe://example.org/w",
        "b.example.com",
        "::1",
        "Name <n@example.com>",
        "::ffff:192.0.2.1",
        "*.example.com",
    ]
    cert = sign(csr_for(key("p256"), {"CN": "x", "hosts": hosts}))
    san = list(ext(cert, x509.SubjectAlternativeName))
    assert san == [
        x509.DNSName("b.example.com"), x509.DNSName("*.example.com"),
        x509.RFC822Name("c@example.com"), x509.RFC822Name("n@example.com"),
        x509.IPAddress(ipaddress.ip_address("10.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1")),
        x509.IPAddress(ipaddress.ip_address("192.0.2.1")),
        x509.UniformResourceIdentifier("spiffe://example.org/w"),
    ]  # fmt: skip
    value = dict((oid, v) for oid, _, v in raw_extensions(cert))[SAN]
    names, _ = der_decoder.decode(value, asn1Spec=rfc5280.SubjectAltName())
    ips = [bytes(n["iPAddress"]) for n in names if n.getName() == "iPAddress"]
    assert [len(ip) for ip in ips] == [4, 16, 4]  # IPv4 (also v4-mapped) as 4 bytes, like Go


@pytest.mark.parametrize("host", ["localhost:8080", "example.com:443", "bad host", "exa mple.com", "ünïcode.example", "a..b"])
def test_invalid_hosts_are_refused(host: str) -> None:
    # deliberate: cfssl makes host:port a URI (newest) or a DNS name (2016) and panics on non-ASCII
    with pytest.raises(CfsslError) as exc:
        sign(csr_for(key("p256")), hosts=[host])
    assert exc.value.code == 1300
    with pytest.raises(CfsslError) as exc:
        csr_for(key("p256"), {"CN": "x", "hosts": [host]})
    assert exc.value.code == 9300


def test_san_is_critical_only_with_an_empty_subject() -> None:
    cert = sign(csr_for(key("p256"), {"hosts": ["a.example.com"]}))
    assert cert.subject == x509.Name([])
    assert critical(cert)[SAN] is True
    assert critical(sign(csr_for(key("p256"))))[SAN] is False


def test_no_subject_and_no_san_is_refused() -> None:
    with pytest.raises(CfsslError) as exc:
        sign(csr_for(key("p256"), {}))
    assert exc.value.code == 1300


def test_hosts_override_none_keeps_empty_removes_list_replaces() -> None:
    csr = csr_for(key("p256"), {"CN": "x", "hosts": ["a.example.com", "10.0.0.1"]})
    assert [n.value for n in ext(sign(csr), x509.SubjectAlternativeName)] == ["a.example.com", ipaddress.ip_address("10.0.0.1")]
    assert not has_ext(sign(csr, hosts=[]), x509.SubjectAlternativeName)
    assert [n.value for n in ext(sign(csr, hosts=["b.example.com", "", "c@example.com"]), x509.SubjectAlternativeName)] == [
        "b.example.com",
        "c@example.com",
    ]


def test_ca_certificates_keep_only_ip_sans() -> None:
    signing = profiles(ca={"expiry": "1h", "usages": ["cert sign"], "ca_constraint": {"is_ca": True}})
    cert = sign(
        csr_for(key("p256"), {"CN": "Sub", "hosts": ["a.example.com", "10.0.0.1", "a@example.com", "spiffe://x/y"]}), signing, profile="ca"
    )
    assert list(ext(cert, x509.SubjectAlternativeName)) == [x509.IPAddress(ipaddress.ip_address("10.0.0.1"))]
    cert = sign(csr_for(key("p256"), {"CN": "Sub", "hosts": ["a.example.com"]}), signing, profile="ca")
    assert not has_ext(cert, x509.SubjectAlternativeName)


# ---------------------------------------------------------------------------------------------------------
# Signature algorithm (§7.4)


@pytest.mark.parametrize(
    ("kind", "oid"),
    [
        ("rsa2048", SignatureAlgorithmOID.RSA_WITH_SHA256),
        ("rsa3072", SignatureAlgorithmOID.RSA_WITH_SHA384),
        ("rsa4096", SignatureAlgorithmOID.RSA_WITH_SHA512),
        ("p256", SignatureAlgorithmOID.ECDSA_WITH_SHA256),
        ("p384", SignatureAlgorithmOID.ECDSA_WITH_SHA384),
        ("p521", SignatureAlgorithmOID.ECDSA_WITH_SHA512),
        ("ed25519", SignatureAlgorithmOID.ED25519),
    ],
)
def test_signature_algorithm_follows_the_signing_key(kind: str, oid: ObjectIdentifier) -> None:
    issuer = root(kind)
    assert issuer.cert.signature_algorithm_oid == oid
    # the leaf's own key (and so the CSR's algorithm) does not matter
    cert = sign(csr_for(key("p384")), issuer=issuer)
    assert cert.signature_algorithm_oid == oid
    cert.verify_directly_issued_by(issuer.cert)


def test_weak_rsa_ca_keys_are_refused() -> None:
    k = rsa.generate_private_key(65537, 1024)
    with pytest.raises(CfsslError) as exc:
        Issuer(k)
    assert exc.value.code == 2200


def test_weak_or_odd_subject_keys_are_refused() -> None:
    small = rsa.generate_private_key(65537, 1024)
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(small, hashes.SHA256())
    with pytest.raises(CfsslError) as exc:
        sign(csr.public_bytes(serialization.Encoding.PEM))
    assert exc.value.code == 9300
    k1 = ec.generate_private_key(ec.SECP256K1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(k1, hashes.SHA256())
    with pytest.raises(CfsslError) as exc:
        sign(csr.public_bytes(serialization.Encoding.PEM))
    assert exc.value.code == 9300
    # a DSA CSR is refused with the same words, without loading the key (no deprecation warning)
    with pytest.raises(CfsslError) as exc:
        sign(DSA_CSR)
    assert (exc.value.code, exc.value.message) == (9300, "unsupported public key algorithm (RSA, ECDSA P-256/384/521 or Ed25519)")


# ---------------------------------------------------------------------------------------------------------
# CA requests and path lengths (§3.8 step 5, §7.5 items 20-21)

CA_PROFILE = {"expiry": "8760h", "usages": ["cert sign", "crl sign"], "ca_constraint": {"is_ca": True}}


def ca_csr(pathlen: int | None) -> bytes:
    obj: dict[str, Any] = {"CN": "Intermediate", "names": [{"O": "cfsslpy tests"}]}
    if pathlen is not None:
        obj["ca"] = {"pathlen": pathlen, "pathlenzero": pathlen == 0}
    return csr_for(key("p256"), obj)


@functools.cache
def root_with_pathlen(pathlen: int) -> Issuer:
    return root("p256", {"pathlen": pathlen, "pathlenzero": pathlen == 0}, cn=f"Root pathlen {pathlen}")


@pytest.mark.parametrize(
    ("issuer_pathlen", "csr_pathlen", "ok"),
    [(1, 0, True), (1, 1, False), (1, None, True), (2, 1, True), (2, 2, False), (0, 0, False), (0, None, False)],
)
def test_pathlen_table(issuer_pathlen: int, csr_pathlen: int | None, ok: bool) -> None:
    issuer = root_with_pathlen(issuer_pathlen)
    assert ext(issuer.cert, x509.BasicConstraints).path_length == issuer_pathlen
    csr = ca_csr(csr_pathlen)
    if ok:
        cert = sign(csr, profiles(ca=CA_PROFILE), issuer=issuer, profile="ca")
        assert ext(cert, x509.BasicConstraints).ca
    else:
        with pytest.raises(CfsslError) as exc:
            sign(csr, profiles(ca=CA_PROFILE), issuer=issuer, profile="ca")
        assert exc.value.code == 5300


def test_issued_pathlen_comes_from_the_profile() -> None:
    def issued(constraint: dict[str, Any], csr_pathlen: int | None = 5) -> int | None:
        signing = profiles(ca={**CA_PROFILE, "ca_constraint": {"is_ca": True, **constraint}})
        return ext(sign(ca_csr(csr_pathlen), signing, profile="ca"), x509.BasicConstraints).path_length  # type: ignore[no-any-return]

    assert issued({"max_path_len": 0}) is None  # 0 means "none" ...
    assert issued({"max_path_len": 0, "max_path_len_zero": True}) == 0  # ... unless max_path_len_zero
    assert issued({"max_path_len": 2}) == 2
    assert issued({"max_path_len": 2, "max_path_len_zero": True}) == 2


def test_profile_pathlen_must_fit_under_the_issuer() -> None:
    # cfssl only compares the CSR's pathlen; we also refuse a profile pathlen the issuer cannot allow
    signing = profiles(ca={**CA_PROFILE, "ca_constraint": {"is_ca": True, "max_path_len": 1}})
    with pytest.raises(CfsslError) as exc:
        sign(ca_csr(None), signing, issuer=root_with_pathlen(1), profile="ca")
    assert exc.value.code == 5300


def test_ca_request_needs_a_ca_profile() -> None:
    with pytest.raises(CfsslError) as exc:
        sign(ca_csr(1))
    assert (exc.value.code, exc.value.message) == (5300, "Policy violation request")


def test_ca_profile_makes_a_ca_even_when_the_csr_did_not_ask() -> None:
    cert = sign(csr_for(key("p256"), {"CN": "Plain"}), profiles(ca=CA_PROFILE), profile="ca")
    assert ext(cert, x509.BasicConstraints) == x509.BasicConstraints(ca=True, path_length=None)
    assert critical(cert)[BC]


def test_ca_profile_under_a_pathlen_zero_issuer_is_refused_even_without_a_ca_request() -> None:
    with pytest.raises(CfsslError) as exc:
        sign(csr_for(key("p256"), {"CN": "Plain"}), profiles(ca=CA_PROFILE), issuer=root_with_pathlen(0), profile="ca")
    assert exc.value.code == 5300


def test_leaf_under_pathlen_zero_issuer_is_fine() -> None:
    cert = sign(csr_for(key("p256")), issuer=root_with_pathlen(0))
    assert not ext(cert, x509.BasicConstraints).ca


def test_ca_with_empty_subject_is_refused() -> None:
    with pytest.raises(CfsslError) as exc:
        sign(csr_for(key("p256"), {"hosts": ["10.0.0.1"]}), profiles(ca=CA_PROFILE), profile="ca")
    assert exc.value.code == 5300


# ---------------------------------------------------------------------------------------------------------
# Whitelists


def test_name_whitelist_is_an_unanchored_search() -> None:
    signing = profiles(w={"expiry": "1h", "usages": ["server auth"], "name_whitelist": r"example\.com"})
    sign(
        csr_for(key("p256"), {"CN": "www.example.com", "hosts": ["www.example.com", "a@example.com", "https://example.com/x"]}),
        signing,
        profile="w",
    )
    for obj in (
        {"CN": "www.other.org", "hosts": ["www.example.com"]},
        {"CN": "www.example.com", "hosts": ["www.other.org"]},
        {"CN": "www.example.com", "hosts": ["a@other.org"]},
        {"CN": "www.example.com", "hosts": ["spiffe://other.org/x"]},
        {"CN": "www.example.com", "hosts": ["10.9.9.9"]},  # IP SANs are checked too (cfssl lets them through)
        {"CN": "www.example.com", "names": [{"E": "a@other.org"}]},  # mirrored into the SAN, so checked too
    ):
        with pytest.raises(CfsslError) as exc:
            sign(csr_for(key("p256"), obj), signing, profile="w")
        assert (exc.value.code, exc.value.message) == (5500, "Request does not match policy whitelist")
    # the hosts override is what gets checked
    with pytest.raises(CfsslError):
        sign(csr_for(key("p256"), {"CN": "www.example.com"}), signing, profile="w", hosts=["evil.org"])


def test_csr_whitelist() -> None:
    signing = profiles(w={"expiry": "1h", "usages": ["server auth"], "CSRWhitelist": {"PublicKey": True, "DNSNames": True}})
    csr = csr_for(key("p256"), {"CN": "x", "names": [{"O": "o"}], "hosts": ["a.example.com", "10.0.0.1", "a@example.com"]})
    cert = sign(csr, signing, profile="w")
    assert cert.subject == x509.Name([])
    assert list(ext(cert, x509.SubjectAlternativeName)) == [x509.DNSName("a.example.com")]
    assert critical(cert)[SAN] is True
    # the CSR's CA request is forgotten: no 5300 although the profile is not a CA profile
    cert = sign(
        ca_csr(1),
        profiles(w={"expiry": "1h", "usages": ["server auth"], "CSRWhitelist": {"PublicKey": True, "Subject": True}}),
        profile="w",
    )
    assert not ext(cert, x509.BasicConstraints).ca


def test_csr_whitelist_without_public_key_is_1000() -> None:
    signing = profiles(w={"expiry": "1h", "usages": ["server auth"], "CSRWhitelist": {"Subject": True, "DNSNames": True}})
    with pytest.raises(CfsslError) as exc:
        sign(csr_for(key("p256")), signing, profile="w")
    assert (exc.value.code, exc.value.message) == (1000, "x509: unsupported public key type: <nil>")


# ---------------------------------------------------------------------------------------------------------
# Extensions from the CSR and the request


def test_delegation_extension_is_always_carried_over() -> None:
    cert = sign(csr_for(key("p256"), {"CN": "d.example.com", "hosts": ["d.example.com"], "delegation_enabled": True}))
    raw = {oid: (crit, value) for oid, crit, value in raw_extensions(cert)}
    assert raw[DELEGATION] == (False, b"\x05\x00")


def _csr_with_everything(k: PrivateKey) -> bytes:
    """A CSR that tries to set every CA-managed extension itself, plus one custom extension."""
    aia = x509.AuthorityInformationAccess(
        [x509.AccessDescription(x509.oid.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier("http://evil"))]
    )
    crldp = x509.CRLDistributionPoints([x509.DistributionPoint([x509.UniformResourceIdentifier("http://evil/crl")], None, None, None)])
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "copy.example.com")]))
        .add_extension(x509.KeyUsage(True, True, False, False, True, True, True, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier(b"\x01" * 20), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(b"\x02" * 20, None, None), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("csr.example.com")]), critical=False)
        .add_extension(aia, critical=False)
        .add_extension(crldp, critical=False)
        .add_extension(x509.CertificatePolicies([x509.PolicyInformation(ObjectIdentifier("2.5.29.32.0"), None)]), critical=False)
        .add_extension(x509.NameConstraints([x509.DNSName("evil.org")], None), critical=True)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .add_extension(x509.UnrecognizedExtension(ObjectIdentifier("1.2.3.4.5"), b"\x0c\x02hi"), critical=False)
    )
    return builder.sign(k, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_copy_extensions_cannot_override_ca_managed_extensions(caplog: pytest.LogCaptureFixture) -> None:
    copy = {"expiry": "1h", "usages": ["signing", "server auth"], "copy_extensions": True}
    csr = _csr_with_everything(key("p256"))
    with pytest.raises(CfsslError) as exc:
        sign(csr, profiles(copy=copy), profile="copy")
    assert exc.value.code == 5300  # the CSR's CA:TRUE still needs a CA profile, copy or not
    # a whitelist forgets the CA request; then everything but the custom extension stays the CA's
    signing = profiles(copy={**copy, "CSRWhitelist": {"PublicKey": True, "Subject": True, "DNSNames": True}})
    with caplog.at_level(logging.WARNING, logger="cfsslpy.signer"):
        cert = sign(csr, signing, profile="copy", hosts=["host.example.com"])
    assert oids(cert) == [KU, EKU, BC, SKI, AKI, SAN, "1.2.3.4.5"]
    assert ext(cert, x509.KeyUsage) == x509.KeyUsage(True, False, False, False, False, False, False, False, False)
    assert list(ext(cert, x509.ExtendedKeyUsage)) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not ext(cert, x509.BasicConstraints).ca
    assert ext(cert, x509.SubjectKeyIdentifier).digest == hashlib.sha1(spk_bits(key("p256").public_key())).digest()
    assert ext(cert, x509.AuthorityKeyIdentifier).key_identifier == ext(default_root().cert, x509.SubjectKeyIdentifier).digest
    assert list(ext(cert, x509.SubjectAlternativeName)) == [x509.DNSName("host.example.com")]
    assert {oid: value for oid, _, value in raw_extensions(cert)}["1.2.3.4.5"] == b"\x0c\x02hi"
    ignored = {r.getMessage().split("'s ")[1].split(" ")[0] for r in caplog.records if "copy_extensions" in r.getMessage()}
    assert ignored == {KU, EKU, SKI, AKI, SAN, AIA, CRLDP, POLICIES, NC, OCSP_NOCHECK}
    # without copy_extensions the custom extension does not come across
    signing = profiles(nocopy={"expiry": "1h", "usages": ["server auth"], "CSRWhitelist": {"PublicKey": True, "Subject": True}})
    assert "1.2.3.4.5" not in oids(sign(csr, signing, profile="nocopy"))


def test_request_extensions_must_be_whitelisted() -> None:
    signing = profiles(x={"expiry": "1h", "usages": ["server auth"], "allowed_extensions": ["1.2.3.4.6", "2.5.29.15"]})
    ok = SignRequest.from_json({"certificate_request": csr_for(key("p256")).decode(), "profile": "x",
                                "extensions": [{"id": "1.2.3.4.6", "critical": False, "value": "0500"}]})  # fmt: skip
    cert = LocalSigner(default_root(), policy(signing)).sign(ok, now=NOW)
    assert {oid: v for oid, _, v in raw_extensions(cert)}["1.2.3.4.6"] == b"\x05\x00"
    for extension in (
        [RequestExtension(ObjectIdentifier("1.2.3.4.7"), False, b"\x05\x00")],  # not whitelisted
        [RequestExtension(ObjectIdentifier("2.5.29.15"), True, b"\x03\x02\x00\x04")],  # whitelisted but CA-managed
        [RequestExtension(ObjectIdentifier("1.2.3.4.6"), False, b"\x05\x00")] * 2,  # twice
    ):
        with pytest.raises(CfsslError) as exc:
            sign(csr_for(key("p256")), signing, profile="x", extensions=extension)
        assert exc.value.code == 1300
    with pytest.raises(CfsslError) as exc:
        SignRequest.from_json({"extensions": [{"id": "1.2.3.4.6", "value": "zz"}]})
    assert exc.value.code == 1300


# ---------------------------------------------------------------------------------------------------------
# Name constraints (our addition)


@functools.cache
def constrained_root() -> Issuer:
    nc = {
        "permitted": {"dns": ["example.com"], "ip": ["10.0.0.0/8"], "email": ["example.com"], "uri": [".example.com"]},
        "excluded": {"dns": ["secret.example.com", "bad.example.com"]},
    }
    return root("p256", {"name_constraints": nc}, cn="Constrained Root")


def test_constrained_ca_carries_the_extension() -> None:
    cert = constrained_root().cert
    nc = ext(cert, x509.NameConstraints)
    assert critical(cert)[NC] is True
    assert nc.permitted_subtrees == [
        x509.DNSName("example.com"), x509.IPAddress(ipaddress.ip_network("10.0.0.0/8")), x509.RFC822Name("example.com"),
        x509.UniformResourceIdentifier(".example.com"),
    ]  # fmt: skip
    assert nc.excluded_subtrees == [x509.DNSName("secret.example.com"), x509.DNSName("bad.example.com")]
    assert oids(cert) == [KU, BC, SKI, NC]


@functools.cache
def dns_ip_constrained_root() -> Issuer:
    # cryptography's verifier (webpki rules) supports DNS and IP constraints only
    nc = {"permitted": {"dns": ["example.com"], "ip": ["10.0.0.0/8"]}, "excluded": {"dns": ["secret.example.com"]}}
    return root("p256", {"name_constraints": nc}, cn="DNS/IP Constrained Root")


@pytest.mark.parametrize(
    "obj",
    [
        {"CN": "www.example.com", "hosts": ["www.example.com", "example.com", "10.1.2.3", "a@example.com", "https://api.example.com/x"]},
        {"CN": "Not a host name", "hosts": ["deep.sub.example.com", "*.ok.example.com"]},
        {"CN": "www.example.com"},
        {"CN": "x.bad.example.com.evil", "hosts": ["ok.example.com"]},  # the CN is ignored when there are DNS SANs
    ],
)
def test_names_inside_the_constraints_are_signed(obj: dict[str, Any]) -> None:
    cert = sign(csr_for(key("p256"), obj), issuer=constrained_root())
    assert cert.issuer == constrained_root().cert.subject


@pytest.mark.parametrize("hosts", [["www.example.com", "10.1.2.3"], ["deep.sub.example.com", "*.ok.example.com"]])
def test_constrained_chains_verify_with_cryptography(hosts: list[str]) -> None:
    issuer = dns_ip_constrained_root()
    now = dt.datetime.now(dt.timezone.utc)
    cert = sign(csr_for(key("p256"), {"CN": "leaf", "hosts": hosts}), issuer=issuer, now=now)
    verifier = PolicyBuilder().store(Store([issuer.cert])).build_server_verifier(x509.DNSName(hosts[0]))
    assert verifier.verify(cert, []) == [cert, issuer.cert]
    with pytest.raises(CfsslError):
        sign(csr_for(key("p256"), {"CN": "leaf", "hosts": ["x.secret.example.com"]}), issuer=issuer)


@pytest.mark.parametrize(
    "obj",
    [
        {"CN": "x", "hosts": ["www.other.com"]},
        {"CN": "x", "hosts": ["secret.example.com"]},
        {"CN": "x", "hosts": ["a.secret.example.com"]},
        {"CN": "x", "hosts": ["*.bad.example.com"]},
        {"CN": "x", "hosts": ["192.168.1.1"]},
        {"CN": "x", "hosts": ["2001:db8::1"]},
        {"CN": "x", "hosts": ["a@other.com"]},
        {"CN": "x", "hosts": ["https://other.com/x"]},
        {"CN": "x", "hosts": ["https://example.com/x"]},  # ".example.com" is subdomains only
        {"CN": "x", "hosts": ["urn:uuid:1"]},
        {"CN": "evil.org"},  # a host-name CN without DNS SANs is checked
        {"CN": "x", "names": [{"E": "me@other.org"}]},
    ],
)
def test_names_outside_the_constraints_are_refused(obj: dict[str, Any]) -> None:
    with pytest.raises(CfsslError) as exc:
        sign(csr_for(key("p256"), obj), issuer=constrained_root())
    assert exc.value.code == 5300


def test_wildcard_covering_an_excluded_name_is_refused() -> None:
    with pytest.raises(CfsslError):
        sign(
            csr_for(key("p256"), {"CN": "x", "hosts": ["*.example.com"]}),
            issuer=root("p256", {"name_constraints": {"excluded": {"dns": ["bad.example.com"]}}}, cn="Ex"),
        )


def test_profile_name_constraints_on_an_intermediate_are_enforced_below_it() -> None:
    signing = profiles(ca={**CA_PROFILE, "name_constraints": {"permitted": {"dns": ["internal.example"]}, "critical": True}})
    now = dt.datetime.now(dt.timezone.utc)
    k = fresh_key("p384", "intermediate")
    inter_cert = sign(csr_for(k, {"CN": "Intermediate"}), signing, profile="ca", now=now)
    assert ext(inter_cert, x509.NameConstraints).permitted_subtrees == [x509.DNSName("internal.example")]
    inter = Issuer(k, inter_cert)
    leaf = sign(csr_for(key("p256"), {"CN": "a.internal.example", "hosts": ["a.internal.example"]}), issuer=inter, now=now)
    verifier = PolicyBuilder().store(Store([default_root().cert])).build_server_verifier(x509.DNSName("a.internal.example"))
    chain = verifier.verify(leaf, [inter_cert])
    assert chain[-1] == default_root().cert
    with pytest.raises(CfsslError):
        sign(csr_for(key("p256"), {"CN": "x", "hosts": ["a.example.com"]}), issuer=inter)


def test_csr_name_constraints_reach_the_ca_certificate() -> None:
    obj = {
        "CN": "Sub",
        "ca": {"pathlen": 0, "pathlenzero": True, "name_constraints": {"permitted": {"ip": ["192.168.0.0/16"]}, "critical": False}},
    }
    cert = sign(csr_for(key("p256"), obj), profiles(ca=CA_PROFILE), profile="ca")
    assert ext(cert, x509.NameConstraints).permitted_subtrees == [x509.IPAddress(ipaddress.ip_network("192.168.0.0/16"))]


def test_name_constraints_json_is_validated() -> None:
    for bad in (
        {"permitted": {"dns": ["*.x"]}},
        {"permitted": {"ip": ["10.0.0.1/8"]}},
        {"permitted": {"foo": ["x"]}},
        {"excluded": {"uri": ["http://x"]}},
    ):
        with pytest.raises((CfsslError, ValueError)):
            NameConstraints.from_json(bad)


# ---------------------------------------------------------------------------------------------------------
# The issuer, the CSR input and the profile


def test_issuer_key_must_match_the_certificate() -> None:
    with pytest.raises(CfsslError) as exc:
        Issuer(key("p384"), default_root().cert)
    assert (exc.value.code, exc.value.message) == (2300, "Private key does not match public key")


def test_issuer_must_be_a_ca() -> None:
    leaf = sign(csr_for(key("p384")))
    with pytest.raises(CfsslError) as exc:
        Issuer(key("p384"), leaf)
    assert exc.value.code == 5300


def test_issuer_key_usage_must_allow_cert_signing() -> None:
    k = key("p384")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "No certsign")])
    ca = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(k.public_key()).serial_number(9)
        .not_valid_before(NOW - HOUR).not_valid_after(NOW + HOUR)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, False, True, False, False), critical=True)
        .sign(k, hashes.SHA384())
    )  # fmt: skip
    with pytest.raises(CfsslError) as exc:
        Issuer(k, ca)
    assert exc.value.code == 5300


def test_load_issuer_from_files(tmp_path: Any) -> None:
    issuer = default_root()
    (tmp_path / "ca.pem").write_bytes(issuer.cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "ca-key.pem").write_bytes(encode_private_key(issuer.key))
    (tmp_path / "other-key.pem").write_bytes(encode_private_key(key("p384")))
    loaded = load_issuer(str(tmp_path / "ca.pem"), str(tmp_path / "ca-key.pem"))
    assert loaded.cert == issuer.cert
    with pytest.raises(CfsslError) as exc:
        load_issuer(str(tmp_path / "ca.pem"), str(tmp_path / "other-key.pem"))
    assert exc.value.code == 2300
    with pytest.raises(CfsslError) as exc:
        load_issuer(str(tmp_path / "ca.pem"), str(tmp_path / "missing-key.pem"))
    assert exc.value.code == 1001


def test_csr_input_errors() -> None:
    signer = LocalSigner(default_root(), policy())
    cases = [
        (b"garbage", 9002),
        (default_root().cert.public_bytes(serialization.Encoding.PEM), 9300),
        (b"-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n", 9003),
    ]
    for data, code in cases:
        with pytest.raises(CfsslError) as exc:
            signer.sign(SignRequest(request=data))
        assert exc.value.code == code
    # a tampered signature: flip a byte of the signature at the end of the DER
    der = bytearray(x509.load_pem_x509_csr(csr_for(key("p256"))).public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(CfsslError) as exc:
        signer.sign(SignRequest(request=tampered))
    assert exc.value.code == 9300
    # NEW CERTIFICATE REQUEST is accepted too
    pem = csr_for(key("p256")).replace(b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST")
    assert signer.sign(SignRequest(request=pem)).subject.rfc4514_string() == "CN=leaf.example.com"


def test_unknown_profile_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    # cfssl signs under the default profile; a typo must not issue a certificate with other usages
    with caplog.at_level(logging.WARNING), pytest.raises(CfsslError) as exc:
        sign(csr_for(key("rsa2048")), profiles(other={"expiry": "1h", "usages": ["client auth"]}), profile="nope")
    assert (exc.value.code, exc.value.message) == (5400, "Unknown policy profile")
    assert any("unknown profile 'nope'" in r.getMessage() for r in caplog.records)


def test_remote_profile_cannot_sign_locally() -> None:
    signing = policy({"default": {"expiry": "1h", "usages": ["server auth"]}, "profiles": {}})
    signing.profiles["r"] = SigningProfile(usages=["server auth"], expiry=3600 * 10**9, remote="ca1")
    with pytest.raises(CfsslError) as exc:
        sign(csr_for(key("p256")), signing, profile="r")
    assert exc.value.code == 5200


def test_recorder_sees_every_issued_certificate() -> None:
    seen: list[tuple[x509.Certificate, SignRequest]] = []
    signer = LocalSigner(default_root(), policy(), recorder=lambda c, r: seen.append((c, r)))
    req = SignRequest(request=csr_for(key("p256")), label="L")
    cert = signer.sign(req, now=NOW)
    assert seen == [(cert, req)]


def test_sign_request_from_json() -> None:
    req = SignRequest.from_json({"Hostname": "a.example.com,b.example.com", "certificate_request": "PEM", "profile": "p", "label": "l",
                                 "serial": 123, "crl_override": "http://c", "subject": {"CN": "s"}})  # fmt: skip
    assert (req.hosts, req.request, req.profile, req.label, req.serial, req.crl_override) == (
        ["a.example.com", "b.example.com"],
        b"PEM",
        "p",
        "l",
        123,
        "http://c",
    )
    assert req.subject is not None and req.subject.CN == "s"
    # a non-empty hostname wins over hosts (cfssl); an empty one leaves hosts in charge; [] is kept (it
    # removes the SANs); absent is None
    assert SignRequest.from_json({"hosts": [], "hostname": "x"}).hosts == ["x"]
    assert SignRequest.from_json({"hosts": [], "hostname": ""}).hosts == []
    assert SignRequest.from_json({}).hosts is None
    for bad in ({"hosts": "x"}, {"hostname": 5}, {"serial": "x"}, {"serial": True}, {"profile": 1}, {"subject": []}):
        with pytest.raises(ValueError):
            SignRequest.from_json(bad)


# ---------------------------------------------------------------------------------------------------------
# gencert's core: issue()


def test_issue_generates_a_key_and_signs_with_the_override() -> None:
    signer = LocalSigner(default_root(), policy())
    req = CertificateRequest.from_json({"CN": "gen.example.com", "hosts": ["gen.example.com"], "key": {"algo": "ed25519"}})
    cert, csr, k = issue(signer, req, SignRequest(request=b"", hosts=["other.example.com"]))
    assert isinstance(k, ed25519.Ed25519PrivateKey)
    assert cert.public_key() == k.public_key()
    assert csr.public_key() == k.public_key()
    assert list(ext(cert, x509.SubjectAlternativeName)) == [x509.DNSName("other.example.com")]


def test_issue_refuses_a_ca_section_and_bad_keys_before_generating() -> None:
    signer = LocalSigner(default_root(), policy())
    req = CertificateRequest.from_json({"CN": "x", "ca": {"pathlen": 1}})
    with pytest.raises(CfsslError) as exc:
        issue(signer, req, SignRequest(request=b""))
    assert exc.value.code == 5300
    req = CertificateRequest.from_json({"CN": "x", "key": {"algo": "rsa", "size": 1024}})
    with pytest.raises(CfsslError) as exc:
        issue(signer, req, SignRequest(request=b""))
    assert (exc.value.code, exc.value.message) == (2400, "RSA key is too weak")


def test_ca_config_pathlen_helper() -> None:
    assert CAConfig(pathlen=0).max_path_len() is None
    assert CAConfig(pathlen=0, pathlenzero=True).max_path_len() == 0
    assert CAConfig(pathlen=3, pathlenzero=True).max_path_len() == 3
