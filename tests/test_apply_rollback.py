"""`wizsync rollback RUN`: every chatbot the run changed goes back to its journaled pre-run config; a
rollback of the rollback re-applies the original; a secret the run changed (write-only on the
server) is named as not restorable, on stderr and in `--json`, and its value shows nowhere."""

from __future__ import annotations

import json
from pathlib import Path

from apply_fleet import Cli, live, promoted, query, strip_none, write_manifest

TOKEN = "roll-secret-token-7f3e91c2ab"  # ${secret:ROLL_TOKEN}, only in the environment
SECRET_BOT = ("acme", "developer-relations")  # has an MCP server `crm` in production already
SECRET_OVERRIDE = "{spec: {mcpServers: [{name: crm, headers: {Authorization: \"Bearer ${secret:ROLL_TOKEN}\"}}]}}"


def test_rollback_restores_snapshots_and_a_rollback_of_it_reapplies_the_original(emulator, secret_scan, tmp_path: Path) -> None:
    secret_scan.register("ROLL_TOKEN", TOKEN)
    write_manifest(tmp_path, emulator, overrides={SECRET_BOT: SECRET_OVERRIDE})
    cli = Cli(secret_scan, tmp_path, emulator, extra_env={"ROLL_TOKEN": TOKEN})
    before = live(emulator, "production")
    staging = live(emulator, "staging")
    assert any(s["name"] == "crm" for s in before[SECRET_BOT]["spec"]["mcpServers"])

    assert cli.apply("--allow-deletes").returncode == 0
    run_id = cli.last_run()["id"]
    applied = live(emulator, "production")
    secret_name = f"{SECRET_BOT[0]}/{SECRET_BOT[0]}-{SECRET_BOT[1]}"
    header = emulator.state.chatbot_by_name("org_acme_production", SECRET_BOT[1]).config["mcpServers"]
    assert any(s.get("headers", {}).get("Authorization") == f"Bearer {TOKEN}" for s in header)

    proc = cli.run("rollback", run_id, "--yes", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    lost = f"{secret_name}: mcpServers[crm].headers.Authorization"
    assert any(x.startswith(lost) for x in out["run"]["cannot_restore"]), out["run"]
    assert f"cannot restore: {lost}" in proc.stderr
    assert len(out["run"]["cannot_restore"]) == 1
    rollback_id = out["run_id"]
    assert out["run"]["parent_run"] == run_id and out["status"] == "completed"

    # every chatbot is back to its snapshot (and to what it was before the run, read independently)
    restored = live(emulator, "production")
    snapshots = {(r["tenant"], r["chatbot_id"]): json.loads(r["document"])
                 for r in query(cli.journal, "SELECT tenant, chatbot_id, document FROM snapshots WHERE run_id = ?", [run_id])}
    assert len(snapshots) == 60
    ids = {emulator.state.chatbot_by_name(f"org_{t}_production", n).id: (t, n) for t, n in restored}
    for (tenant, cb_id), snap in snapshots.items():
        key = ids[cb_id]
        assert key[0] == tenant
        assert restored[key]["spec"] == strip_none(snap["spec"]), key
        assert restored[key]["spec"] == before[key]["spec"], key
    # ... and an apply of the snapshots now would change nothing: a rollback of the same run is all noop
    noop = cli.run("rollback", run_id, "--yes", "--json")
    assert noop.returncode == 0, noop.stderr
    assert json.loads(noop.stdout)["run"]["counts"] == {"unchanged": 60}

    # the rollback of the rollback re-applies the original run's result
    redo = cli.run("rollback", rollback_id, "--yes")
    assert redo.returncode == 0, redo.stderr
    again = live(emulator, "production")
    for key, bot in again.items():
        assert bot["spec"] == applied[key]["spec"] == promoted(staging[key]["spec"]) | (
            {"mcpServers": bot["spec"]["mcpServers"]} if key == SECRET_BOT else {}
        ), key
