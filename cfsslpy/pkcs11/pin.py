"""The user PIN of a token: ``pin-value``, ``pin-source=file:/path`` (or a plain path), ``pin-source=env:VAR``,
else a prompt on the terminal, else an error (the order and warnings are in :mod:`cfsslpy.pkcs11`).

The PIN is never logged nor put in an error message; an empty PIN is refused before it costs a login attempt.
"""

from __future__ import annotations

import getpass
import logging
import os
import stat
import sys
from collections.abc import Callable, Mapping

from cfsslpy.errors import Reason
from cfsslpy.pkcs11.uri import TokenURI, key_error

log = logging.getLogger(__name__)

Prompt = Callable[[str], str]


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
                raise key_error(Reason.UNAVAILABLE, f"PKCS#11 PIN: environment variable {var} is not set")
            return _non_empty(env[var], f"environment variable {var}")
        if source.startswith("|"):
            raise key_error(Reason.READ_FAILED, "PKCS#11 PIN: pin-source=|command is not supported; use file:/path or env:VAR")
        if source.startswith("file://"):
            path = source[len("file://") :]
            if not path.startswith("/"):
                raise key_error(Reason.READ_FAILED, "PKCS#11 PIN: pin-source=file://host/... is not supported; use file:/path")
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
        raise key_error(
            Reason.UNAVAILABLE,
            f"no PIN for token {label!r}: add pin-source=file:/path (or env:VAR) to the PKCS#11 URI, or run on a terminal",
        )
    ask = prompt if prompt is not None else getpass.getpass
    try:
        return ask(f"PIN for PKCS#11 token {label!r}: ")
    except (EOFError, KeyboardInterrupt):
        raise key_error(Reason.UNAVAILABLE, f"no PIN entered for token {label!r}") from None


def _non_empty(pin: str, where: str) -> str:
    """An empty PIN would still cost a login attempt on the token's retry counter: refused before trying."""
    if not pin:
        raise key_error(Reason.UNAVAILABLE, f"PKCS#11 PIN: {where} is empty")
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
        raise key_error(Reason.READ_FAILED, f"PKCS#11 PIN file {_shown_path(path)}: {exc.strerror or 'unreadable'}") from None
    if stat.S_ISREG(mode) and mode & 0o077:
        log.warning("PKCS#11 PIN file %s is accessible by group or others (mode %o); chmod 600 it", _shown_path(path), mode & 0o777)
    line = data.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        raise key_error(Reason.READ_FAILED, f"PKCS#11 PIN file {_shown_path(path)}: not UTF-8") from None
