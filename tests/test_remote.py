"""The remote signer against a small fake cfssl API on loopback (HTTP, HTTPS, mutual TLS).

:class:`FakeCfssl` answers ``/sign``, ``/authsign`` and ``/info`` the way ``cfssl serve`` does, with a
local signer behind it, or with scripted replies; it records every request. It is shared with
``tests/cli/test_remote_cli.py``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.server
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from cfsslpy.config import Config
from cfsslpy.csr import CertificateRequest, csr_pem, generate_csr
from cfsslpy.errors import CfsslError, go_json_dumps
from cfsslpy.remote import (
    RemoteClient,
    RemoteSigner,
    RemoteTLS,
    RemoteURL,
    authenticated_request_json,
    parse_remote,
    parse_remote_group,
    sign_request_json,
)
from cfsslpy.signer import LocalSigner, SignRequest, SubjectOverride, issue, load_issuer
from tests.conftest import CA, RunCli, make_ca, write_csr_json

KEY_HEX = "0123456789ABCDEF0123456789ABCDEF"
KEY = bytes.fromhex(KEY_HEX)

PEM = Encoding.PEM

Reply = Callable[[str, bytes], tuple[int, bytes]]


def envelope(result: Any = None, *, errors: list[dict[str, Any]] | None = None) -> bytes:
    ok = errors is None
    return (go_json_dumps({"success": ok, "result": result, "errors": errors or [], "messages": []}) + "\n").encode()


@dataclass
class Seen:
    path: str
    body: bytes
    headers: dict[str, str]

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeCfssl:
    """cfssl serve's sign/authsign/info on 127.0.0.1 (a free port), backed by ``signer``; stopped on exit.

    Like cfssl (and unlike cfsslpy's serve), it signs a profile name it does not know under the default profile.
    """

    signer: LocalSigner | None = None
    auth_key: bytes | None = None
    tls: ssl.SSLContext | None = None
    reply: Reply | None = None  # scripted answers instead of cfssl's behaviour
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    @property
    def address(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def answer(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.reply is not None:
            return self.reply(path, body)
        assert self.signer is not None
        try:
            obj = json.loads(body)
            if path == "/api/v1/cfssl/info":
                info = self.signer.info(self._cfssl_profile(obj.get("profile", "")), obj.get("label", ""))
                return 200, envelope(info.to_json())
            if path == "/api/v1/cfssl/authsign":
                request = base64.b64decode(obj["request"])
                if self.auth_key is None or not hmac.compare_digest(
                    hmac.new(self.auth_key, request, hashlib.sha256).digest(), base64.b64decode(obj["token"])
                ):
                    return 400, envelope(errors=[{"code": 400, "message": "invalid token"}])
                obj = json.loads(request)
            elif path != "/api/v1/cfssl/sign":
                return 404, b"404 page not found\n"
            request = SignRequest.from_json(obj)
            request.profile = self._cfssl_profile(request.profile)
            cert = self.signer.sign(request)
            return 200, envelope({"certificate": cert.public_bytes(PEM).decode()})
        except CfsslError as exc:
            return 400, envelope(errors=[{"code": exc.code, "message": exc.message}])

    def _cfssl_profile(self, name: str) -> str:
        """cfssl's ``signer.Profile``: a name the policy does not define means the default profile."""
        assert self.signer is not None
        return name if name in self.signer.policy.profiles else ""

    @contextlib.contextmanager
    def running(self) -> Iterator[FakeCfssl]:
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                fake.seen.append(Seen(self.path, body, dict(self.headers)))
                status, data = fake.answer(self.path, body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if status == 200 else "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(10)


def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A port that accepts connections (backlog) and never answers: reads time out."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield int(s.getsockname()[1])


def new_csr(cn: str = "leaf.example.com", hosts: list[str] | None = None) -> bytes:
    req = CertificateRequest.from_json({"CN": cn, "hosts": hosts if hosts is not None else [cn]})
    return csr_pem(generate_csr(req, ec.generate_private_key(ec.SECP256R1())))


@dataclass
class PKI:
    ca: CA
    signer: LocalSigner
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def server_context(self, *, require_client: bool = False) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.server_cert, self.server_key)
        if require_client:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(self.ca.cert)
        return ctx


def build_pki(run_cli: RunCli, directory: Path) -> PKI:
    """A CA, a loopback server certificate and a client certificate, all made by our CLI."""
    ca = make_ca(run_cli, directory)
    paths: dict[str, Path] = {}
    for name, hosts in (("server", ["127.0.0.1", "localhost", "::1"]), ("client", ["client.example"])):
        spec = write_csr_json(directory / f"{name}.json", {"CN": name, "hosts": hosts})
        result = run_cli("gencert", "-ca", str(ca.cert), "-ca-key", str(ca.key), str(spec))
        assert result.status == 0, result.stderr
        paths[name] = directory / f"{name}.pem"
        paths[f"{name}-key"] = directory / f"{name}-key.pem"
        paths[name].write_text(result.json["cert"])
        paths[f"{name}-key"].write_text(result.json["key"])
    signer = LocalSigner(load_issuer(str(ca.cert), str(ca.key)), Config.default().signing)
    return PKI(ca, signer, paths["server"], paths["server-key"], paths["client"], paths["client-key"])


@pytest.fixture
def pki(run_cli: RunCli, tmp_path: Path) -> PKI:
    return build_pki(run_cli, tmp_path / "pki")


def remote_config(remote: str, *, auth: bool = False, extra: dict[str, Any] | None = None) -> Config:
    default: dict[str, Any] = {"auth_remote": {"remote": "ca", "auth_key": "k"}} if auth else {"remote": "ca"}
    doc: dict[str, Any] = {
        "signing": {"default": default, "profiles": extra or {}},
        "remotes": {"ca": remote},
        "auth_keys": {"k": {"type": "standard", "key": KEY_HEX}},
    }
    return Config.from_json(doc)


def error_of(call: Callable[[], Any]) -> CfsslError:
    with pytest.raises(CfsslError) as exc:
        call()
    return exc.value


# -- addresses ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "url"),
    [
        ("ca.example", "http://ca.example:8888"),
        ("CA.Example", "http://ca.example:8888"),
        ("ca.example:9000", "http://ca.example:9000"),
        (" ca.example:9000 ", "http://ca.example:9000"),
        ("127.0.0.1", "http://127.0.0.1:8888"),
        ("1.2.3.4:8888", "http://1.2.3.4:8888"),  # cfssl: URL parse error
        ("[::1]:8888", "http://[::1]:8888"),
        ("[::1]", "http://[::1]:8888"),
        ("::1", "http://[::1]:8888"),
        ("http://ca.example", "http://ca.example:80"),
        ("https://ca.example", "https://ca.example:443"),
        ("HTTPS://ca.example:8443", "https://ca.example:8443"),
        ("http://ca.example:8888/", "http://ca.example:8888"),
        ("https://ca.example/pki/", "https://ca.example:443/pki"),
        ("http://[2001:db8::1]:9000", "http://[2001:db8::1]:9000"),
    ],
)
def test_remote_addresses_are_normalised(written: str, url: str) -> None:
    assert str(parse_remote(written)) == url


