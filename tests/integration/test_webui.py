"""The embedded web UI in a real headless Chromium (Debian's chromium + chromium-driver), against the real app.

The app is served by wsgiref on 127.0.0.1 in a thread; the browser must load everything from there (no CDN,
no console errors), and the certificates it shows are parsed with cryptography and verified against the CA.
Set CFSSLPY_WEBUI_SCREENSHOTS=<dir> to keep screenshots of each page.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from servers import serve_wsgi as serve

from cfsslpy.api.state import ApiState
from cfsslpy.config import Config
from cfsslpy.signer import LocalSigner, load_issuer
from tests.conftest import CA, REQUIRE_INTEGRATION, RunCli, make_ca, need

pytestmark = pytest.mark.integration

AUTH_KEY = "0123456789ABCDEF0123456789ABCDEF"
LONG_KEY = "ab" * 100  # longer than SHA-256's block: HMAC hashes it first
CONFIG = {
    "signing": {
        "default": {"usages": ["digital signature", "key encipherment", "server auth"], "expiry": "720h"},
        "profiles": {
            "authed": {"usages": ["digital signature", "server auth", "client auth"], "expiry": "240h", "auth_key": "primary"},
            "long": {"usages": ["digital signature", "server auth"], "expiry": "24h", "auth_key": "long"},
        },
    },
    "auth_keys": {"primary": {"type": "standard", "key": AUTH_KEY}, "long": {"type": "standard", "key": LONG_KEY}},
}
WAIT = 30.0


# ---------------------------------------------------------------------------------------------------------
# the server


@dataclass
class Site:
    url: str
    ca: CA
    ca_cert: x509.Certificate


@pytest.fixture
def site(run_cli: RunCli, tmp_path: Path) -> Iterator[Site]:
    from cfsslpy.api.app import create_app

    ca = make_ca(run_cli, tmp_path / "ca")
    config = Config.from_json_bytes(json.dumps(CONFIG).encode())
    signer = LocalSigner(load_issuer(str(ca.cert), str(ca.key)), config.signing)
    app = create_app(ApiState(signer=signer, policy=config.signing, config=config))
    with serve(app) as url:
        yield Site(url, ca, x509.load_pem_x509_certificate(ca.cert.read_bytes()))


# ---------------------------------------------------------------------------------------------------------
# the browser


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    chromium = need("chromium")
    chromedriver = need("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        if REQUIRE_INTEGRATION:
            pytest.fail("selenium is not installed (pip install selenium; required: CFSSLPY_REQUIRE_INTEGRATION=1)")
        pytest.skip("selenium is not installed (pip install selenium)")

    profile = tmp_path_factory.mktemp("chromium-profile")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--no-first-run",
        "--no-default-browser-check",
        "--window-size=1280,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # an explicit driver path: selenium-manager never runs, so nothing is downloaded
    service = Service(executable_path=chromedriver)
    browser = webdriver.Chrome(service=service, options=options)
    try:
        browser.set_page_load_timeout(WAIT)
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def page(driver: Any, site: Site) -> Iterator[Any]:
    """The UI loaded fresh from ``site``; logs from earlier tests are drained first."""
    driver.get("about:blank")
    driver.get_log("browser")
    driver.get_log("performance")
    driver.get(site.url + "/")
    wait_for(driver, lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
    yield driver
    shots = os.environ.get("CFSSLPY_WEBUI_SCREENSHOTS")
    if shots:
        name = os.environ.get("PYTEST_CURRENT_TEST", "x").split("::")[-1].split(" ")[0]
        Path(shots).mkdir(parents=True, exist_ok=True)
        (Path(shots) / f"webui-{name}.png").write_bytes(full_page_png(driver))


def full_page_png(driver: Any) -> bytes:
    """The whole page, not only the viewport."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
    return base64.b64decode(shot["data"])


