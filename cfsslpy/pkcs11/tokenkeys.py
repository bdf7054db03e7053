"""The three key classes (RSA, ECDSA, Ed25519): ``cryptography`` private keys whose ``sign`` runs on the token,
with host-side hashing, the PKCS#11 mechanisms each padding needs and the signature encodings, and
:func:`load_private_key`, which finds the key and builds one."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from cfsslpy.errors import CfsslError, Reason
from cfsslpy.pkcs11.library import STATE, locked, p11_module, resolve_module, retrying, token_error
from cfsslpy.pkcs11.objects import find_private, find_public, read_attr
from cfsslpy.pkcs11.pin import Prompt, resolve_pin
from cfsslpy.pkcs11.session import TokenHandle, drop_session, open_slot, user_session
from cfsslpy.pkcs11.uri import TokenURI, key_error, parse_uri

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------------------
# signing: host-side hashing, PKCS#11 mechanisms, encodings

# DigestInfo prefixes of PKCS#1 v1.5 (RFC 8017 §9.2 note 1)
DIGEST_INFO: dict[str, bytes] = {
    "sha1": bytes.fromhex("3021300906052b0e03021a05000414"),
    "sha224": bytes.fromhex("302d300d06096086480165030402040500041c"),
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
# CKM_SHAx (for PSS params), CKG_MGF1_SHAx, CKM_SHAx_RSA_PKCS, CKM_ECDSA_SHAx
_HASH_MECH = {"sha1": 0x220, "sha224": 0x255, "sha256": 0x250, "sha384": 0x260, "sha512": 0x270}
_MGF = {"sha1": 1, "sha224": 5, "sha256": 2, "sha384": 3, "sha512": 4}
_RSA_PKCS_WITH = {"sha1": 0x6, "sha224": 0x46, "sha256": 0x40, "sha384": 0x41, "sha512": 0x42}
_ECDSA_WITH = {"sha1": 0x1042, "sha224": 0x1043, "sha256": 0x1044, "sha384": 0x1045, "sha512": 0x1046}
CKM_RSA_PKCS = 0x1
CKM_RSA_PKCS_PSS = 0xD
CKM_ECDSA = 0x1041
CKM_EDDSA = 0x1057


def ecdsa_der(raw: bytes) -> bytes:
    """PKCS#11's raw ECDSA signature (r || s, each the curve size) as the DER SEQUENCE X.509 carries."""
    if not raw or len(raw) % 2:
        raise key_error(Reason.UNAVAILABLE, f"the token returned a malformed ECDSA signature ({len(raw)} bytes)")
    half = len(raw) // 2
    return utils.encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))


def digest_info(algorithm: hashes.HashAlgorithm, digest: bytes) -> bytes:
    """The DER DigestInfo PKCS#1 v1.5 signs (what CKM_RSA_PKCS is given)."""
    prefix = DIGEST_INFO.get(algorithm.name)
    if prefix is None:
        raise key_error(Reason.UNAVAILABLE, f"no PKCS#1 v1.5 DigestInfo for hash {algorithm.name}")
    if len(digest) != algorithm.digest_size:
        raise key_error(Reason.UNAVAILABLE, f"digest of {len(digest)} bytes for {algorithm.name}")
    return prefix + digest


def _digest(data: bytes, algorithm: Any) -> tuple[hashes.HashAlgorithm, bytes, bool]:
    """(hash, digest, prehashed) for cryptography's ``algorithm`` argument."""
    if isinstance(algorithm, utils.Prehashed):
        return algorithm._algorithm, data, True
    h = hashes.Hash(algorithm)
    h.update(data)
    return algorithm, h.finalize(), False


def _mech_name(mechanism: int) -> str:
    try:
        return "CKM_" + str(p11_module().Mechanism(mechanism).name)
    except (ValueError, CfsslError):
        return f"mechanism 0x{mechanism:x}"


def _unsupported(handle: TokenHandle, what: str, mechanisms: list[int]) -> CfsslError:
    names = " or ".join(_mech_name(m) for m in mechanisms)
    return key_error(Reason.UNAVAILABLE, f"PKCS#11 token {handle.token_label!r} cannot {what}: it offers no {names}")


_Key = TypeVar("_Key", bound="_TokenKey")  # typing.Self is Python 3.11+


