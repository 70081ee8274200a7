"""Target resolution (pure): manifest + environment + selection → ordered targets.

Two steps, so callers call ``list_chatbots`` only when needed::

    plan = resolve_targets(manifest, "production", select=["tier=gold"], chatbots=["acme-*"])
    listings = {t: client_for(t).list_chatbots() for t in plan.listings_needed()}
    targets = plan.bind(listings)          # every target now has a chatbot_id

``plan.listings_needed()`` is empty when every selected target has an explicit
id for the environment and there is no ``discover`` entry.

Every target's address (``Target.name``) is ``tenant/name``, whatever the
manifest order, so two tenants' ``support-billing`` never trade names when
entries move. A discovered chatbot's name is its live name; an explicit
entry of the same tenant and name (or with its id) wins.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Protocol

from .errors import ManifestError, raise_all
from .model import DEFAULT_WAVE, ChatbotEntry, Discover, DocumentPatch, Manifest, Source
from .selectors import Selection, parse_selection

if TYPE_CHECKING:
    from wizsync.fleet.shards import Shard

__all__ = ["Listed", "ListedChatbot", "Target", "TargetPlan", "address", "resolve_targets", "find_chatbot_id"]


class ListedChatbot(Protocol):
    """What binding reads of a listed chatbot: a ``PublicChatbot``, or the ``Listed`` kept of one."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def revision(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Listed:
    """The part of a listed chatbot a run keeps: a listing is read once per key and held for the
    whole run (binding, promotion gaps, rollback's changed-since check), so not as the SDK's models."""

    id: str
    name: str
    description: str | None
    revision: int

    @classmethod
    def of(cls, chatbot: ListedChatbot) -> Listed:
        return cls(chatbot.id, chatbot.name, chatbot.description, chatbot.revision)


def address(tenant: str, name: str) -> str:
    """A chatbot's address: ``tenant/name``, the same whatever the manifest order."""
    return f"{tenant}/{name}"


@dataclass(frozen=True, slots=True)
class Target:
    """One chatbot in one environment, as the manifest describes it.

    ``name`` is the address ``tenant/chatbot_name``: the key in the journal, the
    JSON output, exports and diffs. ``chatbot_name`` is the chatbot's own name
    (``${chatbot}``, and the live name matched when there is no id); it is None
    only on an unbound discover placeholder, where ``discover`` is set.
    ``chatbot_id`` is None until bound (matched by name through a listing).
    ``entry_path`` is the manifest key path of the entry, for errors.

    A fleet holds one per chatbot for the whole run: slots, and ``labels``/``vars``
    are the entry's own mappings (read, never written), not copies.
    """

    name: str
    tenant: str
    environment: str
    chatbot_id: str | None
    chatbot_name: str | None
    labels: Mapping[str, str]
    wave: str
    source: Source
    vars: Mapping[str, Any]
    override: DocumentPatch | None
    sections: tuple[str, ...]
    prune: bool
    entry_path: tuple[Any, ...]
    description: str | None = None
    discovered: bool = False
    discover: Discover | None = field(default=None, repr=False)

    @property
    def bound(self) -> bool:
        return self.chatbot_id is not None


