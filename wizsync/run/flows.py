"""apply, resume and rollback: their items, their refusals, then the batches.

The run's lifecycle (lock, journal row, recorder, signals, how it ends) is
``wizsync.run.lifecycle``; where the items come from is ``wizsync.run.items``; the
per-chatbot work is ``apply.BatchRunner``. What is left here is what the
three commands decide differently: what to plan, what to refuse, what to ask.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wizchat_management.models import Operation
from wizchat_management.vocabulary import wire_value

from ..apply.batches import ApplyOptions, BatchRunner, RunItem, RunSummary, approved_from
from ..apply.decide import Approved
from ..apply.schedule import cut_batches
from ..engine import Executor, Transport
from ..engine.errors import error_info
from ..fleet.load import FetchFailed, FleetItem, list_tenants
from ..fleet.session import Session, manifest_hash, open_session
from ..fleet.shards import Shard
from ..journal import Journal, JournalError, LockTarget, RunLock, RunRecord, new_run_id
from ..journal.states import UNFINISHED_STATES, ItemState, RunStatus
from ..manifest import ManifestError
from ..plan.dryrun import deletes_of, ops_of, plan_fleet, summary_of
from ..report.prompt import confirmation_preview
from ..rollback.restore import ChangedSince, Loss, changed_since
from .items import Entry, Resumption, batches_of, from_fleet, from_journal, from_snapshots, item_rows
from .lifecycle import USER_ERRORS, Lifecycle, prepared, run_lifecycle
from .signals import RunStopped, signal_name

if TYPE_CHECKING:
    from ..report.progress import Reporter

__all__ = ["RunOutcome", "apply_run", "resume_run", "rollback_run", "RefusedError", "USER_ERRORS"]

#: ``confirm(question) -> bool``; None means "no confirmation needed" (--yes or not protected).
Confirm = Callable[[str], bool]


class RefusedError(JournalError):
    """The run refused to start (deletes not allowed, not confirmed, changed manifest...)."""


@dataclass
class RunOutcome:
    summary: RunSummary
    journal_path: Path
    environment: str
    command: str
    losses: list[Loss] = field(default_factory=list)
    forbidden: set[str] = field(default_factory=set)
    deletes: list[str] = field(default_factory=list)
    stopped: RunStopped | None = None  # a signal ended the run before its rollout


def _phase(life: Lifecycle, title: str, total: int | None = None) -> None:
    """A phase before the rollout, with its own progress (a bar on a terminal, a line every few seconds in CI)."""
    if life.reporter is not None:
        life.reporter.phase(title, total)


async def _upfront_plan(life: Lifecycle, ex: Executor, fleet: Sequence[FleetItem], options: ApplyOptions) -> tuple[int, list[str], dict[str, list[Operation]]]:
    """Plan everything before applying anything: deletes and the confirmation need the whole picture.

    Returns (chatbots with changes, deletes named ``chatbot: section[key]``, each chatbot's operations).
    """
    journal, run_id = life.journal, life.run_id
    _phase(life, "planning every chatbot", len(fleet))
    reporter = life.reporter
    advance = (lambda _o: reporter.advance()) if reporter is not None else None
    outcomes = await plan_fleet(ex, fleet, no_prune=options.no_prune, on_outcome=advance)
    if ex.halted is not None:
        # The server carried out a dry-run: nothing more may be sent, and resuming would change
        # another chatbot the same way. The run fails here, naming the one that changed.
        context, exc = ex.halted
        journal.event(run_id, "plan.failed", item=context, **error_info(exc))
        raise RefusedError(f"{context}: {exc}; the run is stopped: no other dry-run or apply was sent")
    rows: list[dict[str, Any]] = []
    deletes: list[str] = []
    changed = 0
    for o in outcomes:
        if o.result is None:
            # Left pending: the item's batch plans it again and records the outcome there
            # (with this plan's requests and retries: its counters stay in the recorder).
            assert o.error is not None
            if not ex.stopping:  # a stopped call sent nothing: not a failure of the plan
                journal.event(run_id, "plan.failed", item=o.item.name, **o.error)
            continue
        counters = life.recorder.take(o.item.name)
        rows.append({"name": o.item.name, "plan_summary": summary_of(o.result), "plan_ops": ops_of(o.result),
                     "revision_before": o.result.revision, **counters})
        s = o.result.plan.summary
        changed += bool(s.create or s.update or s.delete)
        deletes += [f"{o.item.name}: {d}" for d in deletes_of(o.result)]
    journal.record_plans(run_id, rows)
    return changed, deletes, {row["name"]: row["plan_ops"] for row in rows}


def _approved_changes(approved: dict[str, Approved]) -> tuple[int, list[str], dict[str, list[Operation]]]:
    """(chatbots with changes, deletes, operations) of an approved plan run."""
    changed = sum(1 for a in approved.values() if a.ops)
    deletes = [f"{n}: {wire_value(o.section)}[{o.key}]" for n, a in approved.items()
               for o in a.ops if o.op == "delete"]
    return changed, deletes, {n: a.ops for n, a in approved.items()}


def _refuse_deletes(deletes: list[str], options: ApplyOptions) -> None:
    if deletes and not options.allow_deletes:
        shown = "; ".join(deletes[:10]) + (f"; ... ({len(deletes)} in all)" if len(deletes) > 10 else "")
        raise RefusedError(
            f"the plan deletes {len(deletes)} item(s): {shown}. Nothing was applied. "
            "Pass --allow-deletes to apply them, or --no-prune to keep items missing from the documents"
        )


def _confirm_or_refuse(life: Lifecycle, confirm: Confirm | None, question: str) -> None:
    """Ask when a question is needed; one Ctrl-C (or SIGTERM) there aborts at once, nothing sent after it."""
    if confirm is None:
        life.check()
    elif not life.confirm(confirm, question):
        raise RefusedError("not confirmed: nothing was applied")


@contextmanager
def _stops(outcome: RunOutcome) -> Iterator[None]:
    """A stop before the rollout began is how this run ended, not an error: the outcome says so."""
    try:
        yield
    except RunStopped as stop:
        name = signal_name(stop.signum)
        message = (f"aborted at the confirmation prompt ({name}): nothing was sent after it" if stop.at_prompt
                   else f"stopped by {name} before the rollout began: nothing was applied")
        outcome.summary = RunSummary(outcome.summary.run_id, "interrupted", {}, 0, 0, 0, 0, message)
        outcome.stopped = stop


async def _roll_out(
    life: Lifecycle, ex: Executor, options: ApplyOptions, batches: Sequence[Sequence[Entry]], total: int, *,
    approved: dict[str, Approved] | None = None, todo: Sequence[RunItem] | None = None, title: str = "",
) -> RunSummary:
    """The rollout proper, once nothing is left to refuse: graceful Ctrl-C from here on, then the batches.

    Before this point nothing was applied and Ctrl-C aborts at once (the confirmation prompt included).
    """
    life.graceful(ex)
    reporter = life.reporter
    if reporter is not None:
        shown = todo if todo is not None else [i for batch in batches for i in batch if isinstance(i, RunItem)]
        reporter.start(len(shown), [i.tenant for i in shown], batches=len(batches), title=title)
    runner = BatchRunner(life.journal, life.run_id, ex, life.recorder, options, approved=approved, reporter=reporter)
    summary = await runner.run(batches, total)
    life.finish(summary.status, summary.message)
    return summary


async def apply_run(
    session: Session,
    options: ApplyOptions,
    *,
    confirm: Confirm | None = None,
    reporter: Reporter | None = None,
    repin: frozenset[str] = frozenset(),
) -> RunOutcome:
    """``wizsync apply``: a new run of the session's selected chatbots (``repin``: targets to pin anew)."""
    journal = session.open_journal()
    run_id = new_run_id()
    acquire = lambda: RunLock.acquire(session.journal_path, run_id, environment=session.environment,  # noqa: E731
                                      targets=session.lock_targets(), manifest_path=session.manifest_path,
                                      command="apply")
    outcome = RunOutcome(RunSummary(run_id, "failed", {}, 0, 0, 0, 0), session.journal_path, session.environment, "apply")
    with _stops(outcome), run_lifecycle(journal, run_id, acquire, reporter=reporter) as life:
        life.start("apply", session.environment, session.manifest_path, session.manifest_hash, options.as_json())
        # A bad --plan RUN_ID is bad input: refused before the first request.
        approved = approved_from(journal, options.plan_run, session.environment, options.shard) if options.plan_run else None
        async with session.executor(life.recorder) as ex:
            life.watch(ex)
            life.graceful(ex)
            await session.prove_targets(ex, journal, run_id, repin=repin, command="apply")
            _phase(life, "loading the fleet")
            fleet = await from_fleet(session, ex, no_prune=options.no_prune)
            life.check()
            if reporter is not None:
                for notice in fleet.notices:
                    reporter.message(notice)
            outcome.forbidden = fleet.forbidden
            journal.forbid(fleet.forbidden)
            entries = fleet.run_entries
            batches = cut_batches(entries, options.batches)
            journal.add_items(run_id, item_rows(batches))
            if approved is not None:
                changed, outcome.deletes, ops = _approved_changes(approved)
            else:
                changed, outcome.deletes, ops = await _upfront_plan(life, ex, fleet.fleet, options)
            life.check()
            _refuse_deletes(outcome.deletes, options)
            # The prompt shows what it asks about: the changes per section and every delete.
            unloaded = f" ({len(fleet.failed)} more could not be loaded)" if fleet.failed else ""
            _confirm_or_refuse(life, confirm, f"{confirmation_preview(ops, outcome.deletes)}\nApply {changed} changed chatbot(s) of {len(fleet.fleet)}{unloaded} to "
                                              f"'{session.environment}' in {len(batches)} batch(es)?")
            outcome.summary = await _roll_out(life, ex, options, batches, len(entries), approved=approved,
                                              title=f"apply {session.environment}")
    return outcome


# -- resume ------------------------------------------------------------------------


def _resumable(journal: Journal, run_id: str) -> tuple[RunRecord, dict[str, int]]:
    run = journal.get_run(run_id)
    if run.command not in ("apply", "rollback"):
        raise RefusedError(f"run {run_id} is a {run.command} run; only apply and rollback runs can be resumed")
    return run, journal.item_counts(run_id)


def _resume_session(run: RunRecord, journal_path: Path, force: bool, transport: Transport | None = None,
                    manifest_path: Path | None = None) -> tuple[Session, ApplyOptions]:
    """The session the run is resumed in: its manifest (or ``--manifest``, a moved checkout's), unchanged unless --force."""
    given = manifest_path is not None
    if run.options.get("plan_file"):
        raise RefusedError(f"run {run.id} applied the plan file {run.options['plan_file']}: to finish it, apply the "
                           "file again (wizsync apply FILE); the chatbots already applied plan as unchanged")
    if manifest_path is None:
        with Journal.open(journal_path, readonly=True) as j:
            manifest_path = j.manifest_of(run) or Path("")
    try:
        current_hash = manifest_hash(manifest_path)
    except OSError:
        if given:
            raise RefusedError(f"cannot read the manifest {manifest_path} given by --manifest") from None
        raise RefusedError(f"run {run.id} used the manifest {manifest_path}, which cannot be read now: "
                           "if the checkout moved, pass --manifest PATH (the same manifest, where it is now)") from None
    if current_hash != run.manifest_hash and not force:
        raise RefusedError(
            f"the manifest {manifest_path} changed since run {run.id} started; resuming would apply other "
            "documents than the run recorded. Start a new apply, or pass --force to resume with the manifest as it is now"
        )
    options = ApplyOptions.from_json(run.options)
    session = open_session(manifest_path, run.environment, select=options.select, chatbots=options.chatbots,
                           concurrency=options.concurrency, journal=journal_path,
                           check=run.command == "apply", sources=run.command == "apply",
                           shard=Shard.from_json(options.shard) if options.shard else None,
                           transport=transport)
    return session, options


async def _current_items(run: RunRecord, session: Session, ex: Executor, options: ApplyOptions, outcome: RunOutcome, journal: Journal,
                         life: Lifecycle | None = None) -> list[Entry]:
    """What the run's source gives now: the fleet for an apply, the parent's snapshots for a rollback."""
    if run.command == "apply":
        if life is not None:
            _phase(life, "loading the fleet")
        fleet = await from_fleet(session, ex, no_prune=options.no_prune)
        outcome.forbidden = fleet.forbidden
        journal.forbid(outcome.forbidden)
        return fleet.run_entries
    items, outcome.losses = from_snapshots(journal, run.parent_run or "")
    outcome.forbidden = session.forbidden()
    return list(items)


def _recorded(journal: Journal, run_id: str, current: list[Entry], options: ApplyOptions) -> Resumption:
    records = journal.items(run_id)
    if not records:
        # Killed before it recorded its chatbots, so before any request: its chatbots are
        # what it would have listed, cut as it would have cut them. (Without this, resume
        # found nothing to do and called the run completed with nothing applied.)
        journal.add_items(run_id, item_rows(cut_batches(current, options.batches)))
        journal.event(run_id, "resume.items_added", count=len(current))
        records = journal.items(run_id)
    return from_journal(records, current)


def _settle_forced(journal: Journal, run_id: str, resumption: Resumption) -> None:
    """--force: chatbots no longer selected end ``skipped``; changed documents are recorded as now."""
    for name in resumption.missing:
        journal.record_result(run_id, name, ItemState.SKIPPED, error_code="not_selected",
                              error_message="no longer selected by the manifest (resumed with --force)")
    for name in resumption.changed:
        item = resumption.items[name]
        assert isinstance(item, RunItem)
        journal.update_item(run_id, name, doc_hash=item.desired.hash)
        journal.event(run_id, "resume.forced", item=name)


async def resume_run(
    journal_path: Path,
    run_id: str,
    *,
    force: bool = False,
    confirm_for: Callable[[str, bool], Confirm | None] = lambda env, protected: None,
    reporter: Reporter | None = None,
    transport: Transport | None = None,
    manifest: Path | None = None,
) -> RunOutcome:
    """``wizsync resume``: continue an interrupted, halted or failed apply/rollback run, same id.

    ``manifest``: the run's manifest where it is now (a moved checkout); its hash must still match.
    """
    journal = Journal.open(journal_path, create=False)
    with prepared(journal):
        run, counts = _resumable(journal, run_id)
    if run.status is RunStatus.COMPLETED and not any(counts.get(s) for s in UNFINISHED_STATES):
        journal.close()
        summary = RunSummary(run_id, "completed", counts, sum(counts.values()), 0, 0, 0, "nothing to resume: the run completed")
        return RunOutcome(summary, journal_path, run.environment, run.command)
    # The run's own lock first (a second resume of it refuses at once); its targets' once the
    # manifest says where they are.
    acquire = lambda: RunLock.acquire(journal_path, run_id, environment=run.environment,  # noqa: E731
                                      manifest_path=manifest or journal.manifest_of(run), command="resume")
    outcome = RunOutcome(RunSummary(run_id, run.status, counts, 0, 0, 0, 0), journal_path, run.environment, run.command)
    with _stops(outcome), run_lifecycle(journal, run_id, acquire, reporter=reporter) as life:
        session, options = _resume_session(run, journal_path, force, transport, manifest)
        journal.forbid(session.forbidden())
        tenants = {r.tenant for r in journal.items(run_id) if r.tenant} | {t.tenant for t in session.plan.targets}
        life.hold(session.lock_targets(sorted(tenants)))
        async with session.executor(life.recorder) as ex:
            life.watch(ex)
            life.graceful(ex)
            await _prove(session, ex, journal, run_id, every_key=run.command == "rollback")
            current = await _current_items(run, session, ex, options, outcome, journal, life)
            life.check()
            resumption = _recorded(journal, run_id, current, options)
            refusal = resumption.refusal(run_id)
            if refusal is not None and not force:
                raise RefusedError(refusal)
            protected = session.manifest.environments[run.environment].protected
            _confirm_or_refuse(life, confirm_for(run.environment, protected),
                               f"Resume run {run_id}: {len(resumption.todo)} unfinished chatbot(s) of '{run.environment}'?")
            life.reopen(force=force)
            _settle_forced(journal, run_id, resumption)
            approved = approved_from(journal, options.plan_run, run.environment, options.shard) if options.plan_run else None
            batches = batches_of(journal.items(run_id), resumption.items)
            outcome.summary = await _roll_out(life, ex, options, batches, len(resumption.records), approved=approved,
                                              todo=resumption.todo, title=f"resume {run_id}")
    return outcome


# -- rollback ----------------------------------------------------------------------


def _rollback_options(parent: RunRecord, batches: list[int | str] | None, max_failures: int | str | None) -> ApplyOptions:
    parent_options = ApplyOptions.from_json(parent.options)
    return ApplyOptions(
        batches=batches or parent_options.batches,
        max_failures=parent_options.max_failures if max_failures is None else max_failures,
        allow_deletes=True,  # restoring removes what the run created
        concurrency=parent_options.concurrency,
        select=parent_options.select,
        chatbots=parent_options.chatbots,
        shard=parent_options.shard,
    )


async def rollback_run(
    journal_path: Path,
    parent_id: str,
    *,
    batches: list[int | str] | None = None,
    max_failures: int | str | None = None,
    confirm_for: Callable[[str, bool], Confirm | None] = lambda env, protected: None,
    reporter: Reporter | None = None,
    transport: Transport | None = None,
    manifest: Path | None = None,
    force: bool = False,
) -> RunOutcome:
    """``wizsync rollback``: a new run restoring the snapshots of what ``parent_id`` changed.

    A chatbot changed since the run left it (a later run, a hand edit) is left alone unless ``force``.

    ``manifest``: the parent's manifest where it is now (a moved checkout); it only supplies the keys.
    """
    journal = Journal.open(journal_path, create=False)
    with prepared(journal):
        parent = journal.get_run(parent_id)
        if parent.command not in ("apply", "rollback"):
            raise RefusedError(f"run {parent_id} is a {parent.command} run: only apply and rollback runs change chatbots")
        if parent.options.get("plan_file") and manifest is None:
            raise RefusedError(f"run {parent_id} applied a plan file, which holds no manifest: pass --manifest PATH "
                               "(the manifest the plan was made from) for the keys")
        options = _rollback_options(parent, batches, max_failures)
        manifest_path = manifest or journal.manifest_of(parent) or Path("")
        if not manifest_path.is_file():
            raise RefusedError(f"run {parent_id} used the manifest {manifest_path}, which cannot be read now: "
                               "if the checkout moved, pass --manifest PATH (the manifest, where it is now)")
        session = open_session(manifest_path, parent.environment, select=options.select,
                               chatbots=options.chatbots, concurrency=options.concurrency,
                               journal=journal_path, check=False, sources=False,
                               shard=Shard.from_json(options.shard) if options.shard else None,
                               transport=transport)
        journal.forbid(session.forbidden())
        # Before the run exists: a refusal to ask (no terminal) must not leave an interrupted run.
        confirm = confirm_for(parent.environment, session.manifest.environments[parent.environment].protected)
    run_id = new_run_id()
    # The parent's targets: refused while the parent (or any run on them) runs.
    targets = session.lock_targets(sorted({r.tenant for r in journal.items(parent_id) if r.tenant}))
    acquire = lambda: RunLock.acquire(journal_path, run_id, environment=parent.environment,  # noqa: E731
                                      targets=targets, manifest_path=session.manifest_path, command="rollback")
    outcome = RunOutcome(RunSummary(run_id, "failed", {}, 0, 0, 0, 0), journal_path, parent.environment, "rollback",
                         forbidden=session.forbidden())
    with _stops(outcome), run_lifecycle(journal, run_id, acquire, reporter=reporter) as life:
        items, outcome.losses = from_snapshots(journal, parent_id)
        life.start("rollback", parent.environment, session.manifest_path, parent.manifest_hash,
                   {**options.as_json(), "rollback_of": parent_id}, parent_run=parent_id)
        for loss in outcome.losses:
            journal.event(run_id, "rollback.cannot_restore", item=loss.chatbot, field=loss.field, reason=loss.reason)
        run_batches = cut_batches(items, options.batches)
        journal.add_items(run_id, item_rows(run_batches))
        async with session.executor(life.recorder) as ex:
            life.watch(ex)
            life.graceful(ex)
            await _prove(session, ex, journal, run_id, every_key=True)
            changed = await _changed_since_run(ex, session, journal, run_id, parent_id, items)
            left_alone = [] if force else changed
            # The question counts what will be restored, not what the run once changed.
            spared = (f" ({len(left_alone)} more changed since and are left alone; --force restores them)"
                      if left_alone else "")
            _confirm_or_refuse(life, confirm, f"Roll back {len(items) - len(left_alone)} chatbot(s) of "
                                              f"'{parent.environment}' changed by run {parent_id}{spared}?")
            _record_left_alone(journal, run_id, parent_id, changed, force=force)
            outcome.summary = await _roll_out(life, ex, options, run_batches, len(items), title=f"rollback {parent_id}")
        if left_alone:
            note = (f"left alone, changed since run {parent_id} left them: {', '.join(map(str, left_alone[:20]))}"
                    + (f" ... ({len(left_alone)} in all)" if len(left_alone) > 20 else "")
                    + "; `wizsync rollback --force` restores them anyway")
            outcome.summary.message = "; ".join(m for m in (outcome.summary.message, note) if m)
    return outcome


async def _prove(session: Session, ex: Executor, journal: Journal, run_id: str, *, every_key: bool) -> None:
    """The wrong-target proof before anything but listings is sent.

    A key whose listing was not answered is unproven. Fleet loading fails only
    that key's chatbots; items taken from snapshots (a rollback, or its resume)
    do not pass through it, so there ``every_key`` refuses the run instead.
    """
    proof = await session.prove_targets(ex, journal, run_id, command="apply")
    unproven = {label: page for label, page in proof.listings.items() if isinstance(page, FetchFailed)}
    if every_key and unproven:
        raise RefusedError("a rollback needs every target proved, and these could not be (nothing was applied): "
                           + "; ".join(f"{label}: {page.error['message']}" for label, page in sorted(unproven.items())))


async def _changed_since_run(
    ex: Executor, session: Session, journal: Journal, run_id: str, parent_id: str, items: Sequence[RunItem]
) -> list[ChangedSince]:
    """The chatbots whose live revision is no longer the one the parent run (or a rollback of it) left.

    One listing per tenant (it carries every chatbot's revision): the target proof's, just made.
    """
    proven = session.proven_listings() or {}
    pairs = sorted({(i.tenant, i.environment) for i in items})
    missing = [p for p in pairs if p[1] != session.environment or not isinstance(proven.get(p[0]), list)]
    listed: dict[Any, Any] = {p: proven[p[0]] for p in pairs if p not in missing}
    listed.update(await list_tenants(ex, session.manifest, missing) if missing else {})
    current: dict[str, int] = {}
    for result in listed.values():
        if isinstance(result, ManifestError):
            raise result
        current.update({c.id: c.revision for c in result})
    restored: dict[str, set[int]] = {}
    for earlier in journal.runs(None, command="rollback"):
        if earlier.parent_run == parent_id and earlier.id != run_id:
            for r in journal.items(earlier.id):
                if r.revision_after is not None:
                    restored.setdefault(r.name, set()).add(r.revision_after)
    return changed_since(journal.items(parent_id), items, current, restored)


def _record_left_alone(journal: Journal, run_id: str, parent_id: str, changed: Sequence[ChangedSince], *,
                       force: bool) -> None:
    """Journal each changed chatbot as skipped, or with ``force`` an event that it is restored anyway."""
    for c in changed:
        if force:
            journal.event(run_id, "rollback.forced", item=c.chatbot, left=c.left, now=c.now)
            continue
        journal.record_result(run_id, c.chatbot, ItemState.SKIPPED, error_code="changed_since",
                              error_message=f"changed since run {parent_id} left it (revision {c.left}, now "
                                            f"{'gone' if c.now is None else c.now}): left alone; --force restores it")


# -- a plan file -------------------------------------------------------------------


async def apply_plan_file(
    plan_file: Any,
    options: ApplyOptions,
    journal_path: Path,
    *,
    confirm_for: Callable[[str, bool], Confirm | None] = lambda env, protected: None,
    reporter: Reporter | None = None,
    transport: Transport | None = None,
) -> RunOutcome:
    """``wizsync apply FILE``: exactly the plan file's chatbots and operations, with no manifest.

    Keys and secrets come from the environment (the variables the file names). A chatbot whose
    fresh plan differs from the file's, or that moved past the revision it was planned at, is
    ``drifted`` and not applied.
    """
    import os

    from ..fleet.session import make_executor
    from ..render.secrets import forbidden_values

    pf = plan_file
    keys = pf.key_specs()
    entries = pf.chatbots()
    documents = [pf.document(e) for e in entries]
    items = [RunItem(name=e["name"], tenant=e["tenant"], environment=e["environment"], chatbot_id=e["chatbot_id"],
                     desired=doc, prune=bool(e["prune"])) for e, doc in zip(entries, documents)]
    missing = [err for item, doc in zip(items, documents) for err in _missing_secrets(item.name, doc.secret_names)]
    if missing:
        raise missing[0]
    forbidden = forbidden_values({n for doc in documents for n in doc.secret_names}, os.environ,
                                 [k.api_key for k in keys.values()])
    approved = {e["name"]: Approved(e["doc_hash"], pf.operations(i), revision=e.get("revision"))
                for i, e in enumerate(entries)}
    options.plan_run = str(pf.data.get("plan_run") or pf.path.name)
    changed, deletes, ops = _approved_changes(approved)
    _refuse_deletes(deletes, options)
    confirm = confirm_for(pf.environment, pf.protected)
    journal = Journal.open(journal_path)
    journal.forbid(forbidden)
    run_id = new_run_id()
    targets = sorted({LockTarget.of(keys[i.label].base_url, i.tenant, i.environment) for i in items})
    acquire = lambda: RunLock.acquire(journal_path, run_id, environment=pf.environment, targets=targets,  # noqa: E731
                                      manifest_path=pf.path, command="apply")
    outcome = RunOutcome(RunSummary(run_id, "failed", {}, 0, 0, 0, 0), journal_path, pf.environment, "apply",
                         forbidden=forbidden, deletes=deletes)
    with _stops(outcome), run_lifecycle(journal, run_id, acquire, reporter=reporter) as life:
        life.start("apply", pf.environment, pf.path, pf.hash, {**options.as_json(), "plan_file": str(pf.path)})
        batches = cut_batches(items, options.batches)
        journal.add_items(run_id, item_rows(batches))
        _confirm_or_refuse(life, confirm, f"{confirmation_preview(ops, deletes)}\nApply {changed} changed chatbot(s) of "
                                          f"{len(items)} from the plan file {pf.path.name} to '{pf.environment}'?")
        kwargs = {"http": transport} if transport is not None else {}
        async with make_executor(keys, options.concurrency, life.recorder, **kwargs) as ex:
            life.watch(ex)
            life.graceful(ex)
            outcome.summary = await _roll_out(life, ex, options, batches, len(items), approved=approved,
                                              title=f"apply {pf.path.name}")
    return outcome


def _missing_secrets(chatbot: str, secret_names: Iterable[str]) -> list[ManifestError]:
    import os

    return [ManifestError(f"secret {name} is not set in the environment (needed by chatbot '{chatbot}' of the plan file)",
                          hint=f"Export {name} before applying the plan")
            for name in secret_names if not os.environ.get(name)]