@pytest.mark.parametrize(
    "written",
    [
        "",
        "  ",
        "ftp://ca.example",
        "ca.example:0",
        "ca.example:65536",
        "ca.example:http",
        "ca.example:8888/path",
        "user@ca.example",
        "http://user:pw@ca.example",
        "http://ca.example?x=1",
        "[::1",
        "[::1]x",
        "[nope]:80",
        "ca..example",
        "-ca.example",
        "cä.example",
        "ca example",
        "http://",
    ],
)
def test_bad_remote_addresses_are_refused(written: str) -> None:
    with pytest.raises(ValueError):
        parse_remote(written)


def test_a_comma_list_is_an_ordered_group() -> None:
    assert [str(u) for u in parse_remote_group("a,b:1,https://c")] == ["http://a:8888", "http://b:1", "https://c:443"]
    with pytest.raises(ValueError):
        parse_remote_group("a,,b")


def test_endpoint_urls_keep_the_path_prefix() -> None:
    assert RemoteURL("https", "ca", 443, "/pki").endpoint("sign") == "https://ca:443/pki/api/v1/cfssl/sign"


def test_a_bad_remote_is_5300_when_the_signer_is_built(caplog: pytest.LogCaptureFixture) -> None:
    err = error_of(lambda: RemoteSigner(remote_config("ftp://x").signing))
    assert (err.code, err.message) == (5300, "failed to connect to remote")
    assert "unsupported scheme" in caplog.text


# -- request encoding ----------------------------------------------------------------------------------------


