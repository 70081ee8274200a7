"""Where each target's source document comes from.

``file`` sources are read here (YAML or JSON, a ChatbotConfigDocument as
``wizsync export`` writes it). ``environment`` and ``self`` sources are live
configs the network layer fetches: ``live_config_needed(manifest, target)``
says which one, as a ``LiveConfigRef``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wizsync.manifest import Manifest, ManifestError, Target, find_chatbot_id
from wizsync.manifest.files import OutsideRoots, confined_source
from wizsync.manifest.loader import read_text_file
from wizsync.manifest.targets import ListedChatbot
from wizsync.manifest.yaml_marks import LocatedYaml, load_located_yaml

__all__ = ["LiveConfigRef", "live_config_needed", "load_source_file"]


@dataclass(frozen=True)
class LiveConfigRef:
    """The live config a target renders from: ``get_config(chatbot_id)`` in ``environment`` with ``tenant``'s key.

    ``chatbot_id`` is None when the chatbot must be found by ``chatbot_name``
    in that environment's listing: call ``bind(listing)``.
    """

    environment: str
    tenant: str
    chatbot_id: str | None
    chatbot_name: str
    target_name: str
    entry_path: tuple[object, ...]

    def bind(self, manifest: Manifest, listing: Sequence[ListedChatbot]) -> "LiveConfigRef":
        if self.chatbot_id is not None:
            return self
        chatbot_id = find_chatbot_id(
            manifest, listing, self.chatbot_name, self.tenant, self.environment, self.entry_path
        )
        return LiveConfigRef(self.environment, self.tenant, chatbot_id, self.chatbot_name, self.target_name, self.entry_path)


def live_config_needed(manifest: Manifest, target: Target) -> LiveConfigRef | None:
    """None for a ``file`` source; else the live config to fetch (target must be bound for ``self``)."""
    source = target.source
    if source.kind == "file":
        return None
    env = target.environment if source.kind == "self" else source.environment
    assert env is not None
    # An unbound discover placeholder has no name yet: only its tenant and environment are of use.
    name = target.chatbot_name if target.chatbot_name is not None else target.name
    if env == target.environment:
        chatbot_id = target.chatbot_id
    else:
        entry = manifest.chatbots[int(target.entry_path[1])]
        chatbot_id = entry.ids.get(env)
    return LiveConfigRef(env, target.tenant, chatbot_id, name, target.name, target.entry_path)


_cache: dict[tuple[str, int, int, int, int], LocatedYaml] = {}


def load_source_file(manifest: Manifest, relative: str) -> LocatedYaml:
    """Parse a ``file`` source (relative to the manifest) with line marks; cached per file version.

    The file must be inside the manifest's folder tree or a ``fileRoots`` folder
    (``wizsync.manifest.files``), symlinks resolved; it is read from its real path.
    """
    shown = _shown(manifest, relative)
    try:
        path = confined_source(manifest, relative)
    except OutsideRoots as exc:
        raise ManifestError(
            f"refused: {exc}", file=manifest.file, hint="List its folder in fileRoots to allow it (see docs/manifest.md)"
        ) from None
    try:
        stat = path.stat()
        # confined_source resolves each path once: an lstat per path component, for every
        # chatbot, was a third of validating 10,000 chatbots that share one file (bench/scale.py).
        key = (str(path), stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size)
    except OSError:
        key = None
    if key is not None and key in _cache:
        return _cache[key]
    # JSON is YAML: one parser, one error format, line marks for both.
    doc = load_located_yaml(read_text_file(path, shown), shown)
    if key is not None:
        _cache[key] = doc
    return doc


def _shown(manifest: Manifest, relative: str) -> str:
    """The source path as a user would type it from where they ran wizsync."""
    return _shown_path(manifest.file, relative)


@functools.lru_cache(maxsize=256)
def _shown_path(manifest_file: str, relative: str) -> str:
    # Pure and asked once per chatbot (10,000 chatbots sharing one file: 0.13 s of Path arithmetic).
    manifest_dir = Path(manifest_file).parent
    return str(manifest_dir / relative) if str(manifest_dir) != "." else relative
