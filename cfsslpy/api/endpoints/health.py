"""``GET /health`` (liveness) and ``GET /api/v1/cfsslpy/ready`` (readiness, our addition).

``/api/v1/cfssl/health`` answers ``{"healthy": true}`` while the server answers, as cfssl's newest versions
do: it never looks at the database, so a supervisor does not restart an instance whose database is down.

``/api/v1/cfsslpy/ready`` is for a load balancer: with a certificate database (``-db-config``) it runs a
trivial query there, bounded in time (:class:`cfsslpy.certdb.ready.Readiness`), and answers
``{"ready": true}`` when it answered; otherwise HTTP 503 with the envelope (code 503, as every "unavailable,
try again" answer of ours, and ``Retry-After``), so the balancer takes the instance out until its database
is back. Without a certificate database there is nothing to wait for: always ready.
"""

from __future__ import annotations

import logging

from cfsslpy.api.endpoints import Registry
from cfsslpy.api.envelope import ApiError, ApiRequest, Handler, Reply
from cfsslpy.errors import CfsslError

log = logging.getLogger("cfsslpy.api")

READY_PATH = "/api/v1/cfsslpy/ready"
RETRY_AFTER = "5"


def register(reg: Registry) -> None:
    reg.add("health", "GET", _health)
    reg.add("ready", "GET", _ready_handler(reg), path=READY_PATH)


def _health(req: ApiRequest) -> Reply:
    return Reply({"healthy": True})


def _ready_handler(reg: Registry) -> Handler:
    db = reg.state.db
    if db is None:
        return lambda req: Reply({"ready": True})
    from cfsslpy.certdb.ready import Readiness

    probe = Readiness(db.config)

    def ready(req: ApiRequest) -> Reply:
        try:
            probe.check()
        except CfsslError as exc:
            log.warning("not ready: certificate database unavailable: %s", exc.message)
            raise ApiError(503, f"certificate database unavailable: {exc.message}", {"Retry-After": RETRY_AFTER}) from None
        return Reply({"ready": True})

    return ready