def test_the_sign_request_is_encoded_as_cfssl_encodes_it() -> None:
    req = SignRequest(request=b"-----BEGIN CERTIFICATE REQUEST-----\nX\n", hosts=["a.com", "b.com"], profile="P", label="L")
    assert sign_request_json(req) == (
        b'{"hosts":["a.com","b.com"],"certificate_request":"-----BEGIN CERTIFICATE REQUEST-----\\nX\\n",'
        b'"profile":"P","crl_override":"","label":"L"}'
    )
    assert json.loads(sign_request_json(SignRequest(request=b"x")))["hosts"] is None


def test_subject_and_serial_are_sent_only_when_set() -> None:
    subject = SubjectOverride.from_json({"CN": "x", "names": [{"O": "o1", "C": "US"}]})
    obj = json.loads(sign_request_json(SignRequest(request=b"x", subject=subject, serial=10**30, hosts=[])))
    assert obj["subject"] == {
        "CN": "x",
        "names": [{"C": "US", "ST": "", "L": "", "O": "o1", "OU": "", "SerialNumber": ""}],
        "SerialNumber": "",
    }
    assert obj["serial"] == 10**30 and obj["hosts"] == []
    assert list(obj) == ["hosts", "certificate_request", "subject", "profile", "crl_override", "label", "serial"]


def test_the_authenticated_request_carries_hmac_of_the_exact_bytes() -> None:
    inner = b'{"certificate_request":"x"}'
    obj = json.loads(authenticated_request_json(inner, KEY, now=1700000000.7))
    assert list(obj) == ["timestamp", "token", "request"]
    assert obj["timestamp"] == 1700000000
    assert base64.b64decode(obj["request"]) == inner
    assert base64.b64decode(obj["token"]) == hmac.new(KEY, inner, hashlib.sha256).digest()


# -- signing over HTTP ---------------------------------------------------------------------------------------


def test_sign_through_the_remote(pki: PKI) -> None:
    with FakeCfssl(pki.signer).running() as fake:
        signer = RemoteSigner(remote_config(fake.address).signing)
        csr = new_csr()
        cert = signer.sign(SignRequest(request=csr, hosts=["x.example"], profile="", label="L"))
    assert cert.issuer == pki.signer.certificate.subject  # type: ignore[union-attr]
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == ["x.example"]
    [seen] = fake.seen
    assert seen.path == "/api/v1/cfssl/sign"
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.json["certificate_request"] == csr.decode() and seen.json["label"] == "L"


def test_authsign_token_and_timestamp(pki: PKI) -> None:
    with FakeCfssl(pki.signer, auth_key=KEY).running() as fake:
        signer = RemoteSigner(remote_config(fake.address, auth=True).signing)
        before = time.time()
        signer.sign(SignRequest(request=new_csr(), profile=""))
    [seen] = fake.seen
    assert seen.path == "/api/v1/cfssl/authsign"
    body = seen.json
    request = base64.b64decode(body["request"])
    assert base64.b64decode(body["token"]) == hmac.new(KEY, request, hashlib.sha256).digest()
    assert before - 1 <= body["timestamp"] <= time.time() + 1
    assert json.loads(request)["profile"] == ""
    assert KEY_HEX.encode() not in seen.body and KEY not in seen.body


def test_a_wrong_key_is_the_servers_400_as_7400(pki: PKI) -> None:
    with FakeCfssl(pki.signer, auth_key=b"another key").running() as fake:
        signer = RemoteSigner(remote_config(fake.address, auth=True).signing)
        err = error_of(lambda: signer.sign(SignRequest(request=new_csr())))
    assert err.code == 7400
    assert err.message == '{"success":false,"result":null,"errors":[{"code":400,"message":"invalid token"}],"messages":[]}\n'


def test_info_through_the_remote(pki: PKI) -> None:
    with FakeCfssl(pki.signer).running() as fake:
        info = RemoteSigner(remote_config(fake.address).signing).info("www", "L")
    assert info.certificate == pki.signer.certificate
    assert info.usages == ["signing", "key encipherment", "server auth", "client auth"] and info.expiry == "8760h"
    assert fake.seen[0].path == "/api/v1/cfssl/info"
    assert fake.seen[0].body == b'{"label":"L","profile":"www"}'


def test_info_is_never_authenticated(pki: PKI) -> None:
    with FakeCfssl(pki.signer, auth_key=KEY).running() as fake:
        RemoteSigner(remote_config(fake.address, auth=True).signing).info()
    assert [s.path for s in fake.seen] == ["/api/v1/cfssl/info"]


