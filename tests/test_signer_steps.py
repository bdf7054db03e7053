"""The named steps of ``LocalSigner.sign_csr`` (reference §3.8), each on its own.

tests/test_signer.py checks the issued certificates end to end; these pin each step's contract so a step can
change without re-deriving it from a whole certificate.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import re
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, ExtensionOID, NameOID, ObjectIdentifier
from dsa_vectors import DSA_CSR

from cfsslpy.capair import require_valid
from cfsslpy.config import Config, CSRWhitelist, SigningProfile
from cfsslpy.csr import SANs, Subject
from cfsslpy.errors import CfsslError
from cfsslpy.pem import parse_csr_pem
from cfsslpy.signer import (
    CA_MANAGED,
    Issuer,
    RequestExtension,
    SignRequest,
    SubjectOverride,
    Template,
    add_extensions,
    apply_csr_whitelist,
    apply_request_overrides,
    authority_info_access,
    certificate_subject,
    check_ca_request,
    check_name_whitelist,
    check_request_key,
    choose_serial,
    crl_distribution_points,
    final_sans,
    key_identifier_extensions,
    name_constraints_extension,
    request_extensions,
    subject_alt_name,
    template_from_csr,
    trailing_extensions,
    usage_extensions,
)

NOW = dt.datetime(2024, 5, 17, 18, 3, 41, tzinfo=dt.timezone.utc)
KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())
DELEGATION = ObjectIdentifier("1.3.6.1.4.1.44363.44")
CUSTOM = ObjectIdentifier("1.2.3.4.5")


def code(exc: pytest.ExceptionInfo[CfsslError]) -> int:
    return exc.value.code


def profile(obj: dict[str, Any] | None = None, *, default: dict[str, Any] | None = None) -> SigningProfile:
    """The profile ``p`` (or the default when ``obj`` is None) of a signing section."""
    signing: dict[str, Any] = {"default": default or {"expiry": "8760h", "usages": ["signing"]}}
    if obj is not None:
        signing["profiles"] = {"p": {"expiry": "8760h", "usages": ["signing"], **obj}}
    return Config.from_json({"signing": signing}).signing.profile("p" if obj is not None else "")


def name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def ca_cert(*, path_length: int | None = None, cn: str = "Steps CA", days: int = 3650) -> x509.Certificate:
    start = NOW - dt.timedelta(days=1)
    return (
        x509.CertificateBuilder()
        .subject_name(name(cn))
        .issuer_name(name(cn))
        .public_key(KEY.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(KEY.public_key()), critical=False)
        .sign(KEY, hashes.SHA256())
    )


def issuer(**kwargs: Any) -> Issuer:
    return Issuer(KEY, ca_cert(**kwargs))


def csr(*extensions: tuple[x509.ExtensionType, bool], cn: str = "leaf.example.com") -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(name(cn))
    for value, critical in extensions:
        builder = builder.add_extension(value, critical=critical)
    return builder.sign(OTHER_KEY, hashes.SHA256())


def subject(cn: str = "", *emails: str) -> Subject:
    out = Subject()
    out.add(NameOID.COMMON_NAME, cn)
    for email in emails:
        out.add(NameOID.EMAIL_ADDRESS, email)
    return out


# 1. ------------------------------------------------------------------------------------------------------


def test_1_the_request_key_is_returned_when_the_ca_is_valid() -> None:
    request = csr()
    assert check_request_key(issuer(), request, NOW) == request.public_key()
    assert check_request_key(Issuer(KEY), request, NOW) == request.public_key()  # self-signing: no CA to check


def test_1_an_expired_ca_and_a_dsa_key_are_refused() -> None:
    with pytest.raises(CfsslError) as exc:
        check_request_key(issuer(days=2), csr(), NOW + dt.timedelta(days=30))
    assert code(exc) == 1211
    with pytest.raises(CfsslError) as exc:
        check_request_key(issuer(), parse_csr_pem(DSA_CSR), NOW)
    assert code(exc) == 9300


def test_1_the_quick_validity_test_agrees_with_require_valid_at_and_around_both_bounds() -> None:
    ca = issuer(days=2)
    assert ca.cert is not None
    bounds = (ca.cert.not_valid_before_utc, ca.cert.not_valid_after_utc)
    for bound in bounds:
        for delta in (-1, 0, 1):
            for at in (bound + dt.timedelta(microseconds=delta), (bound + dt.timedelta(seconds=delta)).replace(tzinfo=None)):
                try:
                    require_valid(ca.cert, "CA", at)
                    valid = True
                except CfsslError:
                    valid = False
                assert ca.valid_at(at) is valid, at
    assert ca.valid_at(NOW) and not ca.valid_at(NOW + dt.timedelta(days=30)) and not ca.valid_at()  # 2 days from 2024
    assert issuer().valid_at()  # ten years from 2024: the current time
    assert Issuer(KEY).valid_at(dt.datetime(1, 1, 1)) is True  # self-signing: no CA certificate to be valid


# 2. ------------------------------------------------------------------------------------------------------


def test_2_the_template_takes_subject_sans_and_the_csr_ca_request() -> None:
    request = csr(
        (x509.SubjectAlternativeName([x509.DNSName("a.example.com"), x509.IPAddress(ipaddress.ip_address("10.0.0.1"))]), False),
        (x509.BasicConstraints(ca=True, path_length=2), True),
    )
    template = template_from_csr(request, profile())
    assert template.subject.common_name == "leaf.example.com"
    assert template.sans == SANs(dns=["a.example.com"], ip=[ipaddress.ip_address("10.0.0.1")])
    assert (template.is_ca, template.path_length, template.carried, template.name_constraints) == (True, 2, [], None)
    assert template_from_csr(csr(), profile()).path_length == -1


def test_2_delegation_is_always_carried_others_only_with_copy_extensions(caplog: pytest.LogCaptureFixture) -> None:
    request = csr(
        (x509.UnrecognizedExtension(DELEGATION, b"\x05\x00"), False),
        (x509.UnrecognizedExtension(CUSTOM, b"\x05\x00"), False),
        (x509.KeyUsage(True, False, False, False, False, False, False, False, False), True),
    )
    assert [e.oid for e in template_from_csr(request, profile()).carried] == [DELEGATION]
    with caplog.at_level(logging.WARNING, logger="cfsslpy.signer"):
        carried = template_from_csr(request, profile({"copy_extensions": True})).carried
    assert [e.oid for e in carried] == [DELEGATION, CUSTOM]
    assert ExtensionOID.KEY_USAGE in CA_MANAGED
    assert "copy_extensions: the CSR's 2.5.29.15 extension is ignored" in caplog.text


# 3. ------------------------------------------------------------------------------------------------------


def whitelist(**fields: bool) -> CSRWhitelist:
    return CSRWhitelist(**{name: fields.get(name, False) for name in CSRWhitelist.FIELDS})


def test_3_the_csr_whitelist_keeps_only_the_listed_fields_and_drops_the_ca_request() -> None:
    template = Template(subject=subject("x"), sans=SANs(dns=["d"], email=["e@x"], ip=[ipaddress.ip_address("::1")], uri=["u:"]), is_ca=True)
    apply_csr_whitelist(template, whitelist(PublicKey=True, DNSNames=True, URIs=True))
    assert template.subject == Subject()
    assert template.sans == SANs(dns=["d"], uri=["u:"])
    assert not template.is_ca


def test_3_a_whitelist_without_the_public_key_is_cfssls_nil_key_error() -> None:
    with pytest.raises(CfsslError) as exc:
        apply_csr_whitelist(Template(subject=subject("x"), sans=SANs()), whitelist(Subject=True))
    assert code(exc) == 1000 and "unsupported public key type: <nil>" in exc.value.message


# 5. ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("csr_ca", "csr_pathlen", "prof", "issuer_pathlen", "expected"),
    [
        (False, -1, {}, None, None),
        (True, -1, {"ca_constraint": {"is_ca": True, "max_path_len": 2}}, None, 2),
        (True, 0, {"ca_constraint": {"is_ca": True, "max_path_len": 0, "max_path_len_zero": True}}, 1, 0),
        (True, -1, {}, None, 5300),  # a CA request needs a CA profile
        (True, 1, {"ca_constraint": {"is_ca": True}}, 1, 5300),  # the CSR's pathlen must be smaller
        (False, -1, {"ca_constraint": {"is_ca": True}}, 0, 5300),  # no CA under a pathlen-0 CA
        (False, -1, {"ca_constraint": {"is_ca": True, "max_path_len": 3}}, 2, 5300),  # the profile's must fit
    ],
)
def test_5_ca_requests(csr_ca: bool, csr_pathlen: int, prof: dict[str, Any], issuer_pathlen: int | None, expected: int | None) -> None:
    template = Template(subject=subject("x"), sans=SANs(), is_ca=csr_ca, path_length=csr_pathlen)
    if expected is not None and expected >= 1000:
        with pytest.raises(CfsslError) as exc:
            check_ca_request(template, profile(prof), issuer(path_length=issuer_pathlen))
        assert code(exc) == expected
    else:
        assert check_ca_request(template, profile(prof), issuer(path_length=issuer_pathlen)) == expected


# 6, 7. ---------------------------------------------------------------------------------------------------


def test_6_hosts_replace_every_san_even_when_empty_and_7_the_subject_merges() -> None:
    template = Template(subject=subject("csr.example.com", "a@x"), sans=SANs(dns=["csr.example.com"]))
    apply_request_overrides(template, SignRequest(request=b"", hosts=["10.0.0.2", "h.example.com", "m@x"]))
    assert template.sans == SANs(dns=["h.example.com"], email=["m@x"], ip=[ipaddress.ip_address("10.0.0.2")])
    apply_request_overrides(template, SignRequest(request=b"", hosts=[], subject=SubjectOverride(CN="override")))
    assert template.sans == SANs()
    assert template.subject.common_name == "override"
    untouched = Template(subject=subject("same"), sans=SANs(dns=["same"]))
    apply_request_overrides(untouched, SignRequest(request=b""))
    assert (untouched.subject.common_name, untouched.sans) == ("same", SANs(dns=["same"]))


# 8. ------------------------------------------------------------------------------------------------------


def test_8_the_name_whitelist_covers_cn_sans_ips_and_subject_emails() -> None:
    pattern = re.compile(r"example\.com$")
    check_name_whitelist(pattern, subject("www.example.com"), SANs(dns=["a.example.com"], email=["x@example.com"]))
    for sub, sans in [
        (subject("www.example.org"), SANs()),
        (subject("www.example.com"), SANs(ip=[ipaddress.ip_address("10.0.0.1")])),
        (subject("www.example.com", "x@evil.org"), SANs()),
        (subject("www.example.com"), SANs(uri=["spiffe://evil"])),
    ]:
        with pytest.raises(CfsslError) as exc:
            check_name_whitelist(pattern, sub, sans)
        assert code(exc) == 5500


# 9. ------------------------------------------------------------------------------------------------------


def test_9_serials_random_or_the_clients_within_bounds() -> None:
    fresh = choose_serial(profile(), SignRequest(request=b"", serial=7))
    assert fresh != 7 and 0 < fresh < 1 << 159  # the client's is ignored (a random 7 has odds of 2**-159)
    client = profile({"ClientProvidesSerialNumbers": True})
    assert choose_serial(client, SignRequest(request=b"", serial=7)) == 7
    assert choose_serial(client, SignRequest(request=b"", serial=(1 << 159) - 1)) == (1 << 159) - 1
    for serial, expected in [(None, 1400), (0, 1300), (1 << 159, 1300)]:
        with pytest.raises(CfsslError) as exc:
            choose_serial(client, SignRequest(request=b"", serial=serial))
        assert code(exc) == expected


# 10. -----------------------------------------------------------------------------------------------------


def test_10_request_extensions_must_be_whitelisted_new_and_not_ca_managed() -> None:
    allowing = profile({"allowed_extensions": [CUSTOM.dotted_string, DELEGATION.dotted_string, "2.5.29.15"]})
    ext = RequestExtension(CUSTOM, True, b"\x05\x00")
    [made] = request_extensions(SignRequest(request=b"", extensions=[ext]), allowing, [])
    assert (made.oid, made.critical, made.value) == (CUSTOM, True, x509.UnrecognizedExtension(CUSTOM, b"\x05\x00"))
    carried: list[x509.Extension[x509.ExtensionType]] = [x509.Extension(DELEGATION, False, x509.UnrecognizedExtension(DELEGATION, b""))]
    for extensions, prof, message in [
        ([ext], profile(), "Invalid certificate request"),
        ([ext, ext], allowing, "appears twice"),
        ([RequestExtension(DELEGATION, False, b"")], allowing, "appears twice"),
        ([RequestExtension(ExtensionOID.KEY_USAGE, True, b"")], allowing, "is set by the CA profile"),
    ]:
        with pytest.raises(CfsslError) as exc:
            request_extensions(SignRequest(request=b"", extensions=extensions), prof, carried)
        assert code(exc) == 1300 and message in exc.value.message


# 11. -----------------------------------------------------------------------------------------------------


def test_11_a_ca_keeps_only_ip_sans_and_subject_emails_are_mirrored_once() -> None:
    ip = ipaddress.ip_address("10.0.0.1")
    assert final_sans(subject("ca"), SANs(dns=["d"], email=["e@x"], ip=[ip], uri=["u:"]), is_ca=True) == SANs(ip=[ip])
    assert final_sans(subject("ca", "A@x"), SANs(dns=["d"]), is_ca=True) == SANs(email=["A@x"], ip=[])
    assert final_sans(subject("leaf", "A@x", "b@x"), SANs(email=["a@X"]), is_ca=False) == SANs(email=["a@X", "b@x"])


def test_11_the_subject_and_a_cas_empty_subject() -> None:
    assert certificate_subject(subject("leaf"), None, is_ca=False) == name("leaf")
    assert certificate_subject(subject("leaf"), name("exact"), is_ca=True) == name("exact")
    assert certificate_subject(Subject(), None, is_ca=False) == x509.Name([])
    with pytest.raises(CfsslError) as exc:
        certificate_subject(Subject(), None, is_ca=True)
    assert code(exc) == 5300


def test_11_usage_extensions_basic_constraints_always_critical() -> None:
    ku = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
    assert usage_extensions(ku, [ExtendedKeyUsageOID.SERVER_AUTH], is_ca=False, path_length=3) == [
        (ku, True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        (x509.BasicConstraints(ca=False, path_length=None), True),
    ]
    assert usage_extensions(None, [], is_ca=True, path_length=1) == [(x509.BasicConstraints(ca=True, path_length=1), True)]


def test_11_key_identifiers_no_aki_only_on_a_self_signed_ca() -> None:
    ski = x509.SubjectKeyIdentifier.from_public_key(OTHER_KEY.public_key())
    ca = issuer()
    own = x509.SubjectKeyIdentifier.from_public_key(KEY.public_key())
    assert key_identifier_extensions(ca, name("leaf"), OTHER_KEY.public_key(), is_ca=False) == [
        (ski, False),
        (x509.AuthorityKeyIdentifier(own.digest, None, None), False),
    ]
    assert key_identifier_extensions(ca, name("Steps CA"), KEY.public_key(), is_ca=True) == [(own, False)]  # CA renewal
    assert key_identifier_extensions(Issuer(OTHER_KEY), name("self"), OTHER_KEY.public_key(), is_ca=True) == [(ski, False)]
    assert key_identifier_extensions(Issuer(OTHER_KEY), name("self"), OTHER_KEY.public_key(), is_ca=False) == [
        (ski, False),
        (x509.AuthorityKeyIdentifier(ski.digest, None, None), False),
    ]


def test_11_aia_ocsp_first_with_default_profile_fallbacks() -> None:
    default = profile(default={"expiry": "1h", "usages": ["signing"], "ocsp_url": "http://d/ocsp", "issuer_urls": ["http://d/ca"]})
    assert authority_info_access(profile(), profile()) == []
    [(aia, critical)] = authority_info_access(profile({"issuer_urls": ["http://p/ca"]}), default)
    assert not critical
    assert isinstance(aia, x509.AuthorityInformationAccess)
    assert [(d.access_method, d.access_location.value) for d in aia] == [
        (AuthorityInformationAccessOID.OCSP, "http://d/ocsp"),
        (AuthorityInformationAccessOID.CA_ISSUERS, "http://p/ca"),
    ]


def test_11_san_critical_only_without_subject_and_never_both_empty() -> None:
    sans = SANs(dns=["a.example.com"])
    assert subject_alt_name(sans, name("a")) == [(x509.SubjectAlternativeName(sans.general_names()), False)]
    assert subject_alt_name(sans, x509.Name([])) == [(x509.SubjectAlternativeName(sans.general_names()), True)]
    assert subject_alt_name(SANs(), name("a")) == []
    with pytest.raises(CfsslError) as exc:
        subject_alt_name(SANs(), x509.Name([]))
    assert code(exc) == 1300


def test_11_name_constraints_only_for_a_ca_profile_first() -> None:
    from_csr = x509.NameConstraints(permitted_subtrees=[x509.DNSName("csr.example")], excluded_subtrees=None)
    configured = profile({"ca_constraint": {"is_ca": True}, "name_constraints": {"permitted": {"dns": ["p.example"]}, "critical": False}})
    empty = profile({"ca_constraint": {"is_ca": True}, "name_constraints": {}})  # configured, but constrains nothing
    assert name_constraints_extension(configured, from_csr, is_ca=False) == []
    assert name_constraints_extension(profile(), from_csr, is_ca=True) == [(from_csr, True)]
    assert name_constraints_extension(empty, from_csr, is_ca=True) == [(from_csr, True)]
    assert name_constraints_extension(profile(), None, is_ca=True) == []
    [(nc, critical)] = name_constraints_extension(configured, from_csr, is_ca=True)
    assert not critical
    assert isinstance(nc, x509.NameConstraints)
    assert nc.permitted_subtrees == [x509.DNSName("p.example")]


def test_4_and_11_crl_override_wins_over_the_profile_and_the_default() -> None:
    default = profile(default={"expiry": "1h", "usages": ["signing"], "crl_url": "http://d/crl"})
    with_url = profile({"crl_url": "http://p/crl"})

    def url(req: SignRequest, prof: SigningProfile) -> list[str]:
        urls: list[str] = []
        for ext, critical in crl_distribution_points(req, prof, default):
            assert isinstance(ext, x509.CRLDistributionPoints) and not critical
            urls += [str(point.full_name[0].value) for point in ext if point.full_name]
        return urls

    assert url(SignRequest(request=b"", crl_override="http://o/crl"), with_url) == ["http://o/crl"]
    assert url(SignRequest(request=b""), with_url) == ["http://p/crl"]
    assert url(SignRequest(request=b""), profile()) == ["http://d/crl"]
    assert crl_distribution_points(SignRequest(request=b""), profile(), profile()) == []


def test_11_trailing_extensions_policies_then_ocsp_no_check() -> None:
    assert trailing_extensions(profile()) == []
    prof = profile({"ocsp_no_check": True, "policies": [{"ID": "1.2.3"}]})
    assert [type(value) for value, _ in trailing_extensions(prof)] == [x509.CertificatePolicies, x509.OCSPNoCheck]


def test_11_extra_extensions_come_between_and_override_built_ins() -> None:
    builder = x509.CertificateBuilder()
    ku = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
    extra = [
        x509.Extension(ExtensionOID.KEY_USAGE, True, ku),
        x509.Extension(CUSTOM, False, x509.UnrecognizedExtension(CUSTOM, b"\x05\x00")),
    ]
    built_in: list[tuple[x509.ExtensionType, bool]] = [(ku, True), (x509.BasicConstraints(ca=False, path_length=None), True)]
    out = add_extensions(builder, built_in, extra, [(x509.OCSPNoCheck(), False)])
    out = out.subject_name(name("x")).issuer_name(name("x")).public_key(KEY.public_key()).serial_number(1)
    cert = out.not_valid_before(NOW).not_valid_after(NOW + dt.timedelta(days=1)).sign(KEY, hashes.SHA256())
    assert [e.oid for e in cert.extensions] == [
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        CUSTOM,
        ExtensionOID.OCSP_NO_CHECK,
    ]
