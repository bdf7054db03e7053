"""What the HTTP API serves with: built once by ``serve`` (or a test), read by every request.

The API face (:mod:`cfsslpy.api.app`) only translates requests into calls on these objects; the
objects are the core's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cfsslpy.config import Config, Signing
from cfsslpy.signer import Signer

# The default upper bound of a request body; larger bodies are refused with HTTP 413 before being read.
MAX_BODY = 1 << 20


@dataclass
class ApiState:
    """Everything the endpoints need.

    ``signer`` is None when serve could not build one (cfssl then only logs a WARNING and leaves the
    signer-backed endpoints unregistered). ``policy`` is the signing policy in force (the config's, or the
    built-in default). ``disable`` holds endpoint names from ``-disable``.
    """

    signer: Signer | None = None
    policy: Signing = field(default_factory=lambda: Config.default().signing)
    config: Config | None = None
    disable: frozenset[str] = frozenset()
    max_body: int = MAX_BODY
    # replay guard for authsign (our addition): seconds a timestamped token stays valid; 0 = off
    replay_window: int = 0
