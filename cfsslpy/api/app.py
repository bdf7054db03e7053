"""The cfssl HTTP API as a WSGI application: ``create_app(state)`` (reference §2).

Endpoints (paths under ``/api/v1/cfssl/``), registered by the rules of reference §2.1 unless named in
``state.disable``:

========== ====== ===================================================================
sign       POST   a signer, and some profile (default or named) without ``auth_key``
authsign   POST   a signer, and some profile with an ``auth_key``
info       POST   a signer
newcert    POST   a signer
newkey     POST   always
init_ca    POST   always
certinfo   POST   always (the serial lookup with a certificate database)
bundle     POST   a bundler (serve always builds one)
gencrl     POST   a signer
crl        GET    a signer, a certificate database and the CA certificate and key
revoke     POST   a certificate database
ocspsign   POST   an OCSP signer
certadd    POST   always (without a certificate database every call fails with 11000)
health     GET    always
/metrics   GET    always (ours: Prometheus text, the totals of every worker process)
========== ====== ===================================================================

The web console's read-only endpoints (ours, under ``/api/v1/cfsslpy/``: ``capabilities``, ``profiles``, ``parse``, ``certificates``,
``certificate``, ``crlinfo``, ``ocspstatus``) are always registered; see :mod:`cfsslpy.api.endpoints.console`.

Every response to an API path is cfssl's envelope (:mod:`cfsslpy.api.envelope`), and so are unknown paths
(404) and wrong methods (405) — cfssl answers an unknown path with Go's plain-text ``404 page not found``.
The web UI (``/``, ``/static/...``) is :mod:`cfsslpy.api.static`.

Each request produces one access-log line on the ``cfsslpy.api.access`` logger at INFO (method, path,
status, bytes, duration, remote address; never the body, keys or tokens) and updates the metrics.
"""

from __future__ import annotations

import http
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import bottle

from cfsslpy.api.endpoints import Registry, bundle, certinfo, console, generator, health, info, initca, metrics, revocation, sign
from cfsslpy.api.envelope import ERROR_CODE_KEY, ApiError, error_response, method_not_allowed
from cfsslpy.api.guard import HostPolicy, check_origin
from cfsslpy.api.state import ApiState
from cfsslpy.api.wire import describe_failure
from cfsslpy.auth import ReplayGuard
from cfsslpy.certinfo import FetchPolicy
from cfsslpy.errors import logfmt
from cfsslpy.metrics import Metrics

log = logging.getLogger("cfsslpy.api")
access_log = logging.getLogger("cfsslpy.api.access")

# Endpoint modules in registration order.
_GROUPS = (sign, info, generator, initca, certinfo, bundle, revocation, health, metrics, console)
# Routes of the web UI (cfsslpy.api.static names them ui_*), counted under one metrics label.
_UI_ROUTE_PREFIX = "ui_"

StartResponse = Callable[..., Any]


