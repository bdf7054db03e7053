"""The web console in a real headless Chromium (the selenium setup of test_webui), against the real app with a
SQLite certificate database of 500 certificates: list, search and paging; the detail view, revoke, the CRL
download and the OCSP status; a key generated in the browser whose CSR the server signs, with no private key
in any request body; Inspect on a CSR and a CRL; every page without console errors.

On failure each test saves a screenshot, the page source and the browser log in a directory named in the
failure message (``CFSSLPY_WEBUI_ARTEFACTS=<dir>`` chooses it; default: a new temporary directory).
"""

from __future__ import annotations

import base64
import functools
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from api.test_console_api import _load_ca, _state, populate
from api.wsgi import config_json
from conftest import CA, need
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from integration.test_webui import by_id, choose, console_errors, driver, exists, fill, full_page_png, serve, text_of, wait_for

from cfsslpy.api.app import create_app
from cfsslpy.certdb import CertDB, DBConfig

__all__ = ["driver"]  # the module-scoped browser, imported for pytest

pytestmark = pytest.mark.integration

COUNT = 500
F = TypeVar("F", bound=Callable[..., Any])


# ---------------------------------------------------------------------------------------------------------
# artefacts on failure


def artefacts_on_failure(test: F) -> F:
    """Run ``test``; when it fails, save a full-page screenshot, the page source and the browser log of its
    ``driver`` and name the directory in the failure."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return test(*args, **kwargs)
        except BaseException as exc:
            browser = kwargs.get("driver")
            if browser is None:
                raise
            directory = Path(os.environ.get("CFSSLPY_WEBUI_ARTEFACTS") or tempfile.mkdtemp(prefix="webui-console-"))
            directory.mkdir(parents=True, exist_ok=True)
            stem = test.__name__
            try:
                (directory / f"{stem}.png").write_bytes(full_page_png(browser))
                (directory / f"{stem}.html").write_text(browser.page_source)
                (directory / f"{stem}.log.json").write_text(json.dumps(browser.get_log("browser"), indent=1))
            except Exception as saving:  # the browser itself may be what failed
                exc.add_note(f"(saving artefacts failed: {saving!r})")
            exc.add_note(f"web UI artefacts (screenshot, page source, browser log): {directory}")
            raise

    return run  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------------------
# the server: a signer, a SQLite certdb of 500 certificates, CRL, revoke, OCSP


@dataclass
class Console:
    url: str
    ca: CA
    ca_cert: x509.Certificate
    db: CertDB


def make_module_ca(directory: Path) -> CA:
    """An EC P-256 CA written as PEM files (the CLI runner is per test; this server lives for the module)."""
    import datetime as dt

    from cryptography.hazmat.primitives import hashes

    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Console Test CA")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    ca = CA(directory / "ca.pem", directory / "ca-key.pem", directory)
    ca.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    ca.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    ca.key.chmod(0o600)
    return ca


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    tmp = tmp_path_factory.mktemp("console")
    ca = make_module_ca(tmp / "ca")
    ca_cert, ca_key = _load_ca(ca)
    db = CertDB(DBConfig("sqlite3", str(tmp / "certs.db")))
    populate(db, ca_cert, ca_key, COUNT)
    app = create_app(_state(ca, db, config_json()))
    try:
        with serve(app) as url:
            yield Console(url, ca, ca_cert, db)
    finally:
        app.metrics.close()
        app.close()
        db.close()


def load(driver: Any, url: str, fragment: str = "") -> None:
    """The UI fresh from ``url`` (logs of earlier pages drained first), once its discovery is done."""
    driver.get("about:blank")
    driver.get_log("browser")
    driver.get_log("performance")
    driver.get(url + "/" + fragment)
    wait_for(driver, lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))


def go(driver: Any, name: str) -> None:
    """Open a tab (clicked in the page, so a scroll still settling cannot make the click miss) and wait for it."""
    driver.execute_script("arguments[0].click()", by_id(driver, f"tab-{name}"))
    wait_for(driver, lambda d: d.find_element("id", f"page-{name}").is_displayed())


def host(i: int) -> str:
    return f"host-{i:04d}.example.test"


def rows(driver: Any) -> list[str]:
    return list(driver.execute_script("return [...document.querySelectorAll('#certs-rows a.cert-link')].map(a => a.textContent)"))


def wait_rows(driver: Any, action: Callable[[], None]) -> None:
    """Do ``action`` and wait until the list has been re-rendered after it."""
    before = driver.execute_script("return document.getElementById('certs-rows').dataset.loaded || ''")
    action()
    wait_for(driver, lambda d: d.execute_script("return document.getElementById('certs-rows').dataset.loaded || ''") != before)


def downloads_to(driver: Any, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(directory)})
    return directory


def downloaded(driver: Any, path: Path) -> bytes:
    wait_for(driver, lambda d: path.exists() and path.stat().st_size > 0 and not Path(str(path) + ".crdownload").exists())
    return path.read_bytes()


# ---------------------------------------------------------------------------------------------------------
# tests


@artefacts_on_failure
def test_list_search_and_paging_over_500_certificates(driver: Any, console: Console) -> None:
    load(driver, console.url, "#certificates")
    assert by_id(driver, "tab-certificates").is_displayed() and by_id(driver, "page-certificates").is_displayed()
    wait_for(driver, lambda d: rows(d))
    assert text_of(driver, "certs-pageinfo") == f"Page 1 of 20 ({COUNT} certificates)"
    first = rows(driver)
    # soonest expiry first: the 10 expired ones (every 50th), then host 0, 1, 2, ...
    assert first[:10] == [host(i) for i in range(49, COUNT, 50)] and first[10:25] == [host(i) for i in range(15)]
    # expired, expiring-soon and revoked rows are visible at a glance
    badges = driver.execute_script(
        "return [...document.querySelectorAll('#certs-rows tr')].map(r => [r.className, r.querySelector('.badge').className, r.querySelector('.badge').textContent])"
    )
    by_cn = dict(zip(first, badges, strict=True))
    assert by_cn[host(49)][1] == "badge expired"
    assert by_cn[host(3)][0] == "cert-row is-expiring" and by_cn[host(3)][2] == "expiring soon"
    assert by_cn[host(6)][0] == "cert-row is-revoked" and by_cn[host(6)][2] == "revoked (keyCompromise)"
    assert by_cn[host(349)][2] == "revoked (keyCompromise)"  # revoked outranks expired
    assert by_id(driver, "certs-prev").get_attribute("disabled") is not None

    wait_rows(driver, lambda: by_id(driver, "certs-next").click())
    assert text_of(driver, "certs-pageinfo").startswith("Page 2 of 20")
    assert rows(driver) == [host(i) for i in range(15, 40)]
    good = driver.execute_script("return [...document.querySelectorAll('#certs-rows tr')].map(r => r.querySelector('.badge').textContent)")
    assert good[rows(driver).index(host(35))] == "good" and good[rows(driver).index(host(29))] == "expiring soon"
    wait_rows(driver, lambda: by_id(driver, "certs-prev").click())
    assert rows(driver) == first

    wait_rows(driver, lambda: choose(driver, "certs-size", "100"))
    assert text_of(driver, "certs-pageinfo") == f"Page 1 of 5 ({COUNT} certificates)" and len(rows(driver)) == 100
    for _ in range(4):
        wait_rows(driver, lambda: by_id(driver, "certs-next").click())
    assert text_of(driver, "certs-pageinfo") == f"Page 5 of 5 ({COUNT} certificates)" and len(rows(driver)) == 100
    assert by_id(driver, "certs-next").get_attribute("disabled") is not None

    # search: as the user types (debounced), by CN, SAN or serial
    wait_rows(driver, lambda: fill(driver, {"certs-q": "host-0042"}))
    assert rows(driver) == [host(42)] and text_of(driver, "certs-pageinfo") == "Page 1 of 1 (1 certificate)"
    wait_rows(driver, lambda: fill(driver, {"certs-q": "www.host-0123"}))
    assert rows(driver) == [host(123)]
    wait_rows(driver, lambda: fill(driver, {"certs-q": str(1000 + 321)}))
    assert rows(driver) == [host(321)]
    wait_rows(driver, lambda: fill(driver, {"certs-q": "no such host"}))
    assert rows(driver) == [] and "No certificates match." in text_of(driver, "certs-rows")

    # filters
    fill(driver, {"certs-q": ""})
    wait_rows(driver, lambda: choose(driver, "certs-status", "revoked"))
    revoked = [i for i in range(COUNT) if i % 7 == 6]
    assert text_of(driver, "certs-pageinfo") == f"Page 1 of 1 ({len(revoked)} certificates)"
    assert sorted(rows(driver)) == sorted(host(i) for i in revoked)
    wait_rows(driver, lambda: choose(driver, "certs-status", "expiring"))
    assert sorted(rows(driver)) == sorted(host(i) for i in range(30) if i % 7 != 6)
    wait_rows(driver, lambda: choose(driver, "certs-sort", "issued:desc"))
    assert rows(driver)[0] == host(29)
    assert console_errors(driver) == []


@artefacts_on_failure
def test_revoke_from_the_detail_view_then_the_crl_and_ocsp_say_so(driver: Any, console: Console, tmp_path: Path) -> None:
    target = 1010
    load(driver, console.url, "#certificates")
    wait_for(driver, lambda d: rows(d))
    wait_rows(driver, lambda: fill(driver, {"certs-q": str(target)}))
    assert rows(driver) == [host(10)]
    driver.find_element("css selector", "#certs-rows a.cert-link").click()
    wait_for(driver, lambda d: exists(d, "cert-detail-info") and exists(d, "cert-ocsp"))
    assert by_id(driver, "cert-detail-info").get_attribute("data-status") == "good"
    assert by_id(driver, "cert-ocsp").get_attribute("data-status") == "good"
    assert f"CN={host(10)}" in text_of(driver, "cert-detail-info") and str(target) in text_of(driver, "cert-detail-info")
    pem = text_of(driver, "cert-detail-pem")
    assert x509.load_pem_x509_certificate(pem.encode()).serial_number == target
    # the certificate downloads under its CN
    folder = downloads_to(driver, tmp_path / "downloads")
    by_id(driver, "cert-detail-pem").find_element("xpath", "..").find_element("xpath", ".//button[text()='Download']").click()
    assert downloaded(driver, folder / f"{host(10)}.pem").decode() == pem

    choose(driver, "revoke-reason", "keyCompromise")
    by_id(driver, "revoke-button").click()
    assert not by_id(driver, "revoke-button").is_displayed()
    by_id(driver, "revoke-confirm").click()
    detail_status = "const e = document.getElementById('cert-detail-info'); return e && e.dataset.status"
    wait_for(driver, lambda d: d.execute_script(detail_status) == "revoked")  # read in the page: it re-renders
    assert by_id(driver, "cert-ocsp").get_attribute("data-status") == "revoked"
    assert "revoked (keyCompromise)" in text_of(driver, "cert-ocsp")
    assert "Revoked." in text_of(driver, "cert-detail-note")
    assert not exists(driver, "revoke-button")  # a permanent revocation offers no second one
    (record,) = console.db.certificates_by_serial(str(target))
    assert record.status == "revoked" and record.reason == 1
    # the list is re-rendered behind the detail view (read in the page: its rows are replaced meanwhile)
    wait_for(driver, lambda d: "is-revoked" in d.execute_script("return document.querySelector('#certs-rows tr').className"))

    # the CA page: the CRL's number and next update, and the file lists the certificate
    go(driver, "ca")
    wait_for(driver, lambda d: d.find_element("id", "crl-block").is_displayed() and "Last CRL number" in text_of(d, "crl-summary"))
    by_id(driver, "crl-download").click()
    ca_cn = console.ca_cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    stem = str(ca_cn).replace(" ", "_")  # "Console Test CA" -> Console_Test_CA.crl
    crl = x509.load_der_x509_crl(downloaded(driver, folder / f"{stem}.crl"))
    crl.is_signature_valid(console.ca_cert.public_key())  # type: ignore[arg-type]
    entry = crl.get_revoked_certificate_by_serial_number(target)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    wait_for(driver, lambda d: "CRL number" in text_of(d, "crl-status"))
    status = text_of(driver, "crl-status")
    assert f"CRL number {number}, next update {crl.next_update_utc.strftime('%Y-%m-%dT%H:%M:%SZ')}" in status
    assert str(target) in text_of(driver, "crl-result")
    wait_for(driver, lambda d: f"Last CRL number issued{number}" in text_of(d, "crl-summary").replace("\n", ""))
    assert console_errors(driver) == []


RECORDER = """
window.__sent = [];
const original = window.fetch;
window.fetch = function (input, init) {
  window.__sent.push({url: String(input && input.url || input), body: init && typeof init.body === 'string' ? init.body : null});
  return original.apply(this, arguments);
};
"""


def sent_bodies(driver: Any) -> list[dict[str, Any]]:
    """What the page sent: the fetch wrapper's record, plus the POST bodies in Chrome's network log."""
    recorded = list(driver.execute_script("return window.__sent"))
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            request = message["params"]["request"]
            if request.get("postData") is not None:
                recorded.append({"url": request["url"], "body": request["postData"]})
    return recorded


def key_material(key: Any) -> list[str]:
    """Strings that would betray the private key: its PKCS#8 and raw forms in base64 and hex."""
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        secret = key.private_numbers().private_value.to_bytes((key.key_size + 7) // 8, "big")
    elif isinstance(key, rsa.RSAPrivateKey):
        numbers = key.private_numbers()
        secret = numbers.p.to_bytes((numbers.p.bit_length() + 7) // 8, "big")
    else:
        secret = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    needles = [base64.b64encode(der)[16:80].decode(), secret.hex(), secret.hex().upper()]
    needles.append(base64.b64encode(secret).decode()[:24])
    needles.append(base64.urlsafe_b64encode(secret).decode().rstrip("=")[:24])
    return needles


@artefacts_on_failure
def test_a_browser_generated_key_is_never_sent(driver: Any, console: Console, tmp_path: Path) -> None:
    openssl = need("openssl")
    hook = driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORDER})
    try:
        load(driver, console.url, "#request")
        choices = [("ecdsa", "256"), ("ecdsa", "384"), ("rsa", "2048")]
        if by_id(driver, "request-algo").find_element("css selector", "option[value=ed25519]").is_enabled():
            choices.append(("ed25519", ""))
        folder = downloads_to(driver, tmp_path / "downloads")
        for algo, size in choices:
            cn = f"browser-{algo}{size}.example.test"
            go(driver, "request")
            fill(
                driver,
                {
                    "request-cn": cn,
                    "request-hosts": f"{cn}, 10.1.2.3\n2001:db8::7, ops@example.test",
                    "request-o": "Browser Org",
                    "request-c": "NL",
                },
            )
            choose(driver, "request-algo", algo)
            if size:
                choose(driver, "request-size", size)
            choose(driver, "request-profile", "www")
            driver.find_element("css selector", "#request-form button[type=submit]").click()
            wait_for(driver, lambda d: exists(d, "request-certificate") or exists(d, "request-error"), timeout=90)
            assert not exists(driver, "request-error"), text_of(driver, "request-error")
            cert = x509.load_pem_x509_certificate(text_of(driver, "request-certificate").encode())
            cert.verify_directly_issued_by(console.ca_cert)
            key = serialization.load_pem_private_key(text_of(driver, "request-key").encode(), None)
            assert text_of(driver, "request-key").startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8
            assert key.public_key() == cert.public_key()
            if algo == "ecdsa":
                assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size == int(size)
            elif algo == "rsa":
                assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == int(size)
            else:
                assert isinstance(key, ed25519.Ed25519PrivateKey)
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            assert san.get_values_for_type(x509.DNSName) == [cn]
            assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.1.2.3", "2001:db8::7"]
            assert san.get_values_for_type(x509.RFC822Name) == ["ops@example.test"]
            # the www profile was used (server auth, 720h)
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            assert list(eku) == [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]

            # the wire: the CSR went to sign, no key material anywhere
            bodies = sent_bodies(driver)
            signs = [json.loads(b["body"]) for b in bodies if b["url"].endswith("/api/v1/cfssl/sign") and b["body"]]
            assert signs, bodies
            csr_pem = signs[-1]["certificate_request"]
            csr = x509.load_pem_x509_csr(csr_pem.encode())
            assert csr.is_signature_valid and csr.public_key() == key.public_key()
            assert csr.subject.rfc4514_string() == f"CN={cn},O=Browser Org,C=NL"
            check = subprocess.run(
                [openssl, "req", "-in", "-", "-noout", "-verify"], input=csr_pem, capture_output=True, text=True, check=False
            )
            assert check.returncode == 0 and "verify OK" in (check.stdout + check.stderr), check.stderr
            wire = "\n".join(str(b["body"]) for b in bodies if b["body"])
            assert "PRIVATE KEY" not in wire
            for needle in key_material(key):
                assert needle not in wire, needle
            # the downloads are named after the CN
            by_id(driver, "request-key").find_element("xpath", "..").find_element("xpath", ".//button[text()='Download']").click()
            assert downloaded(driver, folder / f"{cn}.key.pem").decode() == text_of(driver, "request-key")

        # the standalone generator sends nothing at all
        go(driver, "newkey")
        sent_bodies(driver)
        driver.execute_script("window.__sent = []")
        fill(driver, {"newkey-cn": "offline.example.test", "newkey-hosts": "offline.example.test"})
        driver.find_element("css selector", "#newkey-form button[type=submit]").click()
        wait_for(driver, lambda d: exists(d, "newkey-csr"))
        csr = x509.load_pem_x509_csr(text_of(driver, "newkey-csr").encode())
        assert csr.is_signature_valid
        assert sent_bodies(driver) == []
        assert console_errors(driver) == []
    finally:
        driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": hook["identifier"]})


