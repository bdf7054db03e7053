"""cfsslpy.pkcs11 without a token: URIs, PIN sources, signature encodings, the PIN-flag guard."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from cfsslpy import pkcs11 as p
from cfsslpy.errors import CfsslError
from cfsslpy.keys import is_pkcs11_uri

# ---------------------------------------------------------------------------------------------------------
# URIs


def test_is_uri() -> None:
    assert p.is_uri("pkcs11:token=a") and p.is_uri("PKCS11:object=x") and is_pkcs11_uri("pkcs11:")
    assert not p.is_uri("ca-key.pem") and not p.is_uri("file:pkcs11:x") and not p.is_uri("env:KEY")


def test_parse_every_attribute() -> None:
    uri = p.TokenURI.parse(
        "pkcs11:token=My%20CA;manufacturer=SoftHSM%20project;serial=abc123;model=SoftHSM%20v2;slot-id=7;"
        "slot-description=Slot%200;slot-manufacturer=ACME;object=root%3Bkey;id=%01%02%ff;type=private"
        "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin"
    )
    assert uri.token == "My CA" and uri.manufacturer == "SoftHSM project" and uri.serial == "abc123"
    assert uri.model == "SoftHSM v2" and uri.slot_id == 7 and uri.slot_description == "Slot 0" and uri.slot_manufacturer == "ACME"
    assert uri.object == "root;key" and uri.id == b"\x01\x02\xff" and uri.type == "private"
    assert uri.module_path == "/usr/lib/softhsm/libsofthsm2.so" and uri.pin_source == "file:/run/pin"
    assert p.TokenURI.parse(uri.to_string()) == uri


@pytest.mark.parametrize(
    "text",
    [
        "pkcs11:",
        "pkcs11:object=a",
        "pkcs11:token=t;object=%E2%82%AC%20x;id=%00?module-name=softhsm2&pin-value=12%2634",
        "pkcs11:object=a/b?pin-source=env:MY_PIN",
        "pkcs11:type=cert;id=%41%42",
    ],
)
def test_round_trip(text: str) -> None:
    uri = p.TokenURI.parse(text)
    assert p.TokenURI.parse(uri.to_string()) == uri


def test_pin_value_is_decoded_and_hidden_from_repr_and_describe() -> None:
    uri = p.TokenURI.parse("pkcs11:token=t;object=k?pin-value=12%2634")
    assert uri.pin_value == "12&34"
    assert "12" not in repr(uri) and "12" not in uri.describe()
    assert "pin-value" not in uri.without_secrets().to_string()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("pkcs11:colour=blue", "unknown path attribute 'colour'"),
        ("pkcs11:object=a?pin=1", "unknown query attribute 'pin'"),
        ("pkcs11:object=a;object=b", "given twice"),
        ("pkcs11:object=%zz", "bad percent-encoding"),
        ("pkcs11:object=%4", "bad percent-encoding"),
        ("pkcs11:object", "has no value"),
        ("pkcs11:slot-id=x", "slot-id must be a decimal number"),
        ("pkcs11:type=key", "type must be one of"),
        ("pkcs11:object=%ff", "not UTF-8"),
        ("pkcs11:object=a?module-path=/x&module-name=y", "not both"),
        ("pkcs11:object=a?pin-source=/p&pin-value=1", "not both"),
        ("file:key.pem", "must start with pkcs11:"),
    ],
)
def test_bad_uris(text: str, words: str) -> None:
    with pytest.raises(CfsslError) as info:
        p.TokenURI.parse(text)
    assert info.value.code == 2001
    assert words in info.value.message


# ---------------------------------------------------------------------------------------------------------
# the module


def test_module_resolution(tmp_path: Path) -> None:
    lib = tmp_path / "libfake.so"
    lib.write_bytes(b"")
    assert p.resolve_module(p.TokenURI(module_path=str(lib)), environ={}) == str(lib)
    assert p.resolve_module(p.TokenURI(), environ={p.MODULE_ENV: str(lib)}) == str(lib)
    with pytest.raises(CfsslError, match="no PKCS#11 module") as info:
        p.resolve_module(p.TokenURI(), environ={})
    assert info.value.code == 2001
    with pytest.raises(CfsslError, match="no such file"):
        p.resolve_module(p.TokenURI(module_path=str(tmp_path / "missing.so")), environ={})
    with pytest.raises(CfsslError, match="not found in"):
        p.resolve_module(p.TokenURI(module_name="no-such-module-cfsslpy"), environ={})
    with pytest.raises(CfsslError, match="a name, not a path"):
        p.resolve_module(p.TokenURI(module_name="../x"), environ={})


# ---------------------------------------------------------------------------------------------------------
# PIN sources


def test_pin_from_file_first_line(tmp_path: Path) -> None:
    pin = tmp_path / "pin"
    pin.write_bytes(b"1234\r\nsecond line\n")
    pin.chmod(0o600)
    for source in (f"file:{pin}", str(pin), f"file://{pin}"):
        assert p.resolve_pin(p.TokenURI(pin_source=source), interactive=False) == "1234"


def test_pin_file_readable_by_others_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pin = tmp_path / "pin"
    pin.write_text("4321\n")
    pin.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="cfsslpy.pkcs11"):
        assert p.resolve_pin(p.TokenURI(pin_source=str(pin)), interactive=False) == "4321"
    assert "accessible by group or others" in caplog.text and "4321" not in caplog.text


def _free_elsewhere() -> bool:
    """Whether another thread can take the module's lock (the RLock would let its own holder in again)."""
    import threading

    got: list[bool] = []

    def probe() -> None:
        ok = p._LOCK.acquire(False)
        got.append(ok)
        if ok:
            p._LOCK.release()

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join(5)
    return got == [True]