class ApiApp(bottle.Bottle):  # type: ignore[misc]  # bottle is untyped
    """A bottle app that times every request, logs it once and counts it, whatever route answered it."""

    def __init__(self, metrics_: Metrics, replay_guard: ReplayGuard) -> None:
        super().__init__(catchall=True)
        self.metrics = metrics_
        self.replay_guard = replay_guard
        self.endpoint_names: set[str] = set()  # bottle refuses to rebind attributes: filled in place

    def close(self) -> None:
        """bottle's close (the plugins), and the replay guard's database connection (Python 3.13 warns about a
        connection left to the garbage collector)."""
        super().close()
        self.replay_guard.close()

    def default_error_handler(self, err: bottle.HTTPError) -> bottle.HTTPResponse:
        """Every error bottle raises itself (no route, a UI route's 405, a crash outside the wrapper)."""
        return _error_handler(err)

    def wsgi(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        start = time.perf_counter()
        seen: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen["status"] = status
            seen["headers"] = headers
            if exc_info is not None:
                return start_response(status, headers, exc_info)
            return start_response(status, headers)

        out = super().wsgi(environ, capture)
        try:
            self._observe(environ, seen, out, time.perf_counter() - start)
        except Exception:  # observing must never break a response
            log.exception("access log / metrics failed")
        return out  # type: ignore[no-any-return]

    def _observe(self, environ: dict[str, Any], seen: dict[str, Any], out: Any, seconds: float) -> None:
        status = int(str(seen.get("status", "500")).split(" ", 1)[0])
        if isinstance(out, list):
            size = sum(len(chunk) for chunk in out)
        else:
            size = int(dict(seen.get("headers") or []).get("Content-Length", "0") or 0)
        route = environ.get("bottle.route")
        name = getattr(route, "name", None)
        if name in self.endpoint_names:
            endpoint = str(name)
        elif isinstance(name, str) and name.startswith(_UI_ROUTE_PREFIX):
            endpoint = "ui"
        else:
            endpoint = "other"
        code = environ.get(ERROR_CODE_KEY)
        self.metrics.observe_request(endpoint, status, seconds, code if isinstance(code, int) else None)
        if access_log.isEnabledFor(logging.INFO):
            method = logfmt(str(environ.get("REQUEST_METHOD", "")))
            path = logfmt(str(environ.get("bottle.raw_path", environ.get("PATH_INFO", ""))))
            remote = logfmt(str(environ.get("REMOTE_ADDR", "-")))
            access_log.info(
                "method=%s path=%s status=%d bytes=%d duration_ms=%.2f remote=%s",
                method,
                path,
                status,
                size,
                seconds * 1000,
                remote,
                extra={
                    "http_method": method,
                    "http_path": path,
                    "http_status": status,
                    "http_bytes": size,
                    "duration_ms": round(seconds * 1000, 2),
                    "remote_addr": remote,
                },
            )


def _error_handler(err: bottle.HTTPError) -> bottle.HTTPResponse:
    """The envelope for errors raised by bottle itself rather than by an endpoint."""
    status = int(err.status_code)
    method = bottle.request.environ.get("REQUEST_METHOD", "")
    if status == 404:
        return error_response(404, 404, "404 page not found")
    if status == 405:
        allow = err.headers.get("Allow") if err.headers else None
        refusal = method_not_allowed(method, allow or "")
        return error_response(405, 405, refusal.message, {"Allow": allow} if allow else None)
    if status >= 500:
        log.error("internal error outside the endpoint wrapper: %r", err.exception)
        return error_response(500, 0, "internal server error")
    if isinstance(err.exception, Exception):
        _status, code, message, _headers = describe_failure(err.exception)
        return error_response(status, code, message)
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "error"
    return error_response(status, status, phrase)


def _guard(hosts: HostPolicy | None) -> None:
    """Refuse a foreign Host or a cross-site request before any route runs (bottle answers a raised response)."""
    environ: dict[str, Any] = bottle.request.environ
    try:
        if hosts is not None:
            hosts.check(environ)
        check_origin(environ)
    except ApiError as exc:
        log.info("refused %s request: %s", logfmt(str(environ.get("REQUEST_METHOD", ""))[:16]), exc.message)
        raise error_response(exc.status, exc.status, exc.message) from None


def create_app(state: ApiState, *, hosts: HostPolicy | None = None, fetch: FetchPolicy | None = None) -> bottle.Bottle:
    """The API for ``state``: a fresh bottle app (never bottle's default app) with every endpoint the state
    allows, the envelope for every error, the access log, the metrics and the web UI.

    Every request first passes :mod:`cfsslpy.api.guard`: a request with side effects from another site or
    origin is refused (403), and so is, with ``hosts`` (serve's), a ``Host`` that does not name the server.
    ``fetch`` is the policy of certinfo's outbound dials (default: never loopback or link-local addresses).

    The metrics of this app are available as ``app.metrics`` (call ``app.metrics.flush()`` when a worker
    process stops, if it does not exit through ``sys.exit``).
    """
    app = ApiApp(Metrics(state.metrics_dir), ReplayGuard(state.replay_db, store=state.replay_store))
    reg = Registry(app=app, state=state, metrics=app.metrics, replay_guard=app.replay_guard, fetch=fetch or FetchPolicy())
    for group in _GROUPS:
        group.register(reg)
    app.endpoint_names.update(name for name, _method, _path in reg.registered)
    app.add_hook("before_request", lambda: _guard(hosts))
    for name, method, path in reg.registered:
        log.debug("endpoint '%s': %s %s", name, method, path)

    from cfsslpy.api.static import register_static

    register_static(app)
    return app
