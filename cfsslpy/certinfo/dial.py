"""``certinfo -domain``: the leaf certificate of a TLS server, fetched without verification as cfssl does
(through :func:`cfsslpy.net.tls_peer_chain`, under serve's :class:`~cfsslpy.net.FetchPolicy` when given).

Failures are 6000 errors whose text is Go's (``dial tcp 127.0.0.1:1: connect: connection refused``).
"""

from __future__ import annotations

from typing import Any

from cryptography import x509

from cfsslpy.certinfo.certificate import certificate_info, load_der_certificate
from cfsslpy.errors import Category, CfsslError, Reason
from cfsslpy.net import (  # re-exported: serve, the API and the tests import these from cfsslpy.certinfo
    TLS_ERRORS,
    Connect,
    FetchPolicy,
    HandshakeFailed,
    is_ip,
    join_host_port,
    split_host_port,
    tls_peer_chain,
)

__all__ = [
    "TLS_ERRORS",
    "Connect",
    "FetchPolicy",
    "describe_domain",
    "fetch_certificate",
    "is_ip",
    "join_host_port",
    "split_host_port",
]


def fetch_certificate(domain: str, ip: str = "", timeout: float = 10.0, connect: Connect | None = None) -> x509.Certificate:
    """The leaf certificate served by ``domain`` (``host[:port]``, port 443 by default).

    Like cfssl: a TLS handshake **without verification** (InsecureSkipVerify) and a ``timeout`` that covers
    the TCP connect and the handshake. ``ip`` (the ``-ip`` flag) dials that address instead of resolving the
    host, which is still sent as SNI; cfssl's certinfo ignores ``-ip`` (only ``bundle`` uses it). Failures are
    6000 errors whose message follows Go's (``dial tcp 127.0.0.1:1: connect: connection refused``).
    ``connect`` (a :meth:`FetchPolicy.connect`) replaces ``socket.create_connection``.
    """
    import ssl  # here, not at the top: every key load imports this module, and only -domain dials

    host, port = split_host_port(domain)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        der = tls_peer_chain(host, ip or host, port, context=context, timeout=timeout, connect=connect)[0]
    except HandshakeFailed as exc:
        raise CfsslError(Category.DIAL, Reason.NONE, exc.message) from None
    try:
        return load_der_certificate(der)
    except Exception as exc:  # cryptography raises several types for malformed input
        raise CfsslError(Category.DIAL, Reason.NONE, f"tls: failed to parse certificate from server: {exc}") from exc


def describe_domain(domain: str, ip: str = "", timeout: float = 10.0, connect: Connect | None = None) -> dict[str, Any]:
    """``certinfo -domain``: :func:`fetch_certificate` then :func:`certificate_info`."""
    return certificate_info(fetch_certificate(domain, ip, timeout, connect))
