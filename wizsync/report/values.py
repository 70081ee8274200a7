"""How one value is shown to a person: escaped, elided, secrets masked.

Everything a renderer prints from server or manifest data goes through here,
so no control character, terminal escape or secret value reaches the output.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any, Iterable, Mapping, Sequence, overload

from wizchat_management import ITEM_KEYS, REDACTED

MASK = "***"
SECRET_REF_RE = re.compile(r"<secret:[A-Za-z_][A-Za-z0-9_]*>")

# C0 and C1 controls, DEL, and the bidi overrides/isolates ("trojan source"):
# any of them can move the cursor, recolour or visually reorder a terminal line.
_UNSAFE_RE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")

DEFAULT_LIMIT = 60


def _escape_char(m: re.Match[str]) -> str:
    c = m.group(0)
    return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(c) or (
        f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"
    )


def safe_text(s: str) -> str:
    """``s`` with every control/bidi character shown as a visible escape."""
    return _UNSAFE_RE.sub(_escape_char, s)


def forbidden_list(forbidden: Iterable[str] | None) -> list[str]:
    """Non-empty forbidden values, longest first (so a longer secret wins)."""
    return sorted({f for f in (forbidden or ()) if f}, key=lambda f: (-len(f), f))


@overload
def scrub(value: str, forbidden: Sequence[str]) -> str: ...
@overload
def scrub(value: Any, forbidden: Sequence[str]) -> Any: ...
def scrub(value: Any, forbidden: Sequence[str]) -> Any:
    """``value`` with every occurrence of a forbidden string replaced by ``***``.

    Applied to raw values *before* elision, so no head or tail of a secret
    survives; recurses into dicts and lists (keys included).
    """
    if not forbidden:
        return value
    if isinstance(value, str):
        for f in forbidden:
            if f in value:
                value = value.replace(f, MASK)
        return value
    if isinstance(value, Mapping):
        return {scrub(str(k), forbidden): scrub(v, forbidden) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v, forbidden) for v in value]
    return value


def _elide(s: str, limit: int) -> str:
    """Head…tail of an already-escaped single-line string, with its length."""
    if len(s) <= limit:
        return json.dumps(s, ensure_ascii=False)
    keep = max(limit - 1, 2)
    head, tail = s[: (keep + 1) // 2], s[-(keep // 2) :]
    return f"{json.dumps(head + '…' + tail, ensure_ascii=False)} ({len(s)} chars)"


def format_value(value: Any, limit: int = DEFAULT_LIMIT) -> str:
    """One-line display of a config value.

    Strings are quoted; longer than ``limit`` they show head…tail and their
    length; multi-line strings (system prompts) show their first line, line and
    char counts. ``<redacted>`` is shown bare. Objects and lists are compact JSON
    with sorted keys, elided the same way. The result never holds a control char.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        if value == REDACTED or SECRET_REF_RE.fullmatch(value):
            return value
        if "\n" in value.strip("\n"):
            lines = value.splitlines()
            first = next((ln for ln in lines if ln.strip()), "")
            first = safe_text(first)
            head = first if len(first) <= 40 else first[:39] + "…"
            return f"{json.dumps(head + ' …', ensure_ascii=False)} ({len(lines)} lines, {len(value)} chars)"
        return safe_text(_elide(value, limit))
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    text = safe_text(text)
    if len(text) <= limit:
        return text
    return safe_text(_elide(text, limit))


def line_delta(before: Any, after: Any) -> str | None:
    """``+a -b lines`` for a multi-line text edit, else None."""
    if not (isinstance(before, str) and isinstance(after, str)):
        return None
    if "\n" not in before.strip("\n") and "\n" not in after.strip("\n"):
        return None
    added = removed = 0
    for ln in difflib.ndiff(before.splitlines(), after.splitlines()):
        if ln.startswith("+ "):
            added += 1
        elif ln.startswith("- "):
            removed += 1
    return f"+{added} -{removed} lines"


# -- the masked desired document ------------------------------------------------


def desired_spec(desired: Any) -> Mapping[str, Any] | None:
    """The ``spec`` mapping of a masked document (model or dict, with or without ``spec``)."""
    if desired is None:
        return None
    if hasattr(desired, "model_dump"):
        desired = desired.model_dump(mode="json", by_alias=True)
    if not isinstance(desired, Mapping):
        return None
    spec = desired.get("spec", desired)
    return spec if isinstance(spec, Mapping) else None


def desired_item(desired: Any, section: str, key: str | None) -> Any:
    """The section (object sections) or the keyed item (array sections), or None."""
    spec = desired_spec(desired)
    if spec is None:
        return None
    body = spec.get(section)
    if key is None or section not in ITEM_KEYS:
        return body if key is None else None
    if not isinstance(body, list):
        return None
    field = ITEM_KEYS[section]
    for item in body:
        if isinstance(item, Mapping) and str(item.get(field)) == key:
            return item
    return None


_MISSING = object()


def _walk(obj: Any, parts: list[str]) -> Any:
    # A header name or core key may itself contain a dot, so try the longest
    # joined prefix that exists at each level.
    if not parts:
        return obj
    if not isinstance(obj, Mapping):
        return _MISSING
    for n in range(len(parts), 0, -1):
        k = ".".join(parts[:n])
        if k in obj:
            found = _walk(obj[k], parts[n:])
            if found is not _MISSING:
                return found
    return _MISSING


def desired_value(desired: Any, section: str, key: str | None, path: str) -> Any:
    """The masked desired value at ``section[key].path``, or None when absent."""
    item = desired_item(desired, section, key)
    if item is None:
        return None
    found = _walk(item, path.split(".") if path else [])
    return None if found is _MISSING else found


def secret_display(desired: Any, section: str, key: str | None, path: str) -> str | None:
    """The desired value if it holds a ``<secret:NAME>`` reference, else None.

    Such a field shows the reference (a person knows where it comes from)
    rather than the server's ``<redacted>`` or, worse, a resolved value.
    """
    v = desired_value(desired, section, key, path)
    if isinstance(v, str) and SECRET_REF_RE.search(v):
        return v
    return None


def flatten(item: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Dotted ``(path, value)`` pairs of an item's fields (nested objects flattened)."""
    out: list[tuple[str, Any]] = []
    if not isinstance(item, Mapping):
        return [(prefix, item)] if prefix else []
    for k in item:
        v = item[k]
        path = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping) and v:
            out.extend(flatten(v, path))
        elif v is not None:
            out.append((path, v))
    return out
