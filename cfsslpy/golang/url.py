"""Go 1.19's ``url.Parse`` (``net/url``): the fields it fills and the errors it returns, for URI SANs.

Only parsing is emulated (with the escaping rules parsing needs to decide ``RawPath`` and ``RawFragment``);
how the CSR dump prints a parsed URL is :mod:`cfsslpy.certinfo.extensions`' business.
"""

from __future__ import annotations

from dataclasses import dataclass

from cfsslpy.golang.strconv import quote


class URLError(ValueError):
    """A URL Go's ``url.Parse`` refuses; the text is Go's (``parse "<url>": <reason>``)."""


_HEX = "0123456789abcdefABCDEF"
_PATH, _HOST, _ZONE, _USER, _FRAGMENT = "path", "host", "zone", "user", "fragment"


def _should_escape(c: str, mode: str) -> bool:
    """Go ``net/url`` shouldEscape for the modes URL parsing uses."""
    if c.isascii() and c.isalnum():
        return False
    if mode in (_HOST, _ZONE) and c in "!$&'()*+,;=:[]<>\"":
        return False
    if c in "-_.~":
        return False
    if c in "$&+,/:;=?@":
        if mode == _PATH:
            return c == "?"
        if mode == _USER:
            return c in "@/?:"
        if mode == _FRAGMENT:
            return False
    if mode == _FRAGMENT and c in "!()*":
        return False
    return True


def _unescape(s: str, mode: str) -> str:
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == "%":
            if i + 2 >= len(s) or s[i + 1] not in _HEX or s[i + 2] not in _HEX:
                raise URLError(f"invalid URL escape {quote(s[i : i + 3])}")
            value = int(s[i + 1 : i + 3], 16)
            if mode == _HOST and value < 0x80 and s[i : i + 3] != "%25":
                raise URLError(f"invalid URL escape {quote(s[i : i + 3])}")
            if mode == _ZONE and s[i : i + 3] != "%25" and value != 0x20 and _should_escape(chr(value), _HOST):
                raise URLError(f"invalid URL escape {quote(s[i : i + 3])}")
            out.append(value)
            i += 3
            continue
        if mode in (_HOST, _ZONE) and ord(c) < 0x80 and _should_escape(c, mode):
            raise URLError(f"invalid character {quote(c)} in host name")
        out.extend(c.encode("utf-8"))
        i += 1
    return bytes(out).decode("utf-8", errors="surrogateescape")


def _escape(s: str, mode: str) -> str:
    out = []
    for byte in s.encode("utf-8", errors="surrogateescape"):
        c = chr(byte)
        out.append(f"%{byte:02X}" if _should_escape(c, mode) else c)
    return "".join(out)


def _valid_port(port: str) -> bool:
    return port == "" or (port[0] == ":" and all(c.isdigit() and c.isascii() for c in port[1:]))


@dataclass
class URL:
    """The fields of Go 1.19's ``url.URL`` as ``url.Parse`` fills them."""

    scheme: str = ""
    opaque: str = ""
    user: bool = False
    host: str = ""
    path: str = ""
    raw_path: str = ""
    omit_host: bool = False
    force_query: bool = False
    raw_query: str = ""
    fragment: str = ""
    raw_fragment: str = ""

    @classmethod
    def parse(cls, raw: str) -> URL:
        """Go's ``url.Parse``; errors read like Go's ``*url.Error`` (``parse "<url>": <reason>``)."""
        text, _, frag = raw.partition("#")
        try:
            url = cls._parse(text)
        except URLError as exc:
            raise URLError(f"parse {quote(text)}: {exc}") from None
        if frag:
            try:
                url.fragment = _unescape(frag, _FRAGMENT)
            except URLError as exc:
                raise URLError(f"parse {quote(raw)}: {exc}") from None
            url.raw_fragment = "" if _escape(url.fragment, _FRAGMENT) == frag else frag
        return url

    @classmethod
    def _parse(cls, raw: str) -> URL:
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
            raise URLError("net/url: invalid control character in URL")
        url = cls()
        if raw == "*":
            url.path = "*"
            return url
        rest = raw
        for index, c in enumerate(raw):
            if c.isascii() and c.isalpha():
                continue
            if c.isascii() and (c.isdigit() or c in "+-."):
                if index == 0:
                    break
                continue
            if c == ":":
                if index == 0:
                    raise URLError("missing protocol scheme")
                url.scheme, rest = raw[:index].lower(), raw[index + 1 :]
            break
        if rest.endswith("?") and rest.count("?") == 1:
            url.force_query, rest = True, rest[:-1]
        else:
            rest, _, url.raw_query = rest.partition("?")
        if not rest.startswith("/"):
            if url.scheme:
                url.opaque = rest
                return url
            if ":" in rest.partition("/")[0]:
                raise URLError("first path segment in URL cannot contain colon")
        if rest.startswith("//") and (url.scheme or not rest.startswith("///")):
            authority, slash, path = rest[2:].partition("/")
            rest = slash + path
            url._parse_authority(authority)
        elif url.scheme and rest.startswith("/"):
            url.omit_host = True
        url.path = _unescape(rest, _PATH)
        url.raw_path = "" if _escape(url.path, _PATH) == rest else rest
        return url

    def _parse_authority(self, authority: str) -> None:
        at = authority.rfind("@")
        self.host = _parse_host(authority[at + 1 :])
        if at < 0:
            return
        userinfo = authority[:at]
        allowed = "-._:~!$&'()*+,;=%@"
        if not all((c.isascii() and c.isalnum()) or c in allowed for c in userinfo):
            raise URLError("net/url: invalid userinfo")
        username, _, password = userinfo.partition(":")
        _unescape(username, _USER)
        _unescape(password, _USER)
        self.user = True


def _parse_host(host: str) -> str:
    if host.startswith("["):
        end = host.rfind("]")
        if end < 0:
            raise URLError("missing ']' in host")
        if not _valid_port(host[end + 1 :]):
            raise URLError(f"invalid port {quote(host[end + 1 :])} after host")
        zone = host.find("%25", 0, end)
        if zone >= 0:
            return _unescape(host[:zone], _HOST) + _unescape(host[zone:end], _ZONE) + _unescape(host[end:], _HOST)
    elif (colon := host.rfind(":")) >= 0 and not _valid_port(host[colon:]):
        raise URLError(f"invalid port {quote(host[colon:])} after host")
    return _unescape(host, _HOST)
