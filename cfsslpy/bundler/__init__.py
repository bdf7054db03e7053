"""The bundler: build, verify and rank certificate chains the way cfssl's ``bundler`` package does (reference §4.2).

Given a leaf (and maybe part of its chain and its key), the bundler finds **every** chain from the leaf to a
trusted root through three sources of intermediates: the ``-int-bundle`` pool (plus certificates stashed in
``-int-dir`` by earlier runs), the extra certificates of the input, and AIA caIssuers URLs fetched over
plain HTTP. Candidate chains come from a small path builder (issuer name == subject, the parent is a CA
as Go's ``CheckSignatureFrom`` requires, signature valid); each candidate is then **validated by cryptography's
verifier** (store = that chain's root, untrusted = its intermediates), which enforces validity periods, name
constraints and path lengths. Like newest cfssl, any extended key usage is accepted. The valid chains are
ranked by flavor:

* ``optimal``: shortest, then latest expiry, then strongest crypto;
* ``ubiquitous`` (default; any unknown flavor): platform coverage from the ``-metadata`` file, SHA-2
  homogeneity, length, hash and key ubiquity, later-expiring intermediates, then ``optimal``;
* ``force``: no pools; the input, in order (or reversed), must verify link by link.

Security-relevant choices: only ``http://`` AIA URLs are fetched (never ``file:``, ``ftp:`` or redirects to
other schemes), with a per-request timeout, at most :data:`MAX_AIA_FETCHES` requests of at most
:data:`MAX_AIA_BYTES` each per bundle, a depth bound and loop detection on URLs and certificates. Fetched
certificates are only trusted as intermediates once a chain through them validates to a configured root;
roots are never learned. The status code and messages are cfssl's byte for byte.

The package, one module per job:

* :mod:`.core`: the :class:`Bundler` (orchestration, in cfssl's order);
* :mod:`.formats`: bundle inputs (PEM, DER, PKCS#7, PKCS#12), pool files, the system roots, the bundle key;
* :mod:`.pool`: the root and intermediate pools, searched by subject; ``-int-dir`` stash names;
* :mod:`.chains`: path building and validation (Go's ``CheckSignatureFrom``, ``isValid``; cryptography's verifier);
* :mod:`.ubiquity`: platform metadata and the ``optimal``/``ubiquitous`` ranking;
* :mod:`.aia`: caIssuers fetching; :mod:`.remote`: the TLS dial of ``-domain``;
* :mod:`.hostname`: Go's ``VerifyHostname`` messages; :mod:`.document`: the bundle JSON and its status.

This ``__init__`` re-exports the names the rest of cfsslpy, the tests and the benchmarks use.
"""

from __future__ import annotations

from cfsslpy.bundler.aia import MAX_AIA_BYTES, MAX_AIA_DEPTH, MAX_AIA_FETCHES, MAX_REDIRECTS, ca_issuer_urls
from cfsslpy.bundler.chains import (
    EXPIRED_PREFIX,
    FORCE_VERIFY_FAILED,
    MAX_CHAIN_LENGTH,
    MAX_CHAINS,
    TOO_MANY_INTERMEDIATES,
    UNKNOWN_AUTHORITY,
    check_leaf_key_algorithm,
    check_signature_from,
    is_self_signed,
    issuer_refusal,
    partial_verify,
    validate_chain,
    validity_error,
)
from cfsslpy.bundler.core import NO_METADATA_LOG, Bundler
from cfsslpy.bundler.document import (
    ECDSA_WARNING,
    EXPIRING_HOURS,
    EXPIRING_WARNING,
    FLAVOR_FORCE,
    FLAVOR_OPTIMAL,
    FLAVOR_UBIQUITOUS,
    NO_METADATA_WARNING,
    SHA2_WARNING,
    STATUS_EXPIRING_BIT,
    STATUS_NOT_UBIQUITOUS_BIT,
    UNTRUSTED_WARNING,
    Bundle,
    BundleStatus,
)
from cfsslpy.bundler.formats import SYSTEM_ROOT_FILES, load_bundle_key, parse_bundle_input, parse_der_certificates, system_roots
from cfsslpy.bundler.hostname import verify_hostname
from cfsslpy.bundler.pool import stash_name
from cfsslpy.bundler.ubiquity import (
    DSA_UBIQUITY,
    ECDSA256_UBIQUITY,
    ECDSA384_UBIQUITY,
    ECDSA521_UBIQUITY,
    RSA_UBIQUITY,
    SHA1_UBIQUITY,
    SHA2_UBIQUITY,
    UNKNOWN_HASH_UBIQUITY,
    UNKNOWN_KEY_UBIQUITY,
    Platform,
    chain_hash_ubiquity,
    chain_key_ubiquity,
    hash_priority,
    hash_ubiquity,
    key_priority,
    key_ubiquity,
    load_metadata,
    optimal_chains,
    platform_weight,
    sha1_deprecation_messages,
    spki_sha1,
    ubiquitous_chains,
)

# the names these two had when the bundler was one module (tests reach them there)
_parse_der_certificates = parse_der_certificates
_platform_weight = platform_weight

__all__ = [
    "DSA_UBIQUITY",
    "ECDSA256_UBIQUITY",
    "ECDSA384_UBIQUITY",
    "ECDSA521_UBIQUITY",
    "ECDSA_WARNING",
    "EXPIRED_PREFIX",
    "EXPIRING_HOURS",
    "EXPIRING_WARNING",
    "FLAVOR_FORCE",
    "FLAVOR_OPTIMAL",
    "FLAVOR_UBIQUITOUS",
    "FORCE_VERIFY_FAILED",
    "MAX_AIA_BYTES",
    "MAX_AIA_DEPTH",
    "MAX_AIA_FETCHES",
    "MAX_CHAINS",
    "MAX_CHAIN_LENGTH",
    "MAX_REDIRECTS",
    "NO_METADATA_LOG",
    "NO_METADATA_WARNING",
    "RSA_UBIQUITY",
    "SHA1_UBIQUITY",
    "SHA2_UBIQUITY",
    "SHA2_WARNING",
    "STATUS_EXPIRING_BIT",
    "STATUS_NOT_UBIQUITOUS_BIT",
    "SYSTEM_ROOT_FILES",
    "TOO_MANY_INTERMEDIATES",
    "UNKNOWN_AUTHORITY",
    "UNKNOWN_HASH_UBIQUITY",
    "UNKNOWN_KEY_UBIQUITY",
    "UNTRUSTED_WARNING",
    "Bundle",
    "BundleStatus",
    "Bundler",
    "Platform",
    "ca_issuer_urls",
    "chain_hash_ubiquity",
    "chain_key_ubiquity",
    "check_leaf_key_algorithm",
    "check_signature_from",
    "hash_priority",
    "hash_ubiquity",
    "is_self_signed",
    "issuer_refusal",
    "key_priority",
    "key_ubiquity",
    "load_bundle_key",
    "load_metadata",
    "optimal_chains",
    "parse_bundle_input",
    "parse_der_certificates",
    "partial_verify",
    "platform_weight",
    "sha1_deprecation_messages",
    "spki_sha1",
    "stash_name",
    "system_roots",
    "ubiquitous_chains",
    "validate_chain",
    "validity_error",
    "verify_hostname",
]
