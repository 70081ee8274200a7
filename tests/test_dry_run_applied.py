"""`wizsync plan` and `apply` (real processes) behind a gateway that drops the dryRun query parameter.

Every dry-run such a server receives is an apply. wizsync sends the first dry-run to a server
alone and stops the run when its answer says it was applied: one chatbot changed, named, with
the server's revision, the run journaled as failed with a ``request.halted`` event, nothing else sent.
The emulator plays the gateway (``--ignore-dry-run``, here through its admin API).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from wizchat_management.emulator import EmulatorServer
from wizsync.demo import DEMO_SECRET, manifest_text

PATHS = {"state": "emulator.db", "keys": "keys.env", "manifest": "wizsync.yaml", "journal": "journal.db"}


@pytest.mark.parametrize("command", [["plan", "--json"], ["apply", "--yes", "--json"]])
def test_a_server_that_carries_out_dry_runs_changes_one_chatbot_and_the_run_stops(
    emulator: EmulatorServer, secret_scan: Any, tmp_path: Path, command: list[str]
) -> None:
    emu = emulator
    secret_scan.register_all(emu.keys)
    (tmp_path / "wizsync.yaml").write_text(manifest_text(emu.base_url, 0, PATHS))
    journal = tmp_path / "journal.db"
    emu.set_faults(ignore_dry_run=True)

    verb, *flags = command
    proc = secret_scan.run([verb, "wizsync.yaml", "--env", "staging", *flags, "--journal", str(journal)],
                           cwd=tmp_path, env={**emu.key_env, DEMO_SECRET: "gateway-test-token"})
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert emu.stats()["total"]["applies"] == 1  # one chatbot changed, not one per dry-run in flight
    assert "the run is stopped: no further request is sent" in proc.stderr, proc.stderr

    doc = json.loads(proc.stdout)
    conn = sqlite3.connect(journal)
    try:
        run_id, status = conn.execute("SELECT id, status FROM runs").fetchone()
        halted = [item for (item,) in conn.execute(
            "SELECT item FROM events WHERE run_id = ? AND kind = 'request.halted'", (run_id,))]
    finally:
        conn.close()
    assert status == "failed" and len(halted) == 1, (status, halted)
    if verb == "plan":
        assert doc["status"] == "failed"
        codes = {c["name"]: c["error"]["code"] for c in doc["chatbots"] if c.get("error")}
        assert [n for n, code in codes.items() if code == "dry_run_applied"] == halted, codes
        changed = next(c for c in doc["chatbots"] if c["name"] == halted[0])
        message = changed["error"]["message"]
        assert not any(c.get("summary") for c in doc["chatbots"])  # nothing was planned behind it
    else:
        # apply plans everything first: the run fails there, before a batch, naming the chatbot.
        assert doc["error"]["code"] == "refused"
        message = doc["error"]["message"]
        assert message.startswith(halted[0] + ": ") and "no other dry-run or apply was sent" in message
    assert "asked for a dry-run, the server carried it out as an apply" in message


def test_a_gateway_that_appears_between_plan_and_apply_halts_the_apply_in_its_first_batch(
    emulator: EmulatorServer, secret_scan: Any, tmp_path: Path
) -> None:
    """Planned cleanly, then applied exactly that plan (``--plan``, no up-front dry-runs) behind a gateway
    that drops dryRun: the batch's fresh dry-run is carried out, the run halts there, naming it."""
    emu = emulator
    secret_scan.register_all(emu.keys)
    (tmp_path / "wizsync.yaml").write_text(manifest_text(emu.base_url, 0, PATHS))
    journal, env = tmp_path / "journal.db", {**emu.key_env, DEMO_SECRET: "gateway-test-token"}
    base = ["wizsync.yaml", "--env", "staging", "--journal", str(journal)]
    planned = secret_scan.run(["plan", *base, "--json"], cwd=tmp_path, env=env)
    assert planned.returncode == 0, planned.stderr
    applies = emu.stats()["total"]["applies"]
    emu.set_faults(ignore_dry_run=True)

    proc = secret_scan.run(["apply", *base, "--yes", "--json", "--plan", json.loads(planned.stdout)["run_id"]],
                           cwd=tmp_path, env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert emu.stats()["total"]["applies"] == applies + 1  # the one fresh dry-run, nothing after it
    doc = json.loads(proc.stdout)
    assert doc["status"] == "halted" and doc["error"]["code"] == "halted", doc["status"]
    message = doc["error"]["message"]
    assert message.startswith("halted in batch 1 of 3: ") and "dry_run_applied" in message, message
    assert "nothing more was sent" in message
