"""The configuration document's Go shape: cfssl's ``config.Config`` structs, read by :mod:`cfsslpy.golang.decode`.

Every failure is 5200 ``failed to unmarshal configuration: <Go's json error>``. Type errors name the field by
its whole JSON path (Go >= 1.20), e.g. ``json: cannot unmarshal string into Go struct field
SigningProfile.signing.default.usages of type []string`` (map keys are not part of the path, as in Go).
Nothing is checked beyond JSON types here: that is :func:`cfsslpy.config.populate.populate_profile`'s job.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cryptography.x509.oid import ObjectIdentifier

from cfsslpy.config.populate import AuthKey
from cfsslpy.config.profile import AuthRemote, CAConstraint, CertificatePolicy, CSRWhitelist, PolicyQualifier, SigningProfile
from cfsslpy.csr import NameConstraints
from cfsslpy.errors import CfsslError, policy_error
from cfsslpy.golang.decode import BOOL, GO_ZERO_TIME, STRING, STRINGS, GoStruct, GoType, Int, Map, Ptr, Slice, Text, Where, decode
from cfsslpy.golang.json import JSONDecodeError, loads, parse_time


def unmarshal_error(exc: JSONDecodeError) -> CfsslError:
    return policy_error(f"failed to unmarshal configuration: {exc}")


def load_json(data: bytes) -> Any:
    """A configuration file's JSON (``-config``, ``-db-config``); a syntax error is cfssl's 5200
    ``failed to unmarshal configuration: <Go's json error>``."""
    try:
        return loads(data)
    except JSONDecodeError as exc:
        raise unmarshal_error(exc) from None


def _time(text: str, where: Where) -> dt.datetime | None:
    try:
        # RFC 3339 allows a lower-case "t" and "z"; Go's parser does not, but this one always has
        parsed = parse_time(text.upper())
    except JSONDecodeError:
        # Go's own message quotes its layout at length; ours names the field and the format.
        raise policy_error(f'failed to unmarshal configuration: parsing time "{text}" as RFC 3339 (field {where.path})') from None
    return None if parsed == GO_ZERO_TIME else parsed  # Go's zero time.Time: cfssl treats it as "not set" (IsZero)


def _oid(text: str, where: Where) -> ObjectIdentifier:
    try:
        return ObjectIdentifier(text)
    except ValueError:
        raise policy_error(f"failed to unmarshal configuration: invalid OID {text!r} in {where.path}") from None


class _NameConstraints(GoType):
    """Our addition in a profile: its errors are ``invalid name_constraints: ...`` (5200)."""

    go = "NameConstraints"

    def decode(self, value: Any, where: Where) -> NameConstraints:
        try:
            return NameConstraints.from_json(value, "SigningProfile")
        except (JSONDecodeError, CfsslError) as exc:
            message = exc.message if isinstance(exc, CfsslError) else str(exc)
            raise policy_error(f"invalid name_constraints: {message}") from None


def _policy(id: ObjectIdentifier | None = None, qualifiers: list[PolicyQualifier] | None = None) -> CertificatePolicy:  # noqa: A002
    if id is None:  # Go's empty OID: no certificate can carry it
        raise JSONDecodeError("json: cannot unmarshal null into Go struct field CertificatePolicy.ID of type config.OID")
    return CertificatePolicy(id, qualifiers or [])


TIME = Text("time.Time", _time)
OID = Text("config.OID", _oid)
DURATION = Int("time.Duration", whole_floats=True)  # Go's time.Duration fields: integer nanoseconds
CA_CONSTRAINT = GoStruct(
    "config.CAConstraint", {"is_ca": BOOL, "max_path_len": Int(whole_floats=True), "max_path_len_zero": BOOL}, CAConstraint
)
AUTH_REMOTE = GoStruct("config.AuthRemote", {"remote": STRING, "auth_key": STRING}, AuthRemote)
QUALIFIER = GoStruct("config.CertificatePolicyQualifier", {"Type": (STRING, "type"), "Value": (STRING, "value")}, PolicyQualifier)
POLICY = GoStruct(
    "config.CertificatePolicy",
    {"ID": (OID, "id"), "Qualifiers": (Slice(QUALIFIER, "[]config.CertificatePolicyQualifier", skip_nulls=True), "qualifiers")},
    _policy,
)

# JSON keys in Go struct order; a case-insensitive match goes to the first field that folds equal
# ("EXPIRY" is "expiry", the duration string, not "Expiry", the nanoseconds).
SIGNING_PROFILE = GoStruct(
    "config.SigningProfile",
    {
        "usages": STRINGS,
        "issuer_urls": STRINGS,
        "ocsp_url": STRING,
        "crl_url": STRING,
        "ca_constraint": CA_CONSTRAINT,
        "ocsp_no_check": BOOL,
        "expiry": (STRING, "expiry_string"),
        "backdate": (STRING, "backdate_string"),
        "auth_key": STRING,
        "prev_auth_key": STRING,
        "remote": STRING,
        "not_before": TIME,
        "not_after": TIME,
        "name_whitelist": (STRING, "name_whitelist_string"),
        "auth_remote": AUTH_REMOTE,
        "ct_log_servers": STRINGS,
        "allowed_extensions": Slice(OID, "[]config.OID"),
        "cert_store": STRING,
        "lint_error_level": Int(whole_floats=True),
        "ignored_lints": STRINGS,
        "ignored_lint_sources": STRINGS,
        "copy_extensions": BOOL,
        "name_constraints": _NameConstraints(),
        "Policies": (Slice(POLICY, "[]config.CertificatePolicy", skip_nulls=True), "policies"),
        "Expiry": (DURATION, "expiry"),
        "Backdate": (DURATION, "backdate"),
        "CSRWhitelist": (GoStruct("config.CSRWhitelist", dict.fromkeys(CSRWhitelist.FIELDS, BOOL), CSRWhitelist), "csr_whitelist"),
        "ClientProvidesSerialNumbers": (BOOL, "client_provides_serial_numbers"),
        "auth_replay_window": (STRING, "auth_replay_window_string"),  # our addition
    },
    SigningProfile,
)
SIGNING = GoStruct(
    "config.Signing",
    {"profiles": Map(Ptr(SIGNING_PROFILE), "map[string]*config.SigningProfile"), "default": Ptr(SIGNING_PROFILE)},
)
CONFIG = GoStruct(
    "config.Config",
    {
        "signing": Ptr(SIGNING),
        "auth_keys": Map(GoStruct("config.AuthKey", {"type": STRING, "key": STRING}, AuthKey), "map[string]config.AuthKey"),
        "remotes": Map(STRING, "map[string]string"),
    },
)


def decode_config(obj: Any) -> dict[str, Any]:
    """The decoded document as ``{"signing": {"default": profile | None, "profiles": {...}} | None,
    "auth_keys": {...}, "remotes": {...}}``; 5200 ``failed to unmarshal configuration: ...`` on a type error."""
    try:
        result: dict[str, Any] = decode(CONFIG, obj, full_paths=True, null=False)
    except JSONDecodeError as exc:
        raise unmarshal_error(exc) from None
    return result
