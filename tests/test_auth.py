"""cfssl's standard auth provider, the authsign body, Go's base64, and the replay guard."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from cfsslpy.auth import (
    AuthenticatedRequest,
    ReplayGuard,
    decode_key,
    timestamp_ad,
    token,
    verify,
    verify_any,
)
from cfsslpy.errors import PlainError
from cfsslpy.golang.base64 import go_base64_decode
from cfsslpy.golang.json import JSONDecodeError

# cfssl's test vector key (auth/testdata); the expected tokens below are derived independently with hmac.
VECTOR_KEY_HEX = "0123456789ABCDEF0123456789ABCDEF"
VECTOR_KEY = bytes.fromhex(VECTOR_KEY_HEX)


def reference_token(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


# -- keys ---------------------------------------------------------------------------------------------------


def test_decode_key_hex_env_and_file(tmp_path: Path) -> None:
    assert decode_key(VECTOR_KEY_HEX) == VECTOR_KEY
    assert decode_key("env:AUTHKEY", {"AUTHKEY": VECTOR_KEY_HEX}) == VECTOR_KEY
    path = tmp_path / "key.hex"
    path.write_text(VECTOR_KEY_HEX + "\n")
    assert decode_key(f"file:{path}") == VECTOR_KEY


@pytest.mark.parametrize("spec", ["nothex", "", "env:MISSING", "file:/nonexistent/key"])
def test_decode_key_refuses_without_echoing_the_key(spec: str) -> None:
    with pytest.raises(ValueError) as info:
        decode_key(spec, {})
    assert "nothex" not in str(info.value)


# -- tokens -------------------------------------------------------------------------------------------------


def test_token_is_hmac_sha256_of_request_then_ad() -> None:
    request = json.dumps({"certificate_request": "-----BEGIN CERTIFICATE REQUEST-----\n", "profile": "auth"}).encode()
    assert token(VECTOR_KEY, request) == reference_token(VECTOR_KEY, request)
    assert token(VECTOR_KEY, request, b"1700000000") == reference_token(VECTOR_KEY, request + b"1700000000")
    assert verify(VECTOR_KEY, request, reference_token(VECTOR_KEY, request))
    assert not verify(VECTOR_KEY, request, reference_token(VECTOR_KEY, request)[:-1])
    assert not verify(VECTOR_KEY, request + b" ", reference_token(VECTOR_KEY, request))


def test_verify_any_tries_current_and_previous_keys() -> None:
    previous = bytes(16)
    request = b'{"certificate_request":"x"}'
    assert verify_any([VECTOR_KEY, previous], request, reference_token(previous, request))
    assert verify_any([None, previous], request, reference_token(previous, request))
    assert not verify_any([VECTOR_KEY, None], request, reference_token(previous, request))
    assert not verify_any([], request, reference_token(previous, request))


def test_timestamp_ad_is_decimal_ascii() -> None:
    assert timestamp_ad(1700000000) == b"1700000000"
    assert timestamp_ad(-5) == b"-5"


# -- Go's base64 as encoding/json uses it -------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"A", b"AB", b"ABC", b"ABCD", bytes(range(256))])
def test_go_base64_decodes_standard_base64(data: bytes) -> None:
    encoded = base64.b64encode(data).decode()
    assert go_base64_decode(encoded) == data
    assert go_base64_decode(encoded[:4] + "\r\n" + encoded[4:]) == data  # Go skips CR and LF


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("!!", 0),
        ("QQ", 0),  # padding is required
        ("Q", 0),
        ("QUJ", 0),
        ("QQ=A", 2),
        ("QQ=", 3),
        ("=QQQ", 0),
        ("QUJDRA==x", 8),  # trailing garbage
        ("QUJD-A==", 4),  # URL alphabet is not standard
    ],
)
def test_go_base64_errors_name_the_byte(text: str, offset: int) -> None:
    with pytest.raises(JSONDecodeError, match=rf"^illegal base64 data at input byte {offset}$"):
        go_base64_decode(text)


# -- the authsign body --------------------------------------------------------------------------------------


def test_authenticated_request_round_trip_and_field_order() -> None:
    built = AuthenticatedRequest.build(VECTOR_KEY, b"{}", timestamp=1700000000)
    doc = built.to_json()
    assert list(doc) == ["timestamp", "token", "request"]
    assert base64.b64decode(doc["token"]) == reference_token(VECTOR_KEY, b"{}")
    assert AuthenticatedRequest.from_json(doc) == built
    stamped = AuthenticatedRequest.build(VECTOR_KEY, b"{}", timestamp=1700000000, timestamped=True)
    assert stamped.token == reference_token(VECTOR_KEY, b"{}1700000000")


def test_authenticated_request_keys_fold_case_and_null_is_zero() -> None:
    parsed = AuthenticatedRequest.from_json({"TOKEN": "QQ==", "Request": "e30=", "timestamp": None, "remote_address": "AQ=="})
    assert parsed == AuthenticatedRequest(token=b"A", request=b"{}", timestamp=0, remote_address=b"\x01")


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([], "json: cannot unmarshal array into Go value of type auth.AuthenticatedRequest"),
        ({"timestamp": "1"}, "json: cannot unmarshal string into Go struct field AuthenticatedRequest.timestamp of type int64"),
        ({"timestamp": 1.5}, "json: cannot unmarshal number 1.5 into Go struct field AuthenticatedRequest.timestamp of type int64"),
        ({"token": 5}, "json: cannot unmarshal number into Go struct field AuthenticatedRequest.token of type []uint8"),
        ({"request": "!!"}, "illegal base64 data at input byte 0"),
    ],
)
def test_authenticated_request_errors_use_go_wording(obj: object, message: str) -> None:
    with pytest.raises(JSONDecodeError) as info:
        AuthenticatedRequest.from_json(obj)
    assert str(info.value) == message


# -- replay guard -------------------------------------------------------------------------------------------


def test_replay_guard_accepts_a_token_once_until_it_expires(tmp_path: Path) -> None:
    guard = ReplayGuard(str(tmp_path / "seen.db"))
    assert guard.first_use(b"t1", expires=1000.0, now=900.0)
    assert not guard.first_use(b"t1", expires=1000.0, now=950.0)
    assert guard.first_use(b"t2", expires=1000.0, now=950.0)
    # once expired the row is purged (the caller refuses such a token as stale anyway)
    assert guard.first_use(b"t1", expires=2000.0, now=1000.0)
    guard.close()


def test_replay_guard_file_is_private_and_shared_between_instances(tmp_path: Path) -> None:
    path = tmp_path / "seen.db"
    first, second = ReplayGuard(str(path)), ReplayGuard(str(path))
    assert first.first_use(b"token", expires=2e9, now=1e9)
    assert not second.first_use(b"token", expires=2e9, now=1e9)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert b"token" not in path.read_bytes()  # only digests are stored
    first.close()
    second.close()


def test_replay_guard_in_memory_without_a_path() -> None:
    guard = ReplayGuard(None)
    assert guard.first_use(b"x", expires=2e9)
    assert not guard.first_use(b"x", expires=2e9)
    guard.close()


def test_replay_guard_unusable_database_fails_closed(tmp_path: Path) -> None:
    guard = ReplayGuard(str(tmp_path / "missing-dir" / "seen.db"))
    with pytest.raises(PlainError, match="replay guard unavailable"):
        guard.first_use(b"x", expires=2e9)


class _RecordingStore:
    """A TokenStore that remembers what the guard handed it."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[bytes, float, float]] = []
        self.fail = fail
        self.closed = False

    def first_use(self, digest: bytes, expires: float, now: float) -> bool:
        if self.fail:
            raise PlainError("replay guard unavailable", status=503)
        fresh = all(digest != seen for seen, _, _ in self.calls)
        self.calls.append((digest, expires, now))
        return fresh

    def close(self) -> None:
        self.closed = True


