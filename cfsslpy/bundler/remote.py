"""TLS dialling: the chain a server presents, for ``bundle -domain`` (cfssl ``BundleFromRemote``).

A handshake verified against our roots is tried first; if it fails, an unverified one, and the first
failure becomes a message of the bundle. Dial and handshake failures are CfsslError DIAL errors
with Go's wording (``dial tcp ...: i/o timeout``, ``lookup ...: no such host``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509

from cfsslpy import net
from cfsslpy.bundler.chains import UNKNOWN_AUTHORITY
from cfsslpy.bundler.document import pem_text
from cfsslpy.bundler.pool import Pool
from cfsslpy.errors import Category, CfsslError, Reason

if TYPE_CHECKING:
    import ssl

log = logging.getLogger("cfsslpy.bundler")  # one logger for the package, as when it was one module


@dataclass(frozen=True)
class RemoteChain:
    """What a server presented: ``host`` (the name to check), its ``certs`` (leaf first) and, when the verified
    handshake failed and an unverified one was used, ``dial_error`` (cfssl's message for the bundle)."""

    host: str
    certs: list[x509.Certificate]
    dial_error: str = ""


def remote_chain(domain: str, ip: str, roots: Pool, *, timeout: float, connect: net.Connect | None) -> RemoteChain:
    """Dial ``domain`` (``host[:port]``, port 443 by default; ``ip`` is dialled instead of resolving the host,
    which is still sent as SNI) and read its chain: verified against ``roots`` first, else unverified.

    The server's whole chain is read where Python exposes it (``get_unverified_chain``: public from 3.13,
    private on 3.10..3.12); otherwise only the leaf.
    """
    host, port = net.split_host_port(domain)
    dial_name = net.join_host_port(ip or host, port)
    try:
        return RemoteChain(host, dial_chain(host, ip or host, port, verify=True, roots=roots, timeout=timeout, connect=connect))
    except _RigidFailure as exc:
        log.debug("rigid handshake failed: %s; retrying without verification", exc)
        certs = dial_chain(host, ip or host, port, verify=False, roots=roots, timeout=timeout, connect=connect)
        return RemoteChain(host, certs, f"Failed rigid TLS handshake with {dial_name}: {exc}")


def dial_chain(
    host: str, dial_host: str, port: str, *, verify: bool, roots: Pool, timeout: float, connect: net.Connect | None
) -> list[x509.Certificate]:
    """One TLS handshake with ``dial_host:port`` (SNI ``host`` unless it is an IP): the certificates presented.

    With ``verify``, a failed handshake raises :class:`_RigidFailure` (Go's message) for the caller to retry.
    """
    context = _tls_context(host, roots, verify=verify)
    try:
        ders = net.tls_peer_chain(host, dial_host, port, context=context, timeout=timeout, connect=connect)
    except net.HandshakeFailed as exc:
        if not verify:
            raise CfsslError(Category.DIAL, Reason.NONE, exc.message) from None
        raise _RigidFailure(_go_verify_message(exc.verification, host) if exc.verification else exc.message) from None
    try:
        return [x509.load_der_x509_certificate(d) for d in ders]
    except ValueError as exc:
        raise CfsslError(Category.DIAL, Reason.NONE, f"tls: failed to parse certificate from server: {exc}") from None


def _tls_context(host: str, roots: Pool, *, verify: bool) -> ssl.SSLContext:
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        context.check_hostname = not net.is_ip(host)
        context.verify_mode = ssl.CERT_REQUIRED
        certs = roots.all()
        if certs:
            context.load_verify_locations(cadata="".join(pem_text(c) for c in certs))
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


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
