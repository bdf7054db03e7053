"""What the CLI and the API sign through: the :class:`Signer` protocol, its ``info`` result, and ``issue``
(generate a key and a CSR, then have a signer sign it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cfsslpy.config import Signing, SigningProfile
from cfsslpy.errors import Category, CfsslError, Reason
from cfsslpy.keys import PrivateKey
from cfsslpy.signer.request import SignRequest

# cfssl's warning (CLI log line, API message 5300) for a certificate issued without hosts.
NO_HOSTS_WARNING = (
    'This certificate lacks a "hosts" field. This makes it unsuitable for\n'
    "websites. For more information see the Baseline Requirements for the Issuance and Management\n"
    "of Publicly-Trusted Certificates, v.1.1.6, from the CA/Browser Forum (https://cabforum.org);\n"
    'specifically, section 10.2.3 ("Information Requirements").'
)

Recorder = Callable[[x509.Certificate, SignRequest], None]


@dataclass(frozen=True)
class SignerInfo:
    """What ``info`` reports: the signing CA's certificate, a profile's usage strings and expiry string."""

    certificate: x509.Certificate
    usages: list[str]
    expiry: str

    def to_json(self) -> dict[str, Any]:
        """cfssl's info result, in Go struct order; the PEM without its trailing newline."""
        pem = self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii").rstrip("\n")
        return {"certificate": pem, "usages": list(self.usages), "expiry": self.expiry}


class Signer(Protocol):
    """What the CLI and the API sign through: :class:`LocalSigner`, the remote and the universal signers."""

    policy: Signing

    def sign(self, req: SignRequest) -> x509.Certificate: ...

    def profile(self, name: str) -> SigningProfile:
        """The profile a request for ``name`` is signed under; 5400 for a name this signer refuses."""
        ...

    def info(self, profile_name: str = "", label: str = "") -> SignerInfo: ...


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def issue(signer: Signer, req: Any, sign_request: SignRequest) -> tuple[x509.Certificate, x509.CertificateSigningRequest, PrivateKey]:
    """Generate a key and CSR for CSR JSON ``req`` and have ``signer`` (local, remote or universal) sign it.

    ``gencert`` and the API's ``newcert``. The request's ``hosts`` (already including any override) go into
    the CSR and ``sign_request.hosts`` is the override sent to the signer, as cfssl does. The key is
    generated here and never leaves this process.
    """
    from cfsslpy.csr import csr_pem, generate_csr

    if req.ca is not None:
        raise CfsslError(Category.POLICY, Reason.INVALID_REQUEST, "ca section only permitted in initca")
    req.key.validate()
    key = req.key.generate()
    csr = generate_csr(req, key)
    sign_request.request = csr_pem(csr)
    cert = signer.sign(sign_request)
    return cert, csr, key
