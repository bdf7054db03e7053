"""Revocation endpoints: ``gencrl``, ``crl``, ``revoke``, ``ocspsign`` and ``certadd`` (reference §2.3, §4.4-4.7).

Registration (§2.1): ``gencrl`` with a signer (which it does not use: the request carries the CA); ``crl``
with a signer, a certificate database and the CA certificate and key; ``revoke`` with a database;
``ocspsign`` with an OCSP signer (``-ca`` + ``-responder`` + ``-responder-key``); ``certadd`` always (without
a database every call fails with 11000).

Requests and results:

* ``POST gencrl`` ``{"certificate", "serialNumber": ["decimal", ...], "issuingKey", "expireTime": "seconds"}``
  -> the base64 DER CRL (a JSON string);
* ``GET crl?expiry=168h`` (a Go duration) -> the base64 DER CRL of the database's revoked, unexpired
  certificates of this CA;
* ``POST revoke`` ``{"serial", "authority_key_id", "reason"}`` -> ``{}``;
* ``POST ocspsign`` ``{"certificate", "status", "reason": int, "revoked_at": "YYYY-MM-DD"|"now",
  "issuer_hash": "SHA1"|"SHA256"|"SHA384"|"SHA512"}`` -> ``{"ocspResponse": "<base64 DER>"}``;
* ``POST certadd`` ``{"serial_number", "authority_key_identifier", "ca_label", "status", "reason",
  "expiry", "revoked_at", "pem", "issued_at", "not_before", "metadata", "sans", "common_name"}`` -> ``{}``.

Deliberate differences from cfssl, each safer:

* revoke requires ``authority_key_id`` (cfssl revokes the rows whose AKI column equals the empty string),
  and the serial and AKI are normalised (decimal; hex without colons, lower case) before the lookup;
* ocspsign validates the integer ``reason`` (0-10 except 7; cfssl signs whatever number it gets) and
  refuses ``MD5`` with the handler's own message (cfssl accepts it, then its OCSP library fails);
* with a database, ocspsign refuses (403) a status that contradicts the certificate's row (GOOD for a revoked
  certificate, REVOKED or UNKNOWN for a good one: cfssl signs any status, so anyone who can reach it gets a
  GOOD response to staple for a revoked certificate) unless the request is authenticated as authsign
  requests are: ``{"token", "request", "timestamp"}`` with the ocspsign request base64-encoded in
  ``request`` and ``token`` = HMAC-SHA256 under the **default** profile's ``auth_key`` (or
  ``prev_auth_key``), timestamped and single-use when that profile has ``auth_replay_window``. A
  certificate the database does not know is signed as asked. Without a database nothing changes;
* ocspsign and the CRLs are not signed by a responder or CA certificate that is expired or not yet valid
  (1211; cfssl signs with them);
* certadd refuses a certificate that the serving CA did not sign (when serve has one: cfssl records any
  certificate, so anyone who can reach the API could make ``certinfo`` and the CRL lookups vouch for a
  foreign certificate), stores the serial, AKI and PEM in their canonical forms (cfssl stores what it was
  sent, so ``0123`` or an upper-case AKI would never be found again), compares ``expiry`` as an instant,
  and ignores ``reason``/``revoked_at`` for a certificate that is not revoked;
* without a database certadd fails with 11000 and a message that says what is missing (cfssl: ``unknown
  db object, please check SetDB method``).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cfsslpy.api.endpoints import Registry, requires_auth
from cfsslpy.api.envelope import ApiError, ApiRequest, Reply, decode_json
from cfsslpy.api.state import ApiState
from cfsslpy.auth import AuthenticatedRequest
from cfsslpy.certdb import STATUSES, CertDB, CertificateRecord, key_id_hex
from cfsslpy.config import SigningProfile
from cfsslpy.errors import Category, CfsslError, PlainError, Reason, log_value
from cfsslpy.golang.decode import INT, RAW, STRING, STRINGS, TIME, decode, go_struct
from cfsslpy.golang.json import JSONDecodeError, fold_keys, parse_date, parse_duration
from cfsslpy.pem import parse_certificate_pem
from cfsslpy.revocation import normalize_aki, parse_reason, parse_serial, reason_flag
from cfsslpy.x509util import b64, issued_by

log = logging.getLogger("cfsslpy.api")

T = TypeVar("T")

DEFAULT_CRL_EXPIRY = "168h"
NO_DB_MESSAGE = "no certificate database: start serve with -db-config to record certificates"


def register(reg: Registry) -> None:
    state = reg.state
    if state.signer is not None:
        reg.add("gencrl", "POST", _gencrl)
    else:
        reg.skip("gencrl", "no signer")
    if state.signer is None or state.db is None or state.crl_issuer is None:
        reg.skip("crl", "needs a signer, a certificate database (-db-config) and the CA certificate and key")
    else:
        reg.add("crl", "GET", _CRL(state.db, state.crl_issuer))
    if state.db is not None:
        reg.add("revoke", "POST", _Revoke(state.db))
    else:
        reg.skip("revoke", "no certificate database (-db-config)")
    if state.ocsp_signer is not None:
        reg.add("ocspsign", "POST", _OCSPSign(reg))
    else:
        reg.skip("ocspsign", "no OCSP signer (-ca, -responder, -responder-key)")
    reg.add("certadd", "POST", _CertAdd(state))


def _body(target: type[T], obj: Any, parse_error: str) -> T:
    """A request body (a decoded JSON value) read into its Go struct; any decoding error -> 400 ``parse_error``."""
    try:
        return decode(target, obj)
    except JSONDecodeError:
        raise ApiError(400, parse_error) from None


def _request_body(target: type[T], req: ApiRequest, parse_error: str) -> T:
    """:func:`_body` of the request's JSON body (a body that is not JSON is the same 400)."""
    try:
        obj = req.json()
    except JSONDecodeError:
        raise ApiError(400, parse_error) from None
    return _body(target, obj, parse_error)


