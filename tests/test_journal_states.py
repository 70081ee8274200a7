"""The item/run state machines: what each state means to resume and rollback, and which moves the journal allows."""

from __future__ import annotations

from pathlib import Path

import pytest

from wizsync.journal import Journal, JournalError
from wizsync.journal.states import ITEM_MOVES, ItemState, RunStatus, item_may_move, run_may_move


def test_stored_strings_are_the_documented_ones() -> None:
    # The journal's columns and docs/journal.md's queries use these exact strings.
    assert [s.value for s in ItemState] == [
        "pending", "planned", "applying", "applied", "unchanged", "failed", "drifted", "skipped",
    ]
    assert [s.value for s in RunStatus] == ["running", "completed", "halted", "failed", "interrupted"]
    assert f"item.{ItemState.FAILED}" == "item.failed" and str(RunStatus.HALTED) == "halted"


@pytest.mark.parametrize(
    ("state", "outcome", "done", "unfinished"),
    [
        (ItemState.PENDING, False, False, True),
        (ItemState.PLANNED, False, False, True),
        (ItemState.APPLYING, False, False, True),  # may have happened: resume settles it by a fresh plan
        (ItemState.APPLIED, True, True, False),
        (ItemState.UNCHANGED, True, True, False),
        (ItemState.FAILED, True, False, True),  # an attempt ended, and resume retries it
        (ItemState.DRIFTED, True, False, True),
        (ItemState.SKIPPED, True, False, False),  # the run chose not to touch it; resume agrees
    ],
)
def test_what_each_item_state_means(state: ItemState, outcome: bool, done: bool, unfinished: bool) -> None:
    assert (state.is_outcome, state.is_done, state.is_unfinished) == (outcome, done, unfinished)


def test_done_items_never_move_and_every_unfinished_one_can_be_applied() -> None:
    for state in ItemState:
        assert item_may_move(state, ItemState.APPLYING) is not state.is_done
        if state.is_done:
            assert ITEM_MOVES[state] == {state}


def test_a_run_stops_once_and_only_resume_restarts_it() -> None:
    for status in RunStatus:
        assert run_may_move(RunStatus.RUNNING, status) is status.is_final
        assert run_may_move(status, RunStatus.RUNNING) is status.is_final


def test_the_journal_refuses_an_illegal_item_move(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "journal.db") as journal:
        run_id = journal.start_run("apply", "production", "/srv/wizsync.yaml", "sha256:m", {})
        journal.add_items(run_id, [{"name": "acme/a", "tenant": "acme"}])
        journal.mark_applying(run_id, "acme/a")
        journal.record_result(run_id, "acme/a", ItemState.APPLIED)
        item = journal.item(run_id, "acme/a")
        assert item.state is ItemState.APPLIED
        with pytest.raises(JournalError, match="may not become failed"):
            journal.record_result(run_id, "acme/a", "failed")
        with pytest.raises(JournalError, match="may not become planned"):
            journal.update_item(run_id, "acme/a", state="planned")
        with pytest.raises(JournalError, match="refusing to apply it again"):
            journal.mark_applying(run_id, "acme/a")
        assert journal.item(run_id, "acme/a").state is ItemState.APPLIED
        journal.finish_run(run_id, RunStatus.COMPLETED)
        assert journal.get_run(run_id).status is RunStatus.COMPLETED
