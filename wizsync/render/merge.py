"""Overlay merge rules (pure), applied to ``spec`` documents.

- objects deep-merge;
- array sections (``mcpServers``/``skills`` by ``name``, ``domains`` by
  ``hostname``) merge item by item: a patch item patches the live item with
  the same key or is appended; the list is never replaced as a whole;
  an item with ``$delete: true`` removes the item of that key;
- ``null`` removes a key. At ``spec.<section>`` it makes the section unmanaged,
  and at ``spec.core|security|telemetry.<key>`` it is kept as ``null``, which
  the server reads as "remove this key" (object sections merge server-side,
  so leaving the key out would keep the live value);
- other lists (``allowedOrigins``, ``triggers``...) are replaced.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from wizchat_management import ITEM_KEYS, OBJECT_SECTIONS

from .secrets import SecretText
from .templates import Origin

__all__ = ["merge_spec", "reject_delete_markers", "DELETE_KEY"]

DELETE_KEY = "$delete"


def merge_spec(base: Mapping[str, Any], patch: Mapping[str, Any], origin: Origin, *, copy_base: bool = True) -> dict[str, Any]:
    """``base`` spec with ``patch`` (a spec) merged in; neither input is modified.

    The merge builds every container it changes anew, so ``copy_base=False`` (a caller that
    owns ``base`` and drops it, as rendering does) only lets the result share what the
    patch left alone with ``base``, instead of deep-copying all of it first.
    """
    out = copy.deepcopy(dict(base)) if copy_base else dict(base)
    for section, value in patch.items():
        path = ("spec", section)
        if value is None:
            out[section] = None
        elif section in ITEM_KEYS:
            out[section] = _merge_items(out.get(section), value, ITEM_KEYS[section], origin, path)
        elif isinstance(value, Mapping) and (out.get(section) is None or isinstance(out[section], Mapping)):
            keep_null = section in OBJECT_SECTIONS
            out[section] = _merge_object(out.get(section) or {}, value, origin, path, keep_null=keep_null)
        else:
            reject_delete_markers(value, origin, path)
            out[section] = copy.deepcopy(value)
    return out


def _merge_object(base: Mapping[str, Any], patch: Mapping[str, Any], origin: Origin, path: tuple[Any, ...], *, keep_null: bool) -> dict[str, Any]:
    if DELETE_KEY in patch:
        raise origin.error(
            path + (DELETE_KEY,),
            "'$delete' is only valid on an item of mcpServers, skills or domains",
            "To remove a key of an object, set it to null",
        )
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            if keep_null:
                out[key] = None
            else:
                out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge_object(out[key], value, origin, path + (key,), keep_null=False)
        else:
            reject_delete_markers(value, origin, path + (key,))
            out[key] = _strip_nulls(copy.deepcopy(value))
    return out


def _merge_items(base: Any, patch: Any, key: str, origin: Origin, path: tuple[Any, ...]) -> list[Any]:
    if not isinstance(patch, list):
        raise origin.error(path, f"must be a list of items keyed by '{key}'", f"Write - {key}: ... items")
    items = [copy.deepcopy(i) for i in (base or [])]
    for index, item in enumerate(patch):
        where = path + (index,)
        if not isinstance(item, Mapping):
            raise origin.error(where, f"an item must be a mapping with a '{key}'")
        item_key = item.get(key)
        if isinstance(item_key, SecretText) or not isinstance(item_key, str) or not item_key:
            raise origin.error(where, f"an item needs a plain '{key}' to merge on", f"Add {key}: ... to the item")
        delete = item.get(DELETE_KEY)
        if delete not in (None, True, False):
            raise origin.error(where + (DELETE_KEY,), "'$delete' must be true or false")
        position = next((i for i, live in enumerate(items) if isinstance(live, Mapping) and live.get(key) == item_key), None)
        if delete is True:
            if position is not None:
                del items[position]
            continue
        fields = {k: v for k, v in item.items() if k != DELETE_KEY}
        if position is None:
            items.append(_merge_object({}, fields, origin, where, keep_null=False))
        else:
            items[position] = _merge_object(items[position], fields, origin, where, keep_null=False)
    return items


def reject_delete_markers(value: Any, origin: Origin, path: tuple[Any, ...]) -> None:
    """``$delete`` anywhere but on an array-section item is a mistake: say so."""
    if isinstance(value, Mapping):
        if DELETE_KEY in value:
            raise origin.error(
                path + (DELETE_KEY,),
                "'$delete' is only valid on an item of mcpServers, skills or domains",
                "To remove a key of an object, set it to null",
            )
        for key, item in value.items():
            reject_delete_markers(item, origin, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            reject_delete_markers(item, origin, path + (index,))


def _strip_nulls(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    return value
