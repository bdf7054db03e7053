"""Key generation, key encoding and loading, and the signature algorithm a key implies.

Security-relevant defaults (cfssl's, reference §3.6 and §7.4):

* generated keys default to ECDSA P-256; RSA must be 2048..8192 bits; ECDSA only P-256/384/521 (a P-224
  key loads, and signs CRLs and OCSP responses with SHA-256 as cfssl does, but never certificates or CSRs:
  cfssl would use ECDSA-SHA1 for them);
* a certificate's signature algorithm depends only on the signing key: RSA >= 4096 bits -> SHA-512,
  >= 3072 -> SHA-384, otherwise SHA-256 (PKCS#1 v1.5, never PSS); P-256/384/521 -> SHA-256/384/512;
  Ed25519 -> pure Ed25519. RSA keys under 2048 bits are refused as signing keys (cfssl would sign with
  SHA-1; we do not issue SHA-1 certificates, see README compatibility);
* CRLs and OCSP responses follow Go's other rule (RSA always SHA-256), see :func:`crl_hash`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import PublicKeyAlgorithmOID

from cfsslpy.certinfo import private_key_is_dsa
from cfsslpy.errors import Category, CfsslError, Reason
from cfsslpy.golang.decode import STRING, Int, Where, decode, go_struct
from cfsslpy.inputs import Stdin, read_input
from cfsslpy.pem import all_blocks, encode_pem

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
# The hashes cfssl's rule can pick (None = pure Ed25519); typed so the builders' ``sign`` accept them.
SignatureHash = hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | None

CA_KEY_PASSWORD_ENV = "CFSSL_CA_PK_PASSWORD"

_CURVES: dict[int, ec.EllipticCurve] = {256: ec.SECP256R1(), 384: ec.SECP384R1(), 521: ec.SECP521R1()}
_CURVE_SIZES = {"secp256r1": 256, "secp384r1": 384, "secp521r1": 521}


# Why a P-224 key is refused (2200); see _curve_size.
P224_REFUSED = (
    "ECDSA P-224 keys are refused: cfssl would sign certificates with them using ECDSA-SHA1 (its choice for "
    "curves other than P-256/384/521), and no SHA-1 signature is issued here; use P-256, P-384 or P-521"
)


def _key_error(message: str) -> CfsslError:
    return CfsslError(Category.PRIVATE_KEY, Reason.GENERATION_FAILED, message)


@go_struct("csr.KeyRequest", {"algo": STRING, "size": Int(whole_floats=True)})
@dataclass(frozen=True)
class KeyRequest:
    """The CSR JSON ``key`` object. Partial objects merge into the default ``{"algo":"ecdsa","size":256}``."""

    algo: str = "ecdsa"
    size: int = 256

    @classmethod
    def from_json(cls, obj: Any) -> KeyRequest:
        """The CSR's ``key`` (null or absent: the default), read as Go's encoding/json reads it."""
        return decode(cls, obj, at=Where("CertificateRequest", "key"))

    def to_json(self) -> dict[str, Any]:
        return {"algo": self.algo, "size": self.size}

    def validate(self) -> None:
        """cfssl's checks and messages (code 2400) before any key is generated."""
        if self.algo == "rsa":
            if self.size < 2048:
                raise _key_error("RSA key is too weak")
            if self.size > 8192:
                raise _key_error("RSA key size too large")
        elif self.algo == "ecdsa":
            if self.size not in _CURVES:
                raise _key_error("invalid curve")
        elif self.algo != "ed25519":
            raise _key_error("invalid algorithm")

    def generate(self) -> PrivateKey:
        self.validate()
        if self.algo == "rsa":
            return rsa.generate_private_key(public_exponent=65537, key_size=self.size)
        if self.algo == "ecdsa":
            return ec.generate_private_key(_CURVES[self.size])
        return ed25519.Ed25519PrivateKey.generate()


def encode_private_key(key: PrivateKey) -> bytes:
    """PEM as cfssl writes it: RSA PKCS#1, EC SEC1 (named curve), Ed25519 PKCS#8 as ``Ed25519 PRIVATE KEY``."""
    if isinstance(key, rsa.RSAPrivateKey):
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return encode_pem("Ed25519 PRIVATE KEY", der)


