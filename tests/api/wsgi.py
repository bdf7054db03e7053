"""An in-process WSGI client for the API, and request/certificate helpers for its tests."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any
from wsgiref.util import setup_testing_defaults

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

AUTH_KEY_HEX = "0123456789ABCDEF0123456789ABCDEF"
PREV_KEY_HEX = "00112233445566778899AABBCCDDEEFF"
API = "/api/v1/cfssl/"


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    environ: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def result(self) -> Any:
        doc = self.json
        assert doc["success"] is True, doc
        return doc["result"]

    @property
    def error(self) -> dict[str, Any]:
        doc = self.json
        assert doc["success"] is False and doc["result"] is None and doc["messages"] == [], doc
        assert len(doc["errors"]) == 1
        return doc["errors"][0]  # type: ignore[no-any-return]

    def assert_error(self, status: int, code: int, message: str | None = None) -> None:
        assert self.status == status, (self.status, self.body)
        assert self.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert self.headers["X-Content-Type-Options"] == "nosniff"
        assert self.body.endswith(b"\n")
        assert self.body.startswith(b'{"success":false,"result":null,"errors":[{"code":'), self.body
        err = self.error
        assert err["code"] == code, err
        if message is not None:
            assert err["message"] == message, err

    def assert_ok(self) -> Any:
        assert self.status == 200, (self.status, self.body)
        assert self.headers["Content-Type"] == "application/json"
        assert self.body.startswith(b'{"success":true,"result":'), self.body[:80]
        assert self.body.endswith(b"\n")
        return self.result


class Client:
    """Calls a WSGI app in-process with a constructed environ."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | Any = b"",
        *,
        headers: dict[str, str] | None = None,
        content_length: str | None = None,
        environ: dict[str, Any] | None = None,
    ) -> Response:
        if isinstance(body, str):
            data = body.encode("utf-8")
        elif isinstance(body, bytes):
            data = body
        else:
            data = json.dumps(body).encode("utf-8")
        env: dict[str, Any] = {}
        setup_testing_defaults(env)
        env["REQUEST_METHOD"] = method
        env["PATH_INFO"] = path
        env["REMOTE_ADDR"] = "127.0.0.1"
        env.setdefault("QUERY_STRING", "")
        env["wsgi.input"] = io.BytesIO(data)
        env["CONTENT_LENGTH"] = str(len(data)) if content_length is None else content_length
        if not env["CONTENT_LENGTH"]:
            del env["CONTENT_LENGTH"]
        if method == "POST":
            env["CONTENT_TYPE"] = "application/json"  # what every cfssl client sends (cfsslpy.api.guard)
        for key, value in (headers or {}).items():
            if key.lower() == "content-type":
                env["CONTENT_TYPE"] = value
            else:
                env["HTTP_" + key.upper().replace("-", "_")] = value
        env.update(environ or {})
        seen: dict[str, Any] = {}

        def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            seen["status"] = int(status.split()[0])
            seen["headers"] = dict(response_headers)

        chunks = self.app(env, start_response)
        try:
            out = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return Response(seen["status"], seen["headers"], out, env)

    def post(self, name: str, body: bytes | str | Any = b"", **kw: Any) -> Response:
        return self.request("POST", API + name, body, **kw)

    def get(self, name: str, **kw: Any) -> Response:
        return self.request("GET", API + name, **kw)


def config_json(extra_profiles: dict[str, Any] | None = None, default: dict[str, Any] | None = None) -> dict[str, Any]:
    """A config with a ``www`` profile, an ``auth`` profile (key under rotation) and optional extras."""
    profiles: dict[str, Any] = {
        "www": {"usages": ["digital signature", "key encipherment", "server auth"], "expiry": "720h"},
        "client": {"usages": ["digital signature", "client auth"], "expiry": "24h"},
        "auth": {"usages": ["digital signature", "server auth"], "expiry": "1h", "auth_key": "current", "prev_auth_key": "previous"},
    }
    profiles.update(extra_profiles or {})
    return {
        "signing": {
            "default": default or {"usages": ["digital signature", "server auth", "client auth"], "expiry": "8760h"},
            "profiles": profiles,
        },
        "auth_keys": {
            "current": {"type": "standard", "key": AUTH_KEY_HEX},
            "previous": {"type": "standard", "key": PREV_KEY_HEX},
        },
    }


def new_csr(cn: str = "leaf.example.com", hosts: list[str] | None = None) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)]))
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
    from cryptography.hazmat.primitives import hashes

    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode("ascii")


def load_cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode("ascii"))


def dns_sans(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return san.get_values_for_type(x509.DNSName)
