"""Key requests, key generation rules and messages, key PEM encodings and loading (reference §3.6, §7.4, §7.8)."""

from __future__ import annotations

import base64
import functools

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from dsa_vectors import DSA_PKCS8, DSA_TRADITIONAL

from cfsslpy.errors import CfsslError
from cfsslpy.golang.json import JSONDecodeError
from cfsslpy.keys import (
    KeyRequest,
    check_supported_key,
    crl_hash,
    encode_private_key,
    key_description,
    load_private_key,
    public_key_matches,
    signature_hash,
)
from cfsslpy.pem import all_blocks, encode_pem


@functools.cache
def key(kind: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(65537, 2048)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key({"p256": ec.SECP256R1(), "p384": ec.SECP384R1(), "p521": ec.SECP521R1()}[kind])


def rsa_public(bits: int) -> rsa.RSAPublicKey:
    """An RSA public key of exactly ``bits`` bits without generating a private key (fast)."""
    return rsa.RSAPublicNumbers(65537, (1 << (bits - 1)) | 1).public_key()


# ---------------------------------------------------------------------------------------------------------
# Key requests


@pytest.mark.parametrize(
    ("obj", "algo", "size"),
    [
        (None, "ecdsa", 256),
        ({}, "ecdsa", 256),
        ({"algo": "rsa"}, "rsa", 256),  # partial objects merge into the default ...
        ({"size": 384}, "ecdsa", 384),
        ({"ALGO": "rsa", "Size": 2048}, "rsa", 2048),  # ... and keys match case-insensitively
        ({"algo": None, "size": None}, "ecdsa", 256),
        ({"algo": "ed25519", "size": 2048.0}, "ed25519", 2048),
    ],
)
def test_key_request_from_json(obj: object, algo: str, size: int) -> None:
    assert KeyRequest.from_json(obj) == KeyRequest(algo, size)


@pytest.mark.parametrize("obj", [[], "rsa", {"algo": 1}, {"size": "256"}, {"size": True}, {"size": 25.5}])
def test_key_request_type_errors(obj: object) -> None:
    with pytest.raises(JSONDecodeError):
        KeyRequest.from_json(obj)


@pytest.mark.parametrize(
    ("algo", "size", "message"),
    [
        ("rsa", 256, "RSA key is too weak"),  # {"algo":"rsa"} keeps the default size 256
        ("rsa", 2047, "RSA key is too weak"),
        ("rsa", 8193, "RSA key size too large"),
        ("ecdsa", 224, "invalid curve"),
        ("ecdsa", 2048, "invalid curve"),
        ("dsa", 2048, "invalid algorithm"),
        ("RSA", 2048, "invalid algorithm"),  # case-sensitive, as cfssl
        ("", 256, "invalid algorithm"),
    ],
)
def test_key_generation_rules(algo: str, size: int, message: str) -> None:
    with pytest.raises(CfsslError) as exc:
        KeyRequest(algo, size).generate()
    assert (exc.value.code, exc.value.message) == (2400, message)


def test_key_generation_limits_are_inclusive() -> None:
    KeyRequest("rsa", 2048).validate()
    KeyRequest("rsa", 8192).validate()
    KeyRequest("ed25519", 0).validate()  # size ignored


@pytest.mark.parametrize(("size", "curve"), [(256, "secp256r1"), (384, "secp384r1"), (521, "secp521r1")])
def test_ecdsa_generation(size: int, curve: str) -> None:
    k = KeyRequest("ecdsa", size).generate()
    assert isinstance(k, ec.EllipticCurvePrivateKey) and k.curve.name == curve


def test_rsa_and_ed25519_generation() -> None:
    k = KeyRequest("rsa", 2048).generate()
    assert isinstance(k, rsa.RSAPrivateKey) and k.key_size == 2048 and k.public_key().public_numbers().e == 65537
    assert isinstance(KeyRequest("ed25519", 0).generate(), ed25519.Ed25519PrivateKey)


def test_key_request_to_json() -> None:
    assert KeyRequest().to_json() == {"algo": "ecdsa", "size": 256}


# ---------------------------------------------------------------------------------------------------------
# Encoding


def test_encodings_and_labels() -> None:
    assert encode_private_key(key("rsa")).startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")
    assert encode_private_key(key("p256")).startswith(b"-----BEGIN EC PRIVATE KEY-----\n")
    ed = encode_private_key(key("ed25519"))
    assert ed.startswith(b"-----BEGIN Ed25519 PRIVATE KEY-----\n") and ed.endswith(b"-----END Ed25519 PRIVATE KEY-----\n")
    # RFC 8410 PKCS#8: the 32-byte seed inside an OCTET STRING
    der = base64.b64decode(b"".join(ed.splitlines()[1:-1]))
    assert der == key("ed25519").private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    assert der[-34:-32] == b"\x04\x20"
    for pem in (encode_private_key(key("rsa")), encode_private_key(key("p256")), ed):
        lines = pem.decode().splitlines()
        assert all(len(line) <= 64 for line in lines)


def test_sec1_carries_the_named_curve_and_public_key() -> None:
    der = all_blocks(encode_private_key(key("p384")))[0].data
    assert bytes.fromhex("06052b81040022") in der  # OID secp384r1 as namedCurve
    pub = key("p384").public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert pub in der


# ---------------------------------------------------------------------------------------------------------
# Loading


@pytest.mark.parametrize("kind", ["rsa", "p256", "p384", "p521", "ed25519"])
def test_round_trip(kind: str) -> None:
    assert public_key_matches(load_private_key(encode_private_key(key(kind))), key(kind).public_key())


@pytest.mark.parametrize("kind", ["rsa", "p256", "ed25519"])
def test_pkcs8_loads(kind: str) -> None:
    pem = key(kind).private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public_key_matches(load_private_key(pem), key(kind).public_key())


def test_label_is_not_trusted() -> None:
    # cfssl decodes the DER whatever the label says: PKCS#8 under "RSA PRIVATE KEY" still loads
    der = key("rsa").private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    from cfsslpy.pem import encode_pem

    assert public_key_matches(load_private_key(encode_pem("RSA PRIVATE KEY", der)), key("rsa").public_key())


def test_leading_ec_parameters_are_skipped() -> None:
    params = b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
    k = load_private_key(params + encode_private_key(key("p256")))
    assert public_key_matches(k, key("p256").public_key())


def test_legacy_encrypted_pem_needs_the_password() -> None:
    pem = key("p256").private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.BestAvailableEncryption(b"s3cret-1")
    )
    assert b"Proc-Type: 4,ENCRYPTED" in pem
    with pytest.raises(CfsslError) as exc:
        load_private_key(pem, environ={})
    assert (exc.value.code, exc.value.message) == (2100, "Private key is encrypted.")
    k = load_private_key(pem, environ={"CFSSL_CA_PK_PASSWORD": "s3cret-1"})
    assert public_key_matches(k, key("p256").public_key())
    with pytest.raises(CfsslError) as exc:
        load_private_key(pem, environ={"CFSSL_CA_PK_PASSWORD": "guess-2"})
    assert exc.value.code == 2003 and "s3cret-1" not in exc.value.message and "guess-2" not in exc.value.message
    # allow_password=False: the environment is not consulted
    with pytest.raises(CfsslError) as exc:
        load_private_key(pem, environ={"CFSSL_CA_PK_PASSWORD": "s3cret-1"}, allow_password=False)
    assert exc.value.code == 2100


