"""PEM framing and certificate / CSR parsing with cfssl's error codes (reference §7.8)."""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ObjectIdentifier, PublicKeyAlgorithmOID, SignatureAlgorithmOID

from cfsslpy.errors import Category, CfsslError, Reason

# Go's pem.Decode takes any label (cfssl writes "Ed25519 PRIVATE KEY"); the END line must repeat it.
_BLOCK = re.compile(
    rb"-----BEGIN ([^\r\n]*?)-----[ \t]*\r?\n(.*?)-----END \1-----[ \t]*\r?\n?",
    re.DOTALL,
)
log = logging.getLogger(__name__)
_HEADER = re.compile(rb"^([A-Za-z0-9-]+):[ \t]*(.*)$")


@dataclass(frozen=True)
class PemBlock:
    label: str
    headers: dict[str, str]
    data: bytes
    raw: bytes  # the whole block as it appeared, for re-emitting legacy encrypted keys


def decode_pem(data: bytes) -> tuple[PemBlock | None, bytes]:
    """Go's ``pem.Decode``: the first block (skipping leading junk) and the rest; (None, data) if none."""
    block, end = decode_pem_at(data, 0)
    return (block, data[end:]) if block is not None else (None, data)


def decode_pem_at(data: bytes, pos: int = 0) -> tuple[PemBlock | None, int]:
    """:func:`decode_pem` from offset ``pos`` without copying the rest: (block, offset after it), or
    (None, ``pos``). Walking a large bundle with offsets is linear; slicing off the rest each time is not."""
    match = _BLOCK.search(data, pos)
    while match is not None:
        block = _parse_block(match)
        if block is not None:
            return block, match.end()
        match = _BLOCK.search(data, match.end())
    return None, pos


def _parse_block(match: re.Match[bytes]) -> PemBlock | None:
    label = match.group(1).decode("utf-8", "replace")
    body = match.group(2)
    headers: dict[str, str] = {}
    lines = body.splitlines()
    index = 0
    if lines and b":" in lines[0]:
        while index < len(lines):
            header = _HEADER.match(lines[index].strip())
            if header is None:
                break
            headers[header.group(1).decode("ascii", "replace")] = header.group(2).decode("ascii", "replace")
            index += 1
        if index < len(lines) and not lines[index].strip():
            index += 1
    payload = b"".join(line.strip() for line in lines[index:])
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None
    return PemBlock(label, headers, data, match.group(0))


def all_blocks(data: bytes) -> list[PemBlock]:
    blocks: list[PemBlock] = []
    pos = 0
    while True:
        block, pos = decode_pem_at(data, pos)
        if block is None:
            return blocks
        blocks.append(block)


# --------------------------------------------------------------------------------------------------------------
# The find-based framer: big bundles and pools. Labels and the END line are found with bytes.find rather than
# the regular expression above (a bundle of 10,000 certificates is framed in a few milliseconds).

_BEGIN = b"-----BEGIN "
_DASHES = b"-----"
_BEGIN_CERT = b"-----BEGIN CERTIFICATE-----"
_END_CERT = b"-----END CERTIFICATE-----"


