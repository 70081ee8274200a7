"""The failure budget: two chatbots that fail with a 422 (an unverifiable domain) under
`--max-failures 1` halt the run after their batch; later batches are not touched on the server; the
failures say where the apply stopped and what the server kept; a resume after fixing the cause
finishes the run."""

from __future__ import annotations

from pathlib import Path

from apply_fleet import Cli, applies_by_key, live, promoted, write_manifest

BAD = "{spec: {domains: [{hostname: x.unverified}]}}"
FIXED = "{spec: {core: {temperature: 0.42}}}"
FAILING = [("acme", "support-returns"), ("globex", "hr-helpdesk")]


def test_two_422s_over_a_budget_of_one_halt_the_run_and_resume_finishes_it(emulator, secret_scan, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator, overrides={k: BAD for k in FAILING})
    cli = Cli(secret_scan, tmp_path, emulator)
    before = live(emulator, "production")

    proc = cli.apply("--allow-deletes", "--max-failures", "1")
    assert proc.returncode == 1
    assert "halted after batch 2 of 3" in proc.stderr and "budget of 1" in proc.stderr
    run_id = cli.last_run()["id"]
    assert f"wizsync resume {run_id}" in proc.stdout + proc.stderr

    shown = cli.show(run_id)
    assert shown["status"] == "halted"
    bots = {b["name"]: b for b in shown["chatbots"]}
    failed = {n for n, b in bots.items() if b["state"] == "failed"}
    assert failed == {f"{t}/{t}-{n}" for t, n in FAILING}
    for name in failed:
        b = bots[name]
        assert b["batch"] == 2
        assert b["failed"] == {"op": "create", "section": "domains", "key": "x.unverified",
                               "code": "domain_verification_failed", "message": b["error"]["message"]}
        assert "x.unverified" in b["error"]["message"]
        # what ran before the failing operation was kept by the server, and the journal says so
        assert b["applied_ops"] and all(op["section"] != "domains" for op in b["applied_ops"])
    assert {b["state"] for b in bots.values() if b["batch"] <= 2} == {"applied", "failed"}
    batch3 = [b for b in bots.values() if b["batch"] == 3]
    assert len(batch3) == 53 and {b["state"] for b in batch3} == {"planned"}  # planned up front, never applied

    # later batches untouched on the server: same config and revision, no apply request sent
    after = live(emulator, "production")
    ids = {emulator.state.chatbot_by_name(f"org_{t}_production", n).id: (t, n) for t, n in after}
    for b in batch3:
        key = ids[b["chatbot_id"]]
        assert after[key] == before[key], key
    assert sum(applies_by_key(emulator).values()) == 7  # batches 1 and 2 only

    # a resume with the cause left in place halts again at the same batch, applying nothing more
    again = cli.run("resume", run_id, "--yes")
    assert again.returncode == 1 and "halted after batch 2" in again.stderr
    assert sum(applies_by_key(emulator).values()) == 9  # only the two failed ones, re-tried

    # fix the cause (the manifest), resume --force: the run continues and completes
    write_manifest(tmp_path, emulator, overrides={k: FIXED for k in FAILING})
    refused = cli.run("resume", run_id, "--yes")
    assert refused.returncode == 1 and "--force" in refused.stderr and "changed" in refused.stderr
    done = cli.run("resume", run_id, "--yes", "--force")
    assert done.returncode == 0, done.stderr
    final = cli.show(run_id)
    assert final["status"] == "completed" and final["run"]["counts"] == {"applied": 60}
    staging = live(emulator, "staging")
    for key, bot in live(emulator, "production").items():
        want = promoted(staging[key]["spec"])
        if key in FAILING:
            want["core"]["temperature"] = 0.42
            # the failing domain never reached the server
            assert all(d["hostname"] != "x.unverified" for d in bot["spec"].get("domains") or [])
        assert bot["spec"] == want, key
