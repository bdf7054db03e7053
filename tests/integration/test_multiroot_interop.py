"""multirootca against real peers (issue 13): cfssl 1.2.0 (/usr/bin/cfssl) and 1.6.5 (../shared/peers) as
clients of ours, our client against their multirootca binaries, and a SoftHSM2 root under ``-workers 2``.

Our server runs as a real process, ``python -m cfsslpy multirootca`` (:func:`launch_command`).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REQUIRE_INTEGRATION, need
from cryptography import x509
from integration.softhsm import SoftHSM, softhsm  # noqa: F401  # the session fixture
from servers import process, wait_port
from test_multiroot import KEY_A, KEY_B, make_ca, new_csr, two_roots, write_config, write_roots

from cfsslpy.cli.multirootca import MultirootOptions

pytestmark = [pytest.mark.integration]

PEERS = Path(__file__).resolve().parents[3] / "shared/peers/cfssl-1.6.5"
LISTENING = re.compile(r"Now listening (?:with mutual TLS )?on (\S+)")


def peer(name: str) -> str:
    """A cfssl 1.6.5 binary from ../shared/peers; skip (fail when integration is required) without it."""
    path = PEERS / name
    if not os.access(path, os.X_OK):
        message = f"cfssl 1.6.5's {name} is not in {PEERS}"
        if REQUIRE_INTEGRATION:
            pytest.fail(f"{message} (required: CFSSLPY_REQUIRE_INTEGRATION=1)")
        pytest.skip(message)
    return str(path)


def cfssl_binary(version: str) -> str:
    return need("cfssl") if version == "1.2.0" else peer("cfssl")


def multirootca_binary(version: str) -> str:
    return need("multirootca", "golang-cfssl's multirootca is not installed") if version == "1.2.0" else peer("multirootca")


def launch_command(**opts: Any) -> list[str]:
    """``python -m cfsslpy multirootca`` with the flags of these options (attribute names: address is -a)."""
    flags = {attr: name for name, attr in MultirootOptions.flag_attrs.items()}
    words = [f"-{flags[attr]}={value}" for attr, value in {"address": "127.0.0.1:0", **opts}.items()]
    return [sys.executable, "-m", "cfsslpy", "multirootca", *words]


@contextlib.contextmanager
def ours(roots: Path, **opts: Any) -> Iterator[tuple[str, Any]]:
    """Our multirootca on a free loopback port: (base URL, the server); always stopped."""
    with process(launch_command(roots=str(roots), **opts)) as server:
        yield server.wait_for(LISTENING, 60).group(1), server


def client_config(path: Path, key_hex: str, remote: str) -> Path:
    """A cfssl client config whose default profile signs remotely with authsign (auth_remote)."""
    doc = {
        "signing": {"default": {"auth_remote": {"remote": "ca", "auth_key": "client-key"}}},
        "auth_keys": {"client-key": {"type": "standard", "key": key_hex}},
        "remotes": {"ca": remote},
    }
    path.write_text(json.dumps(doc))
    return path


def issued_by(cert_pem: str, ca: Path) -> x509.Certificate:
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.read_bytes()))
    return cert


def run_json(args: list[str], cwd: Path) -> dict[str, Any]:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=cwd, check=False)
    assert proc.returncode == 0, f"{' '.join(args)}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


# ---------------------------------------------------------------------------------------------------------
# the real cfssl against ours


@pytest.mark.cfssl
@pytest.mark.parametrize("version", ["1.2.0", "1.6.5"])
def test_real_cfssl_sign_and_gencert_with_a_label_against_ours(tmp_path: Path, version: str) -> None:
    cfssl = cfssl_binary(version)
    roots = two_roots(tmp_path)
    (tmp_path / "csr.pem").write_bytes(new_csr("interop.example.com"))
    (tmp_path / "csr.json").write_text(
        json.dumps({"CN": "gencert.example.com", "hosts": ["gencert.example.com"], "key": {"algo": "ecdsa", "size": 256}})
    )
    with ours(roots, label="alpha") as (url, _server):
        for label, key in (("alpha", KEY_A), ("beta", KEY_B)):
            config = client_config(tmp_path / f"client-{label}.json", key, url)
            doc = run_json([cfssl, "sign", "-config", str(config), "-label", label, "csr.pem"], tmp_path)
            issued_by(doc["cert"], tmp_path / label / "ca.pem")
            doc = run_json([cfssl, "gencert", "-config", str(config), "-label", label, "csr.json"], tmp_path)
            cert = issued_by(doc["cert"], tmp_path / label / "ca.pem")
            assert cert.subject.rfc4514_string() == "CN=gencert.example.com"
            # -remote overrides the config's remote; no -label: the default root (alpha) answers
            if label == "alpha":
                doc = run_json([cfssl, "sign", "-remote", url, "-config", str(config), "csr.pem"], tmp_path)
                issued_by(doc["cert"], tmp_path / "alpha" / "ca.pem")
        # beta's key for alpha: refused, and cfssl says so
        config = client_config(tmp_path / "client-wrong.json", KEY_B, url)
        proc = subprocess.run(
            [cfssl, "sign", "-config", str(config), "-label", "alpha", "csr.pem"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
        assert proc.returncode != 0 and "invalid token" in proc.stderr, proc.stderr


# ---------------------------------------------------------------------------------------------------------
# ours against the real multirootca


@pytest.mark.cfssl
@pytest.mark.parametrize("version", ["1.2.0", "1.6.5"])
def test_our_sign_remote_label_against_the_real_multirootca(tmp_path: Path, version: str) -> None:
    binary = multirootca_binary(version)
    two_roots(tmp_path)
    # cfssl reads relative paths from its working directory (ours from the roots file's): absolute ones here
    roots = write_roots(
        tmp_path / "cfssl-roots.conf",
        {
            label: {
                "private": f"file://{tmp_path}/{label}/ca-key.pem",
                "certificate": f"{tmp_path}/{label}/ca.pem",
                "config": f"{tmp_path}/{label}/config.json",
            }
            for label in ("alpha", "beta")
        },
    )
    port = _free_port()
    (tmp_path / "csr.pem").write_bytes(new_csr("ours.example.com"))
    with process([binary, "-a", f"127.0.0.1:{port}", "-roots", str(roots), "-l", "beta"]) as server:
        wait_port(port, server)
        for label, key in (("alpha", KEY_A), ("beta", KEY_B), ("", KEY_B)):
            config = client_config(tmp_path / f"client-{label or 'default'}.json", key, f"http://127.0.0.1:{port}")
            args = [sys.executable, "-m", "cfsslpy", "sign", "-config", str(config), *(["-label", label] if label else []), "csr.pem"]
            doc = run_json(args, tmp_path)
            issued_by(doc["cert"], tmp_path / (label or "beta") / "ca.pem")
        config = client_config(tmp_path / "client-wrong.json", KEY_A, f"http://127.0.0.1:{port}")
        proc = subprocess.run(
            [sys.executable, "-m", "cfsslpy", "sign", "-config", str(config), "-label", "beta", "csr.pem"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
        assert proc.returncode != 0 and "invalid token" in proc.stderr, proc.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------------------------------
# start-up


def test_an_unusable_root_stops_the_start_up_naming_it(tmp_path: Path) -> None:
    roots = two_roots(tmp_path, beta={"certificate": "alpha/ca.pem"})
    proc = subprocess.run(launch_command(roots=str(roots)), capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert "roots.conf:7: root 'beta': private:" in proc.stderr and "code 2300" in proc.stderr
    assert "Now listening" not in proc.stderr


@pytest.mark.parametrize("workers", [1, 2])
def test_a_bad_reload_in_the_workers_keeps_the_roots(tmp_path: Path, workers: int) -> None:
    roots = two_roots(tmp_path)
    with ours(roots, label="alpha", workers=workers) as (url, server):
        assert _authsign(url, "beta", KEY_B)[0] == 200
        roots.write_text("[beta]\nprivate = rofile://beta.enc\n")
        server.proc.send_signal(signal.SIGHUP)
        server.wait_for(re.compile(r"reload of .* failed; the roots in force stay \(alpha, beta\)"), 30)
        for _ in range(6):  # whichever worker answers
            assert _authsign(url, "beta", KEY_B)[0] == 200


# ---------------------------------------------------------------------------------------------------------
# a SoftHSM2 root


def _authsign(url: str, label: str, key_hex: str, cn: str = "hsm.example.com") -> tuple[int, dict[str, Any]]:
    request = json.dumps({"certificate_request": new_csr(cn).decode(), "label": label}).encode()
    token = hmac.new(bytes.fromhex(key_hex), request, hashlib.sha256).digest()
    body = json.dumps({"token": base64.b64encode(token).decode(), "request": base64.b64encode(request).decode()}).encode()
    req = urllib.request.Request(url + "/api/v1/cfssl/authsign", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _hsm_roots(tmp_path: Path, token: SoftHSM) -> Path:
    """Roots ``hsm`` (the token's P-256 key ``ec``), ``hsm384`` (its P-384 key, the same token) and ``file``."""
    from cfsslpy import pkcs11

    for label, obj in (("hsm", "ec"), ("hsm384", "ec384")):
        make_ca(tmp_path / label, "ca", key=pkcs11.load_private_key(token.uri(obj)))
        write_config(tmp_path / label / "config.json", KEY_A)
    make_ca(tmp_path / "file", "ca")
    write_config(tmp_path / "file" / "config.json", KEY_B)
    return write_roots(
        tmp_path / "roots.conf",
        {
            "hsm": {"private": token.uri("ec"), "certificate": "hsm/ca.pem", "config": "hsm/config.json"},
            "hsm384": {"private": token.uri("ec384"), "certificate": "hsm384/ca.pem", "config": "hsm384/config.json"},
            "file": {"private": "file://file/ca-key.pem", "certificate": "file/ca.pem", "config": "file/config.json"},
        },
    )


@pytest.mark.softhsm
def test_softhsm_roots_under_two_workers_and_eight_clients(tmp_path: Path, softhsm: SoftHSM) -> None:  # noqa: F811
    roots = _hsm_roots(tmp_path, softhsm)
    plan = [("hsm", KEY_A), ("hsm384", KEY_A), ("file", KEY_B)]
    results: list[tuple[str, int, dict[str, Any]]] = []
    lock = threading.Lock()
    with ours(roots, label="hsm", workers=2) as (url, server):

        def client(n: int) -> None:
            for i in range(6):
                label, key = plan[(n + i) % len(plan)]
                status, doc = _authsign(url, label, key, f"c{n}-{i}.example.com")
                with lock:
                    results.append((label, status, doc))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        server.proc.send_signal(signal.SIGHUP)  # a reload in the middle of it changes nothing for the clients
        for t in threads:
            t.join(300)
        server.wait_for(re.compile(r"reloaded .*roots\.conf"), 60)
        after = [_authsign(url, label, key) for label, key in plan]
        log = server.log
    assert len(results) == 48
    for label, status, doc in [*results, *((lbl, s, d) for (lbl, _k), (s, d) in zip(plan, after, strict=True))]:
        assert status == 200, (label, doc, log[-4000:])
        issued_by(doc["result"]["certificate"], tmp_path / label / "ca.pem")


@pytest.mark.softhsm
def test_several_roots_and_an_ocsp_signer_share_one_session_per_token(tmp_path: Path, softhsm: SoftHSM) -> None:  # noqa: F811
    """In one process: two roots on one token and an OCSP responder with one of their keys, used from 6
    threads at once, all through the one logged-in session the process has for the token."""
    from cfsslpy.multiroot import load_roots
    from cfsslpy.ocsp import OCSPSignRequest, load_signer
    from cfsslpy.pkcs11 import library
    from cfsslpy.signer import SignRequest

    roots = load_roots(str(_hsm_roots(tmp_path, softhsm)))
    try:
        responder = load_signer(str(tmp_path / "hsm" / "ca.pem"), str(tmp_path / "hsm" / "ca.pem"), softhsm.uri("ec"))
        errors: list[BaseException] = []
        issued: list[tuple[str, x509.Certificate]] = []

        def work(label: str) -> None:
            try:
                for i in range(5):
                    cert = roots.roots[label].signer.sign(SignRequest(request=new_csr(f"{label}{i}.example.com")))
                    issued.append((label, cert))
                    if label == "hsm":
                        responder.sign(OCSPSignRequest(certificate=cert))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(label,)) for label in ("hsm", "hsm384", "file") * 2]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert errors == []
        assert len(issued) == 30
        for label, cert in issued:
            cert.verify_directly_issued_by(x509.load_pem_x509_certificate((tmp_path / label / "ca.pem").read_bytes()))
        sessions = [key for key in library.STATE.sessions if key[0] == softhsm.module]
        assert len(sessions) == 1, sessions
    finally:
        roots.close()


