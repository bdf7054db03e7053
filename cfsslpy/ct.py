"""Certificate Transparency for profiles with ``ct_log_servers`` (RFC 6962, as cfssl's local signer does).

The signer issues a precertificate (the final certificate plus the critical poison extension
1.3.6.1.4.1.11129.2.4.3), submits ``[precert, issuer]`` to each log's ``/ct/v1/add-pre-chain``, and embeds
the returned SCTs as the SignedCertificateTimestampList extension (1.3.6.1.4.1.11129.2.4.2, non-critical)
in the final certificate. Any submission failure fails the signing (10100): a certificate that promised CT
is never issued without its SCTs.

Each SCT's structure is checked (version 1 = v1, 32-byte log id, TLS lengths); like cfssl, the SCT signature
is not verified because the profile does not carry the logs' public keys.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from cfsslpy import net
from cfsslpy.errors import Category, CfsslError, Reason
from cfsslpy.golang import json as gojson

OID_SCT_LIST = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
SUBMIT_TIMEOUT = 30.0
_MAX_RESPONSE = 64 * 1024


def _submission_error(message: str) -> CfsslError:
    return CfsslError(Category.CT, Reason.PRECERT_SUBMISSION_FAILED, message)


def serialize_sct(response: Any) -> bytes:
    """The TLS encoding of one SCT from an add-pre-chain JSON response (RFC 6962 §3.2, §4.1)."""
    if not isinstance(response, dict):
        raise _submission_error("CT log response is not a JSON object")
    try:
        version = int(response["sct_version"])
        log_id = base64.b64decode(response["id"], validate=True)
        timestamp = int(response["timestamp"])
        extensions = base64.b64decode(response.get("extensions") or "", validate=True)
        signature = base64.b64decode(response["signature"], validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise _submission_error(f"malformed CT log response: {exc}") from None
    if version != 0:
        raise _submission_error(f"unsupported SCT version {version}")
    if len(log_id) != 32:
        raise _submission_error("malformed CT log response: log id is not 32 bytes")
    if not 0 <= timestamp < 2**64:
        raise _submission_error("malformed CT log response: timestamp out of range")
    if len(extensions) > 0xFFFF:
        raise _submission_error("malformed CT log response: extensions too long")
    # DigitallySigned: hash(1) signature algorithm(1) length(2) signature
    if len(signature) < 4 or struct.unpack(">H", signature[2:4])[0] != len(signature) - 4:
        raise _submission_error("malformed CT log response: bad digitally-signed structure")
    return struct.pack(">B32sQH", version, log_id, timestamp, len(extensions)) + extensions + signature


def sct_list_extension(scts: list[bytes]) -> x509.UnrecognizedExtension:
    """SignedCertificateTimestampList wrapped in an OCTET STRING, as the extension value (RFC 6962 §3.3)."""
    body = b"".join(struct.pack(">H", len(s)) + s for s in scts)
    tls_list = struct.pack(">H", len(body)) + body
    return x509.UnrecognizedExtension(OID_SCT_LIST, _der_octet_string(tls_list))


def _der_octet_string(data: bytes) -> bytes:
    length = len(data)
    if length < 0x80:
        header = bytes([length])
    else:
        raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
        header = bytes([0x80 | len(raw)]) + raw
    return b"\x04" + header + data


def submit_precert(server: str, chain: list[bytes], timeout: float = SUBMIT_TIMEOUT) -> bytes:
    """POST the DER chain to ``server``'s add-pre-chain endpoint; returns the TLS-encoded SCT."""
    url = server.rstrip("/") + "/ct/v1/add-pre-chain"
    if not url.startswith(("http://", "https://")):
        raise _submission_error(f"CT log server {server!r} is not an http(s) URL")
    body = json.dumps({"chain": [base64.b64encode(c).decode() for c in chain]}).encode()
    try:
        payload = net.fetch_body(url, body, "application/json", max_bytes=_MAX_RESPONSE, timeout=timeout)
    except net.BadStatus as exc:
        raise _submission_error(f"CT log {server} answered HTTP {exc.status}") from None
    except net.TooLarge:
        raise _submission_error(f"CT log {server} response too large") from None
    except net.FetchError as exc:
        raise _submission_error(f"CT log {server} unreachable: {exc.message}") from None
    try:
        parsed = gojson.loads(payload)  # depth-limited: a hostile log cannot exhaust the recursion limit
    except ValueError:
        raise _submission_error(f"CT log {server} returned invalid JSON") from None
    return serialize_sct(parsed)
