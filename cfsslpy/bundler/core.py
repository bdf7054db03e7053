"""The bundler: pools, a leaf and maybe part of its chain in, the best validated chain out (cfssl ``Bundler``).

This module only orchestrates, in cfssl's order: the input's own checks (key type, key match, self-signed),
path building and validation (:mod:`.chains`), AIA when no chain reaches a root (:mod:`.aia`), learning
intermediates, ranking by flavor (:mod:`.ubiquity`), and the status block of the document (:mod:`.document`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cfsslpy import net
from cfsslpy.bundler import aia, remote
from cfsslpy.bundler.chains import (
    FORCE_VERIFY_FAILED,
    UNKNOWN_AUTHORITY,
    build_chains,
    check_leaf_key_algorithm,
    is_ca,
    is_self_signed,
    partial_verify,
    validate_chain,
)
from cfsslpy.bundler.document import FLAVOR_FORCE, FLAVOR_OPTIMAL, FLAVOR_UBIQUITOUS, Bundle, chain_status, common_status, ocsp_servers
from cfsslpy.bundler.formats import lenient_pem_certificates, pool_certificates, system_roots
from cfsslpy.bundler.hostname import verify_hostname
from cfsslpy.bundler.pool import Overlay, Pool, stash_name
from cfsslpy.bundler.ubiquity import Platform, load_metadata, optimal_chains, ubiquitous_chains
from cfsslpy.errors import Category, CfsslError, Error, PlainError, Reason
from cfsslpy.inputs import read_input, read_path, write_atomic
from cfsslpy.keys import PrivateKey, certificate_key_matches
from cfsslpy.pem import encode_pem

log = logging.getLogger("cfsslpy.bundler")  # one logger for the package, as when it was one module

_UTC = dt.timezone.utc
NO_METADATA_LOG = "No metadata, Ubiquitous falls back to Optimal."


class _Verification:
    """One attempt: candidate chains and the first validation error seen."""

    def __init__(self) -> None:
        self.valid: list[list[x509.Certificate]] = []
        self.errors: list[CfsslError] = []
        # Go's hard errors while building (an issuer that is expired or whose path length is exceeded): they
        # end the search for that branch, and are what Go reports when no chain reaches a root
        self.refusals: list[CfsslError] = []
        self.candidates = 0


class Bundler:
    """Builds bundles against a root pool and a (learning) intermediate pool (see the module docstring).

    ``roots=None`` loads the system roots (:func:`system_roots`). ``int_dir`` is cfssl's ``-int-dir``: the
    ``*.crt`` files already there join the intermediate pool, and intermediates learned from inputs or AIA
    are written there. The bundler is safe to share between threads (``serve``).
    """

    def __init__(
        self,
        roots: list[x509.Certificate] | None,
        intermediates: Sequence[x509.Certificate] = (),
        *,
        int_dir: str | None = None,
        metadata: list[Platform] | None = None,
        fetch_aia: bool = True,
        timeout: float = 5.0,
    ) -> None:
        self.roots = Pool(system_roots() if roots is None else roots)
        self.intermediates = Pool(intermediates)
        self.int_dir = int_dir or None
        self.platforms: list[Platform] = list(metadata or [])
        self.fetch_aia = fetch_aia
        self.timeout = timeout
        # serve's outbound policy (net.FetchPolicy.connect) for the remote dial and AIA; None = any address
        self.connect: net.Connect | None = None
        self._lock = threading.Lock()
        if self.int_dir and os.path.isdir(self.int_dir):
            for entry in sorted(os.listdir(self.int_dir)):
                if entry.endswith(".crt"):
                    path = os.path.join(self.int_dir, entry)
                    try:
                        data = read_path(path)
                    except PlainError as exc:
                        raise CfsslError(Category.INTERMEDIATES, Reason.READ_FAILED, exc.message) from None
                    for cert in lenient_pem_certificates(data):
                        self.intermediates.add(cert)

    @classmethod
    def from_files(cls, ca_bundle: str = "", int_bundle: str = "", int_dir: str = "", metadata: str = "", **kw: Any) -> Bundler:
        """cfssl's ``NewBundler`` plus ``-int-dir`` and ``-metadata``.

        Unreadable ``ca_bundle`` -> 4001, unparsable -> 4003; likewise 3001/3003 for ``int_bundle``. An empty
        ``ca_bundle`` (name or file) means the system roots. A ``metadata`` file that fails to load is logged
        and ignored, as cfssl's ``bundle`` command and server do.
        """
        roots = _read_pool(ca_bundle, Category.ROOT) if ca_bundle else None
        intermediates = (_read_pool(int_bundle, Category.INTERMEDIATES) or []) if int_bundle else []
        platforms: list[Platform] = []
        if metadata:
            try:
                platforms = load_metadata(metadata)
            except Error as exc:
                log.warning("%s", exc.message)
        return cls(roots, intermediates, int_dir=int_dir or None, metadata=platforms, **kw)

    @classmethod
    def force(cls) -> Bundler:
        """The bundler cfssl uses for ``-flavor force``: no pools at all."""
        return cls([], [], fetch_aia=False)

    # ---------------------------------------------------------------------------------------------------------

    def bundle(
        self,
        certs: list[x509.Certificate],
        key: PrivateKey | None = None,
        flavor: str = FLAVOR_UBIQUITOUS,
        *,
        now: dt.datetime | None = None,
    ) -> Bundle:
        """Bundle ``certs`` (leaf first; the rest, in any order of the two directions, is a partial chain)."""
        if not certs:
            raise CfsslError(Category.CERTIFICATE, Reason.DECODE_FAILED)
        now = now or dt.datetime.now(_UTC)
        log.info("bundling certificate for %s", certs[0].subject.rfc4514_string())
        certs = list(certs)
        if len(certs) > 1 and not partial_verify(certs):
            reversed_certs = certs[::-1]
            if partial_verify(reversed_certs):
                certs = reversed_certs
        leaf = certs[0]
        check_leaf_key_algorithm(leaf)  # cfssl's order: the leaf's key type, the key match, then the chain
        if key is not None and not certificate_key_matches(key, leaf):
            raise CfsslError(Category.PRIVATE_KEY, Reason.KEY_MISMATCH)
        if flavor == FLAVOR_FORCE:
            return self._force_bundle(certs, key, now)
        if is_self_signed(leaf):
            raise CfsslError(Category.CERTIFICATE, Reason.SELF_SIGNED)

        chosen = self._rank(self._valid_chains(certs, now), flavor)
        log.info("the anchoring root is %s", chosen[-1].subject.rfc4514_string())
        status = chain_status(chosen, now, self.platforms)

        root = chosen[-1]
        leaf_is_ca = is_ca(leaf) and leaf.version != x509.Version.v1
        if ocsp_servers(leaf) is not None and not leaf_is_ca and len(chosen) <= 2:
            output = list(chosen)  # cfssl keeps the root so that the bundle has an issuer for OCSP stapling
        else:
            output = chosen[:-1] or chosen[:1]
        status.rebundled = _differs(output, certs)
        return Bundle(output, root, key, status, flavor)

    def _valid_chains(self, certs: list[x509.Certificate], now: dt.datetime) -> list[list[x509.Certificate]]:
        """Every chain from ``certs[0]`` to a root that validates (AIA followed when none is found), learned into
        the pool; else the first validation error, the first refusal, or "unknown authority"."""
        leaf = certs[0]
        extra = [c for c in certs[1:] if c not in self.roots]
        verification = self._verify(leaf, extra, now)
        # AIA only for Go's UnknownAuthorityError: an issuer refused while building (expired, path length) is
        # a hard error in Go, and cfssl fetches nothing then
        if not verification.valid and self.fetch_aia and verification.candidates == 0 and not verification.refusals:
            log.debug("searching for intermediates via AIA issuer")
            fetched = self._fetch_aia(certs)
            if fetched:
                verification = self._verify(leaf, extra + fetched, now)
        if not verification.valid:
            if verification.errors:
                raise verification.errors[0]
            if verification.refusals:
                raise verification.refusals[0]
            raise CfsslError(Category.CERTIFICATE, Reason.VERIFY_FAILED + 20, UNKNOWN_AUTHORITY)
        self._learn(verification.valid)
        return verification.valid

    def _rank(self, chains: list[list[x509.Certificate]], flavor: str) -> list[x509.Certificate]:
        """The best chain for ``flavor`` (``optimal``, else ``ubiquitous``)."""
        if flavor == FLAVOR_OPTIMAL:
            chains = optimal_chains(chains)
        else:
            if not self.platforms:
                log.warning(NO_METADATA_LOG)
            chains = ubiquitous_chains(chains, self.platforms)
        return chains[0]

    def _force_bundle(self, certs: list[x509.Certificate], key: PrivateKey | None, now: dt.datetime) -> Bundle:
        if not partial_verify(certs):
            raise CfsslError(Category.CERTIFICATE, Reason.VERIFY_FAILED, FORCE_VERIFY_FAILED)
        status = common_status(certs, now)
        status.rebundled = False
        return Bundle(list(certs), None, key, status, FLAVOR_FORCE)

    # ---------------------------------------------------------------------------------------------------------
    # Chain building

    def candidate_chains(
        self,
        leaf: x509.Certificate,
        extra: Sequence[x509.Certificate] = (),
        *,
        now: dt.datetime | None = None,
        refusals: list[CfsslError] | None = None,
    ) -> list[list[x509.Certificate]]:
        """Every path leaf -> ... -> root through the pools and ``extra`` (not yet validated).

        With ``now``, an issuer that Go's ``isValid`` refuses while building (expired, or a path length the
        chain so far exceeds) is not followed, and its error goes to ``refusals``: Go reports that error
        (1211, 1213) rather than "unknown authority" when no chain reaches a root.
        """
        with self._lock:
            roots = self.roots
            shared = self.intermediates
        # the input's extra certificates are searched beside the shared pool, never added to it (copying a pool
        # of thousands per request would cost more than the whole chain search)
        intermediates = Overlay(shared, Pool(extra))
        return build_chains(leaf, roots, intermediates, now=now, refusals=refusals)

    def _verify(self, leaf: x509.Certificate, extra: Sequence[x509.Certificate], now: dt.datetime) -> _Verification:
        result = _Verification()
        candidates = self.candidate_chains(leaf, extra, now=now, refusals=result.refusals)
        result.candidates = len(candidates)
        for chain in candidates:
            error = validate_chain(chain, now)
            if error is None:
                result.valid.append(chain)
            else:
                result.errors.append(error)
        return result

    def _learn(self, chains: list[list[x509.Certificate]]) -> None:
        """Intermediates of validated chains join the pool (and the ``-int-dir`` stash) for later requests."""
        learned: list[x509.Certificate] = []
        with self._lock:
            for chain in chains:
                for cert in chain[1:-1]:
                    if cert not in self.roots and self.intermediates.add(cert):
                        learned.append(cert)
        if not self.int_dir:
            return
        for cert in learned:
            try:
                os.makedirs(self.int_dir, mode=0o755, exist_ok=True)
                path = os.path.join(self.int_dir, stash_name(cert))
                write_atomic(path, encode_pem("CERTIFICATE", cert.public_bytes(serialization.Encoding.DER)), 0o644)
                log.info("stashed new intermediate %s", stash_name(cert))
            except OSError as exc:  # as in cfssl, a failed write does not fail the bundle
                log.error("failed to write new intermediate: %s", exc)

    # ---------------------------------------------------------------------------------------------------------
    # AIA

    def _fetch_aia(self, certs: list[x509.Certificate]) -> list[x509.Certificate]:
        """Follow caIssuers URLs depth first from the input certificates (closest to the root first)."""
        return aia.follow_ca_issuers(certs, self.roots, self.fetch_certificate)

    def fetch_certificate(self, url: str) -> x509.Certificate | None:
        """GET one caIssuers URL (``http://`` only), DER then PEM; None (logged) on any failure."""
        return aia.fetch_certificate(url, timeout=self.timeout, connect=self.connect)

    # ---------------------------------------------------------------------------------------------------------
    # Remote

    def bundle_from_remote(self, domain: str, ip: str = "", flavor: str = FLAVOR_UBIQUITOUS) -> Bundle:
        """Bundle the chain a TLS server presents (cfssl ``BundleFromRemote``).

        ``domain`` is ``host[:port]`` (port 443 by default); ``ip`` is dialled instead of resolving the host,
        which is still sent as SNI. A handshake verified against our roots is tried first; if it fails, an
        unverified one, and ``Failed rigid TLS handshake with <addr>: <error>`` is added to the messages.
        The server's whole chain is read where Python exposes it (``get_unverified_chain``: public from
        3.13, private on 3.10..3.12); otherwise only the leaf, completed from the pools and AIA. The leaf must
        match the host name (1200).
        """
        presented = remote.remote_chain(domain, ip, self.roots, timeout=self.timeout, connect=self.connect)
        verify_hostname(presented.certs[0], presented.host)
        bundle = self.bundle(presented.certs, None, flavor)
        if presented.dial_error:
            bundle.status.messages = [*(bundle.status.messages or []), presented.dial_error]
        return bundle


def _read_pool(name: str, category: Category) -> list[x509.Certificate] | None:
    """The certificates of a ``-ca-bundle``/``-int-bundle`` file, None when it is empty (unreadable: x001,
    unparsable: x003 in ``category``)."""
    try:
        data = read_input(name, allow_prefixes=False)
    except PlainError as exc:
        raise CfsslError(category, Reason.READ_FAILED, exc.message) from None
    return pool_certificates(data, category) if data else None


def _differs(output: Sequence[x509.Certificate], given: Sequence[x509.Certificate]) -> bool:
    return len(output) != len(given) or any(a.signature != b.signature for a, b in zip(output, given, strict=True))
