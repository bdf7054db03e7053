"""Keys on hardware: PKCS#11 tokens (HSMs, smart cards, YubiKeys, SoftHSM) behind RFC 7512 ``pkcs11:`` URIs.

Every flag that names a private key (``-ca-key``, ``-responder-key``, ``-key``, gencrl's KEY) also accepts a
URI such as ``pkcs11:token=ca;object=root?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin``.
:func:`load_private_key` returns a ``cryptography`` private-key object whose ``sign`` runs on the token, so every
builder (certificates, CSRs, CRLs, OCSP responses) signs with it unchanged; the key never leaves the token.

Security-relevant behaviour:

* the PIN has no default and is never logged nor put in an error message. Sources, in order: ``pin-value``
  (RFC 7512; allowed with a warning, it shows in process listings), ``pin-source=file:/path`` or a plain path
  (the first line; a warning when the file is readable by group or others), ``pin-source=env:VAR`` (our
  extension), else an interactive prompt on the terminal when stdin is one, else an error;
* before logging in the token flags are read: a locked PIN is an error and a PIN with one try left
  (CKF_USER_PIN_FINAL_TRY) is refused, so a wrong PIN from a script can never lock the token. A wrong PIN is
  reported once, never retried;
* keys with CKA_ALWAYS_AUTHENTICATE get a context-specific login (C_Login(CKU_CONTEXT_SPECIFIC)) before every
  signature;
* generated private keys are CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE and not CKA_EXTRACTABLE.

Concurrency: python-pkcs11 with SoftHSM is not thread-safe, so every token call holds one process-wide lock.
The process logs in once per token and keeps that session. After ``fork`` the child never touches the parent's
sessions: the library is re-initialised and the child logs in again on first use (``serve -workers N``).

Only this module imports the ``pkcs11`` package (python-pkcs11), lazily, so hosts without it run the rest.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import os
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar
from urllib.parse import quote, unquote_to_bytes

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from cfsslpy.errors import Category, CfsslError, Reason

log = logging.getLogger(__name__)

MODULE_ENV = "CFSSLPY_PKCS11_MODULE"
SCHEME = "pkcs11:"
# Where module-name=NAME is looked for (NAME, NAME.so), in order.
MODULE_DIRS = (
    "/usr/lib/x86_64-linux-gnu/pkcs11",
    "/usr/lib/aarch64-linux-gnu/pkcs11",
    "/usr/lib64/pkcs11",
    "/usr/lib/pkcs11",
    "/usr/local/lib/pkcs11",
    "/usr/lib/softhsm",
    "/usr/lib/x86_64-linux-gnu/softhsm",
    "/usr/lib64/softhsm",
    "/usr/local/lib/softhsm",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/lib",
)
OBJECT_TYPES = ("private", "public", "cert", "secret-key", "data")

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
Prompt = Callable[[str], str]


def _error(reason: int, message: str | None = None) -> CfsslError:
    return CfsslError(Category.PRIVATE_KEY, reason, message)


def is_uri(spec: str) -> bool:
    """True for a ``pkcs11:`` URI (case-insensitive scheme, as RFC 3986 says)."""
    return spec[: len(SCHEME)].lower() == SCHEME


# ---------------------------------------------------------------------------------------------------------
# RFC 7512 URIs

_PATH_ATTRS = {
    "token": "token",
    "manufacturer": "manufacturer",
    "serial": "serial",
    "model": "model",
    "slot-id": "slot_id",
    "slot-description": "slot_description",
    "slot-manufacturer": "slot_manufacturer",
    "object": "object",
    "id": "id",
    "type": "type",
    # RFC 7512 also defines library-*; accepted and ignored would surprise, so they are refused like unknowns
}
_QUERY_ATTRS = {
    "module-path": "module_path",
    "module-name": "module_name",
    "pin-source": "pin_source",
    "pin-value": "pin_value",
}
# RFC 7512 pchar without the attribute separators; everything else is percent-encoded.
_PATH_SAFE = "-._~:[]@!$'()*+,&"
_QUERY_SAFE = "-._~:[]@!$'()*+,;/?|"


@dataclass(frozen=True)
class TokenURI:
    """A parsed ``pkcs11:`` URI (RFC 7512). ``id`` is bytes; every other value is text."""

    token: str | None = None
    manufacturer: str | None = None
    serial: str | None = None
    model: str | None = None
    slot_id: int | None = None
    slot_description: str | None = None
    slot_manufacturer: str | None = None
    object: str | None = None
    id: bytes | None = None
    type: str | None = None
    module_path: str | None = None
    module_name: str | None = None
    pin_source: str | None = None
    pin_value: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, text: str) -> TokenURI:
        """Parse ``text``; unknown or repeated attributes, bad percent-encoding and bad values are 2001 errors."""
        if not is_uri(text):
            raise _error(Reason.READ_FAILED, "not a PKCS#11 URI (it must start with pkcs11:)")
        body = text[len(SCHEME) :]
        path, _, query = body.partition("?")
        values: dict[str, Any] = {}
        for part, table, sep in ((path, _PATH_ATTRS, ";"), (query, _QUERY_ATTRS, "&")):
            for item in part.split(sep) if part else []:
                if not item:
                    continue
                name, eq, raw = item.partition("=")
                name = name.lower()
                if not eq:
                    raise _error(Reason.READ_FAILED, f"PKCS#11 URI: attribute {name!r} has no value")
                if name not in table:
                    where = "path" if table is _PATH_ATTRS else "query"
                    raise _error(
                        Reason.READ_FAILED,
                        f"PKCS#11 URI: unknown {where} attribute {name!r} (known: {', '.join(table)})",
                    )
                attr = table[name]
                if attr in values:
                    raise _error(Reason.READ_FAILED, f"PKCS#11 URI: attribute {name!r} given twice")
                try:
                    data = unquote_to_bytes(raw) if "%" not in raw or _valid_escapes(raw) else None
                except ValueError:
                    data = None
                if data is None:
                    raise _error(Reason.READ_FAILED, f"PKCS#11 URI: bad percent-encoding in attribute {name!r}")
                if attr == "id":
                    values[attr] = data
                    continue
                try:
                    value = data.decode("utf-8")
                except UnicodeDecodeError:
                    raise _error(Reason.READ_FAILED, f"PKCS#11 URI: attribute {name!r} is not UTF-8") from None
                if attr == "slot_id":
                    if not value.isdigit():
                        raise _error(Reason.READ_FAILED, f"PKCS#11 URI: slot-id must be a decimal number, not {value!r}")
                    values[attr] = int(value)
                elif attr == "type":
                    if value not in OBJECT_TYPES:
                        raise _error(Reason.READ_FAILED, f"PKCS#11 URI: type must be one of {', '.join(OBJECT_TYPES)}, not {value!r}")
                    values[attr] = value
                else:
                    values[attr] = value
        if "module_path" in values and "module_name" in values:
            raise _error(Reason.READ_FAILED, "PKCS#11 URI: give module-path or module-name, not both")
        if "pin_source" in values and "pin_value" in values:
            raise _error(Reason.READ_FAILED, "PKCS#11 URI: give pin-source or pin-value, not both")
        return cls(**values)

    def to_string(self) -> str:
        """The URI text (``id`` fully percent-encoded); ``parse(to_string())`` gives this object back."""
        path: list[str] = []
        query: list[str] = []
        for name, attr in _PATH_ATTRS.items():
            value = getattr(self, attr)
            if value is None:
                continue
            if attr == "id":
                path.append("id=" + "".join(f"%{b:02x}" for b in value))
            else:
                path.append(f"{name}={quote(str(value), safe=_PATH_SAFE)}")
        for name, attr in _QUERY_ATTRS.items():
            value = getattr(self, attr)
            if value is not None:
                query.append(f"{name}={quote(value, safe=_QUERY_SAFE)}")
        return SCHEME + ";".join(path) + ("?" + "&".join(query) if query else "")

    def describe(self) -> str:
        """The object and token for messages (never the PIN)."""
        what = []
        if self.object is not None:
            what.append(f"object={self.object!r}")
        if self.id is not None:
            what.append(f"id={self.id.hex()}")
        where = f"token={self.token!r}" if self.token is not None else "any token"
        return f"{' '.join(what) or 'an object'} on {where}"

    def without_secrets(self) -> TokenURI:
        return replace(self, pin_value=None)

    def selects_token(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in _TOKEN_FIELDS and getattr(self, f.name) is not None}


_TOKEN_FIELDS = ("token", "manufacturer", "serial", "model", "slot_id", "slot_description", "slot_manufacturer")


def _valid_escapes(raw: str) -> bool:
    i = 0
    while True:
        i = raw.find("%", i)
        if i < 0:
            return True
        if len(raw) < i + 3 or any(c not in "0123456789abcdefABCDEF" for c in raw[i + 1 : i + 3]):
            return False
        i += 3


def _parse(uri: str | TokenURI) -> TokenURI:
    return uri if isinstance(uri, TokenURI) else TokenURI.parse(uri)


# ---------------------------------------------------------------------------------------------------------
# the module and the PIN


def resolve_module(uri: TokenURI | None = None, *, environ: Mapping[str, str] | None = None) -> str:
    """The PKCS#11 module (shared library) to load: ``module-path``, else ``module-name`` in :data:`MODULE_DIRS`,
    else ``$CFSSLPY_PKCS11_MODULE``; none (or a missing file) -> 2001."""
    env = os.environ if environ is None else environ
    if uri is not None and uri.module_path:
        path = uri.module_path
        if not os.path.isfile(path):
            raise _error(Reason.READ_FAILED, f"PKCS#11 module {path}: no such file")
        return path
    if uri is not None and uri.module_name:
        name = uri.module_name
        if "/" in name:
            raise _error(Reason.READ_FAILED, "PKCS#11 URI: module-name is a name, not a path (use module-path)")
        for directory in MODULE_DIRS:
            for candidate in (name, name + ".so", "lib" + name + ".so"):
                path = os.path.join(directory, candidate)
                if os.path.isfile(path):
                    return path
        raise _error(Reason.READ_FAILED, f"PKCS#11 module {name!r} not found in {', '.join(MODULE_DIRS)}")
    path = env.get(MODULE_ENV, "")
    if path:
        if not os.path.isfile(path):
            raise _error(Reason.READ_FAILED, f"PKCS#11 module {path} (from {MODULE_ENV}): no such file")
        return path
    raise _error(Reason.READ_FAILED, f"no PKCS#11 module: give module-path= or module-name= in the URI, or set {MODULE_ENV}")


def resolve_pin(
    uri: TokenURI,
    *,
    environ: Mapping[str, str] | None = None,
    prompt: Prompt | None = None,
    interactive: bool | None = None,
    token_label: str | None = None,
) -> str:
    """The user PIN for ``uri`` (see the module docstring for the order). Never logged; errors never contain it.

    ``prompt`` is called with the prompt text when no source is given and ``interactive`` (default: stdin is a
    terminal); without ``prompt`` that is :func:`getpass.getpass` (which reads the controlling terminal).
    """
    env = os.environ if environ is None else environ
    label = token_label if token_label is not None else uri.token
    if uri.pin_value is not None:
        log.warning("the PIN is in the PKCS#11 URI (pin-value): it is visible in process listings; prefer pin-source=file:...")
        return uri.pin_value
    if uri.pin_source is not None:
        source = uri.pin_source
        if source.startswith("env:"):
            var = source[4:]
            if var not in env:
                raise _error(Reason.UNAVAILABLE, f"PKCS#11 PIN: environment variable {var} is not set")
            return _non_empty(env[var], f"environment variable {var}")
        if source.startswith("|"):
            raise _error(Reason.READ_FAILED, "PKCS#11 PIN: pin-source=|command is not supported; use file:/path or env:VAR")
        if source.startswith("file://"):
            path = source[len("file://") :]
            if not path.startswith("/"):
                raise _error(Reason.READ_FAILED, "PKCS#11 PIN: pin-source=file://host/... is not supported; use file:/path")
        elif source.startswith("file:"):
            path = source[len("file:") :]
        else:
            path = source
        return _non_empty(_read_pin_file(path), "the PIN file")
    if interactive is None:
        try:
            interactive = sys.stdin is not None and sys.stdin.isatty()
        except (ValueError, OSError):
            interactive = False
    if not interactive:
        raise _error(
            Reason.UNAVAILABLE,
            f"no PIN for token {label!r}: add pin-source=file:/path (or env:VAR) to the PKCS#11 URI, or run on a terminal",
        )
    ask = prompt if prompt is not None else getpass.getpass
    try:
        return ask(f"PIN for PKCS#11 token {label!r}: ")
    except (EOFError, KeyboardInterrupt):
        raise _error(Reason.UNAVAILABLE, f"no PIN entered for token {label!r}") from None


def _non_empty(pin: str, where: str) -> str:
    """An empty PIN would still cost a login attempt on the token's retry counter: refused before trying."""
    if not pin:
        raise _error(Reason.UNAVAILABLE, f"PKCS#11 PIN: {where} is empty")
    return pin


