"""The signing configuration (reference §3.1-§3.5): decoding, defaults, validation and cfssl's error messages.

Every message below was compared with the real cfssl loading the same document (``-config``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from cfsslpy.config import (
    CA_EXPIRY,
    DEFAULT_EXPIRY,
    SELFSIGN_EXPIRY,
    CAConstraint,
    Config,
    SigningProfile,
    certificate_policies,
)
from cfsslpy.errors import CfsslError, PlainError
from cfsslpy.golang.json import HOUR, MINUTE


def load(doc: Any) -> Config:
    return Config.from_json_bytes(json.dumps(doc).encode())


def load_error(doc: Any) -> str:
    """The 5200 message for ``doc`` (raw bytes are loaded as they are, anything else as JSON)."""
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    with pytest.raises(CfsslError) as info:
        Config.from_json_bytes(data)
    assert info.value.code == 5200
    return info.value.message


LOCAL = {"expiry": "1h", "usages": ["signing"]}

# -- the happy path --------------------------------------------------------------------------------------------


def test_the_print_defaults_config() -> None:
    cfg = load(
        {
            "signing": {
                "default": {"expiry": "168h"},
                "profiles": {
                    "www": {"expiry": "8760h", "usages": ["signing", "key encipherment", "server auth"]},
                    "client": {"expiry": "8760h", "usages": ["signing", "key encipherment", "client auth"]},
                },
            }
        }
    )
    assert cfg.signing.default.expiry == 168 * HOUR and cfg.signing.default.usages == []
    www = cfg.signing.profiles["www"]
    assert (www.expiry, www.expiry_string) == (8760 * HOUR, "8760h")
    flags, ekus, unknown = www.key_usages()
    assert flags == {"digital_signature": True, "key_encipherment": True}
    assert ekus == [ExtendedKeyUsageOID.SERVER_AUTH] and unknown == []


def test_missing_default_is_cfssls_default_config() -> None:
    default = load({"signing": {"profiles": {"p": LOCAL}}}).signing.default
    assert default.usages == ["signing", "key encipherment", "server auth", "client auth"]
    assert default.expiry == DEFAULT_EXPIRY == 8760 * HOUR


def test_null_default_is_the_same_as_none() -> None:
    assert load({"signing": {"default": None}}).signing.default.expiry == DEFAULT_EXPIRY


def test_builtin_durations() -> None:
    assert (DEFAULT_EXPIRY, CA_EXPIRY, SELFSIGN_EXPIRY) == (8760 * HOUR, 43800 * HOUR, 2190 * HOUR)
    assert SigningProfile.builtin_default(SELFSIGN_EXPIRY).expiry_string == "2190h"


def test_keys_are_matched_case_insensitively() -> None:
    cfg = load(
        {
            "SIGNING": {
                "Default": {"EXPIRY": "2h", "Usages": ["signing"], "BACKDATE": "1m"},
                "PROFILES": {"p": {"expiry": "3h", "usages": ["any"]}},
            }
        }
    )
    assert cfg.signing.default.expiry == 2 * HOUR
    assert cfg.signing.default.backdate == MINUTE  # folded keys go to the first declared field, the string one
    assert cfg.signing.default.usages == ["signing"]
    assert cfg.signing.profiles["p"].expiry == 3 * HOUR


def test_exact_go_field_names_are_the_duration_fields() -> None:
    # "Backdate" is exactly the Go field name of the time.Duration, so a string there is a type error (as in cfssl)
    assert load_error({"signing": {"default": {**LOCAL, "Backdate": "1m"}}}).endswith(
        "cannot unmarshal string into Go struct field SigningProfile.signing.default.Backdate of type time.Duration"
    )


def test_go_duration_fields_take_integer_nanoseconds_then_expiry_wins() -> None:
    p = load({"signing": {"default": {"Expiry": 5, "expiry": "1h", "Backdate": 7, "usages": ["signing"]}}}).signing.default
    assert p.expiry == HOUR  # "expiry" is parsed after decoding and overwrites Expiry
    assert p.backdate == 7  # no "backdate" string: the integer stays


def test_unknown_keys_are_ignored() -> None:
    assert load({"signing": {"default": LOCAL}, "auth_key": {"x": 1}, "whatever": []}).signing.default.expiry == HOUR


def test_profile_fields() -> None:
    profile = load(
        {
            "signing": {
                "default": {"expiry": "1h", "usages": ["signing"], "ocsp_url": "http://ocsp.example", "crl_url": "http://crl.example"},
                "profiles": {
                    "ca": {
                        "expiry": "43800h",
                        "backdate": "10m",
                        "usages": ["cert sign", "crl sign"],
                        "ca_constraint": {"is_ca": True, "max_path_len": 0, "max_path_len_zero": True},
                        "issuer_urls": ["http://ca.example/ca.crt"],
                        "ocsp_no_check": True,
                        "name_whitelist": "\\.example\\.com$",
                        "not_before": "2030-01-01T00:00:00Z",
                        "not_after": "2031-01-01T00:00:00+01:00",
                        "Policies": [{"ID": "2.23.140.1.2.1", "Qualifiers": [{"Type": "id-qt-cps", "Value": "http://cps.example"}]}],
                        "CSRWhitelist": {"PublicKey": True, "Subject": True},
                        "ClientProvidesSerialNumbers": True,
                        "copy_extensions": True,
                        "allowed_extensions": ["1.2.3.4"],
                    }
                },
            }
        }
    ).signing.profiles["ca"]
    assert profile.backdate == 10 * MINUTE
    assert profile.ca_constraint == CAConstraint(True, 0, True) and profile.ca_constraint.path_length() == 0
    assert profile.issuer_urls == ["http://ca.example/ca.crt"] and profile.ocsp_no_check
    assert profile.name_whitelist is not None and profile.name_whitelist.search("a.example.com")
    assert profile.not_before == dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    assert profile.not_after == dt.datetime(2030, 12, 31, 23, tzinfo=dt.timezone.utc)
    assert profile.policies[0].id == ObjectIdentifier("2.23.140.1.2.1")
    assert profile.csr_whitelist is not None and profile.csr_whitelist.PublicKey and not profile.csr_whitelist.DNSNames
    assert profile.client_provides_serial_numbers and profile.copy_extensions
    assert profile.allowed_extensions == [ObjectIdentifier("1.2.3.4")]
    assert profile.ocsp_url == "" and profile.crl_url == ""  # the fallback to the default is the signer's job


def test_issuer_urls_absent_is_none_not_empty() -> None:
    cfg = load({"signing": {"default": LOCAL, "profiles": {"a": LOCAL, "b": {**LOCAL, "issuer_urls": []}}}})
    assert cfg.signing.profiles["a"].issuer_urls is None
    assert cfg.signing.profiles["b"].issuer_urls == []


@pytest.mark.parametrize(
    ("max_path_len", "zero", "expected"), [(0, False, None), (0, True, 0), (2, False, 2), (2, True, 2), (-1, False, None)]
)
def test_ca_constraint_path_length(max_path_len: int, zero: bool, expected: int | None) -> None:
    assert CAConstraint(True, max_path_len, zero).path_length() == expected


def test_ca_policy_ignores_pathlenzero_when_pathlen_is_set(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="cfsslpy"):
        policy = SigningProfile.ca_policy(pathlen=2, pathlenzero=True)
    assert policy.ca_constraint == CAConstraint(True, 2, False)
    assert "ignore pathlenzero" in caplog.text
    assert policy.usages == ["cert sign", "crl sign"] and policy.expiry == CA_EXPIRY


def test_usage_strings() -> None:
    profile = SigningProfile(
        usages=["digital signature", "content committment", "encipher only", "s/mime", "ipsec user", "netscape sgc", "bogus", "Signing"]
    )
    flags, ekus, unknown = profile.key_usages()
    assert flags == {"digital_signature": True, "content_commitment": True, "encipher_only": True}
    assert ekus == [ExtendedKeyUsageOID.EMAIL_PROTECTION, ObjectIdentifier("1.3.6.1.5.5.7.3.7"), ObjectIdentifier("2.16.840.1.113730.4.1")]
    assert unknown == ["bogus", "Signing"]  # matching is case-sensitive


def test_unknown_usages_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="cfsslpy"):
        load({"signing": {"default": LOCAL, "profiles": {"p": {"expiry": "1h", "usages": ["signing", "bogus"]}}}})
    assert "unknown usage 'bogus'" in caplog.text


def test_unknown_profile_is_5400_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    cfg = load({"signing": {"default": LOCAL, "profiles": {"p": {"expiry": "2h", "usages": ["any"]}}}})
    assert cfg.signing.profile("p").expiry == 2 * HOUR
    assert cfg.signing.profile("") is cfg.signing.default
    with caplog.at_level(logging.WARNING, logger="cfsslpy"), pytest.raises(CfsslError) as exc:
        cfg.signing.profile("nope")
    assert (exc.value.code, exc.value.message) == (5400, "Unknown policy profile")
    assert "unknown profile 'nope'" in caplog.text
    # forwarding to a remote: the remote resolves names the local configuration does not know
    assert cfg.signing.forwarding_profile("nope") is cfg.signing.default
    assert cfg.signing.forwarding_profile("p") is cfg.signing.profiles["p"]


def test_an_unknown_profile_name_is_logged_bounded_and_quoted(caplog: pytest.LogCaptureFixture) -> None:
    cfg = load({"signing": {"default": LOCAL}})
    name = "p" * 200_000 + "\n2030/01/01 00:00:00 [ERROR] forged"
    with caplog.at_level(logging.WARNING, logger="cfsslpy"), pytest.raises(CfsslError):
        cfg.signing.profile(name)
    (record,) = caplog.records
    message = record.getMessage()
    assert message.startswith("unknown profile 'ppp") and message.endswith(" chars)")
    assert len(message) < 300 and "\n" not in message and "forged" not in message


def test_remotes_and_auth_keys() -> None:
    cfg = load(
        {
            "signing": {
                "default": {"auth_remote": {"remote": "ca", "auth_key": "k"}},
                "profiles": {"local": {**LOCAL, "auth_key": "k", "prev_auth_key": "old"}, "fwd": {"remote": "ca"}},
            },
            "remotes": {"ca": "https://ca.example:8888"},
            "auth_keys": {"k": {"type": "standard", "key": "0123456789ABCDEF"}, "old": {"key": "00ff", "type": "standard"}},
        }
    )
    assert cfg.signing.default.remote_server == "https://ca.example:8888"
    assert cfg.signing.default.auth_remote_key_bytes == bytes.fromhex("0123456789abcdef")
    assert cfg.signing.profiles["local"].auth_key_bytes == bytes.fromhex("0123456789abcdef")
    assert cfg.signing.profiles["local"].prev_auth_key_bytes == b"\x00\xff"
    assert cfg.signing.profiles["fwd"].is_remote and cfg.signing.has_remote() and cfg.signing.has_local()


def test_certificate_policies_extension() -> None:
    profile = load(
        {
            "signing": {
                "default": {
                    **LOCAL,
                    "Policies": [
                        {
                            "ID": "1.2.3",
                            "Qualifiers": [{"Type": "id-qt-cps", "Value": "http://cps"}, {"Type": "id-qt-unotice", "Value": "text"}],
                        },
                        {"ID": "1.2.4"},
                    ],
                }
            }
        }
    ).signing.default
    ext = certificate_policies(profile.policies)
    assert [p.policy_identifier.dotted_string for p in ext] == ["1.2.3", "1.2.4"]
    first = list(ext)[0].policy_qualifiers
    assert first is not None and first[0] == "http://cps"
    assert isinstance(first[1], x509.UserNotice) and first[1].explicit_text == "text"
    assert list(ext)[1].policy_qualifiers is None


# -- failures: every one is 5200 except a missing "signing" ---------------------------------------------------


def test_missing_signing_is_plain_text() -> None:
    with pytest.raises(PlainError) as info:
        load({"auth_keys": {}})
    assert info.value.message == 'No "signing" field present'
    with pytest.raises(PlainError):
        load({"signing": None})


def test_a_type_error_wins_over_a_missing_signing_section() -> None:
    assert (
        load_error({"remotes": 5})
        == "failed to unmarshal configuration: json: cannot unmarshal number into Go struct field Config.remotes of type map[string]string"
    )


def test_a_type_error_in_a_later_profile_wins_over_an_invalid_default() -> None:
    message = load_error({"signing": {"default": {"expiry": ""}, "profiles": {"p": {"usages": "x"}}}})
    assert message.endswith("cannot unmarshal string into Go struct field SigningProfile.signing.profiles.usages of type []string")


U = "failed to unmarshal configuration: json: cannot unmarshal "


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (b"", "failed to unmarshal configuration: unexpected end of JSON input"),
        (b'{"signing":', "failed to unmarshal configuration: unexpected end of JSON input"),
        (b'{"signing":{},}', "failed to unmarshal configuration: invalid character '}' looking for beginning of object key string"),
        ([], U + "array into Go value of type config.Config"),
        ({"signing": 5}, U + "number into Go struct field Config.signing of type config.Signing"),
        (
            {"signing": {"profiles": []}},
            U + "array into Go struct field Signing.signing.profiles of type map[string]*config.SigningProfile",
        ),
        ({"signing": {"default": "x"}}, U + "string into Go struct field Signing.signing.default of type config.SigningProfile"),
        ({"signing": {"default": {"expiry": 5}}}, U + "number into Go struct field SigningProfile.signing.default.expiry of type string"),
        (
            {"signing": {"default": {"expiry": "1h", "usages": [5]}}},
            U + "number into Go struct field SigningProfile.signing.default.usages of type string",
        ),
        (
            {"signing": {"default": {"issuer_urls": "x"}}},
            U + "string into Go struct field SigningProfile.signing.default.issuer_urls of type []string",
        ),
        (
            {"signing": {"default": {"ca_constraint": {"is_ca": "yes"}}}},
            U + "string into Go struct field CAConstraint.signing.default.ca_constraint.is_ca of type bool",
        ),
        (
            {"signing": {"default": {"ca_constraint": {"max_path_len": 1.5}}}},
            U + "number 1.5 into Go struct field CAConstraint.signing.default.ca_constraint.max_path_len of type int",
        ),
        (
            {"signing": {"default": {"Expiry": "x"}}},
            U + "string into Go struct field SigningProfile.signing.default.Expiry of type time.Duration",
        ),
        (
            {"signing": {"default": {"auth_remote": 5}}},
            U + "number into Go struct field SigningProfile.signing.default.auth_remote of type config.AuthRemote",
        ),
        (
            {"signing": {"default": {"Policies": [{"ID": "1.2.3", "Qualifiers": [{"Type": 5}]}]}}},
            U + "number into Go struct field CertificatePolicyQualifier.signing.default.Policies.Qualifiers.Type of type string",
        ),
        ({"signing": {}, "auth_keys": {"k": {"type": 5}}}, U + "number into Go struct field AuthKey.auth_keys.type of type string"),
        ({"signing": {}, "remotes": {"a": 5}}, U + "number into Go struct field Config.remotes of type string"),
        ({"signing": {"profiles": {"p": None}}}, "can't parse nil profile"),
        ({"signing": {"default": {"usages": ["signing"]}}}, "empty expiry string"),
        ({"signing": {"default": LOCAL, "profiles": {"p": {"usages": ["signing"]}}}}, "empty expiry string"),
        ({"signing": {"default": {"expiry": "1d", "usages": ["signing"]}}}, 'time: unknown unit "d" in duration "1d"'),
        ({"signing": {"default": {"expiry": "1h", "backdate": "x"}}}, 'time: invalid duration "x"'),
        ({"signing": {"default": {"expiry": "0"}}}, "invalid configuration"),  # the default profile needs a non-zero expiry
        ({"signing": {"default": LOCAL, "profiles": {"p": {"expiry": "1h"}}}}, "invalid configuration"),  # no usages
        ({"signing": {"default": LOCAL, "profiles": {"p": {"expiry": "1h", "usages": ["bogus"]}}}}, "invalid configuration"),
        ({"signing": {"default": {"remote": "nope"}}}, "failed to find remote in remotes section"),
        ({"signing": {"default": {"remote": "a"}}, "remotes": {"a": ""}}, "failed to find remote in remotes section"),
        ({"signing": {"default": {"auth_remote": {"remote": "nope", "auth_key": "k"}}}}, "failed to find remote in remotes section"),
        ({"signing": {"default": {"auth_remote": {"remote": "a"}}}, "remotes": {"a": "http://x"}}, "invalid configuration"),
        (
            {"signing": {"default": {"remote": "a", "auth_remote": {"remote": "a", "auth_key": "k"}}}, "remotes": {"a": "http://x"}},
            "Invalid or unknown policy",
        ),
        ({"signing": {"default": {**LOCAL, "auth_key": "nokey"}}}, "failed to find auth_key in auth_keys section"),
        ({"signing": {"default": {**LOCAL, "prev_auth_key": "nokey"}}}, "failed to find prev_auth_key in auth_keys section"),
        (
            {"signing": {"default": {"auth_remote": {"remote": "a", "auth_key": "nokey"}}}, "remotes": {"a": "http://x"}},
            "failed to find auth_remote's auth_key in auth_keys section",
        ),
        (
            {"signing": {"default": {**LOCAL, "auth_key": "k"}}, "auth_keys": {"k": {"type": "weird", "key": "00"}}},
            "unknown authentication type",
        ),
        (
            {"signing": {"default": {**LOCAL, "auth_key": "k"}}, "auth_keys": {"k": {"type": "standard", "key": "not hex"}}},
            "failed to create new standard auth provider",
        ),
        ({"signing": {"default": {**LOCAL, "name_whitelist": "("}}}, "failed to compile name whitelist section"),
        (
            {"signing": {"default": {**LOCAL, "Policies": [{"ID": "1.2.3", "Qualifiers": [{"Type": "bad"}]}]}}},
            "invalid policy qualifier type",
        ),
    ],
)
def test_errors(doc: Any, message: str) -> None:
    assert load_error(doc) == message


def test_go_zero_time_means_unset() -> None:
    profile = load(
        {"signing": {"default": {**LOCAL, "not_before": "0001-01-01T00:00:00Z", "not_after": "0001-01-01T00:00:00Z"}}}
    ).signing.default
    assert profile.not_before is None and profile.not_after is None


def test_an_empty_qualifier_type_is_accepted() -> None:
    # cfssl only rejects non-empty types other than id-qt-cps and id-qt-unotice
    load({"signing": {"default": {**LOCAL, "Policies": [{"ID": "1.2.3", "Qualifiers": [{"Type": "", "Value": "x"}]}]}}})


@pytest.mark.parametrize(
    ("profile", "fragment"),
    [
        ({**LOCAL, "not_before": "yesterday"}, 'parsing time "yesterday" as RFC 3339'),
        ({**LOCAL, "not_before": "2030-01-01"}, 'parsing time "2030-01-01" as RFC 3339'),
        ({**LOCAL, "not_before": "2031-01-01T00:00:00Z", "not_after": "2030-01-01T00:00:00Z"}, "not_after is before not_before"),
        ({**LOCAL, "ct_log_servers": ["ct.example:443"]}, "ct_log_servers: 'ct.example:443' is not an http(s) URL"),
        ({**LOCAL, "lint_error_level": 3}, "lint_error_level"),
        ({**LOCAL, "allowed_extensions": ["not an oid"]}, "invalid OID"),
        # cfssl writes the raw UTF-8 bytes into an IA5String (invalid DER); cryptography refuses them
        ({**LOCAL, "ocsp_url": "http://ü.example"}, "ocsp_url: 'http://ü.example' is not ASCII"),
        ({**LOCAL, "crl_url": "http://ü.example/crl"}, "crl_url: 'http://ü.example/crl' is not ASCII"),
        ({**LOCAL, "issuer_urls": ["http://ok.example", "http://ü.example"]}, "issuer_urls: 'http://ü.example' is not ASCII"),
        ({**LOCAL, "Policies": [{"ID": "1.2.3", "Qualifiers": [{"Type": "id-qt-cps", "Value": "ü"}]}]}, "Policies: 'ü' is not ASCII"),
        ({**LOCAL, "not_before": "1900-01-01T00:00:00Z"}, "not_before: 1900-01-01T00:00:00+00:00 is before 1950"),
    ],
)
def test_our_own_refusals_are_5200_too(profile: dict[str, Any], fragment: str) -> None:
    # cfssl panics on not_after < not_before and supports zlint; we say why we refuse
    assert fragment in load_error({"signing": {"default": profile}})


def test_from_file(tmp_path: Any) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"signing": {"default": LOCAL}}))
    assert Config.from_file(str(path)).signing.default.expiry == HOUR
    with pytest.raises(CfsslError) as info:
        Config.from_file(str(tmp_path / "missing.json"))
    assert info.value.code == 5200
    assert info.value.message == f"failed to read configuration file: open {tmp_path / 'missing.json'}: no such file or directory"
