"""Objects on a token: the private key a URI names, and public keys read from token attributes (a public-key
object, a certificate, or an RSA private key's modulus and exponent). No key material is ever read."""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from cfsslpy.errors import Reason
from cfsslpy.pkcs11.library import p11_module
from cfsslpy.pkcs11.uri import TokenURI, key_error

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


def find_private(session: Any, uri: TokenURI, token_label: str) -> Any:
    """The one private-key object the URI names (2001 when none or several, 2200 when it is not a private key)."""
    p11 = p11_module()
    if uri.object is None and uri.id is None:
        raise key_error(Reason.READ_FAILED, "PKCS#11 URI: name the key with object= (its label) or id=")
    if uri.type not in (None, "private"):
        raise key_error(Reason.NOT_RSA_OR_ECC, f"PKCS#11 URI has type={uri.type}: a signing key needs type=private (or no type)")
    attrs = object_attrs(uri)
    where = uri.describe().replace("any token", repr(token_label))
    found = list(session.get_objects({**attrs, p11.Attribute.CLASS: p11.ObjectClass.PRIVATE_KEY}))
    if len(found) > 1:
        raise key_error(Reason.READ_FAILED, f"several PKCS#11 private keys match {where}: add id= to the URI")
    if found:
        return found[0]
    others = list(session.get_objects(attrs))
    if others:
        kinds = sorted({class_name(o[p11.Attribute.CLASS]) for o in others})
        raise key_error(Reason.NOT_RSA_OR_ECC, f"PKCS#11 {where} is not a private key (found: {', '.join(kinds)})")
    raise key_error(Reason.READ_FAILED, f"no PKCS#11 private key {where}")


def object_attrs(uri: TokenURI) -> dict[Any, Any]:
    """The search template for the URI's ``object`` (CKA_LABEL) and ``id`` (CKA_ID)."""
    p11 = p11_module()
    attrs: dict[Any, Any] = {}
    if uri.object is not None:
        attrs[p11.Attribute.LABEL] = uri.object
    if uri.id is not None:
        attrs[p11.Attribute.ID] = uri.id
    return attrs


CLASS_NAMES = {0: "data", 1: "cert", 2: "public", 3: "private", 4: "secret-key"}


def class_name(value: Any) -> str:
    """A CKA_CLASS value as RFC 7512 names it (``type=``)."""
    return CLASS_NAMES.get(int(value), f"class-{int(value)}")


# ---------------------------------------------------------------------------------------------------------
# public keys from token attributes

CURVE_OIDS: dict[bytes, ec.EllipticCurve] = {
    bytes.fromhex("06082a8648ce3d030107"): ec.SECP256R1(),
    bytes.fromhex("06052b81040022"): ec.SECP384R1(),
    bytes.fromhex("06052b81040023"): ec.SECP521R1(),
}
CURVE_PARAMS = {v.name: k for k, v in CURVE_OIDS.items()}
ED25519_PARAMS = (bytes.fromhex("06032b6570"), b"\x13\x0cedwards25519", b"\x0c\x0cedwards25519")


def _der_octets(data: bytes) -> bytes:
    """The content of a DER OCTET STRING (CKA_EC_POINT), or ``data`` itself when it is not wrapped."""
    if len(data) >= 2 and data[0] == 0x04:
        length = data[1]
        offset = 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(data[2 : 2 + n], "big")
            offset = 2 + n
        if offset + length == len(data):
            return data[offset:]
    return data


def public_from_object(obj: Any) -> PublicKey | None:
    """The public key from a public-key object's attributes (None when they are not readable)."""
    p11 = p11_module()
    key_type = int(obj[p11.Attribute.KEY_TYPE])
    if key_type == int(p11.KeyType.RSA):
        n = int.from_bytes(obj[p11.Attribute.MODULUS], "big")
        e = int.from_bytes(obj[p11.Attribute.PUBLIC_EXPONENT], "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    if key_type == int(p11.KeyType.EC):
        params = bytes(obj[p11.Attribute.EC_PARAMS])
        curve = CURVE_OIDS.get(params)
        if curve is None:
            raise key_error(Reason.NOT_RSA_OR_ECC, "the token key is on a curve cfssl does not support (P-256, P-384, P-521 only)")
        point = _der_octets(bytes(obj[p11.Attribute.EC_POINT]))
        return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    if key_type == int(p11.KeyType.EC_EDWARDS):
        params = bytes(obj[p11.Attribute.EC_PARAMS])
        if params not in ED25519_PARAMS:
            raise key_error(Reason.NOT_RSA_OR_ECC, "the token key is an Edwards key other than Ed25519")
        return ed25519.Ed25519PublicKey.from_public_bytes(_der_octets(bytes(obj[p11.Attribute.EC_POINT])))
    raise key_error(Reason.NOT_RSA_OR_ECC)


def find_public(session: Any, private: Any, uri: TokenURI, where: str) -> PublicKey:
    """The private key's public half: the public-key object with its CKA_ID (or label), else the certificate,
    else (RSA) the modulus and exponent of the private-key object itself."""
    p11 = p11_module()
    candidates: list[dict[Any, Any]] = []
    key_id = read_attr(private, p11.Attribute.ID)
    label = read_attr(private, p11.Attribute.LABEL)
    if key_id:
        candidates.append({p11.Attribute.ID: bytes(key_id)})
    if label:
        candidates.append({p11.Attribute.LABEL: label})
    for attrs in candidates:
        pubs = list(session.get_objects({**attrs, p11.Attribute.CLASS: p11.ObjectClass.PUBLIC_KEY}))
        if len(pubs) == 1:
            key = public_from_object(pubs[0])
            if key is not None:
                return key
        certs = list(session.get_objects({**attrs, p11.Attribute.CLASS: p11.ObjectClass.CERTIFICATE}))
        if len(certs) == 1:
            public = x509.load_der_x509_certificate(bytes(certs[0][p11.Attribute.VALUE])).public_key()
            if isinstance(public, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)):
                return public
    if int(private[p11.Attribute.KEY_TYPE]) == int(p11.KeyType.RSA) and read_attr(private, p11.Attribute.MODULUS):
        key = public_from_object(private)
        if key is not None:
            return key
    raise key_error(
        Reason.READ_FAILED, f"no public key for PKCS#11 private key {where} (no public-key object or certificate with its id/label)"
    )


def read_attr(obj: Any, attribute: Any) -> Any:
    """An attribute of a token object, or None when the object has none or will not show it."""
    p11 = p11_module()
    try:
        return obj[attribute]
    except (p11.AttributeTypeInvalid, p11.AttributeSensitive, p11.FunctionFailed, KeyError):
        return None
