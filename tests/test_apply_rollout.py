"""`wizsync apply` end to end (real processes, emulator over HTTP): a 60-chatbot promotion over three
tenants in batches 1, 10%, 100% reaches exactly the desired state, `show` accounts for every chatbot
in wave order; a protected environment, `--plan RUN_ID` and deletes are refused or honoured as users
rely on, before anything is sent."""

from __future__ import annotations

from pathlib import Path

from apply_fleet import CANARY, EARLY, WAVE_OF, address, WAVE_RANK, Cli, applies_by_key, live, promoted, write_manifest

from wizchat_management import WizChatClient


def test_promotion_of_60_chatbots_in_batches_reaches_the_desired_state(emulator, secret_scan, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator)
    cli = Cli(secret_scan, tmp_path, emulator)
    staging = live(emulator, "staging")
    before = live(emulator, "production")
    assert any(before[k]["spec"] != promoted(staging[k]["spec"]) for k in staging)

    proc = cli.apply("--allow-deletes")
    assert proc.returncode == 0, proc.stderr
    run_id = cli.last_run()["id"]
    assert f"wizsync show {run_id}" in proc.stderr + proc.stdout

    after = live(emulator, "production")
    assert set(after) == set(staging) and len(after) == 60
    for key, bot in after.items():
        assert bot["spec"] == promoted(staging[key]["spec"]), key
        changed = before[key]["spec"] != bot["spec"]
        assert bot["revision"] == before[key]["revision"] + (1 if changed else 0), key

    shown = cli.show(run_id)
    assert shown["status"] == "completed" and shown["run"]["counts"] == {"applied": 60}
    bots = shown["chatbots"]
    assert len(bots) == 60 and len({(b["tenant"], b["chatbot_id"]) for b in bots}) == 60
    assert {(b["tenant"], b["chatbot_id"]) for b in bots} == {
        (t, emulator.state.chatbot_by_name(f"org_{t}_production", n).id) for t, n in after
    }
    sizes: dict[int, int] = {}
    for b in bots:
        sizes[b["batch"]] = sizes.get(b["batch"], 0) + 1
    assert sizes == {1: 1, 2: 6, 3: 53}
    # waves: canary alone first, then the early wave, then the rest (manifest order lists them last)
    by_name = {b["name"]: b for b in bots}
    assert by_name[address(CANARY)]["batch"] == 1
    assert all(by_name[address(e)]["batch"] == 2 for e in EARLY)
    ranks = sorted((b["batch"], WAVE_RANK[WAVE_OF.get(b["name"], "default")]) for b in bots)
    assert [r for _, r in ranks] == sorted(r for _, r in ranks)

    # the same apply again: every chatbot unchanged, no apply request sent
    sent = sum(applies_by_key(emulator).values())
    again = cli.apply("--allow-deletes")
    assert again.returncode == 0, again.stderr
    assert cli.show(cli.last_run()["id"])["run"]["counts"] == {"unchanged": 60}
    assert sum(applies_by_key(emulator).values()) == sent


def test_protected_environment_without_yes_or_tty_refuses_before_any_request(emulator, secret_scan, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator)
    cli = Cli(secret_scan, tmp_path, emulator)
    stats = emulator.stats()
    proc = cli.run("apply", "wizsync.yaml", "--env", "production", "--allow-deletes")
    assert proc.returncode == 1
    assert "protected" in proc.stderr and "--yes" in proc.stderr
    assert emulator.stats() == stats


def test_deletes_are_refused_naming_them_before_anything_is_applied(emulator, secret_scan, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator)
    cli = Cli(secret_scan, tmp_path, emulator)
    before = live(emulator, "production")
    proc = cli.apply()
    assert proc.returncode == 1, proc.stderr
    # demo production chatbots carry domains staging lacks: the promotion prunes them
    assert "--allow-deletes" in proc.stderr and "domains[" in proc.stderr
    assert "Nothing was applied" in proc.stderr
    assert sum(applies_by_key(emulator).values()) == 0
    assert live(emulator, "production") == before
    assert cli.last_run()["status"] == "failed"
    # --no-prune keeps them: nothing deleted, the rest applied
    ok = cli.apply("--no-prune")
    assert ok.returncode == 0, ok.stderr
    for key, bot in live(emulator, "production").items():
        kept = {d["hostname"] for d in before[key]["spec"].get("domains") or []}
        assert kept <= {d["hostname"] for d in bot["spec"].get("domains") or []}, key


def test_apply_plan_run_applies_exactly_that_plan_and_marks_drift(emulator, secret_scan, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator)
    cli = Cli(secret_scan, tmp_path, emulator)
    plan = cli.run("plan", "wizsync.yaml", "--env", "production")
    assert plan.returncode == 0, plan.stderr
    plan_id = cli.last_run()["id"]

    # between plan and apply, someone changes one chatbot on the server
    tenant, name = "globex", "faq-bot"
    cb_id = emulator.state.chatbot_by_name(f"org_{tenant}_production", name).id
    with WizChatClient(emulator.key_env["WIZCHAT_GLOBEX_PRODUCTION_KEY"], base_url=emulator.base_url) as c:
        c.apply_config(cb_id, {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig", "spec": {"core": {"temperature": 0.99}}})
    revision = emulator.state.chatbots[cb_id].revision
    applies = sum(applies_by_key(emulator).values())

    proc = cli.apply("--allow-deletes", "--plan", plan_id)
    assert proc.returncode == 1, proc.stderr  # a drifted item is not a success
    # A resume applies the same plan again, so it can never finish this run: no resume hint,
    # but what to do instead (the same in `show`).
    for text in (proc.stdout + proc.stderr, cli.run("show", cli.last_run()["id"], "--journal", str(cli.journal)).stdout):
        assert "wizsync resume" not in text, text
        assert "plan again" in text and f"{tenant}/{name}" in text, text
    shown = cli.show(cli.last_run()["id"])
    states = {b["name"]: b["state"] for b in shown["chatbots"]}
    drifted = [n for n, s in states.items() if s == "drifted"]
    assert drifted == [f"{tenant}/{name}"], states
    assert set(states.values()) == {"applied", "drifted"}
    assert emulator.state.chatbots[cb_id].revision == revision  # not applied
    assert sum(applies_by_key(emulator).values()) == applies + 59
    bot = next(b for b in shown["chatbots"] if b["name"] == f"{tenant}/{name}")
    assert bot["error"]["code"] == "drifted" and plan_id in bot["error"]["message"]


def test_apply_plan_run_with_deletes_is_refused_without_allow_deletes(emulator, secret_scan, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator)
    cli = Cli(secret_scan, tmp_path, emulator)
    assert cli.run("plan", "wizsync.yaml", "--env", "production").returncode == 0
    plan_id = cli.last_run()["id"]
    proc = cli.apply("--plan", plan_id)
    assert proc.returncode == 1
    assert "--allow-deletes" in proc.stderr and "domains[" in proc.stderr
    assert sum(applies_by_key(emulator).values()) == 0