def _shown_path(path: str) -> str:
    """A PIN file path for messages. A bare ``pin-source`` that is not an absolute path may be a PIN typed in the
    wrong place (``pin-source=123456``): it is never echoed."""
    return path if path.startswith("/") else "(the pin-source path given)"


def _read_pin_file(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            mode = os.fstat(fh.fileno()).st_mode
            data = fh.read(4096)
    except OSError as exc:
        raise _error(Reason.READ_FAILED, f"PKCS#11 PIN file {_shown_path(path)}: {exc.strerror or 'unreadable'}") from None
    if stat.S_ISREG(mode) and mode & 0o077:
        log.warning("PKCS#11 PIN file %s is accessible by group or others (mode %o); chmod 600 it", _shown_path(path), mode & 0o777)
    line = data.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        raise _error(Reason.READ_FAILED, f"PKCS#11 PIN file {_shown_path(path)}: not UTF-8") from None


# ---------------------------------------------------------------------------------------------------------
# process-wide state: one lock, loaded libraries, logged-in sessions; reset in a forked child

_LOCK = threading.RLock()


@dataclass
class _State:
    generation: int = 0
    libs: dict[str, Any] = field(default_factory=dict)
    stale_libs: set[str] = field(default_factory=set)
    sessions: dict[tuple[str, int], Any] = field(default_factory=dict)
    # the parent's sessions, kept referenced in a child and never used or closed there
    graveyard: list[Any] = field(default_factory=list)


_STATE = _State()


def _before_fork() -> None:
    _LOCK.acquire()  # no token call is half-done in the child's copy


def _after_fork_parent() -> None:
    _LOCK.release()


def _after_fork_child() -> None:
    global _LOCK
    _LOCK = threading.RLock()
    _STATE.generation += 1
    _STATE.graveyard.extend(_STATE.sessions.values())
    _STATE.sessions.clear()
    _STATE.stale_libs.update(_STATE.libs)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_parent, after_in_child=_after_fork_child)


