"""``POST /info``: the signing CA's certificate and a profile's usages and expiry (reference §2.3).

Request ``{"label": "...", "profile": "..."}`` (both optional; an unknown profile falls back to the
default, as cfssl's local signer does). Result ``{"certificate", "usages", "expiry"}``.
"""

from __future__ import annotations

from cfsslpy.api.endpoints import Registry, go_object, go_string
from cfsslpy.api.envelope import ApiError, ApiRequest, Reply
from cfsslpy.gojson import JSONDecodeError, fold_keys
from cfsslpy.signer import Signer


def register(reg: Registry) -> None:
    signer = reg.state.signer
    if signer is None:
        reg.skip("info", "no signer")
        return
    reg.add("info", "POST", lambda req: _info(signer, req))


def _info(signer: Signer, req: ApiRequest) -> Reply:
    try:
        fields = fold_keys(go_object(req.json(), "client.InfoReq"), ("label", "profile"))
        label = go_string(fields, "label", "InfoReq")
        profile = go_string(fields, "profile", "InfoReq")
    except JSONDecodeError as exc:
        raise ApiError(400, str(exc)) from None
    return Reply(signer.info(profile, label).to_json())
