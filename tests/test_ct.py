"""CT precertificate submission: SCT encoding checked by cryptography's own SCT parser, against a loopback log."""

from __future__ import annotations

import base64
import datetime as dt
import json
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID, NameOID

from cfsslpy.ct import sct_list_extension, serialize_sct, submit_precert
from cfsslpy.errors import CfsslError

LOG_ID = bytes(range(32))


def sct_response(timestamp: int = 1_700_000_000_000, signature: bytes = b"\x04\x03\x00\x02\x30\x00") -> dict[str, Any]:
    return {
        "sct_version": 0,
        "id": base64.b64encode(LOG_ID).decode(),
        "timestamp": timestamp,
        "extensions": "",
        "signature": base64.b64encode(signature).decode(),
    }


def cert_with(ext: x509.ExtensionType) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ct test")])
    now = dt.datetime.now(dt.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(ext, critical=False)
        .sign(key, hashes.SHA256())
    )


def test_sct_list_extension_parses_with_cryptography() -> None:
    scts = [serialize_sct(sct_response(1000)), serialize_sct(sct_response(2000))]
    cert = cert_with(sct_list_extension(scts))
    parsed = cert.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
    assert [s.log_id for s in parsed] == [LOG_ID, LOG_ID]
    assert [int(s.timestamp.replace(tzinfo=dt.timezone.utc).timestamp() * 1000) for s in parsed] == [1000, 2000]
    assert all(s.version == x509.certificate_transparency.Version.v1 for s in parsed)


def test_large_sct_list_uses_long_form_length() -> None:
    big_sig = b"\x04\x03" + struct.pack(">H", 200) + b"\x01" * 200
    scts = [serialize_sct(sct_response(i, big_sig)) for i in range(3)]
    cert = cert_with(sct_list_extension(scts))
    parsed = cert.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
    assert len(list(parsed)) == 3


@pytest.mark.parametrize(
    "response",
    [
        {},
        {**sct_response(), "sct_version": 1},
        {**sct_response(), "id": base64.b64encode(b"short").decode()},
        {**sct_response(), "signature": base64.b64encode(b"\x04\x03\x00\x09\x00").decode()},
        {**sct_response(), "id": "!!notbase64"},
        [],
    ],
)
def test_malformed_responses_are_10100(response: Any) -> None:
    with pytest.raises(CfsslError) as info:
        serialize_sct(response)
    assert info.value.code == 10100


class FakeLog:
    def __init__(self) -> None:
        self.received: list[list[bytes]] = []
        self.status = 200
        self.body: bytes = json.dumps(sct_response()).encode()


@pytest.fixture
def fake_log() -> Iterator[tuple[str, FakeLog]]:
    state = FakeLog()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers["Content-Length"])
            payload = json.loads(self.rfile.read(length))
            if self.path == "/log/ct/v1/add-pre-chain":
                state.received.append([base64.b64decode(c) for c in payload["chain"]])
                self.send_response(state.status)
                self.end_headers()
                self.wfile.write(state.body)
            else:
                self.send_response(404)
                self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/log", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_submit_precert_posts_the_chain(fake_log: tuple[str, FakeLog]) -> None:
    url, state = fake_log
    sct = submit_precert(url, [b"precert-der", b"issuer-der"], timeout=5)
    assert state.received == [[b"precert-der", b"issuer-der"]]
    assert sct == serialize_sct(sct_response())


def test_submit_precert_http_error(fake_log: tuple[str, FakeLog]) -> None:
    url, state = fake_log
    state.status = 500
    with pytest.raises(CfsslError) as info:
        submit_precert(url, [b"x"], timeout=5)
    assert info.value.code == 10100
    assert "HTTP 500" in info.value.message


def test_deeply_nested_answer_is_invalid_json_not_a_crash(fake_log: tuple[str, FakeLog]) -> None:
    url, state = fake_log
    state.body = b"[" * 5_000 + b"]" * 5_000  # past Python's recursion limit (about 1,000): no RecursionError
    with pytest.raises(CfsslError) as info:
        submit_precert(url, [b"x"], timeout=5)
    assert info.value.code == 10100
    assert "invalid JSON" in info.value.message


def test_submit_precert_unreachable() -> None:
    with pytest.raises(CfsslError) as info:
        submit_precert("http://127.0.0.1:9", [b"x"], timeout=2)
    assert info.value.code == 10100


def test_submit_precert_rejects_non_http_scheme() -> None:
    with pytest.raises(CfsslError):
        submit_precert("file:///etc/passwd", [b"x"])


# ---------------------------------------------------------------------------------------------------------
# ct_log_servers through the signer


def _ct_signer(url: str) -> Any:
    from cfsslpy.config import Config
    from cfsslpy.csr import CertificateRequest
    from cfsslpy.initca import new_ca
    from cfsslpy.signer import Issuer, LocalSigner

    ca_cert, _, ca_key = new_ca(CertificateRequest.from_json({"CN": "CT test CA"}))
    config = Config.from_json(
        {"signing": {"default": {"expiry": "1h", "usages": ["digital signature", "server auth"], "ct_log_servers": [url, url]}}}
    )
    return LocalSigner(Issuer(key=ca_key, cert=ca_cert), config.signing), ca_cert


def _leaf_csr() -> bytes:
    from cfsslpy.csr import CertificateRequest, csr_pem, new_key_and_csr

    csr, _ = new_key_and_csr(CertificateRequest.from_json({"CN": "ct.example.com", "hosts": ["ct.example.com"]}))
    return csr_pem(csr)


def test_signing_with_ct_logs_embeds_one_sct_per_log(fake_log: tuple[str, FakeLog]) -> None:
    from cfsslpy.signer import SignRequest

    url, state = fake_log
    signer, ca_cert = _ct_signer(url)
    cert = signer.sign(SignRequest(request=_leaf_csr()))
    assert len(state.received) == 2
    precert_der, issuer_der = state.received[0]
    assert issuer_der == ca_cert.public_bytes(serialization.Encoding.DER)
    precert = x509.load_der_x509_certificate(precert_der)
    # the precertificate is the final certificate plus the critical poison, minus the SCT list
    poison = precert.extensions.get_extension_for_class(x509.PrecertPoison)
    assert poison.critical
    assert precert.serial_number == cert.serial_number
    assert precert.not_valid_before_utc == cert.not_valid_before_utc and precert.not_valid_after_utc == cert.not_valid_after_utc
    pre_oids = [e.oid for e in precert.extensions if e.oid != ExtensionOID.PRECERT_POISON]
    final_oids = [e.oid for e in cert.extensions if e.oid != ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS]
    assert pre_oids == final_oids
    scts = cert.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps)
    assert not scts.critical and [s.log_id for s in scts.value] == [LOG_ID, LOG_ID]
    assert cert.extensions[-1].oid == ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.PrecertPoison)
    cert.verify_directly_issued_by(ca_cert)


def test_a_failing_log_means_no_certificate(fake_log: tuple[str, FakeLog]) -> None:
    from cfsslpy.signer import SignRequest

    url, state = fake_log
    state.status = 503
    signer, _ = _ct_signer(url)
    with pytest.raises(CfsslError) as info:
        signer.sign(SignRequest(request=_leaf_csr()))
    assert info.value.code == 10100
