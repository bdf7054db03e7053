"""``POST /newkey`` and ``POST /newcert``: the server generates the private key (reference §2.3).

newkey: CSR JSON in; ``{"private_key", "certificate_request", "sums"}`` out. newcert: ``{"request": <CSR JSON>,
"profile", "label", "bundle"}`` in; the key, CSR and certificate, with ``sums`` (uppercase hex MD5, SHA-1 and
SHA-256 of the DER) out. A ``ca`` section is refused (only init_ca makes CAs). A newcert request without
``hosts`` succeeds with cfssl's 5300 message. ``bundle: true`` adds ``bundle`` (the chain, flavor optimal)
when serve has the sign option (both ``-ca-bundle`` and ``-int-bundle``); without it the result comes with
the 5300 "requires a bundler" message instead (and then without the no-hosts message, as in cfssl).

Deliberate difference: newcert honours the profile's authentication requirement. A profile with an
``auth_key`` is refused (400 ``authentication required``), as ``/sign`` refuses it; cfssl signs it anyway,
which lets anyone bypass authsign. A ``profile`` the configuration does not define is HTTP 400 with
``{"code":5400,"message":"Unknown policy profile"}`` before any key is generated (cfssl uses the default
profile).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization

from cfsslpy.api.endpoints import (
    NO_BUNDLER_MESSAGE,
    NO_HOSTS_MESSAGE,
    POLICY_VIOLATION,
    Registry,
    profile_label,
    requires_auth,
)
from cfsslpy.api.endpoints.bundle import signed_bundle
from cfsslpy.api.envelope import ApiError, ApiRequest, Reply
from cfsslpy.csr import CertificateRequest, csr_pem, new_key_and_csr
from cfsslpy.golang.decode import BOOL, RAW, STRING, Ptr, decode, go_struct
from cfsslpy.golang.json import JSONDecodeError
from cfsslpy.keys import encode_private_key
from cfsslpy.signer import Signer, SignRequest, certificate_pem, issue

log = logging.getLogger("cfsslpy.api")

CA_REFUSED = "ca section only permitted in initca"


def sums(der: bytes) -> dict[str, str]:
    """cfssl's ``Sum``: uppercase hex digests of the DER encoding."""
    return {
        "md5": hashlib.md5(der, usedforsecurity=False).hexdigest().upper(),
        "sha-1": hashlib.sha1(der, usedforsecurity=False).hexdigest().upper(),
        "sha-256": hashlib.sha256(der).hexdigest().upper(),
    }


def register(reg: Registry) -> None:
    reg.add("newkey", "POST", _newkey)
    signer = reg.state.signer
    if signer is None:
        reg.skip("newcert", "no signer")
        return
    reg.add("newcert", "POST", lambda req: _newcert(reg, signer, req))


@go_struct("generator.genSignRequest", {"request": Ptr(RAW), "profile": STRING, "label": STRING, "bundle": BOOL})
@dataclass
class GenSignRequest:
    """newcert's body. ``request`` is decoded on its own (its errors name no field, as cfssl's do)."""

    request: Any = field(default_factory=dict)  # cfssl starts from an empty request: only null is missing
    profile: str = ""
    label: str = ""
    bundle: bool = False


def _newkey(req: ApiRequest) -> Reply:
    try:
        request = decode(CertificateRequest, req.json())
    except JSONDecodeError as exc:
        raise ApiError(400, str(exc)) from None
    if request.ca is not None:
        raise ApiError(400, CA_REFUSED)
    csr, key = new_key_and_csr(request)
    return Reply(
        {
            "private_key": encode_private_key(key).decode("ascii"),
            "certificate_request": csr_pem(csr).decode("ascii"),
            "sums": {"certificate_request": sums(csr.public_bytes(serialization.Encoding.DER))},
        }
    )


def _newcert(reg: Registry, signer: Signer, req: ApiRequest) -> Reply:
    try:
        body = decode(GenSignRequest, req.json())
        profile, label, bundle = body.profile, body.label, body.bundle
        request = None if body.request is None else decode(CertificateRequest, body.request)
    except JSONDecodeError as exc:
        raise ApiError(400, str(exc)) from None
    if request is None:
        raise ApiError(400, "missing request section")
    if request.ca is not None:
        raise ApiError(400, CA_REFUSED)
    if requires_auth(signer.profile(profile)):
        log.error("profile requires authentication")
        raise ApiError(400, "authentication required")
    # issue() only uses the Signer protocol (policy, sign); its annotation still says LocalSigner
    cert, csr, key = issue(signer, request, SignRequest(request=b"", profile=profile, label=label))
    reg.metrics.certificate_issued(profile_label(signer.policy, profile))
    result: dict[str, Any] = {
        "certificate": certificate_pem(cert).decode("ascii"),
        "certificate_request": csr_pem(csr).decode("ascii"),
        "private_key": encode_private_key(key).decode("ascii"),
        "sums": {
            "certificate": sums(cert.public_bytes(serialization.Encoding.DER)),
            "certificate_request": sums(csr.public_bytes(serialization.Encoding.DER)),
        },
    }
    if bundle:
        chain = signed_bundle(reg.state, cert)
        if chain is None:
            return Reply(result, [(POLICY_VIOLATION, NO_BUNDLER_MESSAGE)])
        result = {"bundle": chain, **result}  # a Go map: keys sorted, "bundle" first
    reply = Reply(result)
    if not request.hosts:
        reply.messages.append((POLICY_VIOLATION, NO_HOSTS_MESSAGE))
    return reply
