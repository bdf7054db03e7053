"""The local signer: a CSR and a profile in, an X.509 certificate out (reference §3.8, §7, §8).

Security-relevant behaviour, in cfssl's order:

* the CSR's signature is checked; RSA keys under 2048 bits and unsupported curves are refused (9300);
* a CSR asking to be a CA needs a CA profile, and a strictly smaller pathlen than a pathlen-limited issuer
  (5300); the *issued* pathlen comes from the profile and must also fit under the issuer's;
* ``-hostname`` / ``hosts`` replace the CSR's SANs; the subject override merges per attribute type;
* ``name_whitelist`` (unanchored search) covers the CN and every SAN: DNS, email, URI and IP address, an
  IP in its text form (``10.0.0.1``, ``2001:db8::1``) (5500; cfssl does not check IP SANs); an issuer with
  X.509 name constraints (our addition) must permit every name it signs (5300);
* validity: round(now, 1 min) - backdate (5 min default) + expiry, unless the profile or the request fix it;
  a notAfter later than the CA certificate's is cut to the CA's, with a WARNING (cfssl issues it as asked);
* serial: 20 CSPRNG bytes with the top bit cleared (positive, at most 159 bits);
* extensions in Go's order: KU (critical), EKU, basicConstraints (critical, always), SKI, AKI (not on
  self-signed CAs; Go also drops it on self-signed leaves and on any certificate whose issuer name equals its
  subject name), AIA (OCSP, caIssuers), SAN (critical iff the subject is empty), name constraints, CRL DP,
  then copied CSR extensions, request extensions, certificate policies, OCSP no-check;
* key usages RFC 5280/8813 forbid for the subject key (key encipherment on EC/Ed25519 keys, cert sign on a
  non-CA...) are left out with a WARNING (cfssl includes them);
* ``copy_extensions`` never lets a CSR set a CA-managed extension (KU, EKU, basicConstraints, key IDs, AIA,
  CRL DP, policies, name constraints, OCSP no-check, SAN): those stay the profile's.

The issuer is checked when the signer is built: the key must match the certificate (2300) and the
certificate must be allowed to sign certificates (5300). cfssl checks neither. When it signs, the CA
certificate must be valid at that moment: an expired or not yet valid CA is refused with 1211 (the code cfssl
gives an expired certificate in a chain); cfssl signs with it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID, NameOID, ObjectIdentifier

from cfsslpy.config import CSRWhitelist, Signing, SigningProfile, certificate_policies
from cfsslpy.crl import require_valid
from cfsslpy.csr import (
    OID_DELEGATION_USAGE,
    OID_EMAIL_ADDRESS,
    NameEntry,
    SANs,
    Subject,
    classify_hosts,
    is_dns_name,
)
from cfsslpy.errors import Category, CfsslError, Reason, log_value
from cfsslpy.gojson import MINUTE, JSONDecodeError, fold_keys, type_error
from cfsslpy.keys import PrivateKey, certificate_key_matches, check_supported_key, is_dsa, public_key_matches, signature_hash
from cfsslpy.pem import parse_csr_pem

log = logging.getLogger(__name__)

OID_OCSP_NO_CHECK = ObjectIdentifier("1.3.6.1.5.5.7.48.1.5")

# Extensions a CSR may never set through copy_extensions.
CA_MANAGED = frozenset(
    {
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
        ExtensionOID.SUBJECT_INFORMATION_ACCESS,
        ExtensionOID.CRL_DISTRIBUTION_POINTS,
        ExtensionOID.FRESHEST_CRL,
        ExtensionOID.CERTIFICATE_POLICIES,
        ExtensionOID.POLICY_MAPPINGS,
        ExtensionOID.POLICY_CONSTRAINTS,
        ExtensionOID.INHIBIT_ANY_POLICY,
        ExtensionOID.NAME_CONSTRAINTS,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.PRECERT_POISON,
        ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS,
        ExtensionOID.TLS_FEATURE,
        OID_OCSP_NO_CHECK,
    }
)

# Key usage bits RFC 5280 / RFC 8813 / RFC 8410 allow per subject key type.
_ALLOWED_KU: dict[str, frozenset[str]] = {
    "rsa": frozenset({"digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_cert_sign", "crl_sign"}),
    "ec": frozenset(
        {"digital_signature", "content_commitment", "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"}
    ),
    "ed25519": frozenset({"digital_signature", "content_commitment", "key_cert_sign", "crl_sign"}),
}
_KU_NAMES = {
    "digital_signature": "digital signature",
    "content_commitment": "content commitment",
    "key_encipherment": "key encipherment",
    "data_encipherment": "data encipherment",
    "key_agreement": "key agreement",
    "key_cert_sign": "cert sign",
    "crl_sign": "crl sign",
    "encipher_only": "encipher only",
    "decipher_only": "decipher only",
}


# ---------------------------------------------------------------------------------------------------------
# Requests


@dataclass
class SubjectOverride:
    """The ``subject`` of a sign request / the sign SUBJECT file (reference §3.7)."""

    CN: str = ""
    names: list[NameEntry] = field(default_factory=list)
    SerialNumber: str = ""

    @classmethod
    def from_json(cls, obj: Any) -> SubjectOverride:
        if not isinstance(obj, dict):
            raise type_error(obj, "SignRequest", "subject", "signer.Subject")
        f = fold_keys(obj, ["CN", "names", "SerialNumber"])
        names = f.get("names") or []
        if not isinstance(names, list):
            raise type_error(names, "Subject", "names", "[]csr.Name")
        cn = f.get("CN") or ""
        sn = f.get("SerialNumber") or ""
        if not isinstance(cn, str):
            raise type_error(cn, "Subject", "CN", "string")
        if not isinstance(sn, str):
            raise type_error(sn, "Subject", "SerialNumber", "string")
        return cls(CN=cn, names=[NameEntry.from_json(n) for n in names], SerialNumber=sn)

    def merge(self, csr_subject: Subject) -> Subject:
        """Per attribute type: the override's values if it has any, else the CSR's; CSR extras are dropped."""
        mine = Subject()
        for entry in self.names:
            mine.add(NameOID.COUNTRY_NAME, entry.C)
            mine.add(NameOID.STATE_OR_PROVINCE_NAME, entry.ST)
            mine.add(NameOID.LOCALITY_NAME, entry.L)
            mine.add(NameOID.ORGANIZATION_NAME, entry.O)
            mine.add(NameOID.ORGANIZATIONAL_UNIT_NAME, entry.OU)
        mine.add(NameOID.COMMON_NAME, self.CN)
        mine.add(NameOID.SERIAL_NUMBER, self.SerialNumber)
        merged = Subject()
        for oid in (
            NameOID.COUNTRY_NAME,
            NameOID.STATE_OR_PROVINCE_NAME,
            NameOID.LOCALITY_NAME,
            NameOID.ORGANIZATION_NAME,
            NameOID.ORGANIZATIONAL_UNIT_NAME,
            NameOID.COMMON_NAME,
            NameOID.SERIAL_NUMBER,
        ):
            values = mine.get(oid) or csr_subject.get(oid)
            if values:
                merged.values[oid] = list(values)
        return merged


@dataclass
class RequestExtension:
    """A request ``extensions`` entry (library / multirootca): OID, criticality, hex value."""

    oid: ObjectIdentifier
    critical: bool
    value: bytes


@dataclass
class SignRequest:
    """What to sign and how (cfssl's ``signer.SignRequest``)."""

    request: bytes
    hosts: list[str] | None = None
    subject: SubjectOverride | None = None
    profile: str = ""
    label: str = ""
    serial: int | None = None
    extensions: list[RequestExtension] = field(default_factory=list)
    crl_override: str = ""
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None

    @classmethod
    def from_json(cls, obj: Any) -> SignRequest:
        """The API's sign request body (``hosts``/``hostname``, ``certificate_request``, ``subject``...)."""
        if not isinstance(obj, dict):
            raise JSONDecodeError("json: cannot unmarshal into Go value of type signer.SignRequest")
        f = fold_keys(
            obj,
            [
                "hostname",
                "hosts",
                "certificate_request",
                "subject",
                "profile",
                "crl_override",
                "label",
                "serial",
                "extensions",
                "not_before",
                "not_after",
            ],
        )
        # cfssl: a non-empty "hostname" (comma-separated) wins; else "hosts" ([] removes every SAN, null
        # or absent keeps the CSR's).
        hosts: list[str] | None = None
        hostname = f.get("hostname")
        if hostname is not None and not isinstance(hostname, str):
            raise type_error(hostname, "SignRequest", "hostname", "string")
        if hostname:
            hosts = hostname.split(",")
        elif f.get("hosts") is not None:
            value = f["hosts"]
            if not isinstance(value, list) or not all(isinstance(h, str) for h in value):
                raise type_error(value, "SignRequest", "hosts", "[]string")
            hosts = list(value)
        csr = f.get("certificate_request") or ""
        if not isinstance(csr, str):
            raise type_error(csr, "SignRequest", "certificate_request", "string")
        subject = None if f.get("subject") is None else SubjectOverride.from_json(f["subject"])
        req = cls(request=csr.encode(), hosts=hosts, subject=subject)
        for key in ("profile", "label", "crl_override"):
            value = f.get(key) or ""
            if not isinstance(value, str):
                raise type_error(value, "SignRequest", key, "string")
            setattr(req, key, value)
        serial = f.get("serial")  # cfssl's wire key (signer.SignRequest.Serial, a JSON number)
        if serial is not None:
            if isinstance(serial, bool) or not isinstance(serial, (int, str)):
                raise type_error(serial, "SignRequest", "serial", "*big.Int")
            try:
                req.serial = int(serial)
            except ValueError:
                raise type_error(serial, "SignRequest", "serial", "*big.Int") from None
        for raw in f.get("extensions") or []:
            if not isinstance(raw, dict):
                raise type_error(raw, "SignRequest", "extensions", "signer.Extension")
            e = fold_keys(raw, ["id", "critical", "value"])
            try:
                oid = ObjectIdentifier(str(e.get("id", "")))
                value = bytes.fromhex(str(e.get("value", "")))
            except ValueError:
                raise CfsslError(Category.CERTIFICATE, Reason.BAD_REQUEST) from None
            req.extensions.append(RequestExtension(oid, bool(e.get("critical")), value))
        return req


# ---------------------------------------------------------------------------------------------------------
# The issuer


@dataclass
class Issuer:
    """A signing key and, except when self-signing, its CA certificate."""

    key: PrivateKey
    cert: x509.Certificate | None = None

    def __post_init__(self) -> None:
        check_supported_key(self.key)
        signature_hash(self.key)  # refuses weak RSA signing keys early
        if self.cert is None:
            return
        if not certificate_key_matches(self.key, self.cert):
            raise CfsslError(Category.PRIVATE_KEY, Reason.KEY_MISMATCH)
        bc = _ext(self.cert, x509.BasicConstraints)
        if bc is not None and not bc.ca:
            log.error("the -ca certificate is not a CA (basicConstraints CA:FALSE)")
            raise CfsslError(Category.POLICY, Reason.INVALID_REQUEST, "the CA certificate is not a CA (basicConstraints CA:FALSE)")
        ku = _ext(self.cert, x509.KeyUsage)
        if ku is not None and not ku.key_cert_sign:
            raise CfsslError(Category.POLICY, Reason.INVALID_REQUEST, "the CA certificate's key usage does not allow certificate signing")
        if bc is None:
            log.warning("the CA certificate has no basicConstraints extension; treating it as a CA")
        try:
            require_valid(self.cert, "CA")
        except CfsslError as exc:  # said at load time (serve starts); signing refuses it
            log.warning("%s", exc.message)

    @property
    def path_length(self) -> int | None:
        """The issuer's pathLenConstraint (None when unlimited or self-signing)."""
        if self.cert is None:
            return None
        bc = _ext(self.cert, x509.BasicConstraints)
        return None if bc is None else bc.path_length

    @property
    def name_constraints(self) -> x509.NameConstraints | None:
        return None if self.cert is None else _ext(self.cert, x509.NameConstraints)

    def key_identifier(self) -> bytes:
        """The issuer's SKI, or (when its certificate lacks one) the RFC 5280 method-1 hash of its key."""
        assert self.cert is not None
        ski = _ext(self.cert, x509.SubjectKeyIdentifier)
        if ski is not None:
            return bytes(ski.digest)
        return x509.SubjectKeyIdentifier.from_public_key(self.cert.public_key()).digest


def _ext(cert: x509.Certificate | x509.CertificateSigningRequest, cls: type[Any]) -> Any:
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


# ---------------------------------------------------------------------------------------------------------
# Signing

# cfssl's warning (CLI log line, API message 5300) for a certificate issued without hosts.
NO_HOSTS_WARNING = (
    'This certificate lacks a "hosts" field. This makes it unsuitable for\n'
    "websites. For more information see the Baseline Requirements for the Issuance and Management\n"
    "of Publicly-Trusted Certificates, v.1.1.6, from the CA/Browser Forum (https://cabforum.org);\n"
    'specifically, section 10.2.3 ("Information Requirements").'
)

Recorder = Callable[[x509.Certificate, SignRequest], None]


@dataclass(frozen=True)
class SignerInfo:
    """What ``info`` reports: the signing CA's certificate, a profile's usage strings and expiry string."""

    certificate: x509.Certificate
    usages: list[str]
    expiry: str

    def to_json(self) -> dict[str, Any]:
        """cfssl's info result, in Go struct order; the PEM without its trailing newline."""
        pem = self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii").rstrip("\n")
        return {"certificate": pem, "usages": list(self.usages), "expiry": self.expiry}


class Signer(Protocol):
    """What the CLI and the API sign through: :class:`LocalSigner`, the remote and the universal signers."""

    policy: Signing

    def sign(self, req: SignRequest) -> x509.Certificate: ...

    def profile(self, name: str) -> SigningProfile:
        """The profile a request for ``name`` is signed under; 5400 for a name this signer refuses."""
        ...

    def info(self, profile_name: str = "", label: str = "") -> SignerInfo: ...


def new_serial() -> int:
    """20 CSPRNG bytes with the top bit cleared: positive, at most 159 bits (cfssl's rule); never zero."""
    while True:
        raw = bytearray(os.urandom(20))
        raw[0] &= 0x7F
        serial = int.from_bytes(raw, "big")
        if serial:
            return serial


def round_minute(now: dt.datetime) -> dt.datetime:
    """Go's ``Time.Round(time.Minute)``: to the nearest minute, halves up."""
    base = now.replace(second=0, microsecond=0)
    if now - base >= dt.timedelta(seconds=30):
        base += dt.timedelta(minutes=1)
    return base


class LocalSigner:
    """Signs CSRs with one issuer under one signing policy."""

    def __init__(self, issuer: Issuer, policy: Signing, *, recorder: Recorder | None = None) -> None:
        self.issuer = issuer
        self.policy = policy
        self.recorder = recorder

    @property
    def certificate(self) -> x509.Certificate | None:
        return self.issuer.cert

    def profile(self, name: str) -> SigningProfile:
        return self.policy.profile(name)

    def info(self, profile_name: str = "", label: str = "") -> SignerInfo:
        """cfssl's ``info``: the CA certificate and the profile's usages and expiry string."""
        if self.issuer.cert is None:
            raise CfsslError(Category.PRIVATE_KEY, Reason.UNKNOWN)
        profile = self.policy.profile(profile_name)
        from cfsslpy.gojson import format_duration

        expiry = profile.expiry_string or format_duration(profile.expiry)
        return SignerInfo(certificate=self.issuer.cert, usages=list(profile.usages), expiry=expiry)

    def sign(self, req: SignRequest, *, now: dt.datetime | None = None) -> x509.Certificate:
        profile = self.policy.profile(req.profile)
        if profile.is_remote:
            raise CfsslError(
                Category.POLICY,
                Reason.INVALID_POLICY,
                f"profile {req.profile or 'default'!r} is a remote profile: pass -remote or use serve",
            )
        csr = parse_csr_pem(req.request)
        cert = self.sign_csr(csr, req, profile, now=now)
        if self.recorder is not None:
            self.recorder(cert, req)
        return cert

    def sign_csr(
        self,
        csr: x509.CertificateSigningRequest,
        req: SignRequest,
        profile: SigningProfile,
        *,
        now: dt.datetime | None = None,
        exact_subject: x509.Name | None = None,
    ) -> x509.Certificate:
        """Build and sign the certificate for a parsed CSR (reference §3.8 steps 2-14), one named step each.

        ``now`` fixes the clock (tests); ``exact_subject`` replaces the re-encoded subject with these exact
        bytes (renewing a CA must keep its subject byte for byte, or the certificates it issued stop chaining).
        """
        # 1. (after the decoding done by sign) a valid CA, and a subject key we accept
        public_key = check_request_key(self.issuer, csr, now)
        # 2. template from the CSR
        template = template_from_csr(csr, profile)
        # 3. CSR whitelist
        if profile.csr_whitelist is not None:
            apply_csr_whitelist(template, profile.csr_whitelist)
        # 4. crl_override: see crl_distribution_points (step 11), where it wins over the profile
        # 5. CA requests
        issued_pathlen = check_ca_request(template, profile, self.issuer)
        # 6. host override, 7. subject override
        apply_request_overrides(template, req)
        # 8. name whitelist
        if profile.name_whitelist is not None:
            check_name_whitelist(profile.name_whitelist, template.subject, template.sans)
        # 9. serial
        serial = choose_serial(profile, req)
        # 10. request extensions
        request_exts = request_extensions(req, profile, template.carried)

        # 11. fill
        is_ca = profile.ca_constraint.is_ca
        sans = final_sans(template.subject, template.sans, is_ca=is_ca)
        key_usage, ekus = _usages(profile, public_key, is_ca)
        not_before, not_after = _validity(profile, self.policy.default, req, now)
        if self.issuer.cert is not None:
            not_after = _within_issuer(self.issuer.cert, not_before, not_after)
        self._check_name_constraints(template.subject, sans)
        name = certificate_subject(template.subject, exact_subject, is_ca=is_ca)
        issuer_name = self.issuer.cert.subject if self.issuer.cert is not None else name
        if self.issuer.cert is None and not public_key_matches(self.issuer.key, public_key):
            raise CfsslError(Category.PRIVATE_KEY, Reason.KEY_MISMATCH)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer_name)
            .public_key(public_key)
            .serial_number(serial)
            .not_valid_before(not_before)
            .not_valid_after(not_after)
        )
        default = self.policy.default
        built_in = [
            *usage_extensions(key_usage, ekus, is_ca=is_ca, path_length=issued_pathlen),
            *key_identifier_extensions(self.issuer, name, public_key, is_ca=is_ca),
            *authority_info_access(profile, default),
            *subject_alt_name(sans, name),
            *name_constraints_extension(profile, template.name_constraints, is_ca=is_ca),
            *crl_distribution_points(req, profile, default),
        ]
        builder = add_extensions(builder, built_in, [*template.carried, *request_exts], trailing_extensions(profile))
        # 12. CT
        if profile.ct_log_servers:
            builder = self._add_scts(builder, profile.ct_log_servers)

        # 14. sign (13, zlint, is not done)
        try:
            return builder.sign(self.issuer.key, signature_hash(self.issuer.key))
        except ValueError as exc:
            raise CfsslError(Category.CERTIFICATE, Reason.NONE, str(exc)) from exc

    def _add_scts(self, builder: x509.CertificateBuilder, servers: list[str]) -> x509.CertificateBuilder:
        """Sign a poisoned precertificate, submit ``[precert, issuer]`` to every log, embed the SCT list.

        The precertificate is the final certificate (same serial, validity, extensions) plus the critical CT
        poison; any failed submission fails the signing with 10100 (see :mod:`cfsslpy.ct`).
        """
        from cfsslpy.ct import sct_list_extension, submit_precert

        if self.issuer.cert is None:
            raise CfsslError(
                Category.CT, Reason.PRECERT_SUBMISSION_FAILED, "ct_log_servers needs an issuing CA certificate (not a self-signed one)"
            )
        try:
            precert = builder.add_extension(x509.PrecertPoison(), critical=True).sign(self.issuer.key, signature_hash(self.issuer.key))
        except ValueError as exc:
            raise CfsslError(Category.CERTIFICATE, Reason.NONE, str(exc)) from exc
        chain = [precert.public_bytes(serialization.Encoding.DER), self.issuer.cert.public_bytes(serialization.Encoding.DER)]
        scts = []
        for server in servers:
            log.info("submitting poisoned precertificate to %s", server)
            scts.append(submit_precert(server, chain))
        return builder.add_extension(sct_list_extension(scts), critical=False)

    def _check_name_constraints(self, subject: Subject, sans: SANs) -> None:
        """Refuse names outside the issuer's X.509 name constraints (cfssl does not look).

        Checked: DNS, email, IP and URI SANs, emailAddress subject attributes (RFC 5280 §4.2.1.10) and a
        host-name-like CN when there is no DNS SAN (OpenSSL checks that CN too). Directory-name constraints
        are not evaluated.
        """
        nc = self.issuer.name_constraints
        if nc is None:
            return
        dns = list(sans.dns)
        cn = subject.common_name
        if cn and is_dns_name(cn) and "." in cn and not sans.dns:
            dns.append(cn)  # the CN is a host name the relying party may check
        for name in dns:
            _check_constraint(nc, "dns", name.rstrip(".").lower())
        for email in [*sans.email, *_subject_emails(subject)]:
            _check_constraint(nc, "email", email.lower())
        for ip in sans.ip:
            _check_constraint(nc, "ip", ip)
        for uri in sans.uri:
            _check_constraint(nc, "uri", uri)


