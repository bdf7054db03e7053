"""Our remote client against the real ``cfssl serve`` (2016 build): sign, gencert and info over HTTP and
HTTPS (with and without a client certificate), with and without an auth key; refusals compared with what
the real ``cfssl`` client reports for the same request.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import Result, RunCli
from cryptography import x509
from integration.helpers import cfssl_json, need, run

pytestmark = [pytest.mark.integration, pytest.mark.cfssl]

KEY_HEX = "0123456789ABCDEF0123456789ABCDEF"
WRONG_KEY_HEX = "FFFF456789ABCDEF0123456789ABCDEF"

SERVER_CONFIG = {
    "signing": {
        "default": {"expiry": "8760h", "usages": ["signing", "key encipherment", "server auth"]},
        "profiles": {"auth": {"expiry": "1h", "usages": ["server auth"], "auth_key": "k"}},
    },
    "auth_keys": {"k": {"type": "standard", "key": KEY_HEX}},
}


@dataclass
class Files:
    dir: Path
    ca: Path
    ca_key: Path
    ca_cert: x509.Certificate
    server: Path
    server_key: Path
    client: Path
    client_key: Path
    csr: Path
    csr_json: Path
    config: Path


def write_json(path: Path, obj: Any) -> Path:
    path.write_text(json.dumps(obj))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    """A CA, a loopback server certificate and a client certificate, all made by the real cfssl."""
    need("cfssl")
    d = tmp_path_factory.mktemp("remote-interop")
    ca = cfssl_json("gencert", "-initca", str(write_json(d / "ca.json", {"CN": "Interop CA", "names": [{"O": "cfsslpy"}]})))
    (d / "ca.pem").write_text(ca["cert"])
    (d / "ca-key.pem").write_text(ca["key"])
    out: dict[str, Path] = {}
    for name, hosts in (("server", ["127.0.0.1", "localhost"]), ("client", ["client.example"])):
        spec = write_json(d / f"{name}.json", {"CN": name, "hosts": hosts, "key": {"algo": "ecdsa", "size": 256}})
        issued = cfssl_json("gencert", "-ca", str(d / "ca.pem"), "-ca-key", str(d / "ca-key.pem"), str(spec))
        out[name], out[f"{name}-key"] = d / f"{name}.pem", d / f"{name}-key.pem"
        out[name].write_text(issued["cert"])
        out[f"{name}-key"].write_text(issued["key"])
    leaf_json = write_json(d / "leaf.json", {"CN": "leaf.example", "hosts": ["leaf.example"], "key": {"algo": "ecdsa", "size": 256}})
    leaf = cfssl_json("genkey", str(leaf_json))
    (d / "leaf.csr").write_text(leaf["csr"])
    return Files(
        d,
        d / "ca.pem",
        d / "ca-key.pem",
        x509.load_pem_x509_certificate((d / "ca.pem").read_bytes()),
        out["server"],
        out["server-key"],
        out["client"],
        out["client-key"],
        d / "leaf.csr",
        leaf_json,
        write_json(d / "server-config.json", SERVER_CONFIG),
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def cfssl_serve(files: Files, *extra: str) -> Iterator[int]:
    """The real ``cfssl serve`` on a free loopback port; always stopped."""
    port = free_port()
    log = (files.dir / f"serve-{port}.log").open("wb")
    args = [need("cfssl"), "serve", "-address", "127.0.0.1", "-port", str(port), "-ca", str(files.ca), "-ca-key", str(files.ca_key)]
    proc = subprocess.Popen([*args, "-config", str(files.config), *extra], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, (files.dir / f"serve-{port}.log").read_text()
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            assert time.monotonic() < deadline, "cfssl serve did not start listening"
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def http_port(files: Files) -> Iterator[int]:
    with cfssl_serve(files) as port:
        yield port


@pytest.fixture(scope="module")
def https_port(files: Files) -> Iterator[int]:
    with cfssl_serve(files, "-tls-cert", str(files.server), "-tls-key", str(files.server_key)) as port:
        yield port


@pytest.fixture(scope="module")
def mtls_port(files: Files) -> Iterator[int]:
    tls = ("-tls-cert", str(files.server), "-tls-key", str(files.server_key), "-mutual-tls-ca", str(files.ca))
    with cfssl_serve(files, *tls) as port:
        yield port


def client_config(files: Files, port: int, key_hex: str) -> Path:
    doc = {
        "signing": {"default": {"auth_remote": {"remote": "ca", "auth_key": "k"}}},
        "auth_keys": {"k": {"type": "standard", "key": key_hex}},
        "remotes": {"ca": f"localhost:{port}"},
    }
    return write_json(files.dir / f"client-{port}-{key_hex[:4]}.json", doc)


def issued(files: Files, result: Result) -> x509.Certificate:
    assert result.status == 0, result.stderr
    cert = x509.load_pem_x509_certificate(result.json["cert"].encode())
    cert.verify_directly_issued_by(files.ca_cert)
    return cert


def cfssl_run(*args: str, cwd: Path) -> tuple[int, str, str]:
    proc = run(need("cfssl"), *args, cwd=cwd, check=False)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def last_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]


def dns_names(cert: x509.Certificate) -> list[str]:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)


# -- HTTP ----------------------------------------------------------------------------------------------------


def test_gencert_remote(files: Files, http_port: int, run_cli: RunCli) -> None:
    result = run_cli("gencert", "-remote", f"http://127.0.0.1:{http_port}", "-hostname", "gen.example", str(files.csr_json))
    cert = issued(files, result)
    assert list(result.json) == ["cert", "csr", "key"]
    assert dns_names(cert) == ["gen.example"]


def test_sign_remote_without_a_scheme(files: Files, http_port: int, run_cli: RunCli) -> None:
    # cfssl cannot parse 127.0.0.1:PORT (5300); we take it as http://127.0.0.1:PORT
    result = run_cli("sign", "-remote", f"127.0.0.1:{http_port}", "-label", "x", str(files.csr))
    assert dns_names(issued(files, result)) == ["leaf.example"]
    assert result.json["csr"] == files.csr.read_text()


def test_sign_remote_output_matches_cfssl_shape(files: Files, http_port: int, run_cli: RunCli) -> None:
    remote = f"localhost:{http_port}"
    status, stdout, _ = cfssl_run("sign", "-remote", remote, "-hostname", "h.example", str(files.csr), cwd=files.dir)
    ours = run_cli("sign", "-remote", remote, "-hostname", "h.example", str(files.csr))
    assert status == ours.status == 0
    theirs = json.loads(stdout)
    assert list(theirs) == list(ours.json) and theirs["csr"] == ours.json["csr"]
    assert dns_names(x509.load_pem_x509_certificate(theirs["cert"].encode())) == dns_names(issued(files, ours)) == ["h.example"]


@pytest.mark.parametrize("profile", ["", "auth"])
def test_info_remote_is_byte_identical_to_cfssl(files: Files, http_port: int, run_cli: RunCli, profile: str) -> None:
    args = ["info", "-remote", f"localhost:{http_port}"] + (["-profile", profile] if profile else [])
    theirs = cfssl_run(*args, cwd=files.dir)
    ours = run_cli(*args)
    assert (ours.status, ours.stdout) == theirs[:2]
    assert x509.load_pem_x509_certificate(ours.json["certificate"].encode()) == files.ca_cert


def test_failover_to_cfssl_serve(files: Files, http_port: int, run_cli: RunCli) -> None:
    result = run_cli("sign", "-remote", f"http://127.0.0.1:{free_port()},http://127.0.0.1:{http_port}", str(files.csr))
    issued(files, result)
    assert "trying http://127.0.0.1" in result.stderr


# -- authentication ----------------------------------------------------------------------------------------


def test_authsign_with_the_right_key(files: Files, http_port: int, run_cli: RunCli) -> None:
    cfg = client_config(files, http_port, KEY_HEX)
    sign = run_cli("sign", "-config", str(cfg), "-profile", "auth", str(files.csr))
    gencert = run_cli("gencert", "-config", str(cfg), "-profile", "auth", str(files.csr_json))
    for result in (sign, gencert):
        cert = issued(files, result)
        assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(hours=1)  # the "auth" profile
    assert KEY_HEX not in sign.stderr + gencert.stderr


def test_remote_flag_keeps_the_auth_key(files: Files, http_port: int, run_cli: RunCli) -> None:
    cfg = client_config(files, free_port(), KEY_HEX)  # its remote is down: -remote replaces it
    issued(files, run_cli("sign", "-config", str(cfg), "-profile", "auth", "-remote", f"localhost:{http_port}", str(files.csr)))


@pytest.mark.parametrize(
    "case",
    ["wrong-key", "no-key-for-auth-profile", "bad-csr"],
)
def test_refusals_are_reported_as_cfssl_reports_them(files: Files, http_port: int, run_cli: RunCli, case: str) -> None:
    junk = files.dir / "junk.csr"
    junk.write_text("junk\n")
    args = {
        "wrong-key": ("sign", "-config", str(client_config(files, http_port, WRONG_KEY_HEX)), "-profile", "auth", str(files.csr)),
        "no-key-for-auth-profile": ("sign", "-remote", f"localhost:{http_port}", "-profile", "auth", str(files.csr)),
        "bad-csr": ("sign", "-remote", f"localhost:{http_port}", str(junk)),
    }[case]
    status, stdout, stderr = cfssl_run(*args, cwd=files.dir)
    ours = run_cli(*args)
    assert (ours.status, ours.stdout, last_line(ours.stderr)) == (status, stdout, last_line(stderr)) == (1, "", last_line(stderr))
    assert ours.error["code"] == 7400


def test_unreachable_remote_has_cfssls_code(files: Files, run_cli: RunCli) -> None:
    remote = f"localhost:{free_port()}"
    status, _, stderr = cfssl_run("sign", "-remote", remote, str(files.csr), cwd=files.dir)
    ours = run_cli("sign", "-remote", remote, str(files.csr))
    assert (ours.status, ours.error["code"]) == (status, json.loads(last_line(stderr))["code"]) == (1, 7400)
    assert ours.error["message"].startswith(f"failed POST to http://{remote}/api/v1/cfssl/sign: ")


# -- HTTPS and mutual TLS --------------------------------------------------------------------------------------


def test_https_with_tls_remote_ca(files: Files, https_port: int, run_cli: RunCli) -> None:
    remote = f"https://127.0.0.1:{https_port}"
    issued(files, run_cli("sign", "-remote", remote, "-tls-remote-ca", str(files.ca), str(files.csr)))
    info = run_cli("info", "-remote", remote, "-tls-remote-ca", str(files.ca))
    assert info.status == 0, info.stderr
    untrusted = run_cli("sign", "-remote", remote, str(files.csr))
    assert untrusted.status == 1 and untrusted.error["code"] == 7400 and "certificate verify failed" in untrusted.error["message"]


def test_mutual_tls(files: Files, mtls_port: int, run_cli: RunCli) -> None:
    remote = ("-remote", f"https://127.0.0.1:{mtls_port}", "-tls-remote-ca", str(files.ca))
    client = ("-mutual-tls-client-cert", str(files.client), "-mutual-tls-client-key", str(files.client_key))
    issued(files, run_cli("gencert", *remote, *client, str(files.csr_json)))
    refused = run_cli("sign", *remote, str(files.csr))
    status, _, stderr = cfssl_run("sign", *remote, str(files.csr), cwd=files.dir)
    assert (refused.status, refused.error["code"]) == (status, json.loads(last_line(stderr))["code"]) == (1, 7400)
    assert refused.error["message"].startswith(f"failed POST to https://127.0.0.1:{mtls_port}/api/v1/cfssl/sign: tls: ")
