"""``POST /info``: the signing CA's certificate and a profile's usages and expiry (reference §2.3).

Request ``{"label": "...", "profile": "..."}`` (both optional; an empty profile is the default one). Result
``{"certificate", "usages", "expiry"}``. A profile the configuration does not define is HTTP 400 with
``{"code":5400,"message":"Unknown policy profile"}``, where cfssl's local signer answers for the default
profile (behind ``-remote`` the remote decides).
"""

from __future__ import annotations

from cfsslpy.api.endpoints import Registry, label_and_profile
from cfsslpy.api.envelope import ApiRequest, Reply
from cfsslpy.signer import Signer


def register(reg: Registry) -> None:
    signer = reg.state.signer
    if signer is None:
        reg.skip("info", "no signer")
        return
    reg.add("info", "POST", lambda req: _info(signer, req))


def _info(signer: Signer, req: ApiRequest) -> Reply:
    label, profile = label_and_profile(req, "client.InfoReq")
    return Reply(signer.info(profile, label).to_json())
