"""cfssl's error model: code = category + reason, fixed messages, compact Go JSON (reference §5)."""

from __future__ import annotations

import ast
import pathlib

import pytest

import cfsslpy
from cfsslpy.errors import (
    FIXED_MESSAGES,
    LOG_VALUE_LIMIT,
    WRAP_ONLY,
    ApiError,
    Category,
    CfsslError,
    Code,
    Error,
    PlainError,
    Reason,
    UsageError,
    go_json_dumps,
    log_value,
    policy_error,
)

PACKAGE = pathlib.Path(cfsslpy.__file__).parent

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


def test_a_code_cfssl_never_produces_cannot_be_constructed() -> None:
    # it used to give an invented code 5999 with an empty message; now it is a programming error
    with pytest.raises(ValueError, match="5999"):
        CfsslError(Category.POLICY, 999)


def test_only_8000_has_an_empty_fixed_message() -> None:
    # cfssl's New(OCSPError, Unknown) falls through its switch without a text
    assert CfsslError(Category.OCSP, Reason.UNKNOWN).message == ""
    assert [code for code, message in FIXED_MESSAGES.items() if not message] == [Code.OCSP_UNKNOWN]


# -- the Code enum: exactly cfssl's codes ------------------------------------------------------------------

# cfssl 1.6.5: every code errors.New accepts (error.go), plus the codes its sources build only with errors.Wrap:
# x509 verification (1210 + Go's InvalidReason, 1220 unknown authority), CSR generation (csr.go, 9400) and the
# certificate store's insert/update failures (certdb/sql, 11100/11200).
CFSSL_NEW_CODES = {row[2] for row in TABLE}
CFSSL_WRAP_ONLY_CODES = {*range(1210, 1221), 9400, 11100, 11200}


def test_code_enum_is_exactly_cfssls_codes() -> None:
    assert {int(code) for code in Code} == CFSSL_NEW_CODES | CFSSL_WRAP_ONLY_CODES
    assert {int(code) for code in WRAP_ONLY} == CFSSL_WRAP_ONLY_CODES
    assert set(FIXED_MESSAGES) == CFSSL_NEW_CODES
    assert len({code.name for code in Code}) == len(Code)  # no aliases: one name per code


def test_every_code_has_a_fixed_message_or_is_wrap_only() -> None:
    for code in Code:
        assert (code in FIXED_MESSAGES) != (code in WRAP_ONLY), code
        assert code.fixed_message == FIXED_MESSAGES.get(code)


def test_code_splits_into_category_and_reason() -> None:
    assert (Code.POLICY_UNKNOWN_PROFILE.category, Code.POLICY_UNKNOWN_PROFILE.reason) == (Category.POLICY, 400)
    assert (Code.CERT_STORE_RECORD_NOT_FOUND.category, Code.CERT_STORE_RECORD_NOT_FOUND.reason) == (Category.CERT_STORE, 200)
    assert (Code.CERTIFICATE_EXPIRED.category, Code.CERTIFICATE_EXPIRED.reason) == (Category.CERTIFICATE, 211)
    for code in Code:
        assert code.category + code.reason == code
        assert code.name.startswith(code.category.name + "_")


@pytest.mark.parametrize(("category", "reason", "code", "message"), TABLE, ids=[str(row[2]) for row in TABLE])
def test_a_code_builds_the_same_error_as_its_pair(category: Category, reason: int, code: int, message: str) -> None:
    by_code, by_pair = CfsslError(Code(code)), CfsslError(category, reason)
    assert (by_code.code, by_code.message, by_code.category, by_code.reason) == (
        by_pair.code,
        by_pair.message,
        by_pair.category,
        by_pair.reason,
    )


def test_a_code_takes_the_wrapped_message() -> None:
    assert str(CfsslError(Code.CSR_GENERATION_FAILED, "x509: bad extension")) == '{"code":9400,"message":"x509: bad extension"}'
    assert CfsslError(Code.POLICY_INVALID_POLICY, message="empty expiry string").message == "empty expiry string"
    assert type(CfsslError(Code.POLICY_UNKNOWN).code) is int  # the wire and the logs see a plain number


@pytest.mark.parametrize(
    ("category", "reason", "code"),
    [
        (Category.OCSP, Reason.UNMATCHED_WHITELIST, 8500),  # the issue's example: no invented 8500
        (Category.CT, Reason.CT_CLIENT_CONSTRUCTION_FAILED, 10200),  # errors.New panics on it; cfssl never wraps it
        (Category.CERT_STORE, Reason.READ_FAILED, 11001),
        (Category.DIAL, Reason.READ_FAILED, 6001),
        (Category.API_CLIENT, Reason.UNKNOWN, 7000),  # errors.New(APIClientError, Unknown) panics
        (Category.OCSP, Reason.DECODE_FAILED, 8002),
        (Category.SUCCESS, Reason.NONE, 0),  # cfssl refuses to build an error of category Success
        (Category.CERTIFICATE, Reason.VERIFY_FAILED + 21, 1221),
    ],
)
def test_an_invalid_pair_raises(category: Category, reason: int, code: int) -> None:
    with pytest.raises(ValueError, match=str(code)):
        CfsslError(category, reason, "some text")


