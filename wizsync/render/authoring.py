"""What the user writes, checked strictly against the contract (``openapi.json``), offline.

Every document a user authors (a ``file`` source; the ``spec`` of an overlay
or override) is checked before any request: types, enums, ranges, required
keys, and keys the contract does not name (with a did-you-mean). Every
problem is returned, each located by file, line and key.

The schema is the SDK's packaged ``openapi.json``, validated as JSON Schema
(``jsonschema_rs`` says yes or no fast; ``jsonschema``, the reference
implementation, describes what is wrong when it is no): it checks exactly
what the contract says, where the generated Pydantic models are lenient by
design (they coerce ``"0.5"`` to a number and accept any key, so that what a
server sends never fails a read). Made strict here: unknown keys are errors,
and ``spec.core`` is checked against ``PublicCore``.

What the server sends is never checked this way: live configs are data.

``allowUnknown`` is the one escape hatch for fields newer than this wizsync:
document paths (``spec.core.newField``, ``spec.mcpServers.newField`` for every
item, ``spec.futureSection``) under which nothing is checked.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import jsonschema_rs

from wizchat_management import ITEM_KEYS
from wizchat_management.contract import component_schema

from wizsync.manifest.errors import ManifestError, format_key_path

from .secrets import SecretText

__all__ = ["AllowUnknown", "check_authored", "unknown_paths", "DOCS"]

DOCS = "docs/manifest.md"
ALLOW_DOCS = f"{DOCS} (\"Fields newer than this wizsync\")"
Mode = Literal["source", "patch"]
DELETE_KEY = "$delete"


@dataclass(frozen=True)
class AllowUnknown:
    """Document paths (item indexes left out) under which a document is not checked."""

    paths: frozenset[tuple[str, ...]] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> "AllowUnknown":
        return cls(frozenset(tuple(e.split(".")) for e in entries))

    def __or__(self, other: "AllowUnknown") -> "AllowUnknown":
        return AllowUnknown(self.paths | other.paths)

    def covers(self, path: tuple[Any, ...]) -> bool:
        keys = _keys_only(path)
        return any(keys[:n] in self.paths for n in range(1, len(keys) + 1))


def _keys_only(path: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(str(p) for p in path if not isinstance(p, int))


@dataclass(frozen=True)
class Problem:
    """One contract violation at ``path`` (document path); ``message`` never holds the value."""

    path: tuple[Any, ...]
    message: str
    hint: str | None = None
    # A wrong value may come from a chatbot's own template variables: name the chatbot then.
    about_value: bool = False


# -- the strict schemas -------------------------------------------------------


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    # if/else rather than anyOf: jsonschema then reports the real branch's errors with their paths.
    if schema.get("if") == {"type": "null"}:
        return schema
    return {"if": {"type": "null"}, "else": schema}


def _newer_value(schema: Mapping[str, Any]) -> bool:
    if "$ref" in schema:
        schema = component_schema(str(schema["$ref"]).rsplit("/", 1)[-1])
    return schema.get("x-newer-value") is True


def _strict(schema: Mapping[str, Any], *, patch: bool) -> dict[str, Any]:
    """``schema`` with refs inlined, nullable unions as if/else, objects closed (``patch``: all optional)."""
    if "$ref" in schema:
        return _strict(component_schema(str(schema["$ref"]).rsplit("/", 1)[-1]), patch=patch)
    out: dict[str, Any] = {k: v for k, v in schema.items() if k not in ("description", "default")}
    branches = out.pop("anyOf", None)
    if branches is not None:
        # A value newer than the contract (``NewerValue``) is the server's to send, not ours to write.
        real = [b for b in branches if b != {"type": "null"} and not _newer_value(b)]
        inner = _strict(real[0], patch=patch) if len(real) == 1 else {"anyOf": [_strict(b, patch=patch) for b in real]}
        return _nullable(inner) if len(real) < len(branches) else inner
    if "properties" in out:
        props = {k: _strict(v, patch=patch) for k, v in out["properties"].items()}
        if patch:  # null removes a key in an overlay; what to keep is the live config's business
            props = {k: _nullable(v) for k, v in props.items()}
            out.pop("required", None)
        out["properties"] = props
        if out.get("additionalProperties") is True:
            out["additionalProperties"] = False
    elif isinstance(out.get("additionalProperties"), Mapping):
        out["additionalProperties"] = _strict(out["additionalProperties"], patch=patch)
    if isinstance(out.get("items"), Mapping):
        out["items"] = _strict(out["items"], patch=patch)
    return out


@functools.lru_cache(maxsize=2)
def _document_schema(mode: Mode) -> dict[str, Any]:
    patch = mode == "patch"
    spec = _strict(component_schema("Spec"), patch=patch)
    spec["properties"]["core"] = _nullable(_strict(component_schema("PublicCore"), patch=patch))
    spec["additionalProperties"] = False
    if patch:
        for section, key in ITEM_KEYS.items():
            items = spec["properties"][section]["else"]["items"]
            items["properties"][DELETE_KEY] = {"type": "boolean"}
            items["properties"][key] = _strict(component_schema(_ITEM_SCHEMAS[section])["properties"][key], patch=False)
            items["required"] = [key]
        return {"type": "object", "properties": {"spec": _nullable(spec)}}
    document = _strict(component_schema("ChatbotConfigDocument"), patch=False)
    document["properties"]["spec"] = spec
    document["required"] = ["spec"]  # a file source may leave apiVersion and kind out (they have one value)
    document["properties"]["allowUnknown"] = {"type": "array", "items": {"type": "string"}}
    return document


_ITEM_SCHEMAS = {"mcpServers": "PublicMcpServer", "skills": "PublicSkill", "domains": "PublicDomain"}


@functools.lru_cache(maxsize=2)
def _validator(mode: Mode) -> Any:
    """The reporting validator: jsonschema's errors carry the schema and value to describe."""
    import jsonschema  # only when a document is invalid: ~0.1 s of imports no valid run pays

    return jsonschema.Draft202012Validator(_document_schema(mode))


