"""cfsslpy.net: the one outbound HTTP fetch and TLS dialer, against a real loopback HTTP server."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cfsslpy import net
from cfsslpy.errors import CfsslError


@dataclass
class Seen:
    """What the test server received: (method, request target, body) per request."""

    requests: list[tuple[str, str, bytes]] = field(default_factory=list)
    proxy_authorization: list[str] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    seen: Seen
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._route()

    def do_POST(self) -> None:  # noqa: N802
        self._route()

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self) -> None:  # noqa: C901 - one branch per scenario
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.requests.append((self.command, self.path, body))
        self.seen.proxy_authorization.append(self.headers.get("Proxy-Authorization", ""))
        path = self.path.split("://", 1)[-1].partition("/")[2] if "://" in self.path else self.path.lstrip("/")
        if path == "ok":
            self._send(200, b"hello")
        elif path.startswith("hop/"):  # hop/N redirects N more times, then answers
            n = int(path.split("/")[1])
            self._send(302, headers={"Location": f"/hop/{n - 1}"}) if n else self._send(200, b"arrived")
        elif path in ("see-other", "temporary"):
            self._send(303 if path == "see-other" else 307, headers={"Location": "/echo"})
        elif path == "echo":
            self._send(200, self.command.encode() + b" " + body)
        elif path == "to-file":
            self._send(302, headers={"Location": "file:///etc/passwd"})
        elif path == "huge-announced":  # announces a gigabyte, sends a little, then holds the connection
            self._send(200, b"x" * 10, headers={"Content-Length": str(1 << 30)})
            time.sleep(3)
        elif path == "stream":  # no length: bytes until the client gives up
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            with contextlib.suppress(OSError):
                for _ in range(2000):
                    self.wfile.write(b"y" * 4096)
        elif path == "drip":  # one byte every 100 ms, forever (as far as the client can tell)
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            with contextlib.suppress(OSError):
                for _ in range(100):
                    self.wfile.write(b"z")
                    self.wfile.flush()
                    time.sleep(0.1)
        else:
            self._send(404, b"nope")


@contextlib.contextmanager
def server() -> Iterator[tuple[str, Seen]]:
    seen = Seen()
    handler = type("BoundHandler", (Handler,), {"seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)


def test_get_returns_status_headers_and_body() -> None:
    with server() as (base, seen):
        response = net.fetch(f"{base}/ok", max_bytes=100, timeout=5)
        assert (response.status, response.body, response.headers["content-length"]) == (200, b"hello", "5")
        missing = net.fetch(f"{base}/missing", max_bytes=100, timeout=5)
        assert (missing.status, missing.body) == (404, b"nope")  # any status is a response; callers decide
        assert [r[:2] for r in seen.requests] == [("GET", "/ok"), ("GET", "/missing")]


def test_redirects_are_followed_up_to_the_limit_then_returned() -> None:
    with server() as (base, seen):
        response = net.fetch(f"{base}/hop/2", max_bytes=100, timeout=5, redirects=2)
        assert (response.status, response.body, response.url) == (200, b"arrived", f"{base}/hop/0")
        seen.requests.clear()
        stopped = net.fetch(f"{base}/hop/5", max_bytes=100, timeout=5, redirects=2)
        assert stopped.status == 302 and stopped.headers["location"] == "/hop/2"
        assert [r[1] for r in seen.requests] == ["/hop/5", "/hop/4", "/hop/3"]  # 2 redirects followed, no more
        none = net.fetch(f"{base}/hop/1", max_bytes=100, timeout=5, redirects=0)
        assert none.status == 302


def test_a_post_becomes_a_get_on_303_and_is_repeated_on_307() -> None:
    with server() as (base, _seen):
        assert net.fetch(f"{base}/see-other", method="POST", body=b"data", max_bytes=100, timeout=5).body == b"GET "
        assert net.fetch(f"{base}/temporary", method="POST", body=b"data", max_bytes=100, timeout=5).body == b"POST data"


def test_schemes_are_refused_directly_and_through_a_redirect() -> None:
    with pytest.raises(net.Refused):
        net.fetch("file:///etc/passwd", max_bytes=100, timeout=5)
    with server() as (base, _seen):
        with pytest.raises(net.Refused):
            net.fetch(f"{base}/ok", max_bytes=100, timeout=5, schemes=("https",))
        with pytest.raises(net.Refused) as err:
            net.fetch(f"{base}/to-file", max_bytes=100, timeout=5)
        assert err.value.url == "file:///etc/passwd"


def test_an_announced_length_over_the_cap_is_refused_before_reading() -> None:
    with server() as (base, _seen):
        started = time.monotonic()
        with pytest.raises(net.TooLarge):
            net.fetch(f"{base}/huge-announced", max_bytes=1000, timeout=10)
        assert time.monotonic() - started < 2  # did not wait for the body the server holds back


def test_an_unannounced_body_is_cut_just_past_the_cap() -> None:
    with server() as (base, _seen):
        with pytest.raises(net.TooLarge) as err:
            net.fetch(f"{base}/stream", max_bytes=10_000, timeout=10)
        assert "10000" in err.value.message
        assert len(net.fetch(f"{base}/ok", max_bytes=5, timeout=5).body) == 5  # exactly the cap is fine


def test_the_timeout_bounds_the_whole_request_not_each_read() -> None:
    with server() as (base, _seen):
        started = time.monotonic()
        with pytest.raises(net.Unreachable) as err:
            net.fetch(f"{base}/drip", max_bytes=10_000, timeout=0.5)
        assert isinstance(err.value.cause, TimeoutError)
        assert time.monotonic() - started < 2  # each read came within 0.1 s, yet the fetch ended


def test_connection_refused_is_unreachable_with_its_cause() -> None:
    with server() as (base, _seen):
        port = base.rsplit(":", 1)[1]
    with pytest.raises(net.Unreachable) as err:
        net.fetch(f"http://127.0.0.1:{port}/ok", max_bytes=100, timeout=2)
    assert isinstance(err.value.cause, ConnectionRefusedError)


def test_the_environment_proxy_is_used_for_remote_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    with server() as (proxy, seen):
        monkeypatch.setenv("HTTP_PROXY", proxy)
        response = net.fetch("http://ca.example.test/ok", max_bytes=100, timeout=5)
        assert response.body == b"hello"
        assert seen.requests[0][:2] == ("GET", "http://ca.example.test/ok")  # absolute form: a proxy request


def test_proxy_credentials_are_sent_to_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    with server() as (proxy, seen):
        monkeypatch.setenv("http_proxy", proxy.replace("//", "//u%40x:p@"))
        assert net.fetch("http://ca.example.test/ok", max_bytes=100, timeout=5).body == b"hello"
        assert seen.proxy_authorization == ["Basic dUB4OnA="]  # u@x:p


def test_loopback_and_no_proxy_hosts_are_not_proxied(monkeypatch: pytest.MonkeyPatch) -> None:
    with server() as (base, seen), server() as (proxy, proxied):
        monkeypatch.setenv("http_proxy", proxy)
        assert net.fetch(f"{base}/ok", max_bytes=100, timeout=5).body == b"hello"  # loopback: direct
        assert proxied.requests == [] and len(seen.requests) == 1
        monkeypatch.setenv("NO_PROXY", "example.test")
        with pytest.raises(net.Unreachable):  # direct, and the name does not resolve
            net.fetch("http://ca.example.test/ok", max_bytes=100, timeout=5)
        assert proxied.requests == []
        monkeypatch.delenv("NO_PROXY")
        with pytest.raises(net.Unreachable):  # proxies=False: the environment is ignored
            net.fetch("http://ca.example.test/ok", max_bytes=100, timeout=5, proxies=False)
        assert proxied.requests == []


@pytest.mark.parametrize(
    ("url", "no_proxy", "proxied"),
    [
        ("http://ca.example.com/", "", True),
        ("http://ca.example.com/", "*", False),
        ("http://ca.example.com/", "example.com", False),
        ("http://example.com/", "example.com", False),
        ("http://example.com/", ".example.com", True),
        ("http://ca.example.com/", ".example.com", False),
        ("http://ca.example.com/", "*.example.com", False),
        ("http://notexample.com/", "example.com", True),
        ("http://ca.example.com:8080/", "example.com:8080", False),
        ("http://ca.example.com/", "example.com:8080", True),
        ("http://10.1.2.3/", "10.0.0.0/8", False),
        ("http://10.1.2.3/", "10.1.2.3", False),
        ("http://10.1.2.4/", "10.1.2.3", True),
        ("http://[2001:db8::1]/", "2001:db8::/32", False),
        ("http://localhost/", "", False),
        ("http://127.0.0.2/", "", False),
        ("http://[::1]:8888/", "", False),
    ],
)
def test_proxy_for_follows_gos_rules(url: str, no_proxy: str, proxied: bool) -> None:
    env = {"HTTP_PROXY": "proxy.internal:3128", "NO_PROXY": no_proxy}
    assert (net.proxy_for(url, env) == "http://proxy.internal:3128") is proxied


def test_proxy_for_picks_by_scheme_and_ignores_http_proxy_under_cgi() -> None:
    env = {"HTTP_PROXY": "http://plain:1", "https_proxy": "http://secure:2"}
    assert net.proxy_for("https://ca.example.com/", env) == "http://secure:2"
    assert net.proxy_for("http://ca.example.com/", env) == "http://plain:1"
    assert net.proxy_for("http://ca.example.com/", {**env, "REQUEST_METHOD": "GET"}) is None


def test_serves_fetch_policy_refuses_loopback_and_bypasses_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    with server() as (base, seen), server() as (proxy, proxied):
        monkeypatch.setenv("HTTP_PROXY", proxy)
        with pytest.raises(net.Refused) as err:
            net.fetch(f"{base}/ok", max_bytes=100, timeout=5, connect=net.FetchPolicy().connect)
        assert "fetch policy" in err.value.message
        with pytest.raises(net.Refused):
            net.fetch(f"{base}/ok", max_bytes=100, timeout=5, connect=net.FetchPolicy.parse("none").connect)
        assert seen.requests == [] and proxied.requests == []
        allowed = net.fetch(f"{base}/ok", max_bytes=100, timeout=5, connect=net.FetchPolicy.parse("127.0.0.0/8").connect)
        assert allowed.body == b"hello" and proxied.requests == []


def test_policy_permits() -> None:
    import ipaddress

    default = net.FetchPolicy()
    for address in ("127.0.0.1", "::1", "169.254.169.254", "0.0.0.0", "::ffff:127.0.0.1", "fe80::1"):
        assert not default.permits("h", ipaddress.ip_address(address)), address
    assert default.permits("h", ipaddress.ip_address("192.0.2.1"))
    allow = net.FetchPolicy.parse("10.0.0.0/8, ca.example.com")
    assert allow.permits("ca.example.com", ipaddress.ip_address("127.0.0.1"))
    assert allow.permits("x", ipaddress.ip_address("10.9.9.9")) and not allow.permits("x", ipaddress.ip_address("192.0.2.1"))
    with pytest.raises(CfsslError):
        net.FetchPolicy.parse("bad entry!")


def test_the_tls_dialer_words_failures_as_go() -> None:
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with server() as (base, _seen):
        port = base.rsplit(":", 1)[1]
        with pytest.raises(net.HandshakeFailed) as handshake:  # an HTTP server answers the ClientHello
            net.tls_peer_chain("127.0.0.1", "127.0.0.1", port, context=context, timeout=5)
        assert handshake.value.message == "tls: first record does not look like a TLS handshake"
        with pytest.raises(CfsslError) as refused:
            net.tls_peer_chain("h", "127.0.0.1", port, context=context, timeout=5, connect=net.FetchPolicy().connect)
        assert refused.value.code == 6000 and "fetch policy" in refused.value.message
    with pytest.raises(CfsslError) as closed:
        net.tls_peer_chain("127.0.0.1", "127.0.0.1", port, context=context, timeout=5)
    assert closed.value.message == f"dial tcp 127.0.0.1:{port}: connect: connection refused"
    with pytest.raises(CfsslError) as unknown:
        net.port_number("no-such-service-name")
    assert unknown.value.message == "dial tcp: lookup tcp/no-such-service-name: unknown port"


def test_go_address_helpers() -> None:
    assert net.split_host_port("[::1]:8443") == ("::1", "8443")
    assert net.split_host_port("example.com") == ("example.com", "443")
    assert net.join_host_port("::1", "443") == "[::1]:443"
    assert net.is_ip("10.0.0.1") and not net.is_ip("example.com")
    assert net.is_loopback("[::1]") and net.is_loopback("LOCALHOST") and not net.is_loopback("10.0.0.1")
