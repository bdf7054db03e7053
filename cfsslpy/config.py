"""cfssl's signing configuration (``-config``): profiles, usages, auth keys and remotes (reference §3.1-§3.5).

Every load or validation failure is ``{"code":5200,...}`` with cfssl's detail message, except a missing
``signing`` section, which cfssl reports as plain text. Keys are matched like Go's encoding/json (exact,
then case-insensitive).

Deliberate differences from cfssl (README, compatibility): unknown usage strings are logged as a WARNING
instead of being dropped silently.
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
from cfsslpy.errors import PlainError, policy_error
from cfsslpy.gojson import HOUR, JSONDecodeError, fold_keys, loads, parse_duration

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
        "CSRWhitelist", "ClientProvidesSerialNumbers",
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
        )

    @classmethod
    def ca_policy(cls, expiry: int = CA_EXPIRY, pathlen: int = 0, pathlenzero: bool = False, backdate: int = 0, crl_url: str = "") -> SigningProfile:
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
        """The named profile, or the default for an empty or unknown name (cfssl's local-signer rule).

        An unknown name logs a WARNING (cfssl falls back silently); :meth:`strict_profile` refuses instead.
        """
        if not name:
            return self.default
        if name in self.profiles:
            return self.profiles[name]
        log.warning("unknown profile %r: using the default profile", name)
        return self.default

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
        if not isinstance(obj, dict):
            raise policy_error("failed to unmarshal configuration: json: cannot unmarshal into Go value of type config.Config")
        top = fold_keys(obj, ["signing", "auth_keys", "remotes", "ocsp"])
        auth_keys: dict[str, AuthKey] = {}
        raw_keys = top.get("auth_keys") or {}
        if not isinstance(raw_keys, dict):
            raise _unmarshal("auth_keys", "map[string]config.AuthKey")
        for name, value in raw_keys.items():
            if not isinstance(value, dict):
                raise _unmarshal("auth_keys", "config.AuthKey")
            f = fold_keys(value, ["type", "key"])
            auth_keys[name] = AuthKey(_str(f, "type", "AuthKey"), _str(f, "key", "AuthKey"))
        remotes: dict[str, str] = {}
        raw_remotes = top.get("remotes") or {}
        if not isinstance(raw_remotes, dict):
            raise _unmarshal("remotes", "map[string]string")
        for name, value in raw_remotes.items():
            if not isinstance(value, str):
                raise _unmarshal("remotes", "string")
            remotes[name] = value
        cfg = cls(Signing(SigningProfile.builtin_default()), auth_keys, remotes)

        signing = top.get("signing")
        if signing is None:
            raise PlainError('No "signing" field present')
        if not isinstance(signing, dict):
            raise _unmarshal("signing", "config.Signing")
        sf = fold_keys(signing, ["profiles", "default"])
        profiles_raw = sf.get("profiles") or {}
        if not isinstance(profiles_raw, dict):
            raise _unmarshal("profiles", "map[string]*config.SigningProfile")
        default_raw = sf.get("default")
        if default_raw is not None:
            cfg.signing.default = cfg._profile_from_json(default_raw)
        for name, raw in profiles_raw.items():
            cfg.signing.profiles[name] = cfg._profile_from_json(raw)
        cfg._validate()
        return cfg

    # -- profiles ---------------------------------------------------------------------------------------

    def _profile_from_json(self, raw: Any) -> SigningProfile:
        if raw is None:
            raise policy_error("can't parse nil profile")
        if not isinstance(raw, dict):
            raise _unmarshal("profiles", "config.SigningProfile")
        f = fold_keys(raw, SigningProfile.FIELDS)
        p = SigningProfile()
        p.usages = _str_list(f, "usages")
        if f.get("issuer_urls") is not None:
            p.issuer_urls = _str_list(f, "issuer_urls")
        p.ocsp_url = _str(f, "ocsp_url")
        p.crl_url = _str(f, "crl_url")
        cc = f.get("ca_constraint")
        if cc is not None:
            if not isinstance(cc, dict):
                raise _unmarshal("ca_constraint", "config.CAConstraint")
            c = fold_keys(cc, ["is_ca", "max_path_len", "max_path_len_zero"])
            p.ca_constraint = CAConstraint(_bool(c, "is_ca"), _int(c, "max_path_len"), _bool(c, "max_path_len_zero"))
        p.ocsp_no_check = _bool(f, "ocsp_no_check")
        p.expiry_string = _str(f, "expiry")
        p.backdate_string = _str(f, "backdate")
        for key in ("Expiry", "Backdate"):
            value = f.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise _unmarshal(key, "time.Duration")
        p.expiry = int(f.get("Expiry") or 0)
        p.backdate = int(f.get("Backdate") or 0)
        p.auth_key = _str(f, "auth_key")
        p.prev_auth_key = _str(f, "prev_auth_key")
        p.remote = _str(f, "remote")
        p.not_before = _time(f, "not_before")
        p.not_after = _time(f, "not_after")
        p.name_whitelist_string = _str(f, "name_whitelist")
        ar = f.get("auth_remote")
        if ar is not None:
            if not isinstance(ar, dict):
                raise _unmarshal("auth_remote", "config.AuthRemote")
            a = fold_keys(ar, ["remote", "auth_key"])
            p.auth_remote = AuthRemote(_str(a, "remote"), _str(a, "auth_key"))
        p.ct_log_servers = _str_list(f, "ct_log_servers")
        for oid in _str_list(f, "allowed_extensions"):
            try:
                p.allowed_extensions.append(ObjectIdentifier(oid))
            except ValueError:
                raise policy_error(f"failed to unmarshal configuration: invalid OID {oid!r} in allowed_extensions") from None
        p.cert_store = _str(f, "cert_store")
        p.copy_extensions = _bool(f, "copy_extensions")
        p.lint_error_level = _int(f, "lint_error_level")
        p.ignored_lints = _str_list(f, "ignored_lints")
        p.ignored_lint_sources = _str_list(f, "ignored_lint_sources")
        p.policies = _policies(f.get("Policies"))
        wl = f.get("CSRWhitelist")
        if wl is not None:
            if not isinstance(wl, dict):
                raise _unmarshal("CSRWhitelist", "config.CSRWhitelist")
            w = fold_keys(wl, CSRWhitelist.FIELDS)
            p.csr_whitelist = CSRWhitelist(**{k: _bool(w, k) for k in CSRWhitelist.FIELDS})
        value = f.get("ClientProvidesSerialNumbers")
        if value is not None and not isinstance(value, bool):
            raise _unmarshal("ClientProvidesSerialNumbers", "bool")
        p.client_provides_serial_numbers = bool(value)
        nc = f.get("name_constraints")
        if nc is not None:
            try:
                p.name_constraints = NameConstraints.from_json(nc, "SigningProfile")
            except (JSONDecodeError, Exception) as exc:  # CfsslError from entry validation included
                message = getattr(exc, "message", str(exc))
                raise policy_error(f"invalid name_constraints: {message}") from None
        self._populate(p)
        return p

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
                    if q.type not in ("id-qt-cps", "id-qt-unotice"):
                        raise policy_error("invalid policy qualifier type")
        elif p.remote:
            server = self.remotes.get(p.remote)
            if server is None:
                raise policy_error("failed to find remote in remotes section")
            p.remote_server = server
        else:
            server = self.remotes.get(p.auth_remote.remote)
            if server is None:
                raise policy_error("failed to find remote in remotes section")
            p.remote_server = server
        if p.auth_key:
            p.auth_key_bytes = self._auth_key(p.auth_key, "failed to find auth_key in auth_keys section")
        if p.prev_auth_key:
            p.prev_auth_key_bytes = self._auth_key(p.prev_auth_key, "failed to find prev_auth_key in auth_keys section")
        if p.auth_remote.auth_key:
            p.auth_remote_key_bytes = self._auth_key(p.auth_remote.auth_key, "failed to find auth_remote's auth_key in auth_keys section")
        if p.name_whitelist_string:
            try:
                p.name_whitelist = re.compile(p.name_whitelist_string)
            except re.error:
                raise policy_error("failed to compile name whitelist section") from None
        if p.name_constraints is not None and not p.ca_constraint.is_ca:
            raise policy_error("name_constraints needs ca_constraint.is_ca: they only apply to CA certificates")
        if p.ct_log_servers:
            raise policy_error(
                "ct_log_servers: submitting precertificates to CT logs is not supported by cfsslpy (offline CA); remove the field"
            )
        if p.lint_error_level:
            raise policy_error(
                "lint_error_level: zlint pre-issuance linting is not available in cfsslpy; remove the field (cfsslpy "
                "already refuses the RFC 5280 violations listed in README)"
            )
        _, _, unknown = p.key_usages()
        for usage in unknown:
            log.warning("unknown usage %r in signing profile is ignored", usage)

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
            if p.remote and p.auth_remote.remote:
                raise policy_error("invalid configuration")
            if not (0 <= p.lint_error_level < 8):
                raise policy_error("invalid configuration")
        for p in self.signing.profiles.values():
            if not p.is_remote:
                _, _, unknown = p.key_usages()
                if not p.usages or len(unknown) == len(p.usages):
                    raise policy_error("invalid configuration")


# -- JSON field helpers (all failures are 5200 "failed to unmarshal configuration: ...") -----------------


def _unmarshal(fieldname: str, go_type: str) -> Exception:
    return policy_error(f"failed to unmarshal configuration: json: cannot unmarshal value into Go struct field .{fieldname} of type {go_type}")


def _str(f: dict[str, Any], key: str, struct: str = "SigningProfile") -> str:
    value = f.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _unmarshal(key, "string")
    return value


def _bool(f: dict[str, Any], key: str) -> bool:
    value = f.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _unmarshal(key, "bool")
    return value


def _int(f: dict[str, Any], key: str) -> int:
    value = f.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise _unmarshal(key, "int")
    return int(value)


def _str_list(f: dict[str, Any], key: str) -> list[str]:
    value = f.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _unmarshal(key, "[]string")
    return list(value)


def _time(f: dict[str, Any], key: str) -> dt.datetime | None:
    value = f.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _unmarshal(key, "time.Time")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise policy_error(f'failed to unmarshal configuration: parsing time "{value}" as RFC 3339') from None
    if parsed.tzinfo is None or "T" not in value.upper():
        raise policy_error(f'failed to unmarshal configuration: parsing time "{value}" as RFC 3339 (a time zone is required)')
    return parsed.astimezone(dt.timezone.utc)


def _duration(text: str) -> int:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise policy_error(str(exc)) from None


def _policies(raw: Any) -> list[CertificatePolicy]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _unmarshal("Policies", "[]config.CertificatePolicy")
    out: list[CertificatePolicy] = []
    for item in raw:
        if not isinstance(item, dict):
            raise _unmarshal("Policies", "config.CertificatePolicy")
        f = fold_keys(item, ["ID", "Qualifiers"])
        oid_text = f.get("ID")
        if not isinstance(oid_text, str):
            raise _unmarshal("ID", "config.OID")
        try:
            oid = ObjectIdentifier(oid_text)
        except ValueError:
            raise policy_error(f"failed to unmarshal configuration: invalid OID {oid_text!r}") from None
        qualifiers: list[PolicyQualifier] = []
        for q in f.get("Qualifiers") or []:
            if not isinstance(q, dict):
                raise _unmarshal("Qualifiers", "config.CertificatePolicyQualifier")
            qf = fold_keys(q, ["Type", "Value"])
            qualifiers.append(PolicyQualifier(_str(qf, "Type"), _str(qf, "Value")))
        out.append(CertificatePolicy(oid, qualifiers))
    return out


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
