"""cfssl's ``SigningProfile.populate``: a decoded profile made ready to sign (reference §3.1-§3.5).

Durations are parsed, the ``remotes`` and ``auth_keys`` sections resolve the names a profile uses, the name
whitelist is compiled, and what cannot go into a certificate is refused now rather than at the first
signature. Every failure is 5200 with cfssl's detail message.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from cfsslpy.config.profile import SigningProfile
from cfsslpy.errors import Category, CfsslError, Reason, log_value, policy_error
from cfsslpy.golang.json import parse_duration

log = logging.getLogger("cfsslpy.config")  # one logger for the package, as when it was one module

_EARLIEST = dt.datetime(1950, 1, 1, tzinfo=dt.timezone.utc)


@dataclass
class AuthKey:
    """An ``auth_keys`` entry: cfssl knows one ``type``, ``standard`` (a hex HMAC key)."""

    type: str = ""
    key: str = field(default="", repr=False)


def populate_profile(p: SigningProfile, auth_keys: Mapping[str, AuthKey], remotes: Mapping[str, str]) -> None:
    """cfssl's ``SigningProfile.populate``: parse durations, resolve names, compile the whitelist."""
    if not p.is_remote:
        _populate_local(p)
    else:
        p.remote_server = _remote_server(p, remotes)
    _resolve_auth_keys(p, auth_keys)
    if p.name_whitelist_string:
        try:
            p.name_whitelist = re.compile(p.name_whitelist_string)
        except re.error:
            raise policy_error("failed to compile name whitelist section") from None
    _check_encodable(p)
    _check_additions(p)
    _, _, unknown = p.key_usages()
    for usage in unknown:
        log.warning("unknown usage %s in signing profile is ignored", log_value(usage))


def _populate_local(p: SigningProfile) -> None:
    """A local profile: its expiry, backdate, fixed validity and policy qualifiers."""
    if not p.expiry_string:
        raise policy_error("empty expiry string")
    p.expiry = _duration(p.expiry_string)
    if p.backdate_string:
        p.backdate = _duration(p.backdate_string)
    if p.not_before and p.not_after and p.not_after < p.not_before:
        raise policy_error("invalid timespan: not_after is before not_before")
    for policy in p.policies:
        for q in policy.qualifiers:
            if q.type not in ("", "id-qt-cps", "id-qt-unotice"):  # cfssl lets an empty type through
                raise policy_error("invalid policy qualifier type")


def _remote_server(p: SigningProfile, remotes: Mapping[str, str]) -> str:
    """The ``remotes`` entry a remote (or auth_remote) profile names."""
    if p.remote:
        if p.auth_remote.remote:
            log.error("profile has both a remote and an auth remote specified")
            raise CfsslError(Category.POLICY, Reason.INVALID_POLICY)
        server = remotes.get(p.remote, "")
    else:
        server = remotes.get(p.auth_remote.remote, "")
    if not server:
        raise policy_error("failed to find remote in remotes section")
    return server


def _resolve_auth_keys(p: SigningProfile, auth_keys: Mapping[str, AuthKey]) -> None:
    """The ``auth_keys`` entries the profile names, and our replay window (which needs one of them)."""
    if p.auth_key:
        p.auth_key_bytes = _auth_key(auth_keys, p.auth_key, "failed to find auth_key in auth_keys section")
    if p.prev_auth_key:
        p.prev_auth_key_bytes = _auth_key(auth_keys, p.prev_auth_key, "failed to find prev_auth_key in auth_keys section")
    if p.auth_replay_window_string:
        p.auth_replay_window = _duration(p.auth_replay_window_string)
        if p.auth_replay_window < 0:
            raise policy_error("auth_replay_window must not be negative")
        if p.auth_replay_window and not (p.auth_key or p.auth_remote.auth_key):
            raise policy_error("auth_replay_window needs an auth_key (server) or auth_remote (client): it guards authsign tokens")
    if p.auth_remote.auth_key:
        p.auth_remote_key_bytes = _auth_key(auth_keys, p.auth_remote.auth_key, "failed to find auth_remote's auth_key in auth_keys section")


def _auth_key(auth_keys: Mapping[str, AuthKey], name: str, missing: str) -> bytes:
    from cfsslpy.auth import decode_key

    entry = auth_keys.get(name)
    if entry is None:
        raise policy_error(missing)
    if entry.type != "standard":
        raise policy_error("unknown authentication type")
    try:
        return decode_key(entry.key)
    except ValueError:
        raise policy_error("failed to create new standard auth provider") from None


def _check_additions(p: SigningProfile) -> None:
    """Our fields and our refusals: name constraints only on CA profiles, http(s) CT logs, no zlint level."""
    if p.name_constraints is not None and not p.ca_constraint.is_ca:
        raise policy_error("name_constraints needs ca_constraint.is_ca: they only apply to CA certificates")
    for server in p.ct_log_servers:
        if not server.startswith(("http://", "https://")) or not server.isascii():
            raise policy_error(f"ct_log_servers: {server!r} is not an http(s) URL")
    if p.lint_error_level:
        raise policy_error(
            "lint_error_level: zlint pre-issuance linting is not available in cfsslpy; remove the field (cfsslpy "
            "already refuses the RFC 5280 violations listed in README)"
        )


def _check_encodable(p: SigningProfile) -> None:
    """Refuse at load time what cannot go into a certificate, instead of failing at the first signature.

    URLs become IA5Strings (ASCII only: cfssl writes the raw UTF-8 bytes, producing invalid DER); fixed
    validity times before 1950 cannot be written by the X.509 library we use.
    """
    urls = [("ocsp_url", p.ocsp_url), ("crl_url", p.crl_url)] + [("issuer_urls", u) for u in p.issuer_urls or []]
    urls += [("Policies", q.value) for policy in p.policies for q in policy.qualifiers if q.type == "id-qt-cps"]
    for name, url in urls:
        if not url.isascii():
            raise policy_error(f"{name}: {url!r} is not ASCII: write internationalised host names in their xn-- (punycode) form")
    for name, when in (("not_before", p.not_before), ("not_after", p.not_after)):
        if when is not None and when < _EARLIEST:
            raise policy_error(f"{name}: {when.isoformat()} is before 1950, which cfsslpy cannot encode")


def _duration(text: str) -> int:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise policy_error(str(exc)) from None
