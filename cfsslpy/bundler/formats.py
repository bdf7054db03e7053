"""Input formats: the certificates (and key) a bundle is built from, and the pools' PEM files.

cfssl reads a bundle input as PEM (certificates or PKCS#7 blocks) and then as DER (PKCS#7, PKCS#12, one or
more concatenated certificates), with its exact error codes; pools of thousands of certificates take a
fast path that keeps each certificate's DER for the pool's name search.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.utils import CryptographyDeprecationWarning

from cfsslpy.errors import Category, CfsslError, PlainError, Reason
from cfsslpy.inputs import read_path
from cfsslpy.keys import PrivateKey, check_supported_key, load_private_key
from cfsslpy.pem import all_blocks, decode_pem_at, plain_certificate_ders

log = logging.getLogger("cfsslpy.bundler")  # one logger for the package, as when it was one module


#: Where the system's trusted roots usually live (Go's crypto/x509 list for Linux and the BSDs).
SYSTEM_ROOT_FILES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Gentoo, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL 6
    "/etc/ssl/ca-bundle.pem",  # openSUSE
    "/etc/pki/tls/cacert.pem",  # OpenELEC
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # CentOS, RHEL 7
    "/etc/ssl/cert.pem",  # Alpine, macOS, the BSDs
    "/usr/local/etc/ssl/cert.pem",  # FreeBSD
)
_NOT_SUPPORTED = CfsslError(Category.PRIVATE_KEY, Reason.NOT_RSA_OR_ECC)


# --------------------------------------------------------------------------------------------------------------
# PEM


def lenient_pem_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate that parses cleanly; blocks that do not (or only with a deprecation warning, such as a
    system root with a non-positive serial number, which a future cryptography will refuse) are skipped."""
    certs: list[x509.Certificate] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", CryptographyDeprecationWarning)
        for block in all_blocks(data):
            if block.label != "CERTIFICATE":
                continue
            try:
                certs.append(x509.load_der_x509_certificate(block.data))
            except (ValueError, CryptographyDeprecationWarning) as exc:
                log.debug("skipped a certificate that does not parse cleanly: %s", exc)
                continue
    return certs


class _CertList(list[x509.Certificate]):
    """Certificates parsed from one PEM bundle, with each one's DER as it stood in the file (``raw``), so that
    a pool can search names in the DER without asking cryptography to re-encode every certificate."""

    raw: list[bytes]


def _plain_certificate_bundle(text: bytes, *, strict: bool = True) -> list[x509.Certificate] | None:
    """The common case, parsed fast: :func:`cfsslpy.pem.plain_certificate_ders` frames the bundle and decodes
    each block's base64, cryptography parses each DER (about half the time of its PEM loader, and the DER is
    kept for the pools). None when anything is unusual (another block type, trailing data, a block that does
    not decode or parse), so that the block-by-block parser below gives cfssl's exact answer."""
    ders = plain_certificate_ders(text)
    if ders is None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", CryptographyDeprecationWarning)
            parsed = _CertList(map(x509.load_der_x509_certificate, ders))
            for cert in parsed if strict else ():
                _ = cert.extensions  # Go rejects malformed extensions up front
    except (ValueError, CryptographyDeprecationWarning, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
        return None
    parsed.raw = ders
    return parsed


def parse_pem_certificates(data: bytes, *, strict: bool = True) -> list[x509.Certificate]:
    """cfssl ``helpers.ParseCertificatesPEM``: every block a certificate or a PKCS#7 bundle; no trailing junk.

    Raises CfsslError 1003 for a block that does not parse, 1002 for data left over that is not PEM.
    """
    text = data.strip()
    fast = _plain_certificate_bundle(text, strict=strict)
    if fast is not None:
        return fast
    certs: list[x509.Certificate] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos] in b" \t\r\n\v\f":  # Go trims the rest before each block
            pos += 1
        if pos == len(text):
            break
        block, after = decode_pem_at(text, pos)
        if block is None:
            break
        try:
            cert = x509.load_der_x509_certificate(block.data)
            _ = cert.extensions
            certs.append(cert)
        except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
            try:
                bundle = _load_pkcs7(block.data)
            except ValueError:
                bundle = []
            if not bundle:
                raise CfsslError(Category.CERTIFICATE, Reason.PARSE_FAILED) from None
            certs.extend(bundle)
        pos = after
    if pos < len(text):
        raise CfsslError(Category.CERTIFICATE, Reason.DECODE_FAILED)
    return certs


