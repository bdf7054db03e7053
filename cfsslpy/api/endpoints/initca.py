"""``POST /init_ca``: a new self-signed CA from CSR JSON (reference §2.3).

The built-in CA policy (cert sign, crl sign, 43800h unless ``ca.expiry``), as cfssl: the server's
``-config`` does not apply. Result ``{"private_key", "certificate"}`` in that order. A request without a
subject (no CN, and no ``names`` entry with C/ST/L/O/OU) is 5300 ``missing subject information``.
"""

from __future__ import annotations

from cfsslpy.api.endpoints import Registry, go_object
from cfsslpy.api.envelope import ApiError, ApiRequest, Reply
from cfsslpy.csr import CertificateRequest
from cfsslpy.golang.json import JSONDecodeError
from cfsslpy.initca import new_ca
from cfsslpy.keys import encode_private_key
from cfsslpy.signer import certificate_pem


def register(reg: Registry) -> None:
    reg.add("init_ca", "POST", _init_ca)


def _init_ca(req: ApiRequest) -> Reply:
    try:
        request = CertificateRequest.from_json(go_object(req.json(), "csr.CertificateRequest"))
    except JSONDecodeError as exc:
        raise ApiError(400, str(exc)) from None
    cert, _csr, key = new_ca(request)
    return Reply({"private_key": encode_private_key(key).decode("ascii"), "certificate": certificate_pem(cert).decode("ascii")})
