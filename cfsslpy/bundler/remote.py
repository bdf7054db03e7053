"""TLS dialling: the chain a server presents, for ``bundle -domain`` (cfssl ``BundleFromRemote``).

A handshake verified against our roots is tried first; if it fails, an unverified one, and the first
failure becomes a message of the bundle. Dial and handshake failures are CfsslError DIAL errors
with Go's wording (``dial tcp ...: i/o timeout``, ``lookup ...: no such host``).
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from dataclasses import dataclass

from cryptography import x509

from cfsslpy import certinfo
from cfsslpy.bundler.chains import UNKNOWN_AUTHORITY
from cfsslpy.bundler.document import pem_text
from cfsslpy.bundler.pool import Pool
from cfsslpy.errors import Category, CfsslError, Reason

log = logging.getLogger("cfsslpy.bundler")  # one logger for the package, as when it was one module


@dataclass(frozen=True)
class RemoteChain:
    """What a server presented: ``host`` (the name to check), its ``certs`` (leaf first) and, when the verified
    handshake failed and an unverified one was used, ``dial_error`` (cfssl's message for the bundle)."""

    host: str
    certs: list[x509.Certificate]
    dial_error: str = ""


def remote_chain(domain: str, ip: str, roots: Pool, *, timeout: float, connect: certinfo.Connect | None) -> RemoteChain:
    """Dial ``domain`` (``host[:port]``, port 443 by default; ``ip`` is dialled instead of resolving the host,
    which is still sent as SNI) and read its chain: verified against ``roots`` first, else unverified.

    The server's whole chain is read where Python exposes it (``get_unverified_chain``: public from 3.13,
    private on 3.10..3.12); otherwise only the leaf.
    """
    host, port = certinfo.split_host_port(domain)
    dial_name = certinfo.join_host_port(ip or host, port)
    try:
        return RemoteChain(host, dial_chain(host, ip or host, port, verify=True, roots=roots, timeout=timeout, connect=connect))
    except _RigidFailure as exc:
        log.debug("rigid handshake failed: %s; retrying without verification", exc)
        certs = dial_chain(host, ip or host, port, verify=False, roots=roots, timeout=timeout, connect=connect)
        return RemoteChain(host, certs, f"Failed rigid TLS handshake with {dial_name}: {exc}")


def dial_chain(
    host: str, dial_host: str, port: str, *, verify: bool, roots: Pool, timeout: float, connect: certinfo.Connect | None
) -> list[x509.Certificate]:
    """One TLS handshake with ``dial_host:port`` (SNI ``host`` unless it is an IP): the certificates presented.

    With ``verify``, a failed verification raises :class:`_RigidFailure` (Go's message) for the caller to retry.
    """
    address = certinfo.join_host_port(dial_host, port)
    port_number = _port_number(port)
    context = _tls_context(host, roots, verify=verify)
    deadline = time.monotonic() + timeout
    sock = _connect(dial_host, port_number, address, timeout, connect)
    try:
        with sock:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            with context.wrap_socket(sock, server_hostname=None if certinfo.is_ip(host) else host) as conn:
                ders = _peer_chain(conn)
    except ssl.SSLCertVerificationError as exc:
        if verify:
            raise _RigidFailure(_go_verify_message(exc, host)) from None
        raise CfsslError(Category.DIAL, Reason.NONE, str(exc)) from None
    except TimeoutError:
        raise CfsslError(Category.DIAL, Reason.NONE, f"dial tcp {address}: i/o timeout") from None
    except ssl.SSLError as exc:
        message = certinfo.TLS_ERRORS.get(exc.reason or "", f"tls: {str(exc.reason or exc).lower()}")
        if verify:
            raise _RigidFailure(message) from None
        raise CfsslError(Category.DIAL, Reason.NONE, message) from None
    except OSError as exc:
        raise CfsslError(Category.DIAL, Reason.NONE, f"read tcp {address}: {(exc.strerror or str(exc)).lower()}") from None
    if not ders:
        raise CfsslError(Category.DIAL, Reason.NONE, "received no server certificates")
    try:
        return [x509.load_der_x509_certificate(d) for d in ders]
    except ValueError as exc:
        raise CfsslError(Category.DIAL, Reason.NONE, f"tls: failed to parse certificate from server: {exc}") from None


def _port_number(port: str) -> int:
    try:
        return int(port) if port.isdigit() else socket.getservbyname(port, "tcp")
    except OSError:
        raise CfsslError(Category.DIAL, Reason.NONE, f"dial tcp: lookup tcp/{port}: unknown port") from None


def _tls_context(host: str, roots: Pool, *, verify: bool) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        context.check_hostname = not certinfo.is_ip(host)
        context.verify_mode = ssl.CERT_REQUIRED
        certs = roots.all()
        if certs:
            context.load_verify_locations(cadata="".join(pem_text(c) for c in certs))
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _connect(dial_host: str, port_number: int, address: str, timeout: float, connect: certinfo.Connect | None) -> socket.socket:
    try:
        return (connect or socket.create_connection)((dial_host, port_number), timeout)
    except socket.gaierror:
        raise CfsslError(Category.DIAL, Reason.NONE, f"dial tcp: lookup {dial_host}: no such host") from None
    except TimeoutError:
        raise CfsslError(Category.DIAL, Reason.NONE, f"dial tcp {address}: i/o timeout") from None
    except OSError as exc:
        raise CfsslError(Category.DIAL, Reason.NONE, f"dial tcp {address}: connect: {(exc.strerror or str(exc)).lower()}") from None


class _RigidFailure(Exception):
    """The verified handshake failed (the message is Go-like); the caller retries without verification."""


def _go_verify_message(exc: ssl.SSLCertVerificationError, host: str) -> str:
    code = getattr(exc, "verify_code", 0)
    if code in (2, 18, 19, 20, 21):
        return UNKNOWN_AUTHORITY
    if code in (9, 10):
        return "x509: certificate has expired or is not yet valid"
    if code == 62:
        return f"x509: certificate is not valid for {host}"
    return f"x509: {getattr(exc, 'verify_message', '') or exc}"


def _peer_chain(conn: ssl.SSLSocket) -> list[bytes]:
    """DER of the certificates the server sent, leaf first (the whole chain when Python exposes it)."""
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
            out: list[bytes] = []
            for item in chain:
                der = item if isinstance(item, bytes) else item.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
                out.append(der)
            return out
    der = conn.getpeercert(binary_form=True)
    return [der] if der else []
