"""cfssl's error model: ``{"code": category + reason, "message": "..."}``.

Every user-facing failure in the core is a :class:`CfsslError` (or a :class:`PlainError` for the few places
where cfssl prints plain text, such as ``ca section only permitted in initca``). The CLI's ``main`` and the
API's single wrapper are the only places that turn these into output.

The numeric codes and fixed messages are cfssl's (reference §5); they are a compatibility contract.
:class:`Code` lists every code cfssl can produce, and a :class:`CfsslError` can only carry one of them:
``CfsslError(Category.OCSP, Reason.UNMATCHED_WHITELIST)`` (8500, which cfssl never produces) raises
``ValueError`` at construction, a programming error rather than an answer to a user.

Any error may carry a **hint** (``Error.hint``): the file, the field, or what to do next, in one line. It is
never part of the message (cfssl's wire format is unchanged). The CLI prints :meth:`Error.render_hint` on
stderr after the error; the API does not send it (a hint may name server-side files or operator actions):
the API's wrapper only logs it.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from typing import overload


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


class Code(enum.IntEnum):
    """Every code cfssl 1.6.5 produces: ``category + reason``, with each name spelled ``CATEGORY_REASON``.

    These are the pairs cfssl's ``errors.New`` accepts (it panics on the others; the one exception,
    ``New(OCSPError, <any reason>)``, is only ever called by cfssl with the reasons below), plus the codes
    cfssl only builds with ``errors.Wrap``, whose message is the wrapped error's text (:data:`WRAP_ONLY`):
    Go's x509 verification reasons (1210 + Go's ``InvalidReason``, 1220 for an unknown authority), a CSR
    that cannot be generated (9400) and the certificate store's insert/update failures (11100, 11200).
    """

    CERTIFICATE_UNKNOWN = 1000
    CERTIFICATE_READ_FAILED = 1001
    CERTIFICATE_DECODE_FAILED = 1002
    CERTIFICATE_PARSE_FAILED = 1003
    CERTIFICATE_SELF_SIGNED = 1100
    CERTIFICATE_VERIFY_FAILED = 1200
    # Wrap(CertificateError, VerifyFailed, x509.CertificateInvalidError): 1210 + Go's InvalidReason
    CERTIFICATE_NOT_AUTHORIZED_TO_SIGN = 1210
    CERTIFICATE_EXPIRED = 1211
    CERTIFICATE_CA_NOT_AUTHORIZED_FOR_THIS_NAME = 1212
    CERTIFICATE_TOO_MANY_INTERMEDIATES = 1213
    CERTIFICATE_INCOMPATIBLE_USAGE = 1214
    CERTIFICATE_NAME_MISMATCH = 1215
    CERTIFICATE_NAME_CONSTRAINTS_WITHOUT_SANS = 1216
    CERTIFICATE_UNCONSTRAINED_NAME = 1217
    CERTIFICATE_TOO_MANY_CONSTRAINTS = 1218
    CERTIFICATE_CA_NOT_AUTHORIZED_FOR_EXT_KEY_USAGE = 1219
    # Wrap(CertificateError, VerifyFailed, x509.UnknownAuthorityError); also 1210 + Go's NoValidChains (10)
    CERTIFICATE_UNKNOWN_AUTHORITY = 1220
    CERTIFICATE_BAD_REQUEST = 1300
    CERTIFICATE_MISSING_SERIAL = 1400
    PRIVATE_KEY_UNKNOWN = 2000
    PRIVATE_KEY_READ_FAILED = 2001
    PRIVATE_KEY_DECODE_FAILED = 2002
    PRIVATE_KEY_PARSE_FAILED = 2003
    PRIVATE_KEY_ENCRYPTED = 2100
    PRIVATE_KEY_NOT_RSA_OR_ECC = 2200
    PRIVATE_KEY_KEY_MISMATCH = 2300
    PRIVATE_KEY_GENERATION_FAILED = 2400
    PRIVATE_KEY_UNAVAILABLE = 2500
    INTERMEDIATES_UNKNOWN = 3000
    INTERMEDIATES_READ_FAILED = 3001
    INTERMEDIATES_DECODE_FAILED = 3002
    INTERMEDIATES_PARSE_FAILED = 3003
    ROOT_UNKNOWN = 4000
    ROOT_READ_FAILED = 4001
    ROOT_DECODE_FAILED = 4002
    ROOT_PARSE_FAILED = 4003
    POLICY_UNKNOWN = 5000
    POLICY_NO_KEY_USAGES = 5100
    POLICY_INVALID_POLICY = 5200
    POLICY_INVALID_REQUEST = 5300
    POLICY_UNKNOWN_PROFILE = 5400
    POLICY_UNMATCHED_WHITELIST = 5500
    DIAL_UNKNOWN = 6000
    API_CLIENT_AUTHENTICATION_FAILURE = 7100
    API_CLIENT_JSON_ERROR = 7200
    API_CLIENT_IO_ERROR = 7300
    API_CLIENT_CLIENT_HTTP_ERROR = 7400
    API_CLIENT_SERVER_REQUEST_FAILED = 7500
    OCSP_UNKNOWN = 8000
    OCSP_READ_FAILED = 8001
    OCSP_ISSUER_MISMATCH = 8100
    OCSP_INVALID_STATUS = 8200
    CSR_UNKNOWN = 9000
    CSR_READ_FAILED = 9001
    CSR_DECODE_FAILED = 9002
    CSR_PARSE_FAILED = 9003
    CSR_BAD_REQUEST = 9300
    CSR_GENERATION_FAILED = 9400  # Wrap(CSRError, GenerationFailed, ...) only
    CT_UNKNOWN = 10000
    CT_PRECERT_SUBMISSION_FAILED = 10100
    CT_PRECERT_MISSING_POISON = 10300
    CT_PRECERT_INVALID_POISON = 10400
    CERT_STORE_UNKNOWN = 11000
    CERT_STORE_INSERTION_FAILED = 11100  # Wrap only
    CERT_STORE_RECORD_NOT_FOUND = 11200  # Wrap only

    @property
    def category(self) -> Category:
        return Category(self.value // 1000 * 1000)

    @property
    def reason(self) -> int:
        return self.value - self.category.value

    @property
    def fixed_message(self) -> str | None:
        """cfssl's ``errors.New`` message, or None for a code cfssl only builds with ``errors.Wrap``."""
        return _MESSAGES.get(self)


