"""Template expansion of string values (pure).

``${name}`` looks ``name`` up in the variable scopes given, first hit wins;
``${secret:NAME}`` becomes a ``SecretRef`` (never a value here); ``$${``
is a literal ``${``. A string that is exactly one ``${name}`` takes the
variable's type (so ``temperature: ${temp}`` stays a number). Keys of
mappings are not expanded. Errors are ``ManifestError`` located by the
caller-supplied ``Origin``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wizsync.manifest.errors import ManifestError, format_key_path

from .secrets import SecretRef, SecretText

__all__ = ["Origin", "expand"]

_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_SECRET = re.compile(r"^secret:([A-Za-z_][A-Za-z0-9_]*)$")


@dataclass(frozen=True)
class Origin:
    """Where a templated document comes from, to locate errors: file, line lookup, key prefix, chatbot."""

    file: str
    line_of: Callable[[tuple[Any, ...]], int | None]
    prefix: tuple[Any, ...]
    chatbot: str

    def error(self, path: tuple[Any, ...], message: str, hint: str | None = None) -> ManifestError:
        full = self.prefix + path
        return ManifestError(
            f"chatbot '{self.chatbot}': {message}", file=self.file, line=self.line_of(full), key=full or None, hint=hint
        )


def expand(
    value: Any,
    scopes: Sequence[tuple[str, Mapping[str, Any]]],
    origin: Origin,
    path: tuple[Any, ...] = (),
    errors: list[ManifestError] | None = None,
) -> Any:
    """Expand every string in ``value`` (recursively); ``scopes`` are ``(label, vars)`` in lookup order.

    With ``errors``, a string that cannot be expanded is appended there (and kept as written)
    instead of raising, so every bad template of a document is reported at once.
    """
    if isinstance(value, str):
        if errors is None:
            return _expand_string(value, scopes, origin, path)
        try:
            return _expand_string(value, scopes, origin, path)
        except ManifestError as exc:
            errors.append(exc)
            return value
    if isinstance(value, Mapping):
        return {k: expand(v, scopes, origin, path + (k,), errors) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, scopes, origin, path + (i,), errors) for i, v in enumerate(value)]
    return value


def _expand_string(text: str, scopes: Sequence[tuple[str, Mapping[str, Any]]], origin: Origin, path: tuple[Any, ...]) -> Any:
    if "$" not in text:
        return text
    parts: list[str | SecretRef] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        parts.append(text[pos : match.start()])
        pos = match.end()
        value = _token_value(match, scopes, origin, path)
        if isinstance(value, SecretRef):
            parts.append(value)
        elif match.span() == (0, len(text)) and not isinstance(value, str):
            return value  # exactly "${name}": keep the variable's type
        else:
            parts.append(_as_text(value))
    parts.append(text[pos:])
    return _joined(parts)


def _token_value(match: re.Match[str], scopes: Sequence[tuple[str, Mapping[str, Any]]], origin: Origin, path: tuple[Any, ...]) -> Any:
    """What one token stands for: a literal ``${`` for ``$${``, else the reference's value."""
    if match.group(0) == "$${":
        return "${"
    if match.group(1) is None:
        raise origin.error(path, "unclosed '${' in a template", "Close it with '}' or write '$${' for a literal '${'")
    return _reference_value(match.group(1).strip(), scopes, origin, path)


def _reference_value(ref: str, scopes: Sequence[tuple[str, Mapping[str, Any]]], origin: Origin, path: tuple[Any, ...]) -> Any:
    """``secret:NAME`` becomes a ``SecretRef``; a variable name is looked up; anything else is an error."""
    secret = _SECRET.match(ref)
    if secret:
        full = origin.prefix + path
        return SecretRef(secret.group(1), origin.file, lambda: origin.line_of(full), format_key_path(full) or None)
    if ref.startswith("secret:"):
        raise origin.error(path, f"bad secret reference '${{{ref}}}'", "Write ${secret:NAME} with NAME an environment variable name")
    if not _VAR.match(ref):
        raise origin.error(path, f"bad template reference '${{{ref}}}'", "Write ${name} (letters, digits, '_', '.', '-') or '$${' for a literal '${'")
    return _lookup(ref, scopes, origin, path)


def _joined(parts: list[str | SecretRef]) -> str | SecretText:
    """Plain text when no secret is referenced; else a ``SecretText`` of text runs and references."""
    if not any(isinstance(p, SecretRef) for p in parts):
        return "".join(p for p in parts if isinstance(p, str))
    merged: list[str | SecretRef] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        elif part != "":
            merged.append(part)
    return SecretText(tuple(merged))


def _lookup(name: str, scopes: Sequence[tuple[str, Mapping[str, Any]]], origin: Origin, path: tuple[Any, ...]) -> Any:
    for _, scope in scopes:
        if name in scope:
            return scope[name]
    defined = sorted({k for _, scope in scopes for k in scope})
    where = ", ".join(label for label, _ in scopes)
    raise origin.error(
        path,
        f"undefined variable '{name}' in a template (defined: {', '.join(defined) or 'none'})",
        f"Define it in one of: {where}; or write '$${{' for a literal '${{'",
    )


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)

