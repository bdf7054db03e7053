"""``POST /certinfo``: describe a certificate given as PEM or fetched from a TLS server (reference §2.3).

Request (a JSON object of strings): ``certificate`` (PEM), or ``domain`` (``host[:port]``, fetched without
verification, as cfssl does: any API client can make the server open a TLS connection to any host), or
``serial`` + ``authority_key_id`` (looked up in serve's ``-db-config`` certificate database: not recorded ->
400 code 11200 ``no certificate found``, where cfssl answers 500 code 0; without a database, cfssl's 500
``cannot lookup certificate from serial without db access``). The first present wins, in that order.

Deliberate difference: a body that is not a JSON object of strings is a 400 (code 400, Go's wording);
cfssl answers 500 with code 0 because its map decoding error is untyped.
"""

from __future__ import annotations

from typing import Any

from cfsslpy.api.endpoints import Registry
from cfsslpy.api.envelope import ApiError, ApiRequest, Reply
from cfsslpy.certdb import CertDB
from cfsslpy.certinfo import describe_certificate_pem, describe_domain, describe_serial
from cfsslpy.errors import PlainError
from cfsslpy.gojson import JSONDecodeError, type_error


def register(reg: Registry) -> None:
    db = reg.state.db
    reg.add("certinfo", "POST", lambda req: _certinfo(db, req))


def _blob(req: ApiRequest) -> dict[str, str]:
    """cfssl's ``readRequestBlob``: a ``map[string]string`` (null values are empty strings)."""
    try:
        obj: Any = req.json()
        if obj is None:
            return {}
        if not isinstance(obj, dict):
            raise type_error(obj, "", "", "map[string]string")
        for value in obj.values():
            if value is not None and not isinstance(value, str):
                raise type_error(value, "", "", "string")
    except JSONDecodeError as exc:
        raise ApiError(400, str(exc)) from None
    return {k: v or "" for k, v in obj.items()}


def _certinfo(db: CertDB | None, req: ApiRequest) -> Reply:
    blob = _blob(req)
    if "certificate" in blob:
        return Reply(describe_certificate_pem(blob["certificate"].encode("utf-8")))
    if "domain" in blob:
        return Reply(describe_domain(blob["domain"]))
    if "serial" in blob and "authority_key_id" in blob:
        if db is None:
            raise PlainError("cannot lookup certificate from serial without db access")
        return Reply(describe_serial(db, blob["serial"], blob["authority_key_id"]))
    raise ApiError(400, "no valid parameter sets found")
