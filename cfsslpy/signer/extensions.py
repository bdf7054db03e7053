"""Step 11's extensions, built in Go's order (reference §3.8, §8): usages, key identifiers, AIA, SAN, name
constraints, CRL DP, then the copied and request extensions, then certificate policies and OCSP no-check."""

from __future__ import annotations

import logging
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID, ObjectIdentifier

from cfsslpy.config import SigningProfile, certificate_policies
from cfsslpy.csr import SANs
from cfsslpy.errors import Category, CfsslError, Reason
from cfsslpy.keys import public_key_matches
from cfsslpy.signer.issuer import Issuer
from cfsslpy.signer.request import SignRequest
from cfsslpy.x509util import KEY_USAGE_FIELDS

log = logging.getLogger("cfsslpy.signer")  # one logger for the package, as when it was one module


OID_OCSP_NO_CHECK = ObjectIdentifier("1.3.6.1.5.5.7.48.1.5")

# Extensions a CSR may never set through copy_extensions.
CA_MANAGED = frozenset(
    {
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
        ExtensionOID.SUBJECT_INFORMATION_ACCESS,
        ExtensionOID.CRL_DISTRIBUTION_POINTS,
        ExtensionOID.FRESHEST_CRL,
        ExtensionOID.CERTIFICATE_POLICIES,
        ExtensionOID.POLICY_MAPPINGS,
        ExtensionOID.POLICY_CONSTRAINTS,
        ExtensionOID.INHIBIT_ANY_POLICY,
        ExtensionOID.NAME_CONSTRAINTS,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.PRECERT_POISON,
        ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS,
        ExtensionOID.TLS_FEATURE,
        OID_OCSP_NO_CHECK,
    }
)

# Key usage bits RFC 5280 / RFC 8813 / RFC 8410 allow per subject key type.
_ALLOWED_KU: dict[str, frozenset[str]] = {
    "rsa": frozenset({"digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_cert_sign", "crl_sign"}),
    "ec": frozenset(
        {"digital_signature", "content_commitment", "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"}
    ),
    "ed25519": frozenset({"digital_signature", "content_commitment", "key_cert_sign", "crl_sign"}),
}
_KU_NAMES = {
    "digital_signature": "digital signature",
    "content_commitment": "content commitment",
    "key_encipherment": "key encipherment",
    "data_encipherment": "data encipherment",
    "key_agreement": "key agreement",
    "key_cert_sign": "cert sign",
    "crl_sign": "crl sign",
    "encipher_only": "encipher only",
    "decipher_only": "decipher only",
}


# An extension to generate and whether it is critical
GeneratedExtension = tuple[x509.ExtensionType, bool]


def _key_kind(public_key: Any) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        return "rsa"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "ec"
    return "ed25519"


def certificate_usages(profile: SigningProfile, public_key: Any, is_ca: bool) -> tuple[x509.KeyUsage | None, list[ObjectIdentifier]]:
    flags, ekus, _ = profile.key_usages()
    if not flags and not ekus:
        raise CfsslError(Category.POLICY, Reason.NO_KEY_USAGES)
    kind = _key_kind(public_key)
    allowed = _ALLOWED_KU[kind]
    for bit in sorted(flags):
        if bit not in allowed:
            # The built-in default profile asks for key encipherment whatever the key; saying so on every EC
            # signing would be noise the user cannot act on, so that case is only a DEBUG line.
            level = logging.DEBUG if profile.builtin else logging.WARNING
            log.log(level, "usage %r is not allowed for %s keys (RFC 5280/8813): left out", _KU_NAMES[bit], kind.upper())
            del flags[bit]
    if not is_ca and flags.pop("key_cert_sign", False):
        log.warning("usage 'cert sign' needs a CA profile (ca_constraint.is_ca): left out")
    if is_ca and not flags.get("key_cert_sign"):
        # RFC 5280 §4.2.1.3/§4.2.1.9: a CA certificate's key signs certificates, so keyCertSign must be set.
        log.warning("CA profile without usage 'cert sign': added (a CA certificate needs keyCertSign)")
        flags["key_cert_sign"] = True
    if (flags.get("encipher_only") or flags.get("decipher_only")) and not flags.get("key_agreement"):
        log.warning("usages 'encipher only'/'decipher only' need 'key agreement': left out")
        flags.pop("encipher_only", None)
        flags.pop("decipher_only", None)
    unique_ekus = list(dict.fromkeys(ekus))
    if not flags and not unique_ekus:
        raise CfsslError(Category.POLICY, Reason.NO_KEY_USAGES, f"Invalid policy: no key usage available for a {kind.upper()} key")
    if not flags:
        return None, unique_ekus
    return x509.KeyUsage(**{n: bool(flags.get(n)) for n in KEY_USAGE_FIELDS}), unique_ekus