class _TokenKey:
    """Shared behaviour of the three key classes: nothing about the private key can be exported."""

    _handle: TokenHandle

    def private_bytes(self, *args: Any, **kwargs: Any) -> bytes:
        raise key_error(Reason.UNAVAILABLE, f"the key {self._handle.uri.describe()} is on a PKCS#11 token and cannot be exported")

    def private_numbers(self) -> Any:
        return self.private_bytes()

    def private_bytes_raw(self) -> bytes:
        return self.private_bytes()

    # a handle on a token object: copies are the same key
    def __copy__(self: _Key) -> _Key:
        return self

    def __deepcopy__(self: _Key, memo: dict[int, object]) -> _Key:
        return self

    @property
    def pkcs11_uri(self) -> str:
        """The key's URI without any ``pin-value``."""
        return self._handle.uri.without_secrets().to_string()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.pkcs11_uri}>"


class TokenRSAKey(_TokenKey, rsa.RSAPrivateKey):
    """An RSA key on a token: PKCS#1 v1.5 (CKM_RSA_PKCS with the DigestInfo built here, or CKM_SHAx_RSA_PKCS)
    and PSS (CKM_RSA_PKCS_PSS over the host's digest)."""

    def __init__(self, handle: TokenHandle, public: rsa.RSAPublicKey) -> None:
        self._handle = handle
        self._public = public

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def sign(self, data: bytes, padding: padding.AsymmetricPadding, algorithm: Any) -> bytes:
        from cryptography.hazmat.primitives.asymmetric import padding as pad

        handle = self._handle
        hash_alg, digest, prehashed = _digest(bytes(data), algorithm)
        name = hash_alg.name
        if isinstance(padding, pad.PKCS1v15):
            if CKM_RSA_PKCS in handle.mechanisms and name in DIGEST_INFO:
                return handle.sign(digest_info(hash_alg, digest), CKM_RSA_PKCS)
            combined = _RSA_PKCS_WITH.get(name)
            if combined is not None and combined in handle.mechanisms and not prehashed:
                return handle.sign(bytes(data), combined)
            raise _unsupported(handle, f"sign RSA PKCS#1 v1.5 with {name}", [CKM_RSA_PKCS] + ([combined] if combined else []))
        if isinstance(padding, pad.PSS):
            if CKM_RSA_PKCS_PSS not in handle.mechanisms or name not in _HASH_MECH:
                raise _unsupported(handle, f"sign RSA-PSS with {name}", [CKM_RSA_PKCS_PSS])
            mgf_alg = getattr(getattr(padding, "_mgf", None), "_algorithm", hash_alg)
            if mgf_alg.name not in _MGF:
                raise key_error(Reason.UNAVAILABLE, f"PSS with MGF1-{mgf_alg.name} is not supported")
            salt = _pss_salt(padding, hash_alg, self.key_size)
            param = (p11_module().Mechanism(_HASH_MECH[name]), p11_module().MGF(_MGF[mgf_alg.name]), salt)
            return handle.sign(digest, CKM_RSA_PKCS_PSS, param)
        raise key_error(Reason.UNAVAILABLE, f"RSA padding {padding.name} is not supported for token keys")

    def decrypt(self, ciphertext: bytes, padding: padding.AsymmetricPadding) -> bytes:
        raise key_error(Reason.UNAVAILABLE, "token keys are used for signing only")


def _pss_salt(pss: Any, hash_alg: hashes.HashAlgorithm, key_size: int) -> int:
    from cryptography.hazmat.primitives.asymmetric import padding as pad

    salt = getattr(pss, "_salt_length", None)
    if isinstance(salt, int):
        return salt
    if salt is pad.PSS.DIGEST_LENGTH:
        return hash_alg.digest_size
    # MAX_LENGTH (and AUTO, which cannot apply to signing): emLen - hLen - 2
    em_len = (key_size - 1 + 7) // 8
    return em_len - hash_alg.digest_size - 2


