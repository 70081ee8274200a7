"""Rollback knows what changed since: a chatbot changed after the rolled-back run left it (by a later
run, or by hand) is listed and left alone — not silently reverted — unless `--force`; the rest is
restored, arrays in their original order."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

from apply_fleet import Cli, clients, live, write_manifest
from wizsync.run.flows import RefusedError, rollback_run

LATER = ("globex", "faq-bot")  # changed by a later run
BY_HAND = ("initech", "hr-helpdesk")  # changed by hand, through the API


def test_rollback_skips_and_names_what_changed_since_and_force_restores_it(emulator, secret_scan, tmp_path: Path,
                                                                           monkeypatch) -> None:
    write_manifest(tmp_path, emulator, protected=False)
    cli = Cli(secret_scan, tmp_path, emulator)
    before = live(emulator, "production")
    assert cli.apply("--allow-deletes").returncode == 0
    run_id = cli.last_run()["id"]

    write_manifest(tmp_path, emulator, protected=False, overrides={LATER: "{spec: {core: {welcomeMessage: later-run}}}"})
    later = cli.apply("--allow-deletes", "--chatbot", f"{LATER[0]}-{LATER[1]}")
    assert later.returncode == 0, later.stderr
    hand_id = emulator.state.chatbot_by_name(f"org_{BY_HAND[0]}_production", BY_HAND[1]).id
    with clients(emulator, "production")[BY_HAND[0]] as client:
        client.apply_config(hand_id, {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig",
                                      "spec": {"core": {"welcomeMessage": "edited by hand"}}})
    kept = live(emulator, "production")
    applies = emulator.stats()["total"]["applies"]

    # The question an operator answers counts what will be restored, and says what is spared.
    asked: list[str] = []
    for name, value in emulator.key_env.items():
        monkeypatch.setenv(name, value)
    with contextlib.suppress(RefusedError):
        asyncio.run(rollback_run(cli.journal, run_id, confirm_for=lambda env, protected: lambda q: asked.append(q) or False))
    assert len(asked) == 1 and asked[0].startswith(f"Roll back 58 chatbot(s) of 'production' changed by run {run_id}"), asked
    assert "2 more changed since and are left alone; --force restores them" in asked[0], asked
    assert emulator.stats()["total"]["applies"] == applies  # declined: nothing sent

    back = cli.run("rollback", run_id, "--yes", "--json")
    assert back.returncode == 0, back.stderr
    doc = json.loads(back.stdout)
    assert doc["status"] == "completed" and doc["run"]["counts"] == {"applied": 58, "skipped": 2}, doc["run"]["counts"]
    assert "left alone, changed since run" in back.stderr and "--force" in back.stderr, back.stderr
    for tenant, name in (LATER, BY_HAND):
        assert f"{tenant}-{name}" in back.stderr or name in back.stderr, back.stderr
    skipped = {c["name"]: c for c in doc["chatbots"] if c["state"] == "skipped"}
    assert len(skipped) == 2 and all(c["error"]["code"] == "changed_since" for c in skipped.values()), skipped
    assert emulator.stats()["total"]["applies"] - applies == 58  # the two were not sent

    now = live(emulator, "production")
    for key in before:
        if key in (LATER, BY_HAND):
            assert now[key]["spec"] == kept[key]["spec"], key  # the later change survives
        else:
            assert now[key]["spec"] == before[key]["spec"], key  # arrays included, in their original order
    assert now[LATER]["spec"]["core"]["welcomeMessage"] == "later-run"
    restored_arrays = [key for key in before if len(before[key]["spec"].get("mcpServers") or []) > 1]
    assert restored_arrays  # the comparison above covered multi-item arrays
    for key in restored_arrays:
        if key not in (LATER, BY_HAND):
            names = [s["name"] for s in now[key]["spec"]["mcpServers"]]
            assert names == [s["name"] for s in before[key]["spec"]["mcpServers"]], key

    # Rolling back again is a no-op for what the first rollback restored; --force takes the two.
    forced = cli.run("rollback", run_id, "--yes", "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    counts = json.loads(forced.stdout)["run"]["counts"]
    assert counts.get("applied") == 2 and counts.get("unchanged") == 58 and "skipped" not in counts, counts
    final = live(emulator, "production")
    for key in (LATER, BY_HAND):
        assert final[key]["spec"]["core"] == before[key]["spec"]["core"], key
