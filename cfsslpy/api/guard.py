"""Refusing what a web browser sends on behalf of another site: cross-site requests and DNS rebinding.

cfssl's clients (``cfssl gencert/sign/info -remote``, 1.2.0 and 1.6.5), cfsslpy's remote client and the web
UI send every POST as ``Content-Type: application/json``, from no web origin or from the server's own. A page
on another site that the operator has open can make the browser send a "simple" request (``text/plain``,
``application/x-www-form-urlencoded``, ``multipart/form-data``, or no type) without asking the server first,
and a page on a name the attacker re-points at 127.0.0.1 (DNS rebinding) even reads the answers. So:

* a request that is not GET or HEAD whose ``Sec-Fetch-Site`` is ``cross-site`` or ``same-site`` (another port
  on the same host is the same site), or whose ``Origin`` is ``null`` or names another host or port than the
  request's ``Host``, is refused: 403, code 403;
* the endpoints that create keys or certificates, sign or change the certificate database
  (:data:`STATE_CHANGING`) accept only ``application/json`` (parameters such as ``; charset=utf-8`` allowed);
  the other POST endpoints (info, certinfo, bundle) refuse a missing type and the simple types: 415, code 415.
  Any other type makes a browser ask first (a CORS preflight), which this server never grants;
* with a :class:`HostPolicy` (``serve`` always has one: the web UI is always on), the ``Host`` header must name
  this server, else 403, code 403.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import urlsplit

from cfsslpy.errors import ApiError

JSON_TYPE = "application/json"
# The endpoints that make keys or certificates, sign, or write the certificate database.
STATE_CHANGING = frozenset({"sign", "authsign", "newkey", "newcert", "init_ca", "revoke", "certadd", "ocspsign", "gencrl"})
# The request types a page on another origin can POST without a CORS preflight (and "no type").
SIMPLE_TYPES = frozenset({"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})
SAFE_METHODS = frozenset({"GET", "HEAD"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_ALLOWED_FETCH_SITES = frozenset({"", "same-origin", "none"})


def media_type(environ: dict[str, Any]) -> str:
    """The request's media type, lower case, without parameters; "" when there is no Content-Type."""
    return _media_type(str(environ.get("CONTENT_TYPE") or "")[:256])


@functools.lru_cache(maxsize=64)  # clients send the same few values; parsing one costs ~10 us
def _media_type(value: str) -> str:
    value = value.strip()
    if not value:
        return ""
    msg = Message()
    msg["Content-Type"] = value
    return msg.get_content_type()  # text/plain for a malformed value: refused below like text/plain


def check_content_type(name: str, environ: dict[str, Any]) -> None:
    """Raise 415 unless the POST body's type is one a browser cannot send cross-site without asking."""
    kind = media_type(environ)
    shown = kind or "none"
    if name in STATE_CHANGING:
        if kind != JSON_TYPE:
            raise ApiError(415, f"{name} requires Content-Type: application/json (got {shown})")
    elif kind in SIMPLE_TYPES:
        raise ApiError(415, f"{name} requires Content-Type: application/json (got {shown})")


def check_origin(environ: dict[str, Any]) -> None:
    """Raise 403 for a request with side effects that a browser sent from another site or origin."""
    if str(environ.get("REQUEST_METHOD", "")).upper() in SAFE_METHODS:
        return
    site = str(environ.get("HTTP_SEC_FETCH_SITE") or "").strip().lower()
    if site not in _ALLOWED_FETCH_SITES:
        raise ApiError(403, f"cross-origin request refused (Sec-Fetch-Site: {site[:32]})")
    origin = environ.get("HTTP_ORIGIN")
    if origin is None:
        return
    if not _same_origin(str(origin), environ):
        raise ApiError(403, "cross-origin request refused: the Origin header names another origin than this server")


def _same_origin(origin: str, environ: dict[str, Any]) -> bool:
    """Origin's host and port against the Host header's. The scheme is not compared: behind a TLS-terminating
    proxy a browser's https origin reaches this server as plain http with the same Host."""
    try:
        parts = urlsplit(origin.strip())
        host = _split_host(str(environ.get("HTTP_HOST") or ""))
        origin_port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return False
    if host is None or parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        return False
    name, port = host
    if _normal(parts.hostname) != name:
        return False
    return port is None or port == origin_port


def _split_host(value: str) -> tuple[str, int | None] | None:
    """(normalised host name, port or None) of a Host header (``[::1]:8888`` included); None when malformed."""
    # a server sees few distinct Host values, and urlsplit costs ~10 us: short ones are remembered
    return _split_host_cached(value) if len(value) <= 256 else _parse_host(value)


@functools.lru_cache(maxsize=256)
def _split_host_cached(value: str) -> tuple[str, int | None] | None:
    return _parse_host(value)


def _parse_host(value: str) -> tuple[str, int | None] | None:
    value = value.strip()
    if not value or any(c in value for c in "/?#@ \\"):
        return None
    try:
        parts = urlsplit("//" + value)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return _normal(parts.hostname), port


def _normal(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


@dataclass(frozen=True)
class HostPolicy:
    """The names a ``Host`` header may give: loopback addresses, ``localhost`` and ``*.localhost`` always,
    ``names`` (the bound address, the machine's host name, ``-allowed-hosts``), and any IP address when
    ``any_ip`` (a wildcard bind: an address cannot be re-pointed by DNS). ``any_host`` turns the check off."""

    names: frozenset[str] = frozenset()
    any_ip: bool = False
    any_host: bool = False

    @classmethod
    def for_bind(cls, address: str, allowed: str = "") -> HostPolicy:
        """The policy of a server bound to ``address`` with ``-allowed-hosts`` ``allowed`` (comma-separated;
        ``*`` allows any Host)."""
        extra = [name.strip() for name in allowed.split(",") if name.strip()]
        if "*" in extra:
            return cls(any_host=True)
        names = {_normal(name) for name in extra}
        bound = _normal(address.strip("[]")) if address else ""
        wildcard = bound in ("", "0.0.0.0", "::")
        if bound and not wildcard:
            names.add(bound)
        if not _is_loopback(bound):
            hostname = _normal(socket.gethostname())
            if hostname:
                names.update({hostname, hostname.split(".", 1)[0]})
        return cls(frozenset(names), any_ip=wildcard)

    def check(self, environ: dict[str, Any]) -> None:
        """Raise 403 unless the request's Host header names this server (a request without one passes:
        browsers always send it)."""
        if self.any_host:
            return
        value = environ.get("HTTP_HOST")
        if value is None:
            return
        host = _split_host(str(value))
        if host is None or not self.allows(host[0]):
            raise ApiError(403, "the Host header does not name this server (serve -allowed-hosts admits other names)")

    def allows(self, name: str) -> bool:
        if name in self.names or name == "localhost" or name.endswith(".localhost"):
            return True
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            return False
        return ip.is_loopback or self.any_ip


def _is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def is_loopback_bind(address: str) -> bool:
    """Whether ``serve -address`` is a loopback address or ``localhost``."""
    return _is_loopback(_normal(address.strip("[]")))
