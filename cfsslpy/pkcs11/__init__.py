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

The package, by job: :mod:`~cfsslpy.pkcs11.uri` (RFC 7512 URIs), :mod:`~cfsslpy.pkcs11.pin` (PIN sources),
:mod:`~cfsslpy.pkcs11.library` (the module file, the lock, the fork lifecycle, transient retries),
:mod:`~cfsslpy.pkcs11.session` (slots and logins), :mod:`~cfsslpy.pkcs11.objects` (objects and public keys on
a token), :mod:`~cfsslpy.pkcs11.tokenkeys` (the three key classes) and :mod:`~cfsslpy.pkcs11.admin` (token
administration). Only ``library`` imports the ``pkcs11`` package (python-pkcs11), lazily, so hosts without it
run the rest; importing this package never loads it.
"""

from __future__ import annotations

import time as time  # re-exported: tests patch cfsslpy.pkcs11.time.sleep (the transient-retry backoff)
from typing import TYPE_CHECKING, Any

from cfsslpy.errors import Category as Category
from cfsslpy.pkcs11 import library, session
from cfsslpy.pkcs11.admin import generate_key_pair, list_objects, list_slots, public_key, public_key_pem
from cfsslpy.pkcs11.library import MODULE_DIRS as MODULE_DIRS
from cfsslpy.pkcs11.library import MODULE_ENV, resolve_module
from cfsslpy.pkcs11.objects import PublicKey
from cfsslpy.pkcs11.pin import Prompt as Prompt
from cfsslpy.pkcs11.pin import resolve_pin
from cfsslpy.pkcs11.session import check_pin_flags
from cfsslpy.pkcs11.tokenkeys import CKM_ECDSA as CKM_ECDSA
from cfsslpy.pkcs11.tokenkeys import CKM_EDDSA as CKM_EDDSA
from cfsslpy.pkcs11.tokenkeys import CKM_RSA_PKCS as CKM_RSA_PKCS
from cfsslpy.pkcs11.tokenkeys import CKM_RSA_PKCS_PSS as CKM_RSA_PKCS_PSS
from cfsslpy.pkcs11.tokenkeys import DIGEST_INFO as DIGEST_INFO
from cfsslpy.pkcs11.tokenkeys import (
    PrivateKey,
    TokenECKey,
    TokenEd25519Key,
    TokenRSAKey,
    digest_info,
    ecdsa_der,
    load_private_key,
)
from cfsslpy.pkcs11.uri import OBJECT_TYPES as OBJECT_TYPES
from cfsslpy.pkcs11.uri import SCHEME as SCHEME
from cfsslpy.pkcs11.uri import TokenURI, is_uri

# The single module's private names that the tests of its lifecycle reach for (tests/test_pkcs11.py).
_STATE = library.STATE
_TRANSIENT_ATTEMPTS = library.TRANSIENT_ATTEMPTS
_retrying = library.retrying
_login = session.log_in

if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        # _LOCK is rebound in a forked child (cfsslpy.pkcs11.library.LOCK): read it there, never a stale copy
        if name == "_LOCK":
            return library.LOCK
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
