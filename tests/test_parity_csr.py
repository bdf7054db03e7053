"""Issue 11 items 2, 3 and 7: CSRs cfssl accepts (SHA-1 signatures, Go's multi-valued RDNs) and the P-224 refusal.

The requests are assembled here, DER byte by byte, the way Go's ``x509.CreateCertificateRequest`` writes them
(each type's values in one SET, the SET's members in DER order, an empty ``[0]`` attributes field), and
signed with cryptography's low-level ``sign``, so any hash can be used. cfssl 1.2.0 and 1.6.5 sign the SHA-1 and
multi-valued ones, and sign certificates with a P-224 CA key using ECDSA-SHA1, which we refuse (2200);
tests/integration/test_parity_csr_interop.py runs the same inputs through them.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from api.wsgi import Client
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from cfsslpy.api.app import create_app
from cfsslpy.api.state import ApiState
from cfsslpy.config import Config
from cfsslpy.csr import Subject
from cfsslpy.errors import CfsslError
from cfsslpy.keys import P224_REFUSED, check_supported_key, crl_hash, load_private_key, signature_hash
from cfsslpy.pem import csr_signature_is_valid, encode_pem, parse_csr_pem
from cfsslpy.signer import LocalSigner, load_issuer
from tests.bundle_pki import self_signed_root
from tests.conftest import CA, RunCli
from tests.integration.helpers import write

# ---------------------------------------------------------------------------------------------------------
# DER, written out as Go writes it

OID_C, OID_OU, OID_CN = bytes.fromhex("550406"), bytes.fromhex("55040b"), bytes.fromhex("550403")
# AlgorithmIdentifier DER and hash per signature algorithm
ALGORITHMS: dict[str, tuple[bytes, hashes.HashAlgorithm]] = {
    "sha1WithRSA": (bytes.fromhex("300d06092a864886f70d0101050500"), hashes.SHA1()),
    "sha1WithRSA-ISO": (bytes.fromhex("300906052b0e03021d0500"), hashes.SHA1()),  # 1.3.14.3.2.29, Go knows it too
    "md5WithRSA": (bytes.fromhex("300d06092a864886f70d0101040500"), hashes.MD5()),
    "ecdsa-with-SHA1": (bytes.fromhex("300906072a8648ce3d0401"), hashes.SHA1()),
    "ecdsa-with-SHA256": (bytes.fromhex("300a06082a8648ce3d040302"), hashes.SHA256()),
}


def tlv(tag: int, content: bytes) -> bytes:
    """One DER element with a minimal length."""
    if len(content) < 0x80:
        return bytes([tag, len(content)]) + content
    size = len(content).to_bytes((len(content).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def atv(oid: bytes, value: str, string_tag: int = 0x13) -> bytes:
    """AttributeTypeAndValue; PrintableString (0x13) by default, as Go picks for these values."""
    return tlv(0x30, tlv(0x06, oid) + tlv(string_tag, value.encode()))


def go_rdn(*attributes: bytes) -> bytes:
    """A multi-valued RDN as Go's encoding/asn1 marshals a SET OF: members sorted by their encoding."""
    return tlv(0x31, b"".join(sorted(attributes)))


def go_subject(*rdns: bytes) -> bytes:
    return tlv(0x30, b"".join(rdns))


# The subject cfssl genkey writes for the issue's {"CN":"x.example.com","names":[{"C":"US","OU":"Eng"},
# {"C":"GB","OU":"Eng"}]}: pkix.Name.ToRDNSequence puts each type's values into one RDN.
ISSUE_SUBJECT = go_subject(
    go_rdn(atv(OID_C, "US"), atv(OID_C, "GB")),
    go_rdn(atv(OID_OU, "Eng"), atv(OID_OU, "Eng")),
    go_rdn(atv(OID_CN, "x.example.com")),
)