@contextmanager
def _locked() -> Iterator[None]:
    lock = _LOCK
    with lock:
        yield


def _p11() -> Any:
    try:
        import pkcs11
    except ImportError:
        raise _error(Reason.UNAVAILABLE, "PKCS#11 support needs the python-pkcs11 package (pip install 'cfsslpy[pkcs11]')") from None
    return pkcs11


def _lib(path: str) -> Any:
    """The loaded module at ``path`` (initialised once per process; re-initialised in a forked child)."""
    p11 = _p11()
    lib = _STATE.libs.get(path)
    if lib is not None and path in _STATE.stale_libs:
        # PKCS#11 §5.1: a forked child must call C_Initialize itself; finalising the inherited copy first
        # resets the module's state (its sessions and logins belong to the parent).
        try:
            lib.finalize()
        except p11.PKCS11Error:
            pass
        lib.initialize()
        _STATE.stale_libs.discard(path)
        return lib
    if lib is not None:
        return lib
    try:
        lib = p11.lib(path)
    except p11.PKCS11Error as exc:
        raise _error(Reason.READ_FAILED, f"PKCS#11 module {path} could not be loaded: {_p11_text(exc)}") from None
    _STATE.libs[path] = lib
    return lib


def _p11_text(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _token_error(exc: BaseException, what: str) -> CfsslError:
    return _error(Reason.UNAVAILABLE, f"PKCS#11 {what}: {_p11_text(exc)}")


# SoftHSM's file store (SoftHSMv2 issue #757) fails now and then when several processes open the token at the
# same moment: GeneralError at login or object lookup, or a token briefly seen without its label. These are
# retried a few times with a short backoff; errors that mean something (wrong PIN, no such object) never are.
_TRANSIENT_ATTEMPTS = 5
_TRANSIENT_NAMES = ("GeneralError", "DeviceError", "FunctionFailed", "TokenNotRecognised", "SessionHandleInvalid", "SessionClosed")


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, CfsslError):
        return bool(getattr(exc, "transient", False))
    return type(exc).__name__ in _TRANSIENT_NAMES


def _retrying(operation: Callable[[], Any], on_retry: Callable[[], None], what: str) -> Any:
    """Run ``operation`` (under the lock); on a transient token failure call ``on_retry`` (drop the sessions
    it used), wait a little and try again, up to :data:`_TRANSIENT_ATTEMPTS` times."""
    p11 = _p11()
    for attempt in range(_TRANSIENT_ATTEMPTS):
        try:
            return operation()
        except (CfsslError, p11.PKCS11Error) as exc:
            if not _is_transient(exc) or attempt == _TRANSIENT_ATTEMPTS - 1:
                raise  # the caller turns a PKCS11Error into its cfssl error
            log.debug("PKCS#11 %s: transient %s, retrying", what, type(exc).__name__)
            on_retry()
            time.sleep(0.02 * 2**attempt)
    raise AssertionError("unreachable")


def _find_slot(lib: Any, uri: TokenURI, module: str) -> Any:
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
        info = _token_info(token)
        if any(key in wanted and info[key] != wanted[key] for key in ("token", "manufacturer", "serial", "model")):
            continue
        matches.append(slot)
    shown = " ".join(f"{k.replace('_', '-')}={v!r}" for k, v in wanted.items()) or "(any)"
    if not matches:
        missing = _error(Reason.READ_FAILED, f"no PKCS#11 token matching {shown} in module {module}")
        missing.transient = True  # type: ignore[attr-defined]  # see _retrying: a token read mid-update
        raise missing
    if len(matches) > 1:
        labels = ", ".join(repr(_token_info(s.get_token())["token"]) for s in matches)
        raise _error(Reason.READ_FAILED, f"several PKCS#11 tokens match {shown} ({labels}): add token= or serial= to the URI")
    return matches[0]


def _token_info(token: Any) -> dict[str, str]:
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
    p11 = _p11()
    if flags & p11.TokenFlag.USER_PIN_LOCKED:
        raise _error(Reason.UNAVAILABLE, f"the user PIN of PKCS#11 token {label!r} is locked; unlock it with the SO PIN")
    if flags & p11.TokenFlag.USER_PIN_FINAL_TRY:
        raise _error(
            Reason.UNAVAILABLE,
            f"the user PIN of PKCS#11 token {label!r} has one try left (CKF_USER_PIN_FINAL_TRY); not trying, "
            "since a wrong PIN would lock the token: log in once with a tool you trust (or reset the PIN)",
        )


def _login(slot: Any, pin: str, *, rw: bool = True) -> Any:
    """A session logged in as the user; one per (module, slot) per process, kept for the process's life."""
    p11 = _p11()
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
        raise _error(Reason.UNAVAILABLE, f"wrong PIN for PKCS#11 token {label!r}") from None
    except p11.PinLocked:
        raise _error(Reason.UNAVAILABLE, f"the user PIN of PKCS#11 token {label!r} is locked") from None
    except (p11.PinLenRange, p11.PinInvalid):
        raise _error(Reason.UNAVAILABLE, f"invalid PIN for PKCS#11 token {label!r} (bad length or characters)") from None
    except p11.PinExpired:
        raise _error(Reason.UNAVAILABLE, f"the user PIN of PKCS#11 token {label!r} has expired; change it first") from None
    except p11.PKCS11Error as exc:
        if _is_transient(exc):
            raise  # retried by the caller
        raise _token_error(exc, f"login to token {label!r} failed") from None
    log.info("logged in to PKCS#11 token %r (slot %d)", label, slot.slot_id)
    return session


