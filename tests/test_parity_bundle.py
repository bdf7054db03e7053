"""Issue 11 items 5 and 8: ``bundle``'s error codes follow cfssl's order of checks; ``GET /bundle`` leads to the UI.

cfssl (``bundler.BundleFromPEMorDER`` then ``Bundle``) checks, in this order: the private key parses (a DSA key
does not: 2003), the certificates decode (nothing: 1002), the leaf's key type (not RSA/ECDSA/Ed25519: 2200,
before the key match, the ``force`` flavor and the chain), the key matches (2300), then Go's chain building,
which stops at an issuer that is expired (1211) or whose path length the chain below exceeds (1213) before it
knows whether a root can be reached. The hierarchy mirrors cfssl's ``bundler/testdata``::

    root ── l1 (pathlen 1) ── l2 (pathlen 1) ── mid (CA, pathlen 1) ── leaflet
                                └── dsa_leaf (a DSA key)
    other_root (trusts nothing here)          l1_expired (l1's subject and key, expired in 2021)

The same scenarios run through both real cfssl versions in tests/integration/test_parity_bundle_interop.py.
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.utils import CryptographyDeprecationWarning

from cfsslpy import bundler
from cfsslpy.api.app import create_app
from cfsslpy.api.state import ApiState
from cfsslpy.errors import CfsslError
from tests import bundle_pki
from tests.api.wsgi import Client
from tests.conftest import RunCli
from tests.dsa_vectors import DSA_CA_CERT, DSA_PKCS8, DSA_TRADITIONAL

NOT_RSA_OR_ECC = "Private key algorithm is not RSA or ECC or Ed25519"
TOO_MANY = "x509: too many intermediates for path length constraint"


def dsa_leaf(issuer: x509.Certificate, issuer_key: bundle_pki.Key) -> x509.Certificate:
    """A server certificate for DSA_CA_CERT's DSA key, signed by ``issuer`` (ECDSA)."""
    with warnings.catch_warnings():  # cryptography deprecates DSA key objects; the key is only copied into the SPKI
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        public = x509.load_pem_x509_certificate(DSA_CA_CERT).public_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(bundle_pki.name("dsa.example.com"))
            .issuer_name(issuer.subject)
            .public_key(public)  # type: ignore[arg-type]
            .serial_number(0xD5A)
            .not_valid_before(bundle_pki.NOT_BEFORE)
            .not_valid_after(bundle_pki.NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("dsa.example.com")]), critical=False)
        )
        return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class Parity:
    """The files of the hierarchy in the module docstring, written to ``dir``."""

    dir: Path
    certs: dict[str, x509.Certificate]
    keys: dict[str, bundle_pki.Key]

    def path(self, name: str) -> str:
        return str(self.dir / name)