def go_csr(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, subject: bytes, algorithm: str = "ecdsa-with-SHA256") -> bytes:
    """A PKCS#10 request (PEM): version 0, ``subject``, the key's SPKI, empty attributes, signed with ``algorithm``."""
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    info = tlv(0x30, tlv(0x02, b"\x00") + subject + spki + b"\xa0\x00")
    identifier, digest = ALGORITHMS[algorithm]
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(info, padding.PKCS1v15(), digest)
    else:
        signature = key.sign(info, ec.ECDSA(digest))
    return encode_pem("CERTIFICATE REQUEST", tlv(0x30, info + identifier + tlv(0x03, b"\x00" + signature)))


def go_certificate(key: ec.EllipticCurvePrivateKey, subject: bytes) -> bytes:
    """A self-issued v3 certificate (PEM, no extensions) with ``subject`` as issuer and subject, as cfssl would
    write it for the issue's request; valid 2025-2099."""
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    identifier, digest = ALGORITHMS["ecdsa-with-SHA256"]
    validity = tlv(0x30, tlv(0x17, b"250101000000Z") + tlv(0x18, b"20991231235959Z"))
    tbs = tlv(0x30, tlv(0xA0, tlv(0x02, b"\x02")) + tlv(0x02, b"\x01") + identifier + subject + validity + subject + spki)
    return encode_pem("CERTIFICATE", tlv(0x30, tbs + identifier + tlv(0x03, b"\x00" + key.sign(tbs, ec.ECDSA(digest)))))


def tampered(csr_pem: bytes) -> bytes:
    """The same request with one bit of its signature flipped."""
    der = bytearray(x509.load_pem_x509_csr(csr_pem).public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01
    return encode_pem("CERTIFICATE REQUEST", bytes(der))


RSA_KEY = rsa.generate_private_key(65537, 2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
CN_ONLY = go_subject(go_rdn(atv(OID_CN, "sha1.example.com")))


def sign_file(run_cli: RunCli, ca: CA, tmp_path: Path, csr_pem: bytes) -> x509.Certificate:
    """``cfsslpy sign`` with ``ca``; the certificate must chain to the CA (checked with cryptography)."""
    result = run_cli("sign", "-ca", str(ca.cert), "-ca-key", str(ca.key), str(write(tmp_path / "request.csr", csr_pem)))
    assert result.status == 0, result.stderr
    cert = x509.load_pem_x509_certificate(result.json["cert"].encode())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.cert.read_bytes()))
    return cert


def refused(run_cli: RunCli, ca: CA, tmp_path: Path, csr_pem: bytes) -> dict[str, object]:
    result = run_cli("sign", "-ca", str(ca.cert), "-ca-key", str(ca.key), str(write(tmp_path / "request.csr", csr_pem)))
    assert (result.status, result.stdout) == (1, "")
    assert "Traceback" not in result.stderr
    return result.error


def spki(obj: x509.Certificate | x509.CertificateSigningRequest) -> bytes:
    return obj.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


# ---------------------------------------------------------------------------------------------------------
# Item 2: SHA-1 signed requests


@pytest.mark.parametrize(
    ("key", "algorithm"),
    [(RSA_KEY, "sha1WithRSA"), (RSA_KEY, "sha1WithRSA-ISO"), (EC_KEY, "ecdsa-with-SHA1")],
    ids=["rsa", "rsa-iso-oid", "ecdsa"],
)
def test_sha1_signatures_are_verified(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, algorithm: str) -> None:
    good = go_csr(key, CN_ONLY, algorithm)
    csr = parse_csr_pem(good)
    assert not csr.is_signature_valid  # cryptography refuses every SHA-1 signature: the reason for the fallback
    assert csr_signature_is_valid(csr)
    with pytest.raises(CfsslError) as exc:
        parse_csr_pem(tampered(good))
    assert (exc.value.code, exc.value.message) == (9300, "x509: signature verification failure")


def test_a_sha1_signature_by_another_key_is_refused() -> None:
    other = go_csr(rsa.generate_private_key(65537, 2048), CN_ONLY, "sha1WithRSA")
    der = x509.load_pem_x509_csr(go_csr(RSA_KEY, CN_ONLY, "sha1WithRSA")).public_bytes(serialization.Encoding.DER)
    foreign_signature = x509.load_pem_x509_csr(other).signature
    mixed = der[: -len(foreign_signature)] + foreign_signature
    assert not csr_signature_is_valid(x509.load_der_x509_csr(mixed))


