"""cfssl's signing configuration (``-config``): profiles, usages, auth keys and remotes (reference §3.1-§3.5).

Every load or validation failure is ``{"code":5200,...}`` with cfssl's detail message, except a missing
``signing`` section, which cfssl reports as plain text. Keys are matched like Go's encoding/json (exact,
then case-insensitive).

Deliberate differences from cfssl (README, compatibility): unknown usage strings are logged as a WARNING
instead of being dropped silently; a profile name the configuration does not define is 5400 (cfssl's local
signer uses the default profile), see :meth:`Signing.profile`. Our addition: a profile's ``auth_replay_window`` (Go duration, e.g. ``"5m"``;
absent or 0 = off) turns on authsign's replay guard (timestamped tokens, each usable once; see
:mod:`cfsslpy.auth`); on an ``auth_remote`` profile it makes a client send timestamped tokens.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from cfsslpy.csr import NameConstraints
from cfsslpy.errors import Category, CfsslError, PlainError, Reason, log_value, policy_error
from cfsslpy.gojson import HOUR, JSONDecodeError, fold_keys, loads, parse_duration, parse_time, type_error

log = logging.getLogger(__name__)

# Key usage names -> cryptography KeyUsage keyword (reference §3.3).
KEY_USAGES: dict[str, str] = {
    "signing": "digital_signature",
    "digital signature": "digital_signature",
    "content commitment": "content_commitment",
    "content committment": "content_commitment",  # the 2016 spelling, still seen in old configs
    "key encipherment": "key_encipherment",
    "data encipherment": "data_encipherment",
    "key agreement": "key_agreement",
    "cert sign": "key_cert_sign",
    "crl sign": "crl_sign",
    "encipher only": "encipher_only",
    "decipher only": "decipher_only",
}
EXT_KEY_USAGES: dict[str, ObjectIdentifier] = {
    "any": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    "server auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "s/mime": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "ipsec end system": ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
    "ipsec tunnel": ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
    "ipsec user": ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocsp signing": ExtendedKeyUsageOID.OCSP_SIGNING,
    "microsoft sgc": ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
    "netscape sgc": ObjectIdentifier("2.16.840.1.113730.4.1"),
}

DEFAULT_EXPIRY = 8760 * HOUR
CA_EXPIRY = 43800 * HOUR
SELFSIGN_EXPIRY = 2190 * HOUR


@dataclass
class CAConstraint:
    is_ca: bool = False
    max_path_len: int = 0
    max_path_len_zero: bool = False

    def path_length(self) -> int | None:
        """The issued pathLenConstraint: 0 means none unless ``max_path_len_zero`` (cfssl rule)."""
        if self.max_path_len > 0:
            return self.max_path_len
        if self.max_path_len == 0 and self.max_path_len_zero:
            return 0
        return None


@dataclass
class AuthRemote:
    remote: str = ""
    auth_key: str = ""


@dataclass
class CSRWhitelist:
    """Which CSR fields are copied into the certificate when a profile sets ``CSRWhitelist``."""

    Subject: bool = False
    PublicKeyAlgorithm: bool = False
    PublicKey: bool = False
    SignatureAlgorithm: bool = False
    DNSNames: bool = False
    IPAddresses: bool = False
    EmailAddresses: bool = False
    URIs: bool = False

    FIELDS = ("Subject", "PublicKeyAlgorithm", "PublicKey", "SignatureAlgorithm", "DNSNames", "IPAddresses", "EmailAddresses", "URIs")


@dataclass
class PolicyQualifier:
    type: str
    value: str


@dataclass
class CertificatePolicy:
    id: ObjectIdentifier
    qualifiers: list[PolicyQualifier] = field(default_factory=list)


@dataclass
class SigningProfile:
    """One signing profile (reference §3.2). Durations are integer nanoseconds."""

    usages: list[str] = field(default_factory=list)
    issuer_urls: list[str] | None = None
    ocsp_url: str = ""
    crl_url: str = ""
    ca_constraint: CAConstraint = field(default_factory=CAConstraint)
    ocsp_no_check: bool = False
    expiry_string: str = ""
    expiry: int = 0
    backdate_string: str = ""
    backdate: int = 0
    auth_key: str = ""
    prev_auth_key: str = ""
    # our addition: authsign replay guard window (ns); 0 = off. See cfsslpy.auth.
    auth_replay_window_string: str = ""
    auth_replay_window: int = 0
    remote: str = ""
    remote_server: str = ""
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    name_whitelist_string: str = ""
    name_whitelist: re.Pattern[str] | None = None
    auth_remote: AuthRemote = field(default_factory=AuthRemote)
    ct_log_servers: list[str] = field(default_factory=list)
    allowed_extensions: list[ObjectIdentifier] = field(default_factory=list)
    cert_store: str = ""
    copy_extensions: bool = False
    lint_error_level: int = 0
    ignored_lints: list[str] = field(default_factory=list)
    ignored_lint_sources: list[str] = field(default_factory=list)
    policies: list[CertificatePolicy] = field(default_factory=list)
    csr_whitelist: CSRWhitelist | None = None
    client_provides_serial_numbers: bool = False
    builtin: bool = False  # cfssl's built-in default, not written by the user
    name_constraints: NameConstraints | None = None  # our addition, with ca_constraint.is_ca
    auth_key_bytes: bytes | None = field(default=None, repr=False)
    prev_auth_key_bytes: bytes | None = field(default=None, repr=False)
    auth_remote_key_bytes: bytes | None = field(default=None, repr=False)

    # JSON keys in Go struct order; case-insensitive matches go to the first field that folds equal.
    FIELDS = (
        "usages", "issuer_urls", "ocsp_url", "crl_url", "ca_constraint", "ocsp_no_check", "expiry", "backdate",
        "auth_key", "prev_auth_key", "remote", "not_before", "not_after", "name_whitelist", "auth_remote",
        "ct_log_servers", "allowed_extensions", "cert_store", "lint_error_level", "ignored_lints",
        "ignored_lint_sources", "copy_extensions", "name_constraints", "Policies", "Expiry", "Backdate",
        "CSRWhitelist", "ClientProvidesSerialNumbers", "auth_replay_window",
    )  # fmt: skip

    @property
    def is_remote(self) -> bool:
        return bool(self.remote or self.auth_remote.remote)

    def key_usages(self) -> tuple[dict[str, bool], list[ObjectIdentifier], list[str]]:
        """(KeyUsage keyword flags, EKU OIDs in profile order, unknown usage strings)."""
        flags: dict[str, bool] = {}
        ekus: list[ObjectIdentifier] = []
        unknown: list[str] = []
        for usage in self.usages:
            if usage in KEY_USAGES:
                flags[KEY_USAGES[usage]] = True
            elif usage in EXT_KEY_USAGES:
                ekus.append(EXT_KEY_USAGES[usage])
            else:
                unknown.append(usage)
        return flags, ekus, unknown

    @classmethod
    def builtin_default(cls, expiry: int = DEFAULT_EXPIRY) -> SigningProfile:
        """cfssl's DefaultConfig: signing, key encipherment, server auth, client auth; 8760h."""
        hours = expiry // HOUR
        return cls(
            usages=["signing", "key encipherment", "server auth", "client auth"],
            expiry_string=f"{hours}h",
            expiry=expiry,
            builtin=True,
        )

    @classmethod
    def ca_policy(
        cls, expiry: int = CA_EXPIRY, pathlen: int = 0, pathlenzero: bool = False, backdate: int = 0, crl_url: str = ""
    ) -> SigningProfile:
        """cfssl's CAPolicy for initca: cert sign, crl sign, CA:TRUE, 43800h unless ``ca.expiry``."""
        if pathlen != 0 and pathlenzero:
            log.info("ignore pathlenzero since pathlen is %d", pathlen)
            pathlenzero = False
        return cls(
            usages=["cert sign", "crl sign"],
            expiry=expiry,
            backdate=backdate,
            crl_url=crl_url,
            ca_constraint=CAConstraint(is_ca=True, max_path_len=pathlen, max_path_len_zero=pathlenzero),
        )


