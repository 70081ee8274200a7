"""Bridges the engine's per-attempt events into the journal and per-item counters.

The engine reports every attempt, retry, 429 and failure as
``on_event(key_label, context, kind, detail)`` where ``context`` is the
chatbot's address (tenant/name). Counters per item (requests, 429s, retries) are kept
in memory and written with the item's result; retries, 429s and failures are
also appended to the journal's event log as they happen, so a run killed
mid-way still shows them. Attempts and successes are too frequent to log one
row each (a 10,000-chatbot plan): they only count.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, TypedDict

from ..engine import OnEvent
from . import Journal

__all__ = ["AttemptCounts", "ItemCounters", "Recorder"]

_LOGGED = {"retry": "request.retry", "throttled": "request.throttled", "failed": "request.failed",
           "halted": "request.halted"}
# Journal.event's own parameters: an event detail of that name (the engine's "kind"
# of a failure) would collide with them, so it is stored under "error_<name>".
_RESERVED = {"run_id", "kind", "item", "key"}


class AttemptCounts(TypedDict):
    """What ``Journal.record_result`` adds to an item's totals (its keyword arguments of these names)."""

    requests: int
    throttled: int
    retries: int


@dataclass
class ItemCounters:
    requests: int = 0
    throttled: int = 0
    retries: int = 0

    def as_fields(self) -> AttemptCounts:
        return {"requests": self.requests, "throttled": self.throttled, "retries": self.retries}


class Recorder:
    """``on_event`` for the engine; one per run. Must be called on the journal's thread (the loop's)."""

    def __init__(self, journal: Journal | None, run_id: str | None, listener: OnEvent | None = None) -> None:
        self.journal = journal
        self.run_id = run_id
        self.items: defaultdict[str, ItemCounters] = defaultdict(ItemCounters)
        self.labels: dict[str, str] = {}
        # Also told every event (the reporter: -v prints each retry, 429 wait and capped wait).
        self.listener = listener

    def __call__(self, label: str, context: str | None, kind: str, detail: dict[str, Any]) -> None:
        if self.listener is not None:
            self.listener(label, context, kind, detail)
        counters = self.items[context or ""]
        self.labels[context or ""] = label
        if kind == "attempt":
            counters.requests += 1
        elif kind == "throttled":
            counters.throttled += 1
        elif kind == "retry":
            counters.retries += 1
        event = _LOGGED.get(kind)
        if event is not None and self.journal is not None and self.run_id is not None:
            data = {(f"error_{k}" if k in _RESERVED else k): v for k, v in detail.items()}
            self.journal.event(self.run_id, event, item=context, key=label, **data)

    def take(self, name: str) -> AttemptCounts:
        """The counters of ``name`` since the last take (record_result adds them up)."""
        counters = self.items.pop(name, None) or ItemCounters()
        return counters.as_fields()

    def flush(self) -> None:
        """Journal what no item took (listings, a call whose item never finished) as ``requests.other``.

        So that the run's totals count every request and every 429, not only
        those of chatbots that reached a result.
        """
        if self.journal is None or self.run_id is None:
            return
        # One transaction for them all (each event joins it): a fleet of 200 keys has 200 listings
        # to account for at the run's end, and a commit each was ~0.1 ms apiece of its tail.
        counted = [(c, n) for c, n in sorted(self.items.items()) if n.requests or n.throttled or n.retries]
        if counted:
            with self.journal.write():
                for context, counters in counted:
                    self.journal.event(self.run_id, "requests.other", item=None, context=context,
                                       key=self.labels.get(context), **counters.as_fields())
        self.items.clear()
