"""The configuration document: cfssl's ``LoadConfig`` (decode, populate, validate) and profile lookup."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from cfsslpy.config.decode import decode_config, load_json
from cfsslpy.config.populate import AuthKey, populate_profile
from cfsslpy.config.profile import SigningProfile
from cfsslpy.errors import Category, CfsslError, PlainError, Reason, log_value, policy_error

log = logging.getLogger("cfsslpy.config")  # one logger for the package, as when it was one module


@dataclass
class Signing:
    default: SigningProfile
    profiles: dict[str, SigningProfile] = field(default_factory=dict)

    def profile(self, name: str) -> SigningProfile:
        """The named profile, or the default one for an empty name; an unknown name is 5400.

        Deliberate difference: cfssl's local and remote signers fall back to the default profile for any
        name they do not know, so a typo issues a certificate with other usages and another lifetime. Here
        that is ``{"code":5400,"message":"Unknown policy profile"}`` (the error cfssl's universal signer
        gives), with the name in an ERROR log line.
        """
        if not name:
            return self.default
        found = self.profiles.get(name)
        if found is None:
            log.error("unknown profile %s", log_value(name))
            raise CfsslError(Category.POLICY, Reason.UNKNOWN_PROFILE)
        return found

    def forwarding_profile(self, name: str) -> SigningProfile:
        """The profile whose remote a request for ``name`` goes to: the named one, else the default one.

        Only for forwarding: the remote resolves the name against its own configuration (a ``-remote``
        client usually knows none of the server's profiles), and a cfsslpy server refuses one it does not know.
        """
        found = self.profiles.get(name) if name else None
        if found is None and name:
            log.debug("profile %s is not in the local configuration: the default profile's remote resolves it", log_value(name))
        return found or self.default

    def has_remote(self) -> bool:
        return self.default.is_remote or any(p.is_remote for p in self.profiles.values())

    def has_local(self) -> bool:
        return not self.default.is_remote or any(not p.is_remote for p in self.profiles.values())


@dataclass
class Config:
    signing: Signing
    auth_keys: dict[str, AuthKey] = field(default_factory=dict)
    remotes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def default(cls) -> Config:
        return cls(Signing(SigningProfile.builtin_default()))

    @classmethod
    def from_json_bytes(cls, data: bytes) -> Config:
        return cls.from_json(load_json(data))

    @classmethod
    def from_file(cls, path: str) -> Config:
        from cfsslpy.inputs import read_input

        try:
            data = read_input(path, allow_prefixes=False)
        except PlainError as exc:
            raise policy_error(f"failed to read configuration file: {exc}") from None
        return cls.from_json_bytes(data)

    @classmethod
    def from_json(cls, obj: Any) -> Config:
        """cfssl's ``LoadConfig`` on a decoded document: unmarshal everything, then populate, then validate.

        As in Go, a type error anywhere wins over a missing ``signing`` section, which wins over the
        checks of each profile (default first, then the named ones).
        """
        doc = decode_config(obj)
        signing = doc["signing"]
        if signing is None:
            raise PlainError('No "signing" field present')
        cfg = cls(Signing(SigningProfile.builtin_default()), doc["auth_keys"], doc["remotes"])
        default: SigningProfile | None = signing["default"]
        if default is not None:
            populate_profile(default, cfg.auth_keys, cfg.remotes)
            cfg.signing.default = default
        profiles: dict[str, SigningProfile | None] = signing["profiles"]
        for name, profile in profiles.items():
            if profile is None:
                raise policy_error("can't parse nil profile")
            populate_profile(profile, cfg.auth_keys, cfg.remotes)
            cfg.signing.profiles[name] = profile
        cfg._validate()
        return cfg

    def _validate(self) -> None:
        """cfssl's ``Signing.Valid`` (failure -> 5200 ``invalid configuration``)."""
        if not self.signing.default.is_remote and self.signing.default.expiry == 0:
            raise policy_error("invalid configuration")
        for p in [self.signing.default, *self.signing.profiles.values()]:
            if p.auth_remote.auth_key and not p.auth_remote.remote:
                raise policy_error("invalid configuration")
            if p.auth_remote.remote and not p.remote and not p.auth_remote.auth_key:
                raise policy_error("invalid configuration")
            if p.remote and p.auth_remote.remote:
                raise policy_error("invalid configuration")
            if not (0 <= p.lint_error_level < 8):
                raise policy_error("invalid configuration")
        for p in self.signing.profiles.values():
            if not p.is_remote:
                _, _, unknown = p.key_usages()
                if not p.usages or len(unknown) == len(p.usages):
                    raise policy_error("invalid configuration")