# ---------------------------------------------------------------------------------------------------------
# HTTPS with client certificates (serve's -mutual-tls-ca, -mutual-tls-cn)


def _leaf(ca: Any, directory: Path, name: str, *, server: bool) -> tuple[Path, Path]:
    import datetime as dt

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    )
    if server:
        import ipaddress

        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


def test_https_with_client_certificates(tmp_path: Path) -> None:
    import ssl

    roots = two_roots(tmp_path)
    tls_ca = make_ca(tmp_path / "tls", "tls-ca")
    server_cert, server_key = _leaf(tls_ca, tmp_path / "tls", "server", server=True)
    client_cert, client_key = _leaf(tls_ca, tmp_path / "tls", "signer-client", server=False)
    other_cert, other_key = _leaf(tls_ca, tmp_path / "tls", "someone-else", server=False)
    opts = {"tls_cert": str(server_cert), "tls_key": str(server_key), "mutual_tls_ca": str(tls_ca.cert), "mutual_tls_cn": "^signer-"}
    with ours(roots, label="alpha", **opts) as (url, _server):
        assert url.startswith("https://127.0.0.1:")

        def post(cert: Path | None, key: Path | None) -> int:
            context = ssl.create_default_context(cafile=str(tls_ca.cert))
            if cert is not None:
                context.load_cert_chain(str(cert), str(key))
            request = json.dumps({"certificate_request": new_csr().decode()}).encode()
            token = hmac.new(bytes.fromhex(KEY_A), request, hashlib.sha256).digest()
            body = json.dumps({"token": base64.b64encode(token).decode(), "request": base64.b64encode(request).decode()}).encode()
            req = urllib.request.Request(url + "/api/v1/cfssl/authsign", data=body, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=30, context=context) as resp:
                    return int(resp.status)
            except urllib.error.HTTPError as exc:
                return int(exc.code)

        assert post(client_cert, client_key) == 200
        assert post(other_cert, other_key) == 403  # -mutual-tls-cn: Invalid CN
        with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
            post(None, None)  # no client certificate: no handshake