def test_a_bare_pin_source_that_is_not_a_path_is_never_echoed() -> None:
    with pytest.raises(CfsslError) as info:
        p.resolve_pin(p.TokenURI(pin_source="123456"), interactive=False)
    assert "123456" not in info.value.message


def test_an_empty_pin_is_refused_before_any_login(tmp_path: Path) -> None:
    empty = tmp_path / "pin"
    empty.write_text("\n")
    with pytest.raises(CfsslError, match="empty") as info:
        p.resolve_pin(p.TokenURI(pin_source=f"file:{empty}"), interactive=False)
    assert info.value.code == 2500
    with pytest.raises(CfsslError, match="empty"):
        p.resolve_pin(p.TokenURI(pin_source="env:PIN"), environ={"PIN": ""}, interactive=False)


def test_missing_pin_file(tmp_path: Path) -> None:
    with pytest.raises(CfsslError, match="PIN file") as info:
        p.resolve_pin(p.TokenURI(pin_source=str(tmp_path / "none")), interactive=False)
    assert info.value.code == 2001


def test_pin_from_env() -> None:
    assert p.resolve_pin(p.TokenURI(pin_source="env:TOKEN_PIN"), environ={"TOKEN_PIN": "9876"}, interactive=False) == "9876"
    with pytest.raises(CfsslError, match="TOKEN_PIN is not set") as info:
        p.resolve_pin(p.TokenURI(pin_source="env:TOKEN_PIN"), environ={}, interactive=False)
    assert info.value.code == 2500


def test_pin_value_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="cfsslpy.pkcs11"):
        assert p.resolve_pin(p.TokenURI(pin_value="5555"), interactive=False) == "5555"
    assert "process listings" in caplog.text and "5555" not in caplog.text


def test_pin_command_source_is_refused() -> None:
    with pytest.raises(CfsslError, match="not supported"):
        p.resolve_pin(p.TokenURI(pin_source="|/bin/echo 1"), interactive=False)


def test_no_pin_without_a_terminal_is_an_error() -> None:
    with pytest.raises(CfsslError, match="no PIN for token 'ca'") as info:
        p.resolve_pin(p.TokenURI(token="ca"), environ={}, interactive=False)
    assert info.value.code == 2500


def test_prompt_on_a_terminal() -> None:
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return "7777"

    assert p.resolve_pin(p.TokenURI(token="ca"), environ={}, prompt=prompt, interactive=True) == "7777"
    assert asked == ["PIN for PKCS#11 token 'ca': "]


def test_prompt_interrupted() -> None:
    def prompt(text: str) -> str:
        raise EOFError

    with pytest.raises(CfsslError, match="no PIN entered"):
        p.resolve_pin(p.TokenURI(token="ca"), environ={}, prompt=prompt, interactive=True)


