"""multirootca's HTTP API: ``create_multiroot_app(authority)`` (cfssl's ``cmd/multirootca``).

========================= ====== ==============================================================================
/api/v1/cfssl/authsign    POST   sign with the root the inner request's ``label`` names (empty: ``-l``)
/api/v1/cfssl/info        POST   a root's certificate and a profile's usages and expiry, by ``label``
/api/v1/cfssl/health      GET    ``{"healthy": true}`` (ours; cfssl's multirootca has none)
/metrics                  GET    Prometheus text, to loopback peers only (else 404), per-root figures
========================= ====== ==============================================================================

Every other path, ``/api/v1/cfssl/sign`` included, is 404, as in cfssl 1.2.0 and 1.6.5 (cfssl answers Go's
plain ``404 page not found``; ours is that text in the API envelope).

**authsign**, in cfssl's order, each refusal an envelope with **code 1** and cfssl's message: not POST ->
405 ``only POST is permitted``; a body or inner request that is not JSON -> 400 with Go's decoding error;
the root's ``nets`` does not list the peer address (``REMOTE_ADDR``, the TCP peer; never a header) -> 403
``not authorised``; no such root -> 400 ``bad request``; a ``profile`` the root's policy lacks -> 400
``invalid profile``; a token that the profile's ``auth_key`` (then ``prev_auth_key``) of *that root* did not
make -> 400 ``invalid token`` (a root's ``auth_replay_window`` also gives ``missing timestamp`` and ``stale
timestamp``); no ``certificate_request`` -> 400 ``invalid request``; signing fails -> 400 ``bad request``
(the reason is logged with the label, as cfssl does). Success: ``{"certificate": PEM}``, sent as
``application/json`` (cfssl's goes out as ``text/plain``). Before all that, as on ``serve``: a body over the
limit is 413, a type other than ``application/json`` 415, a cross-site browser request 403 (code = status).

**info** is cfssl's ``MultiHandler``: an unknown label is 400, code 400, ``bad label``.

**Metrics.** The families of :mod:`cfsslpy.metrics`, summed over the worker processes, with the root in the
labels: ``cfsslpy_http_requests_total{endpoint="authsign:primary",status="200"}`` (also the error and latency
families; ``authsign`` alone for a label that names no root) and
``cfsslpy_certificates_issued_total{profile="primary/default"}``. Like cfssl 1.2.0 (which served them at
``/api/v1/cfssl/metrics``), only 127.0.0.1 and ::1 may read them; any other peer gets 404 and a warning.

Each request is one access-log line on ``cfsslpy.api.access`` that names the root (``label=``).
"""

from __future__ import annotations

import ipaddress
import logging
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import bottle

from cfsslpy.api.endpoints import API_PREFIX, Registry, go_object, label_and_profile
from cfsslpy.api.endpoints.sign import check_token, parse_sign_request
from cfsslpy.api.envelope import (
    ERROR_CODE_KEY,
    ApiError,
    ApiRequest,
    RawReply,
    Reply,
    decode_json,
    error_response,
    read_body,
    success_response,
    wrap,
)
from cfsslpy.api.guard import check_content_type, check_origin
from cfsslpy.api.state import MAX_BODY, ApiState
from cfsslpy.api.wire import describe_failure
from cfsslpy.auth import AuthenticatedRequest, ReplayGuard
from cfsslpy.errors import Error, log_value, logfmt
from cfsslpy.golang.json import JSONDecodeError
from cfsslpy.metrics import CONTENT_TYPE, Metrics
from cfsslpy.multiroot import Authority, Root, requires_auth
from cfsslpy.signer import certificate_pem

log = logging.getLogger("cfsslpy.api.multiroot")
access_log = logging.getLogger("cfsslpy.api.access")

