"""Where a run's items come from: the fleet (the manifest), the journal (resume), snapshots (rollback).

Each source turns its input into ``RunItem`` values (a chatbot, its key, the
document it should become) in rollout order; the run lifecycle
(``wizsync.run.lifecycle``) and the batch runner take it from there.

- ``from_fleet``: the manifest's selected chatbots, bound and rendered
  (``fleet.load_fleet``), in ``rollout.waves`` order;
- ``from_snapshots``: what restores a run's changes (``rollback.rollback_items``);
- ``from_journal``: a recorded run's items matched against what its source
  gives now (resume): which are unfinished, which changed, which are gone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..apply.batches import RunItem
from ..journal.states import UNFINISHED_STATES
from ..apply.schedule import wave_order
from ..engine import Executor
from ..fleet.load import FleetFailure, FleetItem, load
from ..journal import ItemRecord, Journal
from ..rollback.restore import Loss, rollback_items

if TYPE_CHECKING:
    from ..fleet.session import Session

__all__ = ["Entry", "FleetItems", "Resumption", "from_fleet", "from_snapshots", "from_journal", "item_rows", "batches_of"]


#: A run's entry: a chatbot to work on, or one whose fleet loading failed (it fails in its batch).
Entry = RunItem | FleetFailure


@dataclass
class FleetItems:
    entries: list[FleetItem | FleetFailure]  # every selected chatbot, in rollout (or manifest) order
    forbidden: set[str]
    no_prune: bool
    # What the user should hear that is no error (fleet.load): the reporter shows them.
    notices: list[str] = field(default_factory=list)

    @property
    def fleet(self) -> list[FleetItem]:
        return [e for e in self.entries if isinstance(e, FleetItem)]

    @property
    def failed(self) -> list[FleetFailure]:
        return [e for e in self.entries if isinstance(e, FleetFailure)]

    @property
    def run_entries(self) -> list[Entry]:
        return [RunItem.from_fleet(e, no_prune=self.no_prune) if isinstance(e, FleetItem) else e for e in self.entries]

    @property
    def items(self) -> list[RunItem]:
        return [e for e in self.run_entries if isinstance(e, RunItem)]


def _ordered(session: Session, entries: Sequence[FleetItem | FleetFailure]) -> list[FleetItem | FleetFailure]:
    waves = session.manifest.rollout.ordered_waves
    return [entries[i] for i in wave_order(waves, [e.target.wave for e in entries])]


async def from_fleet(session: Session, ex: Executor, *, no_prune: bool, ordered: bool = True) -> FleetItems:
    """The session's selected chatbots, rendered or failed; ``forbidden`` adds the secrets their documents resolve."""
    notices: list[str] = []
    loaded = await load(ex, session.plan, notices=notices, proven=session.proven_listings())
    entries = _ordered(session, loaded.entries) if ordered else loaded.entries
    return FleetItems(entries, session.forbidden(loaded.items), no_prune, notices)


def from_snapshots(journal: Journal, parent_run: str) -> tuple[list[RunItem], list[Loss]]:
    """The items restoring ``parent_run``'s changes, in reverse rollout order, and what cannot be restored."""
    return rollback_items(journal, parent_run)


@dataclass
class Resumption:
    """A recorded run's items against what its source gives now."""

    records: list[ItemRecord]
    items: dict[str, Entry]
    unfinished: list[ItemRecord] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # unfinished, rendered document changed since
    missing: list[str] = field(default_factory=list)  # unfinished, no longer given by the source

    @property
    def todo(self) -> list[RunItem]:
        return [e for r in self.unfinished if isinstance(e := self.items.get(r.name), RunItem)]

    def refusal(self, run_id: str) -> str | None:
        """Why the run cannot resume as recorded (without --force), or None."""
        parts = []
        if self.changed:
            parts.append(f"rendered documents changed for {', '.join(self.changed[:10])}")
        if self.missing:
            parts.append(f"no longer selected: {', '.join(self.missing[:10])}")
        if not parts:
            return None
        return (f"run {run_id} cannot resume as recorded: {'; '.join(parts)}. "
                "Start a new apply, or pass --force to resume with what the manifest renders now")


def _changed(record: ItemRecord, entry: Entry | None) -> bool:
    return isinstance(entry, RunItem) and record.doc_hash not in (None, entry.desired.hash)


def from_journal(records: Sequence[ItemRecord], current: Sequence[Entry]) -> Resumption:
    """Pure: match the recorded items with ``current`` (what the run's source gives now).

    A chatbot whose fleet loading failed again is still there (it fails again in its batch), not "missing".
    """
    items = {i.name: i for i in current}
    unfinished = [r for r in records if r.state in UNFINISHED_STATES]
    changed = [r.name for r in unfinished if _changed(r, items.get(r.name))]
    missing = [r.name for r in unfinished if r.name not in items]
    return Resumption(list(records), items, unfinished, changed, missing)


def item_rows(batches: Sequence[Sequence[Entry]]) -> Iterator[dict[str, Any]]:
    """The journal rows recording a run's items, batch by batch, in rollout order (made as they are written)."""
    position = 0
    for number, batch in enumerate(batches, 1):
        for item in batch:
            doc_hash = item.desired.hash if isinstance(item, RunItem) else None
            yield {"name": item.name, "tenant": item.tenant, "chatbot_id": item.chatbot_id,
                   "batch": number, "position": position, "doc_hash": doc_hash}
            position += 1


def batches_of(records: Sequence[ItemRecord], items: dict[str, Entry]) -> list[list[Entry]]:
    """A recorded run's batches, as recorded, with the items ``items`` gives for them now."""
    batches: dict[int, list[Entry]] = {}
    for record in records:
        if record.name in items:
            batches.setdefault(record.batch or 0, []).append(items[record.name])
    return [batches[n] for n in sorted(batches)]
