"""The bundle document: cfssl's bundle JSON, its status block and the warnings that go into it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID

from cfsslpy.bundler.hostname import leaf_hostnames
from cfsslpy.bundler.ubiquity import (
    ECDSA256_UBIQUITY,
    SHA2_UBIQUITY,
    Platform,
    chain_expiry,
    chain_hash_ubiquity,
    chain_key_ubiquity,
    sha1_deprecation_messages,
    signature_name,
)
from cfsslpy.keys import PrivateKey, encode_private_key, is_dsa
from cfsslpy.x509util import extension, rfc3339, subject_key_id

FLAVOR_OPTIMAL = "optimal"
FLAVOR_UBIQUITOUS = "ubiquitous"
FLAVOR_FORCE = "force"


STATUS_EXPIRING_BIT = 1
STATUS_NOT_UBIQUITOUS_BIT = 2
EXPIRING_HOURS = 720  # "expiring within 30 days"


EXPIRING_WARNING = "The bundle is expiring within 30 days."
SHA2_WARNING = (
    "The bundle contains certificates signed with advanced hash functions such as SHA2, which are problematic "
    "for certain operating systems, e.g. Windows XP SP2."
)
ECDSA_WARNING = "The bundle contains ECDSA signatures, which are problematic for certain operating systems, e.g. Windows XP, Android 2.2 and Android 2.3."
NO_METADATA_WARNING = "Unable to measure bundle ubiquity: No platform metadata present."
UNTRUSTED_WARNING = "The bundle may not be trusted by the following platform(s):"


def pem_text(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


_NAME_FIELDS = {
    3: "CommonName",
    5: "SerialNumber",
    6: "Country",
    7: "Locality",
    8: "Province",
    9: "StreetAddress",
    10: "Organization",
    11: "OrganizationalUnit",
    17: "PostalCode",
}


def _bundle_name(name: x509.Name) -> str:
    """cfssl's bundle ``issuer``/``subject``: ``/<Field>=<value>`` per attribute in RDN order, the field chosen
    by the OID's 4th arc (so attributes outside X.520's 2.5.4 arc print as ``/=value``)."""
    out = []
    for attribute in name:
        arcs = [int(a) for a in attribute.oid.dotted_string.split(".")]
        label = _NAME_FIELDS.get(arcs[3], "") if len(arcs) >= 4 else ""
        value = attribute.value if isinstance(attribute.value, str) else attribute.value.decode("latin-1")
        out.append(f"/{label}={value}")
    return "".join(out)


def _key_type(cert: x509.Certificate) -> tuple[str, int]:
    if is_dsa(cert):
        return "DSA", 0
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"{key.key_size}-bit RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"{key.curve.key_size}-bit ECDSA", key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 32
    if isinstance(key, ed448.Ed448PublicKey):
        return "Unknown", 57
    return "Unknown", 0


def ocsp_servers(cert: x509.Certificate) -> list[str] | None:
    aia = extension(cert, x509.AuthorityInformationAccess, lenient=True)
    if aia is None:
        return None
    urls = [
        str(d.access_location.value)
        for d in aia
        if d.access_method == AuthorityInformationAccessOID.OCSP and isinstance(d.access_location, x509.UniformResourceIdentifier)
    ]
    return urls or None


def _crl_support(cert: x509.Certificate) -> bool:
    try:
        points = cert.extensions.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return any(isinstance(n, x509.UniformResourceIdentifier) for p in points for n in (p.full_name or []))  # type: ignore[attr-defined]


@dataclass
class BundleStatus:
    """cfssl's ``BundleStatus`` (JSON fields in struct order)."""

    rebundled: bool = False
    expiring_skis: list[str] | None = None
    untrusted_root_stores: list[str] | None = None
    messages: list[str] | None = None
    code: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "rebundled": self.rebundled,
            "expiring_SKIs": self.expiring_skis,
            "untrusted_root_stores": self.untrusted_root_stores,
            "messages": self.messages,
            "code": self.code,
        }


