"""Issue 11, unsafe defaults of signing: expired CAs, leaves outliving their CA, unknown profiles, IP SANs
against ``name_whitelist``. cfssl 1.2.0 and 1.6.5 do all four (tests/integration/test_parity_signing_interop.py).

* a CA certificate that is expired or not yet valid refuses to sign: 1211 on the CLI (exit 1, stdout empty)
  and HTTP 400 with the envelope on the API;
* a leaf never outlives its issuer: its notAfter is cut to the CA's, with a WARNING;
* an unknown profile name is 5400 ``Unknown policy profile`` (CLI sign/gencert/info, API sign/authsign/newcert/
  info); the empty name is the default profile; behind ``-remote`` the remote resolves the name;
* ``name_whitelist`` checks IP SANs (v4 and v6, in their text form) as it checks the other names.

The CAs are built here with cryptography, with the validity each test needs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cfsslpy.api.app import create_app
from cfsslpy.api.state import ApiState
from cfsslpy.config import Config
from cfsslpy.errors import CfsslError
from cfsslpy.remote import RemoteSigner
from cfsslpy.signer import LocalSigner, SignRequest, load_issuer
from tests.api.wsgi import AUTH_KEY_HEX, Client, config_json
from tests.bundle_pki import issue
from tests.bundle_pki import name as pki_name
from tests.conftest import CA, RunCli
from tests.test_remote import FakeCfssl, build_pki, remote_config

DAY = dt.timedelta(days=1)
UNKNOWN_PROFILE = {"code": 5400, "message": "Unknown policy profile"}
WHITELISTED = {"expiry": "1h", "usages": ["server auth"], "name_whitelist": r"\.example\.com$"}


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def dated_ca(directory: Path, not_before: dt.datetime, not_after: dt.datetime, name: str = "ca") -> CA:
    """A P-256 root CA valid from ``not_before`` to ``not_after``, written as ``name.pem`` / ``name-key.pem``."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = pki_name(f"Dated {name}")
    cert = issue(
        subject, key, subject, key, x509.random_serial_number(), ca=True, not_before=not_before, not_after=not_after, self_signed=True
    )
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    key_path.chmod(0o600)
    return CA(cert_path, key_path, directory)


def expired_ca(directory: Path) -> CA:
    return dated_ca(directory, now() - 400 * DAY, now() - 30 * DAY, "expired")


def future_ca(directory: Path) -> CA:
    return dated_ca(directory, now() + 30 * DAY, now() + 400 * DAY, "future")


def expiring_ca(directory: Path) -> CA:
    """Valid now, for ten more days: shorter than any profile's expiry here."""
    return dated_ca(directory, now() - 30 * DAY, now() + 10 * DAY, "expiring")


def csr_pem(cn: str = "leaf.example.com", hosts: tuple[str, ...] = ("leaf.example.com",)) -> bytes:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def write(path: Path, data: bytes | str | dict[str, Any]) -> Path:
    path.write_text(json.dumps(data)) if isinstance(data, dict) else path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def config_file(tmp_path: Path, profiles: dict[str, Any] | None = None) -> Path:
    default = {"expiry": "8760h", "usages": ["signing", "server auth"]}
    named = {"client": {"expiry": "1h", "usages": ["client auth"]}, **(profiles or {})}
    return write(tmp_path / "config.json", {"signing": {"default": default, "profiles": named}})


def ca_flags(ca: CA) -> tuple[str, ...]:
    return ("-ca", str(ca.cert), "-ca-key", str(ca.key))


def cert_of(result: Any) -> x509.Certificate:
    assert result.status == 0, result.stderr
    return x509.load_pem_x509_certificate(result.json["cert"].encode())


