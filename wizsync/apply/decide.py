"""What to do with one chatbot at each step of its apply, decided from typed values alone.

The batch runner (``batches``) makes the calls and writes the journal; every
choice between them is a function here, over what the journal held before the
attempt (``Prior``), what the fresh dry-run says (the SDK's ``ApplyResult``),
what ``--plan`` approved (``Approval``) and how a call failed
(``CallFailure``). Each returns an action: ``Finish`` (record this outcome) or
``Proceed`` (snapshot, mark ``applying``, send the apply). No I/O, so
tests/test_apply_decide.py covers every branch as a table.

``may_have_applied`` is the one rule for "what may this run have changed on
this chatbot": apply keeps it in ``applied_ops`` across attempts, and rollback
restores exactly it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from wizchat_management import ApplyResult
from wizchat_management.models import Operation
from wizchat_management.vocabulary import wire_value

from ..engine.retry import outcome_unknown
from ..journal import ItemRecord
from ..journal.states import ItemState, RunStatus
from ..plan.dryrun import deletes_of, error_info, has_changes, ops_of
from .schedule import budget_exceeded

__all__ = [
    "Approved",
    "Approval",
    "CallFailure",
    "Finish",
    "Prior",
    "Proceed",
    "after_apply",
    "after_batch",
    "after_apply_failure",
    "after_plan",
    "after_snapshot_failure",
    "carried_forward",
    "drift",
    "failed_with",
    "may_have_applied",
    "run_ended",
]


class OpsRecord(Protocol):
    """The journal's view of one item that ``may_have_applied`` reads (an ``ItemRecord``)."""

    @property
    def state(self) -> str: ...

    @property
    def applied_operations(self) -> list[Operation] | None: ...

    @property
    def planned_operations(self) -> list[Operation]: ...


def may_have_applied(record: OpsRecord) -> list[Operation]:
    """The operations this run applied to the chatbot over all its attempts, or may have.

    ``applied_ops`` (what the server said it applied, accumulated across attempts), plus
    the plan of an ``applying`` item (its apply was sent; the answer never came), or of
    an ``applied`` item whose result recorded nothing. Noops left out, each operation once.
    A later attempt's result (or an all-noop re-plan) must not hide what an earlier one did.
    """
    applied = list(record.applied_operations or [])
    uncertain = record.state == ItemState.APPLYING or (record.state == ItemState.APPLIED and not applied)
    ops = applied + (record.planned_operations if uncertain else [])
    out: list[Operation] = []
    for op in ops:
        if op.op != "noop" and op not in out:
            out.append(op)
    return out


@dataclass(frozen=True)
class Prior:
    """What the journal holds for the item before this attempt."""

    state: str
    attempts: int  # apply requests this run already sent for it
    earlier: list[Operation]  # may_have_applied: what earlier attempts changed, or may have

    @classmethod
    def of(cls, record: ItemRecord) -> Prior:
        return cls(record.state, record.attempts, may_have_applied(record))


@dataclass(frozen=True)
class Approved:
    """What a plan run showed for one chatbot: ``--plan RUN_ID`` applies exactly this."""

    doc_hash: str | None
    ops: list[Operation]
    revision: int | None = None  # a plan file's: the chatbot must still be at the revision it planned against


@dataclass(frozen=True)
class Approval:
    """Under ``--plan``: the plan's name and what it showed for this chatbot (None: not in it)."""

    plan_run: str | None
    approved: Approved | None


@dataclass(frozen=True)
class CallFailure:
    """A call that ended in an error, as the decisions need it."""

    code: str
    message: str
    # The write may have been carried out (engine.retry.outcome_unknown): no answer, a 5xx, an answer
    # too large to read, or a 2xx/422 answer that could not be read.
    uncertain: bool = False

    @classmethod
    def of(cls, exc: BaseException) -> CallFailure:
        info = error_info(exc)
        return cls(info["code"], info["message"], outcome_unknown(exc))


@dataclass(frozen=True)
class Finish:
    """Record how this attempt ended (``Journal.record_result``); ``detail`` is the progress line's."""

    state: ItemState
    detail: str = ""
    applied_ops: list[Operation] | None = None  # None: keep what the journal has
    revision_after: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    error_section: str | None = None
    error_key: str | None = None

    def fields(self) -> dict[str, Any]:
        """The ``record_result`` keywords this outcome sets."""
        names = ("applied_ops", "revision_after", "error_code", "error_message", "error_section", "error_key")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


@dataclass(frozen=True)
class Proceed:
    """Snapshot the live config, mark ``applying``, send the apply."""

    # Before any apply was sent a newer snapshot replaces an older one (an apply stopped before
    # sending left one behind); after, the first wins (the live config may be this run's own).
    replace_snapshot: bool


def carried_forward(prior: Prior) -> list[Operation] | None:
    """``applied_ops`` to write before this attempt's dry-run, or None.

    An ``applying`` item's plan is about to be replaced by the fresh one: whatever this
    attempt ends in (even a failed dry-run), rollback must still see what the uncertain
    attempt may have applied.
    """
    return prior.earlier if prior.state == ItemState.APPLYING and prior.earlier else None


def failed_with(failure: CallFailure) -> Finish:
    """A failed dry-run (or fleet load): the error as it is, nothing was sent to change the chatbot."""
    return Finish(ItemState.FAILED, failure.message, error_code=failure.code, error_message=failure.message)