# ---------------------------------------------------------------------------------------------------------
# gencrl


_GENCRL_FIELDS = ("certificate", "serialNumber", "issuingKey", "expireTime")


def _gencrl(req: ApiRequest) -> Reply:
    from cfsslpy import crl

    # cfssl only logs a body that does not decode, and goes on with what it got (here: nothing).
    try:
        obj = req.json()
    except JSONDecodeError as exc:
        log.warning("gencrl: %s", log_value(str(exc)))
        obj = {}
    fields = fold_keys(obj, _GENCRL_FIELDS) if isinstance(obj, dict) else {}

    def text(key: str) -> str:
        value = fields.get(key)
        return value if isinstance(value, str) else ""

    serials = fields.get("serialNumber")
    serial_list = [s for s in serials if isinstance(s, str)] if isinstance(serials, list) else []
    for serial in serial_list:
        if any(c.isspace() for c in serial.strip()):
            raise CfsslError(Category.CERTIFICATE, Reason.BAD_REQUEST, f"invalid serial number {serial!r}: want a decimal integer")
    try:
        der = crl.gencrl(
            "\n".join(s.strip() for s in serial_list).encode("utf-8"),
            text("certificate").encode("utf-8"),
            text("issuingKey").encode("utf-8"),
            text("expireTime"),
        )
    except CfsslError as exc:
        # cfssl's handler answers an undecodable certificate or key with its HTTP helper (code 400) and these
        # texts; its CLI prints the 1002/1003/2002/2003 errors themselves. An encrypted key (2100), an
        # unsupported one (2200) or a wrong password keep their own, more precise, errors.
        if exc.code in (1002, 1003):
            raise ApiError(400, "malformed certificate") from None
        if exc.code in (2002, 2003) and exc.message in ("Failed to decode private key", "Failed to parse private key"):
            raise ApiError(400, "malformed Private Key") from None
        raise
    return Reply(b64(der))


# ---------------------------------------------------------------------------------------------------------
# crl


