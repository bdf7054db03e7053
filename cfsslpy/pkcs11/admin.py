"""Token administration (``cfssl token`` and ``ceremony``): a key pair's public key, the module's slots, the
objects on a token, and key-pair generation on the token."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from cfsslpy.errors import CfsslError, Reason
from cfsslpy.pkcs11.library import STATE, load_library, locked, p11_module, p11_text, resolve_module, token_error
from cfsslpy.pkcs11.objects import (
    CLASS_NAMES,
    CURVE_OIDS,
    CURVE_PARAMS,
    ED25519_PARAMS,
    PublicKey,
    class_name,
    object_attrs,
    public_from_object,
    read_attr,
)
from cfsslpy.pkcs11.pin import Prompt, resolve_pin
from cfsslpy.pkcs11.session import open_slot, token_info, user_session
from cfsslpy.pkcs11.tokenkeys import load_private_key
from cfsslpy.pkcs11.uri import OBJECT_TYPES, TokenURI, key_error, parse_uri

log = logging.getLogger(__name__)


def public_key(
    uri: str | TokenURI,
    *,
    environ: Mapping[str, str] | None = None,
    prompt: Prompt | None = None,
    interactive: bool | None = None,
) -> PublicKey:
    """The public key of the key pair named by ``uri`` (public-key object or certificate; no login needed
    unless only the private object is visible, then the PIN is used)."""
    parsed = parse_uri(uri)
    p11 = p11_module()
    module = resolve_module(parsed, environ=environ)
    with locked():
        try:
            slot, _token, label = open_slot(parsed, module)
            where = parsed.describe().replace("any token", repr(label))
            if parsed.object is None and parsed.id is None:
                raise key_error(Reason.READ_FAILED, "PKCS#11 URI: name the key with object= (its label) or id=")
            session = STATE.sessions.get((module, int(slot.slot_id)))
            if session is None:
                session = slot.get_token().open()
            attrs = object_attrs(parsed)
            for cls in (p11.ObjectClass.PUBLIC_KEY, p11.ObjectClass.CERTIFICATE):
                objs = list(session.get_objects({**attrs, p11.Attribute.CLASS: cls}))
                if len(objs) > 1:
                    raise key_error(Reason.READ_FAILED, f"several PKCS#11 objects match {where}: add id= to the URI")
                if objs and cls == p11.ObjectClass.PUBLIC_KEY:
                    key = public_from_object(objs[0])
                    if key is not None:
                        return key
                if objs:
                    public = x509.load_der_x509_certificate(bytes(objs[0][p11.Attribute.VALUE])).public_key()
                    if isinstance(public, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)):
                        return public
                    raise key_error(Reason.NOT_RSA_OR_ECC)
        except p11.PKCS11Error as exc:
            raise token_error(exc, f"reading {parsed.describe()}") from None
    return load_private_key(parsed, environ=environ, prompt=prompt, interactive=interactive).public_key()


def _flag_names(flags: int, enum: Any) -> list[str]:
    return [str(f.name).lower() for f in enum if f.value and flags & f.value == f.value and f.name]


def list_slots(module_path: str | None = None, *, environ: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The module's slots (with or without a token) as JSON-ready dicts, PIN state included."""
    p11 = p11_module()
    uri = TokenURI(module_path=module_path) if module_path and "/" in module_path else TokenURI(module_name=module_path or None)
    module = resolve_module(uri, environ=environ)
    out: list[dict[str, Any]] = []
    with locked():
        try:
            lib = load_library(module)
            for slot in lib.get_slots(token_present=False):
                sflags = int(slot.flags)
                entry: dict[str, Any] = {
                    "slot_id": int(slot.slot_id),
                    "description": slot.slot_description.strip(),
                    "manufacturer": slot.manufacturer_id.strip(),
                    "flags": _flag_names(sflags, p11.SlotFlag),
                    "token_present": bool(sflags & p11.SlotFlag.TOKEN_PRESENT),
                }
                if entry["token_present"]:
                    token = slot.get_token()
                    info = token_info(token)
                    tflags = int(token.flags)
                    entry["token"] = {
                        "label": info["token"],
                        "manufacturer": info["manufacturer"],
                        "model": info["model"],
                        "serial": info["serial"],
                        "flags": _flag_names(tflags, p11.TokenFlag),
                        "initialized": bool(tflags & p11.TokenFlag.TOKEN_INITIALIZED),
                        "login_required": bool(tflags & p11.TokenFlag.LOGIN_REQUIRED),
                        "pin_set": bool(tflags & p11.TokenFlag.USER_PIN_INITIALIZED),
                        "pin_locked": bool(tflags & p11.TokenFlag.USER_PIN_LOCKED),
                        "pin_count_low": bool(tflags & p11.TokenFlag.USER_PIN_COUNT_LOW),
                        "pin_final_try": bool(tflags & p11.TokenFlag.USER_PIN_FINAL_TRY),
                        "protected_authentication_path": bool(tflags & p11.TokenFlag.PROTECTED_AUTHENTICATION_PATH),
                        "uri": TokenURI(token=info["token"], serial=info["serial"], module_path=module).to_string(),
                    }
                out.append(entry)
        except p11.PKCS11Error as exc:
            raise token_error(exc, f"listing the slots of {module}") from None
    return out


