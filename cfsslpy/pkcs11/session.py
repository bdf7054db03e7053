"""Tokens and logins: the slot a URI selects, the PIN-flag guard, the process's logged-in session per token,
and :class:`TokenHandle`, which finds a key again (in this process or a forked child) and signs with it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cfsslpy.errors import CfsslError, Reason
from cfsslpy.pkcs11.library import STATE, is_transient, load_library, locked, p11_module, retrying, token_error
from cfsslpy.pkcs11.objects import find_private
from cfsslpy.pkcs11.uri import TokenURI, key_error

log = logging.getLogger(__name__)


def find_slot(lib: Any, uri: TokenURI, module: str) -> Any:
    """The one slot whose slot and token attributes match the URI's (2001 when none or several)."""
    wanted = uri.selects_token()
    matches = []
    for slot in lib.get_slots(token_present=True):
        if "slot_id" in wanted and slot.slot_id != wanted["slot_id"]:
            continue
        if "slot_description" in wanted and slot.slot_description.strip() != wanted["slot_description"]:
            continue
        if "slot_manufacturer" in wanted and slot.manufacturer_id.strip() != wanted["slot_manufacturer"]:
            continue
        token = slot.get_token()
        info = token_info(token)
        if any(key in wanted and info[key] != wanted[key] for key in ("token", "manufacturer", "serial", "model")):
            continue
        matches.append(slot)
    shown = " ".join(f"{k.replace('_', '-')}={v!r}" for k, v in wanted.items()) or "(any)"
    if not matches:
        missing = key_error(Reason.READ_FAILED, f"no PKCS#11 token matching {shown} in module {module}")
        missing.transient = True  # type: ignore[attr-defined]  # see retrying: a token read mid-update
        raise missing
    if len(matches) > 1:
        labels = ", ".join(repr(token_info(s.get_token())["token"]) for s in matches)
        raise key_error(Reason.READ_FAILED, f"several PKCS#11 tokens match {shown} ({labels}): add token= or serial= to the URI")
    return matches[0]


def token_info(token: Any) -> dict[str, str]:
    """A token's label, manufacturer, serial and model, stripped, as the URI's attributes compare them."""
    serial = token.serial
    if isinstance(serial, bytes):
        serial = serial.decode("ascii", "replace")
    return {
        "token": token.label.strip(),
        "manufacturer": token.manufacturer_id.strip(),
        "serial": str(serial).strip(),
        "model": token.model.strip(),
    }


def check_pin_flags(flags: int, label: str) -> None:
    """Refuse to log in when the user PIN is locked or has one try left (a wrong PIN would lock it)."""
    p11 = p11_module()
    if flags & p11.TokenFlag.USER_PIN_LOCKED:
        raise key_error(Reason.UNAVAILABLE, f"the user PIN of PKCS#11 token {label!r} is locked; unlock it with the SO PIN")
    if flags & p11.TokenFlag.USER_PIN_FINAL_TRY:
        raise key_error(
            Reason.UNAVAILABLE,
            f"the user PIN of PKCS#11 token {label!r} has one try left (CKF_USER_PIN_FINAL_TRY); not trying, "
            "since a wrong PIN would lock the token: log in once with a tool you trust (or reset the PIN)",
        )


def log_in(slot: Any, pin: str, *, rw: bool = True) -> Any:
    """A session logged in as the user; one per (module, slot) per process, kept for the process's life."""
    p11 = p11_module()
    token = slot.get_token()
    label = token.label.strip()
    flags = token.flags
    check_pin_flags(flags, label)
    if flags & p11.TokenFlag.WRITE_PROTECTED:
        rw = False
    try:
        session = token.open(rw=rw, user_pin=pin)
    except p11.UserAlreadyLoggedIn:
        # another part of this process logged in already (the login state is per application): share it
        session = token.open(rw=rw)
    except p11.PinIncorrect:
        raise key_error(Reason.UNAVAILABLE, f"wrong PIN for PKCS#11 token {label!r}") from None
    except p11.PinLocked:
        raise key_error(Reason.UNAVAILABLE, f"the user PIN of PKCS#11 token {label!r} is locked") from None
    except (p11.PinLenRange, p11.PinInvalid):
        raise key_error(Reason.UNAVAILABLE, f"invalid PIN for PKCS#11 token {label!r} (bad length or characters)") from None
    except p11.PinExpired:
        raise key_error(Reason.UNAVAILABLE, f"the user PIN of PKCS#11 token {label!r} has expired; change it first") from None
    except p11.PKCS11Error as exc:
        if is_transient(exc):
            raise  # retried by the caller
        raise token_error(exc, f"login to token {label!r} failed") from None
    log.info("logged in to PKCS#11 token %r (slot %d)", label, slot.slot_id)
    return session