def pem_spans(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(label, end of the BEGIN line's dashes, start of the END line) for every ``-----BEGIN X-----`` ..
    ``-----END X-----`` pair, in order.

    A BEGIN whose label runs past the end of its line is skipped; the first BEGIN without its END stops the
    scan. Each caller decides where the body starts (the next line, or right after the dashes).
    """
    find = data.find  # the hot loop of a pool of 10,000 certificates
    label: bytes | None = None
    label_dashes = end_line = b""
    pos = find(_BEGIN)
    while pos >= 0:
        label_start = pos + len(_BEGIN)
        if label is not None and data.startswith(label_dashes, label_start):
            # the previous block's label again (a label never holds "-----" nor ends with "-", so its dashes
            # are the first after label_start)
            label_end = label_start + len(label)
        else:
            label_end = find(_DASHES, label_start)
            if label_end < 0 or find(b"\n", label_start, label_end) >= 0:
                pos = find(_BEGIN, label_start)
                continue
            label = data[label_start:label_end]
            label_dashes = label + _DASHES
            end_line = b"-----END " + label_dashes
        end = find(end_line, label_end)
        if end < 0:
            return
        yield label, label_end + len(_DASHES), end
        pos = find(_BEGIN, end)


def pem_blocks(data: bytes) -> Iterator[tuple[int, bytes, bytes]]:
    """(block number from 1, label, body) for every block of :func:`pem_spans`, the body from the line after
    the BEGIN line; the scan stops at a BEGIN with no newline after it (mkbundle's walk of PEM files)."""
    for number, (label, head_end, end) in enumerate(pem_spans(data), 1):
        line_end = data.find(b"\n", head_end)
        if line_end < 0:
            return
        yield number, label, data[line_end + 1 : end]


def lenient_body_der(body: bytes) -> bytes:
    """The DER of a block body from :func:`pem_blocks`: RFC 1421 headers before a blank line (rare in certificate
    blocks) dropped, the rest decoded leniently (characters outside base64 ignored; strict_mode= is 3.11+).
    Raises binascii.Error for base64 that does not decode."""
    if b":" in body:
        head, sep, rest = body.partition(b"\n\n")
        if not sep:
            head, sep, rest = body.partition(b"\r\n\r\n")
        if sep and all(b":" in line for line in head.splitlines() if line.strip()):
            body = rest
    return binascii.a2b_base64(body)


def plain_certificate_ders(text: bytes) -> list[bytes] | None:
    """The fast path's framing: the DER of each block of a plain certificate bundle, in order.

    Plain means only CERTIFICATE blocks, none with headers (no ``:`` in it), each with its own END line, and
    ``text`` ending with the last END line. The body runs from the BEGIN line's dashes to the END line and is
    decoded leniently. None when anything is unusual, so that the block-by-block parser gives the exact answer.
    """
    count = text.count(_BEGIN_CERT)
    if not count or text.count(_BEGIN) != count or not text.endswith(_END_CERT):
        return None
    # Headers, or an END sharing dashes with the next BEGIN: checked block by block only if the text has any.
    suspect = b":" in text or b"-----END CERTIFICATE------" in text or b"-----END CERTIFICATE-----BEGIN " in text
    ders: list[bytes] = []
    for _, body_start, end in pem_spans(text):  # every label is CERTIFICATE: each BEGIN is a _BEGIN_CERT
        if end < body_start:  # an END overlapping the BEGIN line's dashes
            return None
        body = text[body_start:end]
        if suspect and (b":" in body or _shares_dashes_with_a_begin(text, end)):
            return None
        try:
            ders.append(binascii.a2b_base64(body))
        except binascii.Error:
            return None
    # a block whose END comes after the next BEGIN swallows that BEGIN: fewer blocks than BEGIN lines
    return ders if len(ders) == count else None


def _shares_dashes_with_a_begin(text: bytes, end: int) -> bool:
    """Whether a BEGIN starts within the last dashes of the END line at ``end`` (``CERTIFICATE-----BEGIN``)."""
    after = end + len(_END_CERT)
    return text.find(_BEGIN, after - len(_DASHES), after + len(_BEGIN) - 1) >= 0


def encode_pem(label: str, der: bytes) -> bytes:
    """PEM with 64-character lines, ``\\n`` endings and a trailing newline (reference §7.6)."""
    b64 = base64.b64encode(der)
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return b"".join([f"-----BEGIN {label}-----\n".encode(), *(line + b"\n" for line in lines), f"-----END {label}-----\n".encode()])


def parse_certificate_pem(data: bytes, category: Category = Category.CERTIFICATE) -> x509.Certificate:
    """Exactly one certificate (cfssl ``helpers.ParseCertificatePEM``); ``category`` picks 1xxx/3xxx/4xxx.

    No PEM at all -> x002; bad DER or anything after the certificate -> x003 (``the PEM file should
    contain only one object``).
    """
    stripped = data.strip()
    block, rest = decode_pem(stripped)
    if block is None:
        raise CfsslError(category, Reason.DECODE_FAILED)
    # Like Go, the label is not checked: the DER is tried as a certificate, then as PKCS#7. The parse
    # error itself is only logged at DEBUG (cfssl does the same and reports its fixed message).
    try:
        cert = x509.load_der_x509_certificate(block.data)
        _ = cert.extensions  # parsed lazily by cryptography; Go rejects malformed extensions up front
        certs = [cert]
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        log.debug("certificate parsing error: %s", exc)
        try:
            from cryptography.hazmat.primitives.serialization import pkcs7

            certs = pkcs7.load_der_pkcs7_certificates(block.data)
        except ValueError:
            raise CfsslError(category, Reason.PARSE_FAILED) from exc
        if not certs:
            raise CfsslError(category, Reason.PARSE_FAILED) from exc
    if rest.strip():
        raise CfsslError(category, Reason.PARSE_FAILED, "the PEM file should contain only one object")
    if len(certs) > 1:
        raise CfsslError(category, Reason.PARSE_FAILED, "the PKCS7 object in the PEM file should contain only one certificate")
    return certs[0]


def parse_certificates_pem(data: bytes, category: Category = Category.CERTIFICATE) -> list[x509.Certificate]:
    """Every CERTIFICATE block in ``data`` (bundles, pools); none -> x002; a bad one -> x003."""
    certs: list[x509.Certificate] = []
    for block in all_blocks(data):
        if block.label != "CERTIFICATE":
            continue
        try:
            certs.append(x509.load_der_x509_certificate(block.data))
        except ValueError as exc:
            raise CfsslError(category, Reason.PARSE_FAILED, f"x509: malformed certificate ({exc})") from exc
    if not certs:
        raise CfsslError(category, Reason.DECODE_FAILED)
    return certs


CSR_LABELS = ("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST")

# Go's sha1WithRSAEncryption (PKCS#1 and the old ISO OID) and ecdsa-with-SHA1: the SHA-1 signatures Go's
# CertificateRequest.CheckSignature verifies (it allows SHA-1 for CSRs; MD2/MD5 are refused).
_SHA1_RSA = {SignatureAlgorithmOID.RSA_WITH_SHA1, ObjectIdentifier("1.3.14.3.2.29")}
# cryptography refuses an RDN holding two identical attributes; Go (and cfssl genkey) writes them, see
# :func:`_check_subject`. This is the text of cryptography's ValueError.
_DUPLICATE_ATTRIBUTES = "duplicate attributes are not allowed"


def parse_csr_pem(data: bytes, *, check_signature: bool = True) -> x509.CertificateSigningRequest:
    """A PKCS#10 request as cfssl's signer reads it (reference §3.8 step 1).

    No PEM -> 9002; another PEM type -> 9300 ``not a csr``; bad DER -> 9003; bad signature -> 9300.
    A SHA-1 signature is checked like any other (Go does for CSRs); what the CA signs with does not depend on it.
    A subject with an RDN of two identical attributes (``OU=Eng+OU=Eng``, which cfssl genkey writes) parses here;
    read it with ``csr.Subject.from_csr``, not ``csr.subject``, which raises ValueError for it.
    """
    block, _ = decode_pem(data)
    if block is None:
        raise CfsslError(Category.CSR, Reason.DECODE_FAILED)
    if block.label not in CSR_LABELS:
        raise CfsslError(Category.CSR, Reason.BAD_REQUEST, "not a csr")
    try:
        csr = x509.load_der_x509_csr(block.data)
        # A DSA key is not loaded (cryptography 51 deprecates DSA key objects) nor its signature checked (Go
        # >= 1.16 cannot either): the signer refuses the key type (9300) before it would need either.
        dsa = csr.public_key_algorithm_oid == PublicKeyAlgorithmOID.DSA  # type: ignore[attr-defined]  # in 51, not in its stub
        # Force parsing of the parts cryptography parses lazily, so a malformed CSR fails here with 9003.
        _check_subject(csr)
        _ = dsa or csr.public_key(), csr.extensions
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        raise CfsslError(Category.CSR, Reason.PARSE_FAILED, f"x509: malformed certificate request: {exc}") from exc
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm for odd keys
        raise CfsslError(Category.CSR, Reason.PARSE_FAILED, str(exc) or "CSR Parsing failed") from exc
    if check_signature and not dsa and not csr_signature_is_valid(csr):
        raise CfsslError(Category.CSR, Reason.BAD_REQUEST, "x509: signature verification failure")
    return csr


def _check_subject(csr: x509.CertificateSigningRequest) -> None:
    """Parse the subject, except for the one thing Go accepts and cryptography cannot represent.

    Go's ``pkix.Name.ToRDNSequence`` puts all values of a type into one multi-valued RDN, so the CSR cfssl
    genkey makes for ``"names":[{"OU":"Eng","C":"US"},{"OU":"Eng","C":"GB"}]`` has the RDN ``OU=Eng+OU=Eng``.
    cryptography's ``RelativeDistinguishedName`` refuses identical attributes; such a subject is left to
    ``csr.Subject.from_csr``, which reads it with Go's parser (and answers 9003 where Go would refuse it).
    """
    try:
        _ = csr.subject
    except ValueError as exc:
        if str(exc) != _DUPLICATE_ATTRIBUTES:
            raise


def csr_signature_is_valid(csr: x509.CertificateSigningRequest) -> bool:
    """Go's ``CertificateRequest.CheckSignature``: cryptography's check, plus the SHA-1 signatures it refuses.

    ``is_signature_valid`` is False for every SHA-1 signature, valid or not; Go verifies SHA-1 CSR signatures
    (``allowSHA1``), and ``openssl req -verify`` accepts them, so they are verified here with the subject key.
    """
    if csr.is_signature_valid:
        return True
    oid = csr.signature_algorithm_oid
    key = csr.public_key()
    try:
        if oid in _SHA1_RSA and isinstance(key, rsa.RSAPublicKey):
            key.verify(csr.signature, csr.tbs_certrequest_bytes, padding.PKCS1v15(), hashes.SHA1())
        elif oid == SignatureAlgorithmOID.ECDSA_WITH_SHA1 and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(csr.signature, csr.tbs_certrequest_bytes, ec.ECDSA(hashes.SHA1()))
        else:
            return False
    except InvalidSignature:
        return False
    return True