def test_encrypted_pkcs8() -> None:
    pem = key("rsa").private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
    )
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(CfsslError) as exc:
        load_private_key(pem, environ={})
    assert exc.value.code == 2100
    assert public_key_matches(load_private_key(pem, environ={"CFSSL_CA_PK_PASSWORD": "pw"}), key("rsa").public_key())


def test_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    pem = key("p256").private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.BestAvailableEncryption(b"envpw")
    )
    monkeypatch.setenv("CFSSL_CA_PK_PASSWORD", "envpw")
    assert public_key_matches(load_private_key(pem), key("p256").public_key())


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", 2002),
        (b"not a pem at all", 2002),
        (b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n", 2002),
        (b"-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n", 2003),
        (b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n", 2003),
    ],
)
def test_load_errors(data: bytes, code: int) -> None:
    with pytest.raises(CfsslError) as exc:
        load_private_key(data)
    assert exc.value.code == code


def test_unsupported_key_types_are_2200() -> None:
    # PKCS#8, OpenSSL's traditional form, and the traditional DER under another label (cfssl ignores labels)
    (traditional,) = all_blocks(DSA_TRADITIONAL)
    for pem in (DSA_PKCS8, DSA_TRADITIONAL, encode_pem("PRIVATE KEY", traditional.data)):
        with pytest.raises(CfsslError) as exc:
            load_private_key(pem)
        assert (exc.value.code, exc.value.message) == (2200, "Private key algorithm is not RSA or ECC or Ed25519")
    k1 = ec.generate_private_key(ec.SECP256K1())
    pem = k1.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    with pytest.raises(CfsslError) as exc:
        load_private_key(pem)
    assert exc.value.code == 2200
    with pytest.raises(CfsslError):
        check_supported_key(k1.public_key())
    check_supported_key(key("p521").public_key())


