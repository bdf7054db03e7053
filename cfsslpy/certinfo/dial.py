"""``certinfo -domain``: the leaf certificate of a TLS server, fetched without verification as cfssl does, and
the outbound policy (:class:`FetchPolicy`) that serve applies to the dials its clients ask for.

Failures are 6000 errors whose text is Go's (``dial tcp 127.0.0.1:1: connect: connection refused``).
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from cfsslpy.certinfo.certificate import certificate_info, load_der_certificate
from cfsslpy.errors import Category, CfsslError, Reason


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


# OpenSSL reasons whose Go crypto/tls wording is known.
TLS_ERRORS = {
    "WRONG_VERSION_NUMBER": "tls: first record does not look like a TLS handshake",
    "UNEXPECTED_EOF_WHILE_READING": "EOF",
    "EOF": "EOF",
}


def _dial_error(message: str) -> CfsslError:
    return CfsslError(Category.DIAL, Reason.NONE, message)


Connect = Callable[[tuple[str, int], float], Any]  # socket.create_connection's shape: ((host, port), timeout) -> socket


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


def fetch_certificate(domain: str, ip: str = "", timeout: float = 10.0, connect: Connect | None = None) -> x509.Certificate:
    """The leaf certificate served by ``domain`` (``host[:port]``, port 443 by default).

    Like cfssl: a TLS handshake **without verification** (InsecureSkipVerify) and a ``timeout`` that covers
    the TCP connect and the handshake. ``ip`` (the ``-ip`` flag) dials that address instead of resolving the
    host, which is still sent as SNI; cfssl's certinfo ignores ``-ip`` (only ``bundle`` uses it). Failures are
    6000 errors whose message follows Go's (``dial tcp 127.0.0.1:1: connect: connection refused``).
    ``connect`` (a :meth:`FetchPolicy.connect`) replaces ``socket.create_connection``.
    """
    import socket  # here, not at the top: every key load imports this module, and only -domain dials
    import ssl

    host, port = split_host_port(domain)
    dial_host = ip or host
    address = join_host_port(dial_host, port)
    deadline = time.monotonic() + timeout
    try:
        port_number = int(port) if port.isdigit() else socket.getservbyname(port, "tcp")
    except OSError:
        raise _dial_error(f"dial tcp: lookup tcp/{port}: unknown port") from None
    try:
        sock = (connect or socket.create_connection)((dial_host, port_number), timeout)
    except socket.gaierror as exc:
        raise _dial_error(f"dial tcp: lookup {dial_host}: no such host") from exc
    except TimeoutError as exc:
        raise _dial_error(f"dial tcp {address}: i/o timeout") from exc
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise _dial_error(f"dial tcp {address}: connect: {reason}") from exc
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with sock:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            with context.wrap_socket(sock, server_hostname=None if is_ip(host) else host) as conn:
                der = conn.getpeercert(binary_form=True)
    except TimeoutError as exc:
        raise _dial_error(f"dial tcp {address}: i/o timeout") from exc
    except ssl.SSLError as exc:
        raise _dial_error(TLS_ERRORS.get(exc.reason or "", f"tls: {str(exc.reason or exc).lower()}")) from exc
    except OSError as exc:
        raise _dial_error(f"read tcp {address}: {(exc.strerror or str(exc)).lower()}") from exc
    if not der:
        raise _dial_error("received no server certificates")
    try:
        return load_der_certificate(der)
    except Exception as exc:  # cryptography raises several types for malformed input
        raise _dial_error(f"tls: failed to parse certificate from server: {exc}") from exc


def describe_domain(domain: str, ip: str = "", timeout: float = 10.0, connect: Connect | None = None) -> dict[str, Any]:
    """``certinfo -domain``: :func:`fetch_certificate` then :func:`certificate_info`."""
    return certificate_info(fetch_certificate(domain, ip, timeout, connect))
