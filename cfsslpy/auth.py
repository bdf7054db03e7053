"""cfssl's "standard" authentication provider: HMAC-SHA256 tokens over the raw request bytes.

The key in the config is hex, ``env:VAR`` (the variable holds hex) or ``file:path`` (the file holds hex).
Tokens are compared in constant time. Keys never appear in errors or logs.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping


def decode_key(spec: str, environ: Mapping[str, str] | None = None) -> bytes:
    """Return the raw HMAC key for a config ``key`` value; ValueError (without the key) if it is unusable."""
    env = os.environ if environ is None else environ
    if spec.startswith("env:"):
        text = env.get(spec[4:], "")
    elif spec.startswith("file:"):
        try:
            with open(spec[5:], encoding="ascii") as fh:
                text = fh.read().strip()
        except (OSError, UnicodeDecodeError):
            raise ValueError("auth key file unreadable") from None
    else:
        text = spec
    try:
        key = binascii.unhexlify(text.strip())
    except (binascii.Error, ValueError):
        raise ValueError("auth key is not valid hex") from None
    if not key:
        raise ValueError("auth key is empty")
    return key


def token(key: bytes, request: bytes, ad: bytes = b"") -> bytes:
    """HMAC-SHA256(key, request || ad)."""
    return hmac.new(key, request + ad, hashlib.sha256).digest()


def verify(key: bytes, request: bytes, presented: bytes, ad: bytes = b"") -> bool:
    """Constant-time check of a presented token."""
    return hmac.compare_digest(token(key, request, ad), presented)