class _CRL:
    """``GET /crl?expiry=DUR``: the CRL of the database's revoked, unexpired certificates of this CA."""

    def __init__(self, db: CertDB, issuer: tuple[x509.Certificate, Any]) -> None:
        self.db, self.issuer = db, issuer

    def __call__(self, req: ApiRequest) -> Reply:
        from cfsslpy import crl

        values = parse_qs(req.environ.get("QUERY_STRING", ""), keep_blank_values=True).get("expiry", [])
        text = values[0] if values else ""
        try:
            nanoseconds = parse_duration(text or DEFAULT_CRL_EXPIRY)
        except ValueError as exc:
            raise PlainError(str(exc)) from None  # cfssl: Go's ParseDuration text, 500
        cert, key = self.issuer
        der = crl.crl_from_db(self.db, cert, key, dt.timedelta(microseconds=nanoseconds // 1000))
        return Reply(b64(der))


# ---------------------------------------------------------------------------------------------------------
# revoke


@go_struct("revoke.jsonRevokeRequest", {"serial": STRING, "authority_key_id": STRING, "reason": STRING})
@dataclass
class RevokeRequest:
    serial: str = ""
    authority_key_id: str = ""
    reason: str = ""


class _Revoke:
    """``POST /revoke``: mark a recorded certificate revoked."""

    def __init__(self, db: CertDB) -> None:
        self.db = db

    def __call__(self, req: ApiRequest) -> Reply:
        body = _request_body(RevokeRequest, req, "Unable to parse revocation request")
        serial, aki, reason_text = body.serial, body.authority_key_id, body.reason
        if not serial:
            raise ApiError(400, "serial number is required but not provided")
        if not aki:
            raise ApiError(400, "authority key id is required but not provided")
        try:
            reason = parse_reason(reason_text)
        except CfsslError:
            raise ApiError(400, "Invalid reason code") from None
        self.db.revoke(str(parse_serial(serial)), normalize_aki(aki), reason)
        return Reply({})


# ---------------------------------------------------------------------------------------------------------
# ocspsign


@go_struct("ocsp.jsonSignRequest", {"certificate": STRING, "status": STRING, "reason": INT, "revoked_at": STRING, "issuer_hash": STRING})
@dataclass
class OCSPRequest:
    """ocspsign's body (cfssl's ``jsonSignRequest``)."""

    certificate: str = ""
    status: str = "good"
    reason: int = 0
    revoked_at: str = ""
    issuer_hash: str = ""


_ISSUER_HASHES = ("SHA1", "SHA256", "SHA384", "SHA512")


class _OCSPSign:
    """``POST /ocspsign``: one OCSP response signed by serve's OCSP signer.

    With a certificate database, a status that contradicts the certificate's row is refused (403) unless the
    request is authenticated, as authsign authenticates: the body is then ``{"token", "request",
    "timestamp"}`` (:class:`cfsslpy.auth.AuthenticatedRequest`) with the ocspsign request base64-encoded in
    ``request``, and the token is checked with the **default** profile's ``auth_key`` / ``prev_auth_key``
    (with its ``auth_replay_window`` rules when it has one). A body with a ``token`` field is an
    authenticated request; anything wrong with it is a 400, as on authsign.
    """

    def __init__(self, reg: Registry) -> None:
        assert reg.state.ocsp_signer is not None
        self.reg = reg
        self.signer = reg.state.ocsp_signer
        self.db = reg.state.db

    def _body(self, req: ApiRequest) -> tuple[OCSPRequest, bool]:
        """The request and whether it was authenticated."""
        try:
            obj = req.json()
        except JSONDecodeError:
            raise ApiError(400, "Unable to parse sign request") from None
        if not (isinstance(obj, dict) and "token" in fold_keys(obj, ("token",))):
            return _body(OCSPRequest, obj, "Unable to parse sign request"), False
        try:
            auth_request = AuthenticatedRequest.from_json(obj)
        except JSONDecodeError as exc:
            raise ApiError(400, str(exc)) from None
        _check_token(self.reg, self.reg.state.policy.default, auth_request)
        try:
            inner = decode_json(auth_request.request)
        except JSONDecodeError:
            raise ApiError(400, "Unable to parse authenticated sign request") from None
        return _body(OCSPRequest, inner, "Unable to parse authenticated sign request"), True

    def __call__(self, req: ApiRequest) -> Reply:
        from cfsslpy.ocsp import OCSPSignRequest, check_against_db, parse_status

        body, authenticated = self._body(req)
        pem, status, reason, revoked_text, issuer_hash = body.certificate, body.status, body.reason, body.revoked_at, body.issuer_hash
        try:
            cert = parse_certificate_pem(pem.encode("utf-8"))
        except CfsslError:
            raise ApiError(400, "Malformed certificate") from None
        revoked_at: dt.datetime | None = None
        if status == "revoked":
            if revoked_text not in ("", "now"):
                revoked_at = _go_date(revoked_text)
            try:
                reason_flag(reason)  # cfssl signs any number; RFC 5280 defines these only
            except CfsslError:
                raise ApiError(400, "Invalid reason code") from None
        else:
            reason = 0
        if issuer_hash and issuer_hash.upper() not in _ISSUER_HASHES:
            raise ApiError(400, "Unsupported hash algorithm in request")
        sign_request = OCSPSignRequest(
            certificate=cert, status=status, reason=reason, revoked_at=revoked_at, issuer_hash=(issuer_hash or "SHA1").upper()
        )
        if self.db is not None and not authenticated:
            parse_status(status)  # 8200 for a status that is none of the three, before the database is asked
            try:
                check_against_db(self.db, sign_request)
            except CfsslError as exc:
                log.warning("ocspsign refused: %s", exc.message)
                raise ApiError(403, exc.message + " (an authenticated request may sign it)") from None
        return Reply({"ocspResponse": b64(self.signer.sign(sign_request))})


def _check_token(reg: Registry, profile: SigningProfile, auth_request: AuthenticatedRequest) -> None:
    """authsign's token rules for ``profile``: 400 ``no authentication provider`` without an ``auth_key``,
    ``invalid token`` (and, with ``auth_replay_window``, ``missing timestamp`` / ``stale timestamp``)."""
    from cfsslpy.api.endpoints.sign import check_token

    if not requires_auth(profile):
        log.error("ocspsign: the default profile has no auth_key: authenticated requests cannot be checked")
        raise ApiError(400, "no authentication provider")
    check_token(reg, profile, auth_request)


def _go_date(text: str) -> dt.datetime:
    """Go's ``time.Parse("2006-01-02", text)`` at UTC midnight; 400 ``Malformed revocation time`` otherwise."""
    try:
        return parse_date(text)
    except ValueError:
        raise ApiError(400, "Malformed revocation time") from None


# ---------------------------------------------------------------------------------------------------------
# certadd


_CERTADD_PARSE = "Unable to parse certificate addition request"
_DECIMAL = re.compile(r"[+-]?\d+", re.ASCII)
_HEX = re.compile(r"[0-9a-fA-F]*", re.ASCII)


@go_struct(
    "certadd.AddRequest",
    {
        "serial_number": STRING,
        "authority_key_identifier": STRING,
        "ca_label": STRING,
        "status": STRING,
        "reason": INT,
        "expiry": TIME,
        "revoked_at": TIME,
        "pem": STRING,
        "issued_at": TIME,
        "not_before": TIME,
        "metadata": RAW,
        "sans": STRINGS,
        "common_name": STRING,
    },
)
@dataclass
class AddRequest:
    """certadd's body (cfssl's ``certadd.AddRequest``); times are None when absent or Go's zero time."""

    serial_number: str = ""
    authority_key_identifier: str = ""
    ca_label: str = ""
    status: str = ""
    reason: int = 0
    expiry: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
    pem: str = ""
    issued_at: dt.datetime | None = None
    not_before: dt.datetime | None = None
    metadata: Any = None
    sans: list[str] | None = None
    common_name: str = ""


def _server_ca(state: ApiState) -> x509.Certificate | None:
    """The CA this server signs with, when it has one (certadd accepts only its certificates)."""
    if state.crl_issuer is not None:
        return state.crl_issuer[0]
    certificate = getattr(state.signer, "certificate", None)
    if isinstance(certificate, x509.Certificate):
        return certificate
    if state.ocsp_signer is not None:
        return state.ocsp_signer.issuer
    return None


class _CertAdd:
    """``POST /certadd``: record a certificate issued elsewhere (by this CA) in the database."""

    def __init__(self, state: ApiState) -> None:
        self.db = state.db
        self.ca = _server_ca(state)

    def __call__(self, req: ApiRequest) -> Reply:
        record = self.parse(req)
        if self.db is None:  # cfssl: validates, then its accessor fails with 11000
            raise CfsslError(Category.CERT_STORE, Reason.UNKNOWN, NO_DB_MESSAGE)
        self.db.insert_certificate(record)
        return Reply({})

    def parse(self, req: ApiRequest) -> CertificateRecord:
        """The validated record, checks in cfssl's order (each a 400 with cfssl's message)."""
        body = _request_body(AddRequest, req, _CERTADD_PARSE)
        _check_fields(body)
        cert = self._check_certificate(body)
        revoked = body.status == "revoked"
        return CertificateRecord(
            serial=str(cert.serial_number),
            aki=key_id_hex(cert),
            pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            expiry=cert.not_valid_after_utc,
            status=body.status,
            reason=body.reason if revoked else 0,
            revoked_at=body.revoked_at if revoked else None,
            ca_label=body.ca_label,
            issued_at=body.issued_at,
            not_before=body.not_before or cert.not_valid_before_utc,
            metadata=body.metadata,
            sans=body.sans,
            common_name=body.common_name or None,
        )

    def _check_certificate(self, body: AddRequest) -> x509.Certificate:
        """The certificate, checked against the request's serial, AKI and expiry and against this server's CA."""
        try:
            cert = parse_certificate_pem(body.pem.encode("utf-8"))
        except CfsslError:
            raise ApiError(400, "Unable to parse PEM encoded certificates") from None
        serial, aki = body.serial_number, body.authority_key_identifier
        if not _DECIMAL.fullmatch(serial):
            raise ApiError(400, "Unable to parse serial key of request")
        if int(serial, 10) != cert.serial_number:
            raise ApiError(400, "Serial key of request and certificate do not match")
        if len(aki) % 2 or not _HEX.fullmatch(aki):
            raise ApiError(400, "Unable to decode authority key identifier")
        if bytes.fromhex(aki).hex() != key_id_hex(cert):
            raise ApiError(400, "Authority key identifier of request and certificate do not match")
        if body.expiry != cert.not_valid_after_utc:
            raise ApiError(400, "Expiry of request and certificate do not match")
        if self.ca is not None and not issued_by(cert, self.ca):
            raise ApiError(400, "The certificate was not issued by this server's CA")
        return cert


def _check_fields(body: AddRequest) -> None:
    """cfssl's checks of the request's own fields, before the certificate is parsed."""
    if not body.serial_number:
        raise ApiError(400, "Serial number is required but not provided")
    if not body.authority_key_identifier:
        raise ApiError(400, "Authority key identifier is required but not provided")
    if body.status not in STATUSES:
        raise ApiError(400, "Invalid certificate status")
    if body.status == "revoked":
        if body.revoked_at is None:
            raise ApiError(400, "Revoked certificate should specify when it was revoked")
        try:
            reason_flag(body.reason)
        except CfsslError:
            raise ApiError(400, "Invalid certificate status reason code") from None
    if not body.pem:
        raise ApiError(400, "The provided certificate is empty")
    if body.expiry is None:
        raise ApiError(400, "Expiry is required but not provided")
