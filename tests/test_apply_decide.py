"""Apply's decisions as tables: each row is what the journal held, what the fresh plan says and
what was approved → the action the batch runner must carry out. No HTTP, no SQLite.

The end-to-end tests (test_apply_*.py, test_resume*.py, test_apply_crash.py) prove the runner
carries these actions out against the emulator; here every branch of every decision is one row.
"""

from __future__ import annotations

from typing import Any

import pytest

from wizchat_management import ApplyResult, WizChatApiError, WizChatConnectionError, WizChatTimeoutError
from wizchat_management.models import Operation
from wizsync.apply.decide import (
    Approval,
    Approved,
    CallFailure,
    Finish,
    Prior,
    Proceed,
    after_apply,
    after_apply_failure,
    after_batch,
    after_plan,
    after_snapshot_failure,
    carried_forward,
    failed_with,
    may_have_applied,
    run_ended,
)
from wizsync.engine import ResponseTooLarge
from wizsync.journal import ItemRecord
from wizsync.journal.states import ItemState as S
from wizsync.journal.states import RunStatus as R


def op(kind: str, section: str, key: str | None = None, *changes: tuple[str, Any, Any]) -> Operation:
    """One of the SDK's operations, as a dry-run answers it."""
    return Operation.model_validate({"op": kind, "section": section, "key": key,
                                     "changes": [{"path": p, "before": b, "after": a} for p, b, a in changes] or None})


def stored(ops: list[Operation] | None) -> list[dict[str, Any]] | None:
    """Operations as the journal stores them (wire form)."""
    return None if ops is None else [o.model_dump(mode="json") for o in ops]


TEMP = op("update", "core", None, ("temperature", 0.2, 0.4))
NAME = op("update", "core", None, ("name", "a", "b"))
ADD_MCP = op("create", "mcpServers", "search")
DROP_DOMAIN = op("delete", "domains", "old.example.com")
NOOP = op("noop", "telemetry")


def result(*ops: Operation, revision: int = 7, applied: list[Operation] | None = None,
           failed: dict[str, Any] | None = None) -> ApplyResult:
    counts = {k: sum(1 for o in ops if o.op == k) for k in ("create", "update", "delete", "noop")}
    return ApplyResult.model_validate({
        "dryRun": applied is None, "applied": stored(applied or []), "failed": failed, "revision": revision,
        "plan": {"summary": counts, "operations": stored(list(ops))},
    })


def record(state: S, applied_ops: list[Operation] | None = None, plan_ops: list[Operation] | None = None,
           attempts: int = 0) -> ItemRecord:
    return ItemRecord("r1", "acme-support", state=state, applied_ops=stored(applied_ops), plan_ops=stored(plan_ops),
                      attempts=attempts)


# -- the one "may have applied" rule (apply keeps it; rollback restores it) -------------------

MAY_HAVE_APPLIED = {
    "nothing recorded": (record(S.PENDING), []),
    "a plan is not an apply": (record(S.PLANNED, plan_ops=[TEMP]), []),
    "a failed dry-run after an uncertain attempt keeps it": (record(S.FAILED, applied_ops=[TEMP], plan_ops=[NAME]), [TEMP]),
    "applying: the plan may have been applied": (record(S.APPLYING, plan_ops=[TEMP, NOOP]), [TEMP]),
    "applying after a 422: earlier kept ops and the plan, each once": (
        record(S.APPLYING, applied_ops=[TEMP], plan_ops=[TEMP, ADD_MCP]), [TEMP, ADD_MCP]),
    "applied: what the server said it applied, not the plan": (
        record(S.APPLIED, applied_ops=[ADD_MCP], plan_ops=[TEMP]), [ADD_MCP]),
    "applied with nothing recorded: its plan is the record": (record(S.APPLIED, plan_ops=[TEMP, NOOP]), [TEMP]),
    "drifted after an earlier attempt kept ops": (record(S.DRIFTED, applied_ops=[DROP_DOMAIN]), [DROP_DOMAIN]),
    "noops are never changes": (record(S.FAILED, applied_ops=[NOOP]), []),
}


@pytest.mark.parametrize(("rec", "expected"), MAY_HAVE_APPLIED.values(), ids=MAY_HAVE_APPLIED.keys())
def test_may_have_applied(rec: ItemRecord, expected: list[Operation]) -> None:
    assert may_have_applied(rec) == expected


CARRIED = {
    "an uncertain attempt's ops survive the re-plan": (Prior(S.APPLYING, 1, [TEMP]), [TEMP]),
    "applying with nothing to keep": (Prior(S.APPLYING, 1, []), None),
    "a failed item's applied_ops are already recorded": (Prior(S.FAILED, 1, [TEMP]), None),
    "a first attempt": (Prior(S.PENDING, 0, []), None),
}


