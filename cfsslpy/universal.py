"""Choosing the signer for a policy: local, remote, or both dispatched per profile (reference §3.2, cfssl's
``signer/universal``).

* every profile local -> :class:`~cfsslpy.signer.LocalSigner`;
* every profile remote -> :class:`~cfsslpy.remote.RemoteSigner`, which sends an unknown profile name to the
  default profile's remote (the remote resolves the name);
* both -> :class:`UniversalSigner`;
* a ``-remote`` address replaces every profile's remote and makes every profile remote: no CA key is
  read. As in cfssl, a profile's ``auth_remote`` key is still used (``/authsign`` on the new address).

A profile name the local configuration does not define is 5400 ``Unknown policy profile`` wherever this
process signs (cfssl's local signer falls back to the default profile; its universal signer refuses).

:func:`signer_from_inputs` is the one place that builds a signer from what the user gave (``sign``,
``gencert``, ``info`` and ``serve`` all go through it).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from cryptography import x509

from cfsslpy.config import Config, Signing, SigningProfile
from cfsslpy.errors import Category, CfsslError, Reason
from cfsslpy.inputs import Stdin
from cfsslpy.signer import LocalSigner, Recorder, Signer, SignerInfo, SignRequest, load_issuer

if TYPE_CHECKING:  # the remote client (HTTP, TLS, authsign) is imported only where a profile is remote
    from cfsslpy.remote import RemoteSigner

log = logging.getLogger(__name__)


class UniversalSigner:
    """A policy with local and remote profiles: each request goes to the signer its profile names.

    An unknown profile name is an error (5400): guessing could send a request to the wrong CA.
    """

    def __init__(self, local: LocalSigner, remote: RemoteSigner) -> None:
        self.local = local
        self.remote = remote
        self.policy = local.policy

    @property
    def certificate(self) -> x509.Certificate | None:
        """The local CA's certificate."""
        return self.local.certificate

    def _signer_for(self, name: str) -> Signer:
        return self.remote if _is_remote(self.policy.profile(name)) else self.local

    def sign(self, req: SignRequest) -> x509.Certificate:
        return self._signer_for(req.profile).sign(req)

    def profile(self, name: str) -> SigningProfile:
        return self.policy.profile(name)

    def info(self, profile_name: str = "", label: str = "") -> SignerInfo:
        return self._signer_for(profile_name).info(profile_name, label)


def override_remote(policy: Signing, remote: str) -> Signing:
    """A copy of ``policy`` in which every profile forwards to ``remote`` (cfssl's ``OverrideRemotes``).

    Each profile keeps its ``auth_remote`` key; the server-side fields (``auth_key``...) are kept too, so
    a ``serve -remote`` still registers ``/sign`` and ``/authsign`` by the profiles' ``auth_key``.
    """
    return Signing(
        default=dataclasses.replace(policy.default, remote_server=remote),
        profiles={name: dataclasses.replace(p, remote_server=remote) for name, p in policy.profiles.items()},
    )


def _is_remote(profile: SigningProfile) -> bool:
    """A profile that forwards (its remote resolved by the config, or set by :func:`override_remote`)."""
    return bool(profile.remote_server)


def needs_local_signer(policy: Signing, remote: str = "") -> bool:
    """Whether signing under ``policy`` needs the CA certificate and key (cfssl's ``NeedsLocalSigner``)."""
    if remote:
        return False
    return not _is_remote(policy.default) or any(not _is_remote(p) for p in policy.profiles.values())


def check_profile(config: Config | None, remote: str, name: str) -> None:
    """Refuse, before any input is read or any key generated, a profile name the signer would refuse (5400).

    With ``-remote``, or when every profile forwards, the remote resolves the name: nothing to check here.
    """
    policy = (config or Config.default()).signing
    if needs_local_signer(policy, remote):
        policy.profile(name)


def signer_from_inputs(
    config: Config | None,
    ca: str,
    ca_key: str,
    remote: str,
    tls_remote_ca: str = "",
    client_cert: str = "",
    client_key: str = "",
    *,
    stdin: Stdin | None = None,
    environ: Mapping[str, str] | None = None,
    recorder: Recorder | None = None,
    timeout: float | None = None,
) -> Signer:
    """The signer for a signing configuration and the CA / remote inputs (flags ``-config``, ``-ca``,
    ``-ca-key``, ``-remote``, ``-tls-remote-ca``, ``-mutual-tls-client-cert``, ``-mutual-tls-client-key``).

    ``config`` None means cfssl's built-in default policy. ``ca``/``ca_key`` are paths, ``file:`` or
    ``env:`` specs, read only when a profile signs locally; without them that is 2000 ``Unknown private
    key error`` (cfssl's). The TLS files are read whenever given (cfssl does the same), so a bad bundle
    is reported before any request. ``recorder`` sees every certificate signed locally (certdb).
    """
    policy = (config or Config.default()).signing
    mixed = any(_is_remote(p) for p in [policy.default, *policy.profiles.values()])
    if not (remote or mixed or tls_remote_ca or client_cert or client_key):
        return _local(policy, ca, ca_key, stdin=stdin, environ=environ, recorder=recorder)  # no remote part at all
    from cfsslpy.remote import DEFAULT_TIMEOUT, RemoteSigner, RemoteTLS

    tls = RemoteTLS(tls_remote_ca, client_cert, client_key)
    seconds = DEFAULT_TIMEOUT if timeout is None else timeout
    if remote:
        return RemoteSigner(override_remote(policy, remote), tls=tls, timeout=seconds)
    if not needs_local_signer(policy):
        return RemoteSigner(policy, tls=tls, timeout=seconds)
    local = _local(policy, ca, ca_key, stdin=stdin, environ=environ, recorder=recorder)
    return UniversalSigner(local, RemoteSigner(policy, tls=tls, timeout=seconds)) if mixed else local


def _local(
    policy: Signing, ca: str, ca_key: str, *, stdin: Stdin | None, environ: Mapping[str, str] | None, recorder: Recorder | None
) -> LocalSigner:
    if not ca or not ca_key:
        log.error("need the CA certificate and key (-ca, -ca-key) for the local profiles")
        raise CfsslError(Category.PRIVATE_KEY, Reason.UNKNOWN)
    return LocalSigner(load_issuer(ca, ca_key, stdin=stdin, environ=environ), policy, recorder=recorder)