def load_private_key(
    data: bytes,
    *,
    environ: Mapping[str, str] | None = None,
    allow_password: bool = True,
) -> PrivateKey:
    """Load a private key PEM the way cfssl's helpers do (reference §7.8 item 34).

    PKCS#8, PKCS#1, SEC1 and cfssl's ``Ed25519 PRIVATE KEY`` are accepted whatever the PEM label says
    (cfssl ignores it too); leading ``EC PARAMETERS`` blocks are skipped. Legacy OpenSSL-encrypted PEM (``Proc-Type: 4,ENCRYPTED``) and encrypted PKCS#8 are
    decrypted with ``CFSSL_CA_PK_PASSWORD`` when ``allow_password``; without it -> 2100. No PEM -> 2002;
    undecodable DER (or a PEM block that is not a key) -> 2003; a key type cfssl does not support (DSA, secp256k1...) -> 2200.
    """
    blocks = [b for b in all_blocks(data) if b.label != "EC PARAMETERS"]
    if not blocks:
        raise CfsslError(Category.PRIVATE_KEY, Reason.DECODE_FAILED)
    block = blocks[0]
    encrypted = "ENCRYPTED" in block.headers.get("Proc-Type", "") or block.label == "ENCRYPTED PRIVATE KEY"
    password: bytes | None = None
    if encrypted:
        env = os.environ if environ is None else environ
        secret = env.get(CA_KEY_PASSWORD_ENV, "") if allow_password else ""
        if not secret:
            raise CfsslError(Category.PRIVATE_KEY, Reason.ENCRYPTED)
        password = secret.encode("utf-8")
    if block.label == "DSA PRIVATE KEY" or (not encrypted and private_key_is_dsa(block.data)):
        raise CfsslError(Category.PRIVATE_KEY, Reason.NOT_RSA_OR_ECC)  # not loaded: DSA key objects are deprecated
    # OpenSSL's RSA key check includes primality tests of p and q: 35-50 ms for a 2048-bit key, on every
    # command that loads a CA key. Go (cfssl) checks only that the primes multiply to n and that d inverts
    # e; _check_rsa does the same, and a CA key must still match its certificate to sign anything.
    try:
        if encrypted and block.label == "ENCRYPTED PRIVATE KEY":
            key: Any = serialization.load_der_private_key(block.data, password=password, unsafe_skip_rsa_key_validation=True)
        elif encrypted:
            key = serialization.load_pem_private_key(block.raw, password=password, unsafe_skip_rsa_key_validation=True)
        else:
            # Like cfssl, the label is not trusted: the DER is tried as PKCS#8, then PKCS#1 / SEC1
            # (so ``Ed25519 PRIVATE KEY`` and mislabelled blocks load too).
            key = serialization.load_der_private_key(block.data, password=None, unsafe_skip_rsa_key_validation=True)
    except UnsupportedAlgorithm as exc:
        raise CfsslError(Category.PRIVATE_KEY, Reason.NOT_RSA_OR_ECC) from exc
    except (ValueError, TypeError) as exc:
        if encrypted:
            # A wrong password must not echo anything about the secret.
            raise CfsslError(Category.PRIVATE_KEY, Reason.PARSE_FAILED, "failed to decrypt private key (wrong password?)") from None
        raise CfsslError(Category.PRIVATE_KEY, Reason.PARSE_FAILED) from exc
    if isinstance(key, rsa.RSAPrivateKey):
        _check_rsa(key)
    check_supported_key(key)
    return key  # type: ignore[no-any-return]


def _check_rsa(key: rsa.RSAPrivateKey) -> None:
    """Go's ``rsa.PrivateKey.Validate``: p*q == n and e*d == 1 modulo p-1 and q-1 (no primality test)."""
    numbers = key.private_numbers()
    p, q, d, n, e = numbers.p, numbers.q, numbers.d, numbers.public_numbers.n, numbers.public_numbers.e
    if p <= 1 or q <= 1 or p * q != n or (e * d) % (p - 1) != 1 or (e * d) % (q - 1) != 1:
        raise CfsslError(Category.PRIVATE_KEY, Reason.PARSE_FAILED, "crypto/rsa: invalid RSA private key")


def is_pkcs11_uri(spec: str) -> bool:
    """True for a ``pkcs11:`` URI (a key on a token; see :mod:`cfsslpy.pkcs11`)."""
    return spec[:7].lower() == "pkcs11:"


def load_key_spec(
    spec: str,
    *,
    stdin: Stdin | None = None,
    environ: Mapping[str, str] | None = None,
    allow_password: bool = True,
) -> PrivateKey:
    """The private key a flag names: a ``pkcs11:`` URI (the key stays on the token, see
    :func:`cfsslpy.pkcs11.load_private_key`), else ``-``/path/``file:``/``env:`` read and parsed as PEM by
    :func:`load_private_key`. Unreadable input is the :class:`PlainError` of :func:`read_input` (callers wrap it
    in their command's words); token errors are 2001/2200/2500.
    """
    if is_pkcs11_uri(spec):
        from cfsslpy import pkcs11  # lazily: python-pkcs11 is optional

        return pkcs11.load_private_key(spec, environ=environ)
    return load_private_key(read_input(spec, stdin=stdin, environ=environ), environ=environ, allow_password=allow_password)


