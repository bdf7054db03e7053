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

from cfsslpy.net.address import Connect, dial_error, is_ip, is_loopback, join_host_port, split_host_port
from cfsslpy.net.httpfetch import (
    REDIRECT_STATUSES,
    BadStatus,
    FetchError,
    Refused,
    Response,
    TooLarge,
    Unreachable,
    fetch,
    fetch_body,
)
from cfsslpy.net.policy import FetchPolicy
from cfsslpy.net.proxy import proxy_for
from cfsslpy.net.tls import TLS_ERRORS, HandshakeFailed, dial, port_number, tls_peer_chain

__all__ = [
    "REDIRECT_STATUSES",
    "TLS_ERRORS",
    "BadStatus",
    "Connect",
    "FetchError",
    "FetchPolicy",
    "HandshakeFailed",
    "Refused",
    "Response",
    "TooLarge",
    "Unreachable",
    "dial",
    "dial_error",
    "fetch",
    "fetch_body",
    "is_ip",
    "is_loopback",
    "join_host_port",
    "port_number",
    "proxy_for",
    "split_host_port",
    "tls_peer_chain",
]
