"""The merged view of a sharded fleet (pure): counts over shards, the fleet's failure budget, and
what makes a set of shard runs not add up to the fleet (a missing or repeated shard, a key in two
shards, shards of different manifests, selections or splits)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from wizsync.report.fleetview import RunView, fleet_summary
from wizsync.journal import RunRecord


def view(index: int | None, count: int = 4, *, status: str = "completed", counts: dict[str, int] | None = None,
         keys: tuple[str, ...] | None = None, command: str = "apply", manifest: str = "sha256:m",
         max_failures: int | str = 2, select: tuple[str, ...] = (), requests: int = 10,
         environment: str = "production") -> RunView:
    keys = keys if keys is not None else ((f"t{index}/{environment}",) if index else ("t0/production",))
    options: dict[str, Any] = {"select": list(select), "chatbots": [], "max_failures": max_failures}
    if index is not None:
        options["shard"] = {"index": index, "count": count, "keys": list(keys), "fleet_keys": count}
    run = RunRecord(id=f"r-{index}-{status}", command=command, environment=environment, manifest_path="/m.yaml",
                    manifest_hash=manifest, options=options, status=status, started_at=f"2026-12-01T10:0{index or 0}:00.000Z",
                    finished_at=None if status == "running" else f"2026-12-01T10:1{index or 0}:00.000Z", pid=1, host="h",
                    counts={}, error=None, wizsync_version="1", parent_run=None)
    return RunView(Path(f"/j/journal-shard-{index}-of-{count}.db"), run, status, counts or {"applied": 5},
                   keys, requests=requests, throttled=1, retries=2)


def test_four_complete_shards_add_up_to_the_fleet() -> None:
    views = [view(i, counts={"applied": 3, "unchanged": i}) for i in (1, 2, 3, 4)]
    s = fleet_summary(views)
    assert s.ok and s.problems == [] and s.status == "completed"
    assert (s.command, s.environment, s.shards, s.runs) == ("apply", "production", 4, 4)
    assert s.counts == {"applied": 12, "unchanged": 10} and s.total == 22
    assert (s.requests, s.throttled, s.retries) == (40, 4, 8)
    assert (s.started_at, s.finished_at) == ("2026-12-01T10:01:00.000Z", "2026-12-01T10:14:00.000Z")
    doc = s.as_json()
    assert doc["ok"] is True and doc["failure_budget"] == {"failed": 0, "max_failures": 2, "budget": 2, "exceeded": False}


BUDGETS = [
    # per-shard failed counts, maxFailures, fleet budget, exceeded
    ([1, 1, 0, 0], 2, 2, False),
    ([1, 1, 1, 0], 2, 2, True),  # each shard within 2, the fleet not: only the merged view can tell
    ([2, 2, 0, 0], "10%", 4, False),  # 10% of 40
    ([2, 2, 1, 0], "10%", 4, True),
    ([0, 0, 0, 0], 0, 0, False),
]


@pytest.mark.parametrize(("failed", "max_failures", "budget", "exceeded"), BUDGETS)
def test_the_failure_budget_is_the_whole_fleets(failed: list[int], max_failures: int | str, budget: int, exceeded: bool) -> None:
    views = [view(i + 1, counts={"applied": 10 - f, "failed": f}, max_failures=max_failures) for i, f in enumerate(failed)]
    s = fleet_summary(views)
    assert (s.failed, s.budget, s.budget_exceeded) == (sum(failed), budget, exceeded)
    assert s.ok is not exceeded


STATUSES = [
    (["completed", "completed", "halted", "completed"], "halted"),
    (["completed", "interrupted", "halted", "completed"], "interrupted"),
    (["failed", "interrupted", "halted", "completed"], "failed"),
    (["running", "failed", "completed", "completed"], "running"),
]


@pytest.mark.parametrize(("statuses", "fleet"), STATUSES)
def test_the_fleet_status_is_the_most_pressing_shard_status(statuses: list[str], fleet: str) -> None:
    s = fleet_summary([view(i + 1, status=st) for i, st in enumerate(statuses)])
    assert s.status == fleet and not s.ok


PROBLEMS = {
    "missing shard": ([view(1), view(2), view(4)], "no run of shard 3/4"),
    "repeated shard": ([view(1), view(2), view(3), view(4), view(2, status="halted")], "shard 2/4 appears in 2 runs"),
    "key in two shards": ([view(1), view(2, keys=("t2/production", "t1/production")), view(3), view(4)],
                          "key t1/production is in more than one run"),
    "other manifest": ([view(1), view(2), view(3, manifest="sha256:other"), view(4)], "different manifests"),
    "other selection": ([view(1), view(2, select=("tier=gold",)), view(3), view(4)], "different --select/--chatbot"),
    "other split": ([view(1, 2), view(2, 2), view(3, 4)], "split the fleet differently"),
    "unsharded mixed in": ([view(1, 2), view(2, 2), view(None)], "unsharded run(s) merged"),
    "other command": ([view(1, 2), view(2, 2, command="plan")], "different commands"),
    "other environment": ([view(1, 2), view(2, 2, environment="staging")], "different environments"),
    "other budgets": ([view(1, 2), view(2, 2, max_failures=5)], "different failure budgets"),
}


@pytest.mark.parametrize("case", sorted(PROBLEMS))
def test_shards_that_do_not_add_up_are_named(case: str) -> None:
    views, fragment = PROBLEMS[case]
    s = fleet_summary(views)
    assert not s.ok
    assert any(fragment in p for p in s.problems), s.problems


def test_plan_runs_have_no_budget_but_count_their_failures() -> None:
    clean = view(1, 2, command="plan", counts={"planned": 4})
    s = fleet_summary([clean, view(2, 2, command="plan", status="failed", counts={"planned": 3, "failed": 1})])
    assert s.budget is None and s.max_failures is None and s.failed == 1
    assert s.status == "failed" and not s.ok
    assert fleet_summary([clean, view(2, 2, command="plan", counts={"planned": 4})]).ok
