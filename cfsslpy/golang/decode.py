"""Go's ``encoding/json`` ``Unmarshal`` into a struct, declared once per model.

A model states its Go shape once: the JSON key of each field (Go's ``json:"..."`` tag, or the Go field name
when there is none), the field's Go type (:data:`STRING`, :data:`BOOL`, :class:`Int`, :class:`Slice`,
:class:`Map`, a nested struct, :class:`Ptr`, :data:`RAW`, :class:`Text`) and, when it differs from the key,
the model attribute it fills::

    @go_struct("csr.KeyRequest", {"algo": STRING, "size": INT})
    @dataclass(frozen=True)
    class KeyRequest:
        algo: str = "ecdsa"
        size: int = 256

:func:`decode` then reads a decoded JSON value as Go would:

* object keys match a field exactly or, failing that, case-insensitively; unknown keys are ignored;
* ``null`` leaves a field as it is (the model's default, Go's zero value), except that a pointer
  (:class:`Ptr`) becomes nil (None); an absent key leaves every field as it is;
* any other JSON type than the field's is Go's ``json: cannot unmarshal <kind> into Go struct field
  <Struct>.<path> of type <type>`` (:func:`cfsslpy.golang.json.type_error`), at the first such field in document
  order; a document of the wrong type is ``... into Go value of type <type>``.

Go 1.20 and later name the field by its whole JSON path from the document root (``SigningProfile.signing.
default.usages``); older Go, and cfssl's texts that this package matches for most documents, by the field
alone (``Name.OID``). ``full_paths`` chooses. Map keys and slice indexes are never part of a path.

A model may check what was decoded, as a Go ``UnmarshalJSON`` method would, in a ``go_unmarshaled(self)``
method: :func:`decode` calls it after the fields are set.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

from cfsslpy.golang.base64 import go_base64_decode
from cfsslpy.golang.json import JSONDecodeError, KeyFolder, parse_time, type_error

__all__ = [
    "BigInt",
    "BOOL",
    "BYTES",
    "INT",
    "INT64",
    "RAW",
    "STRING",
    "STRINGS",
    "TIME",
    "GO_ZERO_TIME",
    "GoStruct",
    "GoType",
    "Int",
    "Map",
    "Ptr",
    "Slice",
    "Text",
    "UnmarshalTypeError",
    "Where",
    "decode",
    "go_struct",
    "struct_of",
]

T = TypeVar("T")

_INT64 = (-(1 << 63), (1 << 63) - 1)


class UnmarshalTypeError(JSONDecodeError):
    """Go's ``*json.UnmarshalTypeError``: valid JSON of the wrong type for its Go field (not a syntax error)."""


class Where:
    """Where a value sits in the document: the Go struct declaring its field and the field's path.

    The document itself is ``Where()`` (no struct, no path): an error there is ``... into Go value of type T``.
    """

    __slots__ = ("full_paths", "path", "struct")

    def __init__(self, struct: str = "", path: str = "", full_paths: bool = False) -> None:
        self.struct, self.path, self.full_paths = struct, path, full_paths

    def field(self, struct: str, key: str) -> Where:
        """The field ``key`` of the Go struct ``struct`` that sits here."""
        path = f"{self.path}.{key}" if self.full_paths and self.path else key
        return Where(struct, path, self.full_paths)

    def error(self, value: Any, go_type: str) -> UnmarshalTypeError:
        """Go's type error for ``value`` found here where a ``go_type`` was expected."""
        return UnmarshalTypeError(str(type_error(value, self.struct, self.path, go_type)))


class GoType:
    """A Go type a JSON value is decoded into. ``go`` is its name in Go's error texts."""

    go: str = ""

    def zero(self) -> Any:
        """Go's zero value, for a ``null`` slice element or map value."""
        return None

    def decode(self, value: Any, where: Where) -> Any:
        """``value`` (never None) decoded, or Go's error raised."""
        raise NotImplementedError

    def decode_null(self, where: Where) -> Any:
        """A ``null`` slice element or map value: the zero value."""
        return self.zero()


