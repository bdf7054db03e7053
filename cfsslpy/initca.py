"""Creating and renewing self-signed CAs (cfssl ``initca``; reference §1.3 gencert, §3.5 CAPolicy).

The CA policy: usages cert sign + crl sign, CA:TRUE, 43800h (5 years of 365 days) unless ``ca.expiry``,
pathlen from ``ca.pathlen`` / ``ca.pathlenzero``, backdate from ``ca.backdate`` (5 minutes by default),
CRL distribution point from the request's ``crl_url``. A self-signed CA carries no AKI.

Unlike cfssl, a CA profile chosen with ``-config``/``-profile`` is honoured (cfssl ignores -config here).
"""

from __future__ import annotations

import datetime as dt
import logging

from cryptography import x509

from cfsslpy.config import Config, Signing, SigningProfile
from cfsslpy.csr import CertificateRequest, extract_request, generate_csr
from cfsslpy.errors import Category, CfsslError, Reason
from cfsslpy.golang.json import parse_duration
from cfsslpy.keys import PrivateKey, certificate_key_matches
from cfsslpy.signer import Issuer, LocalSigner, SignRequest
from cfsslpy.x509util import extension

log = logging.getLogger(__name__)


def profile_from_config(config: Config | None, profile_name: str = "") -> SigningProfile | None:
    """The CA profile ``-config``/``-profile`` select for initca, or None for the built-in CA policy.

    cfssl ignores ``-config`` for initca. We honour a named profile (it must be a CA profile, checked when
    signing) and a CA default profile; a config without one falls back to the built-in policy with a WARNING.
    """
    if config is None:
        return None
    if profile_name:
        return config.signing.profile(profile_name)  # an unknown name is 5400
    if config.signing.default.ca_constraint.is_ca:
        return config.signing.default
    log.warning("-config has no CA profile for -initca (name one with -profile): using the built-in CA policy")
    return None


def ca_profile(req: CertificateRequest) -> SigningProfile:
    """cfssl's CAPolicy for this request's ``ca`` section."""
    ca = req.ca
    if ca is None:
        return SigningProfile.ca_policy(crl_url=req.crl_url)
    expiry = parse_duration(ca.expiry) if ca.expiry else 0
    backdate = parse_duration(ca.backdate) if ca.backdate else 0
    kwargs = {"pathlen": ca.pathlen, "pathlenzero": ca.pathlenzero, "backdate": backdate, "crl_url": req.crl_url}
    if expiry:
        return SigningProfile.ca_policy(expiry=expiry, **kwargs)  # type: ignore[arg-type]
    return SigningProfile.ca_policy(**kwargs)  # type: ignore[arg-type]


def _checked_profile(req: CertificateRequest, profile: SigningProfile | None) -> SigningProfile:
    if profile is None:
        return ca_profile(req)
    if not profile.ca_constraint.is_ca:
        raise CfsslError(
            Category.POLICY, Reason.INVALID_REQUEST, "the selected profile cannot issue CA certificates (ca_constraint.is_ca is false)"
        )
    return profile


def self_sign_ca(
    req: CertificateRequest,
    key: PrivateKey,
    profile: SigningProfile | None = None,
    *,
    now: dt.datetime | None = None,
    exact_subject: x509.Name | None = None,
) -> tuple[x509.Certificate, x509.CertificateSigningRequest]:
    """Make the CSR for ``req`` with ``key`` and self-sign it as a CA (``gencert -initca -ca-key``)."""
    req.validate_initca()
    policy = _checked_profile(req, profile)
    csr = generate_csr(req, key)
    signer = LocalSigner(Issuer(key=key), Signing(default=policy))
    cert = signer.sign_csr(csr, SignRequest(request=b""), policy, now=now, exact_subject=exact_subject)
    return cert, csr


def new_ca(
    req: CertificateRequest, profile: SigningProfile | None = None, *, now: dt.datetime | None = None
) -> tuple[x509.Certificate, x509.CertificateSigningRequest, PrivateKey]:
    """Generate a key and a self-signed CA (``gencert -initca`` / ``genkey -initca``)."""
    req.validate_initca()
    _checked_profile(req, profile)
    key = req.key.generate()
    cert, csr = self_sign_ca(req, key, profile, now=now)
    return cert, csr, key


def renew_ca(cert: x509.Certificate, key: PrivateKey, *, now: dt.datetime | None = None) -> x509.Certificate:
    """Re-issue a self-signed CA with the same key, subject, SANs, pathlen and validity length, from now.

    Refuses a certificate that is not a CA (5300), a key that does not match (2300) and, unlike cfssl, an
    intermediate: renewing it here would silently turn it into a self-signed root. Unlike cfssl, the
    subject is kept byte for byte (cfssl rebuilds it from the extracted request, which loses attributes
    such as emailAddress and reorders foreign subjects, so the old CA's certificates stop chaining) and
    the CRL distribution point is kept.
    """
    bc = extension(cert, x509.BasicConstraints)
    if bc is None or not bc.ca:
        raise CfsslError(Category.POLICY, Reason.INVALID_REQUEST, "input certificate is not a CA cert")
    if not certificate_key_matches(key, cert):
        raise CfsslError(Category.PRIVATE_KEY, Reason.KEY_MISMATCH)
    if cert.issuer != cert.subject:
        raise CfsslError(
            Category.POLICY,
            Reason.INVALID_REQUEST,
            "input certificate is not self-signed: -renewca re-issues root CAs only (sign a new CSR with the parent CA instead)",
        )
    req = extract_request(cert)
    crldp = extension(cert, x509.CRLDistributionPoints)
    if crldp is not None:
        urls = [n.value for dp in crldp for n in dp.full_name or [] if isinstance(n, x509.UniformResourceIdentifier)]
        req.crl_url = urls[0] if urls else ""
    new_cert, _ = self_sign_ca(req, key, now=now, exact_subject=cert.subject)
    return new_cert
