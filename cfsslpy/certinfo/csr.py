"""Certificate requests: the dump of Go 1.19's ``x509.CertificateRequest`` that cfssl prints for ``certinfo -csr``
(byte fields as base64, algorithms as Go enum integers, the public key as Go's key struct, the subject as
``pkix.Name``, SAN fields parsed with Go's rules)."""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cfsslpy.certinfo.algorithms import algorithm_identifier, signature_algorithm
from cfsslpy.certinfo.der import (
    CONTEXT,
    NULL,
    TAG_BIT_STRING,
    TAG_INTEGER,
    TAG_OID,
    TAG_SET,
    TLV,
    ASN1Error,
    bit_string,
    children,
    dotted,
    expect,
    go_any,
    integer,
    one,
    parse_oid,
    right_align,
    sequence,
)
from cfsslpy.certinfo.extensions import OID_SAN, SANs, parse_extension, parse_sans
from cfsslpy.certinfo.names import parse_name, pkix_name
from cfsslpy.errors import Category, CfsslError, Reason
from cfsslpy.pem import decode_pem
from cfsslpy.x509util import b64

_OID_EXTENSION_REQUEST = [1, 2, 840, 113549, 1, 9, 14]
_PUBLIC_KEY_ALGORITHMS = {"1.2.840.113549.1.1.1": 1, "1.2.840.10040.4.1": 2, "1.2.840.10045.2.1": 3, "1.3.101.112": 4}
_CURVES: dict[str, ec.EllipticCurve] = {
    "1.3.132.0.33": ec.SECP224R1(),
    "1.2.840.10045.3.1.7": ec.SECP256R1(),
    "1.3.132.0.34": ec.SECP384R1(),
    "1.3.132.0.35": ec.SECP521R1(),
}


def _public_key(algorithm: int, params: bytes, key: bytes) -> Any:
    """Go 1.19 ``parsePublicKey`` -> the key struct as encoding/json prints it."""
    if algorithm == 1:
        if params != NULL:
            raise ASN1Error("x509: RSA key missing NULL parameters")
        parts = sequence(one(key, "RSA public key"), "pkcs1PublicKey", 2)
        n = integer(expect(parts[0], TAG_INTEGER, "N").content, bits=None)
        e = integer(expect(parts[1], TAG_INTEGER, "E").content)
        if n <= 0:
            raise ASN1Error("x509: RSA modulus is not a positive number")
        if e <= 0:
            raise ASN1Error("x509: RSA public exponent is not a positive number")
        return {"N": n, "E": e}
    if algorithm == 3:
        try:
            curve_oid = dotted(parse_oid(expect(one(params), TAG_OID, "namedCurve").content))
        except ASN1Error:
            raise ASN1Error("x509: invalid ECDSA parameters") from None
        curve = _CURVES.get(curve_oid)
        if curve is None:
            raise ASN1Error("x509: unsupported elliptic curve")
        size = (curve.key_size + 7) // 8
        # Go's elliptic.Unmarshal takes the uncompressed form only, and checks the point is on the curve.
        if len(key) != 1 + 2 * size or key[0] != 4:
            raise ASN1Error("x509: failed to unmarshal elliptic curve point")
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(curve, key)
        except ValueError:
            raise ASN1Error("x509: failed to unmarshal elliptic curve point") from None
        # The Curve interface holds a struct with unexported fields only: {}.
        return {"Curve": {}, "X": int.from_bytes(key[1 : 1 + size], "big"), "Y": int.from_bytes(key[1 + size :], "big")}
    if algorithm == 4:
        if params:
            raise ASN1Error("x509: Ed25519 key encoded with illegal parameters")
        if len(key) != 32:
            raise ASN1Error("x509: wrong Ed25519 public key size")
        return b64(key)  # ed25519.PublicKey is a []byte
    if algorithm == 2:
        y = integer(expect(one(key, "DSA public key"), TAG_INTEGER, "Y").content, bits=None)
        try:
            p, q, g = (
                integer(expect(item, TAG_INTEGER, "DSA parameter").content, bits=None)
                for item in sequence(one(params), "dsaParameters", 3)[:3]
            )
        except ASN1Error:
            raise ASN1Error("x509: invalid DSA parameters") from None
        if min(y, p, q, g) <= 0:
            raise ASN1Error("x509: zero or negative DSA parameter")
        return {"P": p, "Q": q, "G": g, "Y": y}  # dsa.PublicKey embeds Parameters: encoding/json flattens it
    return None


def _raw_attributes(tlv: TLV) -> list[dict[str, Any]] | None:
    """Go's ``parseRawAttributes``: attributes whose values are SETs of SEQUENCEs of (OID, any) pairs.

    Anything else (challengePassword, unstructuredName, ...) is skipped silently, as Go does; a critical
    extension's BOOLEAN lands in ``Value`` as null.
    """
    out: list[dict[str, Any]] = []
    for attribute in children(tlv.content):
        try:
            parts = sequence(attribute, "AttributeTypeAndValueSET", 2)
            oid = parse_oid(expect(parts[0], TAG_OID, "Type").content)
            values: list[list[dict[str, Any]]] = []
            for value in children(expect(parts[1], TAG_SET, "Value").content):
                entries = []
                for entry in sequence(value, "[]AttributeTypeAndValue", 0):
                    pair = sequence(entry, "AttributeTypeAndValue", 2)
                    entries.append({"Type": parse_oid(expect(pair[0], TAG_OID, "Type").content), "Value": go_any(pair[1])})
                values.append(entries)
        except ASN1Error:
            continue
        out.append({"Type": oid, "Value": values})
    return out or None