@dataclass
class _Handle:
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

    def session(self) -> Any:
        """The process's logged-in session for this token (re-made after a fork). Call under the lock."""
        lib = _lib(self.module)
        key = (self.module, self.slot_id)
        session = _STATE.sessions.get(key)
        if session is None:
            slot = _find_slot(lib, self.uri, self.module)
            session = _login(slot, self.pin)
            _STATE.sessions[key] = session
        return session

    def private_object(self) -> Any:
        if self._object is None or self.generation != _STATE.generation:
            session = self.session()
            self._object = _find_private(session, self.uri, self.token_label)
            self.generation = _STATE.generation
        return self._object

    def sign(self, data: bytes, mechanism: int, param: Any = None) -> bytes:
        p11 = _p11()

        def attempt() -> bytes:
            obj = self.private_object()
            pin = self.pin if self.always_authenticate else None
            return bytes(obj.sign(data, mechanism=p11.Mechanism(mechanism), mechanism_param=param, pin=pin))

        def forget() -> None:
            _STATE.sessions.pop((self.module, self.slot_id), None)
            self._object = None

        with _locked():
            try:
                result: bytes = _retrying(attempt, forget, f"signing with {self.uri.describe()}")
                return result
            except CfsslError:
                raise
            except p11.PinIncorrect:
                raise _error(Reason.UNAVAILABLE, f"wrong PIN for PKCS#11 token {self.token_label!r} (context-specific login)") from None
            except p11.PKCS11Error as exc:
                # a session that died (token removed, module reset) is dropped so that the next call logs in again
                _STATE.sessions.pop((self.module, self.slot_id), None)
                self._object = None
                raise _token_error(exc, f"signing with {self.uri.describe()} failed") from None


def _find_private(session: Any, uri: TokenURI, token_label: str) -> Any:
    p11 = _p11()
    if uri.object is None and uri.id is None:
        raise _error(Reason.READ_FAILED, "PKCS#11 URI: name the key with object= (its label) or id=")
    if uri.type not in (None, "private"):
        raise _error(Reason.NOT_RSA_OR_ECC, f"PKCS#11 URI has type={uri.type}: a signing key needs type=private (or no type)")
    attrs = _object_attrs(uri)
    where = uri.describe().replace("any token", repr(token_label))
    found = list(session.get_objects({**attrs, p11.Attribute.CLASS: p11.ObjectClass.PRIVATE_KEY}))
    if len(found) > 1:
        raise _error(Reason.READ_FAILED, f"several PKCS#11 private keys match {where}: add id= to the URI")
    if found:
        return found[0]
    others = list(session.get_objects(attrs))
    if others:
        kinds = sorted({_class_name(o[p11.Attribute.CLASS]) for o in others})
        raise _error(Reason.NOT_RSA_OR_ECC, f"PKCS#11 {where} is not a private key (found: {', '.join(kinds)})")
    raise _error(Reason.READ_FAILED, f"no PKCS#11 private key {where}")


def _object_attrs(uri: TokenURI) -> dict[Any, Any]:
    p11 = _p11()
    attrs: dict[Any, Any] = {}
    if uri.object is not None:
        attrs[p11.Attribute.LABEL] = uri.object
    if uri.id is not None:
        attrs[p11.Attribute.ID] = uri.id
    return attrs


_CLASS_NAMES = {0: "data", 1: "cert", 2: "public", 3: "private", 4: "secret-key"}


def _class_name(value: Any) -> str:
    return _CLASS_NAMES.get(int(value), f"class-{int(value)}")


# ---------------------------------------------------------------------------------------------------------
# public keys from token attributes

_CURVE_OIDS: dict[bytes, ec.EllipticCurve] = {
    bytes.fromhex("06082a8648ce3d030107"): ec.SECP256R1(),
    bytes.fromhex("06052b81040022"): ec.SECP384R1(),
    bytes.fromhex("06052b81040023"): ec.SECP521R1(),
}
_CURVE_PARAMS = {v.name: k for k, v in _CURVE_OIDS.items()}
_ED25519_PARAMS = (bytes.fromhex("06032b6570"), b"\x13\x0cedwards25519", b"\x0c\x0cedwards25519")


def _der_octets(data: bytes) -> bytes:
    """The content of a DER OCTET STRING (CKA_EC_POINT), or ``data`` itself when it is not wrapped."""
    if len(data) >= 2 and data[0] == 0x04:
        length = data[1]
        offset = 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(data[2 : 2 + n], "big")
            offset = 2 + n
        if offset + length == len(data):
            return data[offset:]
    return data


def _public_from_object(obj: Any) -> PublicKey | None:
    """The public key from a public-key object's attributes (None when they are not readable)."""
    p11 = _p11()
    key_type = int(obj[p11.Attribute.KEY_TYPE])
    if key_type == int(p11.KeyType.RSA):
        n = int.from_bytes(obj[p11.Attribute.MODULUS], "big")
        e = int.from_bytes(obj[p11.Attribute.PUBLIC_EXPONENT], "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    if key_type == int(p11.KeyType.EC):
        params = bytes(obj[p11.Attribute.EC_PARAMS])
        curve = _CURVE_OIDS.get(params)
        if curve is None:
            raise _error(Reason.NOT_RSA_OR_ECC, "the token key is on a curve cfssl does not support (P-256, P-384, P-521 only)")
        point = _der_octets(bytes(obj[p11.Attribute.EC_POINT]))
        return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    if key_type == int(p11.KeyType.EC_EDWARDS):
        params = bytes(obj[p11.Attribute.EC_PARAMS])
        if params not in _ED25519_PARAMS:
            raise _error(Reason.NOT_RSA_OR_ECC, "the token key is an Edwards key other than Ed25519")
        return ed25519.Ed25519PublicKey.from_public_bytes(_der_octets(bytes(obj[p11.Attribute.EC_POINT])))
    raise _error(Reason.NOT_RSA_OR_ECC)


def _find_public(session: Any, private: Any, uri: TokenURI, where: str) -> PublicKey:
    """The private key's public half: the public-key object with its CKA_ID (or label), else the certificate,
    else (RSA) the modulus and exponent of the private-key object itself."""
    p11 = _p11()
    candidates: list[dict[Any, Any]] = []
    key_id = _attr(private, p11.Attribute.ID)
    label = _attr(private, p11.Attribute.LABEL)
    if key_id:
        candidates.append({p11.Attribute.ID: bytes(key_id)})
    if label:
        candidates.append({p11.Attribute.LABEL: label})
    for attrs in candidates:
        pubs = list(session.get_objects({**attrs, p11.Attribute.CLASS: p11.ObjectClass.PUBLIC_KEY}))
        if len(pubs) == 1:
            key = _public_from_object(pubs[0])
            if key is not None:
                return key
        certs = list(session.get_objects({**attrs, p11.Attribute.CLASS: p11.ObjectClass.CERTIFICATE}))
        if len(certs) == 1:
            public = x509.load_der_x509_certificate(bytes(certs[0][p11.Attribute.VALUE])).public_key()
            if isinstance(public, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)):
                return public
    if int(private[p11.Attribute.KEY_TYPE]) == int(p11.KeyType.RSA) and _attr(private, p11.Attribute.MODULUS):
        key = _public_from_object(private)
        if key is not None:
            return key
    raise _error(
        Reason.READ_FAILED, f"no public key for PKCS#11 private key {where} (no public-key object or certificate with its id/label)"
    )


