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

from ..apply.batches import RunItem, is_secret_change
from ..journal import ItemRecord, Journal, JournalError
from ..render import document_hash

__all__ = ["SnapshotDocument", "Loss", "ChangedSince", "CHANGED_STATES", "changed_since", "rollback_items"]

# States of a parent item that may have changed the chatbot.
CHANGED_STATES = ("applied", "failed", "applying")


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


def _ops(record: ItemRecord) -> list[Mapping[str, Any]]:
    """What the parent run did, over all its attempts (applied ops), plus for an uncertain item what it planned."""
    ops = list(record.applied_ops or [])
    if record.state == "applying" or (record.state == "applied" and not ops):
        ops += record.plan_ops or []
    return [o for o in ops if o.get("op") != "noop"]


def _has_secret(item: Mapping[str, Any]) -> bool:
    headers = item.get("headers")
    return isinstance(headers, dict) and any(v == REDACTED for v in headers.values())


def restore_document(record: ItemRecord, snapshot: Mapping[str, Any], parent_run: str) -> tuple[dict[str, Any], list[Loss]]:
    ops = _ops(record)
    touched: list[str] = [s for s in APPLY_ORDER if any(o.get("section") == s for o in ops)]
    spec = snapshot.get("spec") or {}
    losses: list[Loss] = []
    out_spec: dict[str, Any] = {s: None for s in APPLY_ORDER}
    for section in touched:
        value = spec.get(section)
        if section in ITEM_KEYS and isinstance(value, list):
            deleted = {o.get("key") for o in ops if o.get("section") == section and o.get("op") == "delete"}
            kept = []
            for item in value:
                key = item.get(ITEM_KEYS[section])
                if key in deleted and _has_secret(item):
                    losses.append(Loss(record.name, f"{section}[{key}]", f"deleted by run {parent_run}; it carried write-only secrets, so it cannot be re-created: re-add it with its secrets"))
                    continue
                kept.append(item)
            value = kept
        elif isinstance(value, dict):
            # Object sections merge on apply (a key not given stays): a key the run added,
            # absent from the snapshot, is given as null to remove it.
            value = dict(value)
            for op in ops:
                if op.get("section") == section:
                    for change in op.get("changes") or []:
                        top = re.split(r"[.\[]", str(change.get("path")), maxsplit=1)[0]
                        value.setdefault(top, None)
        out_spec[section] = value
    for op in ops:
        section = str(op.get("section"))
        for change in op.get("changes") or []:
            path = str(change.get("path"))
            if op.get("op") == "update" and is_secret_change(section, path):
                key = f"[{op.get('key')}]" if op.get("key") else ""
                losses.append(Loss(record.name, f"{section}{key}.{path}", f"changed by run {parent_run}; secret values are write-only and cannot be restored"))
    doc = {"apiVersion": snapshot.get("apiVersion", "wizchat.com/v1"), "kind": snapshot.get("kind", "ChatbotConfig"), "spec": out_spec}
    return doc, losses


def rollback_items(journal: Journal, parent_run: str) -> tuple[list[RunItem], list[Loss]]:
    """The items that restore ``parent_run``'s changes, in reverse rollout order, and what cannot be restored."""
    parent = journal.get_run(parent_run)
    if parent.command not in ("apply", "rollback"):
        raise JournalError(f"run {parent_run} is a {parent.command} run: only apply and rollback runs change chatbots")
    items: list[RunItem] = []
    losses: list[Loss] = []
    # Any state: an item an earlier attempt changed may since be failed, drifted or (a stopped
    # retry) planned; its applied_ops say what the run did to it.
    records: Sequence[ItemRecord] = journal.items(parent_run)
    for record in reversed(records):  # items() is in rollout order
        if record.state not in CHANGED_STATES and not record.applied_ops:
            continue  # never applied to
        if not _ops(record):
            continue  # nothing of it was kept
        snap = journal.snapshot(parent_run, record.name)
        if snap is None or record.chatbot_id is None or record.tenant is None:
            continue  # never reached the apply: nothing to restore
        doc, lost = restore_document(record, snap.document, parent_run)
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