@artefacts_on_failure
def test_inspect_a_browser_made_csr_a_chain_and_a_crl(driver: Any, console: Console) -> None:
    load(driver, console.url, "#newkey")
    fill(driver, {"newkey-cn": "inspect.example.test", "newkey-hosts": "inspect.example.test"})
    driver.find_element("css selector", "#newkey-form button[type=submit]").click()
    wait_for(driver, lambda d: exists(d, "newkey-csr"))
    csr_pem = text_of(driver, "newkey-csr")
    go(driver, "inspect")
    driver.execute_script("document.getElementById('inspect-pem').value = arguments[0]", csr_pem)
    driver.find_element("css selector", "#inspect-form button[type=submit]").click()
    wait_for(driver, lambda d: exists(d, "inspect-details") or exists(d, "inspect-error"))
    assert not exists(driver, "inspect-error"), text_of(driver, "inspect-error")
    details = text_of(driver, "inspect-object-0")
    assert by_id(driver, "inspect-object-0").get_attribute("data-type") == "csr"
    assert (
        "CN=inspect.example.test" in details and "DNS:inspect.example.test" in details and "Signature validyes" in details.replace("\n", "")
    )

    # a chain (leaf + CA) and a CRL, in one paste
    (record,) = console.db.certificates_by_serial("1003")
    crl_b64 = driver.execute_script("return fetch('api/v1/cfssl/crl').then(r => r.json()).then(e => e.result)")
    crl_pem = (
        "-----BEGIN X509 CRL-----\n" + "\n".join(crl_b64[i : i + 64] for i in range(0, len(crl_b64), 64)) + "\n-----END X509 CRL-----\n"
    )
    paste = record.pem + console.ca.cert.read_text() + crl_pem
    driver.execute_script("document.getElementById('inspect-pem').value = arguments[0]", paste)
    driver.find_element("css selector", "#inspect-form button[type=submit]").click()
    wait_for(driver, lambda d: exists(d, "inspect-object-2"))
    types = driver.execute_script("return [...document.querySelectorAll('#inspect-details > section')].map(s => s.dataset.type)")
    assert types == ["certificate", "certificate", "crl"]
    assert host(3) in text_of(driver, "inspect-object-0") and "CAyes" in text_of(driver, "inspect-object-1").replace("\n", "")
    assert "CRL number" in text_of(driver, "inspect-object-2")
    assert console_errors(driver) == []