def test_issue_generates_the_key_here_and_signs_remotely(pki: PKI) -> None:
    with FakeCfssl(pki.signer).running() as fake:
        signer = RemoteSigner(remote_config(fake.address).signing)
        req = CertificateRequest.from_json({"CN": "gen.example", "hosts": ["gen.example"]})
        cert, csr, key = issue(signer, req, SignRequest(request=b"", hosts=None))
    assert cert.public_key() == key.public_key() == csr.public_key()
    assert b"PRIVATE" not in fake.seen[0].body


# -- failover and errors -------------------------------------------------------------------------------------


def test_failover_skips_an_address_that_is_down(pki: PKI, caplog: pytest.LogCaptureFixture) -> None:
    down = closed_port()
    with FakeCfssl(pki.signer).running() as up:
        signer = RemoteSigner(remote_config(f"127.0.0.1:{down},{up.address}").signing)
        signer.sign(SignRequest(request=new_csr()))
    assert len(up.seen) == 1
    assert f"127.0.0.1:{down}" in caplog.text and "trying" in caplog.text


def test_failover_order_is_kept(pki: PKI) -> None:
    with FakeCfssl(pki.signer).running() as first, FakeCfssl(pki.signer).running() as second:
        RemoteSigner(remote_config(f"{first.address},{second.address}").signing).sign(SignRequest(request=new_csr()))
    assert (len(first.seen), len(second.seen)) == (1, 0)


def test_a_5xx_fails_over(pki: PKI) -> None:
    with FakeCfssl(reply=lambda p, b: (500, b"boom\n")).running() as broken, FakeCfssl(pki.signer).running() as good:
        RemoteSigner(remote_config(f"{broken.address},{good.address}").signing).sign(SignRequest(request=new_csr()))
    assert (len(broken.seen), len(good.seen)) == (1, 1)


def test_every_address_5xx_is_7400_with_the_last_body() -> None:
    with FakeCfssl(reply=lambda p, b: (502, b"one")).running() as a, FakeCfssl(reply=lambda p, b: (503, b"two")).running() as b:
        err = error_of(lambda: RemoteSigner(remote_config(f"{a.address},{b.address}").signing).sign(SignRequest(request=b"x")))
    assert (err.code, err.message) == (7400, "two")


def test_a_4xx_is_final_and_its_body_is_the_message(pki: PKI) -> None:
    body = envelope(errors=[{"code": 9002, "message": "CSR Decode failed"}])
    with FakeCfssl(reply=lambda p, b: (400, body)).running() as first, FakeCfssl(pki.signer).running() as second:
        err = error_of(lambda: RemoteSigner(remote_config(f"{first.address},{second.address}").signing).sign(SignRequest(request=b"x")))
    assert (err.code, err.message) == (7400, body.decode())
    assert second.seen == []


def test_success_false_is_7500_with_the_first_error_and_final(pki: PKI) -> None:
    body = envelope(errors=[{"code": 1234, "message": "nope"}, {"code": 1, "message": "second"}])
    with FakeCfssl(reply=lambda p, b: (200, body)).running() as first, FakeCfssl(pki.signer).running() as second:
        err = error_of(lambda: RemoteSigner(remote_config(f"{first.address},{second.address}").signing).sign(SignRequest(request=b"x")))
    assert (err.code, err.message) == (7500, "nope")
    assert second.seen == []


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (b"not json", 7200, "invalid character 'o' in literal null (expecting 'u')"),
        (b"[1]", 7200, "json: cannot unmarshal array into Go value of type api.Response"),
        (b'{"success":"yes"}', 7200, "json: cannot unmarshal string into Go struct field Response.success of type bool"),
        (
            b'{"success":false,"errors":[1]}',
            7200,
            "json: cannot unmarshal number into Go struct field Response.errors of type api.ResponseMessage",
        ),
        (
            b'{"success":false,"errors":[{"code":"7"}]}',
            7200,
            "json: cannot unmarshal string into Go struct field ResponseMessage.errors.code of type int",
        ),
        (
            b'{"success":false,"messages":[{"message":1}]}',
            7200,
            "json: cannot unmarshal number into Go struct field ResponseMessage.messages.message of type string",
        ),
        (b'{"success":false,"errors":[{"code":null,"message":"why"}]}', 7500, "why"),
        (b'{"success":true,"result":null,"errors":[],"messages":[]}', 7500, "API client error: Server request failed"),
        (b'{"success":false,"result":null,"errors":[],"messages":[]}', 7500, "API client error: Server request failed"),
        (b'{"success":true,"result":"x","errors":[],"messages":[]}', 7400, "response is formatted improperly"),
        (b'{"success":true,"result":{"certificate":""},"errors":[],"messages":[]}', 7400, "response doesn't contain certificate."),
        (b'{"success":true,"result":{"certificate":5},"errors":[],"messages":[]}', 7400, "response doesn't contain certificate."),
        (b'{"success":true,"result":{"certificate":"garbage"},"errors":[],"messages":[]}', 1002, "Failed to decode certificate"),
        (b'{"success":true,"result":' + b"[" * 100_000, 7200, "invalid character '[' exceeded max depth"),  # a hostile remote
        (b'{"success":true,"result":{"certificate":"\\ud800"},"errors":[],"messages":[]}', 1002, "Failed to decode certificate"),
    ],
)
def test_malformed_answers(body: bytes, code: int, message: str) -> None:
    with FakeCfssl(reply=lambda p, b: (200, body)).running() as fake:
        err = error_of(lambda: RemoteSigner(remote_config(fake.address).signing).sign(SignRequest(request=new_csr())))
    assert (err.code, err.message) == (code, message)