def _attr(obj: Any, attribute: Any) -> Any:
    p11 = _p11()
    try:
        return obj[attribute]
    except (p11.AttributeTypeInvalid, p11.AttributeSensitive, p11.FunctionFailed, KeyError):
        return None


# ---------------------------------------------------------------------------------------------------------
# signing: host-side hashing, PKCS#11 mechanisms, encodings

# DigestInfo prefixes of PKCS#1 v1.5 (RFC 8017 §9.2 note 1)
DIGEST_INFO: dict[str, bytes] = {
    "sha1": bytes.fromhex("3021300906052b0e03021a05000414"),
    "sha224": bytes.fromhex("302d300d06096086480165030402040500041c"),
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
# CKM_SHAx (for PSS params), CKG_MGF1_SHAx, CKM_SHAx_RSA_PKCS, CKM_ECDSA_SHAx
_HASH_MECH = {"sha1": 0x220, "sha224": 0x255, "sha256": 0x250, "sha384": 0x260, "sha512": 0x270}
_MGF = {"sha1": 1, "sha224": 5, "sha256": 2, "sha384": 3, "sha512": 4}
_RSA_PKCS_WITH = {"sha1": 0x6, "sha224": 0x46, "sha256": 0x40, "sha384": 0x41, "sha512": 0x42}
_ECDSA_WITH = {"sha1": 0x1042, "sha224": 0x1043, "sha256": 0x1044, "sha384": 0x1045, "sha512": 0x1046}
CKM_RSA_PKCS = 0x1
CKM_RSA_PKCS_PSS = 0xD
CKM_ECDSA = 0x1041
CKM_EDDSA = 0x1057


def ecdsa_der(raw: bytes) -> bytes:
    """PKCS#11's raw ECDSA signature (r || s, each the curve size) as the DER SEQUENCE X.509 carries."""
    if not raw or len(raw) % 2:
        raise _error(Reason.UNAVAILABLE, f"the token returned a malformed ECDSA signature ({len(raw)} bytes)")
    half = len(raw) // 2
    return utils.encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))


def digest_info(algorithm: hashes.HashAlgorithm, digest: bytes) -> bytes:
    """The DER DigestInfo PKCS#1 v1.5 signs (what CKM_RSA_PKCS is given)."""
    prefix = DIGEST_INFO.get(algorithm.name)
    if prefix is None:
        raise _error(Reason.UNAVAILABLE, f"no PKCS#1 v1.5 DigestInfo for hash {algorithm.name}")
    if len(digest) != algorithm.digest_size:
        raise _error(Reason.UNAVAILABLE, f"digest of {len(digest)} bytes for {algorithm.name}")
    return prefix + digest


def _digest(data: bytes, algorithm: Any) -> tuple[hashes.HashAlgorithm, bytes, bool]:
    """(hash, digest, prehashed) for cryptography's ``algorithm`` argument."""
    if isinstance(algorithm, utils.Prehashed):
        return algorithm._algorithm, data, True
    h = hashes.Hash(algorithm)
    h.update(data)
    return algorithm, h.finalize(), False


def _mech_name(mechanism: int) -> str:
    try:
        return "CKM_" + str(_p11().Mechanism(mechanism).name)
    except (ValueError, CfsslError):
        return f"mechanism 0x{mechanism:x}"


def _unsupported(handle: _Handle, what: str, mechanisms: list[int]) -> CfsslError:
    names = " or ".join(_mech_name(m) for m in mechanisms)
    return _error(Reason.UNAVAILABLE, f"PKCS#11 token {handle.token_label!r} cannot {what}: it offers no {names}")


_Key = TypeVar("_Key", bound="_TokenKey")  # typing.Self is Python 3.11+


class _TokenKey:
    """Shared behaviour of the three key classes: nothing about the private key can be exported."""

    _handle: _Handle

    def private_bytes(self, *args: Any, **kwargs: Any) -> bytes:
        raise _error(Reason.UNAVAILABLE, f"the key {self._handle.uri.describe()} is on a PKCS#11 token and cannot be exported")

    def private_numbers(self) -> Any:
        return self.private_bytes()

    def private_bytes_raw(self) -> bytes:
        return self.private_bytes()

    # a handle on a token object: copies are the same key
    def __copy__(self: _Key) -> _Key:
        return self

    def __deepcopy__(self: _Key, memo: dict[int, object]) -> _Key:
        return self

    @property
    def pkcs11_uri(self) -> str:
        """The key's URI without any ``pin-value``."""
        return self._handle.uri.without_secrets().to_string()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.pkcs11_uri}>"


class TokenRSAKey(_TokenKey, rsa.RSAPrivateKey):
    """An RSA key on a token: PKCS#1 v1.5 (CKM_RSA_PKCS with the DigestInfo built here, or CKM_SHAx_RSA_PKCS)
    and PSS (CKM_RSA_PKCS_PSS over the host's digest)."""

    def __init__(self, handle: _Handle, public: rsa.RSAPublicKey) -> None:
        self._handle = handle
        self._public = public

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def sign(self, data: bytes, padding: padding.AsymmetricPadding, algorithm: Any) -> bytes:
        from cryptography.hazmat.primitives.asymmetric import padding as pad

        handle = self._handle
        hash_alg, digest, prehashed = _digest(bytes(data), algorithm)
        name = hash_alg.name
        if isinstance(padding, pad.PKCS1v15):
            if CKM_RSA_PKCS in handle.mechanisms and name in DIGEST_INFO:
                return handle.sign(digest_info(hash_alg, digest), CKM_RSA_PKCS)
            combined = _RSA_PKCS_WITH.get(name)
            if combined is not None and combined in handle.mechanisms and not prehashed:
                return handle.sign(bytes(data), combined)
            raise _unsupported(handle, f"sign RSA PKCS#1 v1.5 with {name}", [CKM_RSA_PKCS] + ([combined] if combined else []))
        if isinstance(padding, pad.PSS):
            if CKM_RSA_PKCS_PSS not in handle.mechanisms or name not in _HASH_MECH:
                raise _unsupported(handle, f"sign RSA-PSS with {name}", [CKM_RSA_PKCS_PSS])
            mgf_alg = getattr(getattr(padding, "_mgf", None), "_algorithm", hash_alg)
            if mgf_alg.name not in _MGF:
                raise _error(Reason.UNAVAILABLE, f"PSS with MGF1-{mgf_alg.name} is not supported")
            salt = _pss_salt(padding, hash_alg, self.key_size)
            param = (_p11().Mechanism(_HASH_MECH[name]), _p11().MGF(_MGF[mgf_alg.name]), salt)
            return handle.sign(digest, CKM_RSA_PKCS_PSS, param)
        raise _error(Reason.UNAVAILABLE, f"RSA padding {padding.name} is not supported for token keys")

    def decrypt(self, ciphertext: bytes, padding: padding.AsymmetricPadding) -> bytes:
        raise _error(Reason.UNAVAILABLE, "token keys are used for signing only")


