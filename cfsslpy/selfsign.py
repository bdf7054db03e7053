"""Self-signed leaf certificates (cfssl ``selfsign``, for testing only).

The certificate is built by the same signer as every other certificate, with the request's own key as
issuer: the profile's usages, CA constraint, URLs and policies apply (cfssl 2016 ignored most of them and
left out the SANs); without a config the default profile lasts 2190h. Unlike Go's output, the certificate
carries an AKI (its own key identifier): RFC 5280 §4.2.1.1 exempts only self-signed CA certificates, and
pkilint and cryptography's verifier insist on it for an end-entity certificate.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509

from cfsslpy.config import SELFSIGN_EXPIRY, Config, Signing, SigningProfile
from cfsslpy.csr import CertificateRequest, generate_csr
from cfsslpy.keys import PrivateKey
from cfsslpy.signer import Issuer, LocalSigner, SignRequest

WARNING = """*** WARNING ***

Self-signed certificates are dangerous. Use this self-signed
certificate at your own risk.

It is strongly recommended that these certificates NOT be used
in production.

*** WARNING ***
"""


def policy_from_config(config: Config | None, profile_name: str = "") -> Signing:
    """The signing policy for selfsign: the config's (an unknown ``-profile`` is an error, where cfssl falls
    back silently), else the built-in default profile with cfssl's selfsign lifetime of 2190h."""
    if config is None:
        return Signing(default=SigningProfile.builtin_default(SELFSIGN_EXPIRY))
    config.signing.profile(profile_name)  # an unknown name is 5400
    return config.signing


def selfsign(
    req: CertificateRequest, policy: Signing | None = None, profile_name: str = "", *, now: dt.datetime | None = None
) -> tuple[x509.Certificate, x509.CertificateSigningRequest, PrivateKey]:
    """Generate a key and CSR for ``req`` and sign it with that same key.

    Validity as cfssl's selfsign (its own rule, not the signer's): from now - 5 minutes to now + expiry, not
    rounded to the minute.
    """
    if policy is None:
        policy = Signing(default=SigningProfile.builtin_default(SELFSIGN_EXPIRY))
    profile = policy.profile(profile_name)
    key = req.key.generate()
    csr = generate_csr(req, key)
    signer = LocalSigner(Issuer(key=key), policy)
    current = now or dt.datetime.now(dt.timezone.utc)
    if current.tzinfo is None:
        current = current.replace(tzinfo=dt.timezone.utc)
    expiry = dt.timedelta(microseconds=(profile.expiry or policy.default.expiry) // 1000)
    window = SignRequest(request=b"", not_before=current - dt.timedelta(minutes=5), not_after=current + expiry)
    cert = signer.sign_csr(csr, window, profile)
    return cert, csr, key
