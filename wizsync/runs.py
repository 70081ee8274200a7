"""The life of an apply, resume or rollback run: lock, journal, plan, confirm, batches.

Each function takes the run from "nothing sent yet" to a final status in the
journal, holding the OS-level run lock throughout (released by the kernel
if the process is killed). The per-chatbot work is ``apply.BatchRunner``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .apply import UNFINISHED_STATES, ApplyOptions, Approved, BatchRunner, RunItem, RunSummary, approved_from
from .engine import Executor
from .fleet import FleetItem, load_fleet
from .journal import Journal, JournalError, RunLock, new_run_id
from .manifest import ManifestError
from .plan import deletes_of, ops_of, plan_fleet, summary_of
from .recorder import Recorder
from .rollback import Loss, rollback_items
from .rollout import cut_batches, wave_order
from .session import Session, manifest_hash, open_session

__all__ = ["RunOutcome", "apply_run", "resume_run", "rollback_run", "RefusedError"]

#: ``confirm(question) -> bool``; None means "no confirmation needed" (--yes or not protected).
Confirm = Callable[[str], bool]


class RefusedError(JournalError):
    """The run refused to start (deletes not allowed, not confirmed, changed manifest...)."""


# A run that stops on one of these failed; on anything else it was interrupted.
USER_ERRORS = (ManifestError, JournalError)


@dataclass
class RunOutcome:
    summary: RunSummary
    journal_path: Path
    environment: str
    command: str
    losses: list[Loss] = field(default_factory=list)
    forbidden: set[str] = field(default_factory=set)
    deletes: list[str] = field(default_factory=list)


def _ordered(session: Session, fleet: Sequence[FleetItem]) -> list[FleetItem]:
    waves = session.manifest.rollout.ordered_waves
    return [fleet[i] for i in wave_order(waves, [f.target.wave for f in fleet])]


def _item_rows(batches: Sequence[Sequence[RunItem]]) -> list[dict[str, Any]]:
    rows, position = [], 0
    for number, batch in enumerate(batches, 1):
        for item in batch:
            rows.append({"name": item.name, "tenant": item.tenant, "chatbot_id": item.chatbot_id,
                         "batch": number, "position": position, "doc_hash": item.desired.hash})  # fmt: skip
            position += 1
    return rows


def _batches_from_journal(journal: Journal, run_id: str, items: dict[str, RunItem]) -> list[list[RunItem]]:
    batches: dict[int, list[RunItem]] = {}
    for record in journal.items(run_id):
        if record.name in items:
            batches.setdefault(record.batch or 0, []).append(items[record.name])
    return [batches[n] for n in sorted(batches)]


async def _upfront_plan(journal: Journal, run_id: str, ex: Executor, fleet: Sequence[FleetItem], options: ApplyOptions, recorder: Recorder) -> tuple[int, list[str]]:
    """Plan everything before applying anything: deletes and the confirmation need the whole picture.

    Returns (chatbots with changes, deletes named ``chatbot: section[key]``).
    """
    outcomes = await plan_fleet(ex, fleet, no_prune=options.no_prune)
    rows, deletes, changed = [], [], 0
    for o in outcomes:
        if o.result is None:
            # Left pending: the item's batch plans it again and records the outcome there
            # (with this plan's requests and retries: its counters stay in the recorder).
            assert o.error is not None
            journal.event(run_id, "plan.failed", item=o.item.name, **o.error)
            continue
        counters = recorder.take(o.item.name)
        rows.append({"name": o.item.name, "plan_summary": summary_of(o.result), "plan_ops": ops_of(o.result),
                     "revision_before": o.result.revision, **counters})  # fmt: skip
        s = o.result.plan.summary
        changed += bool(s.create or s.update or s.delete)
        deletes += [f"{o.item.name}: {d}" for d in deletes_of(o.result)]
    journal.record_plans(run_id, rows)
    return changed, deletes


def _finish(journal: Journal, summary: RunSummary) -> None:
    journal.finish_run(summary.run_id, summary.status, error=summary.message or None)


def _confirm_or_refuse(confirm: Confirm | None, question: str) -> None:
    if confirm is not None and not confirm(question):
        raise RefusedError("not confirmed: nothing was applied")


async def _roll_out(
    journal: Journal, run_id: str, ex: Executor, recorder: Recorder, options: ApplyOptions,
    batches: list[list[RunItem]], total: int, *, approved: dict[str, Approved] | None = None,
    reporter: Any = None, todo: Sequence[RunItem] | None = None, title: str = "",
) -> RunSummary:  # fmt: skip
    """The rollout proper, once nothing is left to refuse: graceful Ctrl-C from here on, then the batches.

    Before this point nothing was applied and Ctrl-C aborts at once (the confirmation prompt included).
    """
    ex.stop_on_signals()
    if reporter is not None:
        shown = todo if todo is not None else [i for batch in batches for i in batch]
        reporter.start(len(shown), [i.tenant for i in shown], batches=len(batches), title=title)
    runner = BatchRunner(journal, run_id, ex, recorder, options, approved=approved, reporter=reporter)
    return await runner.run(batches, total)


async def apply_run(
    session: Session,
    options: ApplyOptions,
    *,
    confirm: Confirm | None = None,
    reporter: Any = None,
) -> RunOutcome:
    """``wizsync apply``: a new run of the session's selected chatbots."""
    journal = session.open_journal()
    run_id = new_run_id()
    lock = RunLock.acquire(session.journal_path, run_id, environment=session.environment,
                           manifest_path=session.manifest_path, manifest_hash=session.manifest_hash, command="apply")  # fmt: skip
    outcome = RunOutcome(RunSummary(run_id, "failed", {}, 0, 0, 0, 0), session.journal_path, session.environment, "apply")
    try:
        journal.start_run("apply", session.environment, session.manifest_path, session.manifest_hash,
                          options.as_json(), run_id=run_id)  # fmt: skip
        recorder = Recorder(journal, run_id)
        with journal.closing_run(run_id, USER_ERRORS):
            # A bad --plan RUN_ID is bad input: refused before the first request.
            approved: dict[str, Approved] | None = (
                approved_from(journal, options.plan_run, session.environment) if options.plan_run else None
            )
            async with session.executor(recorder) as ex:
                fleet = _ordered(session, await load_fleet(ex, session.plan))
                outcome.forbidden = session.forbidden(fleet)
                journal.forbid(outcome.forbidden)
                items = [RunItem.from_fleet(f, no_prune=options.no_prune) for f in fleet]
                batches = cut_batches(items, options.batches)
                journal.add_items(run_id, _item_rows(batches))
                if approved is not None:
                    changed = sum(1 for a in approved.values() if a.ops)
                    deletes = [f"{n}: {o['section']}[{o.get('key')}]" for n, a in approved.items()
                               for o in a.ops if o.get("op") == "delete"]  # fmt: skip
                else:
                    changed, deletes = await _upfront_plan(journal, run_id, ex, fleet, options, recorder)
                outcome.deletes = deletes
                if deletes and not options.allow_deletes:
                    shown = "; ".join(deletes[:10]) + (f"; ... ({len(deletes)} in all)" if len(deletes) > 10 else "")
                    raise RefusedError(
                        f"the plan deletes {len(deletes)} item(s): {shown}. Nothing was applied. "
                        "Pass --allow-deletes to apply them, or --no-prune to keep items missing from the documents"
                    )
                _confirm_or_refuse(confirm, f"Apply {changed} changed chatbot(s) of {len(items)} to "
                                            f"'{session.environment}' in {len(batches)} batch(es)?")  # fmt: skip
                outcome.summary = await _roll_out(journal, run_id, ex, recorder, options, batches, len(items),
                                                  approved=approved, reporter=reporter, title=f"apply {session.environment}")  # fmt: skip
            recorder.flush()
            _finish(journal, outcome.summary)
            return outcome
    finally:
        if reporter is not None:
            reporter.finish()
        lock.release()
        journal.close()