def ekus(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def local_signer(ca: CA, config: dict[str, Any] | None = None) -> LocalSigner:
    """A local signer for ``ca`` under a config document (None: cfssl's built-in policy)."""
    policy = Config.from_json(config).signing if config else Config.default().signing
    return LocalSigner(load_issuer(str(ca.cert), str(ca.key)), policy)


def api_client(ca: CA, config: dict[str, Any]) -> Client:
    cfg = Config.from_json(config)
    return Client(create_app(ApiState(signer=local_signer(ca, config), policy=cfg.signing, config=cfg)))


@pytest.fixture
def api_for() -> Any:
    """``api_for(ca, config)``: an in-process API client; its app is closed after the test."""
    clients: list[Client] = []

    def _make(ca: CA, config: dict[str, Any] | None = None) -> Client:
        client = api_client(ca, config or config_json())
        clients.append(client)
        return client

    yield _make
    for client in clients:
        client.app.metrics.close()
        client.app.close()


# ---------------------------------------------------------------------------------------------------------
# (a) the CA's validity


@pytest.mark.parametrize(("make", "words"), [(expired_ca, "expired at"), (future_ca, "is not valid before")], ids=["expired", "future"])
def test_sign_refuses_a_ca_outside_its_validity(run_cli: RunCli, tmp_path: Path, make: Callable[[Path], CA], words: str) -> None:
    ca = make(tmp_path / "ca")
    csr = write(tmp_path / "leaf.csr", csr_pem())
    result = run_cli("sign", *ca_flags(ca), str(csr))
    assert (result.status, result.stdout, result.error["code"]) == (1, "", 1211)
    assert words in result.error["message"] and "it cannot sign" in result.error["message"]


@pytest.mark.parametrize("make", [expired_ca, future_ca], ids=["expired", "future"])
def test_gencert_refuses_a_ca_outside_its_validity_and_prints_no_key(run_cli: RunCli, tmp_path: Path, make: Callable[[Path], CA]) -> None:
    ca = make(tmp_path / "ca")
    spec = write(tmp_path / "leaf.json", {"CN": "leaf.example.com", "hosts": ["leaf.example.com"]})
    result = run_cli("gencert", *ca_flags(ca), str(spec))
    assert (result.status, result.stdout, result.error["code"]) == (1, "", 1211)
    assert "PRIVATE KEY" not in result.stderr


@pytest.mark.parametrize("make", [expired_ca, future_ca], ids=["expired", "future"])
@pytest.mark.parametrize("endpoint", ["sign", "newcert"])
def test_the_api_refuses_a_ca_outside_its_validity(api_for: Any, tmp_path: Path, make: Callable[[Path], CA], endpoint: str) -> None:
    client = api_for(make(tmp_path / "ca"))
    body = {"certificate_request": csr_pem().decode(), "request": {"CN": "leaf.example.com", "hosts": ["leaf.example.com"]}}
    response = client.post(endpoint, body)
    response.assert_error(400, 1211)
    assert "it cannot sign" in response.error["message"]


def test_the_signer_checks_the_ca_at_signing_time(tmp_path: Path) -> None:
    """A long-running serve: the CA may expire after the signer was built."""
    ca = dated_ca(tmp_path, now() - DAY, now() + 30 * DAY)
    signer = local_signer(ca)
    signer.sign(SignRequest(request=csr_pem()))
    for when in (now() + 31 * DAY, now() - 2 * DAY):
        with pytest.raises(CfsslError) as exc:
            signer.sign(SignRequest(request=csr_pem()), now=when)
        assert exc.value.code == 1211


def test_info_still_answers_for_an_expired_ca(run_cli: RunCli, tmp_path: Path) -> None:
    ca = expired_ca(tmp_path / "ca")
    result = run_cli("info", *ca_flags(ca))
    assert result.status == 0, result.stderr
    shown = x509.load_pem_x509_certificate(result.json["certificate"].encode())
    assert shown == x509.load_pem_x509_certificate(ca.cert.read_bytes()) and shown.not_valid_after_utc < now()


def test_an_expired_root_can_still_be_renewed(run_cli: RunCli, tmp_path: Path) -> None:
    """-renewca self-signs with the root's key: the old certificate's dates do not matter."""
    ca = expired_ca(tmp_path / "ca")
    old = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    renewed = cert_of(run_cli("gencert", "-renewca", *ca_flags(ca)))
    assert renewed.subject == old.subject and renewed.not_valid_after_utc > now()
    assert renewed.not_valid_after_utc - renewed.not_valid_before_utc == old.not_valid_after_utc - old.not_valid_before_utc


def test_a_leaf_is_cut_to_its_issuers_not_after_with_a_warning(run_cli: RunCli, tmp_path: Path) -> None:
    ca = expiring_ca(tmp_path / "ca")
    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    result = run_cli("sign", *ca_flags(ca), str(write(tmp_path / "leaf.csr", csr_pem())))
    leaf = cert_of(result)
    assert leaf.not_valid_after_utc == ca_cert.not_valid_after_utc  # the default profile asked for 8760h
    assert leaf.not_valid_before_utc < ca_cert.not_valid_after_utc
    assert "[WARNING] the certificate would be valid until" in result.stderr and "its notAfter is cut to" in result.stderr
    # the cut leaf verifies against its CA now
    verifier = (
        x509.verification.PolicyBuilder().store(x509.verification.Store([ca_cert])).build_server_verifier(x509.DNSName("leaf.example.com"))
    )
    assert verifier.verify(leaf, [])[-1] == ca_cert


def test_a_leaf_within_its_issuers_life_is_not_cut(run_cli: RunCli, tmp_path: Path) -> None:
    ca = expiring_ca(tmp_path / "ca")
    cfg = config_file(tmp_path)
    result = run_cli("sign", *ca_flags(ca), "-config", str(cfg), "-profile", "client", str(write(tmp_path / "leaf.csr", csr_pem())))
    leaf = cert_of(result)
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == dt.timedelta(hours=1)
    assert "cut to" not in result.stderr


def test_a_requested_start_after_the_issuers_end_is_refused(tmp_path: Path) -> None:
    ca = expiring_ca(tmp_path / "ca")
    request = SignRequest(request=csr_pem(), not_before=now() + 20 * DAY, not_after=now() + 40 * DAY)
    with pytest.raises(CfsslError) as exc:
        local_signer(ca).sign(request)
    assert exc.value.code == 5200 and "is not before the CA certificate's notAfter" in exc.value.message


def test_the_api_cuts_a_leaf_too(api_for: Any, tmp_path: Path) -> None:
    ca = expiring_ca(tmp_path / "ca")
    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    result = api_for(ca).post("sign", {"certificate_request": csr_pem().decode()}).result
    assert x509.load_pem_x509_certificate(result["certificate"].encode()).not_valid_after_utc == ca_cert.not_valid_after_utc


# ---------------------------------------------------------------------------------------------------------
# (b) unknown profile names


@pytest.fixture
def good_ca(tmp_path: Path) -> CA:
    return dated_ca(tmp_path / "good", now() - DAY, now() + 3650 * DAY, "good")


def test_sign_refuses_an_unknown_profile_before_reading_the_csr(run_cli: RunCli, tmp_path: Path, good_ca: CA) -> None:
    cfg = config_file(tmp_path)
    result = run_cli("sign", *ca_flags(good_ca), "-config", str(cfg), "-profile", "clinet", str(tmp_path / "missing.csr"))
    assert (result.status, result.stdout, result.error) == (1, "", UNKNOWN_PROFILE)
    assert "unknown profile 'clinet'" in result.stderr


def test_sign_with_a_known_or_empty_profile_still_signs(run_cli: RunCli, tmp_path: Path, good_ca: CA) -> None:
    cfg, csr = config_file(tmp_path), write(tmp_path / "leaf.csr", csr_pem())
    assert ekus(cert_of(run_cli("sign", *ca_flags(good_ca), "-config", str(cfg), "-profile", "client", str(csr)))) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    assert ekus(cert_of(run_cli("sign", *ca_flags(good_ca), "-config", str(cfg), "-profile", "", str(csr)))) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]