# ---------------------------------------------------------------------------------------------------------
# The steps of LocalSigner.sign_csr, numbered as the reference (§3.8) numbers them

# An extension to generate and whether it is critical
GeneratedExtension = tuple[x509.ExtensionType, bool]


@dataclass
class Template:
    """Step 2's result: what the CSR asks for, before the whitelist, the request and the profile have a say."""

    subject: Subject
    sans: SANs
    is_ca: bool = False  # the CSR's basicConstraints: only used for the policy checks of step 5
    path_length: int = -1  # the CSR's pathLenConstraint, -1 when absent
    carried: list[x509.Extension[x509.ExtensionType]] = field(default_factory=list)  # copied CSR extensions
    name_constraints: x509.NameConstraints | None = None  # the CSR's, used for a CA when the profile has none


def check_request_key(issuer: Issuer, csr: x509.CertificateSigningRequest, now: dt.datetime | None) -> CertificatePublicKeyTypes:
    """Step 1's checks left after decoding: the CA is valid at ``now`` (1211), the subject key is one we
    accept (9300; DSA refused without loading the key: DSA key objects are deprecated). The CSR's key."""
    if issuer.cert is not None:
        require_valid(issuer.cert, "CA", now)
    if is_dsa(csr):
        raise _unsupported_subject_key()
    public_key = csr.public_key()
    _check_subject_key(public_key)
    return public_key