def after_plan(plan: ApplyResult, prior: Prior, approval: Approval | None, doc_hash: str, allow_deletes: bool) -> Finish | Proceed:
    """Given the fresh dry-run: nothing to do, refuse (drift, deletes), or go on to apply."""
    if not has_changes(plan):
        # An item this run already sent an apply for, now all noop, was applied
        # (before a crash or a lost answer): say so rather than "unchanged".
        state = ItemState.APPLIED if prior.attempts > 0 else ItemState.UNCHANGED
        return Finish(state, f"rev {plan.revision}", revision_after=plan.revision)
    refusal = drift(plan, approval, doc_hash)
    if refusal is not None:
        return Finish(ItemState.DRIFTED, refusal, error_code="drifted", error_message=f"not applied: {refusal}")
    deletes = deletes_of(plan)
    if deletes and not allow_deletes:
        message = f"the plan deletes {', '.join(deletes)}; pass --allow-deletes (or --no-prune) to apply it"
        return Finish(ItemState.FAILED, message, error_code="deletes_refused", error_message=message)
    return Proceed(replace_snapshot=prior.attempts == 0 and not prior.earlier)


def drift(plan: ApplyResult, approval: Approval | None, doc_hash: str) -> str | None:
    """Why this chatbot may not be applied under ``--plan`` (``approval``), or None."""
    if approval is None:
        return None
    approved, run = approval.approved, approval.plan_run
    if approved is None:
        return f"not in plan run {run}"
    if approved.doc_hash is not None and approved.doc_hash != doc_hash:
        return f"its rendered document changed since plan run {run}"
    if approved.revision is not None and plan.revision != approved.revision:
        return f"it changed on the server since plan run {run} (revision {approved.revision} → {plan.revision})"
    if _normal_ops(ops_of(plan)) != _normal_ops(approved.ops):
        return f"its fresh plan differs from what plan run {run} showed"
    return None


def _normal_ops(ops: Sequence[Operation] | None) -> list[Any]:
    """Operations in a comparable form (order-insensitive, noops left out)."""
    out = [
        (wire_value(o.op), wire_value(o.section), o.key,
         sorted(((c.path, repr(c.before), repr(c.after)) for c in (o.changes or [])), key=repr))
        for o in ops or []
        if o.op != "noop"
    ]
    return sorted(out, key=repr)


def after_snapshot_failure(failure: CallFailure) -> Finish:
    message = f"snapshot (get_config) failed: {failure.message}"
    return Finish(ItemState.FAILED, message, error_code=failure.code, error_message=message)


def after_apply_failure(failure: CallFailure, planned: list[Operation], earlier: list[Operation]) -> Finish:
    """An apply that ended in an error; when it may have reached the server, its plan joins ``applied_ops``.

    Rollback must see what it may have changed; a resume settles it by a fresh plan.
    """
    if not failure.uncertain:
        return Finish(ItemState.FAILED, failure.message, error_code=failure.code, error_message=failure.message)
    message = failure.message + " (the apply may have reached the server: resume settles it)"
    return Finish(ItemState.FAILED, message, applied_ops=_joined(earlier, planned), error_code=failure.code, error_message=message)


def after_apply(result: ApplyResult, earlier: list[Operation]) -> Finish:
    """The server's answer: ``applied``, or ``failed`` with the 422 detail (what ran before it is kept)."""
    applied = list(result.applied)
    kept = _joined(earlier, applied)  # this run's, over all attempts
    if result.failed is None:
        return Finish(ItemState.APPLIED, f"rev {result.revision}", applied_ops=kept, revision_after=result.revision)
    f = result.failed
    key = f" {f.key}" if f.key else ""
    message = f"{wire_value(f.section)}{key}: {f.code}: {f.message} ({len(applied)} operation(s) before it kept)"
    return Finish(
        ItemState.FAILED, message, applied_ops=kept, revision_after=result.revision,
        error_code=f.code, error_message=f.message, error_section=wire_value(f.section), error_key=f.key,
    )


def _joined(earlier: list[Operation], more: list[Operation]) -> list[Operation]:
    return earlier + [op for op in more if op not in earlier]


# -- the run ----------------------------------------------------------------------------------


def after_batch(stopping: bool, failures: int, max_failures: int | str, total: int,
                halted: bool = False) -> RunStatus | None:
    """After a batch: stop (``halted`` past the failure budget or when an answer stopped the run,
    ``interrupted`` on a stop request) or go on (None)."""
    if halted:
        return RunStatus.HALTED  # the server carried out a dry-run (engine.retry.halts_run), not a Ctrl-C
    if stopping:
        return RunStatus.INTERRUPTED
    if budget_exceeded(failures, max_failures, total):
        return RunStatus.HALTED
    return None


def run_ended(status: RunStatus, counts: Mapping[str, int]) -> RunStatus:
    """How the run ends, from how the batches ended (``status``) and the items' states (``counts``)."""
    unfinished = any(n and ItemState(state).is_unfinished for state, n in counts.items())
    if status == RunStatus.COMPLETED and unfinished:
        return RunStatus.FAILED
    if status == RunStatus.INTERRUPTED and not unfinished:
        # Ctrl-C during the last batch, and every chatbot still finished: nothing to resume.
        return RunStatus.COMPLETED
    return status
