"""Crash safety: `wizsync apply` killed with SIGKILL at a random instant (before, between and in the
middle of batches, with requests in flight), then `wizsync resume RUN_ID`, ends exactly where an
uninterrupted run ends.

What must be equal to the reference run (a second, identically seeded emulator): every chatbot's
config AND its revision, and the number of apply requests the server executed. The revision is the
server's count of effective applies, so an equal revision means no chatbot was changed twice (a
second apply of a different document, or an extra apply of the same one, would bump it); the
resume settles a chatbot left ``applying`` by its fresh plan (all noop → it was applied) instead of
sending it again. Metadata timestamps are ignored.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest
from apply_fleet import Cli, applies_by_key, integrity, live, query, wait_for_run, write_manifest

from wizchat_management.emulator import EmulatorServer

LATENCY_MS, JITTER_MS = 20, 30  # a run takes ~1 s, so random kill points land everywhere in it
TRIALS = 5  # per group; two groups run in parallel under xdist (10 kills in all)


def _reference(tmp_path: Path, secret_scan) -> tuple[dict, int]:
    with EmulatorServer(seed="demo") as ref:
        d = tmp_path / "reference"
        d.mkdir()
        write_manifest(d, ref)
        cli = Cli(secret_scan, d, ref)
        proc = cli.apply("--allow-deletes")
        assert proc.returncode == 0, proc.stderr
        return live(ref, "production"), sum(applies_by_key(ref).values())


@pytest.mark.parametrize("group", [0, 1])
def test_kill_9_at_random_instants_then_resume_ends_like_an_uninterrupted_run(group: int, emulator, secret_scan, tmp_path: Path) -> None:
    expected, expected_applies = _reference(tmp_path, secret_scan)
    assert expected_applies == 60
    rng = random.Random(1000 + group)
    killed_mid_run = 0
    for trial in range(TRIALS):
        tag = f"group {group} trial {trial}"
        emulator.reset()
        emulator.set_faults(latency_ms=LATENCY_MS, jitter_ms=JITTER_MS)
        d = tmp_path / f"t{trial}"
        d.mkdir()
        write_manifest(d, emulator)
        cli = Cli(secret_scan, d, emulator)

        proc = cli.popen("apply", "wizsync.yaml", "--env", "production", "--yes", "--allow-deletes")
        wait_for_run(cli, proc)
        time.sleep(rng.uniform(0.0, 1.2))
        killed_mid_run += proc.poll() is None
        cli.kill9(proc, f"apply ({tag})")
        emulator.set_faults(latency_ms=0, jitter_ms=0)  # the resume needs no slowing down

        runs = cli.json("runs")["runs"]
        assert len(runs) == 1, tag
        run_id = runs[0]["id"]
        if proc.returncode != 0:  # it was killed, not finished: the run says so
            assert runs[0]["status"] == "interrupted", (tag, runs[0])

        resumed = cli.run("resume", run_id, "--yes")
        assert resumed.returncode == 0, (tag, resumed.stderr)

        final = live(emulator, "production")
        for key in expected:
            assert final[key]["spec"] == expected[key]["spec"], (tag, key)
            assert final[key]["revision"] == expected[key]["revision"], (tag, key)
        assert sum(applies_by_key(emulator).values()) == expected_applies, tag

        if trial == TRIALS - 1:  # what a user sees (one `show` process per group keeps the test quick)
            shown = cli.show(run_id)
            assert shown["status"] == "completed", tag
            assert {b["state"] for b in shown["chatbots"]} <= {"applied", "unchanged"}, (tag, shown["run"]["counts"])
            assert len(shown["chatbots"]) == 60, tag
        assert query(cli.journal, "SELECT status FROM runs WHERE id = ?", [run_id]) == [{"status": "completed"}], tag
        states = query(cli.journal, "SELECT state, COUNT(*) AS n FROM items WHERE run_id = ? GROUP BY state", [run_id])
        assert {r["state"] for r in states} <= {"applied", "unchanged"} and sum(r["n"] for r in states) == 60, (tag, states)

        # one document per chatbot across every attempt; at most one success each
        applying = query(cli.journal, "SELECT item, data FROM events WHERE run_id = ? AND kind = 'item.applying'", [run_id])
        hashes: dict[str, set[str]] = {}
        for e in applying:
            hashes.setdefault(e["item"], set()).add(e["data"])
        for item, docs in hashes.items():
            assert len({json.loads(x)["doc_hash"] for x in docs}) == 1, (tag, item)
        applied = query(cli.journal, "SELECT item, COUNT(*) AS n FROM events WHERE run_id = ? AND kind = 'item.applied' GROUP BY item", [run_id])
        assert all(r["n"] == 1 for r in applied), (tag, applied)
        assert integrity(cli.journal) == "ok", tag
    assert killed_mid_run >= TRIALS - 1, f"only {killed_mid_run} of {TRIALS} kills landed while the run was running"
