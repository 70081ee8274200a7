"""A plan file travels: `plan --out FILE` in the checkout, `apply FILE` from a folder with no manifest.

Against the emulator over real HTTP: the file holds secrets only as ${secret:NAME} references
and keys only as variable names; applied from another directory it applies exactly its plan,
and a chatbot changed on the server since the plan is refused by name (drifted), not applied.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from docs_fleet import SECRET_NAME, SECRET_VALUE, cli_env, wizsync, write_manifest
from wizchat_management import WizChatClient
from wizchat_management.emulator import EmulatorServer

SELECT = ["--chatbot", "acme/support-billing", "--chatbot", "globex/*"]


def test_plan_file_applies_from_another_folder_and_refuses_a_drifted_chatbot(secret_scan: Any, tmp_path: Path) -> None:
    checkout, elsewhere = tmp_path / "checkout", tmp_path / "elsewhere"
    checkout.mkdir()
    elsewhere.mkdir()
    procs = []
    with EmulatorServer(seed="demo") as emu:
        secret_scan.register_all(emu.keys)
        write_manifest(checkout, emu.base_url)
        env = cli_env(emu.key_env, NO_COLOR="1")
        plan = wizsync(["plan", "wizsync.yaml", "--env", "production", *SELECT, "--out", "plan.json"], env, checkout)
        procs.append(plan)
        assert plan.returncode == 0, plan.stderr
        text = (checkout / "plan.json").read_text()
        data = json.loads(text)
        assert data["format"] == "wizsync.planfile/v1" and data["environment"] == "production"
        assert data["manifest"]["hash"].startswith("sha256:") and data["wizsync_version"]
        assert {k["env"] for k in data["keys"].values()} == {"WIZCHAT_ACME_PRODUCTION_KEY", "WIZCHAT_GLOBEX_PRODUCTION_KEY"}
        assert "${secret:" + SECRET_NAME + "}" in text and SECRET_VALUE not in text
        assert all(isinstance(c["revision"], int) for c in data["chatbots"])
        assert not any(v in text for v in emu.keys.values() if isinstance(v, str))

        # A hand-edited plan whose operations are no longer operations: named, nothing sent.
        broken = json.loads(text)
        broken["chatbots"][1]["ops"] = [{"op": 5, "section": "core"}]
        (checkout / "broken.json").write_text(json.dumps(broken))
        before = emu.stats()["total"]["requests"]
        refused = wizsync(["apply", "broken.json", "--yes"], env, checkout)
        procs.append(refused)
        assert refused.returncode == 1 and "chatbots[1].ops" in refused.stderr and "broken.json" in refused.stderr
        assert "Traceback" not in refused.stderr and emu.stats()["total"]["requests"] == before

        # Someone changes one chatbot on the server after the plan was reviewed.
        cb_id = emu.state.chatbot_by_name("org_globex_production", "support-technical").id
        with WizChatClient(emu.key_env["WIZCHAT_GLOBEX_PRODUCTION_KEY"], base_url=emu.base_url) as c:
            c.apply_config(cb_id, {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig", "spec": {"core": {"temperature": 0.99}}})
        drifted_revision = emu.state.chatbots[cb_id].revision

        # The checkout is gone: only the plan file, in a folder with no manifest.
        shutil.move(str(checkout / "plan.json"), str(elsewhere / "plan.json"))
        shutil.rmtree(checkout)
        applied = wizsync(["apply", "plan.json", "--yes", "--json"], env, elsewhere)
        procs.append(applied)
        assert applied.returncode == 1, applied.stderr  # a drifted chatbot is not a success
        doc = json.loads(applied.stdout)
        states = {b["name"]: b["state"] for b in doc["chatbots"]}
        assert states == {"acme/support-billing": "applied", "globex/support-account": "applied",
                          "globex/support-technical": "drifted"}, states
        bot = next(b for b in doc["chatbots"] if b["name"] == "globex/support-technical")
        assert "changed on the server" in bot["error"]["message"]
        assert emu.state.chatbots[cb_id].revision == drifted_revision  # not applied
        assert (elsewhere / ".wizsync" / "journal.db").is_file()  # the journal beside the plan file
        # The secret reached the server (resolved from the environment), never the file or the output.
        billing = emu.state.chatbot_by_name("org_acme_production", "support-billing")
        assert SECRET_VALUE in json.dumps(vars(emu.state.chatbots[billing.id]), default=str)
        assert "wizsync resume" not in applied.stderr + applied.stdout  # the plan can never be met: plan again
    for n, proc in enumerate(procs):
        secret_scan.record(f"proc {n} stdout", proc.stdout)
        secret_scan.record(f"proc {n} stderr", proc.stderr)


def test_a_plan_file_of_another_format_or_with_selection_options_is_refused(secret_scan: Any, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from wizsync.cli import cli

    old = tmp_path / "old.json"
    old.write_text(json.dumps({"format": "wizsync.planfile/v9", "environment": "production", "keys": {}, "chatbots": []}))
    runner = CliRunner()
    result = runner.invoke(cli, ["apply", str(old), "--yes", "--journal", str(tmp_path / "j.db")])
    secret_scan.record("old format", result.output)
    assert result.exit_code == 1 and "wizsync.planfile/v1" in result.stderr and str(old) in result.stderr
    assert not (tmp_path / "j.db").exists()  # refused before any journal or request
    result = runner.invoke(cli, ["apply", str(old), "--yes", "--select", "tier=gold"])
    secret_scan.record("select", result.output)
    assert result.exit_code == 2 and "--select" in result.stderr


def test_the_streamed_plan_file_has_the_bytes_of_the_whole_one(secret_scan: Any, tmp_path: Path, monkeypatch: Any) -> None:
    # `plan --out` writes each chatbot's entry as its dry-run lands; the file must be the one the
    # whole-plan builder makes from every outcome, in the fleet's order, keys included.
    import wizsync.journal
    from wizsync.engine import run
    from wizsync.fleet.session import open_session
    from wizsync.plan.planfile import PlanFileWriter, plan_file_data, write_plan_file
    from wizsync.run.plan_run import run_plan

    monkeypatch.setattr(wizsync.journal, "now_rfc3339", lambda: "2026-12-02T00:00:00Z")
    with EmulatorServer(seed="demo") as emu:
        secret_scan.register_all(emu.keys)
        manifest = write_manifest(tmp_path, emu.base_url)
        for name, value in cli_env(emu.key_env).items():
            monkeypatch.setenv(name, value)
        session = open_session(manifest, "production", journal=tmp_path / "j.db", concurrency=8)
        with PlanFileWriter(session, no_prune=False) as writer:
            result = run(run_plan(session, keep_outcomes=True, plan_file=writer))
            assert not result.errors and len(result.outcomes) == 5
            writer.write(tmp_path / "streamed.json", result.run_id, "1.2.3")
        write_plan_file(tmp_path / "whole.json", plan_file_data(session, result, no_prune=False, version="1.2.3"))
    streamed, whole = (tmp_path / "streamed.json").read_text(), (tmp_path / "whole.json").read_text()
    assert streamed == whole
    data = json.loads(streamed)
    assert [c["name"] for c in data["chatbots"]] == [o.item.name for o in result.outcomes]
    assert len(data["keys"]) >= 2 and "${secret:" + SECRET_NAME + "}" in streamed and SECRET_VALUE not in streamed
    assert not (tmp_path / "streamed.json.tmp").exists()
    secret_scan.record("streamed plan file", streamed)


def test_an_interrupted_plan_file_write_leaves_the_old_file(secret_scan: Any, tmp_path: Path, monkeypatch: Any) -> None:
    from wizsync.engine import run
    from wizsync.fleet.session import open_session
    from wizsync.plan.planfile import PlanFileWriter
    from wizsync.run.plan_run import run_plan

    with EmulatorServer(seed="demo") as emu:
        secret_scan.register_all(emu.keys)
        manifest = write_manifest(tmp_path, emu.base_url)
        for name, value in cli_env(emu.key_env).items():
            monkeypatch.setenv(name, value)
        session = open_session(manifest, "production", journal=tmp_path / "j.db")
        target = tmp_path / "plan.json"
        target.write_text("the old plan\n")
        with PlanFileWriter(session, no_prune=False) as writer:
            result = run(run_plan(session, keep_outcomes=False, plan_file=writer))
            chunks = writer._chunks

            def broken(run_id: str, version: str) -> Any:
                it = chunks(run_id, version)
                yield next(it)
                yield next(it)
                raise KeyboardInterrupt  # the operator's ^C half-way through the rows

            monkeypatch.setattr(writer, "_chunks", broken)
            try:
                writer.write(target, result.run_id, "1.2.3")
            except KeyboardInterrupt:
                pass
            else:
                raise AssertionError("the write was not interrupted")
    assert target.read_text() == "the old plan\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("plan.json")) == ["plan.json"]
