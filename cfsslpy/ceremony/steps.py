"""A ceremony plan's steps: the actions and their fields, and one step parsed and checked from its JSON."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from cfsslpy.errors import Category, CfsslError, Reason
from cfsslpy.keys import KeyRequest, is_pkcs11_uri

log = logging.getLogger(__name__)

DEFAULT_CRL_EXPIRY = "168h"
_DEFAULT_SIZES = {"ecdsa": 256, "rsa": 2048, "ed25519": 0}

# Field kinds: "in" a file read by the step; "key" a private key (pkcs11: URI or a key file read);
# "newkey" generate-key's key (a URI on the token, or a key file written by the step); "out" a file written;
# "str"/"int" parameters.
_COMMON = {"action": "str", "name": "str", "comment": "str"}


@dataclass(frozen=True)
class Action:
    fields: dict[str, str]
    required: frozenset[str]


ACTIONS: dict[str, Action] = {
    "generate-key": Action(
        {"key": "newkey", "algo": "str", "size": "int", "id": "str", "pubkey": "out"},
        frozenset({"key", "pubkey"}),
    ),
    "generate-csr": Action({"csr": "in", "key": "key", "csr_pem": "out"}, frozenset({"csr", "key", "csr_pem"})),
    "self-sign": Action(
        {"csr": "in", "key": "key", "config": "in", "profile": "str", "cert": "out"},
        frozenset({"csr", "key", "cert"}),
    ),
    "sign": Action(
        {"ca": "in", "ca_key": "key", "csr": "in", "config": "in", "profile": "str", "cert": "out"},
        frozenset({"ca", "ca_key", "csr", "cert"}),
    ),
    "ocsp-responder": Action(
        {"ca": "in", "ca_key": "key", "csr": "in", "config": "in", "profile": "str", "cert": "out"},
        frozenset({"ca", "ca_key", "csr", "config", "profile", "cert"}),
    ),
    "crl": Action(
        {"ca": "in", "ca_key": "key", "serials": "in", "expiry": "str", "crl": "out"},
        frozenset({"ca", "ca_key", "crl"}),
    ),
}


def plan_error(message: str) -> CfsslError:
    """A plan that cannot run: 5200 (invalid policy) with the detail, naming the step."""
    return CfsslError(Category.POLICY, Reason.INVALID_POLICY, message)


class PlanProblems(CfsslError):
    """Every problem found in a plan (5200): the message is the first one, with the count of the others;
    ``problems`` lists them all, for a dry run to show."""

    def __init__(self, problems: list[str]) -> None:
        more = len(problems) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        super().__init__(Category.POLICY, Reason.INVALID_POLICY, problems[0] + suffix)
        self.problems = list(problems)


class Problems:
    """Collects a plan's problems (:func:`plan_error` raised in a ``with`` block) instead of stopping at the first."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def __enter__(self) -> Problems:
        return self

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> bool:
        if isinstance(exc, PlanProblems):
            self.found.extend(exc.problems)
            return True
        if isinstance(exc, CfsslError) and exc.code == 5200:
            self.found.append(exc.message)
            return True
        return False

    def add(self, message: str) -> None:
        self.found.append(message)

    def raise_any(self) -> None:
        if self.found:
            raise PlanProblems(self.found)


def redact_uri(uri: str) -> str:
    """The URI, parsed (RFC 7512) and written back without its ``pin-value``: what may be printed and recorded."""
    from cfsslpy.pkcs11 import TokenURI  # only the URI parser: python-pkcs11 itself is not imported

    return TokenURI.parse(uri).without_secrets().to_string()


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


def parse_step(index: int, raw: Any, directory: str, where: str) -> Step:
    """Step ``index`` of a plan from its JSON: action, fields and their types, paths resolved against
    ``directory``, parameters checked (not yet the files)."""
    step, spec = _step_head(index, raw, where)
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
    for key, kind in spec.fields.items():
        if key in raw:
            _set_field(step, label, directory, key, kind, raw[key])
    _check_params(step, label)
    return step


def _step_head(index: int, raw: Any, where: str) -> tuple[Step, Action]:
    """The step with its action and name, and the action's fields."""
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
    return step, spec


def _resolve(label: str, directory: str, key: str, value: str) -> str:
    """A path field: ``file:`` stripped, ``env:`` refused, made absolute against the plan's directory."""
    if value.startswith("file:"):
        value = value[5:]
    if value.startswith("env:"):
        raise plan_error(f"{label}: {key}: env: is not allowed in a ceremony plan (use a file or a pkcs11: URI)")
    if not value:
        raise plan_error(f"{label}: {key} is empty")
    return os.path.normpath(os.path.join(directory, value))


def _set_field(step: Step, label: str, directory: str, key: str, kind: str, value: Any) -> None:
    """One field of the step's action, of kind ``kind``, into the step's params, inputs, outputs or tokens."""
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise plan_error(f"{label}: {key} must be an integer")
        step.params[key] = value
        return
    if not isinstance(value, str):
        raise plan_error(f"{label}: {key} must be a string")
    if kind == "str":
        step.params[key] = value
    elif kind == "in":
        step.inputs[key] = _resolve(label, directory, key, value)
    elif kind == "out":
        step.outputs[key] = _resolve(label, directory, key, value)
    elif is_pkcs11_uri(value):
        _check_token_uri(step, label, key, kind, value)
        step.tokens[key] = value
    elif kind == "newkey":
        step.outputs[key] = _resolve(label, directory, key, value)
    else:
        step.inputs[key] = _resolve(label, directory, key, value)


def _check_token_uri(step: Step, label: str, key: str, kind: str, value: str) -> None:
    """A key field's ``pkcs11:`` URI: it parses, and a new key pair's URI names its label."""
    from cfsslpy.pkcs11 import TokenURI  # the URI parser only

    try:
        parsed = TokenURI.parse(value)
    except CfsslError as exc:
        raise plan_error(f"{label}: {key}: {exc.message}") from None
    if parsed.pin_value is not None:
        log.warning("%s: %s carries a pin-value; prefer pin-source=file:... (the PIN is never recorded)", step.label, key)
    if kind == "newkey" and not parsed.object:
        raise plan_error(f"{label}: {key} URI names no object= (the new key pair's label)")


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
        from cfsslpy.golang.json import parse_duration

        expiry = step.params.setdefault("expiry", DEFAULT_CRL_EXPIRY)
        try:
            ns = parse_duration(expiry)
        except ValueError as exc:
            raise plan_error(f"{label}: expiry: {exc}") from None
        if ns <= 0:
            raise plan_error(f"{label}: expiry {expiry} must be positive")
    if "profile" in step.params and "config" not in step.inputs:
        raise plan_error(f"{label}: profile needs a config")