def list_objects(
    uri: str | TokenURI,
    *,
    environ: Mapping[str, str] | None = None,
    prompt: Prompt | None = None,
    interactive: bool | None = None,
    login: bool = True,
) -> list[dict[str, Any]]:
    """The objects on the URI's token (filtered by its object/id/type) as JSON-ready dicts. Logs in (to see
    private objects) when ``login``; attribute values are never secret: no key material is read."""
    parsed = parse_uri(uri)
    p11 = p11_module()
    A = p11.Attribute
    module = resolve_module(parsed, environ=environ)
    out: list[dict[str, Any]] = []
    with locked():
        try:
            slot, token, label = open_slot(parsed, module)
            if login:
                session = user_session(
                    slot, module, lambda: resolve_pin(parsed, environ=environ, prompt=prompt, interactive=interactive, token_label=label)
                )
            else:
                session = STATE.sessions.get((module, int(slot.slot_id)))
            if session is None:
                session = token.open()
            attrs = object_attrs(parsed)
            if parsed.type is not None:
                attrs[A.CLASS] = {v: k for k, v in CLASS_NAMES.items()}[parsed.type]
            for obj in session.get_objects(attrs):
                cls = class_name(obj[A.CLASS])
                key_id = read_attr(obj, A.ID)
                entry: dict[str, Any] = {
                    "class": cls,
                    "label": read_attr(obj, A.LABEL) or "",
                    "id": bytes(key_id).hex() if key_id else "",
                }
                if cls in ("private", "public", "secret-key"):
                    entry.update(_key_details(obj))
                if cls == "private":
                    entry["sensitive"] = bool(read_attr(obj, A.SENSITIVE))
                    entry["extractable"] = bool(read_attr(obj, A.EXTRACTABLE))
                    entry["always_authenticate"] = bool(read_attr(obj, A.ALWAYS_AUTHENTICATE))
                if cls == "cert":
                    value = read_attr(obj, A.VALUE)
                    if value:
                        try:
                            cert = x509.load_der_x509_certificate(bytes(value))
                            entry["subject"] = cert.subject.rfc4514_string()
                            entry["not_after"] = cert.not_valid_after_utc.isoformat()
                        except ValueError:
                            pass
                entry["uri"] = TokenURI(
                    token=label,
                    object=entry["label"] or None,
                    id=bytes(key_id) if key_id else None,
                    type=cls if cls in OBJECT_TYPES else None,
                    module_path=module,
                ).to_string()
                out.append(entry)
        except p11.PKCS11Error as exc:
            raise token_error(exc, f"listing objects on token {parsed.token!r}") from None
    return out


def _key_details(obj: Any) -> dict[str, Any]:
    p11 = p11_module()
    A = p11.Attribute
    key_type = read_attr(obj, A.KEY_TYPE)
    if key_type is None:
        return {}
    key_type = int(key_type)
    if key_type == int(p11.KeyType.RSA):
        modulus = read_attr(obj, A.MODULUS)
        bits = read_attr(obj, A.MODULUS_BITS)
        size = len(modulus) * 8 if modulus else int(bits or 0)
        return {"key_type": "rsa", "size": size}
    if key_type in (int(p11.KeyType.EC), int(p11.KeyType.EC_EDWARDS)):
        params = read_attr(obj, A.EC_PARAMS)
        curve = CURVE_OIDS.get(bytes(params)) if params else None
        if key_type == int(p11.KeyType.EC_EDWARDS):
            return {"key_type": "ed25519" if params and bytes(params) in ED25519_PARAMS else "eddsa", "size": 256}
        return {"key_type": "ecdsa", "curve": curve.name if curve else "unknown", "size": curve.key_size if curve else 0}
    try:
        name = str(p11.KeyType(key_type).name).lower()
    except ValueError:
        name = f"0x{key_type:x}"
    return {"key_type": name}


