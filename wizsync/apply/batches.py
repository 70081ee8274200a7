"""Apply: ordered batches with a fresh dry-run per chatbot, write-ahead journaling, a failure budget.

The same machinery runs ``apply``, ``resume`` and ``rollback``; they differ
only in where the items and their desired documents come from.

Per chatbot, in its batch (the batch's chatbots run concurrently):

1. fresh dry-run → ``planned``; all ``noop`` → ``unchanged`` (no apply sent);
2. with ``--plan RUN_ID``: a plan that differs from the approved one, or a
   rendered document that changed since, → ``drifted`` (not applied);
3. deletes without ``--allow-deletes`` → ``failed`` (``deletes_refused``);
4. snapshot: the live config (the server's export, secrets ``<redacted>``)
   stored before anything changes (the one before the run's first apply sent wins);
5. ``applying`` committed durably, THEN the apply request: after a crash an
   ``applying`` item means "may have happened", never "did not";
6. ``applied``, or ``failed`` with the server's ``ApplyResult.failed`` (a 422
   keeps what ran before it) or the error.

Every choice between those steps is a pure function of ``decide``; this
module makes the calls, writes the journal and reports.

After each batch the run halts if failures exceed the budget. A stop
(Ctrl-C) lets requests in flight finish and record, then ends the run
``interrupted``. Resuming re-plans every unfinished item: an ``applying``
item whose fresh plan is all ``noop`` was applied (``applied``); anything
else is applied again (apply is idempotent).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from wizchat_management import ApplyResult, ChatbotConfigDocument

from ..engine import Executor, Stopped
from ..fleet.load import FleetFailure, FleetItem, key_label
from ..journal import Journal, now_rfc3339
from ..journal.recorder import Recorder
from ..journal.states import UNFINISHED_STATES, RunStatus
from ..plan.dryrun import ops_of, summary_of
from .decide import (
    Approval,
    Approved,
    CallFailure,
    Finish,
    Prior,
    after_apply,
    after_apply_failure,
    after_batch,
    after_plan,
    after_snapshot_failure,
    carried_forward,
    failed_with,
    run_ended,
)
from .schedule import failure_budget

if TYPE_CHECKING:
    from ..report.progress import Reporter

T = TypeVar("T")

__all__ = [
    "Desired",
    "RunItem",
    "ApplyOptions",
    "BatchRunner",
    "RunSummary",
    "UNFINISHED_STATES",
    "SECRET_PATHS",
]

# Items a resume works on again; ``drifted`` is re-checked too (the drift may be gone).
# ``skipped`` is final: ``resume --force`` gives it to chatbots the manifest no longer
# selects, and a run that can never complete because of them would help no one.


class Desired(Protocol):
    """What a run wants a chatbot to be (``RenderedDocument`` or a snapshot)."""

    @property
    def masked(self) -> dict[str, Any]: ...

    @property
    def hash(self) -> str: ...

    def resolve(self, environ: Mapping[str, str] | None = None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RunItem:
    name: str
    tenant: str
    environment: str
    chatbot_id: str
    desired: Desired
    prune: bool

    @property
    def label(self) -> str:
        return key_label(self.tenant, self.environment)

    @classmethod
    def from_fleet(cls, item: FleetItem, *, no_prune: bool) -> RunItem:
        return cls(
            name=item.name,
            tenant=item.target.tenant,
            environment=item.target.environment,
            chatbot_id=item.chatbot_id,
            desired=item.rendered,
            prune=False if no_prune else item.target.prune,
        )


@dataclass
class ApplyOptions:
    """The options a run is recorded with (and resumed with)."""

    batches: list[int | str] = field(default_factory=lambda: ["100%"])
    max_failures: int | str = 0
    no_prune: bool = False
    allow_deletes: bool = False
    plan_run: str | None = None
    concurrency: int = 16
    select: list[str] = field(default_factory=list)
    chatbots: list[str] = field(default_factory=list)
    # ``wizsync.fleet.shards.Shard.as_json()`` of a ``--shard`` run: resume and rollback keep exactly these keys.
    shard: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ApplyOptions:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


@dataclass
class RunSummary:
    run_id: str
    status: str
    counts: dict[str, int]
    total: int
    batches: int
    batches_done: int
    budget: int
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "completed"


def snapshot_document(doc: ChatbotConfigDocument) -> dict[str, Any]:
    return doc.model_dump(mode="json", by_alias=True, exclude_unset=True)


class BatchRunner:
    """Runs the items of one run in batches; every result goes to the journal as it happens."""

    def __init__(
        self,
        journal: Journal,
        run_id: str,
        ex: Executor,
        recorder: Recorder,
        options: ApplyOptions,
        *,
        approved: Mapping[str, Approved] | None = None,
        reporter: Reporter | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.journal = journal
        self.run_id = run_id
        self.ex = ex
        self.recorder = recorder
        self.options = options
        self.approved = approved
        self.reporter = reporter
        self.environ = os.environ if environ is None else environ

    # -- one chatbot --------------------------------------------------------

    def _finish(self, item: RunItem | FleetFailure, outcome: Finish) -> None:
        fields: dict[str, Any] = {**outcome.fields(), **self.recorder.take(item.name)}
        self.journal.record_result(self.run_id, item.name, outcome.state, **fields)
        if self.reporter is not None:
            self.reporter.item_done(item.name, item.tenant, outcome.state, outcome.detail)

    async def _call(self, item: RunItem, request: Callable[[Any], Awaitable[T]]) -> T | CallFailure | None:
        """One request for ``item``: its answer, how it failed, or None when stopped before sending."""
        try:
            return await self.ex.call(item.label, request, context=item.name)
        except Stopped:
            return None
        except Exception as exc:
            return CallFailure.of(exc)

    def _apply_request(self, item: RunItem, *, dry_run: bool) -> Callable[[Any], Awaitable[ApplyResult]]:
        # Secrets resolved here, into the request body only.
        return lambda c: c.apply_config(item.chatbot_id, item.desired.resolve(self.environ), dry_run=dry_run, prune=item.prune)

    def _approval(self, item: RunItem) -> Approval | None:
        if self.approved is None:
            return None
        return Approval(self.options.plan_run, self.approved.get(item.name))

    async def process(self, item: RunItem) -> None:
        """Plan, snapshot, mark, apply, record one chatbot (decided in ``decide``). Never raises for an API error."""
        journal, run_id = self.journal, self.run_id
        prior = Prior.of(journal.item(run_id, item.name))
        carried = carried_forward(prior)
        if carried is not None:
            journal.update_item(run_id, item.name, applied_ops=carried)
        plan = await self._call(item, self._apply_request(item, dry_run=True))
        if plan is None:
            return
        if isinstance(plan, CallFailure):
            self._finish(item, failed_with(plan))
            return
        journal.update_item(
            run_id, item.name, state="planned", plan_summary=summary_of(plan), plan_ops=ops_of(plan),
            doc_hash=item.desired.hash, planned_at=now_rfc3339(),
        )
        step = after_plan(plan, prior, self._approval(item), item.desired.hash, self.options.allow_deletes)
        if isinstance(step, Finish):
            self._finish(item, step)
            return
        live = await self._call(item, lambda c: c.get_config(item.chatbot_id))
        if live is None:
            return
        if isinstance(live, CallFailure):
            self._finish(item, after_snapshot_failure(live))
            return
        # The snapshot and the write-ahead mark: one durable commit, before the request is sent.
        with journal.write(durable=True):
            journal.save_snapshot(
                run_id, item.name, snapshot_document(live), live.metadata.revision if live.metadata else plan.revision,
                tenant=item.tenant, chatbot_id=item.chatbot_id, replace=step.replace_snapshot,
            )
            attempt = journal.mark_applying(run_id, item.name, doc_hash=item.desired.hash, revision_before=plan.revision)
        result = await self._call(item, self._apply_request(item, dry_run=False))
        if result is None:
            # Stopped means the call sent nothing (a call that sent a request finishes,
            # retries included), e.g. it was still waiting for an in-flight slot. So this
            # apply did not happen: back to ``planned``, not a misleading ``applying``.
            journal.update_item(run_id, item.name, state="planned", attempts=attempt - 1, applying_at=None)
            journal.event(run_id, "apply.stopped", item=item.name, sent=False)
            return
        if isinstance(result, CallFailure):
            self._finish(item, after_apply_failure(result, ops_of(plan), prior.earlier))
        else:
            self._finish(item, after_apply(result, prior.earlier))

    # -- the run ------------------------------------------------------------

    def failures(self) -> int:
        return self.journal.item_counts(self.run_id).get("failed", 0)

    def fail_unloaded(self, failure: FleetFailure) -> None:
        """A chatbot whose fleet loading failed fails in its batch, with the server's error."""
        info = failure.error
        self._finish(failure, failed_with(CallFailure(info["code"], info["message"])))

    async def _run_batch(self, number: int, todo: Sequence[RunItem], unloaded: Sequence[FleetFailure]) -> None:
        journal, run_id = self.journal, self.run_id
        # Which machine ran each batch: across machines the lock cannot serialize runs, the journal tells.
        journal.event(run_id, "batch.start", batch=number, size=len(todo) + len(unloaded), host=socket.gethostname(), pid=os.getpid())
        if self.reporter is not None:
            self.reporter.batch_started(number, len(todo) + len(unloaded))
        for failure in unloaded:
            self.fail_unloaded(failure)
        outcomes = await self.ex.map(todo, self.process, key=lambda item: item.label)
        # process() records every API error itself; what escapes it (a journal write refused
        # or failing) means results may be unrecorded: stop the run with that reason, once
        # the batch's requests in flight have finished.
        errors = [o.error for o in outcomes if o.error is not None]
        if errors:
            raise errors[0]

    async def run(self, batches: Sequence[Sequence[RunItem | FleetFailure]], total: int) -> RunSummary:
        """Run the batches in order, skipping items already done; returns how the run ended.

        A ``FleetFailure`` (a chatbot whose fleet loading failed) is recorded ``failed`` in its
        batch and counts against the failure budget like any other failure.
        """
        journal, run_id = self.journal, self.run_id
        budget = failure_budget(self.options.max_failures, total)
        done = 0
        status = RunStatus.COMPLETED
        message = ""
        for number, batch in enumerate(batches, 1):
            states = {r.name: r.state for r in journal.items(run_id)}
            todo = [i for i in batch if isinstance(i, RunItem) and states.get(i.name) in UNFINISHED_STATES]
            unloaded = [i for i in batch if isinstance(i, FleetFailure) and states.get(i.name) in UNFINISHED_STATES]
            if not todo and not unloaded:
                done += 1
                continue
            if self.ex.stopping:
                status = RunStatus.INTERRUPTED
                break
            await self._run_batch(number, todo, unloaded)
            failures = self.failures()
            journal.event(run_id, "batch.done", batch=number, failures=failures)
            done += 1
            stop = after_batch(self.ex.stopping, failures, self.options.max_failures, total,
                               halted=self.ex.halted is not None)
            if stop is None:
                continue
            status = stop
            if self.ex.halted is not None:
                context, exc = self.ex.halted
                message = (f"halted in batch {number} of {len(batches)}: {context}: {exc}; nothing more was "
                           "sent: fix what is between wizsync and the API before resuming")
            elif stop == RunStatus.HALTED:
                message = (
                    f"halted after batch {number} of {len(batches)}: {failures} failed chatbot(s) "
                    f"exceed the failure budget of {budget}"
                )
                journal.event(run_id, "run.halted", batch=number, failures=failures, budget=budget)
            break
        counts = journal.item_counts(run_id)
        return RunSummary(run_id, run_ended(status, counts).value, counts, total, len(batches), done, budget, message)


