"""Rollback: the desired documents that restore what a run changed, from its snapshots.

A run's snapshot of a chatbot is the server's own export taken just before
the run applied to it. Restoring it means applying, for each section the
run touched, the snapshot's content of that section (prune on, so items the
run created go away and items it deleted come back); sections the run did
not touch stay unmanaged, so a rollback never reverts someone else's change.

Secret values are write-only: the snapshot holds ``"<redacted>"``, which the
server reads as "keep the current value". So a secret the run changed
cannot be restored, and an item the run deleted cannot be re-created when it
carried secrets. Rollback names each such field (``Loss``) instead of
pretending.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wizchat_management import APPLY_ORDER, ITEM_KEYS, REDACTED
from wizchat_management.models import Operation
from wizchat_management.vocabulary import wire_value

from ..apply.batches import RunItem, is_secret_change
from ..apply.decide import may_have_applied
from ..journal import ItemRecord, Journal, JournalError
from ..render import document_hash

__all__ = ["SnapshotDocument", "Loss", "ChangedSince", "changed_since", "restore_document", "rollback_items"]



@dataclass(frozen=True)
class SnapshotDocument:
    """A desired document taken from a snapshot: nothing to template, no secrets to resolve."""

    masked: dict[str, Any]

    @property
    def hash(self) -> str:
        return document_hash(self.masked)

    def resolve(self, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        return self.masked


@dataclass(frozen=True)
class Loss:
    """Something rollback cannot restore, and why."""

    chatbot: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.chatbot}: {self.field}: {self.reason}"


def _has_secret(item: Mapping[str, Any]) -> bool:
    headers = item.get("headers")
    return isinstance(headers, dict) and any(v == REDACTED for v in headers.values())


def restore_document(
    chatbot: str, ops: Sequence[Operation], snapshot: Mapping[str, Any], parent_run: str
) -> tuple[dict[str, Any], list[Loss]]:
    """The document that puts back the snapshot's content of every section ``ops`` touched; what it cannot.

    ``ops``: what the run changed, or may have (``apply.decide.may_have_applied``). Sections
    the run did not touch are left out (null: unmanaged).
    """
    spec = snapshot.get("spec") or {}
    losses: list[Loss] = []
    out_spec: dict[str, Any] = {s: None for s in APPLY_ORDER}
    for section in touched_sections(ops):
        section_ops = [o for o in ops if wire_value(o.section) == section]
        value, lost = _restored_section(section, spec.get(section), section_ops, chatbot, parent_run)
        out_spec[section] = value
        losses += lost
    losses += secret_losses(chatbot, ops, parent_run)
    doc = {"apiVersion": snapshot.get("apiVersion", "wizchat.com/v1"), "kind": snapshot.get("kind", "ChatbotConfig"), "spec": out_spec}
    return doc, losses


def touched_sections(ops: Sequence[Operation]) -> list[str]:
    """The sections ``ops`` change, in document order."""
    return [s for s in APPLY_ORDER if any(wire_value(o.section) == s for o in ops)]


def _restored_section(
    section: str, value: Any, ops: Sequence[Operation], chatbot: str, parent_run: str
) -> tuple[Any, list[Loss]]:
    """The snapshot's ``value`` of one touched section, made to undo ``ops`` (this section's) on apply."""
    if section in ITEM_KEYS and isinstance(value, list):
        return restorable_items(section, value, ops, chatbot, parent_run)
    if isinstance(value, dict):
        return _with_added_keys_removed(value, ops), []
    return value, []


def restorable_items(
    section: str, items: list[Any], ops: Sequence[Operation], chatbot: str, parent_run: str
) -> tuple[list[Any], list[Loss]]:
    """An array section's snapshot items, less those the run deleted that carried write-only secrets."""
    deleted = {o.key for o in ops if o.op == "delete"}
    kept, losses = [], []
    for item in items:
        key = item.get(ITEM_KEYS[section])
        if key in deleted and _has_secret(item):
            losses.append(Loss(chatbot, f"{section}[{key}]", f"deleted by run {parent_run}; it carried write-only secrets, so it cannot be re-created: re-add it with its secrets"))
            continue
        kept.append(item)
    return kept, losses


