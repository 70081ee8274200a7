"""``wizsync plan`` as a run: prove the targets, load the fleet, dry-run every chatbot, journal it.

The dry-run itself is :mod:`wizsync.plan.dryrun`; this is the run around it,
on the same lifecycle as apply, resume and rollback (:mod:`wizsync.run.lifecycle`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..engine import Executor
from ..fleet.load import FleetItem
from ..journal.recorder import AttemptCounts
from ..journal.states import ItemState
from ..plan.dryrun import PlanOutcome, has_changes, ops_of, plan_fleet, summary_of
from ..report.model import plan_report
from ..render.memo import forget as forget_renders
from ..report.spool import ReportSpool

if TYPE_CHECKING:
    from ..fleet.session import Session
    from ..plan.planfile import PlanFileWriter
    from ..report.progress import Reporter
    from ..report.summary import Estimate
    from .lifecycle import Lifecycle

__all__ = ["PlanRun", "run_plan", "plan_row", "apply_estimate"]


@dataclass
class PlanRun:
    """What a plan run found. ``outcomes`` holds every chatbot's only when the caller asked to keep them
    (``keep_outcomes``); otherwise the report's rows are in ``spool`` and only the failures are kept."""

    run_id: str
    outcomes: list[PlanOutcome]
    stats: dict[str, dict[str, Any]]
    estimate: Estimate | None
    forbidden: set[str]
    errors: list[PlanOutcome] = field(default_factory=list)
    changed: int = 0
    spool: ReportSpool | None = None


# Requests an apply sends per chatbot: its own plan, the batch's fresh dry-run,
# then for a chatbot with changes the snapshot (get_config) and the apply.
APPLY_REQUESTS_CHANGED = 4
APPLY_REQUESTS_UNCHANGED = 2
_FLUSH_EVERY = 200


def plan_row(outcome: PlanOutcome, counters: AttemptCounts) -> dict[str, Any]:
    doc_hash = outcome.item.rendered.hash if isinstance(outcome.item, FleetItem) else None
    row: dict[str, Any] = {"name": outcome.item.name, "doc_hash": doc_hash, **counters}
    if outcome.result is not None:
        row.update(plan_summary=summary_of(outcome.result), plan_ops=ops_of(outcome.result),
                   revision_before=outcome.result.revision)
    else:
        assert outcome.error is not None
        row.update(state=ItemState.FAILED, error_code=outcome.error["code"], error_message=outcome.error["message"])
    return row


def apply_estimate(ex: Executor, requests: Mapping[str, int]) -> Estimate | None:
    """The apply-time floor for ``requests`` per key label, at the rates the plan saw."""
    from ..report.summary import estimate_apply

    stats = ex.stats()
    rates = {k: s["server_rate"] or s["rate"] for k, s in stats.items() if (s["server_rate"] or s["rate"])}
    bursts = {k: s["capacity"] for k, s in stats.items() if s.get("capacity") is not None}
    return estimate_apply(requests, rates, bursts)