def generate_key_pair(
    uri: str | TokenURI,
    algo: str,
    size: int,
    *,
    key_id: bytes | None = None,
    environ: Mapping[str, str] | None = None,
    prompt: Prompt | None = None,
    interactive: bool | None = None,
) -> PublicKey:
    """Generate a key pair on the token, labelled with the URI's ``object`` and with CKA_ID ``key_id`` (default:
    the SHA-1 of a random value, 20 bytes). The private key is CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, not
    CKA_EXTRACTABLE, sign-only. ``algo``/``size``: rsa 2048..8192, ecdsa 256/384/521, ed25519. Refused when an
    object with that label already exists (2400)."""
    parsed = parse_uri(uri)
    p11 = p11_module()
    A = p11.Attribute
    _check_generation(parsed, algo, size)
    if key_id is None:
        key_id = hashlib.sha1(os.urandom(32)).digest()  # noqa: S324 - an identifier, not a security hash
    module = resolve_module(parsed, environ=environ)
    with locked():
        try:
            slot, _token, label = open_slot(parsed, module)
            session = user_session(
                slot, module, lambda: resolve_pin(parsed, environ=environ, prompt=prompt, interactive=interactive, token_label=label)
            )
            if list(session.get_objects({A.LABEL: parsed.object})):
                raise key_error(Reason.GENERATION_FAILED, f"an object labelled {parsed.object!r} already exists on PKCS#11 token {label!r}")
            if list(session.get_objects({A.ID: key_id})):
                raise key_error(Reason.GENERATION_FAILED, f"an object with id {key_id.hex()} already exists on PKCS#11 token {label!r}")
            public = _generate_on_token(session, slot, label, parsed.object, algo, size, key_id)
            key = public_from_object(public)
        except p11.PKCS11Error as exc:
            raise key_error(Reason.GENERATION_FAILED, f"PKCS#11 key generation on token {parsed.token!r} failed: {p11_text(exc)}") from None
    log.info("generated a %s-%d key pair %r (id %s) on PKCS#11 token %r", algo, size, parsed.object, key_id.hex(), label)
    assert key is not None
    return key


def _check_generation(parsed: TokenURI, algo: str, size: int) -> None:
    """The request itself, checked before the token is touched (2400)."""
    if not parsed.object:
        raise key_error(Reason.GENERATION_FAILED, "PKCS#11 URI: give the new key's label with object=")
    if algo == "rsa" and not 2048 <= size <= 8192:
        raise key_error(Reason.GENERATION_FAILED, "RSA key size must be 2048..8192")
    if algo == "ecdsa" and size not in (256, 384, 521):
        raise key_error(Reason.GENERATION_FAILED, "invalid curve")
    if algo not in ("rsa", "ecdsa", "ed25519"):
        raise key_error(Reason.GENERATION_FAILED, "invalid algorithm")


def _generate_on_token(session: Any, slot: Any, label: str, name: str | None, algo: str, size: int, key_id: bytes) -> Any:
    """The new key pair's public-key object, made in ``session`` (logged in, under the lock) after checking that
    the slot offers the generation mechanism. The private half's template is the security contract of
    :func:`generate_key_pair`."""
    p11 = p11_module()
    A = p11.Attribute
    private_template = {
        A.TOKEN: True,
        A.PRIVATE: True,
        A.SENSITIVE: True,
        A.EXTRACTABLE: False,
        A.SIGN: True,
        A.DECRYPT: False,
        A.UNWRAP: False,
        A.DERIVE: False,
    }
    public_template = {A.TOKEN: True, A.PRIVATE: False, A.VERIFY: True, A.ENCRYPT: False, A.WRAP: False}
    mechanisms = {int(m) for m in slot.get_mechanisms()}
    if algo == "rsa":
        if int(p11.Mechanism.RSA_PKCS_KEY_PAIR_GEN) not in mechanisms:
            raise _unsupported_gen(label, "CKM_RSA_PKCS_KEY_PAIR_GEN")
        public, _private = session.generate_keypair(
            p11.KeyType.RSA,
            size,
            id=key_id,
            label=name,
            store=True,
            public_template={**public_template, A.PUBLIC_EXPONENT: b"\x01\x00\x01"},
            private_template=private_template,
        )
        return public
    if algo == "ecdsa":
        key_type, gen, params = p11.KeyType.EC, p11.Mechanism.EC_KEY_PAIR_GEN, CURVE_PARAMS[f"secp{size}r1"]
    else:
        key_type, gen, params = p11.KeyType.EC_EDWARDS, p11.Mechanism.EC_EDWARDS_KEY_PAIR_GEN, ED25519_PARAMS[0]
    if int(gen) not in mechanisms:
        raise _unsupported_gen(label, "CKM_" + str(gen.name))
    domain = session.create_domain_parameters(key_type, {A.EC_PARAMS: params}, local=True)
    public, _private = domain.generate_keypair(
        id=key_id,
        label=name,
        store=True,
        mechanism=gen,
        public_template=public_template,
        private_template=private_template,
    )
    return public


def _unsupported_gen(label: str, mechanism: str) -> CfsslError:
    return key_error(Reason.GENERATION_FAILED, f"PKCS#11 token {label!r} does not offer {mechanism}")


def public_key_pem(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
