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

from cfsslpy.api.endpoints import Registry, string_map
from cfsslpy.api.envelope import ApiError, ApiRequest, Reply
from cfsslpy.certdb import CertDB
from cfsslpy.certinfo import describe_certificate_pem, describe_domain, describe_serial
from cfsslpy.errors import PlainError


def register(reg: Registry) -> None:
    db = reg.state.db
    reg.add("certinfo", "POST", lambda req: _certinfo(db, req))


def _certinfo(db: CertDB | None, req: ApiRequest) -> Reply:
    blob = string_map(req, lambda message: ApiError(400, message))
    if "certificate" in blob:
        return Reply(describe_certificate_pem(blob["certificate"].encode("utf-8")))
    if "domain" in blob:
        return Reply(describe_domain(blob["domain"]))
    if "serial" in blob and "authority_key_id" in blob:
        if db is None:
            raise PlainError("cannot lookup certificate from serial without db access")
        return Reply(describe_serial(db, blob["serial"], blob["authority_key_id"]))
    raise ApiError(400, "no valid parameter sets found")