def _pss_salt(pss: Any, hash_alg: hashes.HashAlgorithm, key_size: int) -> int:
    from cryptography.hazmat.primitives.asymmetric import padding as pad

    salt = getattr(pss, "_salt_length", None)
    if isinstance(salt, int):
        return salt
    if salt is pad.PSS.DIGEST_LENGTH:
        return hash_alg.digest_size
    # MAX_LENGTH (and AUTO, which cannot apply to signing): emLen - hLen - 2
    em_len = (key_size - 1 + 7) // 8
    return em_len - hash_alg.digest_size - 2


class TokenECKey(_TokenKey, ec.EllipticCurvePrivateKey):
    """An ECDSA key on a token: the host hashes and the token signs the digest with CKM_ECDSA (SoftHSM has no
    CKM_ECDSA_SHA256); CKM_ECDSA_SHAx over the data when only those are offered."""

    def __init__(self, handle: _Handle, public: ec.EllipticCurvePublicKey) -> None:
        self._handle = handle
        self._public = public

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.curve.key_size

    def sign(self, data: bytes | bytearray | memoryview, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        handle = self._handle
        algorithm: Any = getattr(signature_algorithm, "algorithm", None)
        if algorithm is None:
            raise _error(Reason.UNAVAILABLE, "ECDSA needs a hash algorithm")
        hash_alg, digest, prehashed = _digest(bytes(data), algorithm)
        if CKM_ECDSA in handle.mechanisms:
            return ecdsa_der(handle.sign(digest, CKM_ECDSA))
        combined = _ECDSA_WITH.get(hash_alg.name)
        if combined is not None and combined in handle.mechanisms and not prehashed:
            return ecdsa_der(handle.sign(bytes(data), combined))
        raise _unsupported(handle, f"sign ECDSA with {hash_alg.name}", [CKM_ECDSA] + ([combined] if combined else []))

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise _error(Reason.UNAVAILABLE, "token keys are used for signing only")


class TokenEd25519Key(_TokenKey, ed25519.Ed25519PrivateKey):
    """An Ed25519 key on a token (CKM_EDDSA, pure Ed25519)."""

    def __init__(self, handle: _Handle, public: ed25519.Ed25519PublicKey) -> None:
        self._handle = handle
        self._public = public

    def public_key(self) -> ed25519.Ed25519PublicKey:
        return self._public

    def sign(self, data: bytes | bytearray | memoryview) -> bytes:
        if CKM_EDDSA not in self._handle.mechanisms:
            raise _unsupported(self._handle, "sign Ed25519", [CKM_EDDSA])
        return self._handle.sign(bytes(data), CKM_EDDSA)


PrivateKey = TokenRSAKey | TokenECKey | TokenEd25519Key


# ---------------------------------------------------------------------------------------------------------
# the public interface


def load_private_key(
    uri: str | TokenURI,
    *,
    environ: Mapping[str, str] | None = None,
    prompt: Prompt | None = None,
    interactive: bool | None = None,
) -> PrivateKey:
    """The private key named by ``uri`` as a cryptography key object that signs on the token.

    Logs in (once per process and token) and checks that the object is a private key (2200 otherwise) whose
    public half can be found (public-key object or certificate with the same CKA_ID/label). Errors: 2001
    (module, token or object not found), 2200 (not a private key / unsupported type), 2500 (PIN, login, token).
    """
    parsed = _parse(uri)
    p11 = _p11()
    module = resolve_module(parsed, environ=environ)
    pins: dict[str, str] = {}  # asked once, even when the load is retried

    def attempt() -> tuple[Any, str, str, Any, str, int, bool, Any, frozenset[int]]:
        lib = _lib(module)
        slot = _find_slot(lib, parsed, module)
        token = slot.get_token()
        label = token.label.strip()
        cache_key = (module, int(slot.slot_id))
        session = _STATE.sessions.get(cache_key)
        if label not in pins:
            pins[label] = resolve_pin(parsed, environ=environ, prompt=prompt, interactive=interactive, token_label=label)
        if session is None:
            session = _login(slot, pins[label])
            _STATE.sessions[cache_key] = session
        private = _find_private(session, parsed, label)
        where = parsed.describe().replace("any token", repr(label))
        key_type = int(private[p11.Attribute.KEY_TYPE])
        always = bool(_attr(private, p11.Attribute.ALWAYS_AUTHENTICATE))
        public = _find_public(session, private, parsed, where)
        mechanisms = frozenset(int(m) for m in slot.get_mechanisms())
        return slot, label, pins[label], private, where, key_type, always, public, mechanisms

    def forget() -> None:
        for key in [k for k in _STATE.sessions if k[0] == module]:
            _STATE.sessions.pop(key, None)

    with _locked():
        try:
            slot, label, pin, private, where, key_type, always, public, mechanisms = _retrying(
                attempt, forget, f"loading {parsed.describe()}"
            )
        except p11.PKCS11Error as exc:
            raise _token_error(exc, f"loading {parsed.describe()}") from None
    if always:
        log.info("PKCS#11 key %s needs a login before each signature (CKA_ALWAYS_AUTHENTICATE)", where)
    kind = {int(p11.KeyType.RSA): "rsa", int(p11.KeyType.EC): "ec", int(p11.KeyType.EC_EDWARDS): "ed25519"}.get(key_type)
    handle = _Handle(
        uri=parsed,
        module=module,
        slot_id=int(slot.slot_id),
        token_label=label,
        pin=pin,
        label=parsed.object,
        key_id=parsed.id,
        key_type=kind or "unknown",
        always_authenticate=always,
        mechanisms=mechanisms,
        generation=_STATE.generation,
        _object=private,
    )
    if kind == "rsa" and isinstance(public, rsa.RSAPublicKey):
        return TokenRSAKey(handle, public)
    if kind == "ec" and isinstance(public, ec.EllipticCurvePublicKey):
        return TokenECKey(handle, public)
    if kind == "ed25519" and isinstance(public, ed25519.Ed25519PublicKey):
        return TokenEd25519Key(handle, public)
    raise _error(
        Reason.NOT_RSA_OR_ECC, f"PKCS#11 key {where} is not an RSA, ECDSA or Ed25519 key (or its public key does not match its type)"
    )


def public_key(
    uri: str | TokenURI,
    *,
    environ: Mapping[str, str] | None = None,
    prompt: Prompt | None = None,
    interactive: bool | None = None,
) -> PublicKey:
    """The public key of the key pair named by ``uri`` (public-key object or certificate; no login needed
    unless only the private object is visible, then the PIN is used)."""
    parsed = _parse(uri)
    p11 = _p11()
    module = resolve_module(parsed, environ=environ)
    with _locked():
        try:
            lib = _lib(module)
            slot = _find_slot(lib, parsed, module)
            label = slot.get_token().label.strip()
            where = parsed.describe().replace("any token", repr(label))
            if parsed.object is None and parsed.id is None:
                raise _error(Reason.READ_FAILED, "PKCS#11 URI: name the key with object= (its label) or id=")
            session = _STATE.sessions.get((module, int(slot.slot_id)))
            if session is None:
                session = slot.get_token().open()
            attrs = _object_attrs(parsed)
            for cls in (p11.ObjectClass.PUBLIC_KEY, p11.ObjectClass.CERTIFICATE):
                objs = list(session.get_objects({**attrs, p11.Attribute.CLASS: cls}))
                if len(objs) > 1:
                    raise _error(Reason.READ_FAILED, f"several PKCS#11 objects match {where}: add id= to the URI")
                if objs and cls == p11.ObjectClass.PUBLIC_KEY:
                    key = _public_from_object(objs[0])
                    if key is not None:
                        return key
                if objs:
                    public = x509.load_der_x509_certificate(bytes(objs[0][p11.Attribute.VALUE])).public_key()
                    if isinstance(public, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)):
                        return public
                    raise _error(Reason.NOT_RSA_OR_ECC)
        except p11.PKCS11Error as exc:
            raise _token_error(exc, f"reading {parsed.describe()}") from None
    return load_private_key(parsed, environ=environ, prompt=prompt, interactive=interactive).public_key()