def test_a_remote_message_is_logged_bounded(caplog: pytest.LogCaptureFixture) -> None:
    hostile = "m" * 100_000 + "\n2030/01/01 00:00:00 [ERROR] forged"
    body = json.dumps({"success": False, "result": None, "errors": [], "messages": [{"code": 1, "message": hostile}]}).encode()
    with caplog.at_level(logging.WARNING), FakeCfssl(reply=lambda p, b: (200, body)).running() as fake:
        err = error_of(lambda: RemoteSigner(remote_config(fake.address).signing).sign(SignRequest(request=new_csr())))
    assert err.code == 7500
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("remote: ")]
    assert len(line) < 300 and "forged" not in line and "\n" not in line


@pytest.mark.parametrize(
    ("result", "code"),
    [("x", 7200), ({"certificate": 5}, 7200), ({}, 7200), ({"certificate": ""}, 7400)],
)
def test_malformed_authsign_answers(result: Any, code: int) -> None:
    with FakeCfssl(reply=lambda p, b: (200, envelope(result))).running() as fake:
        err = error_of(lambda: RemoteSigner(remote_config(fake.address, auth=True).signing).sign(SignRequest(request=new_csr())))
    assert err.code == code


@pytest.mark.parametrize(
    ("result", "code"),
    [("x", 7400), ({"certificate": 5}, 7400), ({"certificate": ""}, 1002), ({"certificate": "junk"}, 1002)],
)
def test_malformed_info_answers(result: Any, code: int, pki: PKI) -> None:
    with FakeCfssl(reply=lambda p, b: (200, envelope(result))).running() as fake:
        err = error_of(lambda: RemoteSigner(remote_config(fake.address).signing).info())
    assert err.code == code


def test_a_certificate_for_another_key_is_refused(pki: PKI) -> None:
    other = pki.signer.sign(SignRequest(request=new_csr()))
    body = envelope({"certificate": other.public_bytes(PEM).decode()})
    with FakeCfssl(reply=lambda p, b: (200, body)).running() as fake:
        err = error_of(lambda: RemoteSigner(remote_config(fake.address).signing).sign(SignRequest(request=new_csr())))
    assert (err.code, err.message) == (7500, "the remote returned a certificate for another public key")


def test_nobody_listening_is_7400_failed_post() -> None:
    down1, down2 = closed_port(), closed_port()
    err = error_of(lambda: RemoteSigner(remote_config(f"127.0.0.1:{down1},127.0.0.1:{down2}").signing).sign(SignRequest(request=b"x")))
    assert err.code == 7400
    assert (
        err.message == f"failed POST to http://127.0.0.1:{down2}/api/v1/cfssl/sign: dial tcp 127.0.0.1:{down2}: connect: connection refused"
    )


def test_a_silent_server_times_out() -> None:
    with silent_listener() as port:
        signer = RemoteSigner(remote_config(f"127.0.0.1:{port}").signing, timeout=0.3)
        started = time.monotonic()
        err = error_of(lambda: signer.sign(SignRequest(request=b"x")))
    assert time.monotonic() - started < 5
    assert err.code == 7400 and err.message.endswith("timed out after 0.3s")


