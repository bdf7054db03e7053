"""Signing through a remote cfssl server: the client side of ``/sign``, ``/authsign`` and ``/info`` (reference §2.4).

A remote is a comma-separated, ordered failover group of addresses, each normalised as follows:

=====================  ===================================  ==========================================
written                used as                              cfssl
=====================  ===================================  ==========================================
``ca.example``         ``http://ca.example:8888``           same
``ca.example:9000``    ``http://ca.example:9000``           same
``10.0.0.1:9000``      ``http://10.0.0.1:9000``             URL parse error: 5300 / info panics
``[::1]:9000``         ``http://[::1]:9000``                same
``::1``, ``[::1]``     ``http://[::1]:8888``                port 80 / parse error
``http(s)://h[:p]/x``  as given (port 80/443 by default)    same; ``/x`` is kept as a path prefix
``ftp://h``            refused (5300)                       silently turned into ``http://h``
=====================  ===================================  ==========================================

Security-relevant behaviour:

* HTTPS remotes are verified against ``-tls-remote-ca`` (only that bundle) or else the system roots; host
  names are checked. A client certificate (``-mutual-tls-client-cert``/``-key``) is offered when given.
* Every request has a timeout (30 s by default, for connecting, sending and reading together); responses
  over 16 MiB are refused; redirects are not followed (a 3xx is an HTTP error, 7400). Requests go through
  :func:`cfsslpy.net.fetch`: environment proxies (``https_proxy``, ``no_proxy``...) apply as in Go's default
  client, never to a loopback remote.
* With an auth key (profile ``auth_remote``), the request goes to ``/authsign`` with
  ``token = HMAC-SHA256(key, request bytes)`` and the current Unix ``timestamp``. Keys and tokens are
  never logged.
* The certificate a remote returns must parse, and must certify the public key of the CSR that was sent.

Failover: the next address is tried when one cannot be reached (connection refused, DNS failure, TLS
failure, timeout) or answers 5xx; a 4xx answer or a ``success: false`` envelope is final. (cfssl tries
the next address on any error.)

Errors (code, message), as cfssl's client reports them:

* no address reachable: 7400 ``failed POST to <url>: <reason>`` (the last address's);
* non-200 answer: 7400 with the raw response body as message;
* the body is not JSON / not an envelope: 7200 with Go's JSON error;
* ``success: false``: 7500 with the first error's message (7500's fixed message when there is none);
* a result without a certificate: 7400 ``response doesn't contain certificate.`` / ``response is
  formatted improperly`` (authsign: 7200 ``API client JSON config error``, as cfssl);
* an address that cannot be used: 5300 ``failed to connect to remote`` (the detail is logged).

Our additions (cfssl has no such checks): a certificate that does not parse is 1002/1003 (cfssl's ``info``
codes; its ``sign`` prints whatever it got); one for another public key is 7500; a response over the
size cap is 7300.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cfsslpy import __version__, auth, net
from cfsslpy.config import Signing, SigningProfile
from cfsslpy.errors import Category, CfsslError, PlainError, Reason, go_json_dumps, log_value
from cfsslpy.golang.decode import BOOL, INT, RAW, STRING, GoStruct, Slice, decode
from cfsslpy.golang.json import JSONDecodeError, loads
from cfsslpy.keys import is_dsa
from cfsslpy.pem import parse_certificate_pem, parse_csr_pem
from cfsslpy.signer import SignerInfo, SignRequest, SubjectOverride
from cfsslpy.x509util import rfc3339

if TYPE_CHECKING:  # http.client and ssl cost ~15 ms to import: only commands that talk to a remote pay for them
    import ssl

log = logging.getLogger(__name__)

DEFAULT_PORT = 8888
DEFAULT_TIMEOUT = 30.0
MAX_RESPONSE = 16 << 20
API_PREFIX = "/api/v1/cfssl/"

_HOSTNAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_.])?")


# ---------------------------------------------------------------------------------------------------------
# Addresses


@dataclass(frozen=True)
class RemoteURL:
    """One normalised remote address: scheme, host (IPv6 without brackets), port and a path prefix."""

    scheme: str
    host: str
    port: int
    path: str = ""

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.path}"

    def endpoint(self, name: str) -> str:
        """The full URL of API endpoint ``name`` (``sign``, ``authsign``, ``info``)."""
        return f"{self}{API_PREFIX}{name}"


def parse_remote(text: str) -> RemoteURL:
    """Normalise one remote address (table in the module docstring); ValueError says what is wrong."""
    addr = text.strip()
    if not addr:
        raise ValueError("empty remote address")
    if not addr.isascii() or any(c.isspace() for c in addr):
        raise ValueError("a remote address is ASCII without spaces (write IDN host names as xn--)")
    if "://" in addr:
        return _parse_url(addr)
    if "/" in addr or "?" in addr or "#" in addr or "@" in addr:
        raise ValueError("a path needs a scheme: write http://host:port/path")
    if addr.startswith("["):
        close = addr.find("]")
        if close < 0:
            raise ValueError("missing ']' in IPv6 address")
        host, rest = addr[1:close], addr[close + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError("unexpected text after ']'")
        _check_ipv6(host)
        return RemoteURL("http", host, _port(rest[1:]) if rest else DEFAULT_PORT)
    if addr.count(":") > 1:
        _check_ipv6(addr)  # a bare IPv6 address, no port
        return RemoteURL("http", addr, DEFAULT_PORT)
    host, sep, port = addr.partition(":")
    _check_host(host)
    return RemoteURL("http", host.lower(), _port(port) if sep else DEFAULT_PORT)


def parse_remote_group(text: str) -> tuple[RemoteURL, ...]:
    """A comma-separated remote string: the ordered failover group."""
    return tuple(parse_remote(part) for part in text.split(","))


def _parse_url(addr: str) -> RemoteURL:
    parts = urlsplit(addr)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"unsupported scheme {parts.scheme!r}: use http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials in a remote URL are not supported")
    if parts.query or parts.fragment:
        raise ValueError("a remote URL has no query or fragment")
    host = parts.hostname or ""
    if ":" in host:
        _check_ipv6(host)
    else:
        _check_host(host)
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port is not a number in 1-65535") from None
    if port == 0:
        raise ValueError("the port is not a number in 1-65535")
    default = 443 if scheme == "https" else 80
    # cfssl appends "/api/v1/cfssl/<name>" to the URL as written; a trailing slash would double it.
    return RemoteURL(scheme, host, port or default, parts.path.rstrip("/"))


def _check_host(host: str) -> None:
    if not host or not _HOSTNAME.fullmatch(host) or ".." in host:
        raise ValueError(f"{host!r} is not a host name or IP address")


def _check_ipv6(host: str) -> None:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IPv6 address") from None


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError("the port is not a number in 1-65535")
    return int(text)


# ---------------------------------------------------------------------------------------------------------
# TLS


@dataclass(frozen=True)
class RemoteTLS:
    """What to trust for HTTPS remotes (``ca_file``, else the system roots) and which client certificate to show."""

    ca_file: str = ""
    client_cert: str = ""
    client_key: str = ""

    def context(self) -> ssl.SSLContext:
        """A verifying client context (TLS 1.2+, host names checked).

        Files are read as cfssl reads them: unreadable -> ``open <path>: ...``; a bundle without any
        certificate -> ``failed to load cert pool`` (plain errors).
        """
        import ssl

        from cfsslpy.inputs import read_input

        if bool(self.client_cert) != bool(self.client_key):
            raise PlainError("a TLS client certificate needs its key, and a key its certificate")
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH) if not self.ca_file else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.ca_file:
            bundle = read_input(self.ca_file, allow_prefixes=False)
            try:
                ctx.load_verify_locations(cadata=_pem_certificates(bundle))
            except (ssl.SSLError, ValueError):
                raise PlainError("failed to load cert pool") from None
        if self.client_cert:
            read_input(self.client_cert, allow_prefixes=False)  # Go's wording when a file is missing
            read_input(self.client_key, allow_prefixes=False)
            try:
                # An encrypted key must not make OpenSSL prompt on the terminal: an empty password fails instead.
                ctx.load_cert_chain(self.client_cert, self.client_key, password="")
            except (ssl.SSLError, ValueError) as exc:
                raise PlainError(f"tls: failed to load the client certificate and key: {_ssl_reason(exc)}") from None
        return ctx


def _pem_certificates(bundle: bytes) -> str:
    """The CERTIFICATE blocks of a PEM bundle (OpenSSL refuses a bundle with other blocks mixed in)."""
    blocks = re.findall(rb"-----BEGIN CERTIFICATE-----\r?\n.*?-----END CERTIFICATE-----", bundle, re.S)
    if not blocks:
        raise ValueError("no certificate")
    return b"\n".join(blocks).decode("ascii")


def _ssl_reason(exc: BaseException) -> str:
    import ssl

    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message or exc}"
    if isinstance(exc, ssl.SSLEOFError):
        return "unexpected EOF from the server (does it require a client certificate?)"
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        if "_ALERT_" in reason:  # the server refused us: SSLV3_ALERT_BAD_CERTIFICATE -> "remote error: bad certificate"
            return "remote error: " + reason.split("_ALERT_", 1)[1].lower().replace("_", " ")
        return reason
    return str(exc)


# ---------------------------------------------------------------------------------------------------------
# One call on a failover group


class _Unreachable(Exception):
    """This address could not be used; the next one may be."""

    def __init__(self, error: CfsslError) -> None:
        super().__init__(error.message)
        self.error = error


class RemoteClient:
    """POSTs JSON to the cfssl API of an ordered group of addresses and unwraps the response envelope."""

    def __init__(self, group: tuple[RemoteURL, ...], *, tls: ssl.SSLContext | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.group = group
        self.tls = tls
        self.timeout = timeout

    def call(self, endpoint: str, body: bytes) -> Any:
        """The ``result`` of a successful envelope (see the module docstring for every failure)."""
        last: CfsslError | None = None
        for i, url in enumerate(self.group):
            try:
                return self._call_one(url, endpoint, body)
            except _Unreachable as exc:
                last = exc.error
                if i + 1 < len(self.group):
                    log.warning("%s; trying %s", exc.error.message, self.group[i + 1])
        assert last is not None
        raise last

    def _call_one(self, url: RemoteURL, endpoint: str, body: bytes) -> Any:
        target = url.endpoint(endpoint)
        status, data = self._post(url, endpoint, body)
        if status != 200:
            log.error("http error with %s (HTTP %d)", target, status)
            error = CfsslError(Category.API_CLIENT, Reason.CLIENT_HTTP_ERROR, data.decode("utf-8", "replace"))
            if status >= 500:
                raise _Unreachable(error)
            raise error
        return _unwrap(data)

    def _post(self, url: RemoteURL, endpoint: str, body: bytes) -> tuple[int, bytes]:
        """One POST through :func:`cfsslpy.net.fetch`: no redirects (a 3xx is an HTTP error), the size cap,
        environment proxies (never for loopback), the verifying TLS context for https."""
        target = url.endpoint(endpoint)
        if url.scheme == "https" and self.tls is None:
            self.tls = RemoteTLS().context()
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"cfsslpy/{__version__}",
            "Connection": "close",
        }
        log.debug("POST %s", target)
        try:
            response = net.fetch(
                target, method="POST", body=body, headers=headers, max_bytes=MAX_RESPONSE, timeout=self.timeout, redirects=0, tls=self.tls
            )
        except net.TooLarge:
            raise CfsslError(
                Category.API_CLIENT, Reason.IO_ERROR, f"the response of {target} is larger than {MAX_RESPONSE >> 20} MiB"
            ) from None
        except net.FetchError as exc:
            raise _Unreachable(
                CfsslError(Category.API_CLIENT, Reason.CLIENT_HTTP_ERROR, f"failed POST to {target}: {self._reason(exc.cause or exc, url)}")
            ) from exc
        return response.status, response.body

    def _reason(self, exc: BaseException, url: RemoteURL) -> str:
        import socket
        import ssl

        if isinstance(exc, ssl.SSLError):
            return f"tls: {_ssl_reason(exc)}"
        if isinstance(exc, TimeoutError):
            return f"timed out after {self.timeout:g}s"
        if isinstance(exc, ConnectionRefusedError):
            return f"dial tcp {url.netloc}: connect: connection refused"
        if isinstance(exc, socket.gaierror):
            return f"dial tcp: lookup {url.host}: {exc.strerror or exc}"
        if isinstance(exc, OSError):
            return exc.strerror or str(exc) or type(exc).__name__
        return f"{type(exc).__name__}: {exc}".rstrip(": ")


_MESSAGE = GoStruct("api.ResponseMessage", {"code": INT, "message": STRING})
_RESPONSE = GoStruct("api.Response", {"success": BOOL, "result": RAW, "errors": Slice(_MESSAGE), "messages": Slice(_MESSAGE)})


def _unwrap(data: bytes) -> Any:
    """cfssl's ``api.Response`` envelope: the result, or 7200 (not an envelope) / 7500 (``success: false``)."""
    try:
        f = decode(_RESPONSE, loads(data), full_paths=True, null=False)
    except JSONDecodeError as exc:
        log.debug("unable to parse the remote's response body")
        raise CfsslError(Category.API_CLIENT, Reason.JSON_ERROR, str(exc)) from None
    messages = [(m["code"], m["message"]) for m in f["errors"] or ()]
    for m in f["messages"] or ():
        if m["message"]:
            log.warning("remote: %s", log_value(m["message"]))
    success = f["success"]
    result = f.get("result")
    if not success or result is None:
        if messages:
            raise CfsslError(Category.API_CLIENT, Reason.SERVER_REQUEST_FAILED, messages[0][1])
        raise CfsslError(Category.API_CLIENT, Reason.SERVER_REQUEST_FAILED)
    return result


