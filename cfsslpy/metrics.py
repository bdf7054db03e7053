"""serve's metrics in the Prometheus text exposition format 0.0.4 (cfssl serve has none).

What is counted:

* ``cfsslpy_http_requests_total{endpoint,status}``: every response, by endpoint name (``sign``, ``info``...,
  ``ui`` for the web UI, ``metrics``, ``other`` for unknown paths) and HTTP status;
* ``cfsslpy_http_errors_total{endpoint,status,code}``: responses with status >= 400, with the error code of
  the envelope (a cfssl code such as 9300, or the HTTP status for HTTP-level errors, 0 for internal errors);
* ``cfsslpy_certificates_issued_total{profile}``: certificates signed, by the profile actually used
  (``default`` for the default profile, whatever name the client sent);
* ``cfsslpy_http_request_duration_seconds{endpoint}``: a latency histogram with Prometheus' default buckets.

Label values are bounded by the code (endpoint names, statuses, error codes, configured profile names), so
no client input can grow the number of series.

**Several processes.** With ``directory`` set, every process keeps its own values in memory and a background
thread rewrites ``<directory>/metrics-<pid>-<random>.json`` atomically (temporary file + rename) at most
every ``flush_interval`` seconds when something changed, and once more at exit; :meth:`Metrics.render`
flushes its own values and then sums every process's file, so a scrape answered by any worker of a
pre-forked server reports the totals of all of them. Files of processes that have exited stay and keep
counting (counters never go down); the directory must be private to one server run. Recording a value costs
a lock and a few dictionary updates: no file I/O on the request path. Without ``directory`` the values live
in memory only (one process).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import math
import os
import secrets
import tempfile
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Prometheus' default histogram buckets (seconds); +Inf is implicit.
DEFAULT_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


@dataclass(frozen=True)
class MetricDef:
    """One metric family: its name, ``counter`` or ``histogram``, HELP text and label names."""

    name: str
    kind: str
    help: str
    labels: tuple[str, ...]


REQUESTS = MetricDef("cfsslpy_http_requests_total", "counter", "HTTP requests answered, by endpoint and status.", ("endpoint", "status"))
ERRORS = MetricDef(
    "cfsslpy_http_errors_total",
    "counter",
    "HTTP error responses (status >= 400), by endpoint, status and envelope error code.",
    ("endpoint", "status", "code"),
)
ISSUED = MetricDef("cfsslpy_certificates_issued_total", "counter", "Certificates issued, by signing profile.", ("profile",))
LATENCY = MetricDef("cfsslpy_http_request_duration_seconds", "histogram", "Time taken to produce a response, by endpoint.", ("endpoint",))
DEFINITIONS: tuple[MetricDef, ...] = (REQUESTS, ERRORS, ISSUED, LATENCY)
_BY_NAME = {d.name: d for d in DEFINITIONS}

_FILE_PREFIX = "metrics-"
_FORMAT_VERSION = 1

Key = tuple[str, tuple[str, ...]]


@dataclass
class _Snapshot:
    counters: dict[Key, float]
    # per series: non-cumulative bucket counts (len(buckets) + 1 for +Inf), then sum, then count
    histograms: dict[Key, list[float]]


class Metrics:
    """Counters and histograms of one process, merged with its sibling processes' when rendering."""

    def __init__(self, directory: str | None = None, *, flush_interval: float = 0.5, buckets: Iterable[float] = DEFAULT_BUCKETS) -> None:
        self.directory = directory
        self.flush_interval = flush_interval
        self.buckets = tuple(sorted(float(b) for b in buckets))
        self._counters: dict[Key, float] = {}
        self._histograms: dict[Key, list[float]] = {}
        self._reset_process_state()
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _call(ref, "_after_fork"))
        atexit.register(_call, ref, "_at_exit")

    # -- process lifecycle ------------------------------------------------------------------------------

    def _reset_process_state(self) -> None:
        self._lock = threading.Lock()
        self._dirty = False
        self._written = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._file = f"{_FILE_PREFIX}{os.getpid()}-{secrets.token_hex(6)}.json"

    def _after_fork(self) -> None:
        # A child starts from zero: whatever its parent counted is the parent's to report.
        self._counters = {}
        self._histograms = {}
        self._reset_process_state()

    def _at_exit(self) -> None:
        self._stop.set()
        if self.directory is not None and self._dirty:
            self.flush()

    def close(self) -> None:
        """Stop the flushing thread after a last flush (tests; a server simply exits)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(5)
        if self.directory is not None and self._dirty:
            self.flush()

    def _start_flusher(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._flush_loop, name="cfsslpy-metrics", daemon=True)
            self._thread.start()

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_interval):
            if self._dirty:
                self.flush()

    # -- recording (the hot path) -----------------------------------------------------------------------

    def inc(self, metric: MetricDef, labels: tuple[str, ...], amount: float = 1) -> None:
        if metric.kind != "counter" or len(labels) != len(metric.labels):
            raise ValueError(f"bad use of metric {metric.name}")
        key = (metric.name, labels)
        with self._lock:
            self._counters[key] = self._counters.get(key, 0) + amount
            self._dirty = True
        if self.directory is not None and self._thread is None:
            self._start_flusher()

    def observe(self, metric: MetricDef, labels: tuple[str, ...], value: float) -> None:
        if metric.kind != "histogram" or len(labels) != len(metric.labels):
            raise ValueError(f"bad use of metric {metric.name}")
        key = (metric.name, labels)
        index = len(self.buckets)
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                index = i
                break
        with self._lock:
            series = self._histograms.get(key)
            if series is None:
                series = self._histograms[key] = [0.0] * (len(self.buckets) + 3)
            series[index] += 1
            series[-2] += value
            series[-1] += 1
            self._dirty = True
        if self.directory is not None and self._thread is None:
            self._start_flusher()

    def observe_request(self, endpoint: str, status: int, seconds: float, error_code: int | None = None) -> None:
        """One answered request: counted, timed, and counted as an error when ``status >= 400``."""
        self.inc(REQUESTS, (endpoint, str(status)))
        if status >= 400:
            self.inc(ERRORS, (endpoint, str(status), str(status if error_code is None else error_code)))
        self.observe(LATENCY, (endpoint,), seconds)

    def certificate_issued(self, profile: str) -> None:
        self.inc(ISSUED, (profile or "default",))

    # -- files --------------------------------------------------------------------------------------------

    def _snapshot(self) -> _Snapshot:
        with self._lock:
            self._dirty = False
            return _Snapshot(dict(self._counters), {k: list(v) for k, v in self._histograms.items()})

    def flush(self) -> None:
        """Write this process's values to its file (atomically); a no-op without a directory."""
        if self.directory is None:
            return
        snap = self._snapshot()
        doc = {
            "version": _FORMAT_VERSION,
            "buckets": list(self.buckets),
            "counters": [[name, list(labels), value] for (name, labels), value in snap.counters.items()],
            "histograms": [[name, list(labels), values] for (name, labels), values in snap.histograms.items()],
        }
        try:
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=self.directory)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(doc, fh, separators=(",", ":"))
                os.replace(tmp, os.path.join(self.directory, self._file))
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            self._written = True
        except OSError as exc:
            self._dirty = True  # try again at the next interval
            log.warning("cannot write metrics to %s: %s", self.directory, exc)

    def _read_all(self) -> list[_Snapshot]:
        assert self.directory is not None
        snapshots = []
        try:
            names = sorted(n for n in os.listdir(self.directory) if n.startswith(_FILE_PREFIX) and n.endswith(".json"))
        except OSError as exc:
            log.warning("cannot read metrics directory %s: %s", self.directory, exc)
            names = []
        for name in names:
            try:
                with open(os.path.join(self.directory, name), encoding="utf-8") as fh:
                    doc = json.load(fh)
                snapshots.append(self._parse(doc))
            except (OSError, ValueError, TypeError, KeyError) as exc:
                log.debug("skipping metrics file %s: %s", name, exc)
        return snapshots

    def _parse(self, doc: Any) -> _Snapshot:
        if doc.get("version") != _FORMAT_VERSION:
            raise ValueError("unknown format version")
        same_buckets = [float(b) for b in doc.get("buckets", [])] == list(self.buckets)
        counters: dict[Key, float] = {}
        for name, labels, value in doc["counters"]:
            if name in _BY_NAME and len(labels) == len(_BY_NAME[name].labels):
                counters[(str(name), tuple(str(v) for v in labels))] = float(value)
        histograms: dict[Key, list[float]] = {}
        for name, labels, values in doc["histograms"] if same_buckets else []:
            if name in _BY_NAME and len(labels) == len(_BY_NAME[name].labels) and len(values) == len(self.buckets) + 3:
                histograms[(str(name), tuple(str(v) for v in labels))] = [float(v) for v in values]
        return _Snapshot(counters, histograms)

    # -- rendering ----------------------------------------------------------------------------------------

    def render(self) -> str:
        """The exposition text: this process's values, plus every sibling's when a directory is set."""
        if self.directory is None:
            snapshots = [self._snapshot()]
        else:
            self.flush()
            snapshots = self._read_all()
            if not self._written:  # the directory is unwritable: at least report this process
                snapshots.append(self._snapshot())
        counters: dict[Key, float] = {}
        histograms: dict[Key, list[float]] = {}
        for snap in snapshots:
            for key, value in snap.counters.items():
                counters[key] = counters.get(key, 0) + value
            for key, values in snap.histograms.items():
                total = histograms.setdefault(key, [0.0] * len(values))
                for i, v in enumerate(values):
                    total[i] += v
        return self._exposition(counters, histograms)

    def _exposition(self, counters: dict[Key, float], histograms: dict[Key, list[float]]) -> str:
        lines: list[str] = []
        for metric in DEFINITIONS:
            lines.append(f"# HELP {metric.name} {_escape_help(metric.help)}")
            lines.append(f"# TYPE {metric.name} {metric.kind}")
            if metric.kind == "counter":
                for (name, labels), value in sorted(counters.items()):
                    if name == metric.name:
                        lines.append(f"{name}{_labels(metric.labels, labels)} {_number(value)}")
                continue
            for (name, labels), values in sorted(histograms.items()):
                if name != metric.name:
                    continue
                cumulative = 0.0
                for bound, count in zip((*self.buckets, math.inf), values[: len(self.buckets) + 1], strict=True):
                    cumulative += count
                    le = "+Inf" if bound == math.inf else repr(bound)
                    lines.append(f"{name}_bucket{_labels((*metric.labels, 'le'), (*labels, le))} {_number(cumulative)}")
                lines.append(f"{name}_sum{_labels(metric.labels, labels)} {_number(values[-2])}")
                lines.append(f"{name}_count{_labels(metric.labels, labels)} {_number(values[-1])}")
        return "\n".join(lines) + "\n"


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    if not names:
        return ""
    return "{" + ",".join(f'{n}="{_escape_label(v)}"' for n, v in zip(names, values, strict=True)) + "}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1 << 53:
        return str(int(value))
    return repr(float(value))


def _call(ref: weakref.ref[Any], method: str) -> None:
    obj = ref()
    if obj is not None:
        getattr(obj, method)()