# Secret fields are write-only: a value a run changed cannot be read back, so
# rollback can only name them. (section, path prefix) as the server reports them.
SECRET_PATHS: tuple[tuple[str, str], ...] = (("security", "webhookSecret"), ("mcpServers", "headers"))


def is_secret_change(section: str, path: str) -> bool:
    return any(section == s and (path == p or path.startswith(p + ".")) for s, p in SECRET_PATHS)


def approved_from(
    journal: Journal, plan_run: str, environment: str, shard: Mapping[str, Any] | None = None
) -> dict[str, Approved]:
    """The approved plan of ``plan_run`` (must be a plan run of the same environment, and the same shard)."""
    from ..journal import JournalError

    run = journal.get_run(plan_run)
    planned, applying = _shard_of((run.options or {}).get("shard")), _shard_of(shard)
    if planned != applying:
        if planned and applying and planned[:2] == applying[:2]:
            raise JournalError(f"plan run {plan_run} planned shard {planned[0]}/{planned[1]} with other keys "
                               "(the manifest or the selection changed since): plan again")
        raise JournalError(f"plan run {plan_run} planned {_shard_text(planned)}, not {_shard_text(applying)}: "
                           "apply a plan with the --shard it was made with")
    if run.command != "plan":
        raise JournalError(f"run {plan_run} is a{'n' if run.command[0] in 'aeiou' else ''} {run.command} run, not a plan run: --plan takes the id `wizsync plan` printed")
    if run.environment != environment:
        raise JournalError(f"plan run {plan_run} planned environment '{run.environment}', not '{environment}'")
    if run.status != "completed":
        raise JournalError(f"plan run {plan_run} did not complete (status {run.status}): plan again")
    return {r.name: Approved(r.doc_hash, r.planned_operations) for r in journal.items(plan_run)}


def _shard_of(data: Any) -> tuple[int, int, tuple[str, ...]] | None:
    if not isinstance(data, Mapping):
        return None
    return int(data["index"]), int(data["count"]), tuple(data.get("keys") or ())


def _shard_text(shard: tuple[int, int, tuple[str, ...]] | None) -> str:
    return f"shard {shard[0]}/{shard[1]}" if shard else "the unsharded fleet"
