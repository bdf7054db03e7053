"""cfssl's error model: code = category + reason, fixed messages, compact Go JSON (reference §5)."""

from __future__ import annotations

import pytest

from cfsslpy.errors import (
    LOG_VALUE_LIMIT,
    Category,
    CfsslError,
    Error,
    PlainError,
    Reason,
    UsageError,
    go_json_dumps,
    log_value,
    policy_error,
)

# (category, reason, code, cfssl's fixed message) -- errors.New in cfssl
TABLE = [
    (Category.CERTIFICATE, Reason.UNKNOWN, 1000, "Unknown certificate error"),
    (Category.CERTIFICATE, Reason.READ_FAILED, 1001, "Failed to read certificate"),
    (Category.CERTIFICATE, Reason.DECODE_FAILED, 1002, "Failed to decode certificate"),
    (Category.CERTIFICATE, Reason.PARSE_FAILED, 1003, "Failed to parse certificate"),
    (Category.CERTIFICATE, Reason.SELF_SIGNED, 1100, "Certificate is self signed"),
    (Category.CERTIFICATE, Reason.VERIFY_FAILED, 1200, "Unable to verify certificate"),
    (Category.CERTIFICATE, Reason.BAD_REQUEST, 1300, "Invalid certificate request"),
    (Category.CERTIFICATE, Reason.MISSING_SERIAL, 1400, "Missing serial number in request"),
    (Category.PRIVATE_KEY, Reason.UNKNOWN, 2000, "Unknown private key error"),
    (Category.PRIVATE_KEY, Reason.READ_FAILED, 2001, "Failed to read private key"),
    (Category.PRIVATE_KEY, Reason.DECODE_FAILED, 2002, "Failed to decode private key"),
    (Category.PRIVATE_KEY, Reason.PARSE_FAILED, 2003, "Failed to parse private key"),
    (Category.PRIVATE_KEY, Reason.ENCRYPTED, 2100, "Private key is encrypted."),
    (Category.PRIVATE_KEY, Reason.NOT_RSA_OR_ECC, 2200, "Private key algorithm is not RSA or ECC or Ed25519"),
    (Category.PRIVATE_KEY, Reason.KEY_MISMATCH, 2300, "Private key does not match public key"),
    (Category.PRIVATE_KEY, Reason.GENERATION_FAILED, 2400, "Failed to new private key"),
    (Category.PRIVATE_KEY, Reason.UNAVAILABLE, 2500, "Private key is unavailable"),
    (Category.INTERMEDIATES, Reason.UNKNOWN, 3000, "Unknown intermediate certificate error"),
    (Category.INTERMEDIATES, Reason.READ_FAILED, 3001, "Failed to read intermediate certificate"),
    (Category.INTERMEDIATES, Reason.DECODE_FAILED, 3002, "Failed to decode intermediate certificate"),
    (Category.INTERMEDIATES, Reason.PARSE_FAILED, 3003, "Failed to parse intermediate certificate"),
    (Category.ROOT, Reason.UNKNOWN, 4000, "Unknown root certificate error"),
    (Category.ROOT, Reason.READ_FAILED, 4001, "Failed to read root certificate"),
    (Category.ROOT, Reason.DECODE_FAILED, 4002, "Failed to decode root certificate"),
    (Category.ROOT, Reason.PARSE_FAILED, 4003, "Failed to parse root certificate"),
    (Category.POLICY, Reason.UNKNOWN, 5000, "Unknown policy error"),
    (Category.POLICY, Reason.NO_KEY_USAGES, 5100, "Invalid policy: no key usage available"),
    (Category.POLICY, Reason.INVALID_POLICY, 5200, "Invalid or unknown policy"),
    (Category.POLICY, Reason.INVALID_REQUEST, 5300, "Policy violation request"),
    (Category.POLICY, Reason.UNKNOWN_PROFILE, 5400, "Unknown policy profile"),
    (Category.POLICY, Reason.UNMATCHED_WHITELIST, 5500, "Request does not match policy whitelist"),
    (Category.DIAL, Reason.UNKNOWN, 6000, "Failed to dial remote server"),
    (Category.API_CLIENT, Reason.AUTHENTICATION_FAILURE, 7100, "API client authentication failure"),
    (Category.API_CLIENT, Reason.JSON_ERROR, 7200, "API client JSON config error"),
    (Category.API_CLIENT, Reason.IO_ERROR, 7300, "API client IO error"),
    (Category.API_CLIENT, Reason.CLIENT_HTTP_ERROR, 7400, "API client HTTP error"),
    (Category.API_CLIENT, Reason.SERVER_REQUEST_FAILED, 7500, "API client error: Server request failed"),
    (Category.OCSP, Reason.UNKNOWN, 8000, ""),
    (Category.OCSP, Reason.READ_FAILED, 8001, "No certificate provided"),
    (Category.OCSP, Reason.ISSUER_MISMATCH, 8100, "Certificate not issued by this issuer"),
    (Category.OCSP, Reason.INVALID_STATUS, 8200, "Invalid revocation status"),
    (Category.CSR, Reason.UNKNOWN, 9000, "CSR parsing failed due to unknown error"),
    (Category.CSR, Reason.READ_FAILED, 9001, "CSR file read failed"),
    (Category.CSR, Reason.DECODE_FAILED, 9002, "CSR Decode failed"),
    (Category.CSR, Reason.PARSE_FAILED, 9003, "CSR Parsing failed"),
    (Category.CSR, Reason.BAD_REQUEST, 9300, "CSR Bad request"),
    (Category.CT, Reason.UNKNOWN, 10000, "Certificate transparency parsing failed due to unknown error"),
    (Category.CT, 100, 10100, "Certificate transparency precertificate submission failed"),
    (Category.CT, 300, 10300, "Precertificate is missing CT poison extension"),
    (Category.CT, 400, 10400, "Precertificate contains an invalid CT poison extension"),
    (Category.CERT_STORE, Reason.UNKNOWN, 11000, "Certificate store action failed due to unknown error"),
]