def test_replay_guard_hands_digests_to_another_store(tmp_path: Path) -> None:
    store = _RecordingStore()
    guard = ReplayGuard(str(tmp_path / "unused.db"), store=store)
    assert guard.first_use(b"tok", expires=1000.0, now=900.0)
    assert not guard.first_use(b"tok", expires=1000.0, now=901.0)
    # only the SHA-256 of the token leaves the guard; the SQLite file is never made
    assert store.calls == [(hashlib.sha256(b"tok").digest(), 1000.0, 900.0), (hashlib.sha256(b"tok").digest(), 1000.0, 901.0)]
    assert not (tmp_path / "unused.db").exists()
    guard.close()
    assert store.closed
    failing = ReplayGuard(store=_RecordingStore(fail=True))
    with pytest.raises(PlainError) as info:
        failing.first_use(b"x", expires=2e9)
    assert info.value.status == 503


def _race(path: str, barrier: multiprocessing.synchronize.Barrier, results: multiprocessing.Queue[bool]) -> None:
    guard = ReplayGuard(path)
    barrier.wait(10)
    results.put(guard.first_use(b"same token", expires=2e9, now=1e9))


def test_replay_guard_across_processes_admits_exactly_one(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    path = str(tmp_path / "seen.db")
    barrier = ctx.Barrier(6)
    results: multiprocessing.Queue[bool] = ctx.Queue()
    procs = [ctx.Process(target=_race, args=(path, barrier, results)) for _ in range(6)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert sorted(outcomes) == [False] * 5 + [True]
