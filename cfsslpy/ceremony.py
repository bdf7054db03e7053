"""Scripted offline CA ceremonies: a declared plan of steps, run once, recorded in a hash-chained transcript.

A **plan** is a JSON document ``{"description": "...", "steps": [...]}``; each step has an ``action``, an
optional ``name``/``comment``, and the inputs, parameters and outputs of that action (paths are relative to
the plan's directory):

=================  =====================================================  ===================================
action             inputs and parameters                                   outputs
=================  =====================================================  ===================================
generate-key       ``key`` (a ``pkcs11:`` URI naming the new key pair's    ``pubkey`` (public key PEM); a
                   label, or a key file to create), ``algo``, ``size``,    ``key`` file is an output (0600)
                   ``id`` (hex CKA_ID, token keys only)
generate-csr       ``csr`` (cfssl CSR JSON), ``key`` (URI or file)         ``csr_pem`` (PEM CSR)
self-sign          ``csr`` (cfssl CSR JSON), ``key``, ``config``,          ``cert``
                   ``profile`` (a CA profile; default: cfssl's CA policy)
sign               ``ca``, ``ca_key``, ``csr`` (PEM), ``config``,          ``cert``
                   ``profile``
ocsp-responder     as sign; ``config`` and ``profile`` are required and    ``cert``
                   the profile must have the ``ocsp signing`` usage
crl                ``ca``, ``ca_key``, ``serials`` (gencrl's serial        ``crl`` (PEM)
                   list; default none), ``expiry`` (Go duration, 168h)
=================  =====================================================  ===================================

The whole plan is checked before anything happens (:meth:`Plan.check`): unknown actions and fields, missing
inputs that no earlier step produces, outputs that already exist (nothing is ever overwritten), an output
named twice, signing configurations and profiles, CSR JSON and serial lists that already exist.

A run (:func:`run`) writes each step's outputs atomically (key files 0600) and then the **transcript**, also
atomically, so a crash leaves a valid transcript of the steps done. The transcript is
``{"format": ..., "entries": [...]}``: entry 0 is the header (tool version, plan path and SHA-256, planned
step count, start time, host name), then one entry per step (action, parameters, inputs and outputs as
``{field, path, sha256}``, time). Every entry carries ``seq``, ``prev`` (the previous entry's ``hash``; ""
for the header) and ``hash`` = SHA-256 of the entry's canonical JSON without ``hash`` (keys sorted, no
whitespace, UTF-8). Paths are recorded relative to the transcript's directory, so a ceremony directory can
be archived and verified elsewhere. PINs never appear: ``pin-value`` attributes are removed from URIs.

The chain protects against editing, removing and reordering entries, not against rewriting the whole file:
write the final hash (printed at the end of a run) on the paper ceremony record. :func:`verify` recomputes
the chain and re-hashes every input and output still present.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization

from cfsslpy import __version__
from cfsslpy.errors import Category, CfsslError, Error, PlainError, Reason
from cfsslpy.inputs import read_path, write_atomic, write_secret
from cfsslpy.keys import KeyRequest, PrivateKey, PublicKey, encode_private_key, is_pkcs11_uri, load_key_spec, load_private_key

log = logging.getLogger(__name__)

FORMAT = "cfsslpy-ceremony-transcript/1"
DEFAULT_CRL_EXPIRY = "168h"
_DEFAULT_SIZES = {"ecdsa": 256, "rsa": 2048, "ed25519": 0}

# Field kinds: "in" a file read by the step; "key" a private key (pkcs11: URI or a key file read);
# "newkey" generate-key's key (a URI on the token, or a key file written by the step); "out" a file written;
# "str"/"int" parameters.
_COMMON = {"action": "str", "name": "str", "comment": "str"}


@dataclass(frozen=True)
class _Action:
    fields: dict[str, str]
    required: frozenset[str]


ACTIONS: dict[str, _Action] = {
    "generate-key": _Action(
        {"key": "newkey", "algo": "str", "size": "int", "id": "str", "pubkey": "out"},
        frozenset({"key", "pubkey"}),
    ),
    "generate-csr": _Action({"csr": "in", "key": "key", "csr_pem": "out"}, frozenset({"csr", "key", "csr_pem"})),
    "self-sign": _Action(
        {"csr": "in", "key": "key", "config": "in", "profile": "str", "cert": "out"},
        frozenset({"csr", "key", "cert"}),
    ),
    "sign": _Action(
        {"ca": "in", "ca_key": "key", "csr": "in", "config": "in", "profile": "str", "cert": "out"},
        frozenset({"ca", "ca_key", "csr", "cert"}),
    ),
    "ocsp-responder": _Action(
        {"ca": "in", "ca_key": "key", "csr": "in", "config": "in", "profile": "str", "cert": "out"},
        frozenset({"ca", "ca_key", "csr", "config", "profile", "cert"}),
    ),
    "crl": _Action(
        {"ca": "in", "ca_key": "key", "serials": "in", "expiry": "str", "crl": "out"},
        frozenset({"ca", "ca_key", "crl"}),
    ),
}


def plan_error(message: str) -> CfsslError:
    """A plan that cannot run: 5200 (invalid policy) with the detail, naming the step."""
    return CfsslError(Category.POLICY, Reason.INVALID_POLICY, message)


def redact_uri(uri: str) -> str:
    """The URI, parsed (RFC 7512) and written back without its ``pin-value``: what may be printed and recorded."""
    from cfsslpy.pkcs11 import TokenURI  # only the URI parser: python-pkcs11 itself is not imported

    return TokenURI.parse(uri).without_secrets().to_string()


def _write_outputs(step: Any, outputs: list[tuple[str, str, bytes, int]]) -> None:
    """A step's outputs, all or none: every path is checked first (none may have appeared since the plan was
    checked), then each is written atomically (keys 0600); if one write fails, the ones written are removed,
    so no output exists that the transcript does not record."""
    for _, path, _data, _mode in outputs:
        if os.path.lexists(path):
            raise plan_error(f"{step.label}: output {path} appeared during the ceremony (refusing to overwrite)")
    written: list[str] = []
    try:
        for _, path, data, mode in outputs:
            if mode == 0o600:
                write_secret(path, data)
            else:
                write_atomic(path, data, mode)
            written.append(path)
    except (OSError, Error) as exc:
        for path in written:
            with contextlib.suppress(OSError):
                os.unlink(path)
        message = exc.message if isinstance(exc, Error) else str(exc)
        raise PlainError(f"{step.label}: writing the outputs failed ({message}); none of them was kept") from None


def sha256_file(path: str) -> str | None:
    """The file's SHA-256 (hex), or None when it does not exist."""
    try:
        with open(path, "rb") as fh:
            digest = hashlib.sha256()
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
            return digest.hexdigest()
    except FileNotFoundError:
        return None