def test_md5_signatures_stay_refused() -> None:
    """Go refuses MD5 (1.6.5: ``insecure algorithm MD5-RSA``; 1.2.0: ``algorithm unimplemented``), code 9300."""
    with pytest.raises(CfsslError) as exc:
        parse_csr_pem(go_csr(RSA_KEY, CN_ONLY, "md5WithRSA"))
    assert exc.value.code == 9300


@pytest.mark.parametrize(
    ("ca_fixture", "key", "algorithm", "expected"),
    [
        ("ec_ca", RSA_KEY, "sha1WithRSA", SignatureAlgorithmOID.ECDSA_WITH_SHA256),
        ("ec_ca", EC_KEY, "ecdsa-with-SHA1", SignatureAlgorithmOID.ECDSA_WITH_SHA256),
        ("rsa_ca", RSA_KEY, "sha1WithRSA", SignatureAlgorithmOID.RSA_WITH_SHA256),
        ("rsa_ca", EC_KEY, "ecdsa-with-SHA1", SignatureAlgorithmOID.RSA_WITH_SHA256),
    ],
)
def test_a_sha1_request_is_signed_with_the_cas_algorithm(
    request: pytest.FixtureRequest,
    run_cli: RunCli,
    tmp_path: Path,
    ca_fixture: str,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    algorithm: str,
    expected: x509.ObjectIdentifier,
) -> None:
    csr_pem = go_csr(key, CN_ONLY, algorithm)
    cert = sign_file(run_cli, request.getfixturevalue(ca_fixture), tmp_path, csr_pem)
    assert cert.signature_algorithm_oid == expected
    assert cert.subject.rfc4514_string() == "CN=sha1.example.com"
    assert spki(cert) == spki(x509.load_pem_x509_csr(csr_pem))


def test_a_tampered_sha1_request_is_refused_on_the_cli(run_cli: RunCli, ec_ca: CA, tmp_path: Path) -> None:
    error = refused(run_cli, ec_ca, tmp_path, tampered(go_csr(RSA_KEY, CN_ONLY, "sha1WithRSA")))
    assert error == {"code": 9300, "message": "x509: signature verification failure"}


@pytest.fixture
def api(ec_ca: CA) -> Iterator[Client]:
    """``/api/v1/cfssl/sign`` in-process, with ``ec_ca`` and cfssl's default policy."""
    signing = Config.default().signing
    app = create_app(ApiState(signer=LocalSigner(load_issuer(str(ec_ca.cert), str(ec_ca.key)), signing), policy=signing))
    yield Client(app)
    app.metrics.close()
    app.close()


def test_the_api_signs_sha1_requests_and_refuses_tampered_ones(api: Client) -> None:
    result = api.post("sign", {"certificate_request": go_csr(RSA_KEY, CN_ONLY, "sha1WithRSA").decode()}).assert_ok()
    cert = x509.load_pem_x509_certificate(result["certificate"].encode())
    assert cert.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256
    bad = tampered(go_csr(RSA_KEY, CN_ONLY, "sha1WithRSA")).decode()
    api.post("sign", {"certificate_request": bad}).assert_error(400, 9300, "x509: signature verification failure")


# ---------------------------------------------------------------------------------------------------------
# Item 3: multi-valued RDNs as Go writes them


def test_cryptography_refuses_identical_attributes_in_one_rdn() -> None:
    """The premise of pem._check_subject: cryptography's ValueError text (a new text would make this fail loudly)."""
    csr = x509.load_pem_x509_csr(go_csr(EC_KEY, ISSUE_SUBJECT))
    with pytest.raises(ValueError, match="^duplicate attributes are not allowed$"):
        _ = csr.subject


def test_gos_multi_valued_rdns_parse() -> None:
    csr = parse_csr_pem(go_csr(EC_KEY, ISSUE_SUBJECT))
    subject = Subject.from_csr(csr)
    # RDN order, and within an RDN the DER order Go sorted them into
    assert subject.get(NameOID.COUNTRY_NAME) == ["GB", "US"]
    assert subject.get(NameOID.ORGANIZATIONAL_UNIT_NAME) == ["Eng", "Eng"]
    assert subject.common_name == "x.example.com"
    assert subject.extra == []
    # each distinct value once, one RDN per value (README: X.501 forbids a type twice in one RDN)
    assert subject.to_name().rfc4514_string() == "CN=x.example.com,OU=Eng,C=US,C=GB"


