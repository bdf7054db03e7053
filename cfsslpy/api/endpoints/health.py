"""``GET /health``: ``{"healthy": true}`` while the server answers (cfssl's newest versions)."""

from __future__ import annotations

from cfsslpy.api.endpoints import Registry
from cfsslpy.api.envelope import ApiRequest, Reply


def register(reg: Registry) -> None:
    reg.add("health", "GET", _health)


def _health(req: ApiRequest) -> Reply:
    return Reply({"healthy": True})
