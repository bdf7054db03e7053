"""``POST /sign`` and ``POST /authsign`` (reference §2.3).

sign: ``{"certificate_request", "hostname", "hosts", "subject", "profile", "label", "serial", "bundle"}``
(Go case-insensitive keys; other keys ignored). A non-empty ``hostname`` (comma-separated) wins over
``hosts``; ``hosts: []`` removes every SAN, ``null``/absent keeps the CSR's. Profiles with an ``auth_key``
answer only through authsign. A ``profile`` the configuration does not define is HTTP 400 with
``{"code":5400,"message":"Unknown policy profile"}`` (cfssl signs with the default profile instead; behind
``-remote`` the remote decides).

``bundle: true``: when serve has the sign option (both ``-ca-bundle`` and ``-int-bundle``), the result is
``{"bundle": <bundle JSON>, "certificate": ...}`` with the chain built by flavor optimal, as in cfssl; a chain
that cannot be built is the request's error (the certificate was issued, and recorded with a certdb, but is
not returned: cfssl's behaviour). Without the option the certificate comes back with the 5300 message
"This request requires a bundler, but one is not initialized for the API server."

authsign: ``{"token", "request", "timestamp", "remote_address"}`` with the inner sign request base64-encoded
in ``request``; the token is checked with the profile's ``auth_key`` then ``prev_auth_key``
(:mod:`cfsslpy.auth`). Profiles with ``auth_replay_window`` also require a timestamped token, used once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from cryptography import x509

from cfsslpy.api.endpoints import (
    NO_BUNDLER_MESSAGE,
    POLICY_VIOLATION,
    Registry,
    profile_label,
    requires_auth,
)
from cfsslpy.api.endpoints.bundle import signed_bundle
from cfsslpy.api.envelope import ApiError, ApiRequest, Reply, decode_json
from cfsslpy.auth import AuthenticatedRequest, timestamp_ad, verify_any
from cfsslpy.config import SigningProfile
from cfsslpy.golang.decode import BOOL, STRING, STRINGS, BigInt, GoStruct, Ptr, decode, struct_of
from cfsslpy.golang.json import SECOND, JSONDecodeError
from cfsslpy.signer import Signer, SignRequest, SubjectOverride, certificate_pem

log = logging.getLogger("cfsslpy.api")

# cfssl's jsonSignRequest: only these keys are read (extensions, crl_override, not_before... are not).
JSON_SIGN_REQUEST = GoStruct(
    "signhandler.jsonSignRequest",
    {
        "hostname": STRING,
        "hosts": STRINGS,
        "certificate_request": STRING,
        "subject": Ptr(struct_of(SubjectOverride)),
        "profile": STRING,
        "label": STRING,
        "serial": BigInt(),
        "bundle": BOOL,
    },
)


def parse_sign_request(obj: Any) -> tuple[SignRequest, bool]:
    """The sign request and its ``bundle`` flag; JSONDecodeError when a field has the wrong type."""
    fields = decode(JSON_SIGN_REQUEST, obj)
    return SignRequest.from_fields(fields), bool(fields["bundle"])


def register(reg: Registry) -> None:
    signer = reg.state.signer
    if signer is None:
        reg.skip("sign", "no signer")
        reg.skip("authsign", "no signer")
        return
    policy = signer.policy
    profiles = [policy.default, *policy.profiles.values()]
    if any(not requires_auth(p) for p in profiles):
        reg.add("sign", "POST", lambda req: _sign(reg, signer, req))
    else:
        reg.skip("sign", "every profile requires authentication (use authsign)")
    if any(requires_auth(p) for p in profiles):
        reg.add("authsign", "POST", lambda req: _authsign(reg, signer, req))
        if any(p.auth_replay_window for p in profiles) and reg.state.replay_db is None and reg.state.replay_store is None:
            log.info("authsign replay guard: used tokens are remembered by this process only (no replay_db)")
    else:
        reg.skip("authsign", "no profile has an auth_key")


def _sign(reg: Registry, signer: Signer, req: ApiRequest) -> Reply:
    try:
        sign_request, bundle = parse_sign_request(req.json())
    except JSONDecodeError:
        raise ApiError(400, "Unable to parse sign request") from None
    if not sign_request.request:
        raise ApiError(400, "missing parameter 'certificate_request'")
    if requires_auth(signer.profile(sign_request.profile)):
        log.error("profile requires authentication")
        raise ApiError(400, "authentication required")
    return _issue(reg, signer, sign_request, bundle)


def _authsign(reg: Registry, signer: Signer, req: ApiRequest) -> Reply:
    try:
        auth_request = decode(AuthenticatedRequest, req.json())
    except JSONDecodeError as exc:
        raise ApiError(400, str(exc)) from None
    try:
        sign_request, bundle = parse_sign_request(decode_json(auth_request.request))
    except (JSONDecodeError, ApiError):
        raise ApiError(400, "Unable to parse authenticated sign request") from None
    profile = signer.profile(sign_request.profile)
    if not requires_auth(profile):
        log.error("profile has no authentication provider")
        raise ApiError(400, "no authentication provider")
    check_token(reg, profile, auth_request)
    if not sign_request.request:
        raise ApiError(400, "missing parameter 'certificate_request'")
    return _issue(reg, signer, sign_request, bundle)


def check_token(reg: Registry, profile: SigningProfile, auth_request: AuthenticatedRequest) -> None:
    """The token rules of an authenticated request for ``profile`` (authsign, and ocspsign against the certdb):
    ``auth_key`` then ``prev_auth_key``; with ``auth_replay_window`` a timestamped token, used once."""
    keys = [profile.auth_key_bytes, profile.prev_auth_key_bytes]
    window = profile.auth_replay_window / SECOND
    if window > 0:
        _check_timestamped(reg, auth_request, keys, window)
    elif not verify_any(keys, auth_request.request, auth_request.token):
        log.warning("received authenticated request with invalid token")
        raise ApiError(400, "invalid token")


def _check_timestamped(reg: Registry, auth_request: AuthenticatedRequest, keys: list[bytes | None], window: float) -> None:
    """The replay guard: a timestamp the token covers, inside ± window of now, and a token used once."""
    ts = auth_request.timestamp
    if not ts:
        raise ApiError(400, "missing timestamp")
    if not verify_any(keys, auth_request.request, auth_request.token, timestamp_ad(ts)):
        log.warning("received authenticated request with invalid token")
        raise ApiError(400, "invalid token")
    now = time.time()
    if abs(now - ts) > window:
        log.warning("received authenticated request with a timestamp %+.0f s from now", ts - now)
        raise ApiError(400, "stale timestamp")
    if not reg.replay_guard.first_use(auth_request.token, ts + window, now=now):
        log.warning("received a replayed authenticated request")
        raise ApiError(400, "invalid token")


def _issue(reg: Registry, signer: Signer, sign_request: SignRequest, bundle: bool) -> Reply:
    cert: x509.Certificate = signer.sign(sign_request)
    reg.metrics.certificate_issued(profile_label(signer.policy, sign_request.profile))
    pem = certificate_pem(cert).decode("ascii")
    if not bundle:
        return Reply({"certificate": pem})
    chain = signed_bundle(reg.state, cert)
    if chain is None:
        return Reply({"certificate": pem}, [(POLICY_VIOLATION, NO_BUNDLER_MESSAGE)])
    return Reply({"bundle": chain, "certificate": pem})  # a Go map: keys sorted
