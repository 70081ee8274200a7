"""Each file-source document is rendered once per command.

The offline check (``check_manifest``, run before any request) and fleet
loading both render every file-source target; the second is the same
document for the same target, only bound to its live id now (the id feeds
no template). So a render is kept for the life of its manifest object and
handed out again for an equal target, re-bound. Live sources are never
kept: their document is the server's, fetched afresh.
"""

from __future__ import annotations

import dataclasses
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wizsync.manifest import Manifest, Target

    from .document import RenderedDocument

__all__ = ["lookup", "store", "forget"]

# id(manifest) -> (a weak reference to it, {(name, environment): rendered}). One render per
# address: a render holds its own target (the one compared on lookup) and its document packed.
_KEPT: dict[int, tuple[weakref.ref[Any], dict[tuple[str, str], Any]]] = {}


def _entries(manifest: Manifest, create: bool) -> dict[tuple[str, str], Any] | None:
    kept = _KEPT.get(id(manifest))
    if kept is not None and kept[0]() is manifest:
        return kept[1]
    if not create:
        return None
    key = id(manifest)
    # ``kept`` bound now: at interpreter exit a manifest may outlive this module's globals.
    ref = weakref.ref(manifest, lambda _r, kept=_KEPT: kept.pop(key, None))  # type: ignore[misc]
    _KEPT[key] = (ref, {})
    return _KEPT[key][1]


def lookup(manifest: Manifest, target: Target) -> RenderedDocument | None:
    entries = _entries(manifest, create=False)
    if not entries:
        return None
    rendered = entries.get((target.name, target.environment))
    if rendered is None:
        return None
    kept = rendered.target
    if kept is target or dataclasses.replace(kept, chatbot_id=target.chatbot_id) == target:
        return dataclasses.replace(rendered, target=target)  # type: ignore[no-any-return]
    return None


def store(manifest: Manifest, target: Target, rendered: RenderedDocument) -> None:
    entries = _entries(manifest, create=True)
    assert entries is not None
    entries[(target.name, target.environment)] = rendered  # another target of that address replaces it


def forget(manifest: Manifest) -> None:
    """Drop the renders kept for ``manifest``: its command renders nothing more (a plan, once its
    fleet is loaded, holds each document only until that chatbot's dry-run is recorded)."""
    _KEPT.pop(id(manifest), None)
