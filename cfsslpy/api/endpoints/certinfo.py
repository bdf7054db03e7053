"""``POST /certinfo``: describe a certificate given as PEM or fetched from a TLS server (reference §2.3).

Request (a JSON object of strings): ``certificate`` (PEM), or ``domain`` (``host[:port]``, fetched without
verification, as cfssl does; unlike cfssl, only to the addresses serve's ``-fetch-allow`` permits, by default
none on loopback or link-local, within 5 s, and at most 4 at a time per worker (``MAX_OUTBOUND``): 503 beyond), or
``serial`` + ``authority_key_id`` (looked up in serve's ``-db-config`` certificate database: not recorded ->
400 code 11200 ``no certificate found``, where cfssl answers 500 code 0; without a database, cfssl's 500
``cannot lookup certificate from serial without db access``). The first present wins, in that order.

Deliberate difference: a body that is not a JSON object of strings is a 400 (code 400, Go's wording);
cfssl answers 500 with code 0 because its map decoding error is untyped.
"""

from __future__ import annotations

from cfsslpy.api.endpoints import OUTBOUND_TIMEOUT, OutboundSlots, Registry, string_map
from cfsslpy.api.envelope import ApiError, ApiRequest, Reply
from cfsslpy.certdb import CertDB
from cfsslpy.certinfo import FetchPolicy, describe_certificate_pem, describe_domain, describe_serial
from cfsslpy.errors import PlainError


def register(reg: Registry) -> None:
    db = reg.state.db
    fetch, outbound = reg.fetch, reg.outbound
    reg.add("certinfo", "POST", lambda req: _certinfo(db, fetch, outbound, req))


def _certinfo(db: CertDB | None, fetch: FetchPolicy, outbound: OutboundSlots, req: ApiRequest) -> Reply:
    blob = string_map(req, lambda message: ApiError(400, message))
    if "certificate" in blob:
        return Reply(describe_certificate_pem(blob["certificate"].encode("utf-8")))
    if "domain" in blob:
        with outbound.slot():
            return Reply(describe_domain(blob["domain"], timeout=OUTBOUND_TIMEOUT, connect=fetch.connect))
    if "serial" in blob and "authority_key_id" in blob:
        if db is None:
            # cfssl answers with a plain errors.New: 500, code 0 (deliberately the same answer)
            raise PlainError(
                "cannot lookup certificate from serial without db access",
                hint="serve needs a certificate database (-db-config) for serial lookups",
            )
        return Reply(describe_serial(db, blob["serial"], blob["authority_key_id"]))
    raise ApiError(400, "no valid parameter sets found")