def test_an_unknown_profile_without_a_config_is_refused(run_cli: RunCli, tmp_path: Path, good_ca: CA) -> None:
    """The built-in policy has only the default profile: any name is unknown."""
    result = run_cli("sign", *ca_flags(good_ca), "-profile", "www", str(write(tmp_path / "leaf.csr", csr_pem())))
    assert (result.status, result.error) == (1, UNKNOWN_PROFILE)


def test_gencert_refuses_an_unknown_profile_before_generating_a_key(run_cli: RunCli, tmp_path: Path, good_ca: CA) -> None:
    cfg = config_file(tmp_path)
    spec = write(tmp_path / "leaf.json", {"CN": "leaf.example.com", "hosts": ["leaf.example.com"]})
    result = run_cli("gencert", *ca_flags(good_ca), "-config", str(cfg), "-profile", "nope", str(spec))
    assert (result.status, result.stdout, result.error) == (1, "", UNKNOWN_PROFILE)
    # refused before the request is even read, so before any key is generated
    early = run_cli("gencert", *ca_flags(good_ca), "-config", str(cfg), "-profile", "nope", str(tmp_path / "missing.json"))
    assert (early.status, early.error) == (1, UNKNOWN_PROFILE)


def test_gencert_initca_refuses_an_unknown_profile(run_cli: RunCli, tmp_path: Path) -> None:
    cfg = config_file(tmp_path, {"ca": {"expiry": "8760h", "usages": ["cert sign", "crl sign"], "ca_constraint": {"is_ca": True}}})
    spec = write(tmp_path / "ca.json", {"CN": "Root"})
    result = run_cli("gencert", "-initca", "-config", str(cfg), "-profile", "cca", str(spec))
    assert (result.status, result.stdout, result.error) == (1, "", UNKNOWN_PROFILE)
    made = run_cli("gencert", "-initca", "-config", str(cfg), "-profile", "ca", str(spec))
    assert made.status == 0, made.stderr