def _with_added_keys_removed(value: Mapping[str, Any], ops: Sequence[Operation]) -> dict[str, Any]:
    """Object sections merge on apply (a key not given stays): a key the run added,
    absent from the snapshot, is given as null to remove it."""
    out = dict(value)
    for op in ops:
        for change in op.changes or []:
            top = re.split(r"[.\[]", change.path, maxsplit=1)[0]
            out.setdefault(top, None)
    return out


def secret_losses(chatbot: str, ops: Sequence[Operation], parent_run: str) -> list[Loss]:
    """Every secret field the run updated: write-only, so its old value cannot come back."""
    losses = []
    for op in ops:
        section = wire_value(op.section)
        for change in op.changes or []:
            path = change.path
            if op.op == "update" and is_secret_change(section, path):
                key = f"[{op.key}]" if op.key else ""
                losses.append(Loss(chatbot, f"{section}{key}.{path}", f"changed by run {parent_run}; secret values are write-only and cannot be restored"))
    return losses


def rollback_items(journal: Journal, parent_run: str) -> tuple[list[RunItem], list[Loss]]:
    """The items that restore ``parent_run``'s changes, in reverse rollout order, and what cannot be restored."""
    parent = journal.get_run(parent_run)
    if parent.command not in ("apply", "rollback"):
        raise JournalError(f"run {parent_run} is a {parent.command} run: only apply and rollback runs change chatbots")
    items: list[RunItem] = []
    losses: list[Loss] = []
    # Any state: an item an earlier attempt changed may since be failed, drifted or (a stopped
    # retry) planned; what the run did to it is the one "may have applied" rule.
    records: Sequence[ItemRecord] = journal.items(parent_run)
    for record in reversed(records):  # items() is in rollout order
        ops = may_have_applied(record)
        if not ops:
            continue  # never applied to, or nothing of it was kept
        snap = journal.snapshot(parent_run, record.name)
        if snap is None or record.chatbot_id is None or record.tenant is None:
            continue  # never reached the apply: nothing to restore
        doc, lost = restore_document(record.name, ops, snap.document, parent_run)
        losses += lost
        items.append(RunItem(record.name, record.tenant, parent.environment, record.chatbot_id, SnapshotDocument(doc), prune=True))
    return items, losses


@dataclass(frozen=True)
class ChangedSince:
    """A chatbot whose config changed after the rolled-back run left it: rollback leaves it alone (unless --force)."""

    chatbot: str
    left: int
    now: int | None  # None: the chatbot is gone

    def __str__(self) -> str:
        now = "gone" if self.now is None else f"revision {self.now}"
        return f"{self.chatbot} (left at revision {self.left}, now {now})"


def changed_since(
    records: Sequence[ItemRecord], items: Sequence[RunItem], current: Mapping[str, int],
    restored: Mapping[str, set[int]] | None = None,
) -> list[ChangedSince]:
    """The items to restore whose live revision (``current``: chatbot id → revision) is not the one the run left.

    A later run or a hand edit bumped it: restoring the snapshot would silently revert that change.
    ``restored[name]``: revisions earlier rollbacks of this same run left (so rolling back twice is a
    no-op, not a "change since"). An item whose last revision the run never learnt (its apply's
    answer was lost) cannot be compared and is restored as before.
    """
    left = {r.name: r.revision_after for r in records}
    out = []
    for item in items:
        revision = left.get(item.name)
        if revision is None:
            continue
        now = current.get(item.chatbot_id)
        if now != revision and now not in (restored or {}).get(item.name, set()):
            out.append(ChangedSince(item.name, revision, now))
    return out