@dataclass(frozen=True)
class TargetPlan:
    """Selected targets of one environment, in manifest order, before binding."""

    manifest: Manifest
    environment: str
    selection: Selection
    targets: tuple[Target, ...]
    # Set when ``--shard`` restricted the targets to one shard's keys (wizsync.fleet.shards).
    shard: Shard | None = None

    def listings_needed(self) -> list[str]:
        """Tenants whose ``list_chatbots()`` ``bind`` needs (in order; empty if none)."""
        needed: list[str] = []
        for target in self.targets:
            if not target.bound and target.tenant not in needed:
                needed.append(target.tenant)
        return needed

    def bind(self, listings: Mapping[str, Sequence[ListedChatbot]] | None = None) -> list[Target]:
        """Bind every target to a chatbot id; expand ``discover`` entries; re-apply the selection.

        ``listings[tenant]`` is that tenant's ``list_chatbots()`` in this environment.
        Raises ``ManifestError`` when a name is not found or is ambiguous.
        """
        listings = listings or {}
        manifest, env = self.manifest, self.environment
        # Explicit entries of the whole manifest claim their names and ids, selected or not,
        # so a --chatbot filter never changes which entry a chatbot belongs to.
        explicit = {(e.tenant, e.name) for e in manifest.chatbots if e.discover is None}
        claimed_ids = {e.ids[env] for e in manifest.chatbots if e.discover is None and env in e.ids}
        result: list[Target] = []
        unmatched: list[ManifestError] = []
        for target in self.targets:
            if target.bound:
                result.append(target)
                continue
            listing = self._listing(listings, target)
            if target.discover is None:
                assert target.chatbot_name is not None
                chatbot_id = find_chatbot_id(manifest, listing, target.chatbot_name, target.tenant, env, target.entry_path)
                result.append(replace(target, chatbot_id=chatbot_id))
                continue
            found = _discover_matches(target.discover, listing)
            if not found:
                unmatched.append(_no_match(manifest, target, env, listing))
                continue
            result.extend(self._discovered(target, found, explicit, claimed_ids))
        raise_all(unmatched)
        return result

    def _discovered(
        self, target: Target, found: list[ListedChatbot], explicit: set[tuple[str | None, str | None]], claimed_ids: set[str]
    ) -> list[Target]:
        """The selected targets one ``discover`` entry adds; claims their ids in ``claimed_ids``."""
        names = [c.name for c in found]
        added: list[Target] = []
        for chatbot in found:
            if (target.tenant, chatbot.name) in explicit or chatbot.id in claimed_ids:
                continue  # an explicit entry (or an earlier discover entry) owns it
            if names.count(chatbot.name) > 1:
                raise self._ambiguous(target, chatbot.name, found)
            claimed_ids.add(chatbot.id)
            bound = replace(
                target,
                name=address(target.tenant, chatbot.name),
                chatbot_id=chatbot.id,
                chatbot_name=chatbot.name,
                description=target.description or chatbot.description,
                discovered=True,
                discover=None,
            )
            if self.selection.matches(name=chatbot.name, tenant=bound.tenant, wave=bound.wave, labels=bound.labels):
                added.append(bound)
        return added

    def _ambiguous(self, target: Target, name: str, found: list[ListedChatbot]) -> ManifestError:
        same = [c.id for c in found if c.name == name]
        return self.manifest.error(
            target.entry_path + ("discover",),
            f"tenant '{target.tenant}' has {len(same)} chatbots named '{name}' "
            f"in '{self.environment}' ({', '.join(same)})",
            "Add an explicit chatbots entry with ids for each, or rename them",
        )

    def _listing(self, listings: Mapping[str, Sequence[ListedChatbot]], target: Target) -> Sequence[ListedChatbot]:
        if target.tenant not in listings:
            raise ManifestError(
                f"internal: no chatbot listing for tenant '{target.tenant}' in '{self.environment}'",
                hint="Pass listings for every tenant in TargetPlan.listings_needed()",
            )
        return listings[target.tenant]


def _discover_matches(discover: Discover, listing: Sequence[ListedChatbot]) -> list[ListedChatbot]:
    """The listed chatbots a ``discover`` glob matches, by name then id (a stable order)."""
    return sorted((c for c in listing if fnmatchcase(c.name, discover.match)), key=lambda c: (c.name, c.id))


def _no_match(manifest: Manifest, target: Target, env: str, listing: Sequence[ListedChatbot]) -> ManifestError:
    """A ``discover`` that matches nothing is a typo until proven otherwise: name the pattern and what exists."""
    assert target.discover is not None
    pattern = target.discover.match
    names = sorted({c.name for c in listing})
    if names:
        close = _closest(pattern, names)
        exists = f"{len(names)} chatbot(s) listed" + (f"; closest: {', '.join(close)}" if close else "")
    else:
        exists = f"tenant '{target.tenant}' has no chatbot in '{env}'"
    return manifest.error(
        target.entry_path + ("discover", "match"),
        f"discover: no chatbot of tenant '{target.tenant}' in '{env}' matches '{pattern}' ({exists})",
        "Fix the pattern (a glob on chatbot names, e.g. 'support-*') or remove the entry (see docs/manifest.md)",
    )


