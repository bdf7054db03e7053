"""The web console's read-only endpoints (cfsslpy additions; cfssl has none of them), in cfssl's envelope.

They live under their own prefix, ``/api/v1/cfsslpy/`` (:data:`PREFIX`), so that cfssl's ``/api/v1/cfssl/``
keeps exactly cfssl's endpoints (a client listing them, or a proxy allowing them, sees no difference).

========================= ====== =====================================================================
``capabilities``          GET    what this server offers: endpoints, certdb, signer, bundler, CRL, OCSP
``profiles``              GET    the signing profiles (name, usages, expiry, whether an auth key is needed)
``parse``                 POST   ``{"data": PEM text or base64 DER}`` -> ``{"objects": [...]}``: certificates,
                                 CSRs, chains and CRLs described (:mod:`.describe`)
``certificates``          GET    ``?q=&status=&sort=expiry|issued&order=asc|desc&page=&page_size=``: one page
                                 of the certdb's certificates
``certificate``           GET    ``?serial=&aki=``: one recorded certificate, parsed, with its PEM
``crlinfo``               GET    the last CRL number handed out and the count of revoked, unexpired rows
``ocspstatus``            GET    ``?serial=&aki=``: the status the certdb holds, and its stored OCSP response
========================= ====== =====================================================================

Nothing here writes: revoking and fetching a CRL stay cfssl's ``revoke`` and ``crl`` (with their own rules
and protections). Without a certificate database the certdb endpoints answer 404 with :data:`NO_DB_MESSAGE`.
Inputs are bounded: the query string (:data:`MAX_QUERY`), the search (128 characters), the page size (1-100),
the parse body (512 KiB); every value reaches SQL as a bound parameter (:mod:`cfsslpy.certdb.queries`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from cryptography import x509

from cfsslpy.api.endpoints import Registry, requires_auth
from cfsslpy.api.endpoints.describe import describe_certificate, describe_data, reason_name
from cfsslpy.api.envelope import ApiError, ApiRequest, Reply
from cfsslpy.api.state import ApiState
from cfsslpy.certdb import EXPIRING_SOON, CertDB, CertificateQuery, CertificateRecord, key_id_hex, with_aki
from cfsslpy.errors import CfsslError
from cfsslpy.golang.json import JSONDecodeError, format_duration
from cfsslpy.revocation import normalize_aki, parse_serial
from cfsslpy.x509util import rfc3339

PREFIX = "/api/v1/cfsslpy/"
MAX_QUERY = 2048
NO_DB_MESSAGE = "no certificate database: start serve with -db-config (or -datadir) to list certificates"


def register(reg: Registry) -> None:
    state = reg.state
    handlers: dict[str, tuple[str, Callable[[ApiRequest], Reply]]] = {
        "capabilities": ("GET", _Capabilities(reg)),
        "profiles": ("GET", lambda _req: _profiles(state)),
        "parse": ("POST", _parse),
        "certificates": ("GET", _needs_db(state, _certificates)),
        "certificate": ("GET", _needs_db(state, _certificate)),
        "crlinfo": ("GET", _needs_db(state, lambda db, _req: _crlinfo(state, db))),
        "ocspstatus": ("GET", _needs_db(state, _ocspstatus)),
    }
    for name, (method, handler) in handlers.items():
        reg.add(name, method, handler, PREFIX + name)


def _needs_db(state: ApiState, handler: Callable[[CertDB, ApiRequest], Reply]) -> Callable[[ApiRequest], Reply]:
    def call(req: ApiRequest) -> Reply:
        if state.db is None:
            raise ApiError(404, NO_DB_MESSAGE)
        return handler(state.db, req)

    return call


def query_values(req: ApiRequest, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query string as single values; 400 for a long one, an unknown key or a repeated key."""
    raw = str(req.environ.get("QUERY_STRING", ""))
    if len(raw) > MAX_QUERY:
        raise ApiError(400, f"query string longer than {MAX_QUERY} characters")
    try:
        parsed = parse_qs(raw, keep_blank_values=True, strict_parsing=False, max_num_fields=len(allowed) + 1)
    except ValueError:
        raise ApiError(400, "too many query parameters") from None
    out: dict[str, str] = {}
    for key, values in parsed.items():
        if key not in allowed:
            raise ApiError(400, f"unknown query parameter {key[:32]!r}: want {', '.join(allowed)}")
        if len(values) != 1:
            raise ApiError(400, f"query parameter {key!r} given more than once")
        out[key] = values[0]
    return out


