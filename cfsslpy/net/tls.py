"""The TLS dialer: one handshake, the chain the server presents, failures in Go's words (``certinfo -domain``,
``bundle -domain``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from cfsslpy.net.address import Connect, dial_error, is_ip, join_host_port

if TYPE_CHECKING:
    import socket
    import ssl


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
        raise dial_error(f"dial tcp: lookup tcp/{port}: unknown port") from None


def dial(dial_host: str, port: int, *, timeout: float, connect: Connect | None = None) -> socket.socket:
    """A TCP connection to ``dial_host:port`` through ``connect`` (serve's :meth:`FetchPolicy.connect`; None dials
    any address); failures are 6000 in Go's words (``dial tcp 127.0.0.1:1: connect: connection refused``)."""
    import socket

    address = join_host_port(dial_host, str(port))
    try:
        sock: socket.socket = (connect or socket.create_connection)((dial_host, port), timeout)
    except socket.gaierror:
        raise dial_error(f"dial tcp: lookup {dial_host}: no such host") from None
    except TimeoutError:
        raise dial_error(f"dial tcp {address}: i/o timeout") from None
    except OSError as exc:
        raise dial_error(f"dial tcp {address}: connect: {(exc.strerror or str(exc)).lower()}") from None
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
        raise dial_error(f"dial tcp {address}: i/o timeout") from None
    except ssl.SSLError as exc:
        raise HandshakeFailed(TLS_ERRORS.get(exc.reason or "", f"tls: {str(exc.reason or exc).lower()}")) from None
    except OSError as exc:
        raise dial_error(f"read tcp {address}: {(exc.strerror or str(exc)).lower()}") from None
    if not ders:
        raise dial_error("received no server certificates")
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