def template_from_csr(csr: x509.CertificateSigningRequest, profile: SigningProfile) -> Template:
    """Step 2: subject, SANs and basicConstraints from the CSR; the delegation-usage extension always carried
    over, the others only with ``copy_extensions`` and never a CA-managed one (ignored with a WARNING)."""
    subject = Subject.from_csr(csr)
    sans = _csr_sans(csr)
    bc = _ext(csr, x509.BasicConstraints)
    carried: list[x509.Extension[x509.ExtensionType]] = []
    for ext in csr.extensions:
        if ext.oid == OID_DELEGATION_USAGE:
            carried.append(ext)
        elif profile.copy_extensions and ext.oid != ExtensionOID.BASIC_CONSTRAINTS:
            if ext.oid in CA_MANAGED:
                log.warning("copy_extensions: the CSR's %s extension is ignored (set by the CA profile)", ext.oid.dotted_string)
            else:
                carried.append(ext)
    return Template(
        subject=subject,
        sans=sans,
        is_ca=bool(bc is not None and bc.ca),
        path_length=-1 if bc is None or bc.path_length is None else bc.path_length,
        carried=carried,
        name_constraints=_ext(csr, x509.NameConstraints),
    )


def apply_csr_whitelist(template: Template, wl: CSRWhitelist) -> None:
    """Step 3: keep only the whitelisted CSR fields; the CSR's CA request is dropped (as cfssl drops IsCA)."""
    if not wl.PublicKey:
        raise CfsslError(Category.CERTIFICATE, Reason.NONE, "x509: unsupported public key type: <nil>")
    if not wl.Subject:
        template.subject = Subject()
    sans = template.sans
    template.sans = SANs(
        dns=sans.dns if wl.DNSNames else [],
        email=sans.email if wl.EmailAddresses else [],
        ip=sans.ip if wl.IPAddresses else [],
        uri=sans.uri if wl.URIs else [],
    )
    template.is_ca = False


