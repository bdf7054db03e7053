"""Certificate and CSR extensions as Go's ``crypto/x509`` reads them: ``pkix.Extension``, and the subject
alternative names with Go's parsing (URIs through :mod:`cfsslpy.golang.url`) and printing of IPs."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from cfsslpy.certinfo.der import (
    CONTEXT,
    TAG_BOOLEAN,
    TAG_OCTET_STRING,
    TAG_OID,
    TAG_SEQUENCE,
    TLV,
    ASN1Error,
    children,
    expect,
    go_text,
    parse_oid,
    read_tlv,
    sequence,
)
from cfsslpy.golang.strconv import quote
from cfsslpy.golang.url import URL, URLError


def parse_extension(tlv: TLV) -> tuple[list[int], bool, bytes]:
    """pkix.Extension: (id, critical, value); ``critical`` is an optional DER BOOLEAN."""
    items = sequence(tlv, "Extension", 2)
    oid = parse_oid(expect(items[0], TAG_OID, "Extension.Id").content)
    rest, critical = items[1:], False
    if rest[0].is_universal(TAG_BOOLEAN):
        if rest[0].content not in (b"\x00", b"\xff"):
            raise ASN1Error("asn1: syntax error: invalid boolean")
        critical, rest = rest[0].content == b"\xff", rest[1:]
    if not rest:
        raise ASN1Error("asn1: syntax error: sequence truncated")
    return oid, critical, expect(rest[0], TAG_OCTET_STRING, "Extension.Value").content


OID_SAN = "2.5.29.17"
OID_AKI = "2.5.29.35"
OID_SKI = "2.5.29.14"


# --------------------------------------------------------------------------------------------------------------
# Subject alternative names, IPs and URIs the way Go parses and prints them


def go_ip_string(raw: bytes) -> str:
    """Go's ``net.IP.String()``: dotted quad for 4-byte and IPv4-mapped 16-byte addresses, RFC 5952 otherwise."""
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    if len(raw) == 16:
        address = ipaddress.IPv6Address(raw)
        mapped = address.ipv4_mapped
        return str(mapped) if mapped is not None else str(address)
    if not raw:
        return "<nil>"
    return "?" + raw.hex()


@dataclass
class SANs:
    dns: list[str]
    emails: list[str]
    ips: list[str]
    uris: list[dict[str, Any]]


def parse_sans(value: bytes) -> SANs:
    """Go 1.19 ``parseSANExtension``: DNS, email, IP, URI; other name types are skipped."""
    sans = SANs([], [], [], [])
    try:
        names = children(expect(read_tlv(value)[0], TAG_SEQUENCE, "SAN").content)
    except ASN1Error:
        raise ASN1Error("x509: invalid subject alternative names") from None
    for name in names:
        if name.cls != CONTEXT or name.constructed:
            continue
        if name.tag == 1:
            sans.emails.append(_ia5_san(name.content, "rfc822Name"))
        elif name.tag == 2:
            sans.dns.append(_ia5_san(name.content, "dNSName"))
        elif name.tag == 6:
            text = _ia5_san(name.content, "uniformResourceIdentifier")
            try:
                uri = URL.parse(text)
            except URLError as exc:
                raise ASN1Error(f"x509: cannot parse URI {quote(text)}: {exc}") from None
            if uri.host and not _valid_uri_host(uri.host):
                raise ASN1Error(f"x509: cannot parse URI {quote(text)}: invalid domain")
            sans.uris.append(_uri_json(uri))
        elif name.tag == 7:
            if len(name.content) not in (4, 16):
                raise ASN1Error(f"x509: cannot parse IP address of length {len(name.content)}")
            sans.ips.append(go_ip_string(name.content))
    return sans


def _ia5_san(content: bytes, what: str) -> str:
    if any(byte >= 0x80 for byte in content):
        raise ASN1Error(f"x509: SAN {what} is malformed")
    return content.decode("ascii")


def _valid_uri_host(host: str) -> bool:
    """Go's ``domainToReverseLabels`` check on a URI SAN host (the port is just part of a label)."""
    labels = host.split(".")
    return all(label and all(33 <= ord(c) <= 126 for c in label) for label in labels)


def _uri_json(url: URL) -> dict[str, Any]:
    """Go's ``url.URL`` as encoding/json prints it in the CSR dump (strings with bytes that are not UTF-8
    as :func:`go_text` has them)."""
    return {
        "Scheme": url.scheme,
        "Opaque": url.opaque,
        "User": {} if url.user else None,  # *url.Userinfo has unexported fields only
        "Host": go_text(url.host),
        "Path": go_text(url.path),
        "RawPath": url.raw_path,
        "OmitHost": url.omit_host,
        "ForceQuery": url.force_query,
        "RawQuery": url.raw_query,
        "Fragment": go_text(url.fragment),
        "RawFragment": url.raw_fragment,
    }
