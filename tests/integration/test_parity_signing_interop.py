"""Issue 11's unsafe signing defaults through the real cfssl 1.2.0 (/usr/bin/cfssl) and 1.6.5 (../shared/peers).

Observed with both versions (the same in each), and asserted here next to what we do instead:

* an expired CA, and a CA that is not valid yet, sign: exit 0, no warning, a leaf valid for the profile's
  8760h from now (we: 1211, exit 1, nothing on stdout);
* a CA with ten days left issues a leaf valid for a year (we cut its notAfter to the CA's, with a WARNING);
* ``sign``/``gencert``/``info -profile TYPO`` use the default profile silently, exit 0 (we: 5400);
* a ``name_whitelist`` of DNS names lets any IP SAN through, from the CSR or from ``-hostname`` (we: 5500);
* the real ``cfssl sign -remote`` against our ``serve`` with an unknown profile gets our 400 envelope (5400),
  which it reports as 7400 with the envelope as message, exit 1, no certificate.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.conftest import CA, RunCli, need
from tests.integration.helpers import run
from tests.integration.test_serve import serving
from tests.test_parity_signing import (
    DAY,
    UNKNOWN_PROFILE,
    WHITELISTED,
    ca_flags,
    cert_of,
    config_file,
    csr_pem,
    dated_ca,
    ekus,
    expired_ca,
    expiring_ca,
    future_ca,
    now,
    write,
)

pytestmark = [pytest.mark.integration, pytest.mark.cfssl]

PEER_165 = os.environ.get("CFSSLPY_CFSSL_165") or str(Path(__file__).resolve().parents[3] / "shared/peers/cfssl-1.6.5/cfssl")
VERSIONS = {"1.2.0": "cfssl", "1.6.5": PEER_165}
YEAR = dt.timedelta(hours=8760)


@pytest.fixture(params=sorted(VERSIONS))
def cfssl(request: pytest.FixtureRequest) -> str:
    return need(VERSIONS[request.param], f"cfssl {request.param} is not installed")


def theirs(cfssl: str, *args: str) -> tuple[int, dict[str, Any], str]:
    """(exit status, stdout JSON or {}, stderr) of the real cfssl."""
    proc = run(cfssl, *args, check=False)
    out = proc.stdout.decode()
    return proc.returncode, json.loads(out) if proc.returncode == 0 and out.strip() else {}, proc.stderr.decode()


def their_cert(cfssl: str, *args: str) -> x509.Certificate:
    status, out, stderr = theirs(cfssl, *args)
    assert status == 0, stderr
    return x509.load_pem_x509_certificate(out["cert"].encode())


@pytest.fixture
def csr(tmp_path: Path) -> Path:
    return write(tmp_path / "leaf.csr", csr_pem())


@pytest.mark.parametrize("make", [expired_ca, future_ca], ids=["expired", "future"])
def test_a_ca_outside_its_validity(cfssl: str, run_cli: RunCli, tmp_path: Path, csr: Path, make: Any) -> None:
    ca: CA = make(tmp_path / "ca")
    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    leaf = their_cert(cfssl, "sign", *ca_flags(ca), str(csr))
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == YEAR  # cfssl: signed as if the CA were fine
    assert not ca_cert.not_valid_before_utc <= dt.datetime.now(dt.timezone.utc) <= ca_cert.not_valid_after_utc
    ours = run_cli("sign", *ca_flags(ca), str(csr))
    assert (ours.status, ours.stdout, ours.error["code"]) == (1, "", 1211)


def test_a_leaf_outliving_its_ca(cfssl: str, run_cli: RunCli, tmp_path: Path, csr: Path) -> None:
    ca = expiring_ca(tmp_path / "ca")
    ca_end = x509.load_pem_x509_certificate(ca.cert.read_bytes()).not_valid_after_utc
    their_leaf = their_cert(cfssl, "sign", *ca_flags(ca), str(csr))
    assert their_leaf.not_valid_after_utc > ca_end + 300 * DAY
    our_leaf = cert_of(run_cli("sign", *ca_flags(ca), str(csr)))
    assert our_leaf.not_valid_after_utc == ca_end
    assert abs(our_leaf.not_valid_before_utc - their_leaf.not_valid_before_utc) <= dt.timedelta(minutes=1)  # same start rule


@pytest.fixture
def good_ca(tmp_path: Path) -> CA:
    return dated_ca(tmp_path / "good", now() - DAY, now() + 3650 * DAY, "good")


def test_an_unknown_profile_on_sign_and_gencert(cfssl: str, run_cli: RunCli, tmp_path: Path, good_ca: CA, csr: Path) -> None:
    cfg = config_file(tmp_path)
    args = ("-config", str(cfg), "-profile", "clinet")
    their_leaf = their_cert(cfssl, "sign", *ca_flags(good_ca), *args, str(csr))
    assert ekus(their_leaf) == [ExtendedKeyUsageOID.SERVER_AUTH]  # the default profile's, not client auth
    spec = write(tmp_path / "leaf.json", {"CN": "leaf.example.com", "hosts": ["leaf.example.com"]})
    assert theirs(cfssl, "gencert", *ca_flags(good_ca), *args, str(spec))[0] == 0
    for command, target in (("sign", csr), ("gencert", spec)):
        ours = run_cli(command, *ca_flags(good_ca), *args, str(target))
        assert (ours.status, ours.stdout, ours.error) == (1, "", UNKNOWN_PROFILE), command


def test_an_unknown_profile_on_info(cfssl: str, run_cli: RunCli, tmp_path: Path, good_ca: CA) -> None:
    cfg = config_file(tmp_path)
    status, out, stderr = theirs(cfssl, "info", *ca_flags(good_ca), "-config", str(cfg), "-profile", "nope")
    assert (status, out["usages"], out["expiry"]) == (0, ["signing", "server auth"], "8760h"), stderr
    ours = run_cli("info", *ca_flags(good_ca), "-config", str(cfg), "-profile", "nope")
    assert (ours.status, ours.error) == (1, UNKNOWN_PROFILE)


def test_name_whitelist_and_ip_sans(cfssl: str, run_cli: RunCli, tmp_path: Path, good_ca: CA) -> None:
    cfg = config_file(tmp_path, {"wl": WHITELISTED})
    flags = (*ca_flags(good_ca), "-config", str(cfg), "-profile", "wl")
    in_csr = write(tmp_path / "ip.csr", csr_pem("www.example.com", ("www.example.com", "10.9.9.9")))
    plain = write(tmp_path / "dns.csr", csr_pem("www.example.com", ("www.example.com",)))
    for extra, request in (((), in_csr), (("-hostname", "www.example.com,10.1.1.1,::1"), plain)):
        leaf = their_cert(cfssl, "sign", *flags, *extra, str(request))
        assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.IPAddress)
        ours = run_cli("sign", *flags, *extra, str(request))
        assert (ours.status, ours.stdout, ours.error["code"]) == (1, "", 5500)
    # a DNS-only request passes both
    assert their_cert(cfssl, "sign", *flags, str(plain))
    assert cert_of(run_cli("sign", *flags, str(plain)))


def test_the_cfssl_client_gets_our_5400(cfssl: str, tmp_path: Path, good_ca: CA, csr: Path) -> None:
    cfg = config_file(tmp_path)
    with serving(*ca_flags(good_ca), "-config", str(cfg)) as server:
        remote = f"http://127.0.0.1:{server.port}"
        status, out, stderr = theirs(cfssl, "sign", "-remote", remote, "-profile", "clinet", str(csr))
        assert status != 0 and out == {}
        # cfssl's client wraps a non-200 answer as 7400 with the body (our envelope) as its message
        error = json.loads(stderr.strip().splitlines()[-1])
        assert error["code"] == 7400 and json.loads(error["message"])["errors"] == [UNKNOWN_PROFILE]
        leaf = their_cert(cfssl, "sign", "-remote", remote, "-profile", "client", str(csr))
    assert ekus(leaf) == [ExtendedKeyUsageOID.CLIENT_AUTH]