# Fixed messages of cfssl's errors.New, keyed by code (reference §5.4). 8000's is empty in cfssl too:
# New(OCSPError, Unknown) falls through cfssl's switch without a text.
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
FIXED_MESSAGES: Mapping[int, str] = _MESSAGES

# The codes cfssl only builds with errors.Wrap: no fixed message, so a CfsslError needs one.
WRAP_ONLY: frozenset[Code] = frozenset(
    [
        *(Code(code) for code in range(1210, 1221)),
        Code.CSR_GENERATION_FAILED,
        Code.CERT_STORE_INSERTION_FAILED,
        Code.CERT_STORE_RECORD_NOT_FOUND,
    ]
)


# json.dumps with any keyword builds a new encoder per call; the compact one is used on every response
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def go_json_dumps(value: object, indent: int | None = None) -> str:
    """Compact JSON escaped like Go's encoding/json (``<``, ``>``, ``&``, U+2028/2029).

    Lives here (the bottom of the import graph) because error strings use it; :mod:`cfsslpy.golang.json`
    re-exports it for everything else.
    """
    if indent is None:
        text = _COMPACT.encode(value)
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
    """The root of every error cfsslpy reports to a user; ``message`` is what gets printed.

    ``hint`` (optional, one line) says where to look or what to do next: the file, the field, the flag. It is
    never part of ``message``: the CLI prints :meth:`render_hint` on stderr after the error, the API only
    logs it.
    """

    message: str
    hint: str | None = None

    def render_hint(self) -> str | None:
        """``hint: <text>`` as the CLI prints it on a line of its own after the error, or None without a hint.

        Control characters (a newline from a file name, say) are escaped so that the hint stays one line.
        """
        if not self.hint:
            return None
        text = self.hint if self.hint.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in self.hint)
        return f"hint: {text}"


