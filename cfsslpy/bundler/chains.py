"""Path building and validation: Go's ``CheckSignatureFrom`` and ``isValid``, the search for every chain from a
leaf to a root through the pools, and each candidate's validation by cryptography's RFC 5280 verifier with
Go's error codes and messages."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.x509.oid import PublicKeyAlgorithmOID

from cfsslpy.bundler.hostname import dns_names
from cfsslpy.bundler.pool import Overlay, Pool
from cfsslpy.errors import Category, CfsslError, Reason
from cfsslpy.keys import is_dsa
from cfsslpy.x509util import extension, rfc3339

FORCE_VERIFY_FAILED = "Unable to verify the certificate chain"
UNKNOWN_AUTHORITY = "x509: certificate signed by unknown authority"
TOO_MANY_INTERMEDIATES = "x509: too many intermediates for path length constraint"
EXPIRED_PREFIX = "x509: certificate has expired or is not yet valid: "


# Path building bounds.
MAX_CHAIN_LENGTH = 10
MAX_CHAINS = 64


# the leaf key types cfssl's Bundle accepts (Go's x509.RSA, ECDSA and Ed25519)
_BUNDLE_KEY_ALGORITHMS = frozenset(
    {PublicKeyAlgorithmOID.RSAES_PKCS1_v1_5, PublicKeyAlgorithmOID.EC_PUBLIC_KEY, PublicKeyAlgorithmOID.ED25519}
)


# --------------------------------------------------------------------------------------------------------------
# Go's CheckSignatureFrom and isValid


def is_ca(cert: x509.Certificate) -> bool:
    bc = extension(cert, x509.BasicConstraints)
    return cert.version == x509.Version.v1 if bc is None else bool(bc.ca)


def _can_sign_certificates(cert: x509.Certificate) -> bool:
    ku = extension(cert, x509.KeyUsage)
    return True if ku is None else bool(ku.key_cert_sign)


@functools.lru_cache(maxsize=1024)  # at most ~3 MB of certificates
def _signature_ok(child: x509.Certificate, parent: x509.Certificate) -> bool:
    """Whether ``parent``'s key signed ``child`` (names compared too). Remembered per pair (certificates hash
    by their DER, and the answer never changes): the pool's intermediate-to-root links are checked once, not
    on every bundle request (each check is a signature verification, ~80 us for ECDSA P-256)."""
    if is_dsa(parent):
        return False  # Go >= 1.16 verifies no DSA signature (x509.ErrUnsupportedAlgorithm)
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def check_signature_from(child: x509.Certificate, parent: x509.Certificate) -> bool:
    """Go's ``child.CheckSignatureFrom(parent)``: the parent is a CA allowed to sign certificates, the signature holds.

    (Go does not compare names here; cryptography's check does, which only matters for broken inputs.)
    """
    return is_ca(parent) and _can_sign_certificates(parent) and _signature_ok(child, parent)


def issuer_refusal(issuer: x509.Certificate, chain: Sequence[x509.Certificate], now: dt.datetime) -> CfsslError | None:
    """Go's ``isValid`` for an issuer about to extend ``chain`` (leaf first): its validity period (1211), then
    its path length constraint against the intermediates already below it (1213)."""
    if now > issuer.not_valid_after_utc or now < issuer.not_valid_before_utc:
        return validity_error(issuer, now)
    bc = extension(issuer, x509.BasicConstraints, lenient=True)
    path_length = None if bc is None else bc.path_length
    if path_length is not None and len(chain) - 1 > path_length:
        return _invalid(3, TOO_MANY_INTERMEDIATES)
    return None


def check_leaf_key_algorithm(cert: x509.Certificate) -> None:
    """cfssl bundles RSA, ECDSA and Ed25519 leaves only; any other key type (DSA...) is 2200, checked before
    the key match and the chain (so a DSA leaf is 2200, not "signed by unknown authority")."""
    if cert.public_key_algorithm_oid not in _BUNDLE_KEY_ALGORITHMS:
        raise CfsslError(Category.PRIVATE_KEY, Reason.NOT_RSA_OR_ECC)


def is_self_signed(cert: x509.Certificate) -> bool:
    """cfssl's self-signed test: the certificate verifies its own signature as a CA (so a self-signed non-CA
    leaf is *not* self-signed for cfssl and fails later as signed by an unknown authority)."""
    return cert.issuer == cert.subject and check_signature_from(cert, cert)


def partial_verify(certs: Sequence[x509.Certificate]) -> bool:
    """Every certificate is signed by the next one (cfssl ``partialVerify``)."""
    return all(check_signature_from(certs[i], certs[i + 1]) for i in range(len(certs) - 1))


# --------------------------------------------------------------------------------------------------------------
# Path building


def build_chains(
    leaf: x509.Certificate,
    roots: Pool,
    intermediates: Pool | Overlay,
    *,
    now: dt.datetime | None = None,
    refusals: list[CfsslError] | None = None,
) -> list[list[x509.Certificate]]:
    """Every path leaf -> ... -> root: an issuer found in ``roots`` ends a path, one found in
    ``intermediates`` extends it (depth first, at most :data:`MAX_CHAINS` paths of :data:`MAX_CHAIN_LENGTH`
    certificates; not yet validated).

    With ``now``, an issuer that Go's ``isValid`` refuses while building (expired, or a path length the
    chain so far exceeds) is not followed, and its error goes to ``refusals``: Go reports that error
    (1211, 1213) rather than "unknown authority" when no chain reaches a root.
    """
    checked: dict[tuple[bytes, bytes], bool] = {}

    def signed_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
        pair = (child.signature, parent.signature)
        if pair not in checked:
            checked[pair] = check_signature_from(child, parent)
        return checked[pair]

    chains: list[list[x509.Certificate]] = []
    if leaf in roots:
        chains.append([leaf])

    def acceptable(parent: x509.Certificate, chain: list[x509.Certificate]) -> bool:
        refusal = None if now is None else issuer_refusal(parent, chain, now)
        if refusal is not None and refusals is not None:
            refusals.append(refusal)
        return refusal is None

    def walk(chain: list[x509.Certificate]) -> None:
        current = chain[-1]
        seen = {c.signature for c in chain}
        for parent in roots.issuers_of(current):
            if len(chains) >= MAX_CHAINS:
                return
            if parent.signature not in seen and signed_by(current, parent) and acceptable(parent, chain):
                chains.append([*chain, parent])
        if len(chain) + 1 >= MAX_CHAIN_LENGTH:
            return
        for parent in intermediates.issuers_of(current):
            if len(chains) >= MAX_CHAINS:
                return
            if parent.signature in seen or not signed_by(current, parent) or not acceptable(parent, chain):
                continue
            walk([*chain, parent])

    walk([leaf])
    return chains


# --------------------------------------------------------------------------------------------------------------
# Validation with cryptography's verifier


def validate_chain(chain: Sequence[x509.Certificate], now: dt.datetime) -> CfsslError | None:
    """Validate one candidate chain (leaf first, root last) with cryptography's RFC 5280 verifier.

    Any EKU is accepted (newest cfssl); CA certificates need basicConstraints (CA:TRUE is enforced by the
    verifier), names are checked against name constraints, path lengths and validity against ``now``.
    Returns None when valid, else the cfssl error (12xx, Go's wording where we know it).
    """
    from cryptography.x509 import verification as v

    root, leaf, intermediates = chain[-1], chain[0], list(chain[1:-1])
    if len(chain) == 1:
        return None
    ca_policy = v.ExtensionPolicy.permit_all().require_present(x509.BasicConstraints, v.Criticality.AGNOSTIC, None)
    builder = (
        v.PolicyBuilder()
        .store(v.Store([root]))
        .time(now)
        .max_chain_depth(max(len(chain), 8))
        .extension_policies(ca_policy=ca_policy, ee_policy=v.ExtensionPolicy.permit_all())
    )
    try:
        builder.build_client_verifier().verify(leaf, intermediates)
    except v.VerificationError as exc:
        return _verification_error(str(exc), chain, now)
    except ValueError as exc:
        return CfsslError(Category.CERTIFICATE, Reason.VERIFY_FAILED, str(exc))
    return None


def _verification_error(text: str, chain: Sequence[x509.Certificate], now: dt.datetime) -> CfsslError:
    lowered = text.lower()
    if "not valid at validation time" in lowered or "expired" in lowered:
        for cert in chain:
            if now > cert.not_valid_after_utc or now < cert.not_valid_before_utc:
                return validity_error(cert, now)
        return _invalid(1, "x509: certificate has expired or is not yet valid")
    if "name constraint" in lowered:
        return _invalid(2, _name_constraint_message(chain))
    if "path length" in lowered:
        return _invalid(3, TOO_MANY_INTERMEDIATES)
    if "key usage" in lowered or "eku" in lowered:
        return _invalid(4, "x509: certificate specifies an incompatible key usage")
    if "basicconstraints" in lowered or "ca certificate" in lowered:
        return _invalid(0, "x509: certificate is not authorized to sign other certificates")
    return CfsslError(Category.CERTIFICATE, Reason.VERIFY_FAILED, f"x509: {text}")


def validity_error(cert: x509.Certificate, now: dt.datetime) -> CfsslError:
    """Go's 1211 for a certificate outside its validity period at ``now``."""
    if now < cert.not_valid_before_utc:
        return _invalid(1, f"{EXPIRED_PREFIX}current time {rfc3339(now)} is before {rfc3339(cert.not_valid_before_utc)}")
    return _invalid(1, f"{EXPIRED_PREFIX}current time {rfc3339(now)} is after {rfc3339(cert.not_valid_after_utc)}")


def _invalid(go_reason: int, message: str) -> CfsslError:
    """Go's CertificateInvalidError: 1210 + its reason."""
    return CfsslError(Category.CERTIFICATE, Reason.VERIFY_FAILED + 10 + go_reason, message)


def _name_constraint_message(chain: Sequence[x509.Certificate]) -> str:
    prefix = "x509: a root or intermediate certificate is not authorized to sign for this name: "
    permitted: list[str] = []
    for ca in chain[1:]:
        constraints = extension(ca, x509.NameConstraints)
        if constraints is None:
            continue
        permitted += [str(n.value) for n in constraints.permitted_subtrees or [] if isinstance(n, x509.DNSName)]
        for name in dns_names(chain[0]):
            for excluded in constraints.excluded_subtrees or []:
                if isinstance(excluded, x509.DNSName) and _dns_in_subtree(name, str(excluded.value)):
                    return prefix + f'DNS name "{name}" is excluded by constraint "{excluded.value}"'
    for name in dns_names(chain[0]):
        if permitted and not any(_dns_in_subtree(name, p) for p in permitted):
            return prefix + f'DNS name "{name}" is not permitted by any constraint'
    return prefix.rstrip(": ")


def _dns_in_subtree(name: str, constraint: str) -> bool:
    name, constraint = name.lower(), constraint.lower()
    if constraint.startswith("."):
        return name.endswith(constraint)
    return name == constraint or name.endswith("." + constraint)
