"""cfssl's signing configuration (``-config``): profiles, usages, auth keys and remotes (reference §3.1-§3.5).

Every load or validation failure is ``{"code":5200,...}`` with cfssl's detail message, except a missing
``signing`` section, which cfssl reports as plain text. Keys are matched like Go's encoding/json (exact,
then case-insensitive).

Deliberate differences from cfssl (README, compatibility): unknown usage strings are logged as a WARNING
instead of being dropped silently; a profile name the configuration does not define is 5400 (cfssl's local
signer uses the default profile), see :meth:`Signing.profile`. Our addition: a profile's ``auth_replay_window`` (Go duration, e.g. ``"5m"``;
absent or 0 = off) turns on authsign's replay guard (timestamped tokens, each usable once; see
:mod:`cfsslpy.auth`); on an ``auth_remote`` profile it makes a client send timestamped tokens.

The package, bottom up:

* :mod:`~cfsslpy.config.profile`: the signing profile model (usages, CA constraint, policies, whitelists);
* :mod:`~cfsslpy.config.decode`: the document's Go shape (cfssl's structs), read by :mod:`cfsslpy.golang.decode`;
* :mod:`~cfsslpy.config.populate`: cfssl's ``populate`` of one profile (durations, the ``remotes`` and
  ``auth_keys`` sections, the checks that make it ready to sign);
* :mod:`~cfsslpy.config.document`: :class:`Config` and :class:`Signing` (``LoadConfig``, ``Valid``, lookup).
"""

from __future__ import annotations

from cfsslpy.config.document import Config, Signing
from cfsslpy.config.populate import AuthKey
from cfsslpy.config.profile import (
    CA_EXPIRY,
    DEFAULT_EXPIRY,
    EXT_KEY_USAGES,
    KEY_USAGES,
    SELFSIGN_EXPIRY,
    AuthRemote,
    CAConstraint,
    CertificatePolicy,
    CSRWhitelist,
    PolicyQualifier,
    SigningProfile,
    certificate_policies,
)

__all__ = [
    "AuthKey",
    "AuthRemote",
    "CA_EXPIRY",
    "CAConstraint",
    "certificate_policies",
    "CertificatePolicy",
    "Config",
    "CSRWhitelist",
    "DEFAULT_EXPIRY",
    "EXT_KEY_USAGES",
    "KEY_USAGES",
    "PolicyQualifier",
    "SELFSIGN_EXPIRY",
    "Signing",
    "SigningProfile",
]
