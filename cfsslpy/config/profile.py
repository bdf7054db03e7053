"""The signing profile model: usages, CA constraint, policies, whitelists, expiries (reference §3.2, §3.3)."""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from cfsslpy.csr import NameConstraints, path_len_constraint
from cfsslpy.golang.json import HOUR

log = logging.getLogger("cfsslpy.config")  # one logger for the package, as when it was one module


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
        return path_len_constraint(self.max_path_len, self.max_path_len_zero)


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
    type: str = ""
    value: str = ""


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
