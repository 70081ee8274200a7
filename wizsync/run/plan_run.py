"""``wizsync plan`` as a run: prove the targets, load the fleet, dry-run every chatbot, journal it.

The dry-run itself is :mod:`wizsync.plan.dryrun`; this is the run around it,
on the same lifecycle as apply, resume and rollback (:mod:`wizsync.run.lifecycle`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..engine import Executor
from ..fleet.load import FleetItem
from ..plan.dryrun import PlanOutcome, has_changes, ops_of, plan_fleet, summary_of

if TYPE_CHECKING:
    from ..report.progress import Reporter

__all__ = ["PlanRun", "run_plan", "plan_row", "apply_estimate"]


@dataclass
class PlanRun:
    run_id: str
    outcomes: list[PlanOutcome]
    stats: dict[str, dict[str, Any]]
    estimate: Any  # wizsync.report.summary.Estimate | None
    forbidden: set[str]

    @property
    def errors(self) -> list[PlanOutcome]:
        return [o for o in self.outcomes if o.error is not None]

    @property
    def changed(self) -> list[PlanOutcome]:
        return [o for o in self.outcomes if o.result is not None and has_changes(o.result)]


# Requests an apply sends per chatbot: its own plan, the batch's fresh dry-run,
# then for a chatbot with changes the snapshot (get_config) and the apply.
APPLY_REQUESTS_CHANGED = 4
APPLY_REQUESTS_UNCHANGED = 2
_FLUSH_EVERY = 200


def plan_row(outcome: PlanOutcome, counters: dict[str, int]) -> dict[str, Any]:
    doc_hash = outcome.item.rendered.hash if isinstance(outcome.item, FleetItem) else None
    row: dict[str, Any] = {"name": outcome.item.name, "doc_hash": doc_hash, **counters}
    if outcome.result is not None:
        row.update(plan_summary=summary_of(outcome.result), plan_ops=ops_of(outcome.result),
                   revision_before=outcome.result.revision)
    else:
        assert outcome.error is not None
        row.update(state="failed", error_code=outcome.error["code"], error_message=outcome.error["message"])
    return row


def apply_estimate(ex: Executor, outcomes: Sequence[PlanOutcome]) -> Any:
    from ..report.summary import estimate_apply

    requests: dict[str, int] = {}
    for o in outcomes:
        n = APPLY_REQUESTS_CHANGED if o.result is not None and has_changes(o.result) else APPLY_REQUESTS_UNCHANGED
        requests[o.item.label] = requests.get(o.item.label, 0) + n
    stats = ex.stats()
    rates = {k: s["server_rate"] or s["rate"] for k, s in stats.items() if (s["server_rate"] or s["rate"])}
    bursts = {k: s["capacity"] for k, s in stats.items() if s.get("capacity") is not None}
    return estimate_apply(requests, rates, bursts)


def _plan_row_writer(life: Any, reporter: Reporter | None) -> tuple[Callable[[PlanOutcome], None], Callable[[], None]]:
    """``record(outcome)`` journals plan rows in chunks (and tells the reporter); ``flush()`` writes the rest."""
    pending: list[dict[str, Any]] = []

    def flush() -> None:
        if pending:
            life.journal.record_plans(life.run_id, pending)
            pending.clear()

    def record(outcome: PlanOutcome) -> None:
        if outcome.error is not None and outcome.error.get("code") == "Stopped":
            return  # a stop came before this chatbot's dry-run was sent: it stays pending
        pending.append(plan_row(outcome, life.recorder.take(outcome.item.name)))
        if len(pending) >= _FLUSH_EVERY:
            flush()
        if reporter is not None:
            state = "failed" if outcome.error else ("changes" if outcome.result and has_changes(outcome.result) else "noop")
            detail = outcome.error["message"] if outcome.error else ""
            reporter.item_done(outcome.item.name, outcome.item.target.tenant, state, detail)

    return record, flush


async def run_plan(session: Any, *, no_prune: bool = False, reporter: Reporter | None = None,
                   repin: frozenset[str] = frozenset()) -> PlanRun:
    """``wizsync plan``: prove the targets, load the fleet, dry-run every chatbot, journal it as a run of its own."""
    from ..journal import RunLock, new_run_id
    from ..manifest import ManifestError
    from .items import from_fleet
    from .lifecycle import run_lifecycle

    journal = session.open_journal()
    run_id = new_run_id()
    # Only the run's own lock (a plan writes nothing, so it never blocks an apply): it tells
    # `show` that the run is alive, and the kernel drops it if the process dies.
    acquire = lambda: RunLock.acquire(session.journal_path, run_id, environment=session.environment, command="plan")  # noqa: E731
    options = {**session.selectors, "no_prune": no_prune, "concurrency": session.concurrency}
    with run_lifecycle(journal, run_id, acquire, user_errors=(ManifestError,), reporter=reporter) as life:
        life.start("plan", session.environment, session.manifest_path, session.manifest_hash, options)
        async with session.executor(life.recorder) as ex:
            life.watch(ex)
            life.graceful(ex)
            await session.prove_targets(ex, journal, run_id, repin=repin, command="plan")
            if reporter is not None:
                reporter.phase("loading the fleet")
            fleet = await from_fleet(session, ex, no_prune=no_prune, ordered=False)
            life.check()
            forbidden = fleet.forbidden
            journal.forbid(forbidden)
            journal.add_items(run_id, [
                {"name": e.name, "tenant": e.target.tenant, "chatbot_id": e.chatbot_id, "position": i,
                 "batch": 0, "doc_hash": e.rendered.hash if isinstance(e, FleetItem) else None}
                for i, e in enumerate(fleet.entries)
            ])
            if reporter is not None:
                reporter.start(len(fleet.entries), [e.target.tenant for e in fleet.entries], title=f"plan {session.environment}")
                for notice in fleet.notices:
                    reporter.message(notice)
            record, flush = _plan_row_writer(life, reporter)
            for failure in fleet.failed:  # journalled like any failed plan: every chatbot has its row
                record(PlanOutcome.unloaded(failure))
            planned = await plan_fleet(ex, fleet.fleet, no_prune=no_prune, on_outcome=record)
            flush()
            life.check()  # stopped: the run ends `interrupted`, what was planned stays journalled
            life.recorder.flush()
            by_name = {o.item.name: o for o in planned}
            outcomes = [by_name[e.name] if isinstance(e, FleetItem) else PlanOutcome.unloaded(e) for e in fleet.entries]
            stats = ex.stats()
            estimate = apply_estimate(ex, outcomes)
        life.finish("failed" if any(o.error for o in outcomes) else "completed")
        return PlanRun(run_id, outcomes, stats, estimate, forbidden)