# ---------------------------------------------------------------------------------------------------------
# encodings


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()])
def test_raw_ecdsa_signature_to_der(curve: ec.EllipticCurve) -> None:
    key = ec.generate_private_key(curve)
    der = key.sign(b"message", ec.ECDSA(hashes.SHA256()))
    r, s = utils.decode_dss_signature(der)
    size = (curve.key_size + 7) // 8
    raw = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    assert p.ecdsa_der(raw) == der
    key.public_key().verify(p.ecdsa_der(raw), b"message", ec.ECDSA(hashes.SHA256()))


def test_raw_ecdsa_with_leading_zeros() -> None:
    raw = b"\x00" * 31 + b"\x01" + b"\x00\x80" + b"\x00" * 30
    assert utils.decode_dss_signature(p.ecdsa_der(raw)) == (1, int.from_bytes(b"\x00\x80" + b"\x00" * 30, "big"))


@pytest.mark.parametrize("raw", [b"", b"\x01\x02\x03"])
def test_malformed_raw_ecdsa(raw: bytes) -> None:
    with pytest.raises(CfsslError, match="malformed ECDSA signature"):
        p.ecdsa_der(raw)


@pytest.mark.parametrize(
    ("algorithm", "oid"),
    [
        (hashes.SHA1(), "2b0e03021a"),
        (hashes.SHA224(), "608648016503040204"),
        (hashes.SHA256(), "608648016503040201"),
        (hashes.SHA384(), "608648016503040202"),
        (hashes.SHA512(), "608648016503040203"),
    ],
)
def test_digest_info_prefixes(algorithm: hashes.HashAlgorithm, oid: str) -> None:
    digest = hashlib.new(algorithm.name, b"abc").digest()
    info = p.digest_info(algorithm, digest)
    assert oid in info.hex() and info.endswith(digest)
    assert info[0] == 0x30 and info[1] == len(info) - 2  # a DER SEQUENCE of the right length
    # the DigestInfo a real RSA PKCS#1 v1.5 signature carries
    key = rsa.generate_private_key(65537, 2048)
    sig = key.sign(b"abc", padding.PKCS1v15(), algorithm)
    n = key.public_key().public_numbers()
    em = pow(int.from_bytes(sig, "big"), n.e, n.n).to_bytes(256, "big")
    assert em.endswith(b"\x00" + info)


def test_digest_info_refuses_a_wrong_length() -> None:
    with pytest.raises(CfsslError):
        p.digest_info(hashes.SHA256(), b"short")


# ---------------------------------------------------------------------------------------------------------
# the PIN-flag guard, with a fake token (SoftHSM has no retry counter, so it never reaches these states)


class FakeToken:
    label = "fake   "

    def __init__(self, flags: int) -> None:
        self.flags = flags
        self.opened = 0

    def open(self, **kwargs: Any) -> Any:
        self.opened += 1
        return object()


class FakeSlot:
    slot_id = 3

    def __init__(self, token: FakeToken) -> None:
        self.token = token

    def get_token(self) -> FakeToken:
        return self.token


@pytest.fixture
def p11() -> Any:
    return pytest.importorskip("pkcs11")


def test_final_try_is_refused_without_trying(p11: Any) -> None:
    token = FakeToken(int(p11.TokenFlag.LOGIN_REQUIRED | p11.TokenFlag.USER_PIN_COUNT_LOW | p11.TokenFlag.USER_PIN_FINAL_TRY))
    with pytest.raises(CfsslError, match="one try left") as info:
        p._login(FakeSlot(token), "1234")
    assert info.value.code == 2500 and token.opened == 0 and "1234" not in info.value.message


def test_locked_pin_is_an_error(p11: Any) -> None:
    token = FakeToken(int(p11.TokenFlag.USER_PIN_LOCKED))
    with pytest.raises(CfsslError, match="is locked") as info:
        p._login(FakeSlot(token), "1234")
    assert info.value.code == 2500 and token.opened == 0


def test_count_low_still_logs_in(p11: Any) -> None:
    token = FakeToken(int(p11.TokenFlag.USER_PIN_COUNT_LOW))
    p._login(FakeSlot(token), "1234")
    assert token.opened == 1


