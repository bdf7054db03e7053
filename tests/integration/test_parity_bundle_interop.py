"""Issue 11 items 5 and 8 through the real cfssl 1.2.0 (/usr/bin/cfssl) and 1.6.5 (../shared/peers).

Every scenario of tests/test_parity_bundle.py runs through ``cfssl bundle`` of both versions and ``cfsslpy
bundle`` on the same files. Observed, and asserted here:

* the codes are the same in all three (DSA leaf 2200, DSA leaf with its key 2003, a path length violation 1213
  also when no root is reachable, an expired issuer 1211 also when no root is reachable, an empty PEM 1002);
* the messages are the same, except 2200's: 1.2.0 says "Private key algorithm is not RSA or ECC", 1.6.5 and
  cfsslpy add "or Ed25519";
* ``GET /bundle``: cfssl 1.2.0 (no UI) answers 404, cfssl 1.6.5 serves its UI page; cfsslpy redirects to
  its UI's bundle view (``./#bundle``), whose page has that view.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.conftest import RunCli, need
from tests.integration.helpers import run
from tests.integration.test_serve import serving
from tests.servers import process, wait_port
from tests.test_certinfo import free_port
from tests.test_parity_bundle import SCENARIOS, Parity, build_parity, scenario_args

pytestmark = [pytest.mark.integration, pytest.mark.cfssl]

PEER_165 = os.environ.get("CFSSLPY_CFSSL_165") or str(Path(__file__).resolve().parents[3] / "shared/peers/cfssl-1.6.5/cfssl")
VERSIONS = {"1.2.0": "cfssl", "1.6.5": PEER_165}
OLD_2200 = "Private key algorithm is not RSA or ECC"


@pytest.fixture(params=sorted(VERSIONS))
def version(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param, need(VERSIONS[request.param], f"cfssl {request.param} is not installed")


@pytest.fixture(scope="module")
def parity(tmp_path_factory: pytest.TempPathFactory) -> Parity:
    return build_parity(tmp_path_factory.mktemp("parity"))


def cfssl_error(cfssl: str, args: list[str]) -> tuple[int, dict[str, object]]:
    proc = run(cfssl, "bundle", *args, check=False)
    lines = proc.stderr.decode().strip().splitlines()
    return proc.returncode, json.loads(lines[-1])


@pytest.mark.parametrize(("args", "code", "message"), [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS])
def test_bundle_errors_match_cfssl(
    version: tuple[str, str], run_cli: RunCli, parity: Parity, args: list[str], code: int, message: str | None
) -> None:
    name, cfssl = version
    status, theirs = cfssl_error(cfssl, scenario_args(parity, args))
    ours = run_cli("bundle", *scenario_args(parity, args))
    assert (status, ours.status) == (1, 1)
    assert theirs["code"] == ours.error["code"] == code
    if code == 1211:  # Go's message carries the current time: compare what follows it
        assert str(theirs["message"]).split(" is ")[-1] == ours.error["message"].split(" is ")[-1]
    elif code == 2200 and name == "1.2.0":
        assert theirs["message"] == OLD_2200 and ours.error["message"] == OLD_2200 + " or Ed25519"
    else:
        assert theirs["message"] == ours.error["message"]
        if message is not None:
            assert ours.error["message"] == message


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_get_bundle_on_serve(version: tuple[str, str], parity: Parity) -> None:
    name, cfssl = version
    port = free_port()
    key = parity.dir / "root-key.pem"
    key.write_bytes(
        parity.keys["root"].private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    command = [cfssl, "serve", "-address", "127.0.0.1", "-port", str(port), "-ca", parity.path("root.pem"), "-ca-key", str(key)]
    with process(command) as server:
        wait_port(port, server)
        status, headers, body = get(f"http://127.0.0.1:{port}/bundle")
    if name == "1.2.0":
        assert status == 404
    else:
        assert status == 200 and headers["Content-Type"].startswith("text/html") and b"<html" in body
    with serving("-ca", parity.path("root.pem"), "-ca-key", str(key)) as ours:
        status, headers, body = get(f"{ours.url}/bundle")
        assert (status, headers["Location"], body) == (302, "./#bundle", b"")
        status, headers, page = get(f"{ours.url}/")
        assert status == 200 and b'id="page-bundle"' in page


MKBUNDLE = {"1.2.0": "cfssl-mkbundle", "1.6.5": str(Path(PEER_165).with_name("mkbundle"))}


@pytest.mark.parametrize("release", sorted(MKBUNDLE))
def test_mkbundle_with_nothing_usable(release: str, run_cli: RunCli, tmp_path: Path) -> None:
    """Both cfssl versions write an empty bundle and exit 0; we exit 1 with a coded error and write nothing."""
    tool = need(MKBUNDLE[release], f"mkbundle {release} is not installed")
    source = tmp_path / "in"
    source.mkdir()
    (source / "junk.pem").write_text("not a certificate\n")
    proc = run(tool, "-f", str(tmp_path / "theirs.crt"), str(source), check=False)
    assert proc.returncode == 0 and (tmp_path / "theirs.crt").read_bytes() == b""
    ours = run_cli("mkbundle", "-f", str(tmp_path / "ours.crt"), str(source))
    assert ours.status == 1 and ours.error["code"] == 1002
    assert not (tmp_path / "ours.crt").exists()