@pytest.mark.parametrize(("category", "reason", "code", "message"), TABLE, ids=[str(row[2]) for row in TABLE])
def test_fixed_messages(category: Category, reason: int, code: int, message: str) -> None:
    error = CfsslError(category, reason)
    assert (error.code, error.message) == (code, message)
    assert error.to_json() == go_json_dumps({"code": code, "message": message})


def test_category_bases() -> None:
    assert [int(c) for c in Category] == [0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000, 11000]


def test_reasons_share_values_across_groups() -> None:
    assert Reason.SELF_SIGNED == Reason.ENCRYPTED == Reason.NO_KEY_USAGES == Reason.AUTHENTICATION_FAILURE == Reason.ISSUER_MISMATCH == 100
    assert Reason.KEY_MISMATCH == Reason.BAD_REQUEST == Reason.INVALID_REQUEST == Reason.IO_ERROR == 300


def test_wrap_keeps_the_underlying_message() -> None:
    error = CfsslError(Category.PRIVATE_KEY, Reason.GENERATION_FAILED, "RSA key is too weak")
    assert str(error) == error.to_json() == '{"code":2400,"message":"RSA key is too weak"}'


def test_json_is_compact_with_go_escaping() -> None:
    error = CfsslError(Category.CERTIFICATE, Reason.UNKNOWN, 'x509: cannot sign with <nil> & "quotes"\u2028')
    assert error.to_json() == '{"code":1000,"message":"x509: cannot sign with \\u003cnil\\u003e \\u0026 \\"quotes\\"\\u2028"}'


def test_a_code_without_a_fixed_message_is_empty() -> None:
    assert CfsslError(Category.POLICY, 999).message == ""


def test_policy_error_is_5200_with_the_detail() -> None:
    error = policy_error("empty expiry string")
    assert (error.code, error.message) == (5200, "empty expiry string")


def test_plain_and_usage_errors() -> None:
    assert str(PlainError("ca section only permitted in initca")) == "ca section only permitted in initca"
    usage = UsageError("flag provided but not defined: -x")
    assert usage.message == "flag provided but not defined: -x"


def test_one_root_for_user_facing_errors() -> None:
    for cls in (CfsslError, PlainError, UsageError):
        assert issubclass(cls, Error)
        assert cls.__bases__ == (Error,)
    assert Error.__bases__ == (Exception,)


# -- values from requests in log lines ---------------------------------------------------------------------


def test_log_value_quotes_short_values_whole() -> None:
    assert log_value("www") == "'www'"
    assert log_value("") == "''"
    assert log_value(42) == "'42'"


def test_log_value_escapes_what_could_forge_or_hide_a_log_line() -> None:
    shown = log_value("a\nFAKE [ERROR] line\r\x1b[31m\u202e\u2028\ud800")
    assert shown == "'a\\nFAKE [ERROR] line\\r\\x1b[31m\\u202e\\u2028\\ud800'"
    assert shown.isprintable() and "\n" not in shown
    shown.encode("utf-8")  # a lone surrogate would make the log handler fail


def test_log_value_cuts_long_values_and_says_how_much() -> None:
    shown = log_value("p" * 200_000)
    assert shown == "'" + "p" * LOG_VALUE_LIMIT + f"'...(+{200_000 - LOG_VALUE_LIMIT} chars)"
    assert len(shown) < 2 * LOG_VALUE_LIMIT
    assert log_value("x" * LOG_VALUE_LIMIT) == repr("x" * LOG_VALUE_LIMIT)
    assert log_value("abcdef", limit=3) == "'abc'...(+3 chars)"


def test_log_value_of_control_characters_stays_bounded() -> None:
    assert len(log_value("\x00" * 100_000)) < 5 * LOG_VALUE_LIMIT