@dataclass
class Bundle:
    """A built bundle: ``chain`` is what goes out (leaf first; the root only under cfssl's OCSP rule)."""

    chain: list[x509.Certificate]
    root: x509.Certificate | None
    key: PrivateKey | None
    status: BundleStatus
    flavor: str = FLAVOR_UBIQUITOUS
    hostnames: list[str] = field(default_factory=list)

    @property
    def cert(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def expires(self) -> dt.datetime:
        return chain_expiry(self.chain)

    @property
    def leaf_expires(self) -> dt.datetime:
        return self.cert.not_valid_after_utc

    def chain_pem(self) -> str:
        """The ``bundle`` field: the PEM certificates joined, without the trailing newline."""
        return "".join(pem_text(c) for c in self.chain).strip()

    def to_json(self) -> dict[str, Any]:
        """cfssl's bundle JSON; a Go map, so the keys are sorted."""
        key_type, key_size = _key_type(self.cert)
        ocsp = ocsp_servers(self.cert)
        doc: dict[str, Any] = {
            "bundle": self.chain_pem(),
            "crl_support": _crl_support(self.cert),
            "crt": pem_text(self.cert).strip(),
            "expires": rfc3339(self.expires),
            "hostnames": list(self.hostnames or leaf_hostnames(self.cert)),
            "issuer": _bundle_name(self.cert.issuer),
            "key": encode_private_key(self.key).decode("ascii").strip() if self.key is not None else "",
            "key_size": key_size,
            "key_type": key_type,
            "leaf_expires": rfc3339(self.leaf_expires),
            "ocsp": ocsp,
            "ocsp_support": ocsp is not None,
            "root": pem_text(self.root).strip() if self.root is not None else "",
            "signature": signature_name(self.cert),
            "status": self.status.to_json(),
            "subject": _bundle_name(self.cert.subject),
        }
        return dict(sorted(doc.items()))


# --------------------------------------------------------------------------------------------------------------
# The status block


def common_status(chain: list[x509.Certificate], now: dt.datetime) -> BundleStatus:
    """The status every flavor reports (``force`` included): certificates expiring within
    :data:`EXPIRING_HOURS` of ``now``, SHA-2 signatures and ECDSA keys (``messages`` None when there are none)."""
    status = BundleStatus()
    messages: list[str] = []
    expiring = [i for i, c in enumerate(chain) if c.not_valid_after_utc - now < dt.timedelta(hours=EXPIRING_HOURS)]
    if expiring:
        status.code |= STATUS_EXPIRING_BIT
        which = "The expiring certs are" if len(expiring) > 1 else "The expiring cert is"
        messages.append(EXPIRING_WARNING + which + "".join(f" #{i + 1}" for i in expiring) + " in the chain.")
        status.expiring_skis = [subject_key_id(chain[i], lenient=True).hex().upper() for i in expiring]
    if chain_hash_ubiquity(chain) <= SHA2_UBIQUITY:
        status.code |= STATUS_NOT_UBIQUITOUS_BIT
        messages.append(SHA2_WARNING)
    if chain_key_ubiquity(chain) <= ECDSA256_UBIQUITY:
        status.code |= STATUS_NOT_UBIQUITOUS_BIT
        messages.append(ECDSA_WARNING)
    status.messages = messages or None
    return status


def chain_status(chosen: list[x509.Certificate], now: dt.datetime, platforms: Sequence[Platform]) -> BundleStatus:
    """cfssl's status block for a chain picked from the pools: :func:`common_status`, then the platform
    warnings (no metadata, roots a platform does not trust, SHA-1 deprecation); ``rebundled`` is the caller's."""
    status = common_status(chosen, now)
    messages = status.messages or []
    if not platforms:
        status.code |= STATUS_NOT_UBIQUITOUS_BIT
        messages.append(NO_METADATA_WARNING)
    untrusted = sorted(p.name for p in platforms if not p.trusts(chosen[-1]))
    if untrusted:
        status.code |= STATUS_NOT_UBIQUITOUS_BIT
        messages.append(UNTRUSTED_WARNING + ",".join(f" {name}" for name in untrusted) + ".")
    sha1_messages = sha1_deprecation_messages(chosen)
    if sha1_messages:
        status.code |= STATUS_NOT_UBIQUITOUS_BIT
        messages.extend(sha1_messages)
    status.untrusted_root_stores = untrusted
    status.messages = messages or None
    return status