@artefacts_on_failure
def test_every_page_has_no_console_errors(driver: Any, console: Console) -> None:
    load(driver, console.url)
    visible = [p for p in ("certificates", "request", "newkey", "inspect", "ca", "bundle") if by_id(driver, f"tab-{p}").is_displayed()]
    assert visible == ["certificates", "request", "newkey", "inspect", "ca"]  # no bundler: no bundle tab
    assert by_id(driver, "page-certificates").is_displayed()  # the console is the first page with a certdb
    for name in visible:
        by_id(driver, f"tab-{name}").click()
        wait_for(driver, lambda d, n=name: d.find_element("id", f"page-{n}").is_displayed())
    # the profile picker holds the server's profiles; the auth key field shows for a profile with an auth key only
    go(driver, "request")
    options = driver.execute_script("return [...document.getElementById('request-profile').options].map(o => o.value)")
    assert options == ["", "auth", "client", "www"]
    assert not by_id(driver, "request-authkey").is_displayed()
    choose(driver, "request-profile", "auth")
    assert by_id(driver, "request-authkey").is_displayed() and "needs its auth key" in text_of(driver, "request-profile-info")
    go(driver, "ca")
    driver.find_element("css selector", "#ca-form button[type=submit]").click()
    wait_for(driver, lambda d: exists(d, "ca-details"))
    assert console_errors(driver) == []

    # a server without a certificate database hides the console and asks nothing of it
    from cfsslpy.api.state import ApiState

    with serve(create_app(ApiState())) as url:
        load(driver, url, "#certificates")
        assert not by_id(driver, "tab-certificates").is_displayed() and by_id(driver, "page-inspect").is_displayed()
        assert not by_id(driver, "crl-block").is_displayed()
        assert console_errors(driver) == []

    # a bundler that does not trust this CA (serve without -ca-bundle): the Bundle tab says so up front
    from cfsslpy.bundler import Bundler

    state = _state(console.ca, None)
    state.bundler = Bundler([], fetch_aia=False)
    with serve(create_app(state)) as url:
        load(driver, url, "#bundle")
        assert by_id(driver, "tab-bundle").is_displayed() and by_id(driver, "bundle-untrusted").is_displayed()
        assert not by_id(driver, "tab-certificates").is_displayed()
        assert console_errors(driver) == []
