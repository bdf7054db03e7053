"""What each ceremony action does: its inputs read (and hashed) once, its outputs collected, not yet written."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization

from cfsslpy.ceremony.steps import Step
from cfsslpy.ceremony.validation import select_profile
from cfsslpy.errors import PlainError
from cfsslpy.inputs import read_path
from cfsslpy.keys import KeyRequest, PrivateKey, PublicKey, encode_private_key, load_key_spec, load_private_key


@dataclass
class StepIO:
    """Reads a step's inputs once (the recorded hash is of the bytes used) and collects its outputs."""

    step: Step
    inputs: list[tuple[str, str, str]] = field(default_factory=list)  # (field, path, sha256)
    outputs: list[tuple[str, str, bytes, int]] = field(default_factory=list)  # (field, path, data, mode)

    def read(self, name: str) -> bytes:
        path = self.step.inputs[name]
        try:
            data = read_path(path)
        except PlainError as exc:
            raise PlainError(f"{self.step.label}: {exc}") from None
        self.inputs.append((name, path, hashlib.sha256(data).hexdigest()))
        return data

    def write(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self.outputs.append((name, self.step.outputs[name], data, mode))


def _load_key(sio: StepIO, name: str, environ: Mapping[str, str] | None) -> PrivateKey:
    uri = sio.step.tokens.get(name)
    if uri is not None:
        return load_key_spec(uri, environ=environ)
    # a key file: loaded from the bytes that were hashed for the transcript
    return load_private_key(sio.read(name), environ=environ)


def _config(sio: StepIO) -> Any:
    if "config" not in sio.step.inputs:
        return None
    from cfsslpy.config import Config

    return Config.from_json_bytes(sio.read("config"))


def _public_pem(key: PublicKey | Any) -> bytes:
    data: bytes = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return data


def _do_generate_key(sio: StepIO, environ: Mapping[str, str] | None) -> None:
    step = sio.step
    algo, size = step.params["algo"], step.params["size"]
    uri = step.tokens.get("key")
    if uri is not None:
        from cfsslpy import pkcs11

        key_id = bytes.fromhex(step.params["id"]) if "id" in step.params else None
        public = pkcs11.generate_key_pair(uri, algo, size, key_id=key_id, environ=environ)
        sio.write("pubkey", _public_pem(public))
        return
    key = KeyRequest(algo=algo, size=size).generate()
    sio.write("key", encode_private_key(key), 0o600)
    sio.write("pubkey", _public_pem(key.public_key()))


def _do_generate_csr(sio: StepIO, environ: Mapping[str, str] | None) -> None:
    from cfsslpy.csr import CertificateRequest, csr_pem, generate_csr

    req = CertificateRequest.from_json_bytes(sio.read("csr"))
    key = _load_key(sio, "key", environ)
    sio.write("csr_pem", csr_pem(generate_csr(req, key)))


def _do_self_sign(sio: StepIO, environ: Mapping[str, str] | None) -> None:
    from cfsslpy.csr import CertificateRequest
    from cfsslpy.initca import self_sign_ca

    req = CertificateRequest.from_json_bytes(sio.read("csr"))
    config = _config(sio)
    profile = select_profile(sio.step, config) if config is not None else None
    key = _load_key(sio, "key", environ)
    cert, _ = self_sign_ca(req, key, profile)
    sio.write("cert", cert.public_bytes(serialization.Encoding.PEM))


def _do_sign(sio: StepIO, environ: Mapping[str, str] | None) -> None:
    from cfsslpy.config import Config, Signing
    from cfsslpy.pem import parse_certificate_pem
    from cfsslpy.signer import Issuer, LocalSigner, SignRequest

    ca = parse_certificate_pem(sio.read("ca"))
    csr = sio.read("csr")
    config = _config(sio) or Config.default()
    profile = select_profile(sio.step, config)
    key = _load_key(sio, "ca_key", environ)
    signer = LocalSigner(Issuer(key=key, cert=ca), Signing(default=config.signing.default, profiles=config.signing.profiles))
    cert = signer.sign_csr(_parse_csr(csr), SignRequest(request=csr, profile=sio.step.params.get("profile", "")), profile)
    sio.write("cert", cert.public_bytes(serialization.Encoding.PEM))


def _parse_csr(data: bytes) -> Any:
    from cfsslpy.pem import parse_csr_pem

    return parse_csr_pem(data)


def _do_crl(sio: StepIO, environ: Mapping[str, str] | None) -> None:
    from cfsslpy.crl import crl_number, encode, generate_crl, parse_serial_list
    from cfsslpy.golang.json import parse_duration
    from cfsslpy.pem import parse_certificate_pem

    now = dt.datetime.now(dt.timezone.utc)
    ca = parse_certificate_pem(sio.read("ca"))
    entries = parse_serial_list(sio.read("serials"), now) if "serials" in sio.step.inputs else []
    lifetime = dt.timedelta(microseconds=parse_duration(sio.step.params["expiry"]) // 1000)
    key = _load_key(sio, "ca_key", environ)
    der = generate_crl(ca, key, entries, lifetime=lifetime, number=crl_number(), now=now)
    sio.write("crl", encode(der, True).encode("ascii"))


RUNNERS: dict[str, Callable[[StepIO, Mapping[str, str] | None], None]] = {
    "generate-key": _do_generate_key,
    "generate-csr": _do_generate_csr,
    "self-sign": _do_self_sign,
    "sign": _do_sign,
    "ocsp-responder": _do_sign,
    "crl": _do_crl,
}
