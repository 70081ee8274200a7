"""Fleet loading under a fault storm: a chatbot whose live source cannot be fetched fails alone.

Every chatbot renders from its own live config (``source: {self: true}``), so loading the fleet
sends one ``get_config`` per chatbot before any plan. With 70 % of answers 5xx, some of those
fetches still fail after the engine's retries. Those chatbots (and only those) fail with their
own name and the server's error; the run goes on for the rest, counts them against the failure
budget, and a resume once the storm is over finishes them. A plan journals every chatbot,
the unloadable ones ``failed``. A refused key (401) is still the manifest's key line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import generated_fleet as fleet
from apply_fleet import query

from wizchat_management import WizChatClient
from wizchat_management.emulator import EmulatorServer

N, K = 30, 3
ERROR_RATE = 0.7


def write_manifest(directory: Path, base_url: str, n: int = N, k: int = K) -> None:
    lines = ["version: 1", "environments:", f'  {fleet.ENV}: {{baseUrl: "{base_url}"}}', "tenants:"]
    lines += [f"  {fleet.tenant(t)}: {{keys: {{{fleet.ENV}: {{env: {fleet.env_name(t)}}}}}}}" for t in range(k)]
    lines += ["defaults:", "  sections: [core]", "  source: {self: true}", "chatbots:"]
    override = f"{{{fleet.ENV}: {{spec: {{core: {{temperature: {fleet.WANT_TEMPERATURE}}}}}}}}}"
    lines += [f"  - {{name: {fleet.name(t, i)}, tenant: {fleet.tenant(t)}, ids: {{{fleet.ENV}: {fleet.chatbot_id(t, i)}}}, "
              f"overrides: {override}}}" for t, i in fleet.members(n, k)]
    (directory / "wizsync.yaml").write_text("\n".join(lines) + "\n")


def unloaded(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if "loading the fleet: get_config of source" in (r["error_message"] or "")]


def test_apply_through_fleet_loading_faults_fails_only_the_unloadable_and_resume_finishes(
    fast_backoff: None, secret_scan: Any, tmp_path: Path
) -> None:
    with EmulatorServer(seed=fleet.seed(N, K), error_rate=ERROR_RATE, fault_seed=1) as emu:  # a seed whose pin-proof listings (before fleet loading) get through
        secret_scan.register_all(emu.keys)
        write_manifest(tmp_path, emu.base_url)
        journal = tmp_path / "journal.db"
        secret_scan.watch_journal(journal)
        args = ["--env", fleet.ENV, "--journal", str(journal), "--json"]
        proc = secret_scan.run(["apply", "wizsync.yaml", *args, "--yes", "--batches", "50%,100%", "--max-failures", "100%"],
                               cwd=tmp_path, env=emu.key_env, timeout=120)
        assert "Traceback" not in proc.stderr
        assert proc.returncode == 1, proc.stderr[-2000:]
        doc = json.loads(proc.stdout)
        assert "run_id" in doc, (doc, proc.stderr[-2000:])
        run_id = doc["run_id"]
        assert doc["status"] == "failed", doc["status"]  # it ran to the end: not aborted, not halted

        rows = query(journal, "SELECT name, state, error_code, error_message, batch FROM items WHERE run_id = ?", [run_id])
        assert len(rows) == N  # every chatbot is in the journal, loaded or not
        lost = unloaded(rows)
        assert lost, "the storm should have failed some fleet-loading fetches"
        for r in lost:
            assert r["state"] == "failed" and r["batch"] in (1, 2), r
            assert r["error_code"] in ("internal_error", "unavailable"), r
            assert "tenants." not in r["error_message"]  # not blamed on the manifest's key line
        assert any(r["state"] == "applied" for r in rows), rows  # the run went on for the rest
        assert "loading the fleet: get_config of source" in proc.stdout  # shown with the chatbot

        emu.set_faults(clear=True)
        proc = secret_scan.run(["resume", run_id, "--journal", str(journal), "--json", "--yes"], cwd=tmp_path,
                               env=emu.key_env, timeout=120)
        assert "Traceback" not in proc.stderr
        assert json.loads(proc.stdout)["status"] == "completed", proc.stderr[-2000:]
        states = query(journal, "SELECT state FROM items WHERE run_id = ?", [run_id])
        assert {s["state"] for s in states} <= {"applied", "unchanged"}, states
        clients = {t: WizChatClient(emu.keys[fleet.label(t)], base_url=emu.base_url) for t in range(K)}
        try:
            for t, i in fleet.members(N, K):
                core = clients[t].get_config(fleet.chatbot_id(t, i)).model_dump(mode="json", by_alias=True)["spec"]["core"]
                assert core["temperature"] == fleet.WANT_TEMPERATURE, (t, i, core)
        finally:
            for c in clients.values():
                c.close()
        secret_scan.check()


def test_plan_through_fleet_loading_faults_journals_every_chatbot(fast_backoff: None, secret_scan: Any, tmp_path: Path) -> None:
    with EmulatorServer(seed=fleet.seed(N, K), error_rate=ERROR_RATE, fault_seed=5) as emu:
        secret_scan.register_all(emu.keys)
        write_manifest(tmp_path, emu.base_url)
        journal = tmp_path / "journal.db"
        secret_scan.watch_journal(journal)
        proc = secret_scan.run(["plan", "wizsync.yaml", "--env", fleet.ENV, "--journal", str(journal), "--json"],
                               cwd=tmp_path, env=emu.key_env, timeout=120)
        assert "Traceback" not in proc.stderr
        assert proc.returncode == 1, proc.stderr[-2000:]
        doc = json.loads(proc.stdout)
        rows = query(journal, "SELECT name, state, error_code, error_message FROM items WHERE run_id = ?", [doc["run_id"]])
        assert sorted(r["name"] for r in rows) == sorted(f"{fleet.tenant(t)}/{fleet.name(t, i)}" for t, i in fleet.members(N, K))
        lost = unloaded(rows)
        assert lost and all(r["state"] == "failed" for r in lost), rows
        assert {r["state"] for r in rows} <= {"planned", "failed"}, rows
        secret_scan.check()


def test_a_refused_key_while_loading_the_fleet_still_names_the_key_line(secret_scan: Any, tmp_path: Path) -> None:
    with EmulatorServer(seed=fleet.seed(6, 2)) as emu:
        secret_scan.register_all(emu.keys)
        write_manifest(tmp_path, emu.base_url, 6, 2)
        env = {**emu.key_env, fleet.env_name(1): "wpk_test_" + "x" * 30}
        proc = secret_scan.run(["plan", "wizsync.yaml", "--env", fleet.ENV, "--journal", str(tmp_path / "j.db")],
                               cwd=tmp_path, env=env, timeout=60)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert f"tenants.{fleet.tenant(1)}.keys.{fleet.ENV}" in proc.stderr, proc.stderr
        assert "401" in proc.stderr, proc.stderr
        secret_scan.check()