# ---------------------------------------------------------------------------------------------------------
# Requests


def _subject_json(subject: SubjectOverride) -> dict[str, Any]:
    """cfssl's ``signer.Subject`` as Go marshals it (every ``csr.Name`` field present)."""
    names = []
    for n in subject.names:
        entry: dict[str, Any] = {"C": n.C, "ST": n.ST, "L": n.L, "O": n.O, "OU": n.OU, "SerialNumber": ""}
        if n.E:
            entry["E"] = n.E
        if n.OID:
            entry["OID"] = dict(n.OID)
        names.append(entry)
    return {"CN": subject.CN, "names": names, "SerialNumber": subject.SerialNumber}


def sign_request_json(req: SignRequest) -> bytes:
    """The JSON cfssl's client sends for a sign request, in its field order and with Go's escaping.

    ``hosts`` is ``null`` when there is no override; ``subject``, ``serial`` and ``extensions`` only appear
    when set; ``NotBefore``/``NotAfter`` (newest cfssl) only when the request fixes them.
    """
    obj: dict[str, Any] = {
        "hosts": None if req.hosts is None else list(req.hosts),
        "certificate_request": req.request.decode("utf-8", "replace"),
    }
    if req.subject is not None:
        obj["subject"] = _subject_json(req.subject)
    obj["profile"] = req.profile
    obj["crl_override"] = req.crl_override
    obj["label"] = req.label
    if req.serial is not None:
        obj["serial"] = req.serial
    if req.extensions:
        obj["extensions"] = [{"id": e.oid.dotted_string, "critical": e.critical, "value": e.value.hex()} for e in req.extensions]
    if req.not_before is not None:
        obj["NotBefore"] = rfc3339(req.not_before)
    if req.not_after is not None:
        obj["NotAfter"] = rfc3339(req.not_after)
    return go_json_dumps(obj).encode("utf-8")