def usage_extensions(
    key_usage: x509.KeyUsage | None, ekus: list[ObjectIdentifier], *, is_ca: bool, path_length: int | None
) -> list[GeneratedExtension]:
    """Step 11: keyUsage (critical, when any), extKeyUsage, basicConstraints (critical, always)."""
    out: list[GeneratedExtension] = []
    if key_usage is not None:
        out.append((key_usage, True))
    if ekus:
        out.append((x509.ExtendedKeyUsage(ekus), False))
    out.append((x509.BasicConstraints(ca=is_ca, path_length=path_length if is_ca else None), True))
    return out


def key_identifier_extensions(
    issuer: Issuer, name: x509.Name, public_key: CertificatePublicKeyTypes, *, is_ca: bool
) -> list[GeneratedExtension]:
    """Step 11: SKI (SHA-1 of the key), then the AKI (the issuer's key identifier) unless self-signed CA.

    Go leaves the AKI out whenever issuer and subject names are equal. RFC 5280 §4.2.1.1 only lets a
    self-signed *CA* certificate go without one, so we leave it out there and nowhere else: a self-issued
    certificate with another key and a self-signed leaf (selfsign) carry an AKI.
    """
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    out: list[GeneratedExtension] = [(ski, False)]
    self_signed = issuer.cert is None or (issuer.subject == name and public_key_matches(issuer.key, public_key))
    if not (self_signed and is_ca):
        key_id = ski.digest if issuer.cert is None else issuer.key_identifier()
        out.append((x509.AuthorityKeyIdentifier(key_id, None, None), False))
    return out


def authority_info_access(profile: SigningProfile, default: SigningProfile) -> list[GeneratedExtension]:
    """Step 11: AIA with the OCSP URL first, then the issuer URLs (each falling back to the default profile)."""
    ocsp_url = profile.ocsp_url or default.ocsp_url
    issuer_urls = profile.issuer_urls if profile.issuer_urls is not None else default.issuer_urls
    aia: list[x509.AccessDescription] = []
    if ocsp_url:
        aia.append(x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)))
    for url in issuer_urls or []:
        aia.append(x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(url)))
    return [(x509.AuthorityInformationAccess(aia), False)] if aia else []


def subject_alt_name(sans: SANs, name: x509.Name) -> list[GeneratedExtension]:
    """Step 11: the SAN, critical only when the subject is empty; neither subject nor SAN is refused."""
    if not sans.is_empty():
        return [(x509.SubjectAlternativeName(sans.general_names()), not name.rdns)]
    if not name.rdns:
        raise CfsslError(
            Category.CERTIFICATE, Reason.BAD_REQUEST, "the certificate would have neither a subject nor a subject alternative name"
        )
    return []


def name_constraints_extension(
    profile: SigningProfile, csr_constraints: x509.NameConstraints | None, *, is_ca: bool
) -> list[GeneratedExtension]:
    """Step 11 (our addition): a CA gets the profile's name constraints, else the CSR's (critical)."""
    if not is_ca:
        return []
    configured = profile.name_constraints
    nc = configured.to_extension() if configured is not None else None
    if nc is not None and configured is not None:
        return [(nc, configured.critical)]
    if csr_constraints is not None:
        return [(csr_constraints, True)]
    return []


def crl_distribution_points(req: SignRequest, profile: SigningProfile, default: SigningProfile) -> list[GeneratedExtension]:
    """Steps 4 and 11: the CRL DP from the request's ``crl_override``, else the profile's, else the default's."""
    crl_url = req.crl_override or profile.crl_url or default.crl_url
    if not crl_url:
        return []
    point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
    return [(x509.CRLDistributionPoints([point]), False)]


def trailing_extensions(profile: SigningProfile) -> list[GeneratedExtension]:
    """Step 11: certificate policies and OCSP no-check, which Go adds after the copied and request extensions."""
    out: list[GeneratedExtension] = []
    if profile.policies:
        out.append((certificate_policies(profile.policies), False))
    if profile.ocsp_no_check:
        out.append((x509.OCSPNoCheck(), False))
    return out


def add_extensions(
    builder: x509.CertificateBuilder,
    built_in: list[GeneratedExtension],
    extra: list[x509.Extension[x509.ExtensionType]],
    trailing: list[GeneratedExtension],
) -> x509.CertificateBuilder:
    """Step 11, in Go's order: the built-in extensions, the extra ones (copied CSR and request extensions), the
    trailing built-ins. A built-in whose OID is among the extra extensions is not generated (the extra wins)."""
    extra_oids = {e.oid for e in extra}
    for value, critical in built_in:
        if value.oid not in extra_oids:
            builder = builder.add_extension(value, critical=critical)
    for ext in extra:
        builder = builder.add_extension(ext.value, critical=ext.critical)
    for value, critical in trailing:
        if value.oid not in extra_oids:
            builder = builder.add_extension(value, critical=critical)
    return builder