def _int(values: dict[str, str], key: str, default: int) -> int:
    text = values.get(key, "")
    if text == "":
        return default
    if not text.isdigit() or len(text) > 9:
        raise ApiError(400, f"{key} must be a positive integer")
    return int(text)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _time(value: dt.datetime | None) -> str | None:
    return None if value is None or value.year <= 1 else rfc3339(value)


def _profile_of(rec: CertificateRecord) -> str:
    metadata = rec.metadata
    if isinstance(metadata, dict) and isinstance(metadata.get("profile"), str):
        return str(metadata["profile"])
    return ""


def record_summary(rec: CertificateRecord, now: dt.datetime) -> dict[str, Any]:
    """A row as the list shows it: identifiers, names, status and dates; ``expiring_soon`` for a good
    certificate that expires within 30 days, ``expired`` once it has."""
    expired = rec.expiry <= now
    return {
        "serial_number": rec.serial,
        "authority_key_identifier": rec.aki,
        "common_name": rec.common_name or "",
        "sans": rec.sans or [],
        "ca_label": rec.ca_label,
        "profile": _profile_of(rec),
        "status": rec.status,
        "reason": rec.reason,
        "reason_name": reason_name(rec.reason) if rec.is_revoked else "",
        "expiry": _time(rec.expiry),
        "not_before": _time(rec.not_before),
        "issued_at": _time(rec.issued_at),
        "revoked_at": _time(rec.revoked_at),
        "expired": expired,
        "expiring_soon": rec.status == "good" and not expired and rec.expiry <= now + EXPIRING_SOON,
    }


# -- capabilities and profiles --------------------------------------------------------------------------


class _Capabilities:
    """``GET capabilities``: what the page can offer, so it never probes an endpoint that is not there."""

    def __init__(self, reg: Registry) -> None:
        self.reg = reg

    def __call__(self, _req: ApiRequest) -> Reply:
        state = self.reg.state
        names = sorted({name for name, _method, _path in self.reg.registered})
        ca = _ca_certificate(state)
        trusted = False
        if state.bundler is not None and ca is not None:
            trusted = ca in state.bundler.roots or ca in state.bundler.intermediates
        return Reply(
            {
                "endpoints": names,
                "certdb": state.db is not None,
                "signer": state.signer is not None,
                "bundler": state.bundler is not None,
                "bundler_trusts_ca": trusted,
                "ca": None if ca is None else {"common_name": describe_certificate(ca)["common_name"], "aki": _ski_hex(ca)},
            }
        )


def _ca_certificate(state: ApiState) -> x509.Certificate | None:
    """The CA this server signs with, when it holds it: never asked of a remote signer (no outbound call on a
    page load)."""
    if state.crl_issuer is not None:
        return state.crl_issuer[0]
    cert = getattr(getattr(state.signer, "issuer", None), "cert", None)
    return cert if isinstance(cert, x509.Certificate) else None


def _ski_hex(cert: x509.Certificate) -> str:
    """The CA's subject key identifier as the certdb stores its certificates' AKIs."""
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex()
    except (x509.ExtensionNotFound, ValueError):
        return ""


def _profiles(state: ApiState) -> Reply:
    """``GET profiles``: the policy the signer signs with (names, usages, expiry, auth); never a key."""
    policy = state.signer.policy if state.signer is not None and hasattr(state.signer, "policy") else state.policy

    def one(name: str, profile: Any) -> dict[str, Any]:
        return {
            "name": name,
            "usages": list(profile.usages),
            "expiry": profile.expiry_string or format_duration(profile.expiry),
            "auth": requires_auth(profile),
            "ca": bool(profile.ca_constraint.is_ca),
        }

    profiles = [one("", policy.default)] + [one(name, p) for name, p in sorted(policy.profiles.items())]
    return Reply({"profiles": profiles})


# -- parse ------------------------------------------------------------------------------------------------


