"""cfssl's error model: ``{"code": category + reason, "message": "..."}``.

Every user-facing failure in the core is a :class:`CfsslError` (or a :class:`PlainError` for the few places
where cfssl prints plain text, such as ``ca section only permitted in initca``). The CLI's ``main`` and the
API's single wrapper are the only places that turn these into output.

The numeric codes and fixed messages are cfssl's (reference §5); they are a compatibility contract.
"""

from __future__ import annotations

import enum
import json
import re


class Category(enum.IntEnum):
    SUCCESS = 0
    CERTIFICATE = 1000
    PRIVATE_KEY = 2000
    INTERMEDIATES = 3000
    ROOT = 4000
    POLICY = 5000
    DIAL = 6000
    API_CLIENT = 7000
    OCSP = 8000
    CSR = 9000
    CT = 10000
    CERT_STORE = 11000


class Reason(enum.IntEnum):
    """Reasons share numeric values across groups, exactly as cfssl's errors package does."""

    NONE = 0
    UNKNOWN = 0
    READ_FAILED = 1
    DECODE_FAILED = 2
    PARSE_FAILED = 3
    # certificate
    SELF_SIGNED = 100
    VERIFY_FAILED = 200
    BAD_REQUEST = 300
    MISSING_SERIAL = 400
    # private key
    ENCRYPTED = 100
    NOT_RSA_OR_ECC = 200
    KEY_MISMATCH = 300
    GENERATION_FAILED = 400
    UNAVAILABLE = 500
    # policy
    NO_KEY_USAGES = 100
    INVALID_POLICY = 200
    INVALID_REQUEST = 300
    UNKNOWN_PROFILE = 400
    UNMATCHED_WHITELIST = 500
    # api client
    AUTHENTICATION_FAILURE = 100
    JSON_ERROR = 200
    IO_ERROR = 300
    CLIENT_HTTP_ERROR = 400
    SERVER_REQUEST_FAILED = 500
    # ocsp
    ISSUER_MISMATCH = 100
    INVALID_STATUS = 200
    # certificate transparency
    PRECERT_SUBMISSION_FAILED = 100
    CT_CLIENT_CONSTRUCTION_FAILED = 200
    PRECERT_MISSING_POISON = 300
    PRECERT_INVALID_POISON = 400
    # cert store
    INSERTION_FAILED = 100
    RECORD_NOT_FOUND = 200


# Fixed messages of cfssl's errors.New, keyed by code (reference §5.4).
_MESSAGES: dict[int, str] = {
    1000: "Unknown certificate error",
    1001: "Failed to read certificate",
    1002: "Failed to decode certificate",
    1003: "Failed to parse certificate",
    1100: "Certificate is self signed",
    1200: "Unable to verify certificate",
    1300: "Invalid certificate request",
    1400: "Missing serial number in request",
    2000: "Unknown private key error",
    2001: "Failed to read private key",
    2002: "Failed to decode private key",
    2003: "Failed to parse private key",
    2100: "Private key is encrypted.",
    2200: "Private key algorithm is not RSA or ECC or Ed25519",
    2300: "Private key does not match public key",
    2400: "Failed to new private key",
    2500: "Private key is unavailable",
    3000: "Unknown intermediate certificate error",
    3001: "Failed to read intermediate certificate",
    3002: "Failed to decode intermediate certificate",
    3003: "Failed to parse intermediate certificate",
    4000: "Unknown root certificate error",
    4001: "Failed to read root certificate",
    4002: "Failed to decode root certificate",
    4003: "Failed to parse root certificate",
    5000: "Unknown policy error",
    5100: "Invalid policy: no key usage available",
    5200: "Invalid or unknown policy",
    5300: "Policy violation request",
    5400: "Unknown policy profile",
    5500: "Request does not match policy whitelist",
    6000: "Failed to dial remote server",
    7100: "API client authentication failure",
    7200: "API client JSON config error",
    7300: "API client IO error",
    7400: "API client HTTP error",
    7500: "API client error: Server request failed",
    8000: "",
    8001: "No certificate provided",
    8100: "Certificate not issued by this issuer",
    8200: "Invalid revocation status",
    9000: "CSR parsing failed due to unknown error",
    9001: "CSR file read failed",
    9002: "CSR Decode failed",
    9003: "CSR Parsing failed",
    9300: "CSR Bad request",
    10000: "Certificate transparency parsing failed due to unknown error",
    10100: "Certificate transparency precertificate submission failed",
    10300: "Precertificate is missing CT poison extension",
    10400: "Precertificate contains an invalid CT poison extension",
    11000: "Certificate store action failed due to unknown error",
}


