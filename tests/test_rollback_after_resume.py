"""Rollback of a run that needed more than one attempt on a chatbot restores everything that run
changed on it, not only what its last attempt changed: a 422 partial failure that kept some
sections and was then finished by a resume, or an apply the server took just before the process
died (journaled `applying`) that the resume then found all noop."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from apply_fleet import Cli, clients, live, write_manifest

BAD = "{spec: {domains: [{hostname: x.unverified}]}}"
FIXED = "{spec: {core: {temperature: 0.42}}}"
BOT = ("acme", "support-returns")
NAME = f"{BOT[0]}/{BOT[0]}-{BOT[1]}"  # the address of the explicit entry write_manifest writes


def test_rollback_after_a_422_finished_by_resume_restores_what_the_first_attempt_kept(emulator, secret_scan, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator, overrides={BOT: BAD}, protected=False)
    cli = Cli(secret_scan, tmp_path, emulator)
    before = live(emulator, "production")[BOT]

    first = cli.apply("--allow-deletes", "--chatbot", NAME, "--max-failures", "1")
    assert first.returncode == 1, first.stderr
    run_id = cli.last_run()["id"]
    kept = live(emulator, "production")[BOT]
    assert kept["spec"] != before["spec"]  # the 422 kept what ran before the failing domain

    write_manifest(tmp_path, emulator, overrides={BOT: FIXED}, protected=False)
    done = cli.run("resume", run_id, "--yes", "--force")
    assert done.returncode == 0, done.stderr

    back = cli.run("rollback", run_id, "--yes")
    assert back.returncode == 0, back.stderr
    assert live(emulator, "production")[BOT]["spec"] == before["spec"]


def test_rollback_after_a_crash_right_after_the_apply_then_resume_restores_it(emulator, secret_scan, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator, overrides={BOT: FIXED}, protected=False)  # an entry at address NAME
    cli = Cli(secret_scan, tmp_path, emulator)
    before = live(emulator, "production")[BOT]

    assert cli.apply("--allow-deletes", "--chatbot", NAME).returncode == 0
    run_id = cli.last_run()["id"]
    assert live(emulator, "production")[BOT]["spec"] != before["spec"]
    # What a kill -9 after the server applied but before the answer was journaled leaves behind.
    conn = sqlite3.connect(cli.journal)
    with conn:
        conn.execute("UPDATE items SET state = 'applying', applied_ops = NULL, revision_after = NULL, finished_at = NULL "
                     "WHERE run_id = ? AND name = ?", [run_id, NAME])
        conn.execute("UPDATE runs SET status = 'running' WHERE id = ?", [run_id])
    conn.close()

    resumed = cli.run("resume", run_id, "--yes")
    assert resumed.returncode == 0, resumed.stderr
    assert cli.show(run_id)["run"]["counts"] == {"applied": 1}

    back = cli.run("rollback", run_id, "--yes")
    assert back.returncode == 0, back.stderr
    assert live(emulator, "production")[BOT]["spec"] == before["spec"]


def test_rollback_removes_an_object_section_key_the_run_added(emulator, secret_scan, tmp_path: Path) -> None:
    # core/security/telemetry merge on apply (keys not given stay), so restoring the snapshot's
    # section alone would keep a key the run added: rollback must remove it (given as null).
    # footerNote is no key the contract names: the manifest says it means it (allowUnknown).
    write_manifest(tmp_path, emulator, overrides={BOT: "{spec: {core: {footerNote: added-by-run}}}"}, protected=False,
                   allow_unknown=["spec.core.footerNote"])
    cli = Cli(secret_scan, tmp_path, emulator)
    before = live(emulator, "production")[BOT]
    assert "footerNote" not in before["spec"]["core"]

    assert cli.apply("--allow-deletes", "--chatbot", NAME).returncode == 0
    run_id = cli.last_run()["id"]
    assert live(emulator, "production")[BOT]["spec"]["core"]["footerNote"] == "added-by-run"

    back = cli.run("rollback", run_id, "--yes")
    assert back.returncode == 0, back.stderr
    assert live(emulator, "production")[BOT]["spec"] == before["spec"]
    # and the rollback of the rollback puts it back
    redo = cli.run("rollback", cli.last_run()["id"], "--yes")
    assert redo.returncode == 0, redo.stderr
    assert live(emulator, "production")[BOT]["spec"]["core"]["footerNote"] == "added-by-run"


def test_a_snapshot_taken_before_an_apply_that_was_never_sent_is_retaken_on_resume(emulator, secret_scan, tmp_path: Path) -> None:
    # Ctrl-C stops a queued apply after its snapshot, before sending it (the item goes back to
    # `planned`, no attempt). If the chatbot is changed by hand before the resume, the resume's
    # apply changes the hand-edited config: rollback must restore that, not the stale snapshot.
    write_manifest(tmp_path, emulator, overrides={BOT: FIXED}, protected=False)
    cli = Cli(secret_scan, tmp_path, emulator)
    original = live(emulator, "production")[BOT]
    assert cli.apply("--allow-deletes", "--chatbot", NAME).returncode == 0
    run_id = cli.last_run()["id"]
    conn = sqlite3.connect(cli.journal)
    with conn:  # the state the stopped apply leaves: snapshot kept, nothing sent
        conn.execute("UPDATE items SET state = 'planned', attempts = 0, applied_ops = NULL, revision_after = NULL, "
                     "applying_at = NULL, finished_at = NULL WHERE run_id = ? AND name = ?", [run_id, NAME])
        conn.execute("UPDATE runs SET status = 'interrupted' WHERE id = ?", [run_id])
    conn.close()
    # meanwhile, by hand: back to the original config, with another welcome message
    edited = {**original["spec"], "core": {**original["spec"]["core"], "welcomeMessage": "edited by hand"}}
    bot_id = emulator.state.chatbot_by_name("org_acme_production", BOT[1]).id
    with clients(emulator, "production")["acme"] as client:
        client.apply_config(bot_id, {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig", "spec": edited}, prune=True)
    hand = live(emulator, "production")[BOT]
    assert hand["spec"]["core"]["welcomeMessage"] == "edited by hand"

    resumed = cli.run("resume", run_id, "--yes")
    assert resumed.returncode == 0, resumed.stderr
    assert live(emulator, "production")[BOT]["spec"]["core"]["temperature"] == 0.42

    back = cli.run("rollback", run_id, "--yes")
    assert back.returncode == 0, back.stderr
    assert live(emulator, "production")[BOT]["spec"] == hand["spec"]


def test_rollback_of_a_422_restores_what_the_server_kept(emulator, secret_scan, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator, overrides={BOT: BAD}, protected=False)
    cli = Cli(secret_scan, tmp_path, emulator)
    before = live(emulator, "production")[BOT]
    assert cli.apply("--allow-deletes", "--chatbot", NAME).returncode == 1
    run_id = cli.last_run()["id"]
    assert live(emulator, "production")[BOT]["spec"] != before["spec"]

    back = cli.run("rollback", run_id, "--yes")
    assert back.returncode == 0, back.stderr
    assert live(emulator, "production")[BOT]["spec"] == before["spec"]


def test_rollback_after_a_crash_then_a_resume_whose_fresh_plan_failed_still_restores_it(emulator, secret_scan, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator, overrides={BOT: FIXED}, protected=False)
    cli = Cli(secret_scan, tmp_path, emulator)
    before = live(emulator, "production")[BOT]
    assert cli.apply("--allow-deletes", "--chatbot", NAME).returncode == 0
    run_id = cli.last_run()["id"]
    conn = sqlite3.connect(cli.journal)
    with conn:  # killed after the server applied, before the answer was journaled
        conn.execute("UPDATE items SET state = 'applying', applied_ops = NULL, revision_after = NULL, finished_at = NULL "
                     "WHERE run_id = ? AND name = ?", [run_id, NAME])
        conn.execute("UPDATE runs SET status = 'interrupted' WHERE id = ?", [run_id])
    conn.close()
    # the resume's fresh plan fails (the server refuses the document: a hostname the local schema,
    # a plain string, accepts and the server's DNS-name rule does not): the item ends failed
    write_manifest(tmp_path, emulator, overrides={BOT: '{spec: {domains: [{hostname: "not a hostname"}]}}'}, protected=False)
    resumed = cli.run("resume", run_id, "--yes", "--force")
    assert resumed.returncode == 1
    assert cli.show(run_id)["run"]["counts"] == {"failed": 1}

    back = cli.run("rollback", run_id, "--yes")
    assert back.returncode == 0, back.stderr
    assert live(emulator, "production")[BOT]["spec"] == before["spec"]
