"""TLS for :mod:`cfsslpy.api.server`: the server's ``SSLContext`` (``-tls-cert``, ``-tls-key``,
``-mutual-tls-ca``, ``-min-tls-version``) and cfssl's ``-mutual-tls-cn`` check.

Minimum version TLS 1.2 (``-min-tls-version 1.3`` raises it); client certificates are required and verified
against ``-mutual-tls-ca``; ``-mutual-tls-cn REGEX`` answers 403 ``Invalid CN`` to a client whose leaf CN
does not match (regex search), as cfssl does.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cfsslpy.api.wire import ERROR_HEADERS
from cfsslpy.api.wsgi import CLIENT_CN, WSGIApp
from cfsslpy.errors import LOG_FIELD_LIMIT, PlainError, UsageError, logfmt

log = logging.getLogger("cfsslpy.api.server")

_TLS_VERSIONS = {"": ssl.TLSVersion.TLSv1_2, "1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


@dataclass(frozen=True)
class TLSOptions:
    """HTTPS settings (``-tls-cert``, ``-tls-key``, ``-mutual-tls-ca``, ``-mutual-tls-cn``, ``-min-tls-version``)."""

    cert: str
    key: str
    client_ca: str = ""
    client_cn: str = ""
    min_version: str = ""


def tls_context(options: TLSOptions) -> ssl.SSLContext:
    """The server's SSLContext; every file is read now, so a bad one fails at startup, not at the first client.

    cfssl maps an unknown ``-min-tls-version`` (even ``1.3``) to TLS 1.0; we accept ``1.2`` and ``1.3``
    only and refuse anything below TLS 1.2.
    """
    if options.min_version not in _TLS_VERSIONS:
        if options.min_version in ("1.0", "1.1"):
            raise UsageError(f"-min-tls-version {options.min_version}: TLS versions below 1.2 are not supported")
        raise UsageError(f"-min-tls-version must be 1.2 or 1.3, not {options.min_version!r}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _TLS_VERSIONS[options.min_version]
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_SINGLE_ECDH_USE
    try:
        context.load_cert_chain(options.cert, options.key)
    except (OSError, ssl.SSLError) as exc:
        raise PlainError(f"failed to load the TLS certificate {options.cert} and key {options.key}: {reason(exc)}") from None
    if options.client_ca:
        try:
            context.load_verify_locations(cafile=options.client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise PlainError(f"failed to load mutual TLS CA file: {reason(exc)}") from None
        context.verify_mode = ssl.CERT_REQUIRED
    elif options.client_cn:
        raise UsageError("-mutual-tls-cn needs -mutual-tls-ca")
    return context


def compile_cn_pattern(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise PlainError(f"malformed CN regex: {exc}") from None


def reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).lower().replace("_", " ")
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]  # Go's wording: "bind: address already in use"
    return str(exc)


def require_client_cn(app: WSGIApp, pattern: re.Pattern[str]) -> WSGIApp:
    """cfssl's ``-mutual-tls-cn``: 403 ``Invalid CN`` (plain text, as Go's http.Error) unless the CN matches."""
    body = b"Invalid CN\n"
    headers = [*ERROR_HEADERS, ("Content-Length", str(len(body)))]

    def check(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        cn = environ.get(CLIENT_CN)
        if cn is not None and pattern.search(cn):
            return app(environ, start_response)
        cn_text = json.dumps((cn or "")[:LOG_FIELD_LIMIT])  # always quoted (an empty CN shows as "")
        log.warning("Rejected client cert CN %s does not match regex %s", cn_text, logfmt(pattern.pattern))
        start_response("403 Forbidden", list(headers))
        return [body]

    return check