def check_supported_key(key: Any) -> None:
    """The keys cfssl loads: RSA, ECDSA on P-224/256/384/521 and Ed25519 (2200 otherwise).

    A P-224 key loads (Go parses it, and cfssl signs CRLs and OCSP responses with it using ECDSA-SHA256, see
    :func:`crl_hash`) but :func:`signature_hash` refuses it for certificates and CSRs.
    """
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey, ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)) and (key.curve.name in _CURVE_SIZES or _is_p224(key)):
        return
    raise CfsslError(Category.PRIVATE_KEY, Reason.NOT_RSA_OR_ECC)


def _is_p224(key: Any) -> bool:
    return isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)) and key.curve.name == "secp224r1"


def _curve_size(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> int:
    """256, 384 or 521 for a certificate or CSR signing key; any other curve is 2200.

    cfssl signs certificates with a P-224 key using ECDSA-SHA1 (``signer.DefaultSigAlgo`` falls back to it
    for every curve but P-256/384/521; 1.2.0 and 1.6.5 alike). We issue no SHA-1 signatures, so a P-224
    key is refused here, saying so. Other curves (secp256k1, brainpool...) Go cannot parse at all (cfssl:
    2003); they keep cfssl's generic 2200 message.
    """
    size = _CURVE_SIZES.get(key.curve.name)
    if size is not None:
        return size
    if _is_p224(key):
        raise CfsslError(Category.PRIVATE_KEY, Reason.NOT_RSA_OR_ECC, P224_REFUSED)
    raise CfsslError(Category.PRIVATE_KEY, Reason.NOT_RSA_OR_ECC)


def signature_hash(key: CertificateIssuerPrivateKeyTypes | PublicKey) -> SignatureHash:
    """The hash cfssl signs certificates and CSRs with for this key (None for Ed25519)."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        if key.key_size < 2048:
            raise CfsslError(Category.PRIVATE_KEY, Reason.NOT_RSA_OR_ECC, f"RSA signing key of {key.key_size} bits is too weak")
        if key.key_size >= 4096:
            return hashes.SHA512()
        if key.key_size >= 3072:
            return hashes.SHA384()
        return hashes.SHA256()
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        size = _curve_size(key)
        return hashes.SHA256() if size == 256 else hashes.SHA384() if size == 384 else hashes.SHA512()
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return None
    raise CfsslError(Category.PRIVATE_KEY, Reason.NOT_RSA_OR_ECC)


def crl_hash(key: CertificateIssuerPrivateKeyTypes | PublicKey) -> SignatureHash:
    """Go's rule for CRLs and OCSP responses: RSA always SHA-256, EC by curve (P-224 too: SHA-256, as cfssl
    signs them), Ed25519 pure."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)) or _is_p224(key):
        return hashes.SHA256()
    return signature_hash(key)


def is_dsa(item: Any) -> bool:
    """A certificate's or CSR's subject key is DSA, read from its SubjectPublicKeyInfo algorithm OID.

    Callers ask before ``public_key()``: cryptography 51 deprecates DSA key objects (loading one warns), and
    neither cfssl nor Go (since 1.16) signs or verifies with DSA, so such a key is only ever reported or refused.
    """
    return bool(item.public_key_algorithm_oid == PublicKeyAlgorithmOID.DSA)


def certificate_key_matches(private_key: CertificateIssuerPrivateKeyTypes, cert: Any) -> bool:
    """:func:`public_key_matches` against a certificate's key; a DSA certificate never matches a key cfssl loads."""
    return not is_dsa(cert) and public_key_matches(private_key, cert.public_key())


def public_key_matches(private_key: CertificateIssuerPrivateKeyTypes, public_key: Any) -> bool:
    """True when ``public_key`` is the public half of ``private_key`` (compared on the SPKI DER)."""
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    try:
        return bool(private_key.public_key().public_bytes(enc, fmt) == public_key.public_bytes(enc, fmt))
    except (AttributeError, ValueError):
        return False


def key_description(key: Any) -> tuple[str, int]:
    """(algo, size) in CSR JSON terms, for extracting requests from certificates."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "rsa", key.key_size
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return "ecdsa", _CURVE_SIZES.get(key.curve.name, key.curve.key_size)
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "ed25519", 0
    return "unknown", 0


__all__ = [
    "PrivateKey",
    "PublicKey",
    "KeyRequest",
    "encode_private_key",
    "load_private_key",
    "load_key_spec",
    "is_pkcs11_uri",
    "check_supported_key",
    "P224_REFUSED",
    "signature_hash",
    "crl_hash",
    "public_key_matches",
    "certificate_key_matches",
    "is_dsa",
    "key_description",
    "CA_KEY_PASSWORD_ENV",
]
