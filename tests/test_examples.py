"""Every manifest under manifests/ works against `wizsync emulator --seed demo`, as its header says.

Each example directory is copied to a temporary directory with its baseUrl
pointed at a fresh demo emulator, then run through the real CLI: validate,
plan of every environment it declares, and for the three shipped examples an
apply (completed, every chatbot applied or unchanged) and a second plan that
finds nothing left to change. No key or secret value shows anywhere.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from secret_scan import SecretScan
from wizchat_management.emulator import EmulatorServer

MANIFESTS = Path(__file__).resolve().parent.parent / "manifests"
EXAMPLE_URL = "http://127.0.0.1:8787"  # what the examples say: `wizsync emulator` on its default port
SECRETS = {"ACME_KB_TOKEN": "kb-token-for-the-examples-7f3a9c"}  # the examples' ${secret:...} values

# Example → the environment its apply is tested on (check_example says what it must have done).
APPLIES = {"promotion": "production", "bulk-update": "staging", "canary": "production"}
EXAMPLES = sorted(p.parent.name for p in MANIFESTS.glob("*/wizsync.yaml"))


def test_every_manifest_under_manifests_is_an_example_directory() -> None:
    # A manifest anywhere else would not be picked up by the tests below.
    manifests = [p for p in MANIFESTS.rglob("*.y*ml") if "configs" not in p.relative_to(MANIFESTS).parts]
    assert manifests and all(p.name == "wizsync.yaml" and p.parent.parent == MANIFESTS for p in manifests), manifests
    assert set(APPLIES) <= set(EXAMPLES)
    for name in EXAMPLES:  # each says what it shows and how to run it against the emulator
        head = (MANIFESTS / name / "wizsync.yaml").read_text().split("version:", 1)[0]
        assert "wizsync emulator --seed demo" in head and "wizsync plan" in head, name


def _copy(name: str, tmp_path: Path, base_url: str) -> Path:
    work = tmp_path / name
    shutil.copytree(MANIFESTS / name, work, ignore=shutil.ignore_patterns(".wizsync"))
    manifest = work / "wizsync.yaml"
    text = manifest.read_text()
    assert EXAMPLE_URL in text
    manifest.write_text(text.replace(EXAMPLE_URL, base_url))
    return manifest


def _run_items(journal: Path, run_id: str) -> dict[str, Any]:
    conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        status = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
        items = conn.execute("SELECT name, state, batch, chatbot_id FROM items WHERE run_id = ? ORDER BY position", (run_id,)).fetchall()
    finally:
        conn.close()
    return {"status": status, "items": items}


def _run_id(output: str) -> str:
    match = re.search(r"Run (r\d{8}-\d{6}-[0-9a-f]+)", output)
    assert match, output
    return match.group(1)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_against_the_demo_emulator(name: str, tmp_path: Path) -> None:
    scan = SecretScan()
    with EmulatorServer(seed="demo") as emu:
        scan.register_all({k: v for k, v in emu.key_env.items()})
        scan.register_all(SECRETS)
        manifest = _copy(name, tmp_path, emu.base_url)
        journal = manifest.parent / ".wizsync" / "journal.db"
        scan.watch(manifest.parent / "wizsync.yaml")
        scan.watch_journal(journal)
        env = {**emu.key_env, **SECRETS}

        validate = scan.run(["validate", str(manifest)], cwd=tmp_path, env=env)
        assert validate.returncode == 0, validate.stdout + validate.stderr
        assert validate.stdout.startswith("ok: ")

        environments = list(yaml.safe_load(manifest.read_text())["environments"])
        for environment in environments:
            plan = scan.run(["plan", str(manifest), "--env", environment], cwd=tmp_path, env=env)
            assert plan.returncode == 0, plan.stdout + plan.stderr

        if name in APPLIES:
            environment = APPLIES[name]
            apply = scan.run(["apply", str(manifest), "--env", environment, "--yes"], cwd=tmp_path, env=env)
            assert apply.returncode == 0, apply.stdout + apply.stderr
            run = _run_items(journal, _run_id(apply.stdout))
            states = [state for _, state, _, _ in run["items"]]
            assert run["status"] == "completed"
            assert set(states) <= {"applied", "unchanged"} and "applied" in states, states
            check_example(name, run["items"], emu)

            again = scan.run(["plan", str(manifest), "--env", environment, "--detailed-exitcode"], cwd=tmp_path, env=env)
            assert again.returncode == 0, again.stdout + again.stderr  # 0: nothing left to change
    scan.check()


def check_example(name: str, items: list[tuple[str, str, int, str]], emu: EmulatorServer) -> None:
    """What each example is for, checked on the emulator's state after the apply."""
    configs = {(cb.org_id, cb.name): cb for cb in emu.state.chatbots.values()}
    names = [n for n, _, _, _ in items]
    if name == "promotion":
        # faq-bot from the file (rendered for production, with the override), discovered bots promoted.
        assert names[0] == "acme/faq-bot" and len(names) == len(set(names))
        faq = configs[("org_acme_production", "faq-bot")].config
        assert faq["core"]["temperature"] == 0.2 and "help@acme.example" in faq["core"]["systemPrompt"]
        assert {s["name"] for s in faq["mcpServers"]} == {"orders", "kb"}
        kb = next(s for s in faq["mcpServers"] if s["name"] == "kb")
        assert kb["url"] == "https://kb.eu.acme.com/mcp" and kb["headers"]["Authorization"] == "Bearer " + SECRETS["ACME_KB_TOKEN"]
        orders = next(s for s in faq["mcpServers"] if s["name"] == "orders")
        assert orders["headers"]["Authorization"].startswith("Bearer mcp_acme_production_")  # "<redacted>" kept it
        assert any(n.startswith("globex/support-") for n in names) and any("sales-" in n for n in names)
        for _, _, _, chatbot_id in items:  # the production overlay reached every promoted chatbot
            cb = emu.state.chatbots[chatbot_id]
            assert cb.org_id.endswith("_production") and cb.config["telemetry"]["sampleRate"] == 0.1
    elif name == "bulk-update":
        staging = [cb for (org, _), cb in configs.items() if org.endswith("_staging")]
        assert len(staging) == len(items) == 60
        for cb in staging:
            assert "privacy-notice" in {s["name"] for s in cb.config["skills"]}
            assert cb.config["telemetry"]["enabled"] is True
        assert all(not org.endswith("_production") or "privacy-notice" not in {s["name"] for s in cb.config["skills"]}
                   for (org, _), cb in configs.items())
    elif name == "canary":
        batches = {n: b for n, _, b, _ in items}
        assert batches["acme/store-locator"] == 1 and batches["globex/status-updates"] == 2  # the canary wave, one at a time
        assert max(batches.values()) == 4
        production = [cb for (org, _), cb in configs.items() if org.endswith("_production")]
        assert all(cb.config["security"]["rateLimitPerMinute"] == 60 for cb in production)
        assert all(cb.config["security"]["webhookSecret"].startswith("whsec_") for cb in production)  # kept