METRICS_PATH = "/metrics"
# environ keys: the metrics endpoint label of a request (with its root), and the root for the access log
ENDPOINT_KEY = "cfsslpy.multiroot.endpoint"
LABEL_KEY = "cfsslpy.multiroot.label"
# cfssl's whitelist for its metrics endpoint
METRICS_PEERS = frozenset({ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")})
# cfssl multirootca's envelope code for every authsign refusal
REFUSAL_CODE = 1

StartResponse = Callable[..., Any]


class Refusal(ApiError):
    """An authsign refusal as cfssl's multirootca sends it: its HTTP status, envelope code 1."""


class MultirootApp(bottle.Bottle):  # type: ignore[misc]  # bottle is untyped
    """The multirootca API over ``authority``'s roots (read afresh by every request, so a reload applies to the
    next request)."""

    def __init__(self, authority: Authority, metrics: Metrics, *, max_body: int = MAX_BODY) -> None:
        super().__init__(catchall=True)
        self.authority = authority
        self.metrics = metrics
        self.max_body = max_body
        self.endpoint_names: set[str] = set()
        self._registries: weakref.WeakKeyDictionary[ReplayGuard, Registry] = weakref.WeakKeyDictionary()

    def close(self) -> None:
        super().close()
        self.metrics.close()
        self.authority.close()

    def default_error_handler(self, err: bottle.HTTPError) -> bottle.HTTPResponse:
        status = int(err.status_code)
        if status == 404:
            return error_response(404, 404, "404 page not found")
        if status >= 500:
            log.error("internal error outside the endpoint wrapper: %r", err.exception)
            return error_response(500, 0, "internal server error")
        return error_response(status, status, str(err.body or "error"))

    # -- observing --------------------------------------------------------------------------------------

    def wsgi(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        start = time.perf_counter()
        seen: dict[str, str] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen["status"] = status
            return start_response(status, headers, exc_info) if exc_info is not None else start_response(status, headers)

        out = super().wsgi(environ, capture)
        try:
            self._observe(environ, int(seen.get("status", "500").split(" ", 1)[0]), time.perf_counter() - start)
        except Exception:  # observing must never break a response
            log.exception("access log / metrics failed")
        return out  # type: ignore[no-any-return]

    def _observe(self, environ: dict[str, Any], status: int, seconds: float) -> None:
        name = getattr(environ.get("bottle.route"), "name", None)
        endpoint = environ.get(ENDPOINT_KEY) or (name if name in self.endpoint_names else "other")
        code = environ.get(ERROR_CODE_KEY)
        self.metrics.observe_request(str(endpoint), status, seconds, code if isinstance(code, int) else None)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "method=%s path=%s status=%d duration_ms=%.2f remote=%s label=%s",
                logfmt(str(environ.get("REQUEST_METHOD", ""))),
                logfmt(str(environ.get("bottle.raw_path", environ.get("PATH_INFO", "")))),
                status,
                seconds * 1000,
                logfmt(str(environ.get("REMOTE_ADDR", "-"))),
                logfmt(str(environ.get(LABEL_KEY, "-"))),
            )

    # -- authsign ---------------------------------------------------------------------------------------

    def registry(self, root: Root) -> Registry:
        """What :func:`~cfsslpy.api.endpoints.sign.check_token` needs for ``root``: its own replay guard."""
        reg = self._registries.get(root.replay_guard)
        if reg is None:
            reg = Registry(app=self, state=ApiState(max_body=self.max_body), metrics=self.metrics, replay_guard=root.replay_guard)
            self._registries[root.replay_guard] = reg
        return reg

    def authsign(self, environ: dict[str, Any]) -> Reply:
        """cfssl's ``dispatchRequest``, step by step (see the module docstring)."""
        method = str(environ.get("REQUEST_METHOD", ""))
        if method != "POST":
            raise Refusal(405, "only POST is permitted", {"Allow": "POST"})
        check_content_type("authsign", environ)
        body = read_body(environ, self.max_body)
        try:
            auth = AuthenticatedRequest.from_json(go_object(decode_json(body), "auth.AuthenticatedRequest"))
            sign_request, _bundle = parse_sign_request(decode_json(auth.request))  # multirootca never bundles
        except (JSONDecodeError, ApiError) as exc:
            raise Refusal(400, exc.message if isinstance(exc, ApiError) else str(exc)) from None
        roots = self.authority.roots  # one set for the whole request, whatever a reload does meanwhile
        label = roots.resolve(sign_request.label)
        root = roots.roots.get(label)
        environ[ENDPOINT_KEY] = f"authsign:{label}" if root is not None else "authsign"
        environ[LABEL_KEY] = label if root is not None else "-"
        peer = str(environ.get("REMOTE_ADDR", ""))
        if root is not None and not root.permits(peer):
            log.warning("label=%s: refused peer %s: not in the root's nets", label, logfmt(peer))
            raise Refusal(403, "not authorised")
        if root is None:
            log.warning("authsign for label %s: no such root", log_value(label))
            raise Refusal(400, "bad request")
        profile = root.profile(sign_request.profile)
        if profile is None:
            log.warning("label=%s: no profile %s", label, log_value(sign_request.profile))
            raise Refusal(400, "invalid profile")
        if not requires_auth(profile):  # refused when the roots were loaded; kept as cfssl has it
            raise Refusal(401, "authorisation required")
        try:
            check_token(self.registry(root), profile, auth)
        except ApiError as exc:
            log.warning("label=%s: %s", label, exc.message)
            raise Refusal(400, exc.message) from None
        if not sign_request.request:
            raise Refusal(400, "invalid request")
        if sign_request.label != label:
            sign_request = replace(sign_request, label=label)
        return self._sign(root, sign_request, peer)

    def _sign(self, root: Root, sign_request: Any, peer: str) -> Reply:
        try:
            cert = root.signer.sign(sign_request)
        except Error as exc:
            log.warning("label=%s: signature failed: %s", root.label, log_value(exc.message))
            raise Refusal(400, "bad request") from None
        profile = sign_request.profile if sign_request.profile in root.policy.profiles else "default"
        self.metrics.certificate_issued(f"{root.label}/{profile}")
        log.info("signature: requester=%s, label=%s, profile=%s, serialno=%d", logfmt(peer), root.label, profile, cert.serial_number)
        return Reply({"certificate": certificate_pem(cert).decode("ascii")})

    # -- info, health, metrics --------------------------------------------------------------------------

    def info(self, req: ApiRequest) -> Reply:
        label, profile = label_and_profile(req, "info.Req")
        roots = self.authority.roots
        label = roots.resolve(label)
        root = roots.roots.get(label)
        if root is None:
            log.warning("info for label %s: no such root", log_value(label))
            raise ApiError(400, "bad label")
        req.environ[ENDPOINT_KEY] = f"info:{label}"
        req.environ[LABEL_KEY] = label
        return Reply(root.signer.info(profile, label).to_json())

    def render_metrics(self, req: ApiRequest) -> RawReply:
        peer = str(req.environ.get("REMOTE_ADDR", ""))
        if not _metrics_peer(peer):
            log.warning("attempt to access metrics endpoint from external address %s", logfmt(peer))
            raise ApiError(404, "404 page not found")
        return RawReply(self.metrics.render().encode("utf-8"), CONTENT_TYPE)


def _metrics_peer(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip in METRICS_PEERS


class _AuthSignRoute:
    """The authsign route callback (an object: bottle's route repr loops on some closures)."""

    __name__ = "api_authsign"

    def __init__(self, app: MultirootApp) -> None:
        self.app = app

    def __call__(self) -> bottle.HTTPResponse:
        environ: dict[str, Any] = bottle.request.environ
        try:
            return success_response(self.app.authsign(environ))
        except Refusal as exc:
            return error_response(exc.status, REFUSAL_CODE, exc.message, exc.headers)
        except Exception as exc:
            status, code, message, headers = describe_failure(exc)
            if status >= 500 and not isinstance(exc, Error):
                log.error("authsign: internal error", exc_info=exc)
            return error_response(status, code, message, headers)


def _health(req: ApiRequest) -> Reply:
    return Reply({"healthy": True})


def _guard() -> None:
    environ: dict[str, Any] = bottle.request.environ
    try:
        check_origin(environ)
    except ApiError as exc:
        raise error_response(exc.status, exc.status, exc.message) from None


def create_multiroot_app(authority: Authority, *, metrics_dir: str | None = None, max_body: int = MAX_BODY) -> MultirootApp:
    """The multirootca API over ``authority`` (see the module docstring). ``metrics_dir``: a directory private to
    this server run shared by its worker processes (:class:`cfsslpy.metrics.Metrics`); None for one process."""
    app = MultirootApp(authority, Metrics(metrics_dir), max_body=max_body)
    app.route(API_PREFIX + "authsign", "ANY", _AuthSignRoute(app), name="authsign")
    app.route(API_PREFIX + "info", "ANY", wrap("info", "POST", app.info, max_body), name="info")
    app.route(API_PREFIX + "health", "ANY", wrap("health", "GET", _health, max_body), name="health")
    app.route(METRICS_PATH, "ANY", wrap("metrics", "GET", app.render_metrics, max_body), name="metrics")
    app.endpoint_names.update({"authsign", "info", "health", "metrics"})
    app.add_hook("before_request", _guard)
    return app