class _String(GoType):
    go = "string"

    def zero(self) -> str:
        return ""

    def decode(self, value: Any, where: Where) -> str:
        if not isinstance(value, str):
            raise where.error(value, self.go)
        return value


class _Bool(GoType):
    go = "bool"

    def zero(self) -> bool:
        return False

    def decode(self, value: Any, where: Where) -> bool:
        if not isinstance(value, bool):
            raise where.error(value, self.go)
        return value


class Int(GoType):
    """A Go integer type (``int``, ``int64``, ``time.Duration``...), 64 bits wide.

    ``whole_floats`` also takes a JSON number written with a fraction or exponent that is a whole number
    (``2048.0``): Go refuses it, but the CSR and configuration documents have always accepted it here.
    """

    def __init__(self, go: str = "int", whole_floats: bool = False) -> None:
        self.go, self.whole_floats = go, whole_floats

    def zero(self) -> int:
        return 0

    def decode(self, value: Any, where: Where) -> int:
        if isinstance(value, float) and self.whole_floats and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not _INT64[0] <= value <= _INT64[1]:
            raise where.error(value, self.go)
        return value


class Slice(GoType):
    """A Go slice ``[]elem``: a JSON array. An element of the wrong type names the field and the element type;
    a ``null`` element is the element's zero value (``skip_nulls``: left out instead)."""

    def __init__(self, elem: GoType, name: str = "", skip_nulls: bool = False) -> None:
        self.elem, self.go, self.skip_nulls = elem, name or "[]" + elem.go, skip_nulls

    def decode(self, value: Any, where: Where) -> list[Any]:
        if not isinstance(value, list):
            raise where.error(value, self.go)
        items = [item for item in value if item is not None] if self.skip_nulls else value
        return [self.elem.decode(item, where) if item is not None else self.elem.decode_null(where) for item in items]


class Map(GoType):
    """A Go map with string keys: a JSON object whose keys are kept as they are (no folding)."""

    def __init__(self, elem: GoType, name: str = "") -> None:
        self.elem, self.go = elem, name or "map[string]" + elem.go

    def zero(self) -> dict[str, Any]:
        return {}

    def decode(self, value: Any, where: Where) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise where.error(value, self.go)
        return {k: self.elem.decode(v, where) if v is not None else self.elem.decode_null(where) for k, v in value.items()}


class Ptr(GoType):
    """A Go pointer ``*T``: decoded as ``T``; its zero value (a ``null`` map value) is None. Go names the
    pointed-to type in its errors."""

    def __init__(self, elem: GoType) -> None:
        self.elem, self.go = elem, elem.go

    def decode(self, value: Any, where: Where) -> Any:
        return self.elem.decode(value, where)


class BigInt(GoType):
    """Go's ``*big.Int``: a JSON integer. ``strings`` also takes a decimal integer in a JSON string (the sign
    request document always has); Go itself does not."""

    go = "*big.Int"

    def __init__(self, strings: bool = False) -> None:
        self.strings = strings

    def decode(self, value: Any, where: Where) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if self.strings and isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise where.error(value, self.go)


class _Raw(GoType):
    """``interface{}`` / ``json.RawMessage``: any JSON value, kept as decoded."""

    go = "interface {}"

    def decode(self, value: Any, where: Where) -> Any:
        return value


class Text(GoType):
    """A Go type read from a JSON string by its own ``UnmarshalJSON`` (an OID, a time, a hex blob...).

    ``parse(text, where)`` converts the string; it raises the document's own error for a string it refuses.
    """

    def __init__(self, go: str, parse: Callable[[str, Where], Any]) -> None:
        self.go, self.parse = go, parse

    def decode(self, value: Any, where: Where) -> Any:
        if not isinstance(value, str):
            raise where.error(value, self.go)
        return self.parse(value, where)

    def decode_null(self, where: Where) -> Any:
        """A ``null`` element: refused, as the type's ``UnmarshalJSON`` refuses it."""
        raise where.error(None, self.go)


GO_ZERO_TIME = dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc)


def _rfc3339(text: str, where: Where) -> dt.datetime | None:
    parsed = parse_time(text)
    return None if parsed == GO_ZERO_TIME else parsed