def check_ca_request(template: Template, profile: SigningProfile, issuer: Issuer) -> int | None:
    """Step 5: a CSR asking to be a CA needs a CA profile and, under a pathlen-limited issuer, a smaller
    pathlen; a CA profile needs an issuer whose pathlen is not 0 and a max_path_len under the issuer's (5300).
    Returns the pathlen the certificate gets: the profile's, never the CSR's."""
    issuer_pathlen = issuer.path_length
    if template.is_ca:
        if not profile.ca_constraint.is_ca:
            log.error("local signer policy disallows issuing CA certificate")
            raise CfsslError(Category.POLICY, Reason.INVALID_REQUEST)
        if issuer_pathlen is not None and issuer_pathlen > 0 and template.path_length >= issuer_pathlen:
            log.error("local signer certificate disallows CA MaxPathLen extending")
            raise CfsslError(Category.POLICY, Reason.INVALID_REQUEST)
    if profile.ca_constraint.is_ca and issuer.cert is not None and issuer_pathlen == 0:
        log.error("local signer certificate disallows issuing CA certificate (pathlen 0)")
        raise CfsslError(Category.POLICY, Reason.INVALID_REQUEST)
    issued_pathlen = profile.ca_constraint.path_length()
    if profile.ca_constraint.is_ca and issuer_pathlen is not None and issued_pathlen is not None and issued_pathlen >= issuer_pathlen:
        raise CfsslError(
            Category.POLICY,
            Reason.INVALID_REQUEST,
            f"the profile's max_path_len {issued_pathlen} does not fit under the CA's path length {issuer_pathlen}",
        )
    return issued_pathlen


