"""AIA fetching: caIssuers URLs followed over plain HTTP to find the intermediates an input lacks.

Security-relevant bounds: only ``http://`` URLs are fetched (never ``file:``, ``ftp:`` or redirects to other
schemes), with a per-request timeout, at most :data:`MAX_REDIRECTS` redirects, at most
:data:`MAX_AIA_FETCHES` requests of at most :data:`MAX_AIA_BYTES` each per bundle, a depth bound and loop
detection on URLs and certificates. A fetched certificate is only a candidate: it is trusted as an
intermediate once a chain through it validates to a configured root; roots are never learned.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID

from cfsslpy import certinfo
from cfsslpy.bundler.chains import is_self_signed
from cfsslpy.bundler.formats import parse_pem_certificates
from cfsslpy.bundler.pool import Pool
from cfsslpy.errors import CfsslError

log = logging.getLogger("cfsslpy.bundler")  # one logger for the package, as when it was one module

MAX_AIA_FETCHES = 8
MAX_AIA_DEPTH = 6
MAX_AIA_BYTES = 1 << 20
MAX_REDIRECTS = 3

_REDIRECTS = (301, 302, 303, 307, 308)


def ca_issuer_urls(cert: x509.Certificate) -> list[str]:
    """The AIA caIssuers URIs of a certificate, in order."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [
        str(d.access_location.value)
        for d in aia
        if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS and isinstance(d.access_location, x509.UniformResourceIdentifier)
    ]


def follow_ca_issuers(
    certs: list[x509.Certificate], roots: Pool, fetch: Callable[[str], x509.Certificate | None]
) -> list[x509.Certificate]:
    """Follow caIssuers URLs depth first from the input certificates (closest to the root first), fetching each
    with ``fetch``; the certificates found, roots left out."""
    seen_urls: set[str] = set()
    seen_certs = {c.signature for c in certs}
    fetched: list[x509.Certificate] = []
    budget = [MAX_AIA_FETCHES]

    def walk(cert: x509.Certificate, depth: int) -> None:
        if depth >= MAX_AIA_DEPTH:
            return
        for url in ca_issuer_urls(cert):
            if url in seen_urls or budget[0] <= 0:
                continue
            seen_urls.add(url)
            budget[0] -= 1
            parent = fetch(url)
            if parent is None or parent.signature in seen_certs:
                continue
            seen_certs.add(parent.signature)
            fetched.append(parent)
            if parent in roots or roots.issuers_of(parent) or is_self_signed(parent):
                return
            walk(parent, depth + 1)
            return

    for cert in reversed(certs):
        walk(cert, 0)
    return [c for c in fetched if c not in roots]


def fetch_certificate(url: str, *, timeout: float, connect: certinfo.Connect | None = None) -> x509.Certificate | None:
    """GET one caIssuers URL (``http://`` only, redirects followed), DER then PEM; None (logged) on any failure.

    ``connect`` is serve's outbound policy (``certinfo.FetchPolicy.connect``); None dials any address.
    """
    import http.client  # only when an AIA URL is followed: it costs tens of ms to import

    for _ in range(MAX_REDIRECTS + 1):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme.lower() != "http" or not parts.hostname:
            log.debug("skipping AIA URL %s: only http:// URLs are fetched", url)
            return None
        try:
            body, location = _get(http.client, parts, timeout, connect)
        except (OSError, http.client.HTTPException, ValueError, CfsslError) as exc:
            log.debug("failed to fetch %s: %s", url, exc)
            return None
        if location is not None:
            url = urllib.parse.urljoin(url, location)
            continue
        return _certificate_in(body, url)
    log.debug("too many redirects fetching %s", url)
    return None


def _get(http_client: Any, parts: urllib.parse.SplitResult, timeout: float, connect: certinfo.Connect | None) -> tuple[bytes, str | None]:
    """One GET: the body (read until just past :data:`MAX_AIA_BYTES` or the deadline), or a redirect's target."""
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    conn = _aia_connection(http_client, parts.hostname or "", parts.port or 80, timeout, connect)
    try:
        deadline = time.monotonic() + timeout
        conn.request("GET", path, headers={"User-Agent": "cfsslpy-bundler", "Accept": "*/*"})
        response = conn.getresponse()
        if response.status in _REDIRECTS and response.getheader("Location"):
            return b"", response.getheader("Location") or ""
        body = b""
        while len(body) <= MAX_AIA_BYTES:
            if time.monotonic() > deadline:
                raise TimeoutError("AIA fetch timed out")
            chunk = response.read(65536)
            if not chunk:
                break
            body += chunk
        return body, None
    finally:
        conn.close()


def _certificate_in(body: bytes, url: str) -> x509.Certificate | None:
    """The one certificate of an AIA response, DER or PEM; None (logged) when it is too large or holds none."""
    if len(body) > MAX_AIA_BYTES:
        log.debug("AIA response from %s is too large", url)
        return None
    try:
        return x509.load_der_x509_certificate(body)
    except ValueError:
        pass
    try:
        certs = parse_pem_certificates(body)
    except CfsslError:
        certs = []
    if len(certs) == 1:
        return certs[0]
    log.debug("no certificate at %s", url)
    return None


def _aia_connection(http_client: Any, host: str, port: int, timeout: float, connect: certinfo.Connect | None) -> Any:
    """An ``http.client.HTTPConnection`` whose socket comes from ``connect`` (serve's fetch policy) when given."""
    if connect is None:
        return http_client.HTTPConnection(host, port, timeout=timeout)
    dial = connect

    class _PolicyConnection(http_client.HTTPConnection):  # type: ignore[misc]
        def connect(self) -> None:
            self.sock = dial((self.host, self.port), self.timeout)

    return _PolicyConnection(host, port, timeout=timeout)
