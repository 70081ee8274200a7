"""What to run after a run ended: resume only when resuming can finish it, else what to do instead.

A pure decision over the journal's records. Two kinds of unfinished chatbot
can never be finished by ``wizsync resume`` (not even with ``--force``),
because a resume re-uses the run's recorded options:

* ``drifted`` under ``--plan RUN_ID``: the chatbot no longer plans as the
  approved plan did, and the plan is part of the run's options — only a new
  plan, reviewed and applied, can change it;
* ``failed`` with ``deletes_refused``: the plan deletes items and the run
  was started without ``--allow-deletes``.

Everything else that is unfinished (interrupted, halted, a failed request)
is what resume is for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..journal import ItemRecord
from ..journal.states import UNFINISHED_STATES, ItemState, RunStatus

__all__ = ["NextSteps", "next_steps"]

RESUMABLE_COMMANDS = ("apply", "rollback")
# How a run may have stopped short: the statuses a resume is for.
_STOPPED = (RunStatus.HALTED, RunStatus.INTERRUPTED, RunStatus.FAILED)


@dataclass(frozen=True)
class NextSteps:
    resumable: bool  # `wizsync resume RUN_ID` can finish the run
    instead: tuple[str, ...] = ()  # what to do when it cannot (sentences, one per reason)


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def next_steps(command: str, status: RunStatus, options: Mapping[str, Any], items: Iterable[ItemRecord]) -> NextSteps:
    """For a run of ``command`` that ended ``status``; ``items`` its journal items."""
    if command not in RESUMABLE_COMMANDS or status not in _STOPPED:
        return NextSteps(False)
    records = list(items)
    drifted = [r.name for r in records if r.state is ItemState.DRIFTED]
    refused = [r.name for r in records if r.state is ItemState.FAILED and r.error_code == "deletes_refused"]
    instead: list[str] = []
    if options.get("plan_file"):
        return NextSteps(False, (f"this run applied the plan file {options['plan_file']}: apply it again to finish "
                                 "(chatbots already applied plan as unchanged), or plan again if it drifted",))
    plan_run = options.get("plan_run")
    if drifted and plan_run:
        instead.append(
            f"{len(drifted)} chatbot(s) changed since plan {plan_run} and were not applied ({_names(drifted)}); "
            "a resume applies the same plan, so it cannot finish this run: plan again, review, and apply the "
            "new plan (wizsync plan ... then wizsync apply ... --plan NEW_RUN_ID)"
        )
    if refused and not options.get("allow_deletes"):
        instead.append(
            f"{len(refused)} chatbot(s) plan deletes this run did not allow ({_names(refused)}); "
            "a resume keeps the run's options: start a new apply with --allow-deletes (or --no-prune to keep them)"
        )
    if instead:
        return NextSteps(False, tuple(instead))
    unfinished = any(r.state in UNFINISHED_STATES for r in records)
    # A run that stopped before recording its chatbots resumes from scratch (runs.resume_run).
    return NextSteps(unfinished or not records)