def apply_request_overrides(template: Template, req: SignRequest) -> None:
    """Steps 6 and 7: request ``hosts`` (when given, even empty) replace all four SAN lists; the request's
    subject merges over the CSR's per attribute type (§3.7)."""
    if req.hosts is not None:
        template.sans = classify_hosts(req.hosts, Category.CERTIFICATE)
    if req.subject is not None:
        template.subject = req.subject.merge(template.subject)


def check_name_whitelist(pattern: re.Pattern[str], subject: Subject, sans: SANs) -> None:
    """Step 8: the CN and every SAN must match ``name_whitelist`` (unanchored search), else 5500.

    Subject emailAddress values are checked too: they are mirrored into the SAN in step 11. IP SANs too, in
    their text form (cfssl leaves them out: a whitelist for *.example.com let any IP in).
    """
    ips = [str(ip) for ip in sans.ip]
    for candidate in [subject.common_name, *sans.dns, *sans.email, *sans.uri, *ips, *_subject_emails(subject)]:
        if candidate and pattern.search(candidate) is None:
            log.error("name %s does not match the profile's name_whitelist", log_value(candidate))
            raise CfsslError(Category.POLICY, Reason.UNMATCHED_WHITELIST)


def choose_serial(profile: SigningProfile, req: SignRequest) -> int:
    """Step 9: a fresh random serial, or the request's with ``ClientProvidesSerialNumbers`` (positive, at
    most 159 bits)."""
    if not profile.client_provides_serial_numbers:
        return new_serial()
    if req.serial is None:
        raise CfsslError(Category.CERTIFICATE, Reason.MISSING_SERIAL)
    if req.serial <= 0 or req.serial.bit_length() > 159:
        raise CfsslError(Category.CERTIFICATE, Reason.BAD_REQUEST, "serial number must be positive and at most 20 bytes")
    return req.serial