@dataclass
class AuthKey:
    type: str
    key: str = field(repr=False)


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
        try:
            obj = loads(data)
        except JSONDecodeError as exc:
            raise policy_error(f"failed to unmarshal configuration: {exc}") from None
        return cls.from_json(obj)

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
        if not isinstance(obj, dict):
            raise _wrap(type_error(obj, "", "", "config.Config"))
        top = _Obj(obj, ("signing", "auth_keys", "remotes", "ocsp"), "Config", "")
        auth_keys: dict[str, AuthKey] = {}
        for name, value in top.mapping("auth_keys", "map[string]config.AuthKey").items():
            entry = top.child(value, "auth_keys", "config.AuthKey", ("type", "key"), "AuthKey")
            auth_keys[name] = AuthKey(entry.string("type"), entry.string("key")) if entry is not None else AuthKey("", "")
        remotes: dict[str, str] = {}
        for name, value in top.mapping("remotes", "map[string]string").items():
            if value is not None and not isinstance(value, str):
                raise top.error(value, "remotes", "string")
            remotes[name] = value or ""
        signing = top.child(top.get("signing"), "signing", "config.Signing", ("profiles", "default"), "Signing")
        default: SigningProfile | None = None
        profiles: dict[str, SigningProfile | None] = {}
        if signing is not None:
            raw_default = signing.child(signing.get("default"), "default", "config.SigningProfile", SigningProfile.FIELDS, "SigningProfile")
            default = None if raw_default is None else _profile_from_json(raw_default)
            for name, raw in signing.mapping("profiles", "map[string]*config.SigningProfile").items():
                child = signing.child(raw, "profiles", "config.SigningProfile", SigningProfile.FIELDS, "SigningProfile")
                profiles[name] = None if child is None else _profile_from_json(child)

        if signing is None:
            raise PlainError('No "signing" field present')
        cfg = cls(Signing(SigningProfile.builtin_default()), auth_keys, remotes)
        if default is not None:
            cfg._populate(default)
            cfg.signing.default = default
        for name, profile in profiles.items():
            if profile is None:
                raise policy_error("can't parse nil profile")
            cfg._populate(profile)
            cfg.signing.profiles[name] = profile
        cfg._validate()
        return cfg

    def _populate(self, p: SigningProfile) -> None:
        """cfssl's ``SigningProfile.populate``: parse durations, resolve names, compile the whitelist."""
        if not p.is_remote:
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
        elif p.remote:
            if p.auth_remote.remote:
                log.error("profile has both a remote and an auth remote specified")
                raise CfsslError(Category.POLICY, Reason.INVALID_POLICY)
            server = self.remotes.get(p.remote, "")
            if not server:
                raise policy_error("failed to find remote in remotes section")
            p.remote_server = server
        else:
            server = self.remotes.get(p.auth_remote.remote, "")
            if not server:
                raise policy_error("failed to find remote in remotes section")
            p.remote_server = server
        if p.auth_key:
            p.auth_key_bytes = self._auth_key(p.auth_key, "failed to find auth_key in auth_keys section")
        if p.prev_auth_key:
            p.prev_auth_key_bytes = self._auth_key(p.prev_auth_key, "failed to find prev_auth_key in auth_keys section")
        if p.auth_replay_window_string:
            p.auth_replay_window = _duration(p.auth_replay_window_string)
            if p.auth_replay_window < 0:
                raise policy_error("auth_replay_window must not be negative")
            if p.auth_replay_window and not (p.auth_key or p.auth_remote.auth_key):
                raise policy_error("auth_replay_window needs an auth_key (server) or auth_remote (client): it guards authsign tokens")
        if p.auth_remote.auth_key:
            p.auth_remote_key_bytes = self._auth_key(p.auth_remote.auth_key, "failed to find auth_remote's auth_key in auth_keys section")
        if p.name_whitelist_string:
            try:
                p.name_whitelist = re.compile(p.name_whitelist_string)
            except re.error:
                raise policy_error("failed to compile name whitelist section") from None
        _check_encodable(p)
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
        _, _, unknown = p.key_usages()
        for usage in unknown:
            log.warning("unknown usage %s in signing profile is ignored", log_value(usage))

    def _auth_key(self, name: str, missing: str) -> bytes:
        from cfsslpy.auth import decode_key

        entry = self.auth_keys.get(name)
        if entry is None:
            raise policy_error(missing)
        if entry.type != "standard":
            raise policy_error("unknown authentication type")
        try:
            return decode_key(entry.key)
        except ValueError:
            raise policy_error("failed to create new standard auth provider") from None

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


