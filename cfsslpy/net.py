"""Everything cfsslpy opens outbound: one HTTP :func:`fetch`, one TLS dialer (:func:`tls_peer_chain`) and serve's
outbound :class:`FetchPolicy`, so that redirects, proxies, size caps, timeouts and the allow-list are decided in
one place.

Who calls what, and with which bounds (each caller states them explicitly):

================  ==========================  =========  ==========  ========  ==========
caller            method, schemes             redirects  max bytes   timeout   policy
================  ==========================  =========  ==========  ========  ==========
bundler AIA       GET http                    3          1 MiB       bundle's  serve's
mkbundle          GET (CRL) / POST (OCSP)     10         64 MiB      5 s       none
CT submission     POST http(s)                10         64 KiB      30 s      none
remote signer     POST http(s), mutual TLS    0          16 MiB      30 s      none
certinfo/bundle   TLS handshake (no HTTP)     -          -           caller's  serve's
================  ==========================  =========  ==========  ========  ==========

Rules shared by every fetch:

* **Proxies** come from the environment as Go's ``http.ProxyFromEnvironment`` reads them (``HTTP_PROXY``,
  ``HTTPS_PROXY``, ``NO_PROXY`` or their lower-case forms; ``HTTP_PROXY`` is ignored under CGI), and never
  apply to ``localhost`` or a loopback address. Only ``http://`` proxies are supported. With a :class:`FetchPolicy` the connection is made directly: the
  policy's promise (the address checked is the address connected to) cannot hold through a proxy.
* **Redirects** (301, 302, 303, 307, 308) are followed up to ``redirects`` times, only to an allowed scheme;
  the next redirect is returned as the response (Go's ``ErrUseLastResponse``). A POST becomes a GET without
  a body on 301, 302 and 303, and is repeated on 307 and 308, as Go's client does.
* **Size**: a ``Content-Length`` over ``max_bytes`` is refused before the body is read; otherwise at most
  ``max_bytes + 1`` bytes are read, and one more than ``max_bytes`` is :class:`TooLarge`.
* **Time**: ``timeout`` bounds each request of a redirect chain as a whole (connect, send, every read), not
  each read separately, so a server dripping one byte at a time cannot hold a fetch open.

``http.client`` and ``ssl`` are imported when a connection is made, never at import time.
"""

from __future__ import annotations

import ipaddress
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cfsslpy.errors import Category, CfsslError, Reason

if TYPE_CHECKING:
    import http.client
    import socket
    import ssl

Connect = Callable[[tuple[str, int], float], Any]  # socket.create_connection's shape: ((host, port), timeout) -> socket

REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))
_CHUNK = 65536


# ---------------------------------------------------------------------------------------------------------
# Addresses, in Go's terms


def split_host_port(domain: str) -> tuple[str, str]:
    """Go ``net.SplitHostPort``, falling back to (domain, "443") like cfssl when it fails."""
    if domain.startswith("["):
        end = domain.find("]")
        if end > 0 and domain[end + 1 : end + 2] == ":" and ":" not in domain[end + 2 :]:
            return domain[1:end], domain[end + 2 :]
        return (domain[1:end] if end > 0 and end == len(domain) - 1 else domain), "443"
    if domain.count(":") == 1:
        host, _, port = domain.partition(":")
        return host, port
    return domain, "443"


def join_host_port(host: str, port: str) -> str:
    """Go ``net.JoinHostPort``: IPv6 literals in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_ip(host: str) -> bool:
    """Whether ``host`` is an IP literal (then no SNI is sent and no host name is checked)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (IPv6 in brackets or not): never proxied, as in Go."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _dial_error(message: str) -> CfsslError:
    return CfsslError(Category.DIAL, Reason.NONE, message)


# ---------------------------------------------------------------------------------------------------------
# serve's outbound policy


