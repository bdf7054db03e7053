"""The configuration document's JSON read into the model, with Go's ``encoding/json`` rules.

Every failure is 5200 ``failed to unmarshal configuration: <Go's json error>``. Nothing is checked beyond JSON
types here: that is :func:`cfsslpy.config.populate.populate_profile`'s job.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cryptography.x509.oid import ObjectIdentifier

from cfsslpy.config.profile import AuthRemote, CAConstraint, CertificatePolicy, CSRWhitelist, PolicyQualifier, SigningProfile
from cfsslpy.csr import NameConstraints
from cfsslpy.errors import CfsslError, policy_error
from cfsslpy.gojson import JSONDecodeError, fold_keys, parse_time, type_error


def unmarshal_error(exc: JSONDecodeError) -> CfsslError:
    return policy_error(f"failed to unmarshal configuration: {exc}")


class GoObject:
    """A decoded JSON object being read into the Go struct ``struct``, found at JSON path ``path``.

    Keys are matched Go style (exact, then case-insensitive); type errors carry Go's wording, e.g.
    ``json: cannot unmarshal string into Go struct field SigningProfile.signing.default.usages of type
    []string`` (map keys are not part of the path, as in Go).
    """

    def __init__(self, obj: dict[str, Any], fields: tuple[str, ...], struct: str, path: str) -> None:
        self.fields = fold_keys(obj, fields)
        self.struct = struct
        self.path = path

    def _path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, value: Any, key: str, go_type: str) -> CfsslError:
        return unmarshal_error(type_error(value, self.struct, self._path(key), go_type))

    def get(self, key: str) -> Any:
        return self.fields.get(key)

    def child(self, value: Any, key: str, go_type: str, fields: tuple[str, ...], struct: str) -> GoObject | None:
        """A nested struct (None when absent or null)."""
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.error(value, key, go_type)
        return GoObject(value, fields, struct, self._path(key))

    def mapping(self, key: str, go_type: str) -> dict[str, Any]:
        value = self.fields.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(value, key, go_type)
        return value

    def string(self, key: str) -> str:
        value = self.fields.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.error(value, key, "string")
        return value

    def boolean(self, key: str) -> bool:
        value = self.fields.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.error(value, key, "bool")
        return value

    def integer(self, key: str, go_type: str = "int") -> int:
        value = self.fields.get(key)
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise self.error(value, key, go_type)
        return int(value)

    def strings(self, key: str) -> list[str] | None:
        """A ``[]string`` (None when absent or null)."""
        value = self.fields.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self.error(value, key, "[]string")
        for item in value:
            if not isinstance(item, str):
                raise self.error(item, key, "string")
        return list(value)

    def array(self, key: str, go_type: str) -> list[Any]:
        value = self.fields.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(value, key, go_type)
        return value

    def time(self, key: str) -> dt.datetime | None:
        value = self.fields.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(value, key, "time.Time")
        try:
            # RFC 3339 allows a lower-case "t" and "z"; Go's parser does not, but this one always has
            parsed = parse_time(value.upper())
        except JSONDecodeError:
            # Go's own message quotes its layout at length; ours names the field and the format.
            raise policy_error(f'failed to unmarshal configuration: parsing time "{value}" as RFC 3339 (field {self._path(key)})') from None
        if parsed == GO_ZERO_TIME:
            return None  # Go's zero time.Time: cfssl treats it as "not set" (IsZero)
        return parsed

    def oid(self, value: Any, key: str) -> ObjectIdentifier:
        if not isinstance(value, str):
            raise self.error(value, key, "config.OID")
        try:
            return ObjectIdentifier(value)
        except ValueError:
            raise policy_error(f"failed to unmarshal configuration: invalid OID {value!r} in {self._path(key)}") from None


def profile_from_json(o: GoObject) -> SigningProfile:
    """Unmarshal one signing profile (no checks beyond JSON types: those are ``Config._populate``'s)."""
    p = SigningProfile()
    p.usages = o.strings("usages") or []
    p.issuer_urls = o.strings("issuer_urls")
    p.ocsp_url = o.string("ocsp_url")
    p.crl_url = o.string("crl_url")
    cc = o.child(
        o.get("ca_constraint"), "ca_constraint", "config.CAConstraint", ("is_ca", "max_path_len", "max_path_len_zero"), "CAConstraint"
    )
    if cc is not None:
        p.ca_constraint = CAConstraint(cc.boolean("is_ca"), cc.integer("max_path_len"), cc.boolean("max_path_len_zero"))
    p.ocsp_no_check = o.boolean("ocsp_no_check")
    p.expiry_string = o.string("expiry")
    p.backdate_string = o.string("backdate")
    p.auth_key = o.string("auth_key")
    p.prev_auth_key = o.string("prev_auth_key")
    p.auth_replay_window_string = o.string("auth_replay_window")
    p.remote = o.string("remote")
    p.not_before = o.time("not_before")
    p.not_after = o.time("not_after")
    p.name_whitelist_string = o.string("name_whitelist")
    ar = o.child(o.get("auth_remote"), "auth_remote", "config.AuthRemote", ("remote", "auth_key"), "AuthRemote")
    if ar is not None:
        p.auth_remote = AuthRemote(ar.string("remote"), ar.string("auth_key"))
    p.ct_log_servers = o.strings("ct_log_servers") or []
    p.allowed_extensions = [o.oid(v, "allowed_extensions") for v in o.array("allowed_extensions", "[]config.OID")]
    p.cert_store = o.string("cert_store")
    p.lint_error_level = o.integer("lint_error_level")
    p.ignored_lints = o.strings("ignored_lints") or []
    p.ignored_lint_sources = o.strings("ignored_lint_sources") or []
    p.copy_extensions = o.boolean("copy_extensions")
    for raw in o.array("Policies", "[]config.CertificatePolicy"):
        po = o.child(raw, "Policies", "config.CertificatePolicy", ("ID", "Qualifiers"), "CertificatePolicy")
        if po is None:
            continue
        qualifiers: list[PolicyQualifier] = []
        for q in po.array("Qualifiers", "[]config.CertificatePolicyQualifier"):
            qo = po.child(q, "Qualifiers", "config.CertificatePolicyQualifier", ("Type", "Value"), "CertificatePolicyQualifier")
            if qo is not None:
                qualifiers.append(PolicyQualifier(qo.string("Type"), qo.string("Value")))
        p.policies.append(CertificatePolicy(po.oid(po.get("ID"), "ID"), qualifiers))
    # Go's time.Duration fields: integer nanoseconds under their exact Go names (overwritten by "expiry").
    p.expiry = o.integer("Expiry", "time.Duration")
    p.backdate = o.integer("Backdate", "time.Duration")
    wl = o.child(o.get("CSRWhitelist"), "CSRWhitelist", "config.CSRWhitelist", CSRWhitelist.FIELDS, "CSRWhitelist")
    if wl is not None:
        p.csr_whitelist = CSRWhitelist(**{k: wl.boolean(k) for k in CSRWhitelist.FIELDS})
    p.client_provides_serial_numbers = o.boolean("ClientProvidesSerialNumbers")
    nc = o.get("name_constraints")
    if nc is not None:
        try:
            p.name_constraints = NameConstraints.from_json(nc, "SigningProfile")
        except (JSONDecodeError, CfsslError) as exc:
            message = exc.message if isinstance(exc, CfsslError) else str(exc)
            raise policy_error(f"invalid name_constraints: {message}") from None
    return p


GO_ZERO_TIME = dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc)
