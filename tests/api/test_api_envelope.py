"""What every endpoint shares: registration, the envelope, methods, unknown paths, bodies, errors, logs."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any

import bottle
import pytest

from api.conftest import StateFactory
from api.wsgi import API, Client, config_json, new_csr
from cfsslpy.api.state import ApiState

POST_ENDPOINTS = ["sign", "authsign", "info", "newkey", "newcert", "init_ca", "certinfo", "gencrl", "certadd"]
GET_ENDPOINTS = ["health"]


def paths(client: Client) -> set[str]:
    return {route.rule for route in client.app.routes}


# -- registration (reference §2.1) --------------------------------------------------------------------------


def test_all_endpoints_with_a_signer_and_mixed_profiles(client: Client) -> None:
    expected = {API + name for name in POST_ENDPOINTS + GET_ENDPOINTS} | {"/metrics"}
    assert {p for p in paths(client) if p.startswith(API) or p == "/metrics"} == expected
    assert "/" in paths(client)  # the web UI (cfsslpy.api.static)


def test_without_a_signer_only_the_signerless_endpoints(make_state: StateFactory, client_for: Callable[[ApiState], Client]) -> None:
    client = client_for(make_state(signer=False))
    assert {p for p in paths(client) if p.startswith(API)} == {API + n for n in ("newkey", "init_ca", "certinfo", "certadd", "health")}
    for name in ("sign", "authsign", "info", "newcert"):
        client.post(name, {}).assert_error(404, 404, "404 page not found")


def test_sign_needs_a_profile_without_auth_and_authsign_one_with(
    make_state: StateFactory, client_for: Callable[[ApiState], Client]
) -> None:
    all_auth = config_json(default={"usages": ["server auth"], "expiry": "1h", "auth_key": "current"})
    all_auth["signing"]["profiles"] = {"auth": all_auth["signing"]["profiles"]["auth"]}
    client = client_for(make_state(all_auth))
    assert API + "sign" not in paths(client) and API + "authsign" in paths(client)
    no_auth = config_json()
    del no_auth["signing"]["profiles"]["auth"]
    client = client_for(make_state(no_auth))
    assert API + "sign" in paths(client) and API + "authsign" not in paths(client)
    client = client_for(make_state(None))  # cfssl's default policy: no auth
    assert API + "sign" in paths(client) and API + "authsign" not in paths(client)


def test_disabled_endpoints_are_not_registered(make_state: StateFactory, client_for: Callable[[ApiState], Client]) -> None:
    client = client_for(make_state(config_json(), disable=frozenset({"sign", "newkey", "metrics"})))
    client.post("sign", {}).assert_error(404, 404)
    client.post("newkey", {}).assert_error(404, 404)
    client.request("GET", "/metrics").assert_error(404, 404)
    assert client.post("init_ca", {"CN": "still here"}).status == 200


# -- the envelope -------------------------------------------------------------------------------------------


def test_failure_envelope_bytes_and_headers(client: Client) -> None:
    r = client.get("sign")
    assert r.status == 405
    assert r.body == b'{"success":false,"result":null,"errors":[{"code":405,"message":"Method is not allowed:\\"GET\\""}],"messages":[]}\n'
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Allow"] == "POST"


def test_success_envelope_key_order_and_empty_lists(client: Client) -> None:
    r = client.get("health")
    assert r.body == b'{"success":true,"result":{"healthy":true},"errors":[],"messages":[]}\n'
    assert r.headers["Content-Type"] == "application/json"


def test_success_escapes_like_go(client: Client) -> None:
    ca = client.post("init_ca", {"CN": "a<b>&c"}).assert_ok()
    r = client.post("certinfo", {"certificate": ca["certificate"]})
    assert r.assert_ok()["subject"]["common_name"] == "a<b>&c"
    assert b"<" not in r.body and b"&" not in r.body
    assert b"a\\u003cb\\u003e\\u0026c" in r.body


# -- methods and paths --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", POST_ENDPOINTS)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_post_endpoints_refuse_other_methods(client: Client, name: str, method: str) -> None:
    client.request(method, API + name, b"{}").assert_error(405, 405, f'Method is not allowed:"{method}"')


@pytest.mark.parametrize("name", POST_ENDPOINTS)
def test_head_is_a_405_without_body(client: Client, name: str) -> None:
    r = client.request("HEAD", API + name)
    assert r.status == 405 and r.body == b""


@pytest.mark.parametrize(("method", "path"), [("POST", API + "health"), ("POST", "/metrics"), ("DELETE", "/metrics")])
def test_get_endpoints_refuse_other_methods(client: Client, method: str, path: str) -> None:
    client.request(method, path, b"{}").assert_error(405, 405, f'Method is not allowed:"{method}"')


def test_ui_routes_wrong_method_is_the_envelope_too(client: Client) -> None:
    r = client.request("POST", "/", b"{}")
    r.assert_error(405, 405, 'Method is not allowed:"POST"')
    assert "GET" in r.headers["Allow"]


@pytest.mark.parametrize(
    "path", [API + "nope", API + "sign/", API + "bundle", API + "ocspsign", "/api/v1/cfssl", "/favicon.php", "/api/v1/cfssl/SIGN"]
)
def test_unknown_paths_are_a_404_envelope(client: Client, path: str) -> None:
    for method in ("GET", "POST"):
        client.request(method, path, b"{}").assert_error(404, 404, "404 page not found")


# -- bodies -------------------------------------------------------------------------------------------------


class ExplodingInput(io.BytesIO):
    def read(self, *args: Any) -> bytes:
        raise AssertionError("the body must not be read")


@pytest.mark.parametrize("name", POST_ENDPOINTS)
def test_oversized_body_is_refused_before_reading(make_state: StateFactory, client_for: Callable[[ApiState], Client], name: str) -> None:
    client = client_for(make_state(config_json(), max_body=1000))
    r = client.post(name, b"", content_length="1001", environ={"wsgi.input": ExplodingInput()})
    r.assert_error(413, 413, "request body too large (limit 1000 bytes)")


def test_body_at_the_limit_is_read(make_state: StateFactory, client_for: Callable[[ApiState], Client]) -> None:
    body = b'{"CN":"x"}'
    client = client_for(make_state(config_json(), max_body=len(body)))
    client.post("init_ca", body).assert_ok()


def test_chunked_body_is_bounded(make_state: StateFactory, client_for: Callable[[ApiState], Client]) -> None:
    client = client_for(make_state(config_json(), max_body=64))
    ok = b'{"CN":"chunked"}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(ok), ok)
    headers = {"Transfer-Encoding": "chunked"}
    client.post("init_ca", chunked, content_length="", headers=headers).assert_ok()
    big = b"a" * 40
    chunked = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(big), big, len(big), big)
    client.post("init_ca", chunked, content_length="", headers=headers).assert_error(413, 413)
    client.post("init_ca", b"zz\r\n", content_length="", headers=headers).assert_error(400, 400, "malformed chunked request body")


def test_body_without_length_on_a_terminated_input_is_read_up_to_the_limit(
    make_state: StateFactory, client_for: Callable[[ApiState], Client]
) -> None:
    client = client_for(make_state(config_json(), max_body=20))
    terminated = {"wsgi.input_terminated": True}
    client.post("init_ca", b'{"CN":"short"}', content_length="", environ=terminated).assert_ok()
    client.post("init_ca", b'{"CN":"' + b"x" * 30 + b'"}', content_length="", environ=terminated).assert_error(413, 413)


def test_body_without_length_is_not_read(client: Client) -> None:
    # PEP 3333: no Content-Length and no wsgi.input_terminated means no body
    client.post("newkey", b"", content_length="", environ={"wsgi.input": ExplodingInput()}).assert_error(
        400, 400, "unexpected end of JSON input"
    )


def test_bad_content_length(client: Client) -> None:
    client.post("newkey", b"{}", content_length="-1").assert_error(400, 400, "invalid Content-Length")
    client.post("newkey", b"{}", content_length="abc").assert_error(400, 400, "invalid Content-Length")


NOT_JSON = "invalid character 'x' looking for beginning of value"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("sign", "Unable to parse sign request"),
        ("authsign", NOT_JSON),
        ("info", NOT_JSON),
        ("newkey", NOT_JSON),
        ("newcert", NOT_JSON),
        ("init_ca", NOT_JSON),
        ("certinfo", NOT_JSON),  # cfssl: 500 with code 0 (deliberate difference)
    ],
)
def test_non_json_body(client: Client, name: str, message: str) -> None:
    client.post(name, b"xx").assert_error(400, 400, message)


@pytest.mark.parametrize("name", POST_ENDPOINTS)
def test_non_utf8_body(client: Client, name: str) -> None:
    client.post(name, b'{"CN":"\xff\xfe"}').assert_error(400, 400, "request body is not valid UTF-8")


# -- internal errors never leak -----------------------------------------------------------------------------


def test_unexpected_exception_is_a_500_without_details(
    make_state: StateFactory, client_for: Callable[[ApiState], Client], caplog: pytest.LogCaptureFixture
) -> None:
    state = make_state(config_json())
    assert state.signer is not None

    def explode(*args: Any, **kw: Any) -> Any:
        raise RuntimeError("secret-material-in-message /etc/ca-key.pem")

    state.signer.sign = explode  # type: ignore[method-assign]
    client = client_for(state)
    with caplog.at_level(logging.ERROR, logger="cfsslpy.api"):
        r = client.post("sign", {"certificate_request": new_csr()})
    r.assert_error(500, 0, "internal server error")
    assert b"secret" not in r.body and b"Traceback" not in r.body
    assert any(rec.exc_info for rec in caplog.records)  # the details are in the server log


# -- access log ---------------------------------------------------------------------------------------------


def test_one_access_log_line_per_request_without_secrets(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="cfsslpy.api.access"):
        client.post("authsign", {"token": "c2VjcmV0LXRva2Vu", "request": "e30="})
        client.request("GET", "/no such path")
        client.get("health")
    lines = [r for r in caplog.records if r.name == "cfsslpy.api.access"]
    assert len(lines) == 3
    first = lines[0].getMessage()
    assert first.startswith("method=POST path=/api/v1/cfssl/authsign status=400 bytes=")
    assert "duration_ms=" in first and first.endswith("remote=127.0.0.1")
    assert "c2VjcmV0" not in first and "token" not in first
    assert lines[0].http_status == 400  # type: ignore[attr-defined]
    assert lines[1].getMessage().startswith('method=GET path="/no such path" status=404 ')
    assert lines[2].http_bytes == len(b'{"success":true,"result":{"healthy":true},"errors":[],"messages":[]}\n')  # type: ignore[attr-defined]


def test_errors_raised_outside_the_endpoint_wrapper_are_envelopes(client: Client) -> None:
    def forbidden() -> None:
        raise bottle.HTTPError(403)

    def crash() -> None:
        raise RuntimeError("secret-in-message")

    client.app.route("/test/forbidden", "GET", forbidden)
    client.app.route("/test/crash", "GET", crash)
    client.request("GET", "/test/forbidden").assert_error(403, 403, "Forbidden")
    r = client.request("GET", "/test/crash")
    r.assert_error(500, 0, "internal server error")
    assert b"secret" not in r.body


def test_the_app_is_pep3333_compliant(client: Client) -> None:
    from wsgiref.validate import validator

    checked = Client(validator(client.app))
    checked.get("health").assert_ok()
    checked.get("sign").assert_error(405, 405)
    checked.request("GET", "/nowhere").assert_error(404, 404)
    checked.post("init_ca", {"CN": "x"}).assert_ok()
    assert checked.request("GET", "/metrics").status == 200