def _load_pkcs7(der: bytes) -> list[x509.Certificate]:
    """The certificates of a PKCS#7 bundle. ``openssl crl2pkcs7`` keeps file order in the certificate SET,
    which is not DER's sorted order; cryptography then parses it as BER with a warning (which a future
    release may turn into an error). Go reads such files silently, so do we; the warning goes to DEBUG."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        certs = pkcs7.load_der_pkcs7_certificates(der)
    for warning in caught:
        log.debug("PKCS#7 input: %s", warning.message)
    return certs


# --------------------------------------------------------------------------------------------------------------
# DER


def parse_der_certificates(data: bytes, password: str) -> tuple[list[x509.Certificate], PrivateKey | None]:
    """cfssl ``helpers.ParseCertificatesDER``: PKCS#7, then PKCS#12 (with ``password``), then concatenated DER.

    cfssl trims white space around the input first, which corrupts DER that happens to end with a byte such
    as 0x0a (a signature's last byte, one time in forty). The input is tried as it is, then trimmed (a file
    with a trailing newline)."""
    stripped = data.strip()
    if stripped == data:
        return _parse_der_exact(data, password)
    try:
        return _parse_der_exact(data, password)
    except CfsslError:
        return _parse_der_exact(stripped, password)


def _parse_der_exact(data: bytes, password: str) -> tuple[list[x509.Certificate], PrivateKey | None]:
    try:
        certs = _load_pkcs7(data)
        if certs:
            return certs, None
    except ValueError:
        pass
    try:
        p12 = pkcs12.load_pkcs12(data, password.encode("utf-8"))
    except (ValueError, TypeError, UnsupportedAlgorithm):
        p12 = None
    if p12 is not None and p12.cert is not None:
        key: Any = p12.key
        if key is not None:
            check_supported_key(key)
        # Go's pkcs12.Decode takes exactly one certificate; we keep any extra ones as part of the chain.
        return [p12.cert.certificate, *(c.certificate for c in p12.additional_certs)], key
    certs = []
    rest = data
    try:
        while rest:
            cert, rest = _one_der_certificate(rest)
            certs.append(cert)
    except ValueError:
        raise CfsslError(Category.CERTIFICATE, Reason.DECODE_FAILED) from None
    if not certs:
        raise CfsslError(Category.CERTIFICATE, Reason.DECODE_FAILED)
    return certs, None


def _one_der_certificate(data: bytes) -> tuple[x509.Certificate, bytes]:
    """The first DER certificate of a concatenation (SEQUENCE length from the header) and the rest."""
    if len(data) < 2 or data[0] != 0x30:
        raise ValueError("not a DER SEQUENCE")
    first = data[1]
    if first < 0x80:
        length, header = first, 2
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or len(data) < 2 + count:
            raise ValueError("bad DER length")
        length, header = int.from_bytes(data[2 : 2 + count], "big"), 2 + count
    end = header + length
    if end > len(data):
        raise ValueError("truncated DER")
    return x509.load_der_x509_certificate(data[:end]), data[end:]


# --------------------------------------------------------------------------------------------------------------
# Bundle inputs, pool files, the system roots and the bundle key


def parse_bundle_input(data: bytes, password: str = "0") -> tuple[list[x509.Certificate], PrivateKey | None]:
    """The certificates (leaf first, maybe followed by part of its chain) and any key of a bundle input.

    PEM (certificates or PKCS#7 blocks) is tried first; if that fails, DER: PKCS#7, PKCS#12 (decrypted with
    ``password``, cfssl's default ``"0"``; its key is returned) or one or more concatenated certificates. When
    neither works the PEM error is reported (1002 no PEM / 1003 a block that does not parse), like cfssl.
    """
    try:
        certs = parse_pem_certificates(data)
        key: PrivateKey | None = None
    except CfsslError as pem_error:
        try:
            certs, key = parse_der_certificates(data, password)
        except CfsslError:
            raise pem_error from None
    if not certs:
        raise CfsslError(Category.CERTIFICATE, Reason.DECODE_FAILED)
    return certs, key


def pool_certificates(data: bytes, category: Category) -> list[x509.Certificate]:
    try:
        # pools of thousands: extensions are parsed when a certificate is used, not all up front (a pool
        # certificate with a malformed extension then never makes a valid chain, instead of failing the load)
        return parse_pem_certificates(data, strict=False)
    except CfsslError:
        raise CfsslError(category, Reason.PARSE_FAILED) from None


def system_roots() -> list[x509.Certificate]:
    """The system's trusted roots: ``$SSL_CERT_FILE`` or the first of :data:`SYSTEM_ROOT_FILES` that holds any."""
    candidates = [os.environ["SSL_CERT_FILE"]] if os.environ.get("SSL_CERT_FILE") else []
    for path in [*candidates, *SYSTEM_ROOT_FILES]:
        try:
            certs = lenient_pem_certificates(read_path(path))
        except PlainError:
            continue
        if certs:
            return certs
    raise CfsslError(
        Category.ROOT,
        Reason.READ_FAILED,
        f"no system root certificates found (looked in {', '.join(SYSTEM_ROOT_FILES)}); give the roots with -ca-bundle",
    )


def load_bundle_key(data: bytes) -> PrivateKey:
    """The private key given with a bundle (``-key``, ``private_key``), parsed as cfssl's ``ParsePrivateKeyPEM``.

    A key of a type Go cannot parse at all (DSA, a curve it lacks) fails to parse there: 2003 "Failed to parse
    private key", where our signing-key loader says 2200. No password is applied (cfssl applies none).
    """
    try:
        return load_private_key(data, allow_password=False)
    except CfsslError as exc:
        if exc.code == _NOT_SUPPORTED.code and exc.message == _NOT_SUPPORTED.message:
            raise CfsslError(Category.PRIVATE_KEY, Reason.PARSE_FAILED) from None
        raise