# -- JSON decoding (every failure is 5200 "failed to unmarshal configuration: <Go's json error>") ----------


def _wrap(exc: JSONDecodeError) -> CfsslError:
    return policy_error(f"failed to unmarshal configuration: {exc}")


class _Obj:
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
        return _wrap(type_error(value, self.struct, self._path(key), go_type))

    def get(self, key: str) -> Any:
        return self.fields.get(key)

    def child(self, value: Any, key: str, go_type: str, fields: tuple[str, ...], struct: str) -> _Obj | None:
        """A nested struct (None when absent or null)."""
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.error(value, key, go_type)
        return _Obj(value, fields, struct, self._path(key))

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
        if parsed == _GO_ZERO_TIME:
            return None  # Go's zero time.Time: cfssl treats it as "not set" (IsZero)
        return parsed

    def oid(self, value: Any, key: str) -> ObjectIdentifier:
        if not isinstance(value, str):
            raise self.error(value, key, "config.OID")
        try:
            return ObjectIdentifier(value)
        except ValueError:
            raise policy_error(f"failed to unmarshal configuration: invalid OID {value!r} in {self._path(key)}") from None


def _profile_from_json(o: _Obj) -> SigningProfile:
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


_GO_ZERO_TIME = dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc)
_EARLIEST = dt.datetime(1950, 1, 1, tzinfo=dt.timezone.utc)


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


def certificate_policies(policies: list[CertificatePolicy]) -> x509.CertificatePolicies:
    """cfssl's policies as an extension: CPS URIs as IA5String, user notices as UTF8String explicitText."""
    infos = []
    for policy in policies:
        quals: list[str | x509.UserNotice] = []
        for q in policy.qualifiers:
            if q.type == "id-qt-cps":
                quals.append(q.value)
            else:
                quals.append(x509.UserNotice(None, q.value))
        infos.append(x509.PolicyInformation(policy.id, quals or None))
    return x509.CertificatePolicies(infos)