@pytest.mark.parametrize(("prior", "expected"), CARRIED.values(), ids=CARRIED.keys())
def test_carried_forward_before_the_dry_run(prior: Prior, expected: list[Operation] | None) -> None:
    assert carried_forward(prior) == expected


# -- after the fresh dry-run ------------------------------------------------------------------

FIRST = Prior(S.PENDING, 0, [])
RETRY = Prior(S.APPLYING, 1, [TEMP])
STOPPED_BEFORE_SENDING = Prior(S.PLANNED, 0, [])
AFTER_422 = Prior(S.FAILED, 1, [TEMP])
HASH = "sha256:doc"


def approval(*ops: Operation, doc_hash: str | None = HASH, revision: int | None = None) -> Approval:
    return Approval("r-plan", Approved(doc_hash, list(ops), revision))


NOT_PLANNED = Approval("r-plan", None)
DIFFERS = "its fresh plan differs from what plan run r-plan showed"
DELETES = "the plan deletes domains[old.example.com]; pass --allow-deletes (or --no-prune) to apply it"

AFTER_PLAN: dict[str, tuple[ApplyResult, Prior, Approval | None, bool, Finish | Proceed]] = {
    "all noop: unchanged, nothing sent": (result(NOOP), FIRST, None, False, Finish(S.UNCHANGED, "rev 7", revision_after=7)),
    "all noop after an apply was sent: it was applied": (
        result(NOOP), RETRY, None, False, Finish(S.APPLIED, "rev 7", revision_after=7)),
    "all noop wins over drift: nothing would be sent": (
        result(NOOP), FIRST, NOT_PLANNED, False, Finish(S.UNCHANGED, "rev 7", revision_after=7)),
    "changes: apply, a fresh snapshot may replace a stale one": (
        result(TEMP), STOPPED_BEFORE_SENDING, None, False, Proceed(replace_snapshot=True)),
    "changes after an apply was sent: the first snapshot stays": (result(TEMP), RETRY, None, False, Proceed(False)),
    "changes after a 422 kept ops: the first snapshot stays": (result(NAME), AFTER_422, None, False, Proceed(False)),
    "a delete is refused without --allow-deletes": (
        result(TEMP, DROP_DOMAIN), FIRST, None, False,
        Finish(S.FAILED, DELETES, error_code="deletes_refused", error_message=DELETES)),
    "a delete with --allow-deletes is applied": (result(DROP_DOMAIN), FIRST, None, True, Proceed(True)),
    "--plan: a chatbot the plan did not show": (
        result(TEMP), FIRST, NOT_PLANNED, False,
        Finish(S.DRIFTED, "not in plan run r-plan", error_code="drifted", error_message="not applied: not in plan run r-plan")),
    "--plan: the rendered document changed since": (
        result(TEMP), FIRST, approval(TEMP, doc_hash="sha256:other"), False,
        Finish(S.DRIFTED, "its rendered document changed since plan run r-plan", error_code="drifted",
               error_message="not applied: its rendered document changed since plan run r-plan")),
    "--plan file: the chatbot moved on the server": (
        result(TEMP, revision=9), FIRST, approval(TEMP, revision=7), False,
        Finish(S.DRIFTED, "it changed on the server since plan run r-plan (revision 7 → 9)", error_code="drifted",
               error_message="not applied: it changed on the server since plan run r-plan (revision 7 → 9)")),
    "--plan: the fresh plan differs": (
        result(TEMP, NAME), FIRST, approval(TEMP), False,
        Finish(S.DRIFTED, DIFFERS, error_code="drifted", error_message=f"not applied: {DIFFERS}")),
    "--plan: a changed value is a different plan": (
        result(op("update", "core", None, ("temperature", 0.2, 0.5))), FIRST, approval(TEMP), False,
        Finish(S.DRIFTED, DIFFERS, error_code="drifted", error_message=f"not applied: {DIFFERS}")),
    "--plan: same operations in another order, noops aside": (
        result(NAME, NOOP, TEMP), FIRST, approval(TEMP, NAME), False, Proceed(True)),
    "--plan without a document hash compares the plan only": (
        result(TEMP), FIRST, approval(TEMP, doc_hash=None), False, Proceed(True)),
    "--plan: drift is reported before a refused delete": (
        result(DROP_DOMAIN), FIRST, approval(TEMP), False,
        Finish(S.DRIFTED, DIFFERS, error_code="drifted", error_message=f"not applied: {DIFFERS}")),
    "--plan: an approved delete still needs --allow-deletes": (
        result(DROP_DOMAIN), FIRST, approval(DROP_DOMAIN), False,
        Finish(S.FAILED, DELETES, error_code="deletes_refused", error_message=DELETES)),
}