class _PlanRecorder:
    """Each outcome as it lands: its journal row (in chunks), the reporter, the report spool, the
    counts the run's decisions need. The server's answer is dropped once recorded (unless kept)."""

    def __init__(self, life: Lifecycle, reporter: Reporter | None, spool: ReportSpool | None, keep: bool,
                 plan_file: PlanFileWriter | None = None) -> None:
        self.life, self.reporter, self.spool, self.keep, self.plan_file = life, reporter, spool, keep, plan_file
        self.pending: list[dict[str, Any]] = []
        self.kept: dict[str, PlanOutcome] = {}
        self.errors: dict[str, PlanOutcome] = {}
        self.changed = 0
        self.requests: dict[str, int] = {}

    def flush(self) -> None:
        if self.pending:
            self.life.journal.record_plans(self.life.run_id, self.pending)
            self.pending.clear()

    def __call__(self, outcome: PlanOutcome) -> None:
        if outcome.error is not None and outcome.error.get("code") == "Stopped":
            return  # a stop came before this chatbot's dry-run was sent: it stays pending
        self.pending.append(plan_row(outcome, self.life.recorder.take(outcome.item.name)))
        if len(self.pending) >= _FLUSH_EVERY:
            self.flush()
        changes = outcome.result is not None and has_changes(outcome.result)
        self.changed += changes
        self.requests[outcome.item.label] = self.requests.get(outcome.item.label, 0) + (
            APPLY_REQUESTS_CHANGED if changes else APPLY_REQUESTS_UNCHANGED)
        if outcome.error is not None:
            self.errors[outcome.item.name] = outcome
        if self.spool is not None:
            self.spool.add(plan_report(outcome))
        if self.plan_file is not None:
            self.plan_file.add(outcome)
        if self.keep:
            self.kept[outcome.item.name] = outcome
        if self.reporter is not None:
            state = "failed" if outcome.error else ("changes" if changes else "noop")
            detail = outcome.error["message"] if outcome.error else ""
            self.reporter.item_done(outcome.item.name, outcome.item.target.tenant, state, detail)


def _drain(items: list[FleetItem]) -> Iterator[FleetItem]:
    """``items`` in order, each let go of by the list as it is taken."""
    items.reverse()
    while items:
        yield items.pop()


async def run_plan(session: Session, *, no_prune: bool = False, reporter: Reporter | None = None,
                   repin: frozenset[str] = frozenset(), report: str | None = None,
                   keep_outcomes: bool = True, plan_file: PlanFileWriter | None = None) -> PlanRun:
    """``wizsync plan``: prove the targets, load the fleet, dry-run every chatbot, journal it as a run of its own.

    ``report`` (``"json"``/``"text"``/``"markdown"``): also spool each chatbot's report row as it lands (``PlanRun.spool``,
    closed by the caller). ``keep_outcomes=False`` keeps no chatbot's result in memory beyond its
    recording: the memory of a plan then does not grow with the server's answers. ``plan_file``: each
    planned chatbot's plan-file entry is also added to it as it lands (``plan --out``).
    """
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
    spool: ReportSpool | None = None
    try:
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
                journal.add_items(run_id, (
                    {"name": e.name, "tenant": e.target.tenant, "chatbot_id": e.chatbot_id, "position": i,
                     "batch": 0, "doc_hash": e.rendered.hash if isinstance(e, FleetItem) else None}
                    for i, e in enumerate(fleet.entries)
                ))
                if reporter is not None:
                    reporter.start(len(fleet.entries), [e.target.tenant for e in fleet.entries], title=f"plan {session.environment}")
                    for notice in fleet.notices:
                        reporter.message(notice)
                if report is not None:
                    spool = ReportSpool(report, sorted(forbidden))
                record = _PlanRecorder(life, reporter, spool, keep_outcomes, plan_file)
                for failure in fleet.failed:  # journalled like any failed plan: every chatbot has its row
                    record(PlanOutcome.unloaded(failure))
                # From here each document lives until its chatbot's dry-run is recorded, no longer.
                names, todo = [e.name for e in fleet.entries], fleet.fleet
                if plan_file is not None:
                    plan_file.order(names)
                fleet.entries.clear()
                forget_renders(session.manifest)
                await plan_fleet(ex, _drain(todo), no_prune=no_prune, on_outcome=record, keep=False)
                record.flush()
                life.check()  # stopped: the run ends `interrupted`, what was planned stays journalled
                life.recorder.flush()
                outcomes = [record.kept[n] for n in names if n in record.kept]
                errors = [record.errors[n] for n in names if n in record.errors]
                stats = ex.stats()
                estimate = apply_estimate(ex, record.requests)
            life.finish("failed" if record.errors else "completed")
            return PlanRun(run_id, outcomes, stats, estimate, forbidden, errors, record.changed, spool)
    except BaseException:
        if spool is not None:
            spool.close()
        raise
