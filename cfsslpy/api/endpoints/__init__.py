"""The endpoint groups of the API, one module each, and what they share.

Every module has ``register(reg)``, which adds its endpoints through :meth:`Registry.add` when the
registration rule of reference §2.1 allows it; ``add`` leaves out the names listed in ``-disable``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import bottle

from cfsslpy.api.envelope import ApiError, Handler, wrap
from cfsslpy.api.state import ApiState
from cfsslpy.auth import ReplayGuard
from cfsslpy.certinfo import FetchPolicy
from cfsslpy.config import Signing, SigningProfile
from cfsslpy.golang.decode import RAW, STRING, GoStruct, Map, decode
from cfsslpy.golang.json import JSONDecodeError
from cfsslpy.metrics import Metrics
from cfsslpy.signer import NO_HOSTS_WARNING

log = logging.getLogger("cfsslpy.api")

API_PREFIX = "/api/v1/cfssl/"
# Outbound TLS dials and AIA fetches a client may make one worker process wait on at once, and their deadline:
# a silent host must not hold every request thread (the others answer 503 at once). serve runs these
# requests in its "outbound" pool of as many threads (cfsslpy.cli.serve), so its sign threads are never
# among them.
MAX_OUTBOUND = 4
OUTBOUND_TIMEOUT = 5.0


class OutboundSlots:
    """At most ``limit`` requests of one worker process waiting on outbound connections at a time."""

    def __init__(self, limit: int = MAX_OUTBOUND) -> None:
        self._slots = threading.BoundedSemaphore(limit)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the block; 503 (``Retry-After: 1``) right away when none is free."""
        if not self._slots.acquire(blocking=False):
            raise ApiError(503, "too many outbound connections in progress; try again later", {"Retry-After": "1"})
        try:
            yield
        finally:
            self._slots.release()


@dataclass
class Registry:
    """The app being built, the state it serves, and what the endpoints share at run time."""

    app: bottle.Bottle
    state: ApiState
    metrics: Metrics
    replay_guard: ReplayGuard
    fetch: FetchPolicy = field(default_factory=FetchPolicy)
    outbound: OutboundSlots = field(default_factory=OutboundSlots)
    registered: list[tuple[str, str, str]] = field(default_factory=list)  # (name, method, path)

    def add(self, name: str, method: str, handler: Handler, path: str | None = None) -> None:
        if name in self.state.disable:
            log.info("endpoint '%s' has been explicitly disabled", name)
            return
        route_path = path or API_PREFIX + name
        # ANY: a wrong method reaches the wrapper, which answers with cfssl's 405 envelope.
        self.app.route(route_path, "ANY", wrap(name, method, handler, self.state.max_body), name=name)
        self.registered.append((name, method, route_path))

    def skip(self, name: str, reason: str) -> None:
        if name not in self.state.disable:
            log.warning("endpoint '%s' is disabled: %s", name, reason)


def requires_auth(profile: SigningProfile) -> bool:
    """cfssl's ``profile.Provider != nil``: the profile names an ``auth_key``."""
    return bool(profile.auth_key or profile.auth_key_bytes)


def profile_label(policy: Signing, name: str) -> str:
    """The profile a request is signed with, as a bounded metrics label (unknown names fall back to default)."""
    return name if name and name in policy.profiles else "default"


# -- Go struct decoding for the endpoints that still read fields one by one (info, initca) -----------------


def go_object(value: Any, go_type: str) -> dict[str, Any]:
    """A document decoded into a Go struct: ``null`` is the zero struct, a non-object Go's type error."""
    result: dict[str, Any] = decode(Map(RAW, go_type), value)
    return result


def label_and_profile(req: Any, go_type: str) -> tuple[str, str]:
    """An ``info`` request's ``{"label", "profile"}`` (cfssl's ``client.InfoReq``; multirootca's ``info.Req``,
    named by ``go_type``) as Go decodes it; not such an object is 400 with Go's text."""
    try:
        fields = decode(GoStruct(go_type, {"label": STRING, "profile": STRING}), req.json())
    except JSONDecodeError as exc:
        raise ApiError(400, str(exc)) from None
    return fields["label"], fields["profile"]


# -- envelope messages (cfssl's texts; code 5300 = PolicyError + InvalidRequest) ---------------------------

POLICY_VIOLATION = 5300
NO_BUNDLER_MESSAGE = "This request requires a bundler, but one is not initialized for the API server."
NO_HOSTS_MESSAGE = NO_HOSTS_WARNING


def string_map(req: Any, malformed: Callable[[str], Exception]) -> dict[str, str]:
    """cfssl's ``readRequestBlob``: the body as a ``map[string]string`` (``null`` values are empty strings, a
    ``null`` body is an empty map). A body that is not such a map raises ``malformed(go_error_text)``: cfssl's
    own error is untyped (HTTP 500, code 0); certinfo answers 400 instead (README, compatibility)."""
    try:
        result: dict[str, str] = decode(STRING_MAP, req.json())
    except JSONDecodeError as exc:
        raise malformed(str(exc)) from None
    return result


STRING_MAP = Map(STRING, "map[string]string")