async def resume_run(
    journal_path: Path,
    run_id: str,
    *,
    force: bool = False,
    confirm_for: Callable[[str, bool], Confirm | None] = lambda env, protected: None,
    reporter: Any = None,
) -> RunOutcome:
    """``wizsync resume``: continue an interrupted, halted or failed apply/rollback run, same id."""
    journal = Journal.open(journal_path, create=False)
    try:
        run = journal.get_run(run_id)
        if run.command not in ("apply", "rollback"):
            raise RefusedError(f"run {run_id} is a {run.command} run; only apply and rollback runs can be resumed")
        counts = journal.item_counts(run_id)
        if run.status == "completed" and not any(counts.get(s) for s in UNFINISHED_STATES):
            summary = RunSummary(run_id, "completed", counts, sum(counts.values()), 0, 0, 0, "nothing to resume: the run completed")
            return RunOutcome(summary, journal_path, run.environment, run.command)
        lock = RunLock.acquire(journal_path, run_id, environment=run.environment, manifest_path=run.manifest_path,
                               manifest_hash=run.manifest_hash, command="resume")  # fmt: skip
    except BaseException:
        journal.close()
        raise
    outcome = RunOutcome(RunSummary(run_id, run.status, counts, 0, 0, 0, 0), journal_path, run.environment, run.command)
    reopened = False
    try:
        manifest_path = Path(run.manifest_path or "")
        try:
            current_hash = manifest_hash(manifest_path)
        except OSError:
            raise RefusedError(f"run {run_id} used the manifest {manifest_path}, which cannot be read now") from None
        if current_hash != run.manifest_hash and not force:
            raise RefusedError(
                f"the manifest {manifest_path} changed since run {run_id} started; resuming would apply other "
                "documents than the run recorded. Start a new apply, or pass --force to resume with the manifest as it is now"
            )
        options = ApplyOptions.from_json(run.options)
        session = open_session(manifest_path, run.environment, select=options.select, chatbots=options.chatbots,
                               concurrency=options.concurrency, journal=journal_path,
                               check=run.command == "apply", sources=run.command == "apply")  # fmt: skip
        journal.forbid(session.forbidden())
        recorder = Recorder(journal, run_id)
        async with session.executor(recorder) as ex:
            if run.command == "apply":
                fleet = await load_fleet(ex, session.plan)
                outcome.forbidden = session.forbidden(fleet)
                journal.forbid(outcome.forbidden)
                ordered = [RunItem.from_fleet(f, no_prune=options.no_prune) for f in _ordered(session, fleet)]
            else:
                ordered, outcome.losses = rollback_items(journal, run.parent_run or "")
                outcome.forbidden = session.forbidden()
            items = {i.name: i for i in ordered}
            records = journal.items(run_id)
            if not records:
                # Killed before it recorded its chatbots, so before any request: its chatbots are
                # what it would have listed, cut as it would have cut them. (Without this, resume
                # found nothing to do and called the run completed with nothing applied.)
                journal.add_items(run_id, _item_rows(cut_batches(ordered, options.batches)))
                journal.event(run_id, "resume.items_added", count=len(ordered))
                records = journal.items(run_id)
            unfinished = [r for r in records if r.state in UNFINISHED_STATES]
            changed = [r.name for r in unfinished if r.name in items and r.doc_hash not in (None, items[r.name].desired.hash)]
            missing = [r.name for r in unfinished if r.name not in items]
            if (changed or missing) and not force:
                parts = []
                if changed:
                    parts.append(f"rendered documents changed for {', '.join(changed[:10])}")
                if missing:
                    parts.append(f"no longer selected: {', '.join(missing[:10])}")
                raise RefusedError(f"run {run_id} cannot resume as recorded: {'; '.join(parts)}. "
                                   "Start a new apply, or pass --force to resume with what the manifest renders now")  # fmt: skip
            protected = session.manifest.environments[run.environment].protected
            todo = sum(1 for r in unfinished if r.name in items)
            _confirm_or_refuse(confirm_for(run.environment, protected),
                               f"Resume run {run_id}: {todo} unfinished chatbot(s) of '{run.environment}'?")  # fmt: skip
            journal.reopen_run(run_id, force=force)
            reopened = True
            for name in missing:
                journal.record_result(run_id, name, "skipped", error_code="not_selected",
                                      error_message="no longer selected by the manifest (resumed with --force)")  # fmt: skip
            for name in changed:
                journal.update_item(run_id, name, doc_hash=items[name].desired.hash)
                journal.event(run_id, "resume.forced", item=name)
            approved = approved_from(journal, options.plan_run, run.environment) if options.plan_run else None
            batches = _batches_from_journal(journal, run_id, items)
            outcome.summary = await _roll_out(
                journal, run_id, ex, recorder, options, batches, len(records), approved=approved, reporter=reporter,
                todo=[items[r.name] for r in unfinished if r.name in items], title=f"resume {run_id}",
            )  # fmt: skip
        recorder.flush()
        _finish(journal, outcome.summary)
        return outcome
    except BaseException as exc:
        if reopened:  # leave the run in a state that says why it stopped
            failed = isinstance(exc, (ManifestError, JournalError))
            journal.finish_run(run_id, "failed" if failed else "interrupted", error=str(exc) if failed else None)
        raise
    finally:
        if reporter is not None:
            reporter.finish()
        lock.release()
        journal.close()