def test_distinct_multi_valued_rdns_read_the_same_either_way() -> None:
    """``C=GB+C=US`` alone is representable in cryptography; both readers must agree on it."""
    subject_der = go_subject(go_rdn(atv(OID_C, "US"), atv(OID_C, "GB")), go_rdn(atv(OID_CN, "y")))
    csr = parse_csr_pem(go_csr(EC_KEY, subject_der))
    assert Subject.from_csr(csr) == Subject.from_name(csr.subject)
    assert Subject.from_csr(csr).get(NameOID.COUNTRY_NAME) == ["GB", "US"]


def test_a_subject_go_refuses_is_still_9003() -> None:
    """Identical attributes first, then a UTF8String that is not UTF-8: Go refuses the subject, so do we."""
    bad = go_subject(go_rdn(atv(OID_OU, "Eng"), atv(OID_OU, "Eng")), tlv(0x31, tlv(0x30, tlv(0x06, OID_CN) + tlv(0x0C, b"\xff\xfe"))))
    try:
        csr = parse_csr_pem(go_csr(EC_KEY, bad))
    except CfsslError as exc:
        assert exc.code == 9003
        return
    with pytest.raises(CfsslError) as exc_info:
        Subject.from_csr(csr)
    assert exc_info.value.code == 9003


def test_the_issue_request_is_signed(run_cli: RunCli, ec_ca: CA, tmp_path: Path) -> None:
    csr_pem = go_csr(EC_KEY, ISSUE_SUBJECT)
    cert = sign_file(run_cli, ec_ca, tmp_path, csr_pem)
    assert [[(a.oid, a.value) for a in rdn] for rdn in cert.subject.rdns] == [
        [(NameOID.COUNTRY_NAME, "GB")],
        [(NameOID.COUNTRY_NAME, "US")],
        [(NameOID.ORGANIZATIONAL_UNIT_NAME, "Eng")],
        [(NameOID.COMMON_NAME, "x.example.com")],
    ]
    assert spki(cert) == spki(x509.load_pem_x509_csr(csr_pem))


def test_the_api_signs_the_issue_request(api: Client) -> None:
    result = api.post("sign", {"certificate_request": go_csr(EC_KEY, ISSUE_SUBJECT).decode()}).assert_ok()
    cert = x509.load_pem_x509_certificate(result["certificate"].encode())
    assert cert.subject.rfc4514_string() == "CN=x.example.com,OU=Eng,C=US,C=GB"


def test_the_issue_request_with_a_go_refused_subject_is_a_coded_error(run_cli: RunCli, ec_ca: CA, tmp_path: Path) -> None:
    bad = go_subject(go_rdn(atv(OID_OU, "Eng"), atv(OID_OU, "Eng")), tlv(0x31, tlv(0x30, tlv(0x06, OID_CN) + tlv(0x0C, b"\xff"))))
    assert refused(run_cli, ec_ca, tmp_path, go_csr(EC_KEY, bad))["code"] == 9003


def test_gencsr_from_a_certificate_with_gos_multi_valued_rdns(run_cli: RunCli, tmp_path: Path) -> None:
    """``gencsr -cert`` on a certificate cfssl issued for the issue's request (cfssl keeps OU=Eng+OU=Eng)."""
    cert = write(tmp_path / "cert.pem", go_certificate(EC_KEY, ISSUE_SUBJECT))
    with pytest.raises(ValueError):
        _ = x509.load_pem_x509_certificate(cert.read_bytes()).subject
    key = EC_KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    result = run_cli("gencsr", "-key", str(write(tmp_path / "key.pem", key)), "-cert", str(cert))
    assert result.status == 0, result.stderr
    csr = x509.load_pem_x509_csr(result.json["csr"].encode())
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "CN=x.example.com,OU=Eng,C=US,C=GB"


