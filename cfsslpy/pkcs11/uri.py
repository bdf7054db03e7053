"""RFC 7512 ``pkcs11:`` URIs: parsing, printing, and the token and object they select.

The bottom of :mod:`cfsslpy.pkcs11`: it needs neither python-pkcs11 nor a token, so ``ceremony`` validates
URIs with it on any host. Every error of the package is a 2xxx private-key error built by :func:`key_error`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from cfsslpy.errors import Category, CfsslError, Reason

SCHEME = "pkcs11:"
OBJECT_TYPES = ("private", "public", "cert", "secret-key", "data")


def key_error(reason: int, message: str | None = None) -> CfsslError:
    """A private-key error (category 2000) of this package; ``message`` never contains a PIN."""
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
            raise key_error(Reason.READ_FAILED, "not a PKCS#11 URI (it must start with pkcs11:)")
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
                    raise key_error(Reason.READ_FAILED, f"PKCS#11 URI: attribute {name!r} has no value")
                if name not in table:
                    where = "path" if table is _PATH_ATTRS else "query"
                    raise key_error(
                        Reason.READ_FAILED,
                        f"PKCS#11 URI: unknown {where} attribute {name!r} (known: {', '.join(table)})",
                    )
                attr = table[name]
                if attr in values:
                    raise key_error(Reason.READ_FAILED, f"PKCS#11 URI: attribute {name!r} given twice")
                try:
                    data = unquote_to_bytes(raw) if "%" not in raw or _valid_escapes(raw) else None
                except ValueError:
                    data = None
                if data is None:
                    raise key_error(Reason.READ_FAILED, f"PKCS#11 URI: bad percent-encoding in attribute {name!r}")
                if attr == "id":
                    values[attr] = data
                    continue
                try:
                    value = data.decode("utf-8")
                except UnicodeDecodeError:
                    raise key_error(Reason.READ_FAILED, f"PKCS#11 URI: attribute {name!r} is not UTF-8") from None
                if attr == "slot_id":
                    if not value.isdigit():
                        raise key_error(Reason.READ_FAILED, f"PKCS#11 URI: slot-id must be a decimal number, not {value!r}")
                    values[attr] = int(value)
                elif attr == "type":
                    if value not in OBJECT_TYPES:
                        raise key_error(Reason.READ_FAILED, f"PKCS#11 URI: type must be one of {', '.join(OBJECT_TYPES)}, not {value!r}")
                    values[attr] = value
                else:
                    values[attr] = value
        if "module_path" in values and "module_name" in values:
            raise key_error(Reason.READ_FAILED, "PKCS#11 URI: give module-path or module-name, not both")
        if "pin_source" in values and "pin_value" in values:
            raise key_error(Reason.READ_FAILED, "PKCS#11 URI: give pin-source or pin-value, not both")
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


def parse_uri(uri: str | TokenURI) -> TokenURI:
    """``uri`` parsed, or itself when it is parsed already."""
    return uri if isinstance(uri, TokenURI) else TokenURI.parse(uri)
