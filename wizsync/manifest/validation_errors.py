"""Turn a Pydantic ``ValidationError`` into located ``ManifestError``s, one per key path.

Pydantic locations contain union tags (``'int'``, ``'str'``) that are not keys
in the YAML; we walk the data to keep only real keys, then look up the line.
Input values are never copied into the message: they may be keys or secrets.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from .errors import ManifestError
from .yaml_marks import LocatedYaml

__all__ = ["manifest_error_from_validation", "manifest_errors_from_validation"]


def manifest_error_from_validation(exc: ValidationError, doc: LocatedYaml, root: type[BaseModel]) -> ManifestError:
    """The first problem (in file order) of ``exc`` as a ``ManifestError``."""
    return manifest_errors_from_validation(exc, doc, root)[0]


def manifest_errors_from_validation(exc: ValidationError, doc: LocatedYaml, root: type[BaseModel]) -> list[ManifestError]:
    """Every problem of ``exc``, one ``ManifestError`` per key path, in file order."""
    mapped: list[tuple[int, bool, int, tuple[Any, ...], list[str], ErrorDetails]] = []
    for error in exc.errors(include_input=False, include_url=False):
        path, tags = _data_path(doc.data, error["loc"])
        # On one line, an unknown key explains more than the missing key it is probably a typo of.
        mapped.append((doc.line_of(path) or 0, error["type"] != "extra_forbidden", len(mapped), path, tags, error))
    mapped.sort(key=lambda item: item[:3])
    out: list[ManifestError] = []
    seen: list[tuple[Any, ...]] = []
    lines_with_unknown = {item[0] for item in mapped if not item[1]}
    for line, not_unknown, _, path, tags, error in mapped:
        if path in seen:
            continue  # the union's other branches: described together below
        if not_unknown and error["type"] == "missing" and line in lines_with_unknown:
            continue  # 'lables' unknown and 'labels' missing on one line: the typo says it all
        seen.append(path)
        same_path = [item[5] for item in mapped if item[3] == path]
        message, hint = _describe(error, path, tags, same_path, root)
        out.append(ManifestError(message, file=doc.file, line=line or None, key=path or None, hint=hint))
    return out


def _data_path(data: Any, loc: tuple[Any, ...]) -> tuple[tuple[Any, ...], list[str]]:
    """Keep the parts of ``loc`` that are keys of ``data``; return the dropped tags too."""
    path: list[Any] = []
    tags: list[str] = []
    node = data
    for part in loc:
        if isinstance(node, Mapping) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif isinstance(node, Mapping) and isinstance(part, str) and not isinstance(node.get(part, None), Mapping):
            # A missing or unknown key: it is the last real part of the path.
            if part in ("str", "int", "float", "bool", "none") or part.startswith(("function-", "literal[")):
                tags.append(part)
            else:
                path.append(part)
                node = None
        else:
            tags.append(str(part))
    return tuple(path), tags


def _describe(
    error: Mapping[str, Any], path: tuple[Any, ...], tags: list[str], same_path: Sequence[Mapping[str, Any]], root: type[BaseModel]
) -> tuple[str, str | None]:
    kind = error["type"]
    msg = str(error["msg"])
    if kind == "extra_forbidden":
        allowed = _allowed_keys(root, path[:-1])
        key = path[-1] if path else "?"
        hint = None
        if allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.5)
            hint = (f"Did you mean '{close[0]}'? " if close else "") + "Allowed keys here: " + ", ".join(allowed)
        return f"unknown key '{key}'", hint
    if kind == "missing":
        return f"missing required key '{path[-1] if path else '?'}'", "Add it (see docs/manifest.md)"
    if msg.startswith("Value error, "):
        return msg[len("Value error, "):], None
    if msg.startswith("Assertion failed, "):
        return msg[len("Assertion failed, "):], None
    if len(same_path) > 1 and tags:
        kinds = list(dict.fromkeys(t for t in map(_tag_of, same_path) if t))
        expected = ", ".join(kinds[:-1]) + (" or " if len(kinds) > 1 else "") + (kinds[-1] if kinds else "another type")
        return f"wrong type: expected {expected}", None
    return msg[:1].lower() + msg[1:], None


def _tag_of(error: Mapping[str, Any]) -> str | None:
    names = {"str": "a string", "int": "an integer", "float": "a number", "bool": "a boolean", "none": "null"}
    for part in reversed(error["loc"]):
        if part in names:
            return names[part]
    return None


def _allowed_keys(root: type[BaseModel], path: tuple[Any, ...]) -> list[str]:
    """The keys the schema allows at ``path`` (best effort, for hints)."""
    current: Any = root
    for part in path:
        current = _step(current, part)
        if current is None:
            return []
    for model in _models(current):
        return sorted(field.alias or name for name, field in model.model_fields.items())
    return []


def _step(tp: Any, part: Any) -> Any:
    for candidate in _unwrap(tp):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            for name, field in candidate.model_fields.items():
                if (field.alias or name) == part:
                    return field.annotation
        origin = typing.get_origin(candidate)
        args = typing.get_args(candidate)
        if origin is dict and len(args) == 2 and not isinstance(part, int):
            return args[1]
        if origin is list and args and isinstance(part, int):
            return args[0]
    return None


def _unwrap(tp: Any) -> list[Any]:
    if typing.get_origin(tp) is typing.Union:
        return [a for a in typing.get_args(tp) if a is not type(None)]
    return [tp]


def _models(tp: Any) -> list[type[BaseModel]]:
    return [c for c in _unwrap(tp) if isinstance(c, type) and issubclass(c, BaseModel)]