def open_slot(uri: TokenURI, module: str) -> tuple[Any, Any, str]:
    """``(slot, token, label)`` for the token the URI selects in ``module`` (loaded on first use). Call under the
    lock."""
    slot = find_slot(load_library(module), uri, module)
    token = slot.get_token()
    return slot, token, token.label.strip()


def user_session(slot: Any, module: str, pin: Callable[[], str]) -> Any:
    """The process's logged-in session for the slot's token: the one kept since the first login, else a login
    with ``pin()`` (asked only then), kept for the process's life. Call under the lock.

    Every key on the token (several multirootca roots, a CA key and an OCSP responder key, serve and ocspserve
    in one process) goes through this one session, and every call on it holds the process-wide lock: a token
    that allows one session at a time (a YubiKey's PIV applet) is never asked for a second."""
    cache_key = (module, int(slot.slot_id))
    session = STATE.sessions.get(cache_key)
    if session is None:
        session = log_in(slot, pin())
        STATE.sessions[cache_key] = session
    return session


def drop_session(module: str, slot_id: int) -> None:
    """Forget the process's session for a token after a failure, and close it (logging out: the login state
    belongs to the application, so the next use logs in again on a fresh session). Key handles notice the new
    session and look their objects up again (:meth:`TokenHandle.private_object`), so the token never has two
    sessions of this process open. A session that cannot be closed (the token was removed) is only forgotten.
    Call under the lock."""
    session = STATE.sessions.pop((module, slot_id), None)
    if session is None:
        return
    try:
        session.close()
    except p11_module().PKCS11Error as exc:  # the session is dead already
        log.debug("closing a dropped PKCS#11 session: %s", type(exc).__name__)


@dataclass
class TokenHandle:
    """Everything needed to find the key again (in this process or a forked child) and sign with it."""

    uri: TokenURI
    module: str
    slot_id: int
    token_label: str
    pin: str = field(repr=False)
    label: str | None
    key_id: bytes | None
    key_type: str  # "rsa", "ec", "ed25519"
    always_authenticate: bool
    mechanisms: frozenset[int]
    generation: int = -1
    _object: Any = field(default=None, repr=False)
    _session: Any = field(default=None, repr=False)  # the session _object was found in

    def session(self) -> Any:
        """The process's logged-in session for this token (re-made after a fork). Call under the lock."""
        lib = load_library(self.module)
        key = (self.module, self.slot_id)
        session = STATE.sessions.get(key)
        if session is None:
            slot = find_slot(lib, self.uri, self.module)
            session = log_in(slot, self.pin)
            STATE.sessions[key] = session
        return session

    def private_object(self) -> Any:
        """The key's object in the process's current session for the token: looked up again after a fork, or
        when that session was replaced (by a failure of this key or of another key on the same token)."""
        session = self.session()
        if self._object is None or self.generation != STATE.generation or session is not self._session:
            self._object = find_private(session, self.uri, self.token_label)
            self._session = session
            self.generation = STATE.generation
        return self._object

    def sign(self, data: bytes, mechanism: int, param: Any = None) -> bytes:
        p11 = p11_module()

        def attempt() -> bytes:
            obj = self.private_object()
            pin = self.pin if self.always_authenticate else None
            return bytes(obj.sign(data, mechanism=p11.Mechanism(mechanism), mechanism_param=param, pin=pin))

        def forget() -> None:
            drop_session(self.module, self.slot_id)
            self._object = None

        with locked():
            try:
                result: bytes = retrying(attempt, forget, f"signing with {self.uri.describe()}")
                return result
            except CfsslError:
                raise
            except p11.PinIncorrect:
                raise key_error(Reason.UNAVAILABLE, f"wrong PIN for PKCS#11 token {self.token_label!r} (context-specific login)") from None
            except p11.PKCS11Error as exc:
                # a session that died (token removed, module reset) is dropped so that the next call logs in again
                drop_session(self.module, self.slot_id)
                self._object = None
                raise token_error(exc, f"signing with {self.uri.describe()} failed") from None
