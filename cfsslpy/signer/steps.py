"""The steps of ``LocalSigner.sign_csr`` that decide what the certificate says, numbered as the reference
(§3.8) numbers them: the template from the CSR, and the checks and overrides the profile and the request apply."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtensionOID

from cfsslpy.capair import require_valid
from cfsslpy.config import CSRWhitelist, SigningProfile
from cfsslpy.csr import OID_DELEGATION_USAGE, SANs, Subject, classify_hosts
from cfsslpy.errors import Category, CfsslError, Reason, log_value
from cfsslpy.keys import is_dsa
from cfsslpy.signer.constraints import subject_emails
from cfsslpy.signer.extensions import CA_MANAGED
from cfsslpy.signer.issuer import Issuer
from cfsslpy.signer.request import SignRequest

log = logging.getLogger("cfsslpy.signer")  # one logger for the package, as when it was one module


@dataclass
class Template:
    """Step 2's result: what the CSR asks for, before the whitelist, the request and the profile have a say."""

    subject: Subject
    sans: SANs
    is_ca: bool = False  # the CSR's basicConstraints: only used for the policy checks of step 5
    path_length: int = -1  # the CSR's pathLenConstraint, -1 when absent
    carried: list[x509.Extension[x509.ExtensionType]] = field(default_factory=list)  # copied CSR extensions
    name_constraints: x509.NameConstraints | None = None  # the CSR's, used for a CA when the profile has none


def check_request_key(issuer: Issuer, csr: x509.CertificateSigningRequest, now: dt.datetime | None) -> CertificatePublicKeyTypes:
    """Step 1's checks left after decoding: the CA is valid at ``now`` (1211), the subject key is one we
    accept (9300; DSA refused without loading the key: DSA key objects are deprecated). The CSR's key."""
    if issuer.cert is not None and not issuer.valid_at(now):
        require_valid(issuer.cert, "CA", now)  # raises, naming the certificate and the bound
    if is_dsa(csr):
        raise _unsupported_subject_key()
    public_key = csr.public_key()
    _check_subject_key(public_key)
    return public_key


def template_from_csr(csr: x509.CertificateSigningRequest, profile: SigningProfile) -> Template:
    """Step 2: subject, SANs and basicConstraints from the CSR; the delegation-usage extension always carried
    over, the others only with ``copy_extensions`` and never a CA-managed one (ignored with a WARNING)."""
    subject = Subject.from_csr(csr)
    # The three extensions read here, in one pass (parse_csr_pem has parsed them and refused duplicates).
    san: x509.SubjectAlternativeName | None = None
    bc: x509.BasicConstraints | None = None
    name_constraints: x509.NameConstraints | None = None
    for ext in csr.extensions:
        value = ext.value
        if isinstance(value, x509.SubjectAlternativeName):
            san = value
        elif isinstance(value, x509.BasicConstraints):
            bc = value
        elif isinstance(value, x509.NameConstraints):
            name_constraints = value
    sans = SANs() if san is None else SANs.from_extension(san)
    carried: list[x509.Extension[x509.ExtensionType]] = []
    for ext in csr.extensions:
        if ext.oid == OID_DELEGATION_USAGE:
            carried.append(ext)
        elif profile.copy_extensions and ext.oid != ExtensionOID.BASIC_CONSTRAINTS:
            if ext.oid in CA_MANAGED:
                log.warning("copy_extensions: the CSR's %s extension is ignored (set by the CA profile)", ext.oid.dotted_string)
            else:
                carried.append(ext)
    return Template(
        subject=subject,
        sans=sans,
        is_ca=bool(bc is not None and bc.ca),
        path_length=-1 if bc is None or bc.path_length is None else bc.path_length,
        carried=carried,
        name_constraints=name_constraints,
    )


def apply_csr_whitelist(template: Template, wl: CSRWhitelist) -> None:
    """Step 3: keep only the whitelisted CSR fields; the CSR's CA request is dropped (as cfssl drops IsCA)."""
    if not wl.PublicKey:
        raise CfsslError(Category.CERTIFICATE, Reason.NONE, "x509: unsupported public key type: <nil>")
    if not wl.Subject:
        template.subject = Subject()
    sans = template.sans
    template.sans = SANs(
        dns=sans.dns if wl.DNSNames else [],
        email=sans.email if wl.EmailAddresses else [],
        ip=sans.ip if wl.IPAddresses else [],
        uri=sans.uri if wl.URIs else [],
    )
    template.is_ca = False


def check_ca_request(template: Template, profile: SigningProfile, issuer: Issuer) -> int | None:
    """Step 5: a CSR asking to be a CA needs a CA profile and, under a pathlen-limited issuer, a smaller
    pathlen; a CA profile needs an issuer whose pathlen is not 0 and a max_path_len under the issuer's (5300).
    Returns the pathlen the certificate gets: the profile's, never the CSR's."""
    issuer_pathlen = issuer.path_length
    if template.is_ca:
        if not profile.ca_constraint.is_ca:
            log.error("local signer policy disallows issuing CA certificate")
            raise CfsslError(Category.POLICY, Reason.INVALID_REQUEST)
        if issuer_pathlen is not None and issuer_pathlen > 0 and template.path_length >= issuer_pathlen:
            log.error("local signer certificate disallows CA MaxPathLen extending")
            raise CfsslError(Category.POLICY, Reason.INVALID_REQUEST)
    if profile.ca_constraint.is_ca and issuer.cert is not None and issuer_pathlen == 0:
        log.error("local signer certificate disallows issuing CA certificate (pathlen 0)")
        raise CfsslError(Category.POLICY, Reason.INVALID_REQUEST)
    issued_pathlen = profile.ca_constraint.path_length()
    if profile.ca_constraint.is_ca and issuer_pathlen is not None and issued_pathlen is not None and issued_pathlen >= issuer_pathlen:
        raise CfsslError(
            Category.POLICY,
            Reason.INVALID_REQUEST,
            f"the profile's max_path_len {issued_pathlen} does not fit under the CA's path length {issuer_pathlen}",
        )
    return issued_pathlen


