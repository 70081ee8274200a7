"""A promotion's two sides compared (pure): chatbots only in the target, chatbots only in the source.

For ``source: {environment: E}`` the chatbot of the same name in ``E`` is the
source. A target chatbot with no chatbot of its name in ``E`` cannot be
rendered: an error, listing every such chatbot of the entry at once. A
chatbot of ``E`` that a ``discover`` entry would match but the target
environment lacks is not promoted (the API does not create chatbots): a
notice lists them, so a promotion never looks complete when it is not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from wizsync.manifest import Manifest, ManifestError, TargetPlan
from wizsync.manifest.targets import ListedChatbot

from .sources import LiveConfigRef

__all__ = ["PromotionGap", "promotion_gaps"]


@dataclass(frozen=True)
class PromotionGap:
    """One manifest entry's promotion from ``source_env`` to ``target_env`` in ``tenant``."""

    tenant: str
    source_env: str
    target_env: str
    entry_path: tuple[Any, ...]
    only_in_target: tuple[str, ...] = ()
    only_in_source: tuple[str, ...] = ()

    def error(self, manifest: Manifest) -> ManifestError:
        text = (
            f"promotion of tenant '{self.tenant}' from '{self.source_env}' to '{self.target_env}': "
            f"{len(self.only_in_target)} chatbot(s) exist only in '{self.target_env}' "
            f"(no chatbot of that name in '{self.source_env}'): {', '.join(self.only_in_target)}"
        )
        if self.only_in_source:
            text += f"; only in '{self.source_env}' (not promoted): {', '.join(self.only_in_source)}"
        return manifest.error(
            self.entry_path + ("source",),
            text,
            f"Create them in '{self.source_env}', leave them out (--chatbot, --select or discover.match), "
            f"or give each an entry with ids.{self.source_env}",
        )

    def notice(self) -> str:
        return (
            f"promotion of tenant '{self.tenant}' from '{self.source_env}' to '{self.target_env}': "
            f"{len(self.only_in_source)} chatbot(s) exist only in '{self.source_env}' and are not promoted "
            f"(create them in '{self.target_env}' first): {', '.join(self.only_in_source)}"
        )


def promotion_gaps(
    plan: TargetPlan,
    refs: Sequence[LiveConfigRef],
    source_listings: Mapping[tuple[str, str], Sequence[ListedChatbot]],
    target_listings: Mapping[str, Sequence[ListedChatbot]],
) -> list[PromotionGap]:
    """Every entry of ``plan`` whose promotion has chatbots on one side only, in manifest order.

    ``refs``: the live sources still to be found by name (``chatbot_id`` None);
    ``source_listings[(tenant, env)]`` their environments' listings;
    ``target_listings[tenant]``: the target environment's listings.
    """
    env = plan.environment
    missing: dict[tuple[Any, ...], list[str]] = {}
    sides: dict[tuple[Any, ...], tuple[str, str]] = {}
    for ref in refs:
        if ref.chatbot_id is not None or ref.environment == env:
            continue
        names = {c.name for c in source_listings.get((ref.tenant, ref.environment), [])}
        sides[ref.entry_path] = (ref.tenant, ref.environment)
        if ref.chatbot_name not in names:
            missing.setdefault(ref.entry_path, []).append(ref.chatbot_name)
    extra: dict[tuple[Any, ...], list[str]] = {}
    for target in plan.targets:
        source = target.source
        if target.discover is None or source.kind != "environment" or source.environment in (None, env):
            continue
        assert source.environment is not None
        present = {c.name for c in target_listings.get(target.tenant, [])}
        listing = source_listings.get((target.tenant, source.environment), [])
        only = sorted(
            {
                c.name
                for c in listing
                if fnmatchcase(c.name, target.discover.match)
                and c.name not in present
                and plan.selection.matches(name=c.name, tenant=target.tenant, wave=target.wave, labels=target.labels)
            }
        )
        if only:
            extra[target.entry_path] = only
            sides[target.entry_path] = (target.tenant, source.environment)
    gaps = []
    for path in sorted(set(missing) | set(extra), key=lambda p: p[1] if len(p) > 1 and isinstance(p[1], int) else -1):
        tenant, source_env = sides[path]
        gaps.append(
            PromotionGap(tenant, source_env, env, path, tuple(sorted(missing.get(path, []))), tuple(extra.get(path, [])))
        )
    return gaps