def request_extensions(
    req: SignRequest, profile: SigningProfile, carried: list[x509.Extension[x509.ExtensionType]]
) -> list[x509.Extension[x509.ExtensionType]]:
    """Step 10: the request's extensions, each whitelisted by the profile (1300), none CA-managed, none twice
    (counting the carried CSR extensions); their values are kept as given."""
    request_exts: list[x509.Extension[x509.ExtensionType]] = []
    allowed = set(profile.allowed_extensions)
    for ext in req.extensions:
        if ext.oid not in allowed:
            log.error("extension %s is not whitelisted by the profile", ext.oid.dotted_string)
            raise CfsslError(Category.CERTIFICATE, Reason.BAD_REQUEST)
        if ext.oid in CA_MANAGED:
            raise CfsslError(Category.CERTIFICATE, Reason.BAD_REQUEST, f"extension {ext.oid.dotted_string} is set by the CA profile")
        if ext.oid in {e.oid for e in carried + request_exts}:
            raise CfsslError(Category.CERTIFICATE, Reason.BAD_REQUEST, f"extension {ext.oid.dotted_string} appears twice")
        request_exts.append(x509.Extension(ext.oid, ext.critical, x509.UnrecognizedExtension(ext.oid, ext.value)))
    return request_exts


def final_sans(subject: Subject, sans: SANs, *, is_ca: bool) -> SANs:
    """Step 11, SANs: a CA keeps only its IP SANs; subject emailAddress values are added as email SANs
    (RFC 5280 §4.1.2.6: an email address in the subject MUST also be an rfc822Name SAN). May extend ``sans``."""
    if is_ca:
        if sans.dns or sans.email or sans.uri:
            log.info("CA certificate: DNS, email and URI SANs are removed (IP SANs are kept)")
        sans = SANs(ip=sans.ip)
    for email in _subject_emails(subject):
        if email.lower() not in {e.lower() for e in sans.email}:
            log.info("subject emailAddress %s is added to the subject alternative names (RFC 5280)", log_value(email))
            sans.email.append(email)
    return sans


def certificate_subject(subject: Subject, exact_subject: x509.Name | None, *, is_ca: bool) -> x509.Name:
    """Step 11, subject: the encoded subject (or ``exact_subject``); a CA's cannot be empty (RFC 5280
    §4.1.2.6: it is what its certificates name as issuer)."""
    name = subject.to_name() if exact_subject is None else exact_subject
    if is_ca and not name.rdns:
        raise CfsslError(Category.POLICY, Reason.INVALID_REQUEST, "a CA certificate needs a subject (CN or names)")
    return name


def usage_extensions(
    key_usage: x509.KeyUsage | None, ekus: list[ObjectIdentifier], *, is_ca: bool, path_length: int | None
) -> list[GeneratedExtension]:
    """Step 11: keyUsage (critical, when any), extKeyUsage, basicConstraints (critical, always)."""
    out: list[GeneratedExtension] = []
    if key_usage is not None:
        out.append((key_usage, True))
    if ekus:
        out.append((x509.ExtendedKeyUsage(ekus), False))
    out.append((x509.BasicConstraints(ca=is_ca, path_length=path_length if is_ca else None), True))
    return out


def key_identifier_extensions(
    issuer: Issuer, name: x509.Name, public_key: CertificatePublicKeyTypes, *, is_ca: bool
) -> list[GeneratedExtension]:
    """Step 11: SKI (SHA-1 of the key), then the AKI (the issuer's key identifier) unless self-signed CA.

    Go leaves the AKI out whenever issuer and subject names are equal. RFC 5280 §4.2.1.1 only lets a
    self-signed *CA* certificate go without one, so we leave it out there and nowhere else: a self-issued
    certificate with another key and a self-signed leaf (selfsign) carry an AKI.
    """
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    out: list[GeneratedExtension] = [(ski, False)]
    self_signed = issuer.cert is None or (issuer.cert.subject == name and public_key_matches(issuer.key, public_key))
    if not (self_signed and is_ca):
        key_id = ski.digest if issuer.cert is None else issuer.key_identifier()
        out.append((x509.AuthorityKeyIdentifier(key_id, None, None), False))
    return out


def authority_info_access(profile: SigningProfile, default: SigningProfile) -> list[GeneratedExtension]:
    """Step 11: AIA with the OCSP URL first, then the issuer URLs (each falling back to the default profile)."""
    ocsp_url = profile.ocsp_url or default.ocsp_url
    issuer_urls = profile.issuer_urls if profile.issuer_urls is not None else default.issuer_urls
    aia: list[x509.AccessDescription] = []
    if ocsp_url:
        aia.append(x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)))
    for url in issuer_urls or []:
        aia.append(x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(url)))
    return [(x509.AuthorityInformationAccess(aia), False)] if aia else []


def subject_alt_name(sans: SANs, name: x509.Name) -> list[GeneratedExtension]:
    """Step 11: the SAN, critical only when the subject is empty; neither subject nor SAN is refused."""
    if not sans.is_empty():
        return [(x509.SubjectAlternativeName(sans.general_names()), not name.rdns)]
    if not name.rdns:
        raise CfsslError(
            Category.CERTIFICATE, Reason.BAD_REQUEST, "the certificate would have neither a subject nor a subject alternative name"
        )
    return []


def name_constraints_extension(
    profile: SigningProfile, csr_constraints: x509.NameConstraints | None, *, is_ca: bool
) -> list[GeneratedExtension]:
    """Step 11 (our addition): a CA gets the profile's name constraints, else the CSR's (critical)."""
    if not is_ca:
        return []
    configured = profile.name_constraints
    nc = configured.to_extension() if configured is not None else None
    if nc is not None and configured is not None:
        return [(nc, configured.critical)]
    if csr_constraints is not None:
        return [(csr_constraints, True)]
    return []


def crl_distribution_points(req: SignRequest, profile: SigningProfile, default: SigningProfile) -> list[GeneratedExtension]:
    """Steps 4 and 11: the CRL DP from the request's ``crl_override``, else the profile's, else the default's."""
    crl_url = req.crl_override or profile.crl_url or default.crl_url
    if not crl_url:
        return []
    point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
    return [(x509.CRLDistributionPoints([point]), False)]


def trailing_extensions(profile: SigningProfile) -> list[GeneratedExtension]:
    """Step 11: certificate policies and OCSP no-check, which Go adds after the copied and request extensions."""
    out: list[GeneratedExtension] = []
    if profile.policies:
        out.append((certificate_policies(profile.policies), False))
    if profile.ocsp_no_check:
        out.append((x509.OCSPNoCheck(), False))
    return out


