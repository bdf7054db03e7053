"""``json-split`` (cfssljson): split cfssl's JSON output into PEM/DER files.

The input is what a ``cfssl`` command prints (``-bare``) or an API response envelope
``{"success":..,"result":{..},"errors":[..],"messages":[..]}`` (default; the ``result`` object is used).
Fields map onto files under ``BASENAME`` (reference §4.1), in this order:

==========================================  =========================  ======  ==========================
input key (first present wins)              file                       mode    ``-stdout`` rendering
==========================================  =========================  ======  ==========================
``cert``, else ``certificate``              ``<base>.pem``             0644    the string
``key``, else ``private_key``               ``<base>-key.pem``         0600    the string
``encrypted_key``                           ``<base>-key.enc``         0600    base64 of the string
``csr``, else ``certificate_request``       ``<base>.csr``             0644    the string
``bundle`` string (cfssl 2016)              ``<base>-bundle.pem``      0644    the string
``bundle`` object / ``result.bundle``       ``<base>-bundle.pem`` =    0644    the strings
object (newest)                             bundle + "\\n" + root,
                                            ``<base>-root.pem`` = root
``ocspResponse`` (standard base64)          ``<base>-response.der``    0644    base64 again
==========================================  =========================  ======  ==========================

Empty ``cert``/``key``/``csr`` strings are skipped; the other fields are written even when empty, as
cfssljson does. Nothing is written unless the whole input is valid: :func:`split` plans every output first
and :func:`write_outputs` stages them all before moving any into place, rolling back on failure.

Security-relevant defaults: private keys (``-key.pem``, ``-key.enc``) are 0600 from their first byte;
every file gets at most the mode in the table less the umask, and never a mode wider than the file it
replaces had (cfssljson writes certificates 0664 and cfsslpy once widened an existing 0600 file).

Deliberate differences from cfssljson:

* A non-string or null value for a field we use (cfssljson panics, exit 2) is an error: ``Failed to parse input: the value of "cert" is a number, not a string``, exit 1.
* Input that yields nothing to write (cfssljson exits 0 silently) is an error, exit 1, with a hint when ``-bare`` was given an API envelope.
* A ``bundle`` object directly in the result (what the newest API's sign/newcert with ``bundle:true`` return) is split like ``result.bundle`` (cfssl 2016 panics; the newest cfssljson ignores it).
* Input with both a ``bundle`` string and a ``result.bundle`` object (2016 reads only the first, the newest only the second) is an error.
* Arguments after BASENAME (cfssljson silently ignores them, so ``cfssljson -bare ca -f x.json`` reads stdin) are a usage error, exit 2; so is an empty BASENAME.
* Input that is not UTF-8 (cfssljson substitutes U+FFFD) or is larger than 64 MiB is an error.
* Outputs are all-or-nothing: a write failure leaves no new file behind (cfssljson stops midway, after earlier files were written).
* Files are replaced atomically (temporary file + rename), so a symlink at the target is replaced, not followed.
* Certificates are written 0644 less the umask (cfssljson: 0664 less the umask); a file that is replaced keeps
  at most its previous mode, narrowed to the table's mode less the umask (cfssljson keeps its mode as it was).
* A missing output directory is reported as ``Failed to write out/ca.pem: directory out does not exist``.
* JSON syntax errors are worded by :mod:`cfsslpy.golang.json`, which approximates Go's messages (type errors in the envelope match exactly).
* ``-h`` appends a synopsis and an example to Go's flag list.
* ``-version`` is accepted (newest cfssljson; the 2016 build rejects it) and prints ``cfsslpy version``'s text.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
from dataclasses import dataclass
from typing import Any

from cfsslpy.errors import PlainError
from cfsslpy.golang import json as gojson
from cfsslpy.golang.base64 import go_base64_decode
from cfsslpy.inputs import MAX_INPUT_BYTES, InputTooLarge, Stdin, creation_mode, os_reason, read_path, write_atomic

MAX_INPUT = MAX_INPUT_BYTES
DEFAULT_BASENAME = "cert"


class RequestFailed(PlainError):
    """The API envelope says ``success: false``; ``messages`` are its errors' messages."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        super().__init__("Request failed:" + "".join(f"\n\t{m}" for m in messages))


