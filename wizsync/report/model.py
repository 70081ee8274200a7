"""The record every renderer of the report layer takes: one chatbot's outcome.

``plan`` fills it from the server's dry-run, ``apply`` from the apply call,
``show`` from journal rows (then usually only ``summary`` and ``state``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from wizchat_management.models import ApplyResult, FailedOperation, Operation, Plan

from ..journal.states import ItemState

if TYPE_CHECKING:
    from ..plan.dryrun import PlanOutcome

SUMMARY_KEYS = ("create", "update", "delete", "noop")


@dataclass(frozen=True)
class FailedStep:
    """Where a 422 partial failure stopped, as the journal kept it.

    The server's ``FailedOperation``, with ``op`` looked up in the item's plan
    (None when the plan does not hold that section and key).
    """

    op: str | None
    section: str
    key: str | None
    code: str | None
    message: str


@dataclass(frozen=True)
class JournalFacts:
    """What only the journal knows of an apply: what the server kept, and where it stopped."""

    applied: list[Operation] | None = None
    failed: FailedStep | None = None


@dataclass(frozen=True)
class ChatbotReport:
    """One chatbot's plan or apply outcome, as the renderers need it.

    ``result``  the server's answer (``ApplyResult`` or its ``Plan``), or None.
    ``error``   ``{"code": str, "message": str}`` when the chatbot could not be
                planned/applied at all (render error, 4xx, budget...).
    ``desired`` the *masked* rendered document (``ChatbotConfigDocument`` or a
                dict with or without the ``spec`` level): secrets appear in it as
                ``<secret:NAME>``; the diff shows those instead of ``<redacted>``.
    ``summary`` fallback counts when there is no ``result`` (``show`` from the
                journal): ``{"create", "update", "delete", "noop"}``.
    ``state``/``revision``/``batch`` journal-side facts for apply and show.
    ``journal`` the journal's record of the apply (``show``, a run's ``--json``),
                or None for a report of a live answer.
    """

    name: str
    tenant: str
    chatbot_id: str | None = None
    result: ApplyResult | Plan | None = None
    error: Mapping[str, Any] | None = None
    desired: Any = None
    summary: Mapping[str, int] | None = None
    state: ItemState | None = None
    revision: int | None = None
    batch: int | None = None
    journal: JournalFacts | None = None

    @property
    def plan(self) -> Plan | None:
        if isinstance(self.result, ApplyResult):
            return self.result.plan
        return self.result

    @property
    def failed(self) -> FailedOperation | None:
        if isinstance(self.result, ApplyResult):
            return self.result.failed
        return None

    @property
    def counts(self) -> dict[str, int] | None:
        """The plan summary as a plain dict, or None when unknown."""
        plan = self.plan
        if plan is not None:
            return {k: int(getattr(plan.summary, k)) for k in SUMMARY_KEYS}
        if self.summary is not None:
            return {k: int(self.summary.get(k, 0) or 0) for k in SUMMARY_KEYS}
        return None

    @property
    def effective_revision(self) -> int | None:
        if self.revision is not None:
            return self.revision
        if isinstance(self.result, ApplyResult):
            return self.result.revision
        return None

    @property
    def has_changes(self) -> bool:
        c = self.counts
        return bool(c) and (c["create"] + c["update"] + c["delete"]) > 0  # type: ignore[index]


def plan_report(outcome: PlanOutcome, **kwargs: Any) -> ChatbotReport:
    """The report record of one chatbot's plan (its masked desired document when it was loaded)."""
    from ..fleet.load import FleetItem

    item = outcome.item
    return ChatbotReport(
        name=item.name,
        tenant=item.target.tenant,
        chatbot_id=item.target.chatbot_id,
        result=outcome.result,
        error=outcome.error,
        desired=item.rendered.masked if isinstance(item, FleetItem) else None,
        **kwargs,
    )