# ---------------------------------------------------------------------------------------------------------
# Signature algorithm rule (§7.4)


@pytest.mark.parametrize(
    ("bits", "name"), [(2048, "sha256"), (3071, "sha256"), (3072, "sha384"), (4095, "sha384"), (4096, "sha512"), (8192, "sha512")]
)
def test_rsa_signature_hash_by_size(bits: int, name: str) -> None:
    digest = signature_hash(rsa_public(bits))
    assert digest is not None and digest.name == name


def test_ec_and_ed25519_signature_hash() -> None:
    assert isinstance(signature_hash(key("p256")), hashes.SHA256)
    assert isinstance(signature_hash(key("p384")), hashes.SHA384)
    assert isinstance(signature_hash(key("p521")), hashes.SHA512)
    assert signature_hash(key("ed25519")) is None


def test_weak_rsa_signing_keys_are_refused() -> None:
    # cfssl would sign with SHA-1; we never issue SHA-1 signatures
    with pytest.raises(CfsslError) as exc:
        signature_hash(rsa_public(1024))
    assert exc.value.code == 2200


def test_crl_hash_is_sha256_for_every_rsa_size() -> None:
    assert isinstance(crl_hash(rsa_public(4096)), hashes.SHA256)
    assert isinstance(crl_hash(key("p384")), hashes.SHA384)
    assert crl_hash(key("ed25519")) is None


def test_public_key_matches() -> None:
    assert public_key_matches(key("p256"), key("p256").public_key())
    assert not public_key_matches(key("p256"), key("p384").public_key())
    assert not public_key_matches(key("p256"), key("rsa").public_key())
    assert not public_key_matches(key("p256"), object())


def test_key_description() -> None:
    assert key_description(key("rsa").public_key()) == ("rsa", 2048)
    assert key_description(key("p521")) == ("ecdsa", 521)
    assert key_description(key("ed25519").public_key()) == ("ed25519", 0)
    assert key_description(object()) == ("unknown", 0)


@pytest.mark.parametrize("damage", ["d"])  # cryptography itself refuses p*q != n when the DER is read
def test_inconsistent_rsa_key_is_refused_like_go(damage: str) -> None:
    """OpenSSL's key check is skipped (its primality tests cost 35-50 ms per load); Go's checks remain."""
    good = rsa.generate_private_key(65537, 1024).private_numbers()
    values = {"p": good.p, "q": good.q, "d": good.d}
    values[damage] += 2
    bad = rsa.RSAPrivateNumbers(values["p"], values["q"], values["d"], good.dmp1, good.dmq1, good.iqmp, good.public_numbers).private_key(
        unsafe_skip_rsa_key_validation=True
    )
    pem = bad.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    with pytest.raises(CfsslError) as caught:
        load_private_key(pem)
    assert caught.value.code == 2003 and "invalid RSA private key" in str(caught.value)