async def rollback_run(
    journal_path: Path,
    parent_id: str,
    *,
    batches: list[int | str] | None = None,
    max_failures: int | str | None = None,
    confirm_for: Callable[[str, bool], Confirm | None] = lambda env, protected: None,
    reporter: Any = None,
) -> RunOutcome:
    """``wizsync rollback``: a new run restoring the snapshots of what ``parent_id`` changed."""
    journal = Journal.open(journal_path, create=False)
    try:
        parent = journal.get_run(parent_id)
        if parent.command not in ("apply", "rollback"):
            raise RefusedError(f"run {parent_id} is a {parent.command} run: only apply and rollback runs change chatbots")
        parent_options = ApplyOptions.from_json(parent.options)
        options = ApplyOptions(
            batches=batches or parent_options.batches,
            max_failures=parent_options.max_failures if max_failures is None else max_failures,
            allow_deletes=True,  # restoring removes what the run created
            concurrency=parent_options.concurrency,
            select=parent_options.select,
            chatbots=parent_options.chatbots,
        )
        session = open_session(Path(parent.manifest_path or ""), parent.environment, select=parent_options.select,
                               chatbots=parent_options.chatbots, concurrency=parent_options.concurrency,
                               journal=journal_path, check=False, sources=False)  # fmt: skip
        journal.forbid(session.forbidden())
        # Before the run exists: a refusal to ask (no terminal) must not leave an interrupted run.
        confirm = confirm_for(parent.environment, session.manifest.environments[parent.environment].protected)
        run_id = new_run_id()
        # Same environment+manifest lock as the parent: refused while the parent (or any run there) runs.
        lock = RunLock.acquire(journal_path, run_id, environment=parent.environment, manifest_path=parent.manifest_path,
                               manifest_hash=parent.manifest_hash, command="rollback")  # fmt: skip
    except BaseException:
        journal.close()
        raise
    outcome = RunOutcome(RunSummary(run_id, "failed", {}, 0, 0, 0, 0), journal_path, parent.environment, "rollback",
                         forbidden=session.forbidden())  # fmt: skip
    try:
        items, outcome.losses = rollback_items(journal, parent_id)
        journal.start_run("rollback", parent.environment, parent.manifest_path, parent.manifest_hash,
                          {**options.as_json(), "rollback_of": parent_id}, parent_run=parent_id, run_id=run_id)  # fmt: skip
        recorder = Recorder(journal, run_id)
        with journal.closing_run(run_id, USER_ERRORS):
            for loss in outcome.losses:
                journal.event(run_id, "rollback.cannot_restore", item=loss.chatbot, field=loss.field, reason=loss.reason)
            run_batches = cut_batches(items, options.batches)
            journal.add_items(run_id, _item_rows(run_batches))
            _confirm_or_refuse(confirm,
                               f"Roll back {len(items)} chatbot(s) of '{parent.environment}' changed by run {parent_id}?")  # fmt: skip
            async with session.executor(recorder) as ex:
                outcome.summary = await _roll_out(journal, run_id, ex, recorder, options, run_batches, len(items),
                                                  reporter=reporter, title=f"rollback {parent_id}")  # fmt: skip
            recorder.flush()
            _finish(journal, outcome.summary)
            return outcome
    finally:
        if reporter is not None:
            reporter.finish()
        lock.release()
        journal.close()