def _closest(pattern: str, names: Sequence[str]) -> list[str]:
    """Names a glob was probably meant to match: its literal head compared with theirs, else the whole."""
    head = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
    if head and head != pattern:
        scored = [(difflib.SequenceMatcher(None, head, n[: len(head)]).ratio(), n) for n in names]
        close = [n for score, n in sorted(scored, key=lambda s: (-s[0], s[1])) if score >= 0.7]
        if close:
            return close[:3]
    return difflib.get_close_matches(pattern, names, n=3, cutoff=0.5)


def find_chatbot_id(
    manifest: Manifest,
    listing: Sequence[ListedChatbot],
    name: str,
    tenant: str,
    environment: str,
    entry_path: tuple[Any, ...],
) -> str:
    """The id of the one chatbot called ``name`` in ``listing``; ``ManifestError`` if none or several."""
    hits = [c for c in listing if c.name == name]
    if len(hits) == 1:
        return hits[0].id
    if not hits:
        raise manifest.error(
            entry_path + ("name",),
            f"no chatbot named '{name}' in tenant '{tenant}' in environment '{environment}' "
            f"({len(listing)} chatbots listed)",
            f"Create it, fix the name, or set ids.{environment} on this entry",
        )
    raise manifest.error(
        entry_path + ("name",),
        f"{len(hits)} chatbots named '{name}' in tenant '{tenant}' in environment '{environment}' "
        f"({', '.join(c.id for c in hits)})",
        f"Set ids.{environment} on this entry to pick one",
    )


def resolve_targets(
    manifest: Manifest,
    environment: str,
    *,
    select: str | Iterable[str] | Selection = (),
    chatbots: Sequence[str] = (),
) -> TargetPlan:
    """The selected targets of ``environment`` (``ManifestError`` on an unknown environment or bad selector)."""
    if environment not in manifest.environments:
        raise ManifestError(
            f"unknown environment '{environment}' (known: {', '.join(manifest.environments)})",
            file=manifest.file,
            key="--env",
            hint="Pick one of the environments defined in the manifest",
        )
    selection = select if isinstance(select, Selection) else parse_selection(select, chatbots)
    targets: list[Target] = []
    shared: dict[tuple[str, ...], tuple[str, ...]] = {}
    for index, entry in enumerate(manifest.chatbots):
        target = _target(manifest, environment, index, entry, shared)
        if target.discover is not None:
            if selection.may_match_unnamed(
                tenant=target.tenant, wave=target.wave, labels=target.labels, name_glob=target.discover.match
            ):
                targets.append(target)
        elif selection.matches(name=target.chatbot_name or "", tenant=target.tenant, wave=target.wave, labels=target.labels):
            targets.append(target)
    return TargetPlan(manifest, environment, selection, tuple(targets))


def _target(manifest: Manifest, env: str, index: int, entry: ChatbotEntry,
            shared: dict[tuple[str, ...], tuple[str, ...]]) -> Target:
    source = entry.source or manifest.defaults.source
    assert source is not None  # check_references guarantees it
    tenant = entry.discover.tenant if entry.discover else entry.tenant
    assert tenant is not None
    # An unbound discover placeholder is named by its rule; binding replaces it.
    sections = tuple(entry.sections if entry.sections is not None else manifest.defaults.sections)
    name = address(tenant, entry.name) if entry.name else f"discover:{tenant}/{entry.discover.match if entry.discover else ''}"
    return Target(
        name=name,
        tenant=tenant,
        environment=env,
        chatbot_id=entry.ids.get(env),
        chatbot_name=entry.name,
        labels=entry.labels,
        wave=entry.wave or DEFAULT_WAVE,
        source=source,
        vars=entry.vars,
        override=entry.overrides.get(env),
        sections=shared.setdefault(sections, sections),  # one tuple for every entry with the same list
        prune=manifest.defaults.prune if entry.prune is None else entry.prune,
        entry_path=("chatbots", index),
        description=entry.description,
        discover=entry.discover,
    )
