"""A test-time PKI for bundling: plain builders (no pytest fixtures), reused by the bundler, API, mkbundle,
interop and bench tests.

Keys are derived from fixed secrets (ECDSA P-256, so building is fast and the keys are the same on every run);
serials and dates are fixed, validity is far in the future (2020 .. 2099) except where a test needs otherwise
(the expired intermediate, and the expiring leaf whose end is relative to ``now``). ECDSA signatures are
randomised, so the certificate bytes differ between runs; subjects, keys, serials and SKIs do not.

The hierarchy (``build_pki``)::

    root (Root A) ── int1 ── int2 ── leaf, leaf_aia, leaf_expiring
       │              ├─ leaf_int1
       │              └─ (int1_expired: same subject and key as int1, expired in 2021)
       ├── leaf_root (OCSP URL: the root stays in the bundle)
       ├── revoked_int ── leaf_revoked          (root.crl lists revoked_int)
       └── nc_ca (permitted DNS example.com) ── leaf_nc_ok (www.example.com), leaf_nc_bad (www.example.org)
    root2 (Root B) ── int1_cross (same subject and key as int1)
    rsa_root ── rsa_int ── rsa_leaf               (RSA 2048, for the "no ECDSA" status)

With ``aia_base`` (``http://127.0.0.1:PORT``) ``leaf_aia`` points at ``<aia_base>/int2.der`` and ``int2`` at
``<aia_base>/int1.der``; ``aia_files`` gives the bodies an HTTP server should serve.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

NOT_BEFORE = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
NOT_AFTER = dt.datetime(2099, 1, 1, tzinfo=dt.timezone.utc)
ROOT_NOT_AFTER = dt.datetime(2099, 12, 31, tzinfo=dt.timezone.utc)
ROOT2_NOT_AFTER = dt.datetime(2099, 6, 30, tzinfo=dt.timezone.utc)
EXPIRED_NOT_AFTER = dt.datetime(2021, 1, 1, tzinfo=dt.timezone.utc)
OCSP_URL = "http://ocsp.example.invalid"
CRL_URL = "http://crl.example.invalid/root.crl"


def ec_key(secret: int) -> ec.EllipticCurvePrivateKey:
    """A P-256 key derived from a fixed secret: the same key on every run."""
    return ec.derive_private_key(secret, ec.SECP256R1())


@functools.cache
def rsa_key(tag: str) -> rsa.RSAPrivateKey:
    """An RSA-2048 key, generated once per test process and tag."""
    return rsa.generate_private_key(65537, 2048)


def name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cfsslpy tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def issue(
    subject: x509.Name,
    key: Key,
    issuer: x509.Name,
    issuer_key: Key,
    serial: int,
    *,
    ca: bool,
    path_length: int | None = None,
    not_before: dt.datetime = NOT_BEFORE,
    not_after: dt.datetime = NOT_AFTER,
    dns: list[str] | None = None,
    aia_issuer: str | None = None,
    ocsp: str | None = None,
    crl: str | None = None,
    permitted_dns: list[str] | None = None,
    self_signed: bool = False,
) -> x509.Certificate:
    """One certificate with the extensions cfssl would put on it (basicConstraints critical, KU, SKI, AKI)."""
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=not ca and isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    if not self_signed:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    access: list[x509.AccessDescription] = []
    if ocsp:
        access.append(x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp)))
    if aia_issuer:
        access.append(x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(aia_issuer)))
    if access:
        builder = builder.add_extension(x509.AuthorityInformationAccess(access), critical=False)
    if crl:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl)], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    if permitted_dns is not None:
        builder = builder.add_extension(
            x509.NameConstraints(permitted_subtrees=[x509.DNSName(d) for d in permitted_dns], excluded_subtrees=None), critical=True
        )
    return builder.sign(issuer_key, hashes.SHA256())


def self_signed_root(cn: str, key: Key, serial: int, not_after: dt.datetime = ROOT_NOT_AFTER) -> x509.Certificate:
    return issue(name(cn), key, name(cn), key, serial, ca=True, not_after=not_after, self_signed=True)


def self_signed_leaf(cn: str = "selfsigned.example.com", key: Key | None = None) -> x509.Certificate:
    """A self-signed end-entity certificate (what ``cfssl selfsign`` makes)."""
    key = key or ec_key(0x5E1F)
    return issue(name(cn), key, name(cn), key, 77, ca=False, dns=[cn], self_signed=True)


@dataclass
class BundlePKI:
    """Every certificate and key of the hierarchy in the module docstring, by name."""

    certs: dict[str, x509.Certificate] = field(default_factory=dict)
    keys: dict[str, Key] = field(default_factory=dict)
    crls: dict[str, x509.CertificateRevocationList] = field(default_factory=dict)
    aia_base: str | None = None

    def __getattr__(self, item: str) -> x509.Certificate:
        certs = self.__dict__.get("certs", {})
        if item in certs:
            return certs[item]  # type: ignore[no-any-return]
        raise AttributeError(item)

    def pem(self, *names: str) -> bytes:
        """The named certificates as concatenated PEM, in the order given."""
        return b"".join(self.certs[n].public_bytes(serialization.Encoding.PEM) for n in names)

    def der(self, item: str) -> bytes:
        return self.certs[item].public_bytes(serialization.Encoding.DER)

    def key_pem(self, item: str) -> bytes:
        return self.keys[item].private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    def aia_files(self) -> dict[str, bytes]:
        """URL path -> body an AIA server should serve (DER, as CAs publish them; ``.pem`` variants too)."""
        out: dict[str, bytes] = {}
        for item in ("int1", "int2", "root"):
            out[f"/{item}.der"] = self.der(item)
            out[f"/{item}.pem"] = self.pem(item)
        return out


def build_pki(aia_base: str | None = None, now: dt.datetime | None = None) -> BundlePKI:
    """Build the hierarchy of the module docstring (``now`` anchors the expiring leaf: it ends 10 days later)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    pki = BundlePKI(aia_base=aia_base)
    k = pki.keys
    c = pki.certs
    for index, item in enumerate(
        [
            "root",
            "root2",
            "int1",
            "int2",
            "leaf",
            "leaf_aia",
            "leaf_int1",
            "leaf_root",
            "leaf_expiring",
            "revoked_int",
            "leaf_revoked",
            "nc_ca",
            "leaf_nc_ok",
            "leaf_nc_bad",
        ],
        start=1,
    ):
        k[item] = ec_key(0xB0D1E000 + index)
    k["int1_cross"] = k["int1_expired"] = k["int1"]

    c["root"] = self_signed_root("cfsslpy Test Root A", k["root"], 1)
    c["root2"] = self_signed_root("cfsslpy Test Root B", k["root2"], 2, ROOT2_NOT_AFTER)
    int1_name, int2_name = name("cfsslpy Test Intermediate 1"), name("cfsslpy Test Intermediate 2")
    root_name, root2_name = c["root"].subject, c["root2"].subject
    c["int1"] = issue(int1_name, k["int1"], root_name, k["root"], 11, ca=True)
    c["int1_cross"] = issue(int1_name, k["int1"], root2_name, k["root2"], 12, ca=True)
    c["int1_expired"] = issue(int1_name, k["int1"], root_name, k["root"], 13, ca=True, not_after=EXPIRED_NOT_AFTER)
    int2_aia = f"{aia_base}/int1.der" if aia_base else None
    c["int2"] = issue(int2_name, k["int2"], int1_name, k["int1"], 21, ca=True, aia_issuer=int2_aia)

    def leaf(item: str, cn: str, issuer: str, serial: int, **kw: object) -> None:
        c[item] = issue(name(cn), k[item], c[issuer].subject, k[issuer], serial, ca=False, dns=[cn], **kw)  # type: ignore[arg-type]

    leaf("leaf", "leaf.example.com", "int2", 101, ocsp=OCSP_URL, crl=CRL_URL)
    leaf("leaf_aia", "aia.example.com", "int2", 102, aia_issuer=f"{aia_base}/int2.der" if aia_base else None)
    leaf("leaf_int1", "int1-leaf.example.com", "int1", 103)
    leaf("leaf_root", "root-leaf.example.com", "root", 104, ocsp=OCSP_URL)
    leaf("leaf_expiring", "expiring.example.com", "int2", 105, not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=10))

    c["revoked_int"] = issue(name("cfsslpy Test Revoked Intermediate"), k["revoked_int"], root_name, k["root"], 31, ca=True)
    leaf("leaf_revoked", "revoked.example.com", "revoked_int", 106)
    pki.crls["root"] = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(root_name)
        .last_update(NOT_BEFORE)
        .next_update(NOT_AFTER)
        .add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(31).revocation_date(NOT_BEFORE).build())
        .sign(k["root"], hashes.SHA256())
    )

    c["nc_ca"] = issue(name("cfsslpy Test Constrained CA"), k["nc_ca"], root_name, k["root"], 41, ca=True, permitted_dns=["example.com"])
    leaf("leaf_nc_ok", "www.example.com", "nc_ca", 107)
    leaf("leaf_nc_bad", "www.example.org", "nc_ca", 108)

    k["rsa_root"], k["rsa_int"], k["rsa_leaf"] = rsa_key("root"), rsa_key("int"), rsa_key("leaf")
    c["rsa_root"] = self_signed_root("cfsslpy Test RSA Root", k["rsa_root"], 51)
    c["rsa_int"] = issue(name("cfsslpy Test RSA Intermediate"), k["rsa_int"], c["rsa_root"].subject, k["rsa_root"], 52, ca=True)
    leaf("rsa_leaf", "rsa.example.com", "rsa_int", 109)
    return pki


def write_pki(pki: BundlePKI, directory: Path) -> dict[str, Path]:
    """Write every certificate as ``<name>.pem``, every key as ``<name>-key.pem`` (0600), CRLs as ``<name>.crl``
    (DER) and a few bundles: ``roots.pem`` (root, root2), ``ints.pem`` (int1, int2). Returns name -> path.
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for item in pki.certs:
        paths[item] = directory / f"{item}.pem"
        paths[item].write_bytes(pki.pem(item))
    for item in pki.keys:
        if item in ("int1_cross", "int1_expired"):
            continue
        path = directory / f"{item}-key.pem"
        path.write_bytes(pki.key_pem(item))
        path.chmod(0o600)
        paths[f"{item}-key"] = path
    for item, crl in pki.crls.items():
        paths[f"{item}-crl"] = directory / f"{item}.crl"
        paths[f"{item}-crl"].write_bytes(crl.public_bytes(serialization.Encoding.DER))
    paths["roots"] = directory / "roots.pem"
    paths["roots"].write_bytes(pki.pem("root", "root2"))
    paths["ints"] = directory / "ints.pem"
    paths["ints"].write_bytes(pki.pem("int1", "int2"))
    return paths