def canonical_json(obj: Any) -> bytes:
    """The bytes an entry's hash covers: keys sorted, no whitespace, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def entry_hash(entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


def _utc_text(now: dt.datetime) -> str:
    return now.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------------------
# Plans


@dataclass
class Step:
    """One planned step; paths are absolute (resolved against the plan's directory)."""

    index: int
    action: str
    name: str = ""
    comment: str = ""
    inputs: dict[str, str] = field(default_factory=dict)  # field -> path, files the step reads
    outputs: dict[str, str] = field(default_factory=dict)  # field -> path, files the step writes
    tokens: dict[str, str] = field(default_factory=dict)  # field -> pkcs11: URI
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"step {self.index} ({self.action}{': ' + self.name if self.name else ''})"

    def parameters(self) -> dict[str, Any]:
        """What the transcript records as parameters: token URIs (PIN removed) and the plain parameters."""
        out: dict[str, Any] = {name: redact_uri(uri) for name, uri in self.tokens.items()}
        out.update(self.params)
        return out


@dataclass
class Plan:
    path: str  # absolute
    sha256: str
    description: str
    steps: list[Step]

    @property
    def directory(self) -> str:
        return os.path.dirname(self.path)

    @classmethod
    def load(cls, path: str) -> Plan:
        """Read and parse the plan: JSON shape, actions, fields and their types (not yet the files)."""
        path = os.path.abspath(path)
        return cls.from_bytes(read_path(path), path)  # bounded; errors name the file

    @classmethod
    def from_bytes(cls, data: bytes, path: str) -> Plan:
        where = f"ceremony plan {os.path.basename(path)}"
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise plan_error(f"{where}: not valid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise plan_error(f"{where}: want a JSON object with a steps list")
        unknown = sorted(set(obj) - {"description", "steps"})
        if unknown:
            raise plan_error(f"{where}: unknown field {unknown[0]!r} (want description, steps)")
        description = obj.get("description", "")
        if not isinstance(description, str):
            raise plan_error(f"{where}: description must be a string")
        raw_steps = obj.get("steps")
        if not isinstance(raw_steps, list) or not raw_steps:
            raise plan_error(f"{where}: steps must be a non-empty list")
        directory = os.path.dirname(os.path.abspath(path))
        steps = [_parse_step(i, raw, directory, where) for i, raw in enumerate(raw_steps, start=1)]
        return cls(path=os.path.abspath(path), sha256=hashlib.sha256(data).hexdigest(), description=description, steps=steps)

    def check(self, transcript: str) -> None:
        """Everything that can be checked before the first step: files, configs, profiles, overwrites."""
        produced: dict[str, int] = {}  # path -> step index
        transcript = os.path.abspath(transcript)
        if os.path.exists(transcript):
            raise plan_error(f"transcript {transcript} already exists (a ceremony is recorded once; choose another -transcript)")
        all_outputs: dict[str, int] = {}
        for step in self.steps:
            for name, path in step.outputs.items():
                if path in all_outputs:
                    raise plan_error(f"{step.label}: output {name} {path} is already an output of step {all_outputs[path]}")
                all_outputs[path] = step.index
        for step in self.steps:
            for name, path in step.inputs.items():
                if path in step.outputs.values():
                    raise plan_error(f"{step.label}: {name} {path} is both an input and an output")
                if path in produced:
                    continue
                if not os.path.isfile(path):
                    later = all_outputs.get(path)
                    hint = f" (produced only by the later step {later})" if later else ""
                    raise plan_error(f"{step.label}: input {name} {path} does not exist and no earlier step produces it{hint}")
            for name, path in step.outputs.items():
                if os.path.lexists(path):
                    raise plan_error(f"{step.label}: output {name} {path} already exists (refusing to overwrite)")
                if path in (self.path, transcript):
                    raise plan_error(f"{step.label}: output {name} {path} is the plan or the transcript")
                if not os.path.isdir(os.path.dirname(path)):
                    raise plan_error(f"{step.label}: output {name} {path}: directory {os.path.dirname(path)} does not exist")
            _check_contents(step, produced)
            for path in step.outputs.values():
                produced[path] = step.index

    def describe(self, transcript: str) -> dict[str, Any]:
        """The dry-run view: every step with its parameters, inputs (SHA-256 of those that exist) and outputs."""
        produced: dict[str, int] = {}
        steps = []
        for step in self.steps:
            steps.append(step_view(step, produced))
            for path in step.outputs.values():
                produced[path] = step.index
        out: dict[str, Any] = {"plan": {"path": self.path, "sha256": self.sha256}}
        if self.description:
            out["description"] = self.description
        out["transcript"] = os.path.abspath(transcript)
        out["steps"] = steps
        return out


def step_view(step: Step, produced: Mapping[str, int] | None = None) -> dict[str, Any]:
    """A step as shown by a dry run and before confirmation."""
    view: dict[str, Any] = {"step": step.index, "action": step.action}
    if step.name:
        view["name"] = step.name
    if step.comment:
        view["comment"] = step.comment
    view["parameters"] = step.parameters()
    inputs = []
    for name, path in step.inputs.items():
        item: dict[str, Any] = {"field": name, "path": path}
        if produced and path in produced:
            item["from_step"] = produced[path]
        else:
            digest = sha256_file(path)
            if digest is not None:
                item["sha256"] = digest
            else:
                item["missing"] = True
        inputs.append(item)
    view["inputs"] = inputs
    view["outputs"] = [
        {"field": name, "path": path, "exists": True} if os.path.lexists(path) else {"field": name, "path": path}
        for name, path in step.outputs.items()
    ]
    return view


def _parse_step(index: int, raw: Any, directory: str, where: str) -> Step:
    if not isinstance(raw, dict):
        raise plan_error(f"{where}: step {index}: want a JSON object")
    action = raw.get("action")
    if not isinstance(action, str) or not action:
        raise plan_error(f"{where}: step {index}: missing action (one of {', '.join(ACTIONS)})")
    spec = ACTIONS.get(action)
    if spec is None:
        raise plan_error(f"{where}: step {index}: unknown action {action!r} (one of {', '.join(ACTIONS)})")
    step = Step(index=index, action=action)
    name = raw.get("name", "")
    if not isinstance(name, str):
        raise plan_error(f"{where}: step {index} ({action}): name must be a string")
    step.name = name
    label = f"{where}: {step.label}"
    kinds = {**_COMMON, **spec.fields}
    for key in raw:
        if key not in kinds:
            raise plan_error(f"{label}: unknown field {key!r} (want {', '.join(spec.fields)})")
    for key in sorted(spec.required - set(raw)):
        raise plan_error(f"{label}: missing field {key!r}")
    comment = raw.get("comment", "")
    if not isinstance(comment, str):
        raise plan_error(f"{label}: comment must be a string")
    step.comment = comment

    def resolve(key: str, value: str) -> str:
        if value.startswith("file:"):
            value = value[5:]
        if value.startswith("env:"):
            raise plan_error(f"{label}: {key}: env: is not allowed in a ceremony plan (use a file or a pkcs11: URI)")
        if not value:
            raise plan_error(f"{label}: {key} is empty")
        return os.path.normpath(os.path.join(directory, value))

    from cfsslpy.pkcs11 import TokenURI  # the URI parser only

    for key, kind in spec.fields.items():
        if key not in raw:
            continue
        value = raw[key]
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise plan_error(f"{label}: {key} must be an integer")
            step.params[key] = value
            continue
        if not isinstance(value, str):
            raise plan_error(f"{label}: {key} must be a string")
        if kind == "str":
            step.params[key] = value
        elif kind == "in":
            step.inputs[key] = resolve(key, value)
        elif kind == "out":
            step.outputs[key] = resolve(key, value)
        elif is_pkcs11_uri(value):
            try:
                parsed = TokenURI.parse(value)
            except CfsslError as exc:
                raise plan_error(f"{label}: {key}: {exc.message}") from None
            if parsed.pin_value is not None:
                log.warning("%s: %s carries a pin-value; prefer pin-source=file:... (the PIN is never recorded)", step.label, key)
            if kind == "newkey" and not parsed.object:
                raise plan_error(f"{label}: {key} URI names no object= (the new key pair's label)")
            step.tokens[key] = value
        elif kind == "newkey":
            step.outputs[key] = resolve(key, value)
        else:
            step.inputs[key] = resolve(key, value)
    _check_params(step, label)
    return step


def _check_params(step: Step, label: str) -> None:
    if step.action == "generate-key":
        algo = step.params.setdefault("algo", "ecdsa")
        if algo not in _DEFAULT_SIZES:
            raise plan_error(f"{label}: algo {algo!r}: want rsa, ecdsa or ed25519")
        size = step.params.setdefault("size", _DEFAULT_SIZES[algo])
        try:
            KeyRequest(algo=algo, size=size).validate()
        except CfsslError as exc:
            raise plan_error(f"{label}: {exc.message}") from None
        key_id = step.params.get("id")
        if key_id is not None:
            if "key" not in step.tokens:
                raise plan_error(f"{label}: id is for keys on a token (key is a file)")
            try:
                if not bytes.fromhex(key_id):
                    raise ValueError
            except ValueError:
                raise plan_error(f"{label}: id {key_id!r} is not a non-empty hex string") from None
    if step.action == "crl":
        from cfsslpy.gojson import parse_duration

        expiry = step.params.setdefault("expiry", DEFAULT_CRL_EXPIRY)
        try:
            ns = parse_duration(expiry)
        except ValueError as exc:
            raise plan_error(f"{label}: expiry: {exc}") from None
        if ns <= 0:
            raise plan_error(f"{label}: expiry {expiry} must be positive")
    if "profile" in step.params and "config" not in step.inputs:
        raise plan_error(f"{label}: profile needs a config")


def _check_contents(step: Step, produced: Mapping[str, int]) -> None:
    """Content checks of the inputs that exist before the ceremony (configs, CSR JSON, serial lists)."""

    def existing(name: str) -> bytes | None:
        path = step.inputs.get(name)
        if path is None or path in produced:
            return None
        return read_path(path)

    try:
        config_data = existing("config")
        if config_data is not None:
            from cfsslpy.config import Config

            config = Config.from_json_bytes(config_data)
            _select_profile(step, config)
        if step.action in ("self-sign", "generate-csr"):
            csr_data = existing("csr")
            if csr_data is not None:
                from cfsslpy.csr import CertificateRequest

                req = CertificateRequest.from_json_bytes(csr_data)
                if step.action == "self-sign":
                    req.validate_initca()
        serials = existing("serials")
        if serials is not None:
            from cfsslpy.crl import parse_serial_list

            parse_serial_list(serials, dt.datetime.now(dt.timezone.utc))
    except Error as exc:
        if isinstance(exc, CfsslError) and exc.message.startswith(step.label):
            raise
        raise plan_error(f"{step.label}: {exc.message}") from None


def _select_profile(step: Step, config: Any) -> Any:
    """The step's signing profile; an unknown name is an error here (a ceremony never falls back)."""
    from cfsslpy.config import EXT_KEY_USAGES

    name = step.params.get("profile", "")
    signing = config.signing
    if name and name not in signing.profiles:
        raise plan_error(f"{step.label}: unknown profile {name!r} in {step.inputs['config']}")
    profile = signing.profiles[name] if name else signing.default
    if profile.is_remote:
        raise plan_error(f"{step.label}: profile {name or 'default'!r} is a remote profile; a ceremony signs locally")
    if step.action == "self-sign" and not profile.ca_constraint.is_ca:
        raise plan_error(f"{step.label}: profile {name or 'default'!r} is not a CA profile (ca_constraint.is_ca)")
    if step.action == "ocsp-responder":
        _, ekus, _ = profile.key_usages()
        if EXT_KEY_USAGES["ocsp signing"] not in ekus:
            raise plan_error(f"{step.label}: profile {name!r} has no 'ocsp signing' usage: it cannot issue an OCSP responder certificate")
        if profile.ca_constraint.is_ca:
            raise plan_error(f"{step.label}: profile {name!r} is a CA profile: an OCSP responder certificate is not a CA")
        if not profile.ocsp_no_check:
            log.warning("%s: profile %r has no ocsp_no_check: relying parties may check the responder's own status", step.label, name)
    return profile


# ---------------------------------------------------------------------------------------------------------
# Running


@dataclass
class _StepIO:
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


def _load_key(sio: _StepIO, name: str, environ: Mapping[str, str] | None) -> PrivateKey:
    uri = sio.step.tokens.get(name)
    if uri is not None:
        return load_key_spec(uri, environ=environ)
    # a key file: loaded from the bytes that were hashed for the transcript
    return load_private_key(sio.read(name), environ=environ)


def _config(sio: _StepIO) -> Any:
    if "config" not in sio.step.inputs:
        return None
    from cfsslpy.config import Config

    return Config.from_json_bytes(sio.read("config"))


def _public_pem(key: PublicKey | Any) -> bytes:
    data: bytes = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return data


def _do_generate_key(sio: _StepIO, environ: Mapping[str, str] | None) -> None:
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


def _do_generate_csr(sio: _StepIO, environ: Mapping[str, str] | None) -> None:
    from cfsslpy.csr import CertificateRequest, csr_pem, generate_csr

    req = CertificateRequest.from_json_bytes(sio.read("csr"))
    key = _load_key(sio, "key", environ)
    sio.write("csr_pem", csr_pem(generate_csr(req, key)))


def _do_self_sign(sio: _StepIO, environ: Mapping[str, str] | None) -> None:
    from cfsslpy.csr import CertificateRequest
    from cfsslpy.initca import self_sign_ca

    req = CertificateRequest.from_json_bytes(sio.read("csr"))
    config = _config(sio)
    profile = _select_profile(sio.step, config) if config is not None else None
    key = _load_key(sio, "key", environ)
    cert, _ = self_sign_ca(req, key, profile)
    sio.write("cert", cert.public_bytes(serialization.Encoding.PEM))


def _do_sign(sio: _StepIO, environ: Mapping[str, str] | None) -> None:
    from cfsslpy.config import Config, Signing
    from cfsslpy.pem import parse_certificate_pem
    from cfsslpy.signer import Issuer, LocalSigner, SignRequest

    ca = parse_certificate_pem(sio.read("ca"))
    csr = sio.read("csr")
    config = _config(sio) or Config.default()
    profile = _select_profile(sio.step, config)
    key = _load_key(sio, "ca_key", environ)
    signer = LocalSigner(Issuer(key=key, cert=ca), Signing(default=config.signing.default, profiles=config.signing.profiles))
    cert = signer.sign_csr(_parse_csr(csr), SignRequest(request=csr, profile=sio.step.params.get("profile", "")), profile)
    sio.write("cert", cert.public_bytes(serialization.Encoding.PEM))


def _parse_csr(data: bytes) -> Any:
    from cfsslpy.pem import parse_csr_pem

    return parse_csr_pem(data)


def _do_crl(sio: _StepIO, environ: Mapping[str, str] | None) -> None:
    from cfsslpy.crl import crl_number, encode, generate_crl, parse_serial_list
    from cfsslpy.gojson import parse_duration
    from cfsslpy.pem import parse_certificate_pem

    now = dt.datetime.now(dt.timezone.utc)
    ca = parse_certificate_pem(sio.read("ca"))
    entries = parse_serial_list(sio.read("serials"), now) if "serials" in sio.step.inputs else []
    lifetime = dt.timedelta(microseconds=parse_duration(sio.step.params["expiry"]) // 1000)
    key = _load_key(sio, "ca_key", environ)
    der = generate_crl(ca, key, entries, lifetime=lifetime, number=crl_number(), now=now)
    sio.write("crl", encode(der, True).encode("ascii"))


_RUNNERS: dict[str, Callable[[_StepIO, Mapping[str, str] | None], None]] = {
    "generate-key": _do_generate_key,
    "generate-csr": _do_generate_csr,
    "self-sign": _do_self_sign,
    "sign": _do_sign,
    "ocsp-responder": _do_sign,
    "crl": _do_crl,
}


def default_transcript(plan_path: str) -> str:
    """``PLAN.transcript.json`` beside the plan (``ceremony.json`` -> ``ceremony.transcript.json``)."""
    base, ext = os.path.splitext(os.path.abspath(plan_path))
    return f"{base}.transcript.json" if ext.lower() == ".json" else f"{base}{ext}.transcript.json"


@dataclass
class RunResult:
    transcript: str
    steps: int
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {"transcript": self.transcript, "steps": self.steps, "hash": self.hash}


class Transcript:
    """The hash-chained record of one ceremony, rewritten atomically after every entry."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.entries: list[dict[str, Any]] = []

    def rel(self, path: str) -> str:
        return os.path.relpath(path, os.path.dirname(self.path))

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        entry = {"seq": len(self.entries), **entry, "prev": self.entries[-1]["hash"] if self.entries else ""}
        entry["hash"] = entry_hash(entry)
        self.entries.append(entry)
        data = json.dumps({"format": FORMAT, "entries": self.entries}, indent=2, ensure_ascii=False) + "\n"
        write_atomic(self.path, data.encode("utf-8"), 0o644)
        return entry


Confirm = Callable[[Step, dict[str, Any]], bool]


def run(
    plan: Plan,
    transcript_path: str,
    *,
    confirm: Confirm | None = None,
    environ: Mapping[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    """Check the plan, then run its steps in order, recording each in the transcript.

    ``confirm(step, view)`` is asked before each step (None: no questions); a ``False`` answer stops the
    ceremony after the steps done (PlainError). A failing step stops it too: its outputs are not written, and
    the transcript records the steps before it.
    """
    plan.check(transcript_path)
    transcript = Transcript(transcript_path)
    transcript.append(
        {
            "type": "header",
            "format": FORMAT,
            "tool": f"cfsslpy {__version__}",
            "plan": {"path": transcript.rel(plan.path), "sha256": plan.sha256},
            "description": plan.description,
            "steps": len(plan.steps),
            "started": _utc_text(dt.datetime.now(dt.timezone.utc)),
            "host": socket.gethostname(),
        }
    )
    produced: dict[str, int] = {}
    for step in plan.steps:
        if confirm is not None and not confirm(step, step_view(step, produced)):
            raise PlainError(f"{step.label} declined: ceremony stopped after {step.index - 1} step(s); transcript {transcript.path}")
        sio = _StepIO(step)
        try:
            _RUNNERS[step.action](sio, environ)
        except Error as exc:
            message = exc.message if exc.message.startswith(step.label) else f"{step.label}: {exc.message}"
            if isinstance(exc, CfsslError):
                raise CfsslError(exc.category, exc.reason, message) from None
            raise PlainError(message) from None
        except (OSError, ValueError) as exc:  # a file or a library refusing: still a labelled cfssl-style error
            raise PlainError(f"{step.label}: {exc}") from None
        _write_outputs(step, sio.outputs)
        transcript.append(
            {
                "type": "step",
                "step": step.index,
                "action": step.action,
                "name": step.name,
                "parameters": step.parameters(),
                "inputs": [{"field": n, "path": transcript.rel(p), "sha256": h} for n, p, h in sio.inputs],
                "outputs": [{"field": n, "path": transcript.rel(p), "sha256": hashlib.sha256(d).hexdigest()} for n, p, d, _ in sio.outputs],
                "time": _utc_text(dt.datetime.now(dt.timezone.utc)),
            }
        )
        for path in step.outputs.values():
            produced[path] = step.index
        if progress is not None:
            progress(f"{step.label}: done ({', '.join(transcript.rel(p) for _, p, _, _ in sio.outputs)})")
    return RunResult(transcript.path, len(plan.steps), transcript.entries[-1]["hash"])


# ---------------------------------------------------------------------------------------------------------
# Verifying


@dataclass
class FileCheck:
    path: str
    sha256: str
    status: str  # ok, changed, missing
    step: int
    role: str  # input or output
    field: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "status": self.status, "step": self.step, "role": self.role, "field": self.field}


@dataclass
class VerifyReport:
    transcript: str
    entries: int = 0
    steps_planned: int = 0
    steps_recorded: int = 0
    final_hash: str = ""
    problems: list[str] = field(default_factory=list)
    files: list[FileCheck] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.steps_planned > 0 and self.steps_recorded == self.steps_planned

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "transcript": self.transcript,
            "ok": self.ok,
            "complete": self.complete,
            "entries": self.entries,
            "steps_planned": self.steps_planned,
            "steps_recorded": self.steps_recorded,
            "final_hash": self.final_hash,
            "problems": list(self.problems),
            "missing": [f.path for f in self.files if f.status == "missing"],
            "files": [f.to_json() for f in self.files],
        }


def _load_transcript(path: str) -> list[Any]:
    data = read_path(path)
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CfsslError(Category.CERTIFICATE, Reason.VERIFY_FAILED, f"ceremony transcript {path}: not valid JSON: {exc}") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT or not isinstance(obj.get("entries"), list) or not obj["entries"]:
        raise CfsslError(Category.CERTIFICATE, Reason.VERIFY_FAILED, f"ceremony transcript {path}: not a {FORMAT} transcript")
    entries: list[Any] = obj["entries"]
    return entries


def verify(transcript_path: str) -> VerifyReport:
    """Recompute the transcript's hash chain and re-hash every recorded file still present.

    A broken link (an entry's ``hash`` or ``prev`` or ``seq`` wrong: an edited, removed, inserted or moved
    entry), a changed file or an incomplete ceremony is a problem; a missing file is listed but is not one
    (key files and CSRs are often kept elsewhere).
    """
    path = os.path.abspath(transcript_path)
    entries = _load_transcript(path)
    report = VerifyReport(transcript=path, entries=len(entries))
    base = os.path.dirname(path)
    prev = ""
    expected_step = 1
    for seq, entry in enumerate(entries):
        where = f"entry {seq}"
        if not isinstance(entry, dict):
            report.problems.append(f"{where}: not a JSON object")
            prev = ""
            continue
        if entry.get("seq") != seq:
            report.problems.append(f"{where}: seq is {entry.get('seq')!r} (entries removed, inserted or reordered)")
        if entry.get("hash") != entry_hash(entry):
            report.problems.append(f"{where}: hash does not match its content (entry edited)")
        if entry.get("prev") != prev:
            report.problems.append(f"{where}: prev does not match the previous entry's hash (chain broken)")
        prev = str(entry.get("hash", ""))
        if seq == 0:
            if entry.get("type") != "header":
                report.problems.append(f"{where}: the first entry is not the header")
            planned = entry.get("steps")
            report.steps_planned = planned if isinstance(planned, int) and not isinstance(planned, bool) else 0
            continue
        if entry.get("type") != "step":
            report.problems.append(f"{where}: type {entry.get('type')!r}, want step")
            continue
        if entry.get("step") != expected_step:
            report.problems.append(f"{where}: records step {entry.get('step')!r}, want step {expected_step}")
        expected_step += 1
        report.steps_recorded += 1
        recorded_step = entry.get("step")
        step_index = recorded_step if isinstance(recorded_step, int) else 0
        for role in ("input", "output"):
            records = entry.get(f"{role}s")
            if not isinstance(records, list):
                report.problems.append(f"{where}: {role}s is not a list")
                continue
            for record in records:
                if not isinstance(record, dict) or not isinstance(record.get("path"), str) or not isinstance(record.get("sha256"), str):
                    report.problems.append(f"{where}: malformed {role} record")
                    continue
                file_path = os.path.join(base, record["path"])
                digest = sha256_file(file_path)
                status = "missing" if digest is None else ("ok" if digest == record["sha256"] else "changed")
                report.files.append(FileCheck(record["path"], record["sha256"], status, step_index, role, str(record.get("field", ""))))
                if status == "changed":
                    report.problems.append(f"step {step_index}: {role} {record['path']} changed since the ceremony (sha256 mismatch)")
    report.final_hash = prev
    if report.steps_planned and report.steps_recorded < report.steps_planned:
        report.problems.append(f"ceremony incomplete: {report.steps_recorded} of {report.steps_planned} steps recorded")
    elif report.steps_recorded > report.steps_planned:
        report.problems.append(f"{report.steps_recorded} steps recorded, the header planned {report.steps_planned}")
    return report


__all__ = [
    "ACTIONS",
    "FORMAT",
    "FileCheck",
    "Plan",
    "RunResult",
    "Step",
    "Transcript",
    "VerifyReport",
    "canonical_json",
    "default_transcript",
    "entry_hash",
    "redact_uri",
    "run",
    "step_view",
    "verify",
]
