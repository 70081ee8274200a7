"""Crash safety: `wizsync apply` killed with SIGKILL at each phase of a run (while it loads the fleet
and plans, between batches, in the middle of a batch with requests in flight, and at seeded random
instants), then `wizsync resume RUN_ID`, ends exactly where an uninterrupted run ends.

What must be equal to the reference run (a second, identically seeded emulator): every chatbot's
config AND its revision, and the number of apply requests the server executed. The revision is the
server's count of effective applies, so an equal revision means no chatbot was changed twice (a
second apply of a different document, or an extra apply of the same one, would bump it); the
resume settles a chatbot left ``applying`` by its fresh plan (all noop → it was applied) instead of
sending it again. Metadata timestamps are ignored.

The phases are reached by watching the journal (not by timing), so each is hit on every run, loaded
machine or not; the random instants cover what lies between them.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from apply_fleet import Cli, applies_by_key, integrity, live, query, wait_for_run, wait_until, write_manifest
from secret_scan import SecretScan

from wizchat_management.emulator import EmulatorServer

LATENCY_MS, JITTER_MS = 20, 30  # a run takes ~1 s, so random kill points land everywhere in it


def _applied(cli: Cli, run_id: str) -> int:
    return len(query(cli.journal, "SELECT 1 FROM items WHERE run_id = ? AND state = 'applied'", [run_id]))


def _in_flight(cli: Cli, run_id: str) -> int:
    return len(query(cli.journal, "SELECT 1 FROM items WHERE run_id = ? AND state = 'applying'", [run_id]))


# kill point -> what the journal must show first (batches of 1, 6 and 53 chatbots), or a seeded delay.
KILL_POINTS: dict[str, Callable[[Cli, str], bool] | float] = {
    "loading the fleet and planning": lambda cli, run: True,  # as soon as the run is journaled
    "after the first batch (the canary)": lambda cli, run: _applied(cli, run) >= 1,
    "in batch 2, requests in flight": lambda cli, run: _applied(cli, run) >= 2 and _in_flight(cli, run) >= 1,
    "in batch 3, requests in flight": lambda cli, run: _applied(cli, run) >= 20 and _in_flight(cli, run) >= 1,
    **{f"random instant {i}": random.Random(1000 + i).uniform(0.0, 1.2) for i in range(2)},
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict, int]]:
    """The uninterrupted run's end state, on an emulator of its own (computed once for every kill point)."""
    scan = SecretScan()
    with EmulatorServer(seed="demo") as ref:
        d = tmp_path_factory.mktemp("reference")
        write_manifest(d, ref)
        # a module fixture runs before the per-test lock folder exists: give the reference one of its own
        cli = Cli(scan, d, ref, extra_env={"WIZSYNC_LOCK_DIR": str(tmp_path_factory.mktemp("reference-locks"))})
        proc = cli.apply("--allow-deletes")
        assert proc.returncode == 0, proc.stderr
        yield live(ref, "production"), sum(applies_by_key(ref).values())
    scan.check()


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_kill_9_at_each_phase_then_resume_ends_like_an_uninterrupted_run(
    point: str, reference: tuple[dict, int], emulator, secret_scan, tmp_path: Path
) -> None:
    expected, expected_applies = reference
    assert expected_applies == 60
    emulator.set_faults(latency_ms=LATENCY_MS, jitter_ms=JITTER_MS)
    write_manifest(tmp_path, emulator)
    cli = Cli(secret_scan, tmp_path, emulator)

    proc = cli.popen("apply", "wizsync.yaml", "--env", "production", "--yes", "--allow-deletes")
    run_id = wait_for_run(cli, proc)
    when = KILL_POINTS[point]
    if callable(when):
        wait_until(lambda: when(cli, run_id) or proc.poll() is not None, what=point)
        assert proc.poll() is None, f"the run ended before the kill point ({point})"
    else:
        time.sleep(when)
    cli.kill9(proc, f"apply ({point})")
    emulator.set_faults(latency_ms=0, jitter_ms=0)  # the resume needs no slowing down

    runs = cli.json("runs")["runs"]
    assert [r["id"] for r in runs] == [run_id], point
    if proc.returncode != 0:  # it was killed, not finished: the run says so
        assert runs[0]["status"] == "interrupted", (point, runs[0])

    resumed = cli.run("resume", run_id, "--yes")
    assert resumed.returncode == 0, (point, resumed.stderr)

    final = live(emulator, "production")
    for key in expected:
        assert final[key]["spec"] == expected[key]["spec"], (point, key)
        assert final[key]["revision"] == expected[key]["revision"], (point, key)
    assert sum(applies_by_key(emulator).values()) == expected_applies, point

    shown = cli.show(run_id)  # what a user sees
    assert shown["status"] == "completed", point
    assert {b["state"] for b in shown["chatbots"]} <= {"applied", "unchanged"}, (point, shown["run"]["counts"])
    assert len(shown["chatbots"]) == 60, point
    assert query(cli.journal, "SELECT status FROM runs WHERE id = ?", [run_id]) == [{"status": "completed"}], point
    states = query(cli.journal, "SELECT state, COUNT(*) AS n FROM items WHERE run_id = ? GROUP BY state", [run_id])
    assert {r["state"] for r in states} <= {"applied", "unchanged"} and sum(r["n"] for r in states) == 60, (point, states)

    # one document per chatbot across every attempt; at most one success each
    applying = query(cli.journal, "SELECT item, data FROM events WHERE run_id = ? AND kind = 'item.applying'", [run_id])
    hashes: dict[str, set[str]] = {}
    for e in applying:
        hashes.setdefault(e["item"], set()).add(e["data"])
    for item, docs in hashes.items():
        assert len({json.loads(x)["doc_hash"] for x in docs}) == 1, (point, item)
    applied = query(cli.journal, "SELECT item, COUNT(*) AS n FROM events WHERE run_id = ? AND kind = 'item.applied' GROUP BY item", [run_id])
    assert all(r["n"] == 1 for r in applied), (point, applied)
    assert integrity(cli.journal) == "ok", point
