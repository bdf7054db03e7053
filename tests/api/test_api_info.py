"""POST /api/v1/cfssl/info (reference §2.3)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import CA

from api.conftest import StateFactory
from api.wsgi import Client
from cfsslpy.api.state import ApiState


def test_info_for_a_named_profile(client: Client, api_ca: CA) -> None:
    r = client.post("info", {"profile": "www", "label": "ignored"})
    result = r.assert_ok()
    assert list(result) == ["certificate", "usages", "expiry"]
    assert result["certificate"] == api_ca.cert.read_text().rstrip("\n")
    assert result["usages"] == ["digital signature", "key encipherment", "server auth"]
    assert result["expiry"] == "720h"


@pytest.mark.parametrize("body", [b"{}", b"null", b'{"PROFILE": ""}'])
def test_info_default_profile(client: Client, body: bytes) -> None:
    result = client.post("info", body).assert_ok()
    assert result["usages"] == ["digital signature", "server auth", "client auth"]
    assert result["expiry"] == "8760h"


def test_info_unknown_profile_is_refused(client: Client) -> None:
    client.post("info", b'{"profile": "no-such-profile"}').assert_error(400, 5400, "Unknown policy profile")


def test_info_with_cfssl_default_policy(make_state: StateFactory, client_for: Callable[[ApiState], Client]) -> None:
    result = client_for(make_state(None)).post("info", {}).assert_ok()
    assert result["usages"] == ["signing", "key encipherment", "server auth", "client auth"]
    assert result["expiry"] == "8760h"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "unexpected end of JSON input"),
        (b"xx", "invalid character 'x' looking for beginning of value"),
        (b"[1]", "json: cannot unmarshal array into Go value of type client.InfoReq"),
        (b'{"profile": 1}', "json: cannot unmarshal number into Go struct field InfoReq.profile of type string"),
        (b'{"label": true}', "json: cannot unmarshal bool into Go struct field InfoReq.label of type string"),
    ],
)
def test_info_errors(client: Client, body: bytes, message: str) -> None:
    client.post("info", body).assert_error(400, 400, message)


def test_info_needs_a_signer(make_state: StateFactory, client_for: Callable[[ApiState], Client]) -> None:
    client_for(make_state(signer=False)).post("info", {}).assert_error(404, 404)