def test_a_wrap_only_code_needs_a_message() -> None:
    for code in WRAP_ONLY:
        with pytest.raises(ValueError, match="no fixed message"):
            CfsslError(code)
        with pytest.raises(ValueError, match="no fixed message"):
            CfsslError(code.category, code.reason)
        assert CfsslError(code.category, code.reason, "text").code == code


def test_wrong_argument_types_raise_type_error() -> None:
    with pytest.raises(TypeError):
        CfsslError(Code.POLICY_UNKNOWN, Reason.INVALID_POLICY)  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        CfsslError(Category.POLICY, "Unknown policy error")  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        CfsslError(Code.POLICY_INVALID_POLICY, "text", "text again")
    with pytest.raises(ValueError):
        CfsslError(1234, Reason.NONE)  # type: ignore[call-overload]


# -- hints ---------------------------------------------------------------------------------------------------


def test_no_hint_by_default() -> None:
    for error in (CfsslError(Code.CSR_DECODE_FAILED), PlainError("x"), UsageError("x"), ApiError(400, "x")):
        assert error.hint is None
        assert error.render_hint() is None


def test_a_hint_is_rendered_on_its_own_line_and_never_changes_the_message() -> None:
    error = CfsslError(Code.PRIVATE_KEY_ENCRYPTED, hint="set CFSSL_CA_PK_PASSWORD to the key's password")
    assert error.to_json() == '{"code":2100,"message":"Private key is encrypted."}'
    assert error.render_hint() == "hint: set CFSSL_CA_PK_PASSWORD to the key's password"
    plain = PlainError("open ca.pem: no such file or directory", hint="the file named by -ca")
    assert str(plain) == "open ca.pem: no such file or directory"
    assert plain.render_hint() == "hint: the file named by -ca"
    assert UsageError("x", hint="see -help").render_hint() == "hint: see -help"
    assert ApiError(400, "x", hint="field 'hosts'").render_hint() == "hint: field 'hosts'"


def test_a_hint_stays_one_line() -> None:
    rendered = CfsslError(Code.CERTIFICATE_READ_FAILED, "x", hint="file a\nb\x1b[31m\u2028").render_hint()
    assert rendered == "hint: file a\\nb\\x1b[31m\\u2028"
    assert (rendered or "").isprintable()


def test_plain_error_status_defaults_to_cfssls_500() -> None:
    assert PlainError("x").status == 500
    assert PlainError("x", status=503).status == 503


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


# -- every construction in the package names a code cfssl produces ------------------------------------------


def _literal(node: ast.expr, enum_name: str) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == enum_name:
        return node.attr
    return None


def _constructions() -> list[tuple[str, ast.Call]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "CfsslError":
                found.append((f"{path.relative_to(PACKAGE.parent)}:{node.lineno}", node))
    return found


def test_every_literal_construction_in_the_package_is_a_valid_code() -> None:
    """A pair spelled in the source is checked here even when no test reaches it (the constructor only
    refuses it when it runs)."""
    checked = 0
    for where, call in _constructions():
        args = call.args
        has_message = len(args) > 2 or any(k.arg == "message" for k in call.keywords)
        code_name = _literal(args[0], "Code") if args else None
        if code_name is not None:
            code = Code[code_name]
            has_message = has_message or len(args) > 1
        else:
            category = _literal(args[0], "Category") if args else None
            reason = _literal(args[1], "Reason") if len(args) > 1 else "NONE"
            if category is None or reason is None:
                continue  # computed (a helper's parameter): the constructor checks it when it runs
            total = Category[category] + Reason[reason]
            assert total in set(Code), f"{where}: {category} + {reason} = {total} is no cfssl code"
            code = Code(total)
        assert has_message or code in FIXED_MESSAGES, f"{where}: {code.name} is Wrap-only and needs a message"
        checked += 1
    assert checked > 100


def test_a_coded_plain_error_keeps_its_hint_and_code() -> None:
    class Both(CfsslError, PlainError):
        def __init__(self) -> None:
            super().__init__(Category.CERTIFICATE, Reason.READ_FAILED, "read x: too large", hint="split the input")

    error = Both()
    assert (error.code, error.message, error.hint, error.status) == (1001, "read x: too large", "split the input", 500)
