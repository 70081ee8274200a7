"""The wire contract as data: the packaged ``openapi.json`` and what it says about values.

``openapi()`` is the parsed document (shipped inside the package, so an
installed SDK reads the very contract it was generated from). The client
uses ``drop_forbidden_nulls`` so it never sends ``null`` where the contract
does not admit one: for an optional, non-nullable field (``transport``,
``enabled``, ``metadata.revision``...) Python's ``None`` means "not given",
and the wire form of that is an absent key. Keys the contract does not name
are left alone (every object admits additional properties).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

__all__ = ["openapi", "component_schema", "admits_null", "drop_forbidden_nulls"]


@functools.lru_cache(maxsize=1)
def openapi() -> dict[str, Any]:
    """The packaged ``openapi.json``, parsed once."""
    text = resources.files(__package__).joinpath("openapi.json").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def component_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = openapi()["components"]["schemas"][name]
    return schema


def _resolve(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        return component_schema(ref.rsplit("/", 1)[-1])
    return schema


def admits_null(schema: Mapping[str, Any]) -> bool:
    """Whether ``null`` is valid under ``schema`` (the subset of JSON Schema openapi.json uses)."""
    schema = _resolve(schema)
    kind = schema.get("type")
    if kind is not None:
        return kind == "null" or (isinstance(kind, list) and "null" in kind)
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            return any(admits_null(branch) for branch in schema[combinator])
    if "const" in schema or "enum" in schema:
        return None in schema.get("enum", [schema.get("const", 0)])
    return True  # no type: anything goes (free-form values such as FieldChange.before)


def _branches(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    schema = _resolve(schema)
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            return [b for branch in schema[combinator] for b in _branches(branch)]
    return [schema]


# Per schema object (they live as long as the cached document): its object and array shapes.
_OBJECTS: dict[int, tuple[Mapping[str, Any], Any] | None] = {}
_ARRAYS: dict[int, Mapping[str, Any] | None] = {}
_NULLABLE: dict[int, bool] = {}
_CONTAINERS = (dict, list)


def _object_shape(schema: Mapping[str, Any]) -> tuple[Mapping[str, Any], Any] | None:
    key = id(schema)
    if key not in _OBJECTS:
        objects = [b for b in _branches(schema) if b.get("type") == "object"]
        _OBJECTS[key] = (objects[0].get("properties", {}), objects[0].get("additionalProperties", True)) if objects else None
    return _OBJECTS[key]


def _array_items(schema: Mapping[str, Any]) -> Mapping[str, Any] | None:
    key = id(schema)
    if key not in _ARRAYS:
        arrays = [b for b in _branches(schema) if b.get("type") == "array" and isinstance(b.get("items"), Mapping)]
        _ARRAYS[key] = arrays[0]["items"] if arrays else None
    return _ARRAYS[key]


def _admits_null(schema: Mapping[str, Any]) -> bool:
    key = id(schema)
    if key not in _NULLABLE:
        _NULLABLE[key] = admits_null(schema)
    return _NULLABLE[key]


def drop_forbidden_nulls(value: Any, schema: Mapping[str, Any]) -> Any:
    """``value`` without the ``null`` values ``schema`` does not admit (recursively; input unchanged)."""
    if type(value) is dict or isinstance(value, Mapping):  # exact type first: ABC checks cost
        shape = _object_shape(schema)
        if shape is None:
            return value
        properties, extra = shape
        out: dict[str, Any] = {}
        for key, item in value.items():
            sub = properties.get(key, extra if isinstance(extra, Mapping) else None)
            if sub is None:  # a key the contract does not name: sent as it is
                out[key] = item
            elif item is None:
                if _admits_null(sub):
                    out[key] = None
            elif type(item) in _CONTAINERS or isinstance(item, Mapping):
                out[key] = drop_forbidden_nulls(item, sub)
            else:
                out[key] = item
        return out
    if isinstance(value, list):
        items = _array_items(schema)
        if items is None:
            return value
        return [drop_forbidden_nulls(item, items) if type(item) in _CONTAINERS else item for item in value]
    return value