def _csr_extensions(tlv: TLV) -> list[tuple[list[int], bool, bytes]]:
    """Go's ``parseCSRExtensions``: every extension of every extensionRequest attribute, in order."""
    extensions: list[tuple[list[int], bool, bytes]] = []
    for attribute in children(tlv.content):
        try:
            parts = sequence(attribute, "pkcs10Attribute", 2)
            oid = parse_oid(expect(parts[0], TAG_OID, "Id").content)
            values = children(expect(parts[1], TAG_SET, "Values").content)
        except ASN1Error:
            continue
        if oid != _OID_EXTENSION_REQUEST or not values:
            continue
        seen: set[str] = set()
        for extension in sequence(values[0], "Extensions", 0):
            ext_oid, critical, value = parse_extension(extension)
            key = dotted(ext_oid)
            if key in seen:
                raise ASN1Error("x509: certificate request contains duplicate requested extensions")
            seen.add(key)
            extensions.append((ext_oid, critical, value))
    return extensions


def _csr_struct(der: bytes) -> dict[str, Any]:
    outer = sequence(one(der, "certificate request"), "certificateRequest", 3)
    tbs = sequence(outer[0], "tbsCertificateRequest", 4)
    version = integer(expect(tbs[0], TAG_INTEGER, "Version").content)
    subject_tlv, spki_tlv, attributes_tlv = tbs[1], tbs[2], tbs[3]
    if attributes_tlv.cls != CONTEXT or attributes_tlv.tag != 0 or not attributes_tlv.constructed:
        raise ASN1Error("asn1: structure error: tags don't match (0) RawAttributes")
    spki = sequence(spki_tlv, "publicKeyInfo", 2)
    key_oid, key_params = algorithm_identifier(spki[0])
    key_bits, key_bit_length = bit_string(expect(spki[1], TAG_BIT_STRING, "PublicKey").content)
    signature_bits, signature_length = bit_string(expect(outer[2], TAG_BIT_STRING, "SignatureValue").content)
    key_algorithm = _PUBLIC_KEY_ALGORITHMS.get(key_oid, 0)
    public_key = _public_key(key_algorithm, key_params, right_align(key_bits, key_bit_length))
    subject = parse_name(subject_tlv)
    extensions = _csr_extensions(attributes_tlv)
    sans = SANs([], [], [], [])
    for oid, _critical, value in extensions:
        if dotted(oid) == OID_SAN:
            sans = parse_sans(value)
    return {
        "Raw": b64(der),
        "RawTBSCertificateRequest": b64(outer[0].raw),
        "RawSubjectPublicKeyInfo": b64(spki_tlv.raw),
        "RawSubject": b64(subject_tlv.raw),
        "Version": version,
        "Signature": b64(right_align(signature_bits, signature_length)),
        "SignatureAlgorithm": signature_algorithm(outer[1]),
        "PublicKeyAlgorithm": key_algorithm,
        "PublicKey": public_key,
        "Subject": pkix_name(subject),
        "Attributes": _raw_attributes(attributes_tlv),
        "Extensions": [{"Id": oid, "Critical": critical, "Value": b64(value)} for oid, critical, value in extensions] or None,
        "ExtraExtensions": None,
        "DNSNames": sans.dns or None,
        "EmailAddresses": sans.emails or None,
        "IPAddresses": sans.ips or None,
        "URIs": sans.uris or None,
    }


def csr_info(csr: bytes | x509.CertificateSigningRequest) -> dict[str, Any]:
    """The Go 1.19 ``x509.CertificateRequest`` struct dump cfssl prints for ``certinfo -csr``.

    ``csr`` is DER or a parsed request. The signature is not checked (cfssl doesn't either). Go version
    dependent: ``URIs`` entries carry Go 1.19's ``url.URL`` fields (``OmitHost`` is new in 1.19); a
    P-224/256/384/521 ``Curve`` prints as ``{}``. A request Go would not parse raises 9003 with Go's reason.
    """
    der = csr if isinstance(csr, bytes) else csr.public_bytes(serialization.Encoding.DER)
    try:
        return _csr_struct(der)
    except ASN1Error as exc:
        raise CfsslError(Category.CSR, Reason.PARSE_FAILED, str(exc)) from exc


def describe_csr_pem(data: bytes) -> dict[str, Any]:
    """``certinfo -csr``: the first PEM block, whatever its type (cfssl doesn't check it), as :func:`csr_info`.

    No PEM block -> 9002 ``CSR Decode failed`` (newest cfssl; the 2016 build crashes on a nil block).
    """
    block, _ = decode_pem(data)
    if block is None:
        raise CfsslError(Category.CSR, Reason.DECODE_FAILED)
    return csr_info(block.data)