def add_extensions(
    builder: x509.CertificateBuilder,
    built_in: list[GeneratedExtension],
    extra: list[x509.Extension[x509.ExtensionType]],
    trailing: list[GeneratedExtension],
) -> x509.CertificateBuilder:
    """Step 11, in Go's order: the built-in extensions, the extra ones (copied CSR and request extensions), the
    trailing built-ins. A built-in whose OID is among the extra extensions is not generated (the extra wins)."""
    extra_oids = {e.oid for e in extra}
    for value, critical in built_in:
        if value.oid not in extra_oids:
            builder = builder.add_extension(value, critical=critical)
    for ext in extra:
        builder = builder.add_extension(ext.value, critical=ext.critical)
    for value, critical in trailing:
        if value.oid not in extra_oids:
            builder = builder.add_extension(value, critical=critical)
    return builder


def _subject_emails(subject: Subject) -> list[str]:
    return [value for oid, value in subject.extra if oid == OID_EMAIL_ADDRESS]


def _dns_within(name: str, base: str) -> bool:
    """RFC 5280: ``name`` is ``base`` with zero or more labels added on the left."""
    return name == base or name.endswith("." + base)


def _constraint_matches(kind: str, name: Any, tree: x509.GeneralName, *, excluded: bool = False) -> bool | None:
    """Whether ``name`` (of ``kind``) lies in ``tree``; None when ``tree`` constrains another kind of name.

    For an excluded subtree, a wildcard DNS name also matches when it could stand for a name in the
    subtree (``*.example.com`` against an excluded ``bad.example.com``).
    """
    if kind == "dns" and isinstance(tree, x509.DNSName):
        base = tree.value.lower().lstrip(".")
        if _dns_within(name, base):
            return True
        if excluded and name.startswith("*.") and "." in base:
            return bool(base.split(".", 1)[1] == name[2:])
        return False
    if kind == "email" and isinstance(tree, x509.RFC822Name):
        base = tree.value.lower()
        domain = name.rsplit("@", 1)[-1]
        if "@" in base:
            return bool(name == base)
        if base.startswith("."):
            return bool(domain.endswith(base))
        return bool(domain == base)
    if kind == "ip" and isinstance(tree, x509.IPAddress):
        network = tree.value
        return (
            isinstance(network, (ipaddress.IPv4Network, ipaddress.IPv6Network))
            and name.version == network.version
            and bool(name in network)
        )
    if kind == "uri" and isinstance(tree, x509.UniformResourceIdentifier):
        host = (urlsplit(name).hostname or "").lower()
        base = tree.value.lower()
        if not host:
            return False  # a URI without a host (urn:...) cannot satisfy a host constraint
        if base.startswith("."):
            return bool(host.endswith(base))
        return bool(host == base)
    return None


def _check_constraint(nc: x509.NameConstraints, kind: str, name: Any) -> None:
    for tree in nc.excluded_subtrees or []:
        if _constraint_matches(kind, name, tree, excluded=True):
            raise CfsslError(Category.POLICY, Reason.INVALID_REQUEST, f"{name} is excluded by the CA's name constraints")
    permitted = [t for t in nc.permitted_subtrees or [] if _constraint_matches(kind, name, t) is not None]
    if permitted and not any(_constraint_matches(kind, name, t) for t in permitted):
        raise CfsslError(Category.POLICY, Reason.INVALID_REQUEST, f"{name} is not permitted by the CA's name constraints")


def _check_subject_key(public_key: Any) -> None:
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < 2048:
            raise CfsslError(Category.CSR, Reason.BAD_REQUEST, f"RSA key of {public_key.key_size} bits is too weak (minimum 2048)")
        return
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
            raise CfsslError(Category.CSR, Reason.BAD_REQUEST, f"unsupported elliptic curve {public_key.curve.name}")
        return
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return
    raise _unsupported_subject_key()


def _unsupported_subject_key() -> CfsslError:
    return CfsslError(Category.CSR, Reason.BAD_REQUEST, "unsupported public key algorithm (RSA, ECDSA P-256/384/521 or Ed25519)")


def _csr_sans(csr: x509.CertificateSigningRequest) -> SANs:
    san = _ext(csr, x509.SubjectAlternativeName)
    return SANs() if san is None else SANs.from_extension(san)


def _key_kind(public_key: Any) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        return "rsa"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "ec"
    return "ed25519"


def _usages(profile: SigningProfile, public_key: Any, is_ca: bool) -> tuple[x509.KeyUsage | None, list[ObjectIdentifier]]:
    flags, ekus, _ = profile.key_usages()
    if not flags and not ekus:
        raise CfsslError(Category.POLICY, Reason.NO_KEY_USAGES)
    kind = _key_kind(public_key)
    allowed = _ALLOWED_KU[kind]
    for bit in sorted(flags):
        if bit not in allowed:
            # The built-in default profile asks for key encipherment whatever the key; saying so on every EC
            # signing would be noise the user cannot act on, so that case is only a DEBUG line.
            level = logging.DEBUG if profile.builtin else logging.WARNING
            log.log(level, "usage %r is not allowed for %s keys (RFC 5280/8813): left out", _KU_NAMES[bit], kind.upper())
            del flags[bit]
    if not is_ca and flags.pop("key_cert_sign", False):
        log.warning("usage 'cert sign' needs a CA profile (ca_constraint.is_ca): left out")
    if is_ca and not flags.get("key_cert_sign"):
        # RFC 5280 §4.2.1.3/§4.2.1.9: a CA certificate's key signs certificates, so keyCertSign must be set.
        log.warning("CA profile without usage 'cert sign': added (a CA certificate needs keyCertSign)")
        flags["key_cert_sign"] = True
    if (flags.get("encipher_only") or flags.get("decipher_only")) and not flags.get("key_agreement"):
        log.warning("usages 'encipher only'/'decipher only' need 'key agreement': left out")
        flags.pop("encipher_only", None)
        flags.pop("decipher_only", None)
    unique_ekus = list(dict.fromkeys(ekus))
    if not flags and not unique_ekus:
        raise CfsslError(Category.POLICY, Reason.NO_KEY_USAGES, f"Invalid policy: no key usage available for a {kind.upper()} key")
    if not flags:
        return None, unique_ekus
    names = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    return x509.KeyUsage(**{n: bool(flags.get(n)) for n in names}), unique_ekus