@pytest.mark.parametrize(("plan", "prior", "approved", "allow_deletes", "expected"), AFTER_PLAN.values(), ids=AFTER_PLAN.keys())
def test_after_the_fresh_plan(plan: ApplyResult, prior: Prior, approved: Approval | None, allow_deletes: bool,
                              expected: Finish | Proceed) -> None:
    assert after_plan(plan, prior, approved, HASH, allow_deletes) == expected


# -- a call's error -----------------------------------------------------------------------------

CALL_FAILURES = {
    "no answer at all": (WizChatConnectionError("connection reset"), CallFailure("connection_error", "connection reset", True)),
    "a timeout": (WizChatTimeoutError("read timed out"), CallFailure("connection_error", "read timed out", True)),
    "a 5xx": (WizChatApiError(503, "unavailable", "try later"), CallFailure("unavailable", "try later", True)),
    "an answer too large to read": (ResponseTooLarge(200, "response_too_large", "over 1 MiB"),
                                    CallFailure("response_too_large", "over 1 MiB", True)),
    "a refusal": (WizChatApiError(404, "not_found", "no chatbot cb_1"), CallFailure("not_found", "no chatbot cb_1", False)),
    # A 2xx (or 422) the server gave for the apply, unreadable (a gateway's page, a cut-off body): it
    # may have been done, or partly. A 4xx whose body is unreadable is still a refusal (http_4xx).
    "a 200 that is not an ApplyResult": (WizChatApiError(200, "invalid_response", "not a valid ApplyResult"),
                                        CallFailure("invalid_response", "not a valid ApplyResult", True)),
    "a 422 that is not an ApplyResult": (WizChatApiError(422, "invalid_response", "not a valid ApplyResult"),
                                        CallFailure("invalid_response", "not a valid ApplyResult", True)),
    "a 404 of a gateway": (WizChatApiError(404, "http_404", "Not Found"), CallFailure("http_404", "Not Found", False)),
    "429s past the retries: not applied": (WizChatApiError(429, "rate_limited", "slow down"),
                                           CallFailure("rate_limited", "slow down", False)),
    "a bug of ours": (ValueError("boom"), CallFailure("ValueError", "boom", False)),
}


@pytest.mark.parametrize(("exc", "expected"), CALL_FAILURES.values(), ids=CALL_FAILURES.keys())
def test_how_a_call_failed(exc: BaseException, expected: CallFailure) -> None:
    assert CallFailure.of(exc) == expected


TIMEOUT = CallFailure("connection_error", "read timed out", uncertain=True)
REFUSED = CallFailure("not_found", "no chatbot cb_1")
MAYBE = "read timed out (the apply may have reached the server: resume settles it)"

FAILURES = {
    "dry-run refused": (failed_with(REFUSED), Finish(S.FAILED, "no chatbot cb_1", error_code="not_found", error_message="no chatbot cb_1")),
    "snapshot failed": (after_snapshot_failure(TIMEOUT),
                        Finish(S.FAILED, "snapshot (get_config) failed: read timed out", error_code="connection_error",
                               error_message="snapshot (get_config) failed: read timed out")),
    "apply refused: nothing applied": (after_apply_failure(REFUSED, [TEMP], []),
                                       Finish(S.FAILED, "no chatbot cb_1", error_code="not_found", error_message="no chatbot cb_1")),
    "apply refused after an earlier attempt: applied_ops kept as they are": (
        after_apply_failure(REFUSED, [NAME], [TEMP]),
        Finish(S.FAILED, "no chatbot cb_1", error_code="not_found", error_message="no chatbot cb_1")),
    "apply unanswered: its plan may have been applied": (
        after_apply_failure(TIMEOUT, [TEMP, ADD_MCP], []),
        Finish(S.FAILED, MAYBE, applied_ops=[TEMP, ADD_MCP], error_code="connection_error", error_message=MAYBE)),
    "apply unanswered again: earlier ops first, each once": (
        after_apply_failure(TIMEOUT, [ADD_MCP, TEMP], [TEMP]),
        Finish(S.FAILED, MAYBE, applied_ops=[TEMP, ADD_MCP], error_code="connection_error", error_message=MAYBE)),
}


@pytest.mark.parametrize(("got", "expected"), FAILURES.values(), ids=FAILURES.keys())
def test_after_a_failed_call(got: Finish, expected: Finish) -> None:
    assert got == expected


# -- the apply's answer ---------------------------------------------------------------------------

BAD_DOMAIN = {"op": "create", "section": "domains", "key": "x.unverified", "code": "domain_verification_failed",
              "message": "not verified"}
BAD_CORE = {"op": "update", "section": "core", "key": None, "code": "invalid_model", "message": "unknown model"}
KEPT_ONE = "domains x.unverified: domain_verification_failed: not verified (1 operation(s) before it kept)"