@functools.lru_cache(maxsize=2)
def _gate(mode: Mode) -> Any:
    """The fast yes/no (~3 µs, not ~500 µs a document): a 10,000-chatbot fleet renders in seconds."""
    return jsonschema_rs.Draft202012Validator(_document_schema(mode))


# -- checking -----------------------------------------------------------------


def problems(document: Any, mode: Mode, *, plain: bool = False) -> list[Problem]:
    """Every contract violation of ``document`` (a source document, or ``{spec: ...}`` of a patch).

    ``plain``: the document holds JSON values only (a masked document), no secret references.
    """
    data = document if plain else _plain(document)
    if _gate(mode).is_valid(data):
        return []
    found: list[Problem] = []
    for error in _validator(mode).iter_errors(data):
        found.extend(_describe(error))
    return sorted(found, key=lambda p: [str(x) for x in p.path])


def unknown_paths(document: Any) -> list[str]:
    """The ``allowUnknown`` entries a server's document needs to be a valid source (export writes them)."""
    out: list[str] = []
    for problem in problems(document, "source"):
        entry = ".".join(_keys_only(problem.path))
        if entry and entry not in out:
            out.append(entry)
    return sorted(out)


def check_authored(
    document: Any,
    mode: Mode,
    *,
    file: str,
    line_of: Callable[[tuple[Any, ...]], int | None],
    prefix: tuple[Any, ...] = (),
    allow: AllowUnknown = AllowUnknown(),
    chatbot: str | None = None,
) -> list[ManifestError]:
    """``problems`` not covered by ``allow``, as located ``ManifestError`` (``prefix``: where the document sits)."""
    errors = []
    who = f"chatbot '{chatbot}': " if chatbot else ""
    for problem in problems(document, mode):
        if allow.covers(problem.path):
            continue
        full = prefix + problem.path
        text = f"{who}{problem.message}" if problem.about_value else problem.message
        errors.append(ManifestError(text, file=file, line=line_of(full), key=full or None, hint=problem.hint))
    return errors