def _utc(value: dt.datetime) -> dt.datetime:
    """Aware UTC; a naive time is taken as UTC (never as local time)."""
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


X509_EARLIEST = dt.datetime(1950, 1, 1, tzinfo=dt.timezone.utc)
X509_LATEST = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)


def _validity(
    profile: SigningProfile, default: SigningProfile, req: SignRequest, now: dt.datetime | None
) -> tuple[dt.datetime, dt.datetime]:
    """cfssl's FillTemplate validity rule (reference §7.1).

    notBefore: the request's, else the profile's ``not_before``, else round(now, 1 min) - backdate (5 min
    when unset); notAfter: the request's, else the profile's ``not_after``, else notBefore + expiry (the
    profile's, else the default profile's).
    """
    expiry = profile.expiry or default.expiry
    not_before = req.not_before
    if not_before is None:
        if profile.not_before is not None:
            not_before = profile.not_before
        else:
            backdate = profile.backdate or 5 * MINUTE
            current = _utc(now or dt.datetime.now(dt.timezone.utc))
            not_before = round_minute(current) - dt.timedelta(microseconds=backdate // 1000)
    not_before = _utc(not_before)
    not_after = req.not_after
    if not_after is None:
        not_after = profile.not_after if profile.not_after is not None else not_before + dt.timedelta(microseconds=expiry // 1000)
    not_after = _utc(not_after)
    if not_before < X509_EARLIEST or not_after > X509_LATEST:
        raise CfsslError(
            Category.POLICY,
            Reason.INVALID_POLICY,
            f"validity {not_before:%Y-%m-%dT%H:%M:%SZ} .. {not_after:%Y-%m-%dT%H:%M:%SZ} is outside what X.509 can encode (1950-9999)",
        )
    if not_after <= not_before:
        raise CfsslError(Category.POLICY, Reason.INVALID_POLICY, "the certificate's not_after is not after its not_before")
    return not_before, not_after


def _within_issuer(issuer: x509.Certificate, not_before: dt.datetime, not_after: dt.datetime) -> dt.datetime:
    """``not_after``, cut to the issuer's notAfter (with a WARNING) when it would outlive its issuer.

    A certificate valid after its issuer expires is unusable for that part of its life, and a relying party
    that checks only the leaf's dates is misled. There is no cfssl configuration key to refuse instead, so
    none is invented: a profile that must not be shortened should use an ``expiry`` within the CA's life.
    """
    limit = issuer.not_valid_after_utc
    if not_after <= limit:
        return not_after
    if not_before >= limit:
        raise CfsslError(
            Category.POLICY,
            Reason.INVALID_POLICY,
            f"the certificate's not_before {_rfc3339(not_before)} is not before the CA certificate's notAfter {_rfc3339(limit)}",
        )
    log.warning(
        "the certificate would be valid until %s, after the CA certificate expires: its notAfter is cut to %s",
        _rfc3339(not_after),
        _rfc3339(limit),
    )
    return limit


def _rfc3339(value: dt.datetime) -> str:
    return f"{value:%Y-%m-%dT%H:%M:%SZ}"


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


# ---------------------------------------------------------------------------------------------------------
# Loading an issuer from the user's -ca / -ca-key


def load_issuer(ca_spec: str, key_spec: str, *, stdin: Any = None, environ: Any = None) -> Issuer:
    """Read and check ``-ca`` and ``-ca-key`` (paths, ``file:``, ``env:``; cfssl's error codes).

    An unreadable certificate is a plain error, an unreadable key 1001 (cfssl wraps it so); a bad
    certificate 1002/1003; a bad key 2002/2003/2100; a mismatched pair 2300.
    """
    from cfsslpy.errors import PlainError
    from cfsslpy.inputs import read_input
    from cfsslpy.keys import is_pkcs11_uri, load_key_spec, load_private_key
    from cfsslpy.pem import parse_certificate_pem

    ca_pem = read_input(ca_spec, stdin=stdin, environ=environ)
    try:
        key_pem = None if is_pkcs11_uri(key_spec) else read_input(key_spec, stdin=stdin, environ=environ)
    except PlainError as exc:
        raise CfsslError(Category.CERTIFICATE, Reason.READ_FAILED, exc.message) from None
    cert = parse_certificate_pem(ca_pem)
    key = load_private_key(key_pem, environ=environ) if key_pem is not None else load_key_spec(key_spec, environ=environ)
    return Issuer(key=key, cert=cert)


def issue(signer: Signer, req: Any, sign_request: SignRequest) -> tuple[x509.Certificate, x509.CertificateSigningRequest, PrivateKey]:
    """Generate a key and CSR for CSR JSON ``req`` and have ``signer`` (local, remote or universal) sign it.

    ``gencert`` and the API's ``newcert``. The request's ``hosts`` (already including any override) go into
    the CSR and ``sign_request.hosts`` is the override sent to the signer, as cfssl does. The key is
    generated here and never leaves this process.
    """
    from cfsslpy.csr import csr_pem, generate_csr

    if req.ca is not None:
        raise CfsslError(Category.POLICY, Reason.INVALID_REQUEST, "ca section only permitted in initca")
    req.key.validate()
    key = req.key.generate()
    csr = generate_csr(req, key)
    sign_request.request = csr_pem(csr)
    cert = signer.sign(sign_request)
    return cert, csr, key