AFTER_APPLY = {
    "applied": (result(TEMP, revision=8, applied=[TEMP]), [],
                Finish(S.APPLIED, "rev 8", applied_ops=[TEMP], revision_after=8)),
    "applied on a retry: what every attempt applied": (
        result(ADD_MCP, revision=9, applied=[ADD_MCP]), [TEMP],
        Finish(S.APPLIED, "rev 9", applied_ops=[TEMP, ADD_MCP], revision_after=9)),
    "applied, the same ops as the uncertain attempt": (
        result(TEMP, revision=9, applied=[TEMP]), [TEMP], Finish(S.APPLIED, "rev 9", applied_ops=[TEMP], revision_after=9)),
    "a 422 keeps what ran before it": (
        result(TEMP, revision=8, applied=[TEMP], failed=BAD_DOMAIN), [],
        Finish(S.FAILED, KEPT_ONE, applied_ops=[TEMP], revision_after=8, error_code="domain_verification_failed",
               error_message="not verified", error_section="domains", error_key="x.unverified")),
    "a 422 on an object section, nothing before it": (
        result(NAME, revision=7, applied=[], failed=BAD_CORE), [],
        Finish(S.FAILED, "core: invalid_model: unknown model (0 operation(s) before it kept)", applied_ops=[],
               revision_after=7, error_code="invalid_model", error_message="unknown model", error_section="core")),
}


@pytest.mark.parametrize(("answer", "earlier", "expected"), AFTER_APPLY.values(), ids=AFTER_APPLY.keys())
def test_after_the_apply_answer(answer: ApplyResult, earlier: list[Operation], expected: Finish) -> None:
    assert after_apply(answer, earlier) == expected


FIELDS = {
    "None keeps the journal's value; [] and 0 are values": (
        Finish(S.FAILED, "x", applied_ops=[], revision_after=0, error_code="c"),
        {"applied_ops": [], "revision_after": 0, "error_code": "c"}),
    "an unchanged item sets only its revision": (Finish(S.UNCHANGED, "rev 3", revision_after=3), {"revision_after": 3}),
}


@pytest.mark.parametrize(("outcome", "expected"), FIELDS.values(), ids=FIELDS.keys())
def test_what_an_outcome_records(outcome: Finish, expected: dict[str, Any]) -> None:
    assert outcome.fields() == expected


# -- the run: after each batch, and how it ends ---------------------------------------------------

AFTER_BATCH = {
    "within the budget: next batch": ((False, 1, 1, 10), None),
    "past an absolute budget: halt": ((False, 2, 1, 10), R.HALTED),
    "a percent budget of the whole run": ((False, 2, "20%", 10), None),
    "past a percent budget": ((False, 3, "20%", 10), R.HALTED),
    "no failure tolerated": ((False, 1, 0, 10), R.HALTED),
    "a stop request wins over the budget": ((True, 5, 0, 10), R.INTERRUPTED),
    # The server carried out a fresh dry-run: the engine stopped itself; not an operator's Ctrl-C.
    "an answer that stopped the run": ((True, 1, 5, 10, True), R.HALTED),
}


@pytest.mark.parametrize(("given", "expected"), AFTER_BATCH.values(), ids=AFTER_BATCH.keys())
def test_after_a_batch(given: tuple[Any, ...], expected: R | None) -> None:
    assert after_batch(*given) == expected


RUN_ENDED = {
    "every chatbot done": ((R.COMPLETED, {"applied": 3, "unchanged": 1}), R.COMPLETED),
    "skipped chatbots are done with": ((R.COMPLETED, {"applied": 3, "skipped": 2}), R.COMPLETED),
    "the batches ran but a chatbot failed": ((R.COMPLETED, {"applied": 3, "failed": 1}), R.FAILED),
    "the batches ran but a chatbot drifted": ((R.COMPLETED, {"applied": 3, "drifted": 1}), R.FAILED),
    "a zero count is no chatbot": ((R.COMPLETED, {"applied": 3, "failed": 0}), R.COMPLETED),
    "interrupted with work left: resumable": ((R.INTERRUPTED, {"applied": 1, "pending": 2}), R.INTERRUPTED),
    "interrupted in the last batch, every chatbot finished": ((R.INTERRUPTED, {"applied": 3}), R.COMPLETED),
    "halted stays halted": ((R.HALTED, {"failed": 2, "pending": 5}), R.HALTED),
}


@pytest.mark.parametrize(("given", "expected"), RUN_ENDED.values(), ids=RUN_ENDED.keys())
def test_how_the_run_ends(given: tuple[R, dict[str, int]], expected: R) -> None:
    assert run_ended(*given) == expected