def authenticated_request_json(request: bytes, key: bytes, *, now: float | None = None) -> bytes:
    """cfssl's ``auth.AuthenticatedRequest``: ``{"timestamp", "token", "request"}`` (standard base64)."""
    token = auth.token(key, request)
    obj = {
        "timestamp": int(time.time() if now is None else now),
        "token": base64.b64encode(token).decode("ascii"),
        "request": base64.b64encode(request).decode("ascii"),
    }
    return go_json_dumps(obj).encode("utf-8")


# ---------------------------------------------------------------------------------------------------------
# The signer


def connect_error(detail: str) -> CfsslError:
    """cfssl's error for a remote that cannot be used at all (5300); the detail goes to the log."""
    log.error("bad remote address: %s", detail)
    return CfsslError(Category.POLICY, Reason.INVALID_REQUEST, "failed to connect to remote")


class RemoteSigner:
    """Forwards sign and info requests to the remote of the selected profile.

    The profile is the named one, or the default one for an empty name or one the local configuration does
    not define (the remote resolves it: :meth:`~cfsslpy.config.Signing.forwarding_profile`); its
    ``remote_server`` is the failover group, and its ``auth_remote`` key, when present,
    makes signing go through ``/authsign``. ``info`` is never authenticated (as in cfssl).

    Every profile's remote is parsed when the signer is built, so a bad address fails early (5300).
    """

    def __init__(self, policy: Signing, *, tls: RemoteTLS | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.policy = policy
        self.timeout = timeout
        self._clients: dict[str, RemoteClient] = {}
        profiles = [policy.default, *policy.profiles.values()]
        servers = {p.remote_server for p in profiles if p.remote_server}
        groups: dict[str, tuple[RemoteURL, ...]] = {}
        for server in sorted(servers):
            try:
                groups[server] = parse_remote_group(server)
            except ValueError as exc:
                raise connect_error(f"{server!r}: {exc}") from None
        https = any(u.scheme == "https" for g in groups.values() for u in g)
        context = (tls or RemoteTLS()).context() if https or (tls is not None and tls != RemoteTLS()) else None
        self._clients = {server: RemoteClient(group, tls=context, timeout=timeout) for server, group in groups.items()}

    def remotes(self) -> Mapping[str, tuple[RemoteURL, ...]]:
        """Remote string -> its normalised failover group (for logs and ``serve``'s startup line)."""
        return {server: client.group for server, client in self._clients.items()}

    def _client(self, profile: SigningProfile, name: str) -> RemoteClient:
        client = self._clients.get(profile.remote_server)
        if client is None:
            raise connect_error(f"profile {name or 'default'!r} has no remote")
        return client

    def profile(self, name: str) -> SigningProfile:
        """The profile whose remote signs for ``name`` (never 5400 here: the remote resolves the name)."""
        return self.policy.forwarding_profile(name)

    def sign(self, req: SignRequest) -> x509.Certificate:
        profile = self.profile(req.profile)
        client = self._client(profile, req.profile)
        request = sign_request_json(req)
        key = profile.auth_remote_key_bytes
        if key is not None:
            result = client.call("authsign", authenticated_request_json(request, key))
            if not isinstance(result, dict) or not isinstance(result.get("certificate"), str):
                raise CfsslError(Category.API_CLIENT, Reason.JSON_ERROR)
        else:
            result = client.call("sign", request)
            if not isinstance(result, dict):
                raise CfsslError(Category.API_CLIENT, Reason.CLIENT_HTTP_ERROR, "response is formatted improperly")
        pem = result.get("certificate")
        if not isinstance(pem, str) or not pem:
            raise CfsslError(Category.API_CLIENT, Reason.CLIENT_HTTP_ERROR, "response doesn't contain certificate.")
        cert = _parse_remote_certificate(pem)
        _check_public_key(cert, req.request)
        log.info("the remote signed certificate with serial number %d", cert.serial_number)
        return cert

    def info(self, profile_name: str = "", label: str = "") -> SignerInfo:
        """The remote's answer to ``/info`` for this label and profile (cfssl's ``info -remote``)."""
        profile = self.profile(profile_name)
        client = self._client(profile, profile_name)
        result = client.call("info", go_json_dumps({"label": label, "profile": profile_name}).encode("utf-8"))
        improper = CfsslError(Category.API_CLIENT, Reason.CLIENT_HTTP_ERROR, "response is formatted improperly")
        if not isinstance(result, dict):
            raise improper
        pem, usages, expiry = result.get("certificate", ""), result.get("usages") or [], result.get("expiry") or ""
        if not isinstance(pem, str) or not isinstance(usages, list) or not all(isinstance(u, str) for u in usages):
            raise improper
        if not isinstance(expiry, str):
            raise improper
        return SignerInfo(certificate=_parse_remote_certificate(pem), usages=list(usages), expiry=expiry)


def _parse_remote_certificate(pem: str) -> x509.Certificate:
    try:
        return parse_certificate_pem(pem.encode("utf-8", "replace"))
    except CfsslError:
        log.error("the remote returned a certificate that does not parse")
        raise


def _check_public_key(cert: x509.Certificate, csr_pem: bytes) -> None:
    """Refuse a certificate for another key than the CSR's (a misbehaving or hostile remote)."""
    try:
        csr = parse_csr_pem(csr_pem, check_signature=False)
    except CfsslError:
        return  # the remote accepted what we cannot parse; nothing to compare with
    if is_dsa(csr):
        return  # nor can we load a DSA key (deprecated in cryptography 51): the remote refuses or signs it
    der = serialization.Encoding.DER
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if is_dsa(cert) or cert.public_key().public_bytes(der, spki) != csr.public_key().public_bytes(der, spki):
        raise CfsslError(Category.API_CLIENT, Reason.SERVER_REQUEST_FAILED, "the remote returned a certificate for another public key")
