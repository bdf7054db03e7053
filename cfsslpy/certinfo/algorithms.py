"""Algorithm identifiers as Go's ``crypto/x509`` reads them: signature algorithms (Go's enum and cfssl's names for
it), and a DSA private key recognised without loading it."""

from __future__ import annotations

from cfsslpy.certinfo.der import (
    CONTEXT,
    NULL,
    TAG_INTEGER,
    TAG_OID,
    TAG_SEQUENCE,
    TLV,
    ASN1Error,
    dotted,
    expect,
    integer,
    one,
    parse_oid,
    sequence,
)

#: Go's ``x509.SignatureAlgorithm`` values -> cfssl's ``helpers.SignatureString`` (reference §7.4 item 15).
#: RSA-PSS (13-15) and everything unknown print as ``Unknown Signature``.
SIGNATURE_NAMES: dict[int, str] = {
    1: "MD2WithRSA",
    2: "MD5WithRSA",
    3: "SHA1WithRSA",
    4: "SHA256WithRSA",
    5: "SHA384WithRSA",
    6: "SHA512WithRSA",
    7: "DSAWithSHA1",
    8: "DSAWithSHA256",
    9: "ECDSAWithSHA1",
    10: "ECDSAWithSHA256",
    11: "ECDSAWithSHA384",
    12: "ECDSAWithSHA512",
    16: "Ed25519",
}
UNKNOWN_SIGNATURE = "Unknown Signature"

_SIGNATURE_OIDS: dict[str, int] = {
    "1.2.840.113549.1.1.2": 1,
    "1.2.840.113549.1.1.4": 2,
    "1.2.840.113549.1.1.5": 3,
    "1.3.14.3.2.29": 3,
    "1.2.840.113549.1.1.11": 4,
    "1.2.840.113549.1.1.12": 5,
    "1.2.840.113549.1.1.13": 6,
    "1.2.840.10040.4.3": 7,
    "2.16.840.1.101.3.4.3.2": 8,
    "1.2.840.10045.4.1": 9,
    "1.2.840.10045.4.3.2": 10,
    "1.2.840.10045.4.3.3": 11,
    "1.2.840.10045.4.3.4": 12,
    "1.3.101.112": 16,
}
_OID_RSA_PSS = "1.2.840.113549.1.1.10"
_OID_MGF1 = "1.2.840.113549.1.1.8"
_PSS_HASHES = {"2.16.840.1.101.3.4.2.1": (13, 32), "2.16.840.1.101.3.4.2.2": (14, 48), "2.16.840.1.101.3.4.2.3": (15, 64)}


def algorithm_identifier(tlv: TLV) -> tuple[str, bytes]:
    """(dotted OID, full bytes of the parameters or b"")."""
    parts = sequence(tlv, "AlgorithmIdentifier", 1)
    oid = dotted(parse_oid(expect(parts[0], TAG_OID, "AlgorithmIdentifier.Algorithm").content))
    return oid, parts[1].raw if len(parts) > 1 else b""


def _pss_algorithm(params: bytes) -> int:
    """Go's PSS bucket: hash == MGF1 hash, salt length == hash size, trailer 1; else unknown (0)."""
    try:
        fields = {item.tag: item for item in sequence(one(params), "pssParameters", 0) if item.cls == CONTEXT}
        if 0 not in fields or 1 not in fields or 2 not in fields:
            return 0
        hash_oid, hash_params = algorithm_identifier(one(fields[0].content))
        mgf_oid, mgf_params = algorithm_identifier(one(fields[1].content))
        salt = integer(expect(one(fields[2].content), TAG_INTEGER, "SaltLength").content)
        trailer = integer(expect(one(fields[3].content), TAG_INTEGER, "TrailerField").content) if 3 in fields else 1
        mgf_hash_oid, mgf_hash_params = algorithm_identifier(one(mgf_params))
    except ASN1Error:
        return 0
    if (
        hash_params not in (b"", NULL)
        or mgf_oid != _OID_MGF1
        or mgf_hash_oid != hash_oid
        or mgf_hash_params not in (b"", NULL)
        or trailer != 1
    ):
        return 0
    algorithm, salt_length = _PSS_HASHES.get(hash_oid, (0, -1))
    return algorithm if salt == salt_length else 0


def signature_algorithm(tlv: TLV) -> int:
    oid, params = algorithm_identifier(tlv)
    if oid == "1.3.101.112" and params:
        return 0  # RFC 8410: Ed25519 parameters must be absent
    if oid == _OID_RSA_PSS:
        return _pss_algorithm(params)
    return _SIGNATURE_OIDS.get(oid, 0)


def go_signature_algorithm(algorithm_identifier_der: bytes) -> int:
    """Go's ``x509.SignatureAlgorithm`` enum value for a DER AlgorithmIdentifier (0 when unknown)."""
    try:
        return signature_algorithm(one(algorithm_identifier_der))
    except ASN1Error:
        return 0


_ID_DSA = "1.2.840.10040.4.1"


def private_key_is_dsa(der: bytes) -> bool:
    """True for a DER DSA private key: PKCS#8 with the id-dsa algorithm, or OpenSSL's traditional
    ``DSA PRIVATE KEY`` (a SEQUENCE of six INTEGERs). Read without loading the key, which cryptography 51
    deprecates for DSA; anything unreadable is "not DSA" and left to the key loader's own errors.
    """
    try:
        items = sequence(one(der, "private key"), "PrivateKey", 2)
        if len(items) == 6 and all(item.is_universal(TAG_INTEGER) for item in items):
            return True
        return items[1].is_universal(TAG_SEQUENCE) and algorithm_identifier(items[1])[0] == _ID_DSA
    except ASN1Error:
        return False