# ---------------------------------------------------------------------------------------------------------
# Item 7: P-224 keys


def p224_ca(directory: Path) -> CA:
    """A self-signed P-224 CA (ECDSA-SHA256, which cryptography can make) with its SEC1 key file."""
    key = ec.generate_private_key(ec.SECP224R1())
    directory.mkdir(parents=True, exist_ok=True)
    cert = write(directory / "ca.pem", self_signed_root("P-224 CA", key, 224))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    return CA(cert, write(directory / "ca-key.pem", pem), directory)


def test_p224_keys_load_but_never_sign_certificates(tmp_path: Path) -> None:
    """Go parses P-224 keys; cfssl signs certificates and CSRs with them using ECDSA-SHA1, CRLs and OCSP with SHA-256."""
    ca = p224_ca(tmp_path)
    key = load_private_key(ca.key.read_bytes())
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp224r1"
    assert "ECDSA-SHA1" in P224_REFUSED and "P-224" in P224_REFUSED
    for candidate in (key, key.public_key()):
        check_supported_key(candidate)
        assert isinstance(crl_hash(candidate), hashes.SHA256)
        with pytest.raises(CfsslError) as exc:
            signature_hash(candidate)
        assert (exc.value.code, exc.value.message) == (2200, P224_REFUSED)


def test_other_unsupported_curves_keep_cfssls_message() -> None:
    with pytest.raises(CfsslError) as exc:
        check_supported_key(ec.generate_private_key(ec.SECP256K1()))
    assert (exc.value.code, exc.value.message) == (2200, "Private key algorithm is not RSA or ECC or Ed25519")


def test_signing_with_a_p224_ca_is_a_coded_error(run_cli: RunCli, tmp_path: Path) -> None:
    error = refused(run_cli, p224_ca(tmp_path / "p224"), tmp_path, go_csr(EC_KEY, CN_ONLY))
    assert error == {"code": 2200, "message": P224_REFUSED}


def test_gencsr_with_a_p224_key_is_a_coded_error(run_cli: RunCli, tmp_path: Path) -> None:
    """cfssl 1.6.5 writes an ECDSA-SHA1 request here."""
    ca = p224_ca(tmp_path / "p224")
    spec = write(tmp_path / "csr.json", b'{"CN":"x"}')
    result = run_cli("gencsr", "-key", str(ca.key), str(spec))
    assert (result.status, result.stdout, result.error) == (1, "", {"code": 2200, "message": P224_REFUSED})


def test_a_p224_ca_signs_crls_and_ocsp_with_sha256(run_cli: RunCli, tmp_path: Path) -> None:
    """As cfssl does (Go's signingParamsForPublicKey: P-224 -> ECDSA-SHA256); the signatures verify."""
    ca = p224_ca(tmp_path / "p224")
    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    public_key = ca_cert.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    result = run_cli("gencrl", str(write(tmp_path / "serials", b"4660\n")), str(ca.cert), str(ca.key))
    assert result.status == 0, result.stderr
    crl = x509.load_der_x509_crl(base64.b64decode(result.stdout))
    assert crl.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256
    assert crl.is_signature_valid(public_key)
    assert crl.get_revoked_certificate_by_serial_number(4660) is not None
    args = ("-ca", str(ca.cert), "-responder", str(ca.cert), "-responder-key", str(ca.key), "-cert", str(ca.cert))
    result = run_cli("ocspsign", *args, "-status", "good")
    assert result.status == 0, result.stderr
    response = ocsp.load_der_ocsp_response(base64.b64decode(result.json["ocspResponse"]))
    assert response.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256
    public_key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD


def test_a_p224_key_request_is_refused_before_generation(run_cli: RunCli, tmp_path: Path) -> None:
    """genkey / gencert never make one (cfssl: 2400 ``invalid curve`` too)."""
    spec = tmp_path / "csr.json"
    spec.write_text('{"CN":"x","key":{"algo":"ecdsa","size":224}}')
    result = run_cli("genkey", str(spec))
    assert (result.status, result.stdout) == (1, "")
    assert result.error == {"code": 2400, "message": "invalid curve"}