@dataclass(frozen=True)
class FetchPolicy:
    """Which addresses a server may open outbound connections to when a network client asks it to (serve's
    ``certinfo`` ``domain``, ``bundle`` ``domain`` and AIA fetches; ``-fetch-allow``).

    The default refuses loopback (127.0.0.0/8, ::1), link-local (169.254.0.0/16 with the cloud metadata
    address 169.254.169.254, fe80::/10) and unspecified addresses, IPv4-mapped ones included: a client must not
    reach the services of the server's own host. ``networks`` and ``names`` (an allow-list) replace that default:
    only addresses in ``networks``, or any address of a host name in ``names``, are dialled. ``disabled``
    refuses every fetch. The check is made on each address the name resolves to, and the connection is made to
    that checked address, so a DNS answer cannot swap in another one. The CLI does not use it.
    """

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    names: frozenset[str] = frozenset()
    disabled: bool = False

    @classmethod
    def parse(cls, text: str) -> FetchPolicy:
        """``-fetch-allow``: empty = the default, ``none`` = no fetches, else comma-separated CIDRs, addresses
        and host names."""
        entries = [e.strip() for e in text.split(",") if e.strip()]
        if not entries:
            return cls()
        if [e.lower() for e in entries] == ["none"]:
            return cls(disabled=True)
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        names: set[str] = set()
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                if entry.lower() == "none" or not re.fullmatch(r"[A-Za-z0-9_.-]{1,253}", entry):
                    raise CfsslError(Category.DIAL, Reason.NONE, f"invalid -fetch-allow entry {entry!r}") from None
                names.add(entry.lower().rstrip("."))
        return cls(tuple(networks), frozenset(names))

    @property
    def restricted(self) -> bool:
        return bool(self.networks or self.names)

    def permits(self, name: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """Whether ``address`` (one that ``name`` resolved to, or ``name`` itself) may be dialled."""
        if self.disabled:
            return False
        if self.restricted:
            return name.lower().rstrip(".") in self.names or any(address in net for net in self.networks)
        mapped = getattr(address, "ipv4_mapped", None)
        plain = mapped if mapped is not None else address
        return not (plain.is_loopback or plain.is_link_local or plain.is_unspecified)

    def connect(self, address: tuple[str, int], timeout: float) -> Any:
        """A connected socket to ``address`` (host, port), tried address by address as resolved, skipping the
        ones this policy refuses. Raises 6000 when none is permitted, or the resolver's / the last connect's
        ``OSError`` (which callers report in Go's words)."""
        import socket

        host, port = address
        if self.disabled:
            raise _dial_error(f"dial tcp {join_host_port(host, str(port))}: outbound connections are disabled (serve -fetch-allow none)")
        refused: list[str] = []
        last: OSError | None = None
        for family, kind, proto, _name, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
            ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if not self.permits(host, ip):
                refused.append(str(ip))
                continue
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(timeout)
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                last = exc
                continue
            return sock
        if last is not None:
            raise last
        raise _dial_error(
            f"dial tcp {join_host_port(host, str(port))}: refusing to connect to {', '.join(refused) or host}: "
            "not permitted by the server's fetch policy (serve -fetch-allow)"
        )


# ---------------------------------------------------------------------------------------------------------
# The TLS dialer


# OpenSSL reasons whose Go crypto/tls wording is known.
TLS_ERRORS = {
    "WRONG_VERSION_NUMBER": "tls: first record does not look like a TLS handshake",
    "UNEXPECTED_EOF_WHILE_READING": "EOF",
    "EOF": "EOF",
}


class HandshakeFailed(Exception):
    """The TLS handshake failed: ``message`` is Go's crypto/tls wording; ``verification`` is the certificate
    verification error when that is what failed (the caller words it, knowing what it asked to verify)."""

    def __init__(self, message: str, verification: ssl.SSLCertVerificationError | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.verification = verification


def port_number(port: str) -> int:
    """A port given as Go accepts it (a number or a service name); 6000 in Go's words when unknown."""
    import socket

    try:
        return int(port) if port.isdigit() else socket.getservbyname(port, "tcp")
    except OSError:
        raise _dial_error(f"dial tcp: lookup tcp/{port}: unknown port") from None


def dial(dial_host: str, port: int, *, timeout: float, connect: Connect | None = None) -> socket.socket:
    """A TCP connection to ``dial_host:port`` through ``connect`` (serve's :meth:`FetchPolicy.connect`; None dials
    any address); failures are 6000 in Go's words (``dial tcp 127.0.0.1:1: connect: connection refused``)."""
    import socket

    address = join_host_port(dial_host, str(port))
    try:
        sock: socket.socket = (connect or socket.create_connection)((dial_host, port), timeout)
    except socket.gaierror:
        raise _dial_error(f"dial tcp: lookup {dial_host}: no such host") from None
    except TimeoutError:
        raise _dial_error(f"dial tcp {address}: i/o timeout") from None
    except OSError as exc:
        raise _dial_error(f"dial tcp {address}: connect: {(exc.strerror or str(exc)).lower()}") from None
    return sock


def tls_peer_chain(
    host: str, dial_host: str, port: str, *, context: ssl.SSLContext, timeout: float, connect: Connect | None = None
) -> list[bytes]:
    """One TLS handshake with ``dial_host:port`` (SNI ``host`` unless it is an IP) under ``context``: the DER of
    the certificates the server presented, leaf first, never empty.

    ``timeout`` covers the connect and the handshake together. Dial, read and timeout failures are 6000
    :class:`~cfsslpy.errors.CfsslError`; a failed handshake is :class:`HandshakeFailed`.
    """
    import ssl

    address = join_host_port(dial_host, port)
    deadline = time.monotonic() + timeout
    sock = dial(dial_host, port_number(port), timeout=timeout, connect=connect)
    try:
        with sock:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            with context.wrap_socket(sock, server_hostname=None if is_ip(host) else host) as conn:
                ders = _peer_chain(conn)
    except ssl.SSLCertVerificationError as exc:
        raise HandshakeFailed(str(exc), exc) from None
    except TimeoutError:
        raise _dial_error(f"dial tcp {address}: i/o timeout") from None
    except ssl.SSLError as exc:
        raise HandshakeFailed(TLS_ERRORS.get(exc.reason or "", f"tls: {str(exc.reason or exc).lower()}")) from None
    except OSError as exc:
        raise _dial_error(f"read tcp {address}: {(exc.strerror or str(exc)).lower()}") from None
    if not ders:
        raise _dial_error("received no server certificates")
    return ders


def _peer_chain(conn: ssl.SSLSocket) -> list[bytes]:
    """DER of the certificates the server sent, leaf first (the whole chain where Python exposes it:
    ``get_unverified_chain`` is public from 3.13, private on 3.10..3.12; otherwise only the leaf)."""
    import ssl

    getter = getattr(conn, "get_unverified_chain", None)
    if getter is None:
        sslobj = getattr(conn, "_sslobj", None)
        getter = getattr(sslobj, "get_unverified_chain", None)
    if getter is not None:
        try:
            chain = getter()
        except (ssl.SSLError, ValueError, AttributeError):
            chain = None
        if chain:
            return [item if isinstance(item, bytes) else item.public_bytes(ssl._ssl.ENCODING_DER) for item in chain]  # type: ignore[attr-defined]
    der = conn.getpeercert(binary_form=True)
    return [der] if der else []


# ---------------------------------------------------------------------------------------------------------
# HTTP


class FetchError(Exception):
    """A fetch that produced no response: ``message`` says why; ``cause`` is the underlying exception."""

    def __init__(self, url: str, message: str, cause: BaseException | None = None) -> None:
        super().__init__(f"{url}: {message}")
        self.url = url
        self.message = message
        self.cause = cause


class Refused(FetchError):
    """Not fetched by rule: a scheme not allowed (a redirect's included), or serve's fetch policy."""


class Unreachable(FetchError):
    """No answer: DNS, connect, TLS, proxy or timeout failure, or a broken HTTP exchange (``cause``)."""


class TooLarge(FetchError):
    """The response body is longer than ``max_bytes`` (announced or read)."""


class BadStatus(FetchError):
    """:func:`fetch_body`: the server answered, with a status outside 2xx."""

    def __init__(self, url: str, status: int) -> None:
        super().__init__(url, f"HTTP {status}")
        self.status = status


@dataclass(frozen=True)
class Response:
    """An HTTP answer of any status: the final ``url`` (after redirects), ``status``, ``headers`` (lower-case
    names) and the whole ``body``."""

    url: str
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


def proxy_for(url: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The proxy URL the environment names for ``url`` as Go's ``http.ProxyFromEnvironment`` reads it, or None:
    none set, ``NO_PROXY`` matches, or the host is ``localhost`` / a loopback address.

    ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``NO_PROXY`` (upper case first, then lower case); ``HTTP_PROXY`` is
    ignored when ``REQUEST_METHOD`` is set (CGI). ``NO_PROXY`` entries: ``*``, IP addresses, CIDRs, and
    domains matching themselves and their subdomains (``.example.com`` only the subdomains), each with an
    optional ``:port``.
    """
    import os

    env = os.environ if environ is None else environ
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host or is_loopback(host):
        return None
    scheme = parts.scheme.lower()
    if scheme == "https":
        proxy = env.get("HTTPS_PROXY") or env.get("https_proxy") or ""
    elif scheme == "http" and "REQUEST_METHOD" not in env:
        proxy = env.get("HTTP_PROXY") or env.get("http_proxy") or ""
    else:
        proxy = ""
    port = str(parts.port or (443 if scheme == "https" else 80))
    if not proxy or _no_proxy_matches(env.get("NO_PROXY") or env.get("no_proxy") or "", host, port):
        return None
    return proxy if "://" in proxy else "http://" + proxy  # Go: a proxy without a scheme is http


def _no_proxy_matches(no_proxy: str, host: str, port: str) -> bool:
    """Go's ``httpproxy`` NO_PROXY matching for ``host`` (lower case, IPv6 without brackets) and ``port``."""
    ip = ipaddress.ip_address(host.split("%", 1)[0]) if is_ip(host) else None
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if entry == "*":
            return True
        if not entry:
            continue
        entry_port = ""
        if entry.count(":") == 1 or (entry.startswith("[") and "]:" in entry):
            entry, _, entry_port = entry.rpartition(":")
        entry = entry.strip("[]")
        if entry_port and entry_port != port:
            continue
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            network = None
        if network is not None:  # an address or a CIDR matches IP hosts only
            if ip is not None and ip in network:
                return True
            continue
        name = entry[1:] if entry.startswith("*.") else entry
        if host.endswith(name if name.startswith(".") else "." + name) or (not entry.startswith(".") and host == name.lstrip(".")):
            return True
    return False


def fetch(
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    schemes: tuple[str, ...] = ("http", "https"),
    redirects: int = 10,
    proxies: bool = True,
    method: str = "GET",
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    connect: Connect | None = None,
    tls: ssl.SSLContext | None = None,
) -> Response:
    """One HTTP exchange, redirects followed (see the module docstring for every rule): the response, whatever
    its status, or :class:`Refused` / :class:`Unreachable` / :class:`TooLarge`.

    ``connect`` is serve's :meth:`FetchPolicy.connect` (then no proxy is used); ``tls`` the context for
    ``https`` (the system's verifying default when None); ``proxies=False`` ignores the environment.
    """
    send_headers = dict(headers or {})
    for _hop in range(redirects + 1):
        parts = _check_url(url, schemes)
        response = _exchange(parts, method, body, send_headers, max_bytes, timeout, connect, tls, proxies and connect is None)
        location = response.headers.get("location", "")
        if response.status not in REDIRECT_STATUSES or not location or _hop == redirects:
            return response
        url = urllib.parse.urljoin(url, location)
        if response.status in (301, 302, 303) and method not in ("GET", "HEAD"):
            method, body = "GET", None
            send_headers = {k: v for k, v in send_headers.items() if k.lower() not in ("content-type", "content-length")}
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns on its last hop


def fetch_body(
    url: str, body: bytes | None = None, content_type: str = "", *, max_bytes: int, timeout: float, redirects: int = 10
) -> bytes:
    """POST ``body`` as ``content_type`` (or GET when there is no body) to an http(s) URL with environment proxies,
    the way Go's ``http.Get`` / ``http.Post`` do: the body of a 2xx answer, else :class:`BadStatus` (or any other
    :class:`FetchError`)."""
    response = fetch(
        url,
        method="GET" if body is None else "POST",
        body=body,
        headers={"Content-Type": content_type} if content_type else None,
        max_bytes=max_bytes,
        timeout=timeout,
        redirects=redirects,
    )
    if not 200 <= response.status < 300:
        raise BadStatus(response.url, response.status)
    return response.body


def _check_url(url: str, schemes: tuple[str, ...]) -> urllib.parse.SplitResult:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in schemes:
        raise Refused(url, f"only {' or '.join(s + '://' for s in schemes)} URLs are fetched")
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise Refused(url, "invalid port") from None
    if not parts.hostname:
        raise Refused(url, "no host")
    return parts


def _exchange(
    parts: urllib.parse.SplitResult,
    method: str,
    body: bytes | None,
    headers: dict[str, str],
    max_bytes: int,
    timeout: float,
    connect: Connect | None,
    tls: ssl.SSLContext | None,
    proxies: bool,
) -> Response:
    """One request on a fresh connection, bounded by ``timeout`` as a whole."""
    import http.client

    url = parts.geturl()
    deadline = time.monotonic() + timeout
    proxy = proxy_for(url) if proxies else None
    try:
        conn, target, extra = _connection(http.client, parts, proxy, timeout, connect, tls)
        try:
            conn.request(method, target, body=body, headers={**headers, **extra})
            response = conn.getresponse()
            try:
                payload = _read(conn, response, url, max_bytes, deadline)
                return Response(url, response.status, payload, {k.lower(): v for k, v in response.getheaders()})
            finally:
                response.close()
        finally:
            conn.close()
    except CfsslError as exc:  # serve's policy refused every address
        raise Refused(url, exc.message, exc) from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise Unreachable(url, str(exc) or type(exc).__name__, exc) from None


def _connection(
    http_client: Any,
    parts: urllib.parse.SplitResult,
    proxy: str | None,
    timeout: float,
    connect: Connect | None,
    tls: ssl.SSLContext | None,
) -> tuple[http.client.HTTPConnection, str, dict[str, str]]:
    """The connection for one request, the request target and extra headers: direct, through ``connect``, or
    through an HTTP proxy (absolute-form target for http, a CONNECT tunnel for https)."""
    https = parts.scheme.lower() == "https"
    host, port = parts.hostname or "", parts.port or (443 if https else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if https and tls is None:
        import ssl

        tls = ssl.create_default_context()
    if proxy is not None:
        pparts = urllib.parse.urlsplit(proxy)
        if pparts.scheme.lower() != "http" or not pparts.hostname:
            raise ValueError(f"proxyconnect: unsupported proxy {proxy!r}")
        auth = _proxy_authorization(pparts)
        if not https:
            return http_client.HTTPConnection(pparts.hostname, pparts.port or 80, timeout=timeout), parts.geturl(), auth
        conn = http_client.HTTPSConnection(pparts.hostname, pparts.port or 80, timeout=timeout, context=tls)
        conn.set_tunnel(host, port, headers=auth)
        return conn, path, {}
    base = http_client.HTTPSConnection if https else http_client.HTTPConnection
    if connect is None:
        extra_kw = {"context": tls} if https else {}
        return base(host, port, timeout=timeout, **extra_kw), path, {}
    return _policy_connection(base, https, host, port, timeout, connect, tls), path, {}


def _policy_connection(
    base: type[http.client.HTTPConnection],
    https: bool,
    host: str,
    port: int,
    timeout: float,
    connect: Connect,
    tls: ssl.SSLContext | None,
) -> http.client.HTTPConnection:
    """An ``http.client`` connection whose socket comes from ``connect`` (``HTTPConnection.connect`` is the
    documented hook for how the socket is made)."""

    class PolicyConnection(base):  # type: ignore[valid-type,misc]
        def connect(self) -> None:
            sock = connect((self.host, self.port), self.timeout)
            self.sock = tls.wrap_socket(sock, server_hostname=None if is_ip(self.host) else self.host) if https and tls else sock

    return PolicyConnection(host, port, timeout=timeout)


def _proxy_authorization(proxy: urllib.parse.SplitResult) -> dict[str, str]:
    if proxy.username is None:
        return {}
    import base64

    user = urllib.parse.unquote(proxy.username)
    password = urllib.parse.unquote(proxy.password or "")
    return {"Proxy-Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")}


def _read(conn: http.client.HTTPConnection, response: http.client.HTTPResponse, url: str, max_bytes: int, deadline: float) -> bytes:
    """The body, at most ``max_bytes``: refused up front when its announced length is larger, read a chunk at a
    time otherwise, each read bounded by what is left of the deadline."""
    length = response.getheader("Content-Length", "")
    if length.strip().isdigit() and int(length) > max_bytes:
        raise TooLarge(url, f"response larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    while size <= max_bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out")
        if conn.sock is not None:
            conn.sock.settimeout(remaining)
        chunk = response.read1(min(_CHUNK, max_bytes + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > max_bytes:
        raise TooLarge(url, f"response larger than {max_bytes} bytes")
    return b"".join(chunks)