class ApiError(Error):
    """cfssl's ``errors.HTTPError``: an HTTP-level failure of the API whose envelope code is the HTTP status."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None, *, hint: str | None = None) -> None:
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.hint = hint
        super().__init__(message)


class CfsslError(Error):
    """A cfssl-typed error: ``code = category + reason``, always one of :class:`Code`.

    ``CfsslError(Category.CSR, Reason.DECODE_FAILED)`` (or ``CfsslError(Code.CSR_DECODE_FAILED)``) carries
    cfssl's fixed message (errors.New); passing ``message`` mirrors errors.Wrap, where the message is the
    underlying error's text. A pair whose code cfssl never produces raises ``ValueError``, and so does a
    Wrap-only code (:data:`WRAP_ONLY`) without a message; a category or reason of the wrong type raises
    ``TypeError``: both are programming errors, found by the tests rather than by users.
    """

    @overload
    def __init__(self, category: Code, reason: str | None = None, message: str | None = None, *, hint: str | None = None) -> None: ...

    @overload
    def __init__(self, category: Category, reason: int = ..., message: str | None = None, *, hint: str | None = None) -> None: ...

    def __init__(
        self, category: Category | Code, reason: int | str | None = None, message: str | None = None, *, hint: str | None = None
    ) -> None:
        code = _code_of(category, reason)
        if isinstance(reason, str):  # CfsslError(Code.X, "the wrapped error's text")
            if message is not None:
                raise TypeError(f"CfsslError({code.name}, ...): the message is given twice")
            message = reason
        if message is None:
            fixed = _MESSAGES.get(code)
            if fixed is None:
                raise ValueError(f"cfssl code {int(code)} ({code.name}) has no fixed message: pass the wrapped error's text")
            message = fixed
        super().__init__(message)  # first: a subclass that is also a PlainError (InputTooLarge) sets defaults there
        self.category = code.category
        self.reason = code.reason
        self.code = int(code)
        self.message = message
        self.hint = hint

    def to_json(self) -> str:
        """The compact JSON cfssl prints on stderr: ``{"code":N,"message":"..."}``."""
        return go_json_dumps({"code": self.code, "message": self.message})

    def __str__(self) -> str:
        return self.to_json()


class Unavailable(CfsslError):
    """A cfssl-coded failure of a service that cannot be reached right now: the certificate database's server
    is down, restarting or unreachable (code 11000 with the driver's text).

    The CLI prints it as any :class:`CfsslError`. The API answers it with HTTP 503 and ``Retry-After`` instead
    of cfssl's 400 (our deliberate difference): the request was fine and may be sent again, and a load balancer
    must not count it as the client's fault.
    """

    status = 503


def _code_of(category: Category | Code, reason: int | str | None) -> Code:
    """The :class:`Code` of a constructor's arguments; TypeError/ValueError for what cfssl never produces."""
    if isinstance(category, Code):
        if reason is not None and not isinstance(reason, str):
            raise TypeError(f"CfsslError({category.name}, ...): a Code takes no reason, only a message")
        return category
    if isinstance(reason, (bool, str)):
        raise TypeError(f"CfsslError reason must be an int (a Reason), not {type(reason).__name__}")
    base = Category(category)  # ValueError for anything that is no category
    total = int(base) + int(reason or 0)
    try:
        return Code(total)
    except ValueError:
        raise ValueError(f"cfssl has no error code {total} ({base.name} + reason {int(reason or 0)})") from None


class PlainError(Error):
    """An untyped error that cfssl reports as plain text (reference §5.5); exit status 1 on the CLI.

    In the API it is cfssl's "any other Go error": HTTP ``status`` 500 with code 0, as cfssl answers the same
    failure. A site where cfsslpy deliberately answers otherwise passes another ``status`` (a 503 for a
    store that is unavailable, say): the envelope code is then that status, as for :class:`ApiError`.
    """

    status: int = 500

    def __init__(self, message: str, *, status: int = 500, hint: str | None = None) -> None:
        self.message = message
        self.status = status
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        return self.message


class UsageError(Error):
    """Wrong command-line usage: the CLI prints the message and the usage, exit status 2."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message)


# How much of a value from a request (or a remote peer) a log line carries: enough to recognise it,
# never enough for one request to write a 200 KB line.
LOG_VALUE_LIMIT = 128
LOG_FIELD_LIMIT = 256  # one access-log field (path, method, address, CN)


# printable ASCII but space, '"', '=' and '\\': a value made only of these needs no quotes
_LOGFMT_BARE = re.compile(r"[\x21\x23-\x3c\x3e-\x5b\x5d-\x7e]+")


def logfmt(value: str, limit: int = LOG_FIELD_LIMIT) -> str:
    """A logfmt field value, at most ``limit`` characters of it: bare when plain, else JSON-quoted, so that a
    request path or a certificate name can neither forge log lines nor flood the log."""
    value = value[:limit]
    if _LOGFMT_BARE.fullmatch(value):
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
