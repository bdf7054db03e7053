"""Go's ``encoding/json`` rules for the scalar fields of cfssl's CSR JSON.

Each reader takes a key-folded object (:func:`cfsslpy.gojson.fold_keys`), the key and the Go struct the key
belongs to; absent or null is Go's zero value, any other JSON type is Go's ``json: cannot unmarshal ...``
error (:func:`cfsslpy.gojson.type_error`).
"""

from __future__ import annotations

from typing import Any

from cfsslpy.gojson import type_error


def string_field(obj: dict[str, Any], key: str, struct: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise type_error(value, struct, key, "string")
    return value


def bool_field(obj: dict[str, Any], key: str, struct: str) -> bool:
    value = obj.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise type_error(value, struct, key, "bool")
    return value


def int_field(obj: dict[str, Any], key: str, struct: str) -> int:
    value = obj.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise type_error(value, struct, key, "int")
    return int(value)


def string_list_field(obj: dict[str, Any], key: str, struct: str) -> list[str] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise type_error(value, struct, key, "[]string")
    for item in value:
        if not isinstance(item, str):
            raise type_error(item, struct, key, "string")
    return list(value)