def test_wrong_pin_is_reported_once(p11: Any) -> None:
    class Wrong(FakeToken):
        def open(self, **kwargs: Any) -> Any:
            self.opened += 1
            raise p11.PinIncorrect()

    token = Wrong(0)
    with pytest.raises(CfsslError, match="wrong PIN for PKCS#11 token 'fake'") as info:
        p._login(FakeSlot(token), "1234")
    assert token.opened == 1 and info.value.code == 2500


def test_fork_resets_the_sessions() -> None:
    """A forked child drops (but keeps referenced) the parent's sessions and re-initialises the modules."""
    read, write = os.pipe()
    p._STATE.sessions[("/fake.so", 1)] = marker = object()
    p._STATE.libs.setdefault("/fake.so", object())
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through the pipe
            ok = not p._STATE.sessions and marker in p._STATE.graveyard and "/fake.so" in p._STATE.stale_libs and _free_elsewhere()
            os.write(write, b"1" if ok else b"0")
            os._exit(0)
        os.close(write)
        assert os.read(read, 1) == b"1"
        os.waitpid(pid, 0)
        assert p._STATE.sessions[("/fake.so", 1)] is marker  # the parent keeps its own
        assert _free_elsewhere()  # the fork hook released the lock in the parent too
    finally:
        os.close(read)
        p._STATE.sessions.pop(("/fake.so", 1), None)
        p._STATE.libs.pop("/fake.so", None)
        p._STATE.stale_libs.discard("/fake.so")


# -- transient token failures (SoftHSM's file store under parallel access) -----------------------------------


def test_transient_failures_are_retried_and_meaningful_ones_are_not(monkeypatch: pytest.MonkeyPatch) -> None:
    p11 = pytest.importorskip("pkcs11")
    monkeypatch.setattr(p.time, "sleep", lambda _s: None)
    calls: list[str] = []
    resets: list[int] = []

    def flaky() -> str:
        calls.append("x")
        if len(calls) < 3:
            raise p11.GeneralError()
        return "signed"

    assert p._retrying(flaky, lambda: resets.append(1), "signing") == "signed"
    assert (len(calls), len(resets)) == (3, 2)

    def wrong_pin() -> None:
        calls.append("pin")
        raise p11.PinIncorrect()

    calls.clear()
    with pytest.raises(p11.PinIncorrect):
        p._retrying(wrong_pin, lambda: None, "login")
    assert calls == ["pin"]  # a wrong PIN is never tried twice: it would burn the retry counter

    def always_failing() -> None:
        calls.append("g")
        raise p11.GeneralError()

    calls.clear()
    with pytest.raises(p11.GeneralError):
        p._retrying(always_failing, lambda: None, "login")
    assert len(calls) == p._TRANSIENT_ATTEMPTS


def test_a_token_missing_for_a_moment_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pkcs11")
    monkeypatch.setattr(p.time, "sleep", lambda _s: None)
    seen: list[int] = []

    def lookup() -> str:
        seen.append(1)
        if len(seen) == 1:
            missing = CfsslError(p.Category.PRIVATE_KEY, 1, "no PKCS#11 token matching token='CA'")
            missing.transient = True  # type: ignore[attr-defined]
            raise missing
        return "slot"

    assert p._retrying(lookup, lambda: None, "loading") == "slot"
    not_transient = CfsslError(p.Category.PRIVATE_KEY, 1, "no such object")

    def missing_object() -> None:
        raise not_transient

    calls: list[int] = []

    def counted() -> None:
        calls.append(1)
        missing_object()

    with pytest.raises(CfsslError):
        p._retrying(counted, lambda: None, "loading")
    assert calls == [1]  # a missing object is an answer, not a transient failure: never retried


# -- one session per token per process, shared by every key on it ---------------------------------------------