def build_parity(directory: Path) -> Parity:
    key = bundle_pki.ec_key
    keys = {n: key(0xB0 + i) for i, n in enumerate(["root", "l1", "l2", "mid", "leaflet", "other_root"])}
    name = bundle_pki.name
    root = bundle_pki.self_signed_root("Parity Root", keys["root"], 1)
    other_root = bundle_pki.self_signed_root("Parity Other Root", keys["other_root"], 2)
    l1 = bundle_pki.issue(name("Parity L1"), keys["l1"], root.subject, keys["root"], 3, ca=True, path_length=1)
    l1_expired = bundle_pki.issue(
        name("Parity L1"), keys["l1"], root.subject, keys["root"], 4, ca=True, path_length=1, not_after=bundle_pki.EXPIRED_NOT_AFTER
    )
    l2 = bundle_pki.issue(name("Parity L2"), keys["l2"], l1.subject, keys["l1"], 5, ca=True, path_length=1)
    mid = bundle_pki.issue(name("Parity Mid"), keys["mid"], l2.subject, keys["l2"], 6, ca=True, path_length=1)
    leaflet = bundle_pki.issue(
        name("leaflet.example.com"), keys["leaflet"], mid.subject, keys["mid"], 7, ca=False, dns=["leaflet.example.com"]
    )
    certs = {
        "root": root,
        "other_root": other_root,
        "l1": l1,
        "l1_expired": l1_expired,
        "l2": l2,
        "mid": mid,
        "leaflet": leaflet,
        "dsa_leaf": dsa_leaf(l2, keys["l2"]),
    }
    directory.mkdir(parents=True, exist_ok=True)
    pem = {n: c.public_bytes(serialization.Encoding.PEM) for n, c in certs.items()}
    for n, data in pem.items():
        (directory / f"{n}.pem").write_bytes(data)
    (directory / "ints.pem").write_bytes(pem["l1"] + pem["l2"])
    (directory / "ints-mid.pem").write_bytes(pem["l1"] + pem["l2"] + pem["mid"])
    (directory / "ints-expired.pem").write_bytes(pem["l1_expired"])
    (directory / "empty.pem").write_bytes(b"")
    (directory / "blank.pem").write_bytes(b"\n \n")
    (directory / "empty-block.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    (directory / "dsa-pkcs8.key").write_bytes(DSA_PKCS8)
    (directory / "dsa-traditional.key").write_bytes(DSA_TRADITIONAL)
    ec = keys["leaflet"].private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (directory / "ec.key").write_bytes(ec)
    return Parity(directory, certs, keys)


#: (id, bundle arguments as file names in the parity directory, expected code, expected message or None).
#: Every row was run through cfssl 1.2.0 and 1.6.5 (tests/integration/test_parity_bundle_interop.py).
SCENARIOS: list[tuple[str, list[str], int, str | None]] = [
    ("dsa-leaf", ["-cert", "dsa_leaf.pem", "-ca-bundle", "root.pem", "-int-bundle", "ints.pem"], 2200, NOT_RSA_OR_ECC),
    ("dsa-leaf-force", ["-cert", "dsa_leaf.pem", "-flavor", "force"], 2200, NOT_RSA_OR_ECC),
    (
        "dsa-leaf-ec-key",
        ["-cert", "dsa_leaf.pem", "-key", "ec.key", "-ca-bundle", "root.pem", "-int-bundle", "ints.pem"],
        2200,
        NOT_RSA_OR_ECC,
    ),
    (
        "dsa-leaf-dsa-pkcs8-key",
        ["-cert", "dsa_leaf.pem", "-key", "dsa-pkcs8.key", "-ca-bundle", "root.pem", "-int-bundle", "ints.pem"],
        2003,
        "Failed to parse private key",
    ),
    (
        "dsa-leaf-dsa-traditional-key",
        ["-cert", "dsa_leaf.pem", "-key", "dsa-traditional.key", "-ca-bundle", "root.pem", "-int-bundle", "ints.pem"],
        2003,
        "Failed to parse private key",
    ),
    ("empty-cert-dsa-key", ["-cert", "empty.pem", "-key", "dsa-pkcs8.key", "-ca-bundle", "root.pem"], 2003, "Failed to parse private key"),
    ("path-length", ["-cert", "leaflet.pem", "-ca-bundle", "root.pem", "-int-bundle", "ints-mid.pem"], 1213, TOO_MANY),
    ("path-length-no-root", ["-cert", "leaflet.pem", "-ca-bundle", "other_root.pem", "-int-bundle", "ints-mid.pem"], 1213, TOO_MANY),
    ("expired-issuer-no-root", ["-cert", "l2.pem", "-ca-bundle", "other_root.pem", "-int-bundle", "ints-expired.pem"], 1211, None),
    ("empty-pem", ["-cert", "empty.pem", "-ca-bundle", "root.pem", "-int-bundle", "ints.pem"], 1002, "Failed to decode certificate"),
    ("blank-pem", ["-cert", "blank.pem", "-ca-bundle", "root.pem"], 1002, "Failed to decode certificate"),
    ("empty-pem-block", ["-cert", "empty-block.pem", "-ca-bundle", "root.pem"], 1003, "Failed to parse certificate"),
]


def scenario_args(parity: Parity, args: list[str]) -> list[str]:
    return [parity.path(a) if a.endswith((".pem", ".key")) else a for a in args]


@pytest.fixture(scope="module")
def parity(tmp_path_factory: pytest.TempPathFactory) -> Parity:
    return build_parity(tmp_path_factory.mktemp("parity"))


@pytest.mark.parametrize(("args", "code", "message"), [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS])
def test_bundle_error_codes_follow_cfssl(run_cli: RunCli, parity: Parity, args: list[str], code: int, message: str | None) -> None:
    result = run_cli("bundle", *scenario_args(parity, args))
    assert result.status == 1 and result.stdout == ""
    assert result.error["code"] == code
    if message is not None:
        assert result.error["message"] == message
    assert "Traceback" not in result.stderr


def test_the_chain_itself_is_fine_for_an_rsa_or_ecdsa_leaf(run_cli: RunCli, parity: Parity) -> None:
    # the DSA leaf's refusal is about its key: an ECDSA leaf under the same issuer bundles
    ok = bundle_pki.issue(
        bundle_pki.name("ok.example.com"), parity.keys["leaflet"], parity.certs["l2"].subject, parity.keys["l2"], 9, ca=False
    )
    path = parity.dir / "ok.pem"
    path.write_bytes(ok.public_bytes(serialization.Encoding.PEM))
    result = run_cli("bundle", "-cert", str(path), "-ca-bundle", parity.path("root.pem"), "-int-bundle", parity.path("ints.pem"))
    assert result.status == 0, result.stderr
    chain = x509.load_pem_x509_certificates(result.json["bundle"].encode())
    assert [c.subject for c in chain] == [ok.subject, parity.certs["l2"].subject, parity.certs["l1"].subject]


def test_expired_issuer_message_is_gos(run_cli: RunCli, parity: Parity) -> None:
    result = run_cli(
        "bundle",
        "-cert",
        parity.path("l2.pem"),
        "-ca-bundle",
        parity.path("other_root.pem"),
        "-int-bundle",
        parity.path("ints-expired.pem"),
    )
    assert result.error["message"].startswith("x509: certificate has expired or is not yet valid: current time ")
    assert result.error["message"].endswith(" is after 2021-01-01T00:00:00Z")


# -- the same through the core and the API --------------------------------------------------------------------


def test_core_checks_the_leaf_key_before_the_key_match_and_the_chain(parity: Parity) -> None:
    b = bundler.Bundler([parity.certs["root"]], [parity.certs["l1"], parity.certs["l2"]], fetch_aia=False)
    for key in (None, parity.keys["leaflet"]):
        with pytest.raises(CfsslError) as err:
            b.bundle([parity.certs["dsa_leaf"]], key)  # type: ignore[arg-type]
        assert (err.value.code, err.value.message) == (2200, NOT_RSA_OR_ECC)
    for data in (DSA_PKCS8, DSA_TRADITIONAL):
        with pytest.raises(CfsslError) as err:
            bundler.load_bundle_key(data)
        assert (err.value.code, err.value.message) == (2003, "Failed to parse private key")


def test_issuer_refusal_is_gos_is_valid(parity: Parity) -> None:
    now = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    c = parity.certs
    assert bundler.issuer_refusal(c["l2"], [c["leaflet"], c["mid"]], now) is None  # one intermediate below, pathlen 1
    refusal = bundler.issuer_refusal(c["l1"], [c["leaflet"], c["mid"], c["l2"]], now)
    assert refusal is not None and (refusal.code, refusal.message) == (1213, TOO_MANY)
    expired = bundler.issuer_refusal(c["l1_expired"], [c["l2"]], now)
    assert expired is not None and expired.code == 1211
    early = bundler.issuer_refusal(c["l1"], [c["l2"]], dt.datetime(2019, 1, 1, tzinfo=dt.timezone.utc))
    assert early is not None and early.message.endswith("is before 2020-01-01T00:00:00Z")


@pytest.fixture
def api(parity: Parity) -> Client:
    b = bundler.Bundler([parity.certs["root"]], [parity.certs["l1"], parity.certs["l2"], parity.certs["mid"]], fetch_aia=False)
    return Client(create_app(ApiState(bundler=b)))


def pem_of(parity: Parity, name: str) -> str:
    return (parity.dir / name).read_text()


@pytest.mark.parametrize(
    ("certificate", "private_key", "code"),
    [
        ("dsa_leaf.pem", "", 2200),
        ("dsa_leaf.pem", "dsa-pkcs8.key", 2003),
        ("dsa_leaf.pem", "dsa-traditional.key", 2003),
        ("dsa_leaf.pem", "ec.key", 2200),
        ("leaflet.pem", "", 1213),
        ("empty.pem", "", 1002),
        ("empty.pem", "dsa-pkcs8.key", 2003),
    ],
)
def test_api_bundle_error_codes(api: Client, parity: Parity, certificate: str, private_key: str, code: int) -> None:
    body = {"certificate": pem_of(parity, certificate)}
    if private_key:
        body["private_key"] = pem_of(parity, private_key)
    response = api.post("bundle", body)
    assert response.status == 400
    doc = json.loads(response.body)
    assert doc["success"] is False and [e["code"] for e in doc["errors"]] == [code]


# -- item 8: GET /bundle ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_get_bundle_redirects_to_the_ui_bundle_view(method: str) -> None:
    client = Client(create_app(ApiState()))
    response = client.request(method, "/bundle")
    assert response.status == 302
    assert response.headers["Location"] == "./#bundle"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.body == b""
    # where it leads: the UI page, which has the bundle view the fragment selects
    page = client.request("GET", "/")
    assert page.status == 200 and b'id="page-bundle"' in page.body and b'href="#bundle"' in page.body


def test_bundle_api_endpoint_is_unchanged_by_the_redirect(api: Client, parity: Parity) -> None:
    ok = api.post("bundle", {"certificate": pem_of(parity, "l2.pem")})
    assert ok.status == 200, ok.body
    assert api.request("POST", "/bundle").status == 405  # only the UI path: POST there was never an API


def test_an_issuer_refused_while_building_fetches_no_aia(parity: Parity) -> None:
    """Go's hard error is not an UnknownAuthorityError, so cfssl does not follow the AIA caIssuers URL then."""
    c, k = parity.certs, parity.keys
    url = "http://127.0.0.1:9/l2.der"
    leaf = bundle_pki.issue(bundle_pki.name("aia.example.com"), k["leaflet"], c["l2"].subject, k["l2"], 10, ca=False, aia_issuer=url)
    fetched: list[str] = []

    def fetch(self: bundler.Bundler, where: str) -> x509.Certificate | None:
        fetched.append(where)
        return None

    refusing = bundler.Bundler([c["root"]], [c["l2"], c["l1_expired"]], fetch_aia=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bundler.Bundler, "fetch_certificate", fetch)
        with pytest.raises(CfsslError) as err:
            refusing.bundle([leaf])
        assert err.value.code == 1211 and fetched == []
        with pytest.raises(CfsslError) as err:  # an unknown authority still looks the issuer up
            bundler.Bundler([c["root"]], [], fetch_aia=True).bundle([leaf])
        assert err.value.code == 1220 and fetched == [url]