def _parse(req: ApiRequest) -> Reply:
    try:
        body = req.json()
    except JSONDecodeError as exc:
        raise ApiError(400, str(exc)) from None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, str):
        raise ApiError(400, 'want {"data": "PEM text or base64 DER"}')
    return Reply({"objects": describe_data(data)})


# -- the certdb -------------------------------------------------------------------------------------------

_LIST_KEYS = ("q", "status", "sort", "order", "page", "page_size")


def _certificates(db: CertDB, req: ApiRequest) -> Reply:
    values = query_values(req, _LIST_KEYS)
    order = values.get("order", "asc") or "asc"
    if order not in ("asc", "desc"):
        raise ApiError(400, "order must be asc or desc")
    query = CertificateQuery(
        search=values.get("q", ""),
        status=values.get("status", ""),
        sort=values.get("sort", "expiry") or "expiry",
        descending=order == "desc",
        page=_int(values, "page", 1),
        page_size=_int(values, "page_size", 25),
    )
    now = _now()
    page = db.search_certificates(query, now=now)
    return Reply(
        {
            "certificates": [record_summary(rec, now) for rec in page.records],
            "page": page.page,
            "page_size": page.page_size,
            "pages": page.pages,
            "total": page.total,
        }
    )


def _lookup(db: CertDB, req: ApiRequest) -> CertificateRecord:
    values = query_values(req, ("serial", "aki"))
    if not values.get("serial"):
        raise ApiError(400, "serial is required")
    serial = str(parse_serial(values["serial"]))
    records = db.certificates_by_serial(serial)
    if values.get("aki"):
        aki = normalize_aki(values["aki"])
        records = [r for r in records if r.aki == aki or (not r.aki and with_aki(r).aki == aki)]
    if not records:
        raise ApiError(404, "no certificate found")
    if len(records) > 1:
        raise ApiError(400, "several certificates have this serial: give aki too")
    return with_aki(records[0])


def _certificate(db: CertDB, req: ApiRequest) -> Reply:
    rec = _lookup(db, req)
    now = _now()
    out = record_summary(rec, now)
    try:
        parsed = describe_certificate(rec.certificate())
    except CfsslError:
        parsed = None
    out["certificate"] = parsed
    out["metadata"] = rec.metadata
    out["pem"] = rec.pem
    return Reply(out)


def _crlinfo(state: ApiState, db: CertDB) -> Reply:
    ca = _ca_certificate(state)
    aki = _ski_hex(ca) if ca is not None else ""
    revoked = db.revoked_unexpired(aki or None)
    return Reply(
        {
            "issuer": "" if ca is None else ca.subject.rfc4514_string(),
            "authority_key_identifier": aki,
            "last_number": None if not aki else _number(db.last_crl_number(aki)),
            "revoked_count": len(revoked),
            "crl_available": state.db is not None and state.crl_issuer is not None and state.signer is not None,
        }
    )


def _number(value: int | None) -> str | None:
    return None if value is None else str(value)  # a string: CRL numbers may exceed JavaScript's integers


def _ocspstatus(db: CertDB, req: ApiRequest) -> Reply:
    from cryptography.x509 import ocsp

    rec = _lookup(db, req)
    stored = db.get_ocsp(rec.serial, rec.aki)
    response: dict[str, Any] | None = None
    if stored:
        try:
            parsed = ocsp.load_der_ocsp_response(stored[0].body)
            if parsed.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL:
                response = {
                    "cert_status": parsed.certificate_status.name.lower(),
                    "produced_at": rfc3339(parsed.produced_at_utc),
                    "this_update": rfc3339(parsed.this_update_utc),
                    "next_update": _time(parsed.next_update_utc),
                    "revoked_at": _time(parsed.revocation_time_utc),
                }
            else:
                response = {"cert_status": "error", "response_status": parsed.response_status.name.lower()}
        except ValueError:
            response = {"cert_status": "unparseable"}
    return Reply(
        {
            "serial_number": rec.serial,
            "authority_key_identifier": rec.aki or key_id_hex(rec.certificate()),
            "status": rec.status,
            "reason": rec.reason,
            "reason_name": reason_name(rec.reason) if rec.is_revoked else "",
            "revoked_at": _time(rec.revoked_at),
            "source": "certdb",
            "stored_response": response,
        }
    )
