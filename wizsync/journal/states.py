"""Item states and run statuses: the journal's two small state machines, in one place.

Both enums are ``str``-valued so the strings stored in ``items.state`` and
``runs.status`` (and every query in docs/journal.md) are unchanged.

An item's life in one run::

    pending ──> planned ──> applying ──> applied | unchanged | failed | drifted
       │           │            ▲                               │        │
       └───────────┴──> skipped └───────────── retried ─────────┴────────┘

Three questions are asked of a state, and ``failed`` answers two of them with
"yes", which is why it used to sit in both ``FINAL_STATES`` and
``UNFINISHED_STATES``:

- is it an *outcome*? (:attr:`ItemState.is_outcome`) — an attempt ended
  this way; ``Journal.record_result`` writes only outcomes.
- is it *done*? (:attr:`ItemState.is_done`) — ``applied``/``unchanged``: the
  run reached the item's desired config; it is never applied again in the run.
- is it *unfinished*? (:attr:`ItemState.is_unfinished`) — resume takes it up
  again: not started (``pending``/``planned``), maybe started (``applying``),
  or ended without reaching the desired config (``failed``/``drifted``).

``skipped`` is an outcome that is neither done nor unfinished: the run chose
not to touch the item (not selected, changed since the plan, batch halted)
and resume respects that choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

__all__ = [
    "ItemState",
    "RunStatus",
    "ITEM_MOVES",
    "RUN_MOVES",
    "item_may_move",
    "run_may_move",
    "UNFINISHED_STATES",
    "DONE_STATES",
]


class _StoredString(str, Enum):
    """A ``str`` enum that prints and formats as its stored value on every Python (3.12 changed ``format``)."""

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(str.__str__(self), spec)


class ItemState(_StoredString):
    """``items.state``: where one chatbot stands in one run."""

    PENDING = "pending"
    PLANNED = "planned"
    APPLYING = "applying"
    APPLIED = "applied"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    DRIFTED = "drifted"
    SKIPPED = "skipped"

    @property
    def is_outcome(self) -> bool:
        """An attempt ended in this state (what ``record_result`` may write)."""
        return self in _OUTCOMES

    @property
    def is_done(self) -> bool:
        """The desired config is live: never applied again in this run."""
        return self in _DONE

    @property
    def is_unfinished(self) -> bool:
        """Resume takes the item up again."""
        return self in _UNFINISHED


class RunStatus(_StoredString):
    """``runs.status``: how a plan / apply / rollback run stands."""

    RUNNING = "running"
    COMPLETED = "completed"
    HALTED = "halted"
    FAILED = "failed"
    INTERRUPTED = "interrupted"

    @property
    def is_final(self) -> bool:
        """The run has stopped (``finish_run`` writes only these)."""
        return self is not RunStatus.RUNNING


_OUTCOMES = frozenset({ItemState.APPLIED, ItemState.UNCHANGED, ItemState.FAILED, ItemState.DRIFTED, ItemState.SKIPPED})
_DONE = frozenset({ItemState.APPLIED, ItemState.UNCHANGED})
_UNFINISHED = frozenset(
    {ItemState.PENDING, ItemState.PLANNED, ItemState.APPLYING, ItemState.FAILED, ItemState.DRIFTED}
)

# Resume takes these up again / never applies these again (see the module docstring).
UNFINISHED_STATES: frozenset[ItemState] = _UNFINISHED
DONE_STATES: frozenset[ItemState] = _DONE

# The legal moves, as the journal makes them. An outcome may be recorded from
# any state that is not done (a skip needs no attempt; a crash may leave
# ``pending`` or ``planned`` behind an attempt that never began). ``applying``
# may fall back to ``planned`` when the request provably never left.
ITEM_MOVES: Mapping[ItemState, frozenset[ItemState]] = {
    ItemState.PENDING: frozenset({ItemState.PLANNED, ItemState.APPLYING}) | _OUTCOMES,
    ItemState.PLANNED: frozenset({ItemState.PLANNED, ItemState.APPLYING}) | _OUTCOMES,
    ItemState.APPLYING: frozenset({ItemState.PLANNED, ItemState.APPLYING}) | _OUTCOMES,
    ItemState.FAILED: frozenset({ItemState.PLANNED, ItemState.APPLYING}) | _OUTCOMES,
    ItemState.DRIFTED: frozenset({ItemState.PLANNED, ItemState.APPLYING}) | _OUTCOMES,
    ItemState.SKIPPED: frozenset({ItemState.PLANNED, ItemState.APPLYING}) | _OUTCOMES,
    # Done is done: a second apply in the same run is refused (mark_applying).
    ItemState.APPLIED: frozenset({ItemState.APPLIED}),
    ItemState.UNCHANGED: frozenset({ItemState.UNCHANGED}),
}

RUN_MOVES: Mapping[RunStatus, frozenset[RunStatus]] = {
    RunStatus.RUNNING: frozenset({RunStatus.COMPLETED, RunStatus.HALTED, RunStatus.FAILED, RunStatus.INTERRUPTED}),
    # Any stopped run may be resumed (``reopen_run``) back to running.
    RunStatus.COMPLETED: frozenset({RunStatus.RUNNING}),
    RunStatus.HALTED: frozenset({RunStatus.RUNNING}),
    RunStatus.FAILED: frozenset({RunStatus.RUNNING}),
    RunStatus.INTERRUPTED: frozenset({RunStatus.RUNNING}),
}


def item_may_move(current: ItemState, to: ItemState) -> bool:
    """Whether the journal may change an item from ``current`` to ``to``."""
    return to in ITEM_MOVES[current]


def run_may_move(current: RunStatus, to: RunStatus) -> bool:
    """Whether the journal may change a run from ``current`` to ``to``."""
    return to in RUN_MOVES[current]