def apply_request_overrides(template: Template, req: SignRequest) -> None:
    """Steps 6 and 7: request ``hosts`` (when given, even empty) replace all four SAN lists; the request's
    subject merges over the CSR's per attribute type (§3.7)."""
    if req.hosts is not None:
        template.sans = classify_hosts(req.hosts, Category.CERTIFICATE)
    if req.subject is not None:
        template.subject = req.subject.merge(template.subject)


def check_name_whitelist(pattern: re.Pattern[str], subject: Subject, sans: SANs) -> None:
    """Step 8: the CN and every SAN must match ``name_whitelist`` (unanchored search), else 5500.

    Subject emailAddress values are checked too: they are mirrored into the SAN in step 11. IP SANs too, in
    their text form (cfssl leaves them out: a whitelist for *.example.com let any IP in).
    """
    ips = [str(ip) for ip in sans.ip]
    for candidate in [subject.common_name, *sans.dns, *sans.email, *sans.uri, *ips, *subject_emails(subject)]:
        if candidate and pattern.search(candidate) is None:
            log.error("name %s does not match the profile's name_whitelist", log_value(candidate))
            raise CfsslError(Category.POLICY, Reason.UNMATCHED_WHITELIST)


def choose_serial(profile: SigningProfile, req: SignRequest) -> int:
    """Step 9: a fresh random serial, or the request's with ``ClientProvidesSerialNumbers`` (positive, at
    most 159 bits)."""
    if not profile.client_provides_serial_numbers:
        return new_serial()
    if req.serial is None:
        raise CfsslError(Category.CERTIFICATE, Reason.MISSING_SERIAL)
    if req.serial <= 0 or req.serial.bit_length() > 159:
        raise CfsslError(Category.CERTIFICATE, Reason.BAD_REQUEST, "serial number must be positive and at most 20 bytes")
    return req.serial


def request_extensions(
    req: SignRequest, profile: SigningProfile, carried: list[x509.Extension[x509.ExtensionType]]
) -> list[x509.Extension[x509.ExtensionType]]:
    """Step 10: the request's extensions, each whitelisted by the profile (1300), none CA-managed, none twice
    (counting the carried CSR extensions); their values are kept as given."""
    request_exts: list[x509.Extension[x509.ExtensionType]] = []
    allowed = set(profile.allowed_extensions)
    for ext in req.extensions:
        if ext.oid not in allowed:
            log.error("extension %s is not whitelisted by the profile", ext.oid.dotted_string)
            raise CfsslError(Category.CERTIFICATE, Reason.BAD_REQUEST)
        if ext.oid in CA_MANAGED:
            raise CfsslError(Category.CERTIFICATE, Reason.BAD_REQUEST, f"extension {ext.oid.dotted_string} is set by the CA profile")
        if ext.oid in {e.oid for e in carried + request_exts}:
            raise CfsslError(Category.CERTIFICATE, Reason.BAD_REQUEST, f"extension {ext.oid.dotted_string} appears twice")
        request_exts.append(x509.Extension(ext.oid, ext.critical, x509.UnrecognizedExtension(ext.oid, ext.value)))
    return request_exts


def final_sans(subject: Subject, sans: SANs, *, is_ca: bool) -> SANs:
    """Step 11, SANs: a CA keeps only its IP SANs; subject emailAddress values are added as email SANs
    (RFC 5280 §4.1.2.6: an email address in the subject MUST also be an rfc822Name SAN). May extend ``sans``."""
    if is_ca:
        if sans.dns or sans.email or sans.uri:
            log.info("CA certificate: DNS, email and URI SANs are removed (IP SANs are kept)")
        sans = SANs(ip=sans.ip)
    for email in subject_emails(subject):
        if email.lower() not in {e.lower() for e in sans.email}:
            log.info("subject emailAddress %s is added to the subject alternative names (RFC 5280)", log_value(email))
            sans.email.append(email)
    return sans


def certificate_subject(subject: Subject, exact_subject: x509.Name | None, *, is_ca: bool) -> x509.Name:
    """Step 11, subject: the encoded subject (or ``exact_subject``); a CA's cannot be empty (RFC 5280
    §4.1.2.6: it is what its certificates name as issuer)."""
    name = subject.to_name() if exact_subject is None else exact_subject
    if is_ca and not name.rdns:
        raise CfsslError(Category.POLICY, Reason.INVALID_REQUEST, "a CA certificate needs a subject (CN or names)")
    return name


def new_serial() -> int:
    """20 CSPRNG bytes with the top bit cleared: positive, at most 159 bits (cfssl's rule); never zero."""
    while True:
        serial = int.from_bytes(os.urandom(20), "big") & _SERIAL_MASK
        if serial:
            return serial


_SERIAL_MASK = (1 << 159) - 1  # the top bit of 20 bytes cleared


def _check_subject_key(public_key: Any) -> None:
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < 2048:
            raise CfsslError(Category.CSR, Reason.BAD_REQUEST, f"RSA key of {public_key.key_size} bits is too weak (minimum 2048)")
        return
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
            raise CfsslError(Category.CSR, Reason.BAD_REQUEST, f"unsupported elliptic curve {public_key.curve.name}")
        return
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return
    raise _unsupported_subject_key()


def _unsupported_subject_key() -> CfsslError:
    return CfsslError(Category.CSR, Reason.BAD_REQUEST, "unsupported public key algorithm (RSA, ECDSA P-256/384/521 or Ed25519)")