@dataclass(frozen=True)
class Output:
    """One planned output: the file to write and how ``-stdout`` shows it."""

    path: str
    data: bytes
    mode: int
    binary: bool = False  # -stdout prints base64 of ``data``

    def stdout_text(self) -> str:
        if self.binary:
            return base64.b64encode(self.data).decode("ascii")
        return self.data.decode("utf-8")


# ---------------------------------------------------------------------------------------------------------
# Reading


def read_source(spec: str, stdin: Stdin | None = None) -> bytes:
    """The bytes of ``-f``: ``-`` is stdin, anything else a plain path (no ``env:``/``file:`` prefixes).

    At most :data:`MAX_INPUT` bytes are read, from a file, a FIFO or a device alike (see
    :func:`cfsslpy.inputs.read_path`); more is ``Failed to read input: read NAME: input is larger than 64 MiB``.
    """
    try:
        if spec == "-":
            data = (stdin if stdin is not None else Stdin()).read()
            if len(data) > MAX_INPUT:
                raise InputTooLarge("standard input", MAX_INPUT)
            return data
        return read_path(spec, MAX_INPUT)
    except PlainError as exc:
        raise PlainError(f"Failed to read input: {exc.message}") from None


# ---------------------------------------------------------------------------------------------------------
# Decoding: a raw tree that keeps what Go's encoding/json can observe (key order and duplicates in
# structs, number literals in error messages).


class _Obj(list[tuple[str, Any]]):
    """A JSON object as its (key, value) pairs, in document order."""

    def as_map(self) -> dict[str, Any]:
        # Go map[string]any: the last duplicate key wins.
        return dict(self)


@dataclass(frozen=True)
class _Num:
    literal: str


def _kind(value: Any) -> str:
    """Go's name for a JSON value's kind, as used in UnmarshalTypeError."""
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, _Num):
        return "number"
    if isinstance(value, _Obj):
        return "object"
    if isinstance(value, list):
        return "array"
    return "null"


def _parse_fail(message: str) -> PlainError:
    return PlainError(f"Failed to parse input: {message}")


