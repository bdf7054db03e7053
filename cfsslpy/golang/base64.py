"""Go's ``encoding/base64`` as ``encoding/json`` uses it for ``[]byte`` (``StdEncoding.DecodeString``), with
Go's error offsets: the authsign body's token and request, cfssljson's ``ocspResponse``."""

from __future__ import annotations

import binascii
import re

from cfsslpy.golang.json import JSONDecodeError

_PLAIN_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def go_base64_decode(text: str) -> bytes:
    """Go's ``base64.StdEncoding`` as encoding/json uses it for ``[]byte``: padding required, CR/LF skipped.

    Raises JSONDecodeError with Go's wording, ``illegal base64 data at input byte N``.
    """
    if len(text) % 4 == 0 and _PLAIN_BASE64.fullmatch(text):
        # The common case (no CR/LF, canonical padding) in C: the same bytes as the loop below, about 100
        # times faster on an authsign request's inner request. Anything else takes the loop for Go's text.
        return binascii.a2b_base64(text)  # what base64.b64decode does, without its wrapper
    src = text.encode("utf-8", "surrogatepass")
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    out = bytearray()
    si = 0

    def corrupt(offset: int) -> JSONDecodeError:
        return JSONDecodeError(f"illegal base64 data at input byte {offset}")

    while si < len(src):
        quantum: list[int] = []
        j = 0
        while j < 4:
            if si == len(src):
                if j == 0:
                    return bytes(out)
                raise corrupt(si - j)
            c = src[si]
            si += 1
            if c in b"\r\n":
                continue
            index = alphabet.find(bytes([c]))
            if index >= 0:
                quantum.append(index)
                j += 1
                continue
            if c != ord("="):
                raise corrupt(si - 1)
            if j < 2:
                raise corrupt(si - 1)
            if j == 2:
                while si < len(src) and src[si] in b"\r\n":
                    si += 1
                if si == len(src):
                    raise corrupt(len(src))
                if src[si] != ord("="):
                    raise corrupt(si - 1)
                si += 1
            while si < len(src) and src[si] in b"\r\n":
                si += 1
            if si < len(src):
                raise corrupt(si)
            break
        value = 0
        for index in quantum:
            value = (value << 6) | index
        value <<= 6 * (4 - len(quantum))
        out += value.to_bytes(3, "big")[: len(quantum) - 1 if len(quantum) < 4 else 3]
        if len(quantum) < 4:
            return bytes(out)
    return bytes(out)