def _flag_names(flags: int, enum: Any) -> list[str]:
    return [str(f.name).lower() for f in enum if f.value and flags & f.value == f.value and f.name]


def list_slots(module_path: str | None = None, *, environ: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The module's slots (with or without a token) as JSON-ready dicts, PIN state included."""
    p11 = _p11()
    uri = TokenURI(module_path=module_path) if module_path and "/" in module_path else TokenURI(module_name=module_path or None)
    module = resolve_module(uri, environ=environ)
    out: list[dict[str, Any]] = []
    with _locked():
        try:
            lib = _lib(module)
            for slot in lib.get_slots(token_present=False):
                sflags = int(slot.flags)
                entry: dict[str, Any] = {
                    "slot_id": int(slot.slot_id),
                    "description": slot.slot_description.strip(),
                    "manufacturer": slot.manufacturer_id.strip(),
                    "flags": _flag_names(sflags, p11.SlotFlag),
                    "token_present": bool(sflags & p11.SlotFlag.TOKEN_PRESENT),
                }
                if entry["token_present"]:
                    token = slot.get_token()
                    info = _token_info(token)
                    tflags = int(token.flags)
                    entry["token"] = {
                        "label": info["token"],
                        "manufacturer": info["manufacturer"],
                        "model": info["model"],
                        "serial": info["serial"],
                        "flags": _flag_names(tflags, p11.TokenFlag),
                        "initialized": bool(tflags & p11.TokenFlag.TOKEN_INITIALIZED),
                        "login_required": bool(tflags & p11.TokenFlag.LOGIN_REQUIRED),
                        "pin_set": bool(tflags & p11.TokenFlag.USER_PIN_INITIALIZED),
                        "pin_locked": bool(tflags & p11.TokenFlag.USER_PIN_LOCKED),
                        "pin_count_low": bool(tflags & p11.TokenFlag.USER_PIN_COUNT_LOW),
                        "pin_final_try": bool(tflags & p11.TokenFlag.USER_PIN_FINAL_TRY),
                        "protected_authentication_path": bool(tflags & p11.TokenFlag.PROTECTED_AUTHENTICATION_PATH),
                        "uri": TokenURI(token=info["token"], serial=info["serial"], module_path=module).to_string(),
                    }
                out.append(entry)
        except p11.PKCS11Error as exc:
            raise _token_error(exc, f"listing the slots of {module}") from None
    return out


def list_objects(
    uri: str | TokenURI,
    *,
    environ: Mapping[str, str] | None = None,
    prompt: Prompt | None = None,
    interactive: bool | None = None,
    login: bool = True,
) -> list[dict[str, Any]]:
    """The objects on the URI's token (filtered by its object/id/type) as JSON-ready dicts. Logs in (to see
    private objects) when ``login``; attribute values are never secret: no key material is read."""
    parsed = _parse(uri)
    p11 = _p11()
    A = p11.Attribute
    module = resolve_module(parsed, environ=environ)
    out: list[dict[str, Any]] = []
    with _locked():
        try:
            lib = _lib(module)
            slot = _find_slot(lib, parsed, module)
            token = slot.get_token()
            label = token.label.strip()
            cache_key = (module, int(slot.slot_id))
            session = _STATE.sessions.get(cache_key)
            if session is None and login:
                pin = resolve_pin(parsed, environ=environ, prompt=prompt, interactive=interactive, token_label=label)
                session = _login(slot, pin)
                _STATE.sessions[cache_key] = session
            if session is None:
                session = token.open()
            attrs = _object_attrs(parsed)
            if parsed.type is not None:
                attrs[A.CLASS] = {v: k for k, v in _CLASS_NAMES.items()}[parsed.type]
            for obj in session.get_objects(attrs):
                cls = _class_name(obj[A.CLASS])
                key_id = _attr(obj, A.ID)
                entry: dict[str, Any] = {
                    "class": cls,
                    "label": _attr(obj, A.LABEL) or "",
                    "id": bytes(key_id).hex() if key_id else "",
                }
                if cls in ("private", "public", "secret-key"):
                    entry.update(_key_details(obj))
                if cls == "private":
                    entry["sensitive"] = bool(_attr(obj, A.SENSITIVE))
                    entry["extractable"] = bool(_attr(obj, A.EXTRACTABLE))
                    entry["always_authenticate"] = bool(_attr(obj, A.ALWAYS_AUTHENTICATE))
                if cls == "cert":
                    value = _attr(obj, A.VALUE)
                    if value:
                        try:
                            cert = x509.load_der_x509_certificate(bytes(value))
                            entry["subject"] = cert.subject.rfc4514_string()
                            entry["not_after"] = cert.not_valid_after_utc.isoformat()
                        except ValueError:
                            pass
                entry["uri"] = TokenURI(
                    token=label,
                    object=entry["label"] or None,
                    id=bytes(key_id) if key_id else None,
                    type=cls if cls in OBJECT_TYPES else None,
                    module_path=module,
                ).to_string()
                out.append(entry)
        except p11.PKCS11Error as exc:
            raise _token_error(exc, f"listing objects on token {parsed.token!r}") from None
    return out


def _key_details(obj: Any) -> dict[str, Any]:
    p11 = _p11()
    A = p11.Attribute
    key_type = _attr(obj, A.KEY_TYPE)
    if key_type is None:
        return {}
    key_type = int(key_type)
    if key_type == int(p11.KeyType.RSA):
        modulus = _attr(obj, A.MODULUS)
        bits = _attr(obj, A.MODULUS_BITS)
        size = len(modulus) * 8 if modulus else int(bits or 0)
        return {"key_type": "rsa", "size": size}
    if key_type in (int(p11.KeyType.EC), int(p11.KeyType.EC_EDWARDS)):
        params = _attr(obj, A.EC_PARAMS)
        curve = _CURVE_OIDS.get(bytes(params)) if params else None
        if key_type == int(p11.KeyType.EC_EDWARDS):
            return {"key_type": "ed25519" if params and bytes(params) in _ED25519_PARAMS else "eddsa", "size": 256}
        return {"key_type": "ecdsa", "curve": curve.name if curve else "unknown", "size": curve.key_size if curve else 0}
    try:
        name = str(p11.KeyType(key_type).name).lower()
    except ValueError:
        name = f"0x{key_type:x}"
    return {"key_type": name}


def generate_key_pair(
    uri: str | TokenURI,
    algo: str,
    size: int,
    *,
    key_id: bytes | None = None,
    environ: Mapping[str, str] | None = None,
    prompt: Prompt | None = None,
    interactive: bool | None = None,
) -> PublicKey:
    """Generate a key pair on the token, labelled with the URI's ``object`` and with CKA_ID ``key_id`` (default:
    the SHA-1 of a random value, 20 bytes). The private key is CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, not
    CKA_EXTRACTABLE, sign-only. ``algo``/``size``: rsa 2048..8192, ecdsa 256/384/521, ed25519. Refused when an
    object with that label already exists (2400)."""
    parsed = _parse(uri)
    p11 = _p11()
    A = p11.Attribute
    if not parsed.object:
        raise _error(Reason.GENERATION_FAILED, "PKCS#11 URI: give the new key's label with object=")
    if algo == "rsa" and not 2048 <= size <= 8192:
        raise _error(Reason.GENERATION_FAILED, "RSA key size must be 2048..8192")
    if algo == "ecdsa" and size not in (256, 384, 521):
        raise _error(Reason.GENERATION_FAILED, "invalid curve")
    if algo not in ("rsa", "ecdsa", "ed25519"):
        raise _error(Reason.GENERATION_FAILED, "invalid algorithm")
    if key_id is None:
        key_id = hashlib.sha1(os.urandom(32)).digest()  # noqa: S324 - an identifier, not a security hash
    module = resolve_module(parsed, environ=environ)
    private_template = {
        A.TOKEN: True,
        A.PRIVATE: True,
        A.SENSITIVE: True,
        A.EXTRACTABLE: False,
        A.SIGN: True,
        A.DECRYPT: False,
        A.UNWRAP: False,
        A.DERIVE: False,
    }
    public_template = {A.TOKEN: True, A.PRIVATE: False, A.VERIFY: True, A.ENCRYPT: False, A.WRAP: False}
    with _locked():
        try:
            lib = _lib(module)
            slot = _find_slot(lib, parsed, module)
            label = slot.get_token().label.strip()
            cache_key = (module, int(slot.slot_id))
            session = _STATE.sessions.get(cache_key)
            if session is None:
                pin = resolve_pin(parsed, environ=environ, prompt=prompt, interactive=interactive, token_label=label)
                session = _login(slot, pin)
                _STATE.sessions[cache_key] = session
            if list(session.get_objects({A.LABEL: parsed.object})):
                raise _error(Reason.GENERATION_FAILED, f"an object labelled {parsed.object!r} already exists on PKCS#11 token {label!r}")
            if list(session.get_objects({A.ID: key_id})):
                raise _error(Reason.GENERATION_FAILED, f"an object with id {key_id.hex()} already exists on PKCS#11 token {label!r}")
            mechanisms = {int(m) for m in slot.get_mechanisms()}
            if algo == "rsa":
                if int(p11.Mechanism.RSA_PKCS_KEY_PAIR_GEN) not in mechanisms:
                    raise _unsupported_gen(label, "CKM_RSA_PKCS_KEY_PAIR_GEN")
                public, _private = session.generate_keypair(
                    p11.KeyType.RSA,
                    size,
                    id=key_id,
                    label=parsed.object,
                    store=True,
                    public_template={**public_template, A.PUBLIC_EXPONENT: b"\x01\x00\x01"},
                    private_template=private_template,
                )
            else:
                if algo == "ecdsa":
                    key_type, gen, params = p11.KeyType.EC, p11.Mechanism.EC_KEY_PAIR_GEN, _CURVE_PARAMS[f"secp{size}r1"]
                else:
                    key_type, gen, params = p11.KeyType.EC_EDWARDS, p11.Mechanism.EC_EDWARDS_KEY_PAIR_GEN, _ED25519_PARAMS[0]
                if int(gen) not in mechanisms:
                    raise _unsupported_gen(label, "CKM_" + str(gen.name))
                domain = session.create_domain_parameters(key_type, {A.EC_PARAMS: params}, local=True)
                public, _private = domain.generate_keypair(
                    id=key_id,
                    label=parsed.object,
                    store=True,
                    mechanism=gen,
                    public_template=public_template,
                    private_template=private_template,
                )
            key = _public_from_object(public)
        except p11.PKCS11Error as exc:
            raise _error(Reason.GENERATION_FAILED, f"PKCS#11 key generation on token {parsed.token!r} failed: {_p11_text(exc)}") from None
    log.info("generated a %s-%d key pair %r (id %s) on PKCS#11 token %r", algo, size, parsed.object, key_id.hex(), label)
    assert key is not None
    return key


def _unsupported_gen(label: str, mechanism: str) -> CfsslError:
    return _error(Reason.GENERATION_FAILED, f"PKCS#11 token {label!r} does not offer {mechanism}")


def public_key_pem(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


__all__ = [
    "MODULE_ENV",
    "PrivateKey",
    "PublicKey",
    "TokenECKey",
    "TokenEd25519Key",
    "TokenRSAKey",
    "TokenURI",
    "check_pin_flags",
    "digest_info",
    "ecdsa_der",
    "generate_key_pair",
    "is_uri",
    "list_objects",
    "list_slots",
    "load_private_key",
    "public_key",
    "public_key_pem",
    "resolve_module",
    "resolve_pin",
]
