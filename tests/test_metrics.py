"""Prometheus metrics: exposition format 0.0.4, and totals across several processes."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cfsslpy.metrics import DEFAULT_BUCKETS, ISSUED, REQUESTS, Metrics

# One sample line of the text format: name, optional labels, a value.
SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\\\|\\"|\\n)*",?)*\})? (-?[0-9.eE+-]+|[+-]Inf|NaN)$')


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    m = Metrics()
    yield m
    m.close()


def samples(text: str) -> dict[str, float]:
    """``{'name{labels}': value}`` for every sample line, after checking the line syntax."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) [a-z_]+ .+$", line), line
            continue
        assert SAMPLE.match(line), line
        key, value = line.rsplit(" ", 1)
        out[key] = float(value)
    return out


def test_exposition_has_help_and_type_for_every_family(metrics: Metrics) -> None:
    text = metrics.render()
    assert text.endswith("\n")
    for name, kind in [
        ("cfsslpy_http_requests_total", "counter"),
        ("cfsslpy_http_errors_total", "counter"),
        ("cfsslpy_certificates_issued_total", "counter"),
        ("cfsslpy_http_request_duration_seconds", "histogram"),
    ]:
        assert f"# TYPE {name} {kind}\n" in text
        assert f"# HELP {name} " in text


def test_requests_errors_and_issued(metrics: Metrics) -> None:
    metrics.observe_request("sign", 200, 0.003)
    metrics.observe_request("sign", 200, 0.2)
    metrics.observe_request("sign", 400, 0.001, 9300)
    metrics.observe_request("other", 404, 0.001)
    metrics.certificate_issued("www")
    metrics.certificate_issued("")
    got = samples(metrics.render())
    assert got['cfsslpy_http_requests_total{endpoint="sign",status="200"}'] == 2
    assert got['cfsslpy_http_requests_total{endpoint="sign",status="400"}'] == 1
    assert got['cfsslpy_http_errors_total{endpoint="sign",status="400",code="9300"}'] == 1
    assert got['cfsslpy_http_errors_total{endpoint="other",status="404",code="404"}'] == 1
    assert not any(k.startswith("cfsslpy_http_errors_total") and 'status="200"' in k for k in got)
    assert got['cfsslpy_certificates_issued_total{profile="www"}'] == 1
    assert got['cfsslpy_certificates_issued_total{profile="default"}'] == 1


def test_histogram_buckets_are_cumulative_with_inf_sum_and_count(metrics: Metrics) -> None:
    for value in (0.001, 0.003, 0.2, 30.0):
        metrics.observe_request("info", 200, value)
    got = samples(metrics.render())
    h = "cfsslpy_http_request_duration_seconds"
    assert got[f'{h}_bucket{{endpoint="info",le="0.005"}}'] == 2
    assert got[f'{h}_bucket{{endpoint="info",le="0.1"}}'] == 2
    assert got[f'{h}_bucket{{endpoint="info",le="0.25"}}'] == 3
    assert got[f'{h}_bucket{{endpoint="info",le="10.0"}}'] == 3
    assert got[f'{h}_bucket{{endpoint="info",le="+Inf"}}'] == 4
    assert got[f'{h}_count{{endpoint="info"}}'] == 4
    assert got[f'{h}_sum{{endpoint="info"}}'] == pytest.approx(30.204)
    les = [k for k in got if k.startswith(f"{h}_bucket")]
    assert len(les) == len(DEFAULT_BUCKETS) + 1


def test_label_values_are_escaped(metrics: Metrics) -> None:
    metrics.certificate_issued('we"ird\\pro\nfile')
    text = metrics.render()
    assert 'cfsslpy_certificates_issued_total{profile="we\\"ird\\\\pro\\nfile"} 1\n' in text
    samples(text)


def test_wrong_label_count_is_a_bug(metrics: Metrics) -> None:
    with pytest.raises(ValueError):
        metrics.inc(REQUESTS, ("only-one",))
    with pytest.raises(ValueError):
        metrics.observe(ISSUED, ("x",), 1.0)


# -- several processes --------------------------------------------------------------------------------------


def test_recording_does_no_file_io_and_the_flusher_writes_within_the_interval(tmp_path: Path) -> None:
    m = Metrics(str(tmp_path), flush_interval=0.2)
    try:
        m.observe_request("health", 200, 0.001)
        assert os.listdir(tmp_path) == []  # nothing written on the request path

        def published() -> list[str]:  # the flusher writes a dot-named temp file, then renames it
            return [n for n in os.listdir(tmp_path) if not n.startswith(".")]

        deadline = time.monotonic() + 5
        while not published() and time.monotonic() < deadline:
            time.sleep(0.05)
        (name,) = published()
        assert name.startswith(f"metrics-{os.getpid()}-") and name.endswith(".json")
        doc = json.loads((tmp_path / name).read_text())
        assert doc["counters"] == [["cfsslpy_http_requests_total", ["health", "200"], 1]]
    finally:
        m.close()


def _worker(directory: str, requests: int, issued: int) -> None:
    m = Metrics(directory)
    for _ in range(requests):
        m.observe_request("sign", 200, 0.01)
    for _ in range(issued):
        m.certificate_issued("www")
    m.close()  # a worker's last flush (a server also flushes at exit)


def test_two_processes_write_and_a_third_renders_the_totals(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), n, n)) for n in (3, 4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    renderer = Metrics(str(tmp_path))
    try:
        renderer.observe_request("metrics", 200, 0.001)
        got = samples(renderer.render())
    finally:
        renderer.close()
    assert got['cfsslpy_http_requests_total{endpoint="sign",status="200"}'] == 7
    assert got['cfsslpy_certificates_issued_total{profile="www"}'] == 7
    assert got['cfsslpy_http_request_duration_seconds_count{endpoint="sign"}'] == 7
    assert got['cfsslpy_http_requests_total{endpoint="metrics",status="200"}'] == 1
    assert len([n for n in os.listdir(tmp_path) if n.startswith("metrics-")]) == 3


def _child_after_fork(m: Metrics) -> None:
    m.observe_request("info", 200, 0.01)
    m.close()


def test_a_forked_child_starts_from_zero(tmp_path: Path) -> None:
    parent = Metrics(str(tmp_path))
    parent.observe_request("info", 200, 0.01)
    parent.flush()
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=_child_after_fork, args=(parent,))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    try:
        got = samples(parent.render())
    finally:
        parent.close()
    assert got['cfsslpy_http_requests_total{endpoint="info",status="200"}'] == 2  # not 3


def test_unreadable_or_foreign_files_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "metrics-1-bad.json").write_text("{not json")
    (tmp_path / "metrics-2-old.json").write_text(json.dumps({"version": 99}))
    (tmp_path / "metrics-3-x.json").write_text(
        json.dumps(
            {
                "version": 1,
                "buckets": [],
                "counters": [["unknown_metric", [], 5], ["cfsslpy_http_requests_total", ["a", "200"], 2]],
                "histograms": [],
            }
        )
    )
    m = Metrics(str(tmp_path))
    try:
        got = samples(m.render())
    finally:
        m.close()
    assert got == {'cfsslpy_http_requests_total{endpoint="a",status="200"}': 2}