def go_json_dumps(value: object, indent: int | None = None) -> str:
    """Compact JSON escaped like Go's encoding/json (``<``, ``>``, ``&``, U+2028/2029).

    Lives here (the bottom of the import graph) because error strings use it; :mod:`cfsslpy.gojson`
    re-exports it for everything else.
    """
    if indent is None:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    else:  # Go's json.MarshalIndent(value, "", " " * indent)
        text = json.dumps(value, ensure_ascii=False, indent=indent)
    # Python writes \b and \f where Go (cfssl's 1.19 toolchain) writes \u0008 and \u000c; scanning the
    # escape pairs left to right keeps an escaped backslash followed by "b" intact.
    if "\\b" in text or "\\f" in text:  # rare: the scan costs ~10 us on a certificate's PEM
        text = _SHORT_ESCAPE.sub(lambda m: _GO_ESCAPES.get(m.group(0), m.group(0)), text)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


_SHORT_ESCAPE = re.compile(r"\\.")
_GO_ESCAPES = {"\\b": "\\u0008", "\\f": "\\u000c"}


class Error(Exception):
    """The root of every error cfsslpy reports to a user; ``message`` is what gets printed."""

    message: str


class ApiError(Error):
    """cfssl's ``errors.HTTPError``: an HTTP-level failure of the API whose envelope code is the HTTP status."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        super().__init__(message)


class CfsslError(Error):
    """A cfssl-typed error: ``code = category + reason``.

    ``CfsslError(Category.CSR, Reason.DECODE_FAILED)`` carries cfssl's fixed message (errors.New);
    passing ``message`` mirrors errors.Wrap, where the message is the underlying error's text.
    """

    def __init__(self, category: Category, reason: int = Reason.NONE, message: str | None = None) -> None:
        self.category = category
        self.reason = int(reason)
        self.code = int(category) + int(reason)
        if message is None:
            message = _MESSAGES.get(self.code, "")
        self.message = message
        super().__init__(message)

    def to_json(self) -> str:
        """The compact JSON cfssl prints on stderr: ``{"code":N,"message":"..."}``."""
        return go_json_dumps({"code": self.code, "message": self.message})

    def __str__(self) -> str:
        return self.to_json()


class PlainError(Error):
    """An untyped error that cfssl reports as plain text (reference §5.5); exit status 1 on the CLI."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return self.message


class UsageError(Error):
    """Wrong command-line usage: the CLI prints the message and the usage, exit status 2."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


# How much of a value from a request (or a remote peer) a log line carries: enough to recognise it,
# never enough for one request to write a 200 KB line.
LOG_VALUE_LIMIT = 128
LOG_FIELD_LIMIT = 256  # one access-log field (path, method, address, CN)


def logfmt(value: str, limit: int = LOG_FIELD_LIMIT) -> str:
    """A logfmt field value, at most ``limit`` characters of it: bare when plain, else JSON-quoted, so that a
    request path or a certificate name can neither forge log lines nor flood the log."""
    value = value[:limit]
    if value and all(c.isascii() and c.isprintable() and c not in ' "=\\' for c in value):
        return value
    return json.dumps(value)


def log_value(value: object, limit: int = LOG_VALUE_LIMIT) -> str:
    """``value`` as it may appear in a log line when a client or a remote chose it: quoted with
    :func:`repr` (control characters, line and paragraph separators, bidi overrides and lone surrogates
    are escaped, so a value cannot forge or hide log lines) and cut to ``limit`` characters, the cut
    shown as ``...(+N chars)``. Non-strings are logged as their ``str()``.
    """
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}...(+{len(text) - limit} chars)"


def policy_error(message: str) -> CfsslError:
    """Config/policy validation failure: always 5200 with the detail as message (reference §3.1)."""
    return CfsslError(Category.POLICY, Reason.INVALID_POLICY, message)