def test_info_refuses_an_unknown_profile(run_cli: RunCli, tmp_path: Path, good_ca: CA) -> None:
    cfg = config_file(tmp_path)
    result = run_cli("info", *ca_flags(good_ca), "-config", str(cfg), "-profile", "nope")
    assert (result.status, result.stdout, result.error) == (1, "", UNKNOWN_PROFILE)
    info = run_cli("info", *ca_flags(good_ca), "-config", str(cfg), "-profile", "client")
    assert (info.status, info.json["usages"], info.json["expiry"]) == (0, ["client auth"], "1h")


def authsign_body(inner: dict[str, Any]) -> dict[str, Any]:
    import base64
    import hashlib
    import hmac

    request = json.dumps(inner).encode()
    token = hmac.new(bytes.fromhex(AUTH_KEY_HEX), request, hashlib.sha256).digest()
    return {"token": base64.b64encode(token).decode(), "request": base64.b64encode(request).decode()}


@pytest.mark.parametrize("endpoint", ["sign", "authsign", "newcert", "info"])
def test_every_endpoint_refuses_an_unknown_profile(api_for: Any, good_ca: CA, endpoint: str) -> None:
    client = api_for(good_ca)
    body: dict[str, Any] = {
        "certificate_request": csr_pem().decode(),
        "request": {"CN": "leaf.example.com", "hosts": ["leaf.example.com"]},
        "profile": "wwww",
    }
    if endpoint == "authsign":
        body = authsign_body({"certificate_request": body["certificate_request"], "profile": "wwww"})
    client.post(endpoint, body).assert_error(400, 5400, "Unknown policy profile")
    assert "cfsslpy_certificates_issued_total{" not in client.request("GET", "/metrics").body.decode()


def test_a_remote_resolves_a_profile_the_client_does_not_know(run_cli: RunCli, tmp_path: Path) -> None:
    """``sign -remote`` without the server's profiles in -config: the name is sent, the server decides."""
    pki = build_pki(run_cli, tmp_path / "pki")
    with FakeCfssl(pki.signer).running() as fake:
        RemoteSigner(remote_config(fake.address).signing).sign(SignRequest(request=csr_pem(), profile="www"))
    assert fake.seen[0].json["profile"] == "www"


# ---------------------------------------------------------------------------------------------------------
# (c) name_whitelist and IP SANs


@pytest.mark.parametrize("host", ["10.9.9.9", "2001:db8::1", "::ffff:10.0.0.1"])
def test_an_ip_san_outside_the_whitelist_is_refused(good_ca: CA, host: str) -> None:
    signer = local_signer(good_ca, {"signing": {"default": WHITELISTED}})
    with pytest.raises(CfsslError) as exc:
        signer.sign(SignRequest(request=csr_pem(hosts=("www.example.com", host))))
    assert (exc.value.code, exc.value.message) == (5500, "Request does not match policy whitelist")


def test_ip_sans_are_matched_in_their_text_form(good_ca: CA) -> None:
    wl = dict(WHITELISTED, name_whitelist=r"(\.example\.com|^10\.0\.0\.[0-9]+|^2001:db8::[0-9a-f]+)$")
    cert = local_signer(good_ca, {"signing": {"default": wl}}).sign(
        SignRequest(request=csr_pem(hosts=("www.example.com", "10.0.0.7", "2001:db8::a")))
    )
    ips = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.IPAddress)
    assert [str(ip) for ip in ips] == ["10.0.0.7", "2001:db8::a"]


def test_the_hostname_override_is_checked_for_ips(run_cli: RunCli, tmp_path: Path, good_ca: CA) -> None:
    cfg = config_file(tmp_path, {"wl": WHITELISTED})
    csr = write(tmp_path / "leaf.csr", csr_pem("www.example.com", ("www.example.com",)))
    result = run_cli("sign", *ca_flags(good_ca), "-config", str(cfg), "-profile", "wl", "-hostname", "www.example.com,10.1.1.1", str(csr))
    assert (result.status, result.stdout, result.error["code"]) == (1, "", 5500)
    assert "name '10.1.1.1' does not match" in result.stderr
    ok = run_cli("sign", *ca_flags(good_ca), "-config", str(cfg), "-profile", "wl", "-hostname", "www.example.com", str(csr))
    assert ok.status == 0, ok.stderr