def test_an_oversized_answer_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cfsslpy.remote.MAX_RESPONSE", 1000)
    with FakeCfssl(reply=lambda p, b: (200, b" " * 2000)).running() as fake:
        err = error_of(lambda: RemoteSigner(remote_config(fake.address).signing).sign(SignRequest(request=b"x")))
    assert err.code == 7300


def test_redirects_are_not_followed() -> None:
    with FakeCfssl(reply=lambda p, b: (307, b"elsewhere")).running() as fake:
        err = error_of(lambda: RemoteSigner(remote_config(fake.address).signing).sign(SignRequest(request=b"x")))
    assert (err.code, err.message) == (7400, "elsewhere")


# -- HTTPS and mutual TLS ------------------------------------------------------------------------------------


def test_https_with_the_remote_ca(pki: PKI) -> None:
    with FakeCfssl(pki.signer, tls=pki.server_context()).running() as fake:
        signer = RemoteSigner(remote_config(fake.address).signing, tls=RemoteTLS(str(pki.ca.cert)))
        cert = signer.sign(SignRequest(request=new_csr()))
    assert cert.issuer == pki.signer.certificate.subject  # type: ignore[union-attr]
    assert fake.address.startswith("https://")


def test_https_without_the_remote_ca_fails_verification(pki: PKI) -> None:
    with FakeCfssl(pki.signer, tls=pki.server_context()).running() as fake:
        err = error_of(lambda: RemoteSigner(remote_config(fake.address).signing).sign(SignRequest(request=new_csr())))
    assert err.code == 7400 and "certificate verify failed" in err.message
    assert fake.seen == []


def test_https_host_name_is_checked(pki: PKI, run_cli: RunCli, tmp_path: Path) -> None:
    spec = write_csr_json(tmp_path / "other.json", {"CN": "other", "hosts": ["other.example"]})
    result = run_cli("gencert", "-ca", str(pki.ca.cert), "-ca-key", str(pki.ca.key), str(spec))
    (tmp_path / "o.pem").write_text(result.json["cert"])
    (tmp_path / "o-key.pem").write_text(result.json["key"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "o.pem", tmp_path / "o-key.pem")
    with FakeCfssl(pki.signer, tls=ctx).running() as fake:
        signer = RemoteSigner(remote_config(fake.address).signing, tls=RemoteTLS(str(pki.ca.cert)))
        err = error_of(lambda: signer.sign(SignRequest(request=new_csr())))
    assert err.code == 7400 and "127.0.0.1" in err.message


def test_mutual_tls_with_a_client_certificate(pki: PKI) -> None:
    with FakeCfssl(pki.signer, tls=pki.server_context(require_client=True)).running() as fake:
        tls = RemoteTLS(str(pki.ca.cert), str(pki.client_cert), str(pki.client_key))
        RemoteSigner(remote_config(fake.address).signing, tls=tls).sign(SignRequest(request=new_csr()))
        assert len(fake.seen) == 1
        err = error_of(
            lambda: RemoteSigner(remote_config(fake.address).signing, tls=RemoteTLS(str(pki.ca.cert))).sign(SignRequest(request=b"x"))
        )
    assert err.code == 7400
    assert len(fake.seen) == 1


def test_tls_files_are_read_when_the_signer_is_built(pki: PKI, tmp_path: Path) -> None:
    cfg = remote_config("https://127.0.0.1:1").signing
    with pytest.raises(Exception, match="open /nonexistent: no such file or directory"):
        RemoteSigner(cfg, tls=RemoteTLS("/nonexistent"))
    (tmp_path / "junk.pem").write_text("junk")
    with pytest.raises(Exception, match="failed to load cert pool"):
        RemoteSigner(cfg, tls=RemoteTLS(str(tmp_path / "junk.pem")))
    with pytest.raises(Exception, match="client certificate needs its key"):
        RemoteSigner(cfg, tls=RemoteTLS("", str(pki.client_cert), ""))
    with pytest.raises(Exception, match="failed to load the client certificate"):
        RemoteSigner(cfg, tls=RemoteTLS("", str(pki.client_cert), str(pki.server_key)))


def test_client_against_one_address_directly(pki: PKI) -> None:
    with FakeCfssl(reply=lambda p, b: (200, envelope({"x": 1}))).running() as fake:
        assert RemoteClient(parse_remote_group(fake.address)).call("sign", b"{}") == {"x": 1}
