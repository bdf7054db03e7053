"""GET /api/v1/cfssl/health and GET /metrics (ours), including totals across worker processes."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from api.conftest import StateFactory
from api.wsgi import Client, config_json, new_csr
from cfsslpy.api.app import create_app
from cfsslpy.api.state import ApiState
from cfsslpy.metrics import CONTENT_TYPE


def test_health(client: Client) -> None:
    r = client.get("health")
    assert r.assert_ok() == {"healthy": True}


def test_health_without_signer(make_state: StateFactory, client_for: Callable[[ApiState], Client]) -> None:
    client_for(make_state(signer=False)).get("health").assert_ok()


def test_metrics_text(client: Client) -> None:
    client.get("health")
    client.post("sign", b"xx")
    client.request("GET", "/nowhere")
    client.request("GET", "/")
    r = client.request("GET", "/metrics")
    assert r.status == 200
    assert r.headers["Content-Type"] == CONTENT_TYPE
    text = r.body.decode()
    assert 'cfsslpy_http_requests_total{endpoint="health",status="200"} 1\n' in text
    assert 'cfsslpy_http_errors_total{endpoint="sign",status="400",code="400"} 1\n' in text
    assert 'cfsslpy_http_errors_total{endpoint="other",status="404",code="404"} 1\n' in text
    assert 'cfsslpy_http_requests_total{endpoint="ui",status="200"} 1\n' in text
    assert 'cfsslpy_http_request_duration_seconds_count{endpoint="health"} 1\n' in text
    assert "/nowhere" not in text  # unknown paths never become label values


def _worker(app: Any, n: int) -> None:
    client = Client(app)
    for _ in range(n):
        client.get("health")
    client.post("sign", {"certificate_request": new_csr(), "profile": "www"})
    app.metrics.close()  # what a worker does when it stops


def test_metrics_report_every_worker(make_state: StateFactory, tmp_path: Path) -> None:
    state = make_state(config_json(), metrics_dir=str(tmp_path))
    app = create_app(state)  # built once, forked into workers
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_worker, args=(app, n)) for n in (2, 3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    try:
        text = Client(app).request("GET", "/metrics").body.decode()
    finally:
        app.metrics.close()
    assert 'cfsslpy_http_requests_total{endpoint="health",status="200"} 5\n' in text
    assert 'cfsslpy_certificates_issued_total{profile="www"} 2\n' in text
    assert 'cfsslpy_http_requests_total{endpoint="sign",status="200"} 2\n' in text
