"""`kill -9` of `wizsync plan` mid-run (a 400-chatbot plan on a slow server): the journal passes
SQLite's integrity_check, `wizsync show` / `wizsync runs` report the run as `interrupted` (no
process holds it), what was recorded is whole (planned items carry their plan), and the next plan
on the same journal runs normally. Killed early (as soon as the run is journaled) and late (after
the first batch of results was committed).

(The kill -9 of `export` is covered by test_export_roundtrip.py, of `apply` by the apply tests.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import generated_fleet as fleet
import pytest
from apply_fleet import integrity, query, wait_until
from secret_scan import wizsync_env

from wizchat_management.emulator import EmulatorServer

N, K = 400, 4


@pytest.mark.parametrize("when", ["early", "after-first-commit"])
def test_a_killed_plan_leaves_a_sound_journal_and_an_interrupted_run(when: str, secret_scan: Any, tmp_path: Path) -> None:
    with EmulatorServer(seed=fleet.seed(N, K), latency_ms=20) as emu:
        secret_scan.register_all(emu.keys)
        fleet.write(tmp_path, emu.base_url, N, K)
        journal = tmp_path / "journal.db"
        secret_scan.watch_journal(journal)
        args = ["plan", "wizsync.yaml", "--env", fleet.ENV, "--journal", str(journal)]
        child = subprocess.Popen([sys.executable, "-m", "wizsync.cli", *args, "--concurrency", "2"], cwd=tmp_path,
                                 env=wizsync_env(emu.key_env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        try:
            if when == "early":
                wait_until(lambda: journal.exists() and bool(query(journal, "SELECT id FROM runs")), what="the run row")
            else:
                wait_until(lambda: journal.exists() and bool(query(journal, "SELECT name FROM items WHERE state = 'planned'")),
                           what="a committed plan result")
            assert child.poll() is None, "the plan ended before it could be killed"
            os.kill(child.pid, signal.SIGKILL)
        finally:
            out, err = child.communicate(timeout=30)
            secret_scan.record("killed plan stdout", out)
            secret_scan.record("killed plan stderr", err)
        assert child.returncode == -signal.SIGKILL

        assert integrity(journal) == "ok"
        run_id = query(journal, "SELECT id FROM runs")[0]["id"]
        planned = query(journal, "SELECT name, plan_summary FROM items WHERE run_id = ? AND state = 'planned'", [run_id])
        assert len(planned) < N
        for row in planned:  # a committed result is a whole one
            assert json.loads(row["plan_summary"]) == {"create": 0, "update": 2, "delete": 0, "noop": 0}, row

        shown = secret_scan.run(["show", run_id, "--journal", str(journal), "--json"], cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["status"] == "interrupted"
        listed = secret_scan.run(["runs", "--journal", str(journal), "--json"], cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert [r["status"] for r in json.loads(listed.stdout)["runs"] if r["id"] == run_id] == ["interrupted"]

        # the journal is as good as new for the next run
        emu.set_faults(latency_ms=0)
        again = secret_scan.run([*args, "--json"], cwd=tmp_path, env=emu.key_env, timeout=90)
        assert again.returncode == 0, again.stderr[-2000:]
        assert json.loads(again.stdout)["status"] == "completed"
        assert integrity(journal) == "ok"
    secret_scan.check()
