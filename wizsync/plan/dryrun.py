"""Plan: a server-side dry-run of every fleet item, concurrently, and what it found.

Plans are data (decK's reconciler style): ``PlanOutcome`` holds the server's
answer or the error; deciding what to do with it (show it, journal it,
apply it) is the caller's business.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from wizchat_management import ApplyResult
from wizchat_management.models import Operation
from wizchat_management.vocabulary import wire_value

from ..engine import Executor, Outcome
from ..engine.errors import CallError, error_info
from ..fleet.load import FleetFailure, FleetItem

__all__ = [
    "PlanOutcome",
    "dry_run",
    "plan_fleet",
    "error_info",
    "summary_of",
    "ops_of",
    "has_changes",
    "deletes_of",
]


@dataclass
class PlanOutcome:
    """One chatbot's plan: the server's answer or the error (``item`` a ``FleetFailure`` when loading failed)."""

    item: FleetItem | FleetFailure
    result: ApplyResult | None = None
    error: CallError | None = None

    @classmethod
    def unloaded(cls, failure: FleetFailure) -> PlanOutcome:
        return cls(failure, error=failure.error)



def effective_prune(item: FleetItem, no_prune: bool) -> bool:
    return False if no_prune else item.target.prune


async def dry_run(ex: Executor, item: FleetItem, *, prune: bool) -> ApplyResult:
    # Secrets are resolved here, at the last moment, and only into the request body.
    return await ex.call(
        item.label,
        lambda c: c.apply_config(item.chatbot_id, item.rendered.resolve(), dry_run=True, prune=prune),
        context=item.name,
    )


async def plan_fleet(
    ex: Executor,
    items: Iterable[FleetItem],
    *,
    no_prune: bool = False,
    on_outcome: Callable[[PlanOutcome], None] | None = None,
    keep: bool = True,
) -> list[PlanOutcome]:
    """Dry-run every item concurrently; one ``PlanOutcome`` per item, in input order (none with
    ``keep=False``: ``on_outcome`` then has each one, and nothing holds it after)."""

    def convert(outcome: Outcome[FleetItem, ApplyResult]) -> PlanOutcome:
        if outcome.error is not None:
            return PlanOutcome(outcome.item, error=error_info(outcome.error))
        return PlanOutcome(outcome.item, result=outcome.value)

    def done(outcome: Outcome[FleetItem, ApplyResult]) -> None:
        if on_outcome is not None:
            on_outcome(convert(outcome))

    outcomes = await ex.map(items, lambda it: dry_run(ex, it, prune=effective_prune(it, no_prune)), on_outcome=done,
                            key=lambda it: it.label, keep=keep)
    return [convert(o) for o in outcomes]


def summary_of(result: ApplyResult) -> dict[str, int]:
    s = result.plan.summary
    return {"create": s.create, "update": s.update, "delete": s.delete, "noop": s.noop}


def ops_of(result: ApplyResult, *, changed_only: bool = True) -> list[Operation]:
    """The plan's operations (noops left out unless asked); the journal stores them in wire form."""
    return [op for op in result.plan.operations if not changed_only or op.op != "noop"]


def has_changes(result: ApplyResult) -> bool:
    s = result.plan.summary
    return bool(s.create or s.update or s.delete)


def deletes_of(result: ApplyResult) -> list[str]:
    return [f"{wire_value(op.section)}[{op.key}]" if op.key else wire_value(op.section)
            for op in result.plan.operations if op.op == "delete"]