def _plain(value: Any) -> Any:
    """The document as JSON values (secret references as their masked text)."""
    kind = type(value)  # exact types first: an isinstance(Mapping) per value was most of the check's time
    if kind is dict:
        return {k: _plain(v) for k, v in value.items()}
    if kind is list:
        return [_plain(v) for v in value]
    if kind in (str, int, float, bool) or value is None:
        return value
    if isinstance(value, SecretText):
        return value.masked()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


_TYPE_NAMES = {
    "string": "a string", "number": "a number", "integer": "an integer", "boolean": "true or false",
    "object": "a mapping", "array": "a list", "null": "null",
}


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


def _describe(error: Any) -> list[Problem]:
    """One jsonschema error as the problems a user can act on (one per unknown or missing key)."""
    path = tuple(error.absolute_path)
    describer = _DESCRIBERS.get(error.validator)
    described = describer(error, path) if describer else None
    if described is None:
        return [Problem(path, f"is not valid here ({error.validator})", f"See {DOCS}", about_value=True)]
    return described


def _unknown_keys(error: Any, path: tuple[Any, ...]) -> list[Problem] | None:
    if not isinstance(error.instance, Mapping):
        return None
    allowed = sorted(error.schema.get("properties", {}))
    return [_unknown_key(path, key, allowed) for key in error.instance if key not in allowed]


def _unknown_key(path: tuple[Any, ...], key: Any, allowed: list[str]) -> Problem:
    if key == DELETE_KEY:
        return Problem(path + (key,), "'$delete' is only valid on an item of mcpServers, skills or domains",
                       "To remove a key of an object, set it to null")
    what = "section" if path == ("spec",) else "key"
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
    entry = ".".join(_keys_only(path + (key,)))
    hint = f"Did you mean '{close[0]}'?" if close else f"Known keys here: {', '.join(allowed)}."
    hint += f" If '{key}' is a field newer than this wizsync, list it in allowUnknown: [{entry}] (see {ALLOW_DOCS})"
    return Problem(path + (key,), f"unknown {what} '{key}'", hint)


def _missing_keys(error: Any, path: tuple[Any, ...]) -> list[Problem] | None:
    if not isinstance(error.instance, Mapping):
        return None
    return [
        Problem(path + (k,), f"missing required key '{k}'", f"Add {k}: ... (see {DOCS})")
        for k in error.validator_value
        if k not in error.instance
    ]


def _wrong_type(error: Any, path: tuple[Any, ...]) -> list[Problem]:
    expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
    names = [str(_TYPE_NAMES.get(t, t)) for t in expected if t != "null"]
    wanted = " or ".join(dict.fromkeys(names)) + (" (or null to remove it)" if "null" in expected else "")
    return [Problem(path, f"must be {wanted}, not {_type_of(error.instance)}", about_value=True)]


def _not_one_of(error: Any, path: tuple[Any, ...]) -> list[Problem]:
    options = error.validator_value if error.validator == "enum" else [error.validator_value]
    return [Problem(path, "must be " + (" or ".join(repr(o) for o in options)), about_value=True)]


def _out_of_range(error: Any, path: tuple[Any, ...]) -> list[Problem]:
    low, high = error.schema.get("minimum"), error.schema.get("maximum")
    if low is not None and high is not None:
        return [Problem(path, f"must be between {low:g} and {high:g}", about_value=True)]
    bound = f"at least {low:g}" if low is not None else f"at most {high:g}"
    return [Problem(path, f"must be {bound}", about_value=True)]


def _empty(error: Any, path: tuple[Any, ...]) -> list[Problem]:
    return [Problem(path, "must not be empty", about_value=True)]


# One describer per JSON Schema keyword the contract uses; None falls back to the generic message.
_DESCRIBERS: dict[str, Callable[[Any, tuple[Any, ...]], list[Problem] | None]] = {
    "additionalProperties": _unknown_keys,
    "required": _missing_keys,
    "type": _wrong_type,
    "enum": _not_one_of,
    "const": _not_one_of,
    "minimum": _out_of_range,
    "maximum": _out_of_range,
    "minLength": _empty,
}
