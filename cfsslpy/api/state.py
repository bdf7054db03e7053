"""What the HTTP API serves with: built once by ``serve`` (or a test), read by every request.

The API face (:mod:`cfsslpy.api.app`) only translates requests into calls on these objects; the
objects are the core's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography import x509

from cfsslpy.config import Config, Signing
from cfsslpy.keys import PrivateKey
from cfsslpy.signer import Signer

if TYPE_CHECKING:
    from cfsslpy.auth import TokenStore
    from cfsslpy.bundler import Bundler
    from cfsslpy.certdb import CertDB
    from cfsslpy.ocsp import OCSPSigner

# The default upper bound of a request body; larger bodies are refused with HTTP 413 before being read.
MAX_BODY = 1 << 20


@dataclass
class ApiState:
    """Everything the endpoints need.

    ``signer`` is None when serve could not build one (cfssl then only logs a WARNING and leaves the
    signer-backed endpoints unregistered). The signer-backed endpoints (sign, authsign, info, newcert)
    look profiles up in ``signer.policy``, the policy the signer actually signs with; ``policy`` (the
    config's, or the built-in default) is what serve loaded. ``disable`` holds endpoint names from
    ``-disable`` (``metrics`` disables ``/metrics`` too).

    ``max_body``: request bodies larger than this are refused with 413 (Content-Length is checked before
    reading; a body without one is read up to ``max_body + 1`` bytes).

    ``metrics_dir``: a directory private to this server run where each worker process writes its metric
    values, so ``/metrics`` on any worker reports the totals of all (:class:`cfsslpy.metrics.Metrics`);
    None keeps them in memory, right for a single process.

    ``replay_db``: the SQLite file holding authsign tokens already used, for profiles with
    ``auth_replay_window`` (:class:`cfsslpy.auth.ReplayGuard`); it must be shared by every worker
    process (a file in a private directory); None keeps them in the process's memory (one process only).
    ``replay_store``, when set, keeps them there instead (serve with a PostgreSQL certdb: the database every
    instance shares, :class:`cfsslpy.certdb.replay.PostgresTokens`).

    ``db``: the certificate database (``-db-config``); with it the signer records every certificate it
    issues and ``revoke``, ``crl``, ``certadd`` and the serial lookup of ``certinfo`` work. ``ocsp_signer``:
    the OCSP signer (``-ca`` + ``-responder`` + ``-responder-key``) behind ``ocspsign``. ``crl_issuer``: the
    CA certificate and key that sign ``GET /crl`` (and the CA ``certadd`` checks certificates against).

    ``bundler``: the chain builder behind ``POST /bundle`` (serve always builds one, from ``-ca-bundle`` or the
    system roots, ``-int-bundle``, ``-int-dir`` and ``-metadata``); None leaves ``bundle`` unregistered.
    ``sign_bundle``: whether sign, authsign and newcert honour ``"bundle": true`` with that bundler — cfssl
    allows it only when both ``-ca-bundle`` and ``-int-bundle`` were given; otherwise they answer with the
    certificate and the 5300 "requires a bundler" message.
    """

    signer: Signer | None = None
    policy: Signing = field(default_factory=lambda: Config.default().signing)
    config: Config | None = None
    disable: frozenset[str] = frozenset()
    max_body: int = MAX_BODY
    metrics_dir: str | None = None
    replay_db: str | None = None
    replay_store: TokenStore | None = None
    db: CertDB | None = None
    ocsp_signer: OCSPSigner | None = None
    crl_issuer: tuple[x509.Certificate, PrivateKey] | None = None
    bundler: Bundler | None = None
    sign_bundle: bool = False
