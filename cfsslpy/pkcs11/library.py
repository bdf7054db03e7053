"""The PKCS#11 module (shared library) and its life in this process: which file to load, python-pkcs11 itself
(imported lazily, here only), one process-wide lock, the loaded libraries and logged-in sessions, their reset
in a forked child, and the retry of SoftHSM's transient failures.

Only this module imports the ``pkcs11`` package (python-pkcs11), inside :func:`p11_module`, so a host without
it runs everything else and a token command says what is missing.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from cfsslpy.errors import CfsslError, Reason
from cfsslpy.pkcs11.uri import TokenURI, key_error

log = logging.getLogger(__name__)

MODULE_ENV = "CFSSLPY_PKCS11_MODULE"
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


def resolve_module(uri: TokenURI | None = None, *, environ: Mapping[str, str] | None = None) -> str:
    """The PKCS#11 module (shared library) to load: ``module-path``, else ``module-name`` in :data:`MODULE_DIRS`,
    else ``$CFSSLPY_PKCS11_MODULE``; none (or a missing file) -> 2001."""
    env = os.environ if environ is None else environ
    if uri is not None and uri.module_path:
        path = uri.module_path
        if not os.path.isfile(path):
            raise key_error(Reason.READ_FAILED, f"PKCS#11 module {path}: no such file")
        return path
    if uri is not None and uri.module_name:
        name = uri.module_name
        if "/" in name:
            raise key_error(Reason.READ_FAILED, "PKCS#11 URI: module-name is a name, not a path (use module-path)")
        for directory in MODULE_DIRS:
            for candidate in (name, name + ".so", "lib" + name + ".so"):
                path = os.path.join(directory, candidate)
                if os.path.isfile(path):
                    return path
        raise key_error(Reason.READ_FAILED, f"PKCS#11 module {name!r} not found in {', '.join(MODULE_DIRS)}")
    path = env.get(MODULE_ENV, "")
    if path:
        if not os.path.isfile(path):
            raise key_error(Reason.READ_FAILED, f"PKCS#11 module {path} (from {MODULE_ENV}): no such file")
        return path
    raise key_error(Reason.READ_FAILED, f"no PKCS#11 module: give module-path= or module-name= in the URI, or set {MODULE_ENV}")


# ---------------------------------------------------------------------------------------------------------
# process-wide state: one lock, loaded libraries, logged-in sessions; reset in a forked child

LOCK = threading.RLock()


@dataclass
class LibraryState:
    """What this process holds: loaded libraries, one logged-in session per (module, slot), and a generation
    counter that a forked child bumps so key handles look their objects up again."""

    generation: int = 0
    libs: dict[str, Any] = field(default_factory=dict)
    stale_libs: set[str] = field(default_factory=set)
    sessions: dict[tuple[str, int], Any] = field(default_factory=dict)
    # the parent's sessions, kept referenced in a child and never used or closed there
    graveyard: list[Any] = field(default_factory=list)


STATE = LibraryState()


def _before_fork() -> None:
    LOCK.acquire()  # no token call is half-done in the child's copy


def _after_fork_parent() -> None:
    LOCK.release()


def _after_fork_child() -> None:
    global LOCK
    LOCK = threading.RLock()
    STATE.generation += 1
    STATE.graveyard.extend(STATE.sessions.values())
    STATE.sessions.clear()
    STATE.stale_libs.update(STATE.libs)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_parent, after_in_child=_after_fork_child)


@contextmanager
def locked() -> Iterator[None]:
    """Hold the process-wide token lock (the one current in this process: a forked child has its own)."""
    lock = LOCK
    with lock:
        yield


def p11_module() -> Any:
    """The ``pkcs11`` package (python-pkcs11), imported on first use; missing -> 2500 naming the package."""
    try:
        import pkcs11
    except ImportError:
        raise key_error(Reason.UNAVAILABLE, "PKCS#11 support needs the python-pkcs11 package (pip install 'cfsslpy[pkcs11]')") from None
    return pkcs11


def load_library(path: str) -> Any:
    """The loaded module at ``path`` (initialised once per process; re-initialised in a forked child)."""
    p11 = p11_module()
    lib = STATE.libs.get(path)
    if lib is not None and path in STATE.stale_libs:
        # PKCS#11 §5.1: a forked child must call C_Initialize itself; finalising the inherited copy first
        # resets the module's state (its sessions and logins belong to the parent).
        try:
            lib.finalize()
        except p11.PKCS11Error:
            pass
        lib.initialize()
        STATE.stale_libs.discard(path)
        return lib
    if lib is not None:
        return lib
    try:
        lib = p11.lib(path)
    except p11.PKCS11Error as exc:
        raise key_error(Reason.READ_FAILED, f"PKCS#11 module {path} could not be loaded: {p11_text(exc)}") from None
    STATE.libs[path] = lib
    return lib


def p11_text(exc: BaseException) -> str:
    """A python-pkcs11 exception for messages: its class (the CKR_ name) and its text, if any."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def token_error(exc: BaseException, what: str) -> CfsslError:
    """The 2500 error for a token failure while doing ``what``."""
    return key_error(Reason.UNAVAILABLE, f"PKCS#11 {what}: {p11_text(exc)}")


# SoftHSM's file store (SoftHSMv2 issue #757) fails now and then when several processes open the token at the
# same moment: GeneralError at login or object lookup, or a token briefly seen without its label. These are
# retried a few times with a short backoff; errors that mean something (wrong PIN, no such object) never are.
TRANSIENT_ATTEMPTS = 5
TRANSIENT_NAMES = ("GeneralError", "DeviceError", "FunctionFailed", "TokenNotRecognised", "SessionHandleInvalid", "SessionClosed")


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is one of the passing failures :func:`retrying` tries again (see above)."""
    if isinstance(exc, CfsslError):
        return bool(getattr(exc, "transient", False))
    return type(exc).__name__ in TRANSIENT_NAMES


def retrying(operation: Callable[[], Any], on_retry: Callable[[], None], what: str) -> Any:
    """Run ``operation`` (under the lock); on a transient token failure call ``on_retry`` (drop the sessions
    it used), wait a little and try again, up to :data:`TRANSIENT_ATTEMPTS` times."""
    p11 = p11_module()
    for attempt in range(TRANSIENT_ATTEMPTS):
        try:
            return operation()
        except (CfsslError, p11.PKCS11Error) as exc:
            if not is_transient(exc) or attempt == TRANSIENT_ATTEMPTS - 1:
                raise  # the caller turns a PKCS11Error into its cfssl error
            log.debug("PKCS#11 %s: transient %s, retrying", what, type(exc).__name__)
            on_retry()
            time.sleep(0.02 * 2**attempt)
    raise AssertionError("unreachable")
