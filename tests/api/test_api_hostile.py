"""Hostile request bodies (issue 10): deep nesting, lone surrogates, invalid UTF-8, huge names in logs.

Each must give the error envelope with the status and code the same endpoint gives for malformed JSON (or be
handled as Go's encoding/json does), never a 500, never a traceback in the log, and leave the server able to
sign. One test drives a real ``serve`` process on a loopback port.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import CA
from cryptography import x509
from cryptography.x509.oid import NameOID
from servers import process

from api.test_api_authsign import auth_body
from api.wsgi import Client, config_json, load_cert, new_csr
from cfsslpy.errors import LOG_VALUE_LIMIT

DEEP = 100_000
GO_DEPTH_ERROR = "invalid character '[' exceeded max depth"
MALFORMED = b'{"certificate_request": "x",'  # plain malformed JSON: the reference each endpoint already answers


def deep_array(depth: int = DEEP) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_object(depth: int = DEEP) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def deep_in_field(depth: int = DEEP) -> bytes:
    return b'{"certificate_request":' + deep_array(depth) + b', "profile": "www"}'


BODIES = {
    "array-100000": deep_array(),
    "object-100000": deep_object(),
    "in-a-field-100000": deep_in_field(),
    "array-900": deep_array(900),  # the 900-byte body: deep enough for RecursionError under a WSGI stack
    "unclosed-100000": b"[" * DEEP,
}

# Every endpoint that decodes a JSON body with the in-process default state.
ENDPOINTS = ["sign", "authsign", "newcert", "newkey", "info", "init_ca", "certinfo", "certadd"]


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and "internal" in r.getMessage()]
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text


def signs(client: Client, api_ca: CA) -> None:
    """The server still works: a plain sign request succeeds."""
    r = client.post("sign", {"certificate_request": new_csr("after.example.com"), "profile": "www"})
    cert = load_cert(r.assert_ok()["certificate"])
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(api_ca.cert.read_bytes()))


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("body", list(BODIES.values()), ids=list(BODIES))
def test_deep_nesting_is_answered_like_malformed_json(
    client: Client, api_ca: CA, caplog: pytest.LogCaptureFixture, endpoint: str, body: bytes
) -> None:
    caplog.set_level(logging.DEBUG)
    malformed = client.post(endpoint, MALFORMED)
    assert malformed.status == 400, malformed.body
    deep = client.post(endpoint, body)
    deep.assert_error(400, malformed.error["code"])
    if malformed.error["message"] != "unexpected end of JSON input":  # an endpoint's fixed text, not Go's wording
        assert deep.error["message"] == malformed.error["message"]
    else:
        assert "exceeded max depth" in deep.error["message"]
    assert len(deep.body) < 300
    assert_no_traceback(caplog)
    signs(client, api_ca)


@pytest.mark.parametrize("body", list(BODIES.values()), ids=list(BODIES))
def test_deep_nesting_inside_an_authsign_request(client: Client, api_ca: CA, caplog: pytest.LogCaptureFixture, body: bytes) -> None:
    """The inner request is decoded before the token is checked: an unauthenticated client reaches it."""
    r = client.post("authsign", auth_body(body))
    r.assert_error(400, 400, "Unable to parse authenticated sign request")
    assert_no_traceback(caplog)
    signs(client, api_ca)


def test_the_exact_go_message_reaches_endpoints_that_show_it(client: Client) -> None:
    client.post("newkey", deep_array()).assert_error(400, 400, GO_DEPTH_ERROR)
    client.post("newcert", deep_object()).assert_error(400, 400, "invalid character '{' exceeded max depth")
    client.post("sign", deep_array()).assert_error(400, 400, "Unable to parse sign request")


# -- lone surrogates: Go's encoding/json decodes them to U+FFFD, and so do we ----------------------------------


def escaped(obj: Any) -> bytes:
    """JSON with every non-ASCII character \\u-escaped: how a lone surrogate reaches us from a client."""
    return json.dumps(obj, ensure_ascii=True).encode("ascii")


def common_names(cert: x509.Certificate) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]


def test_lone_surrogates_in_a_newcert_subject_become_replacement_characters(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    body = escaped({"request": {"CN": "a\ud800b", "hosts": ["surrogate.example.com"], "names": [{"O": "\udc00"}]}, "profile": "www"})
    assert b"\\ud800" in body
    cert = load_cert(client.post("newcert", body).assert_ok()["certificate"])
    assert common_names(cert) == ["a\ufffdb"]
    assert [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["\ufffd"]
    assert_no_traceback(caplog)


def test_lone_surrogates_in_a_sign_request(client: Client, api_ca: CA, caplog: pytest.LogCaptureFixture) -> None:
    body = escaped({"certificate_request": new_csr("ok.example.com", ["ok.example.com"]), "profile": "www\ud800", "label": "\udfff"})
    r = client.post("sign", body)
    r.assert_error(400, 5400, "Unknown policy profile")  # cfssl falls back to the default profile; here it is refused
    assert_no_traceback(caplog)
    assert "unknown profile 'www\ufffd'" in caplog.text  # decoded as Go does, then quoted


@pytest.mark.parametrize("endpoint", ["sign", "newcert", "newkey", "init_ca"])
def test_a_lone_surrogate_in_a_host_is_a_clean_4xx(client: Client, caplog: pytest.LogCaptureFixture, endpoint: str) -> None:
    request = {"CN": "x", "hosts": ["a\ud800.example.com"]}
    body = escaped({"certificate_request": new_csr(), "hosts": request["hosts"], "request": request, **request})
    r = client.post(endpoint, body)
    assert 400 <= r.status < 500, r.body
    assert r.error["code"] != 0
    assert_no_traceback(caplog)


def test_a_lone_surrogate_inside_an_authsign_request(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    inner = escaped({"certificate_request": new_csr("auth.example.com", ["auth.example.com"]), "profile": "auth", "label": "\ud800"})
    cert = load_cert(client.post("authsign", auth_body(inner)).assert_ok()["certificate"])
    assert common_names(cert) == ["auth.example.com"]
    assert_no_traceback(caplog)


@pytest.mark.parametrize("endpoint", ["sign", "newcert", "authsign", "info"])
def test_raw_invalid_utf8_is_refused(client: Client, endpoint: str) -> None:
    client.post(endpoint, b'{"certificate_request": "\xff\xfe", "profile": "\xed\xa0\x80"}').assert_error(
        400, 400, "request body is not valid UTF-8"
    )


def test_raw_invalid_utf8_inside_an_authsign_request(client: Client) -> None:
    r = client.post("authsign", auth_body(b'{"certificate_request": "\xff"}'))
    r.assert_error(400, 400, "Unable to parse authenticated sign request")


# -- attacker-chosen values in the log ---------------------------------------------------------------------


def test_an_unknown_200kb_profile_name_gives_a_bounded_log_line(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    name = "p" * 200_000 + "\n2030/01/01 00:00:00 [ERROR] forged line"
    client.post("sign", {"certificate_request": new_csr(), "profile": name}).assert_error(400, 5400, "Unknown policy profile")
    warnings = [r.getMessage() for r in caplog.records if "unknown profile" in r.getMessage()]
    assert warnings, caplog.text
    for record in caplog.records:
        message = record.getMessage()
        assert len(message) < 4 * LOG_VALUE_LIMIT, message[:200]
        assert "\n" not in message and "forged" not in message
    assert f"(+{len(name) - LOG_VALUE_LIMIT} chars)" in warnings[0]


def test_a_long_hostile_error_message_is_bounded_in_the_debug_log(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="cfsslpy.api")
    host = "\x1b[31m" + "h" * 100_000 + ".example.com"
    r = client.post("newkey", {"CN": "x", "hosts": [host]})
    assert r.status == 400 and len(r.body) > 100_000  # the client gets its own value back in full
    lines = [r.getMessage() for r in caplog.records if r.name == "cfsslpy.api" and r.getMessage().startswith("newkey:")]
    assert lines and all(len(line) < 4 * LOG_VALUE_LIMIT and "\x1b" not in line for line in lines)


# -- a real server on a loopback port ----------------------------------------------------------------------

LISTENING = re.compile(r"Now listening (?:with mutual TLS )?on (\S+)")


def post(url: str, data: bytes) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


@pytest.mark.integration
def test_a_serve_process_answers_a_100000_deep_body_with_400_and_still_signs(api_ca: CA, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(config_json()))
    command = [sys.executable, "-m", "cfsslpy", "serve", "-address", "127.0.0.1", "-port", "0", "-loglevel", "0"]
    command += ["-ca", str(api_ca.cert), "-ca-key", str(api_ca.key), "-config", str(config)]
    with process(command) as server:
        base = server.wait_for(LISTENING, 30).group(1) + "/api/v1/cfssl/"
        for endpoint, body in [("sign", deep_array()), ("sign", deep_object()), ("authsign", deep_in_field()), ("newkey", deep_array(900))]:
            status, reply = post(base + endpoint, body)
            assert status == 400, reply
            doc = json.loads(reply)
            assert doc["success"] is False and doc["result"] is None and doc["errors"][0]["code"] == 400, doc
        inner = base64.b64decode(auth_body(deep_array())["request"])
        status, reply = post(base + "authsign", json.dumps(auth_body(inner)).encode())
        assert (status, json.loads(reply)["errors"][0]["message"]) == (400, "Unable to parse authenticated sign request")
        status, reply = post(base + "sign", json.dumps({"certificate_request": new_csr("still.example.com"), "profile": "www"}).encode())
        assert status == 200, reply
        cert = load_cert(json.loads(reply)["result"]["certificate"])
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(api_ca.cert.read_bytes()))
        log = server.log
    assert "Traceback" not in log and "RecursionError" not in log and "internal error" not in log
    assert max(len(line) for line in log.splitlines()) < 1000
