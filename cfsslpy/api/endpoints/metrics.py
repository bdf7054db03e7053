"""``GET /metrics``: Prometheus text exposition 0.0.4 (our addition; cfssl serve has none).

Not under ``/api/v1/cfssl/`` and not an envelope; a wrong method still gets the 405 envelope. The values
are the totals of every worker process (:class:`cfsslpy.metrics.Metrics`). ``-disable metrics`` removes it.
"""

from __future__ import annotations

from cfsslpy.api.endpoints import Registry
from cfsslpy.api.envelope import ApiRequest, RawReply
from cfsslpy.metrics import CONTENT_TYPE, Metrics

PATH = "/metrics"


def register(reg: Registry) -> None:
    metrics = reg.metrics
    reg.add("metrics", "GET", lambda req: _render(metrics, req), path=PATH)


def _render(metrics: Metrics, req: ApiRequest) -> RawReply:
    return RawReply(metrics.render().encode("utf-8"), CONTENT_TYPE)