def _decode(data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _parse_fail(f"input is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None

    def _constant(name: str) -> Any:
        raise ValueError(name)

    try:
        if text.startswith("\ufeff") or gojson.too_deep(data):
            raise ValueError("BOM or nesting")  # worded below; json.loads must not recurse into a deep document
        return json.loads(text, object_pairs_hook=_Obj, parse_int=_Num, parse_float=_Num, parse_constant=_constant)
    except (ValueError, RecursionError):
        pass
    # Let the shared decoder word the syntax error the way Go does.
    try:
        gojson.loads(data)
    except gojson.JSONDecodeError as exc:
        raise _parse_fail(str(exc)) from None
    raise _parse_fail("invalid JSON")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _text_bytes(value: str) -> bytes:
    # Go decodes a lone \uD800-style escape to U+FFFD; Python keeps the surrogate, which UTF-8 cannot encode.
    return _SURROGATE.sub("\ufffd", value).encode("utf-8")


def _fold_equal(key: str, name: str) -> bool:
    """Go's case-insensitive struct field match (simple folding, so U+212A KELVIN SIGN matches ``k``)."""
    if len(key) != len(name):
        return False
    return all(k == n or k.lower() == n or k.upper() == n.upper() for k, n in zip(key, name, strict=True))


def _field(key: str, names: tuple[str, ...]) -> str | None:
    if key in names:
        return key
    for name in names:
        if _fold_equal(key, name):
            return name
    return None


class _TypeErrors:
    """Go keeps decoding after a type mismatch and reports the first one."""

    def __init__(self) -> None:
        self.first: str | None = None

    def add(self, value: Any, where: str, go_type: str, number_literal: bool = False) -> None:
        if self.first is None:
            kind = _kind(value)
            if number_literal and isinstance(value, _Num):
                kind = f"number {value.literal}"
            self.first = f"json: cannot unmarshal {kind} into {where} of type {go_type}"


def _decode_messages(value: Any, field: str, errs: _TypeErrors) -> list[str]:
    """``[]ResponseMessage`` where ResponseMessage is ``{Code int `json:"int"`; Message string}``."""
    if value is None:
        return []
    if not isinstance(value, list) or isinstance(value, _Obj):
        errs.add(value, f"Go struct field Response.{field}", "[]main.ResponseMessage")
        return []
    messages: list[str] = []
    for item in value:
        message = ""
        if isinstance(item, _Obj):
            for key, inner in item:
                name = _field(key, ("int", "message"))
                if name is None or inner is None:
                    continue
                if name == "int":
                    if not (isinstance(inner, _Num) and _is_int64(inner.literal)):
                        errs.add(inner, f"Go struct field ResponseMessage.{field}.int", "int", number_literal=True)
                elif isinstance(inner, str):
                    message = inner
                else:
                    errs.add(inner, f"Go struct field ResponseMessage.{field}.message", "string")
        elif item is not None:
            errs.add(item, f"Go struct field Response.{field}", "main.ResponseMessage")
        messages.append(_text_bytes(message).decode("utf-8"))
    return messages


def _is_int64(literal: str) -> bool:
    if not re.fullmatch(r"-?\d+", literal):
        return False
    return -(2**63) <= int(literal) < 2**63


# the keys of bare output (cfssl gencert, sign, ... print these without an API envelope)
_BARE_KEYS = ("cert", "certificate", "key", "private_key", "csr", "certificate_request", "bundle", "ocspResponse")


def _unwrap_envelope(tree: Any) -> dict[str, Any]:
    """Decode an API envelope like cfssljson's ``Response`` struct and return its ``result``."""
    if tree is not None and not isinstance(tree, _Obj):
        raise _parse_fail(f"json: cannot unmarshal {_kind(tree)} into Go value of type main.Response")
    errs = _TypeErrors()
    success = False
    result: _Obj | None = None
    errors: list[str] = []
    for key, value in tree or ():
        name = _field(key, ("success", "result", "errors", "messages"))
        if name == "success":
            if isinstance(value, bool):
                success = value
            elif value is not None:
                errs.add(value, "Go struct field Response.success", "bool")
        elif name == "result":
            if value is None or isinstance(value, _Obj):
                result = value
            else:
                errs.add(value, "Go struct field Response.result", "map[string]interface {}")
        elif name == "errors":
            errors = _decode_messages(value, "errors", errs)
        elif name == "messages":
            _decode_messages(value, "messages", errs)
    if errs.first is not None:
        raise _parse_fail(errs.first)
    if not success:
        # cfssljson's error struct reads the key "int", not "code", so codes are never shown.
        failed = RequestFailed(errors)
        keys = [key for key, _ in tree or ()]
        bare_keys = [key for key in _BARE_KEYS if key in keys]
        if bare_keys and not {"success", "result", "errors"} & set(keys):
            failed.hint = f'the input is not an API response (no "success") but bare output ({", ".join(bare_keys)}): add -bare'
        raise failed
    return result.as_map() if result is not None else {}


# ---------------------------------------------------------------------------------------------------------
# Planning


def _string(obj: dict[str, Any], key: str) -> str:
    value = obj[key]
    if not isinstance(value, str):
        article = {"array": "an array", "object": "an object", "null": "null"}.get(_kind(value), f"a {_kind(value)}")
        raise _parse_fail(f'the value of "{key}" is {article}, not a string')
    return value


def _first(obj: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        if key in obj:
            return _string(obj, key)
    return None


def _bundle_outputs(bundle: _Obj, base: str) -> list[Output]:
    # Newest cfssljson: once a bundle object is found, missing inner keys are fatal, with these messages.
    inner = bundle.as_map()
    chain = inner.get("bundle")
    if not isinstance(chain, str):
        raise PlainError("inner bundle parsing failed!")
    root = inner.get("root")
    if not isinstance(root, str):
        raise PlainError("root parsing failed!")
    return [
        Output(f"{base}-bundle.pem", _text_bytes(chain + "\n" + root), 0o644),
        Output(f"{base}-root.pem", _text_bytes(root), 0o644),
    ]


def split(data: bytes, basename: str = DEFAULT_BASENAME, bare: bool = False) -> list[Output]:
    """Validate ``data`` and plan every output, in cfssljson's emission order; nothing is written here.

    Raises :class:`RequestFailed` for ``success: false`` and :class:`PlainError` for anything invalid.
    """
    tree = _decode(data)
    if bare:
        if tree is not None and not isinstance(tree, _Obj):
            raise _parse_fail(f"json: cannot unmarshal {_kind(tree)} into Go value of type map[string]interface {{}}")
        obj: dict[str, Any] = tree.as_map() if tree is not None else {}
    else:
        obj = _unwrap_envelope(tree)

    base = basename
    outputs: list[Output] = []
    cert = _first(obj, "cert", "certificate")
    if cert:
        outputs.append(Output(f"{base}.pem", _text_bytes(cert), 0o644))
    key = _first(obj, "key", "private_key")
    if key:
        outputs.append(Output(f"{base}-key.pem", _text_bytes(key), 0o600))
    if "encrypted_key" in obj:
        outputs.append(Output(f"{base}-key.enc", _text_bytes(_string(obj, "encrypted_key")), 0o600, binary=True))
    csr = _first(obj, "csr", "certificate_request")
    if csr:
        outputs.append(Output(f"{base}.csr", _text_bytes(csr), 0o644))
    if "bundle" in obj:
        if isinstance(obj["bundle"], _Obj):
            outputs += _bundle_outputs(obj["bundle"], base)
        else:
            outputs.append(Output(f"{base}-bundle.pem", _text_bytes(_string(obj, "bundle")), 0o644))
    result = obj.get("result")
    if isinstance(result, _Obj):
        nested = result.as_map().get("bundle")
        if isinstance(nested, _Obj):
            outputs += _bundle_outputs(nested, base)
    if "ocspResponse" in obj:
        try:
            der = go_base64_decode(_string(obj, "ocspResponse"))
        except ValueError as exc:
            raise PlainError(f"Failed to parse ocspResponse: {exc}") from None
        outputs.append(Output(f"{base}-response.der", der, 0o644, binary=True))

    paths = [o.path for o in outputs]
    if len(set(paths)) != len(paths):
        raise _parse_fail('both "bundle" and "result.bundle" are present; refusing to pick one')
    if not outputs:
        raise _parse_fail(_nothing_message(obj, bare))
    return outputs


def _nothing_message(obj: dict[str, Any], bare: bool) -> str:
    message = "nothing to write: no non-empty cert, key, encrypted_key, csr, bundle or ocspResponse value"
    if bare and ("success" in obj or "result" in obj):
        message += "; the input is an API response envelope, run without -bare"
    elif not bare and not obj:
        message += "; the API response has an empty result"
    return message


def render_stdout(outputs: list[Output]) -> str:
    """``-stdout``: each output on its own line (binary ones as base64), files are not written."""
    return "".join(o.stdout_text() + "\n" for o in outputs)


# ---------------------------------------------------------------------------------------------------------
# Writing


def write_outputs(outputs: list[Output]) -> None:
    """Write every output or none.

    Each file is first written in full (via :func:`write_atomic`, mode from :func:`creation_mode`) under a hidden
    staging name next to its target; only when all are staged are they renamed into place. If a rename
    fails, targets already replaced get their previous file back (kept as a hard link), new ones are removed.
    """
    for out in outputs:
        _preflight(out.path)
    staged: list[tuple[Output, str]] = []
    try:
        for out in outputs:
            tmp = _stage_name(out.path)
            staged.append((out, tmp))
            try:
                write_atomic(tmp, out.data, creation_mode(out.path, out.mode))
            except OSError as exc:
                raise PlainError(f"Failed to write {out.path}: {os_reason(exc)}") from None
        _commit(staged)
    finally:
        for _, tmp in staged:
            _unlink_quietly(tmp)


def _preflight(path: str) -> None:
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        what = "is not a directory" if os.path.exists(directory) else "does not exist"
        raise PlainError(f"Failed to write {path}: directory {directory} {what}")
    if os.path.isdir(path):
        raise PlainError(f"Failed to write {path}: is a directory")


def _stage_name(path: str) -> str:
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.{secrets.token_hex(6)}.cfsslpy-staged")


def _commit(staged: list[tuple[Output, str]]) -> None:
    done: list[tuple[str, str | None]] = []  # (target, backup of the previous file or None)
    try:
        for out, tmp in staged:
            backup = None
            if os.path.lexists(out.path):
                backup = _stage_name(out.path) + "-old"
                try:
                    os.link(out.path, backup, follow_symlinks=False)
                except OSError:
                    backup = ""  # cannot keep the old file: on rollback leave the new one in place
            try:
                os.replace(tmp, out.path)
            except OSError as exc:
                if backup:
                    _unlink_quietly(backup)
                raise PlainError(f"Failed to write {out.path}: {os_reason(exc)}") from None
            done.append((out.path, backup))
    except BaseException:
        for target, backup in reversed(done):
            try:
                if backup:
                    os.replace(backup, target)
                elif backup is None:
                    os.unlink(target)
            except OSError:
                pass
        raise
    for _, backup in done:
        if backup:
            _unlink_quietly(backup)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