class TokenECKey(_TokenKey, ec.EllipticCurvePrivateKey):
    """An ECDSA key on a token: the host hashes and the token signs the digest with CKM_ECDSA (SoftHSM has no
    CKM_ECDSA_SHA256); CKM_ECDSA_SHAx over the data when only those are offered."""

    def __init__(self, handle: TokenHandle, public: ec.EllipticCurvePublicKey) -> None:
        self._handle = handle
        self._public = public

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.curve.key_size

    def sign(self, data: bytes | bytearray | memoryview, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        handle = self._handle
        algorithm: Any = getattr(signature_algorithm, "algorithm", None)
        if algorithm is None:
            raise key_error(Reason.UNAVAILABLE, "ECDSA needs a hash algorithm")
        hash_alg, digest, prehashed = _digest(bytes(data), algorithm)
        if CKM_ECDSA in handle.mechanisms:
            return ecdsa_der(handle.sign(digest, CKM_ECDSA))
        combined = _ECDSA_WITH.get(hash_alg.name)
        if combined is not None and combined in handle.mechanisms and not prehashed:
            return ecdsa_der(handle.sign(bytes(data), combined))
        raise _unsupported(handle, f"sign ECDSA with {hash_alg.name}", [CKM_ECDSA] + ([combined] if combined else []))

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise key_error(Reason.UNAVAILABLE, "token keys are used for signing only")


class TokenEd25519Key(_TokenKey, ed25519.Ed25519PrivateKey):
    """An Ed25519 key on a token (CKM_EDDSA, pure Ed25519)."""

    def __init__(self, handle: TokenHandle, public: ed25519.Ed25519PublicKey) -> None:
        self._handle = handle
        self._public = public

    def public_key(self) -> ed25519.Ed25519PublicKey:
        return self._public

    def sign(self, data: bytes | bytearray | memoryview) -> bytes:
        if CKM_EDDSA not in self._handle.mechanisms:
            raise _unsupported(self._handle, "sign Ed25519", [CKM_EDDSA])
        return self._handle.sign(bytes(data), CKM_EDDSA)


PrivateKey = TokenRSAKey | TokenECKey | TokenEd25519Key


# ---------------------------------------------------------------------------------------------------------
# the public interface


def load_private_key(
    uri: str | TokenURI,
    *,
    environ: Mapping[str, str] | None = None,
    prompt: Prompt | None = None,
    interactive: bool | None = None,
) -> PrivateKey:
    """The private key named by ``uri`` as a cryptography key object that signs on the token.

    Logs in (once per process and token) and checks that the object is a private key (2200 otherwise) whose
    public half can be found (public-key object or certificate with the same CKA_ID/label). Errors: 2001
    (module, token or object not found), 2200 (not a private key / unsupported type), 2500 (PIN, login, token).
    """
    parsed = parse_uri(uri)
    p11 = p11_module()
    module = resolve_module(parsed, environ=environ)
    pins: dict[str, str] = {}  # asked once, even when the load is retried

    def attempt() -> tuple[Any, str, str, Any, str, int, bool, Any, frozenset[int], Any]:
        slot, _token, label = open_slot(parsed, module)
        if label not in pins:
            pins[label] = resolve_pin(parsed, environ=environ, prompt=prompt, interactive=interactive, token_label=label)
        session = user_session(slot, module, lambda: pins[label])
        private = find_private(session, parsed, label)
        where = parsed.describe().replace("any token", repr(label))
        key_type = int(private[p11.Attribute.KEY_TYPE])
        always = bool(read_attr(private, p11.Attribute.ALWAYS_AUTHENTICATE))
        public = find_public(session, private, parsed, where)
        mechanisms = frozenset(int(m) for m in slot.get_mechanisms())
        return slot, label, pins[label], private, where, key_type, always, public, mechanisms, session

    def forget() -> None:
        for key in [k for k in STATE.sessions if k[0] == module]:
            drop_session(*key)

    with locked():
        try:
            slot, label, pin, private, where, key_type, always, public, mechanisms, session = retrying(
                attempt, forget, f"loading {parsed.describe()}"
            )
        except p11.PKCS11Error as exc:
            raise token_error(exc, f"loading {parsed.describe()}") from None
    if always:
        log.info("PKCS#11 key %s needs a login before each signature (CKA_ALWAYS_AUTHENTICATE)", where)
    kind = {int(p11.KeyType.RSA): "rsa", int(p11.KeyType.EC): "ec", int(p11.KeyType.EC_EDWARDS): "ed25519"}.get(key_type)
    handle = TokenHandle(
        uri=parsed,
        module=module,
        slot_id=int(slot.slot_id),
        token_label=label,
        pin=pin,
        label=parsed.object,
        key_id=parsed.id,
        key_type=kind or "unknown",
        always_authenticate=always,
        mechanisms=mechanisms,
        generation=STATE.generation,
        _object=private,
        _session=session,
    )
    if kind == "rsa" and isinstance(public, rsa.RSAPublicKey):
        return TokenRSAKey(handle, public)
    if kind == "ec" and isinstance(public, ec.EllipticCurvePublicKey):
        return TokenECKey(handle, public)
    if kind == "ed25519" and isinstance(public, ed25519.Ed25519PublicKey):
        return TokenEd25519Key(handle, public)
    raise key_error(
        Reason.NOT_RSA_OR_ECC, f"PKCS#11 key {where} is not an RSA, ECDSA or Ed25519 key (or its public key does not match its type)"
    )
