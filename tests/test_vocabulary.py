"""The API's vocabulary is defined once, by the SDK, and every other module imports it.

Section names, array item keys, the redaction marker and the API-key pattern
were once spelled in five places with three different key lengths; this keeps
a new copy from creeping back in (it names the file and line).
"""

from __future__ import annotations

import ast
from pathlib import Path

import wizchat_management
import wizsync
from wizchat_management import vocabulary

SECTION_NAMES = set(vocabulary.SECTIONS)
_HERE = {Path(vocabulary.__file__), Path(wizchat_management.__file__).parent / "models.py"}


def _modules() -> list[Path]:
    roots = (Path(wizsync.__file__).parent, Path(wizchat_management.__file__).parent)
    return sorted(p for root in roots for p in root.rglob("*.py") if p not in _HERE)


def _constants(node: ast.AST) -> list[object]:
    return [e.value for e in getattr(node, "elts", []) if isinstance(e, ast.Constant)]


def _copies(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        where = f"{path.relative_to(Path(wizsync.__file__).parent.parent)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value == vocabulary.REDACTED:
                found.append(f"{where}: the redaction marker (wizchat_management.REDACTED)")
            if "wpk_(" in node.value:
                found.append(f"{where}: an API-key pattern (wizchat_management.API_KEY_RE / is_api_key)")
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            names = _constants(node)
            if len(names) >= 3 and len(names) == len(node.elts) and set(names) <= SECTION_NAMES:
                found.append(f"{where}: a list of sections (wizchat_management.SECTIONS / APPLY_ORDER / OBJECT_SECTIONS)")
        elif isinstance(node, ast.Dict):
            keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
            values = [v.value for v in node.values if isinstance(v, ast.Constant)]
            constant = len(values) == len(node.values) == len(keys)
            if keys == set(vocabulary.ITEM_KEYS) and constant and set(values) <= {"name", "hostname"}:
                found.append(f"{where}: the array item keys (wizchat_management.ITEM_KEYS)")
    return found


def test_the_vocabulary_is_public_in_the_sdk() -> None:
    for name in ("SECTIONS", "APPLY_ORDER", "OBJECT_SECTIONS", "ARRAY_SECTIONS", "ITEM_KEYS", "REDACTED",
                 "API_KEY_PREFIX", "API_KEY_RE", "is_api_key", "DEFAULT_BASE_URL", "DEFAULT_TIMEOUT"):
        assert name in wizchat_management.__all__ and getattr(wizchat_management, name) is not None
    assert set(vocabulary.APPLY_ORDER) == SECTION_NAMES
    assert set(vocabulary.OBJECT_SECTIONS) | set(vocabulary.ARRAY_SECTIONS) == SECTION_NAMES


def test_the_key_pattern_finds_keys_and_the_format_check_wants_a_whole_one() -> None:
    key = "wpk_live_" + "A1b2-_" * 5
    assert vocabulary.is_api_key(key) and not vocabulary.is_api_key(key + " ") and not vocabulary.is_api_key(key[:30])
    assert vocabulary.API_KEY_RE.search(f"Bearer {key[:25]}")  # a truncated key is still found
    assert not vocabulary.API_KEY_RE.search("wpk_live_/wpk_test_ keys") and not vocabulary.API_KEY_RE.search("wpk_live_…")


def test_no_module_spells_the_vocabulary_again() -> None:
    copies = [c for path in _modules() for c in _copies(path)]
    assert not copies, "\n".join(copies)
