"""The envelope is built in one place (cfsslpy.api.wire), by every layer that answers: the endpoint wrapper,
bottle's error handler, the connection layer's own refusals and the worker's 503."""

from __future__ import annotations

import ast
import logging
import pathlib
from collections.abc import Callable
from typing import Any

import pytest

import cfsslpy.api
from api.conftest import StateFactory
from api.wsgi import API, Client, config_json, new_csr
from cfsslpy.api.connection import Request, error_response, internal_error
from cfsslpy.api.state import ApiState
from cfsslpy.api.wire import ERROR_HEADERS, describe_failure, envelope, error_envelope
from cfsslpy.api.worker import unavailable
from cfsslpy.errors import ApiError, Category, CfsslError, Code, PlainError, Reason
from cfsslpy.golang.json import JSONDecodeError

API_DIR = pathlib.Path(cfsslpy.api.__file__).parent


def test_error_envelope_bytes() -> None:
    assert error_envelope(413, "too <big> & \u2028") == (
        b'{"success":false,"result":null,"errors":[{"code":413,"message":"too \\u003cbig\\u003e \\u0026 \\u2028"}],"messages":[]}\n'
    )
    assert envelope(True, {"a": 1}, [], [(5300, "m")]) == (
        b'{"success":true,"result":{"a":1},"errors":[],"messages":[{"code":5300,"message":"m"}]}\n'
    )


def test_the_connection_layer_answers_with_the_same_envelope() -> None:
    response = error_response(431, "request headers too large (limit 8192 bytes)")
    assert response.status == "431 Request Header Fields Too Large"
    assert response.body == error_envelope(431, "request headers too large (limit 8192 bytes)")
    assert response.headers == list(ERROR_HEADERS)
    request = Request("GET", b"/", "1.1", [], b"", True, 0.0)
    crashed = internal_error(request, "127.0.0.1", RuntimeError("secret"))
    assert crashed.body == b'{"success":false,"result":null,"errors":[{"code":0,"message":"internal server error"}],"messages":[]}\n'
    busy = unavailable("pool full")
    assert busy.body == error_envelope(503, "server busy, retry later")
    assert busy.headers == [*ERROR_HEADERS, ("Retry-After", "1")]


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ApiError(400, "no valid parameter sets found"), (400, 400, "no valid parameter sets found", {})),
        (ApiError(405, "m", {"Allow": "POST"}), (405, 405, "m", {"Allow": "POST"})),
        (CfsslError(Category.POLICY, Reason.UNKNOWN_PROFILE), (400, 5400, "Unknown policy profile", {})),
        (CfsslError(Code.CERT_STORE_RECORD_NOT_FOUND, "no certificate found"), (400, 11200, "no certificate found", {})),
        (JSONDecodeError("unexpected end of JSON input"), (400, 400, "unexpected end of JSON input", {})),
        (PlainError('strconv.ParseInt: parsing "x": invalid syntax'), (500, 0, 'strconv.ParseInt: parsing "x": invalid syntax', {})),
        (PlainError("replay guard unavailable", status=503), (503, 503, "replay guard unavailable", {})),
        (RuntimeError("secret"), (500, 0, "internal server error", {})),
    ],
)
def test_describe_failure_is_the_one_mapping(exc: BaseException, expected: tuple[int, int, str, dict[str, str]]) -> None:
    assert describe_failure(exc) == expected


def test_a_plain_error_with_a_deliberate_status_reaches_the_client_with_it(
    make_state: StateFactory, client_for: Callable[[ApiState], Client]
) -> None:
    state = make_state(config_json())
    assert state.signer is not None

    def unavailable_store(*args: Any, **kw: Any) -> Any:
        raise PlainError("replay guard unavailable", status=503)

    state.signer.sign = unavailable_store  # type: ignore[method-assign]
    client_for(state).post("sign", {"certificate_request": new_csr()}).assert_error(503, 503, "replay guard unavailable")


def test_a_hint_is_logged_and_never_sent(
    make_state: StateFactory, client_for: Callable[[ApiState], Client], caplog: pytest.LogCaptureFixture
) -> None:
    state = make_state(config_json())
    assert state.signer is not None

    def encrypted(*args: Any, **kw: Any) -> Any:
        raise CfsslError(Code.PRIVATE_KEY_ENCRYPTED, hint="set CFSSL_CA_PK_PASSWORD for /etc/cfssl/ca-key.pem")

    state.signer.sign = encrypted  # type: ignore[method-assign]
    with caplog.at_level(logging.DEBUG, logger="cfsslpy.api"):
        r = client_for(state).post("sign", {"certificate_request": new_csr()})
    assert r.status == 400
    assert r.body == b'{"success":false,"result":null,"errors":[{"code":2100,"message":"Private key is encrypted."}],"messages":[]}\n'
    assert any("CFSSL_CA_PK_PASSWORD" in rec.getMessage() for rec in caplog.records if rec.name == "cfsslpy.api")


def _imports(path: pathlib.Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_wire_spells_the_envelope() -> None:
    # the envelope's keys appear in one module's code: every other one asks cfsslpy.api.wire for the bytes
    def spells(path: pathlib.Path) -> bool:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "success" for k in node.keys):
                return True
        return False

    assert sorted(str(path.relative_to(API_DIR)) for path in API_DIR.rglob("*.py") if spells(path)) == ["wire.py"]


def test_wire_and_the_connection_layer_never_import_bottle() -> None:
    for name in ("wire.py", "connection.py", "worker.py"):
        imported = _imports(API_DIR / name)
        assert "bottle" not in imported, name
        assert "cfsslpy.api.envelope" not in imported, name


@pytest.mark.parametrize("path", [API + "sign", "/"])  # the endpoint wrapper's 405 and bottle's (a web UI route)
def test_a_405_quotes_the_method_as_go_does(client: Client, path: str) -> None:
    r = client.request("M&M", path, b"{}")
    r.assert_error(405, 405, 'Method is not allowed:"M&M"')  # Go's %q leaves & alone; the envelope escapes it
    assert b'"message":"Method is not allowed:\\"M\\u0026M\\""' in r.body