STRING = _String()
BOOL = _Bool()
INT = Int()
INT64 = Int("int64")
RAW = _Raw()
STRINGS = Slice(STRING)
TIME = Text("time.Time", _rfc3339)
"""A Go ``time.Time``: an RFC 3339 string; Go's zero time is None (cfssl's ``IsZero``)."""
BYTES = Text("[]uint8", lambda text, where: go_base64_decode(text))
"""A Go ``[]byte``: standard base64 with padding."""


class GoStruct(GoType):
    """A Go struct: its name (``csr.CertificateRequest``) and its fields by JSON key, in declaration order.

    ``fields`` maps each JSON key to its Go type, or to ``(type, attribute)`` when the model attribute has
    another name. ``build`` makes the model from the attributes found in the document (keyword arguments;
    absent and ``null`` fields are left out, so the model's defaults apply); without it the value is a
    dict holding every attribute, the zero value of its type when the document has none.
    """

    def __init__(self, go: str, fields: Mapping[str, GoType | tuple[GoType, str]], build: Callable[..., Any] | None = None) -> None:
        self.go = go
        self.struct = go.rpartition(".")[2]  # Go names the struct without its package in field errors
        self.fields = {key: spec if isinstance(spec, tuple) else (spec, key) for key, spec in fields.items()}
        self.build = build
        self._keys = KeyFolder(self.fields)  # Go's key matching, its tables made once

    def zero(self) -> Any:
        return self.build() if self.build is not None else {attr: t.zero() for t, attr in self.fields.values()}

    def decode(self, value: Any, where: Where) -> Any:
        if not isinstance(value, dict):
            raise where.error(value, self.go)
        found: dict[str, Any] = {}
        for key, item in self._keys.fold(value).items():
            go_type, attr = self.fields[key]
            if item is not None:
                found[attr] = go_type.decode(item, where.field(self.struct, key))
            elif isinstance(go_type, Ptr):
                found[attr] = None  # Go sets a pointer to nil; other fields keep their value
        if self.build is None:
            return {attr: found[attr] if attr in found else t.zero() for t, attr in self.fields.values()}
        model = self.build(**found)
        check = getattr(model, "go_unmarshaled", None)
        if check is not None:
            check()
        return model


_STRUCTS: dict[type, GoStruct] = {}


def go_struct(go: str, fields: Mapping[str, GoType | tuple[GoType, str]]) -> Callable[[type[T]], type[T]]:
    """Class decorator: declare the Go struct a model is decoded from (see :class:`GoStruct`)."""

    def register(cls: type[T]) -> type[T]:
        _STRUCTS[cls] = GoStruct(go, fields, cls)
        return cls

    return register


def struct_of(cls: type) -> GoStruct:
    """The Go struct declared for ``cls`` with :func:`go_struct`, to use as a field's type."""
    return _STRUCTS[cls]


@overload
def decode(target: type[T], obj: Any, *, at: Where | None = ..., full_paths: bool = ..., null: bool = ...) -> T: ...
@overload
def decode(target: GoType, obj: Any, *, at: Where | None = ..., full_paths: bool = ..., null: bool = ...) -> Any: ...
def decode(target: type[Any] | GoType, obj: Any, *, at: Where | None = None, full_paths: bool = False, null: bool = True) -> Any:
    """``obj`` (a decoded JSON value) unmarshaled into ``target``: a model declared with :func:`go_struct`,
    or any :class:`GoType`. JSONDecodeError carries Go's text.

    ``at`` places the document inside another (its errors then name that field); ``full_paths`` names fields
    by their JSON path from the root (Go >= 1.20). A ``null`` document is the zero value, as in Go, unless
    ``null`` is False: then it is Go's type error (``cannot unmarshal null into Go value of type T``), for the
    documents whose cfssl command refuses it.
    """
    go_type = target if isinstance(target, GoType) else struct_of(target)
    where = at if at is not None else Where(full_paths=full_paths)
    if obj is None:
        if not null:
            raise where.error(None, go_type.go)
        return go_type.zero()
    return go_type.decode(obj, where)