def wait_for(driver: Any, condition: Callable[[Any], Any], timeout: float = WAIT) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def by_id(driver: Any, element_id: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def text_of(driver: Any, element_id: str) -> str:
    return str(by_id(driver, element_id).get_attribute("textContent"))


def exists(driver: Any, element_id: str) -> bool:
    return bool(driver.execute_script("return document.getElementById(arguments[0]) !== null", element_id))


def fill(driver: Any, values: dict[str, str]) -> None:
    for element_id, value in values.items():
        field = by_id(driver, element_id)
        field.clear()
        field.send_keys(value)


def choose(driver: Any, select_id: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(by_id(driver, select_id)).select_by_value(value)


def open_tab(driver: Any, name: str) -> None:
    by_id(driver, f"tab-{name}").click()
    wait_for(driver, lambda d: by_id(d, f"page-{name}").is_displayed())


def submit(driver: Any, page_name: str, done_ids: tuple[str, ...]) -> str:
    """Submit a page's form and wait until one of ``done_ids`` or the page's error appears; return which."""
    by_id(driver, f"{page_name}-form").find_element("css selector", "button[type=submit]").click()
    candidates = (*done_ids, f"{page_name}-error")
    found: str = wait_for(driver, lambda d: next((i for i in candidates if exists(d, i)), False))
    return found


def console_errors(driver: Any) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]


def requested_urls(driver: Any) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def shown_certificate(driver: Any, element_id: str) -> x509.Certificate:
    pem = text_of(driver, element_id)
    assert pem.startswith("-----BEGIN CERTIFICATE-----"), pem
    return x509.load_pem_x509_certificate(pem.encode())


def sans(cert: x509.Certificate) -> list[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [*ext.get_values_for_type(x509.DNSName), *(str(ip) for ip in ext.get_values_for_type(x509.IPAddress))]


def common_name(name: x509.Name) -> str:
    return str(name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


# ---------------------------------------------------------------------------------------------------------
# tests


def test_page_loads_everything_locally_without_console_errors(page: Any, site: Site) -> None:
    # give the endpoint discovery and the favicon time to finish, then look at everything that happened
    time.sleep(0.5)
    assert console_errors(page) == []
    urls = requested_urls(page)
    origin = urlsplit(site.url)
    assert any(u.endswith("/static/app.js") for u in urls) and any(u.endswith("/static/app.css") for u in urls), urls
    # anything that could leave the machine goes to our server (chrome:// and data: are the browser's own)
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https", "ws", "wss", "ftp"):
            assert (parts.scheme, parts.netloc) == ("http", origin.netloc), url
        else:
            assert parts.scheme in ("data", "blob", "about", "chrome"), url
    # the same from the page's own view: every resource it loaded is on our origin
    entries = page.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert entries and all(urlsplit(e).netloc == origin.netloc for e in entries), entries
    assert page.title == "cfsslpy"
    assert by_id(page, "page-inspect").is_displayed()
    # no bundle endpoint on this server: no bundle tab
    assert not by_id(page, "tab-bundle").is_displayed()
    assert "newcert" in page.execute_script("return document.body.dataset.endpoints").split()


def test_every_form_control_has_a_label(page: Any) -> None:
    unlabeled = page.execute_script(
        """return [...document.querySelectorAll('input:not([type=radio]), select, textarea')]
             .filter(e => !document.querySelector('label[for="' + e.id + '"]')).map(e => e.id || e.outerHTML)"""
    )
    assert unlabeled == []
    ids = page.execute_script("return [...document.querySelectorAll('[id]')].map(e => e.id)")
    assert len(ids) == len(set(ids))


def test_newcert_issues_a_certificate_that_verifies(page: Any, site: Site) -> None:
    open_tab(page, "request")
    fill(page, {"request-cn": "web.example.test", "request-hosts": "web.example.test, www.example.test\n127.0.0.1"})
    assert submit(page, "request", ("request-certificate",)) == "request-certificate"
    cert = shown_certificate(page, "request-certificate")
    assert common_name(cert.subject) == "web.example.test"
    assert sans(cert) == ["web.example.test", "www.example.test", "127.0.0.1"]
    cert.verify_directly_issued_by(site.ca_cert)
    # the private key shown belongs to the certificate
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(text_of(page, "request-key").encode(), None)
    assert key.public_key() == cert.public_key()
    # and the page describes what it issued through certinfo
    wait_for(page, lambda d: d.find_elements("css selector", "#request-details table"))
    details = text_of(page, "request-details")
    assert "CN=web.example.test" in details and str(cert.serial_number) in details and "www.example.test" in details
    assert console_errors(page) == []


def test_sign_an_existing_csr_with_a_host_override(page: Any, site: Site) -> None:
    from cryptography.hazmat.primitives import hashes, serialization

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pasted.example.test")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("old.example.test")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    open_tab(page, "request")
    by_id(page, "request-mode-sign").click()
    assert not by_id(page, "request-cn").is_displayed()
    page.execute_script(
        "document.getElementById('request-csr').value = arguments[0]", csr.public_bytes(serialization.Encoding.PEM).decode()
    )
    fill(page, {"request-sign-hosts": "new.example.test"})
    assert submit(page, "request", ("request-certificate",)) == "request-certificate"
    cert = shown_certificate(page, "request-certificate")
    assert common_name(cert.subject) == "pasted.example.test"
    assert sans(cert) == ["new.example.test"]
    assert cert.public_key() == key.public_key()
    cert.verify_directly_issued_by(site.ca_cert)
    assert not exists(page, "request-key")  # no key was generated here


def test_newkey_shows_key_and_csr_and_downloads_the_key(page: Any, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    page.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    open_tab(page, "newkey")
    fill(page, {"newkey-cn": "key.example.test", "newkey-hosts": "key.example.test", "newkey-o": "Example Org", "newkey-c": "FR"})
    choose(page, "newkey-algo", "rsa")
    assert page.execute_script("return [...document.getElementById('newkey-size').options].map(o => o.value)") == ["2048", "3072", "4096"]
    choose(page, "newkey-size", "2048")
    assert submit(page, "newkey", ("newkey-csr",)) == "newkey-csr"
    key = serialization.load_pem_private_key(text_of(page, "newkey-key").encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    csr = x509.load_pem_x509_csr(text_of(page, "newkey-csr").encode())
    assert csr.is_signature_valid and csr.public_key() == key.public_key()
    assert common_name(csr.subject) == "key.example.test"
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Example Org"
    assert csr.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "FR"
    # Download goes through a Blob URL (allowed by the CSP) and writes the exact PEM
    block = by_id(page, "newkey-key").find_element("xpath", "..")
    block.find_element("xpath", ".//button[text()='Download']").click()
    # generated in the browser (PKCS#8), downloaded under the CN's name
    saved = downloads / "key.example.test.key.pem"
    wait_for(page, lambda d: saved.exists() and saved.stat().st_size > 0)
    assert saved.read_text() == text_of(page, "newkey-key")
    assert text_of(page, "newkey-key").startswith("-----BEGIN PRIVATE KEY-----")
    copy_button = block.find_element("xpath", ".//button[text()='Copy']")
    copy_button.click()
    wait_for(page, lambda d: copy_button.text == "Copied")
    assert console_errors(page) == []


def test_newkey_refuses_a_key_size_it_does_not_offer(page: Any) -> None:
    """Keys are made in the browser: a size the form does not offer (1024-bit RSA) is refused there."""
    open_tab(page, "newkey")
    choose(page, "newkey-algo", "rsa")
    page.execute_script("const s = document.getElementById('newkey-size'); s.append(new Option('1024', '1024')); s.value = '1024'")
    assert submit(page, "newkey", ("newkey-csr",)) == "newkey-error"
    assert text_of(page, "newkey-error") == "Error: unknown key type rsa-1024"
    assert by_id(page, "newkey-error").get_attribute("role") == "alert"


def test_ca_page_shows_the_signer(page: Any, site: Site) -> None:
    open_tab(page, "ca")
    assert submit(page, "ca", ("ca-certificate",)) == "ca-certificate"
    assert shown_certificate(page, "ca-certificate") == site.ca_cert
    profile = text_of(page, "ca-profile-info")
    assert "720h" in profile and "server auth" in profile
    choose(page, "ca-profile", "authed")
    assert submit(page, "ca", ("ca-certificate",)) == "ca-certificate"
    wait_for(page, lambda d: "240h" in text_of(d, "ca-profile-info"))
    assert "client auth" in text_of(page, "ca-profile-info")
    wait_for(page, lambda d: d.find_elements("css selector", "#ca-details table"))
    assert f"CN={common_name(site.ca_cert.subject)}" in text_of(page, "ca-details")


def test_inspect_describes_a_certificate(page: Any, site: Site) -> None:
    page.execute_script("document.getElementById('inspect-pem').value = arguments[0]", site.ca.cert.read_text())
    assert submit(page, "inspect", ("inspect-details",)) == "inspect-details"
    details = text_of(page, "inspect-details")
    assert f"CN={common_name(site.ca_cert.subject)}" in details and str(site.ca_cert.serial_number) in details
    fill(page, {"inspect-pem": "not a certificate"})
    assert submit(page, "inspect", ("inspect-details",)) == "inspect-error"
    assert text_of(page, "inspect-error").startswith("Error ")
    assert not exists(page, "inspect-hint")


def test_inspect_describes_a_csr(page: Any) -> None:
    """Inspect goes through the console's parse endpoint, which describes CSRs too (certinfo refused them: 1003)."""
    from cryptography.hazmat.primitives import hashes, serialization

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csr.example.test")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("csr.example.test")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    page.execute_script(
        "document.getElementById('inspect-pem').value = arguments[0]", csr.public_bytes(serialization.Encoding.PEM).decode()
    )
    assert submit(page, "inspect", ("inspect-details",)) == "inspect-details"
    details = text_of(page, "inspect-details")
    assert "Certificate request" in details and "CN=csr.example.test" in details and "DNS:csr.example.test" in details
    assert "ECDSA secp256r1" in details
    assert console_errors(page) == []


def _authsign(page: Any, key: str, profile: str = "authed", csr: str | None = None) -> str:
    """Request a certificate with an auth key: a key made in the browser, or the pasted ``csr``."""
    open_tab(page, "request")
    choose(page, "request-profile", profile)
    if csr is None:
        fill(page, {"request-cn": "authed.example.test", "request-hosts": "authed.example.test"})
    else:
        page.execute_script("document.getElementById('request-csr').value = arguments[0]", csr)
    fill(page, {"request-authkey": key})
    return submit(page, "request", ("request-certificate",))


def _pasted_csr() -> str:
    from cryptography.hazmat.primitives import hashes, serialization

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "authed.example.test")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("authed.example.test")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def test_authsign_with_the_profile_key_issues_a_certificate(page: Any, site: Site) -> None:
    assert _authsign(page, AUTH_KEY.lower()) == "request-certificate"
    cert = shown_certificate(page, "request-certificate")
    assert common_name(cert.subject) == "authed.example.test" and sans(cert) == ["authed.example.test"]
    cert.verify_directly_issued_by(site.ca_cert)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH in eku  # the "authed" profile was used
    assert exists(page, "request-key")


def test_authsign_with_a_wrong_key_shows_the_error(page: Any) -> None:
    assert _authsign(page, "00" * 16) == "request-error"
    assert text_of(page, "request-error") == "Error 400: invalid token"
    assert not exists(page, "request-certificate")


def test_authsign_token_without_webcrypto(driver: Any, site: Site) -> None:
    """Over plain http on a non-loopback address there is no crypto.subtle: no key can be made in the browser (the
    page offers the paste-a-CSR mode only), and the page's own SHA-256 computes the authsign token."""
    hook = driver.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument",
        {"source": "Object.defineProperty(Crypto.prototype, 'subtle', {get() { return undefined; }, configurable: true});"},
    )
    try:
        driver.get(site.url + "/#request")
        wait_for(driver, lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
        assert driver.execute_script("return window.crypto.subtle === undefined")
        assert by_id(driver, "request-keygen-note").is_displayed()
        assert by_id(driver, "request-mode-sign").is_selected() and not by_id(driver, "request-mode-newcert").is_enabled()
        assert not by_id(driver, "tab-newkey").is_displayed()
        assert _authsign(driver, AUTH_KEY, csr=_pasted_csr()) == "request-certificate"
        shown_certificate(driver, "request-certificate").verify_directly_issued_by(site.ca_cert)
        # a key longer than SHA-256's block is hashed first (RFC 2104); the request spans many blocks
        assert _authsign(driver, LONG_KEY, profile="long", csr=_pasted_csr()) == "request-certificate"
        shown_certificate(driver, "request-certificate").verify_directly_issued_by(site.ca_cert)
        assert _authsign(driver, AUTH_KEY[:-2] + "00", csr=_pasted_csr()) == "request-error"
        assert text_of(driver, "request-error") == "Error 400: invalid token"
    finally:
        driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": hook["identifier"]})


def test_pages_follow_the_registered_endpoints(driver: Any) -> None:
    """Without a signer (and with newkey disabled) only the pages the server can answer are offered, and the
    browser-side key generator (which needs no endpoint)."""
    from cfsslpy.api.app import create_app

    with serve(create_app(ApiState(disable=frozenset({"newkey"})))) as url:
        driver.get(url + "/#request")
        wait_for(driver, lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
        visible = [name for name in ("inspect", "newkey", "request", "ca", "bundle") if by_id(driver, f"tab-{name}").is_displayed()]
        assert visible == ["inspect", "newkey"]
        assert by_id(driver, "page-inspect").is_displayed() and not by_id(driver, "page-request").is_displayed()


def test_bundle_page_shows_the_chain(driver: Any, tmp_path: Path) -> None:
    """A server with a bundler offers the bundle page: a pasted leaf comes back with its chain to the root, the
    bundler's status messages are shown, a DER file can be loaded, and a domain mismatch is the API's 1200."""
    from api.test_api_bundle import build_pki
    from cryptography.hazmat.primitives import serialization

    from cfsslpy.api.app import create_app
    from cfsslpy.bundler import Bundler

    pki = build_pki(tmp_path / "pki")
    bundler = Bundler.from_files(str(pki.ca_bundle), str(pki.int_bundle))
    with serve(create_app(ApiState(bundler=bundler))) as url:
        driver.get("about:blank")
        driver.get_log("browser")
        driver.get(url + "/#bundle")
        wait_for(driver, lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
        assert by_id(driver, "tab-bundle").is_displayed() and by_id(driver, "page-bundle").is_displayed()
        assert by_id(driver, "bundle-flavor").get_attribute("value") == "ubiquitous"

        driver.execute_script("document.getElementById('bundle-pem').value = arguments[0]", pki.pem(pki.leaf))
        assert submit(driver, "bundle", ("bundle-chain",)) == "bundle-chain"
        # the chain, leaf to root, each described through certinfo
        wait_for(driver, lambda d: "…" not in text_of(d, "bundle-chain-list"))
        roles = driver.execute_script("return [...document.querySelectorAll('#bundle-chain-list li')].map(li => li.dataset.role)")
        assert roles == ["leaf", "intermediate", "root"]
        chain_text = text_of(driver, "bundle-chain-list")
        assert chain_text.index("leaf.example.test") < chain_text.index("Bundle Test Intermediate") < chain_text.rindex("Bundle Test Root")
        shown = x509.load_pem_x509_certificates(text_of(driver, "bundle-chain").encode())
        assert shown == [pki.leaf, pki.inter]
        assert shown_certificate(driver, "bundle-root") == pki.root
        assert x509.load_pem_x509_certificates(text_of(driver, "bundle-full").encode()) == [pki.leaf, pki.inter, pki.root]
        # the bundler's own messages (no -metadata here) and the summary
        assert "No platform metadata present" in text_of(driver, "bundle-status")
        assert exists(driver, "bundle-message-0")
        summary = text_of(driver, "bundle-summary")
        assert "www.example.test" in summary and "256-bit ECDSA" in summary
        assert console_errors(driver) == []
        shots = os.environ.get("CFSSLPY_WEBUI_SCREENSHOTS")
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            (Path(shots) / "webui-bundle.png").write_bytes(full_page_png(driver))

        # a DER file loaded from disk, checked against a domain it is not valid for
        der = tmp_path / "leaf.der"
        der.write_bytes(pki.leaf.public_bytes(serialization.Encoding.DER))
        driver.execute_script("document.getElementById('bundle-pem').value = ''")
        by_id(driver, "bundle-file").send_keys(str(der))
        wait_for(driver, lambda d: by_id(d, "bundle-pem").get_attribute("value").startswith("-----BEGIN CERTIFICATE-----"))
        loaded = x509.load_pem_x509_certificate(str(by_id(driver, "bundle-pem").get_attribute("value")).encode())
        assert loaded == pki.leaf
        fill(driver, {"bundle-domain": "other.example.test"})
        assert submit(driver, "bundle", ("bundle-chain",)) == "bundle-error"
        assert text_of(driver, "bundle-error") == (
            "Error 1200: x509: certificate is valid for leaf.example.test, www.example.test, not other.example.test"
        )
        fill(driver, {"bundle-domain": "www.example.test"})
        choose(driver, "bundle-flavor", "optimal")
        assert submit(driver, "bundle", ("bundle-chain",)) == "bundle-chain"
