"""AIA fetching: caIssuers URLs followed over plain HTTP to find the intermediates an input lacks.

Security-relevant bounds: only ``http://`` URLs are fetched (never ``file:``, ``ftp:`` or redirects to other
schemes), with a per-request timeout, at most :data:`MAX_REDIRECTS` redirects, at most
:data:`MAX_AIA_FETCHES` requests of at most :data:`MAX_AIA_BYTES` each per bundle, a depth bound and loop
detection on URLs and certificates. A fetched certificate is only a candidate: it is trusted as an
intermediate once a chain through it validates to a configured root; roots are never learned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID

from cfsslpy import net
from cfsslpy.bundler.chains import is_self_signed
from cfsslpy.bundler.formats import parse_pem_certificates
from cfsslpy.bundler.pool import Pool
from cfsslpy.errors import CfsslError
from cfsslpy.x509util import extension

log = logging.getLogger("cfsslpy.bundler")  # one logger for the package, as when it was one module

MAX_AIA_FETCHES = 8
MAX_AIA_DEPTH = 6
MAX_AIA_BYTES = 1 << 20
MAX_REDIRECTS = 3


def ca_issuer_urls(cert: x509.Certificate) -> list[str]:
    """The AIA caIssuers URIs of a certificate, in order."""
    aia = extension(cert, x509.AuthorityInformationAccess, lenient=True)
    if aia is None:
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


def fetch_certificate(url: str, *, timeout: float, connect: net.Connect | None = None) -> x509.Certificate | None:
    """GET one caIssuers URL (``http://`` only, redirects followed), DER then PEM; None (logged) on any failure.

    ``connect`` is serve's outbound policy (``net.FetchPolicy.connect``); None dials any address.
    """
    try:
        response = net.fetch(
            url,
            max_bytes=MAX_AIA_BYTES,
            timeout=timeout,
            schemes=("http",),
            redirects=MAX_REDIRECTS,
            connect=connect,
            headers={"User-Agent": "cfsslpy-bundler", "Accept": "*/*"},
        )
    except net.FetchError as exc:
        log.debug("failed to fetch %s: %s", url, exc.message)
        return None
    if response.status in net.REDIRECT_STATUSES:
        log.debug("too many redirects fetching %s", url)
        return None
    return _certificate_in(response.body, url)


def _certificate_in(body: bytes, url: str) -> x509.Certificate | None:
    """The one certificate of an AIA response, DER or PEM; None (logged) when it holds none."""
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