class _SharedTokenSession:
    """A fake logged-in session: its keys sign with ``key.sign``; it can be closed once."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.closed = False
        self.dead = False  # the token was reset: every call fails, closing too
        self.fail_next = False  # one passing failure (SoftHSM's GeneralError)

    def get_objects(self, attrs: Any) -> list[Any]:
        p11 = pytest.importorskip("pkcs11")
        return [_SharedTokenKey(self, str(attrs[p11.Attribute.LABEL]))]

    def close(self) -> None:
        if self.dead or self.closed:
            raise pytest.importorskip("pkcs11").SessionHandleInvalid()
        self.closed = True


class _SharedTokenKey:
    def __init__(self, session: _SharedTokenSession, label: str) -> None:
        self.session, self.label = session, label

    def sign(self, data: bytes, **kwargs: Any) -> bytes:
        p11 = pytest.importorskip("pkcs11")
        if self.session.closed or self.session.dead:
            raise p11.SessionHandleInvalid()
        if self.session.fail_next:
            self.session.fail_next = False
            raise p11.GeneralError()
        return f"{self.label}@{self.session.number}".encode()


class _SharedToken:
    label = "shared"
    manufacturer_id = "fake"
    serial = "1"
    model = "fake"
    flags = 0

    def __init__(self) -> None:
        self.sessions: list[_SharedTokenSession] = []

    def open(self, **kwargs: Any) -> _SharedTokenSession:
        self.sessions.append(_SharedTokenSession(len(self.sessions) + 1))
        return self.sessions[-1]


class _SharedSlot:
    slot_id = 7
    slot_description = "fake"
    manufacturer_id = "fake"

    def __init__(self, token: _SharedToken) -> None:
        self.token = token

    def get_token(self) -> _SharedToken:
        return self.token


class _SharedLib:
    def __init__(self, token: _SharedToken) -> None:
        self.slot = _SharedSlot(token)

    def get_slots(self, token_present: bool = True) -> list[_SharedSlot]:
        return [self.slot]


def test_keys_on_one_token_share_one_session_and_follow_its_replacement(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two keys of one token (two multirootca roots, or a CA and an OCSP responder) use the process's one session;
    when one of them replaces it after a failure, the old one is closed (never two open) and the other key
    finds its object again in the new one."""
    pytest.importorskip("pkcs11")
    from cfsslpy.pkcs11 import library
    from cfsslpy.pkcs11.session import TokenHandle

    monkeypatch.setattr(p.time, "sleep", lambda _s: None)
    token = _SharedToken()
    module = "/fake-shared.so"
    monkeypatch.setitem(library.STATE.libs, module, _SharedLib(token))

    def handle(obj: str) -> TokenHandle:
        uri = p.TokenURI(token="shared", object=obj)
        return TokenHandle(uri, module, 7, "shared", "1234", obj, None, "ec", False, frozenset({p.CKM_ECDSA}))

    root, responder = handle("root"), handle("responder")
    try:
        assert root.sign(b"x", p.CKM_ECDSA) == b"root@1"
        assert responder.sign(b"x", p.CKM_ECDSA) == b"responder@1"
        assert len(token.sessions) == 1
        token.sessions[0].fail_next = True  # a passing failure: the signature is retried on a new session
        assert root.sign(b"x", p.CKM_ECDSA) == b"root@2"
        assert responder.sign(b"x", p.CKM_ECDSA) == b"responder@2"  # found again in the new session
        assert len(token.sessions) == 2 and [s.closed for s in token.sessions] == [True, False]
        token.sessions[1].dead = True  # the token was reset: the dead session is forgotten, not closed
        assert responder.sign(b"x", p.CKM_ECDSA) == b"responder@3"
        assert root.sign(b"x", p.CKM_ECDSA) == b"root@3"
        assert len(token.sessions) == 3 and not token.sessions[2].closed
        assert [k for k in library.STATE.sessions if k[0] == module] == [(module, 7)]
    finally:
        library.STATE.sessions.pop((module, 7), None)


def test_a_dropped_session_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pkcs11")
    from cfsslpy.pkcs11 import library
    from cfsslpy.pkcs11.session import drop_session

    live = _SharedTokenSession(1)
    monkeypatch.setitem(library.STATE.sessions, ("/fake-drop.so", 1), live)
    drop_session("/fake-drop.so", 1)
    assert live.closed and ("/fake-drop.so", 1) not in library.STATE.sessions
    drop_session("/fake-drop.so", 1)  # nothing to drop: nothing happens
    dead = _SharedTokenSession(2)
    dead.dead = True
    monkeypatch.setitem(library.STATE.sessions, ("/fake-drop.so", 1), dead)
    drop_session("/fake-drop.so", 1)  # cannot be closed: only forgotten
    assert ("/fake-drop.so", 1) not in library.STATE.sessions
