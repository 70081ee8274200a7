"""Export round trip over real HTTP with the CLI as real processes: `wizsync export` of the whole demo
fleet (3 tenants × staging and production), then `wizsync plan` with those files as `file` sources
plans every chatbot `noop`; exporting again changes no byte (nor mtime); a `kill -9`ed export leaves
only complete files. No key or seeded secret value reaches any file, output or journal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from wizchat_management.emulator import EmulatorServer
from wizchat_management.emulator.demo import demo_seed_document

TENANTS = ("acme", "globex", "initech")
ENVS = ("staging", "production")


def _keys_block() -> str:
    lines = ["tenants:"]
    for t in TENANTS:
        lines.append(f"  {t}:")
        lines.append(f"    keys: {{staging: {{env: WIZCHAT_{t.upper()}_STAGING_KEY}}, "
                     f"production: {{env: WIZCHAT_{t.upper()}_PRODUCTION_KEY}}}}")
    return "\n".join(lines)


def _header(base: str) -> str:
    return f'version: 1\nenvironments:\n  staging: {{baseUrl: "{base}"}}\n  production: {{baseUrl: "{base}"}}\n{_keys_block()}\n'


def export_manifest(base: str) -> str:
    entries = "".join(f"  - discover: {{tenant: {t}}}\n    source: {{self: true}}\n" for t in TENANTS)
    return _header(base) + "chatbots:\n" + entries


def roundtrip_manifest(base: str, root: Path, env: str) -> str:
    """One entry per exported file of ``env``: its file as source, its id from the file's metadata."""
    entries = []
    for path in sorted((root / env).rglob("*.yaml")):
        chatbot_id = yaml.safe_load(path.read_text())["metadata"]["chatbotId"]
        tenant = path.parent.name
        entries.append(f"  - name: {tenant}.{path.stem}\n    tenant: {tenant}\n    ids: {{{env}: {chatbot_id}}}\n"
                       f"    source: {{file: {path.relative_to(root.parent)}}}\n")
    return _header(base) + "chatbots:\n" + "".join(entries)


def seeded_secrets() -> dict[str, str]:
    """Every secret value of the demo seed (webhook secrets, MCP header values): never exported."""
    found: dict[str, str] = {}
    for org in demo_seed_document()["organizations"]:
        for bot in org["chatbots"]:
            config = bot["config"]
            where = f"{org['name']}/{bot['name']}"
            found[f"{where} webhookSecret"] = config["security"]["webhookSecret"]
            for server in config["mcpServers"]:
                for header, value in server["headers"].items():
                    found[f"{where} mcp {server['name']} {header}"] = value
    return found


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file()}


def test_export_then_plan_from_the_files_is_all_noop_and_reexport_changes_nothing(
    emulator: EmulatorServer, secret_scan: Any, tmp_path: Path
) -> None:
    emu = emulator
    secret_scan.register_all(emu.keys)
    secret_scan.register_all({k: v for k, v in seeded_secrets().items() if k.endswith("webhookSecret") or "Bearer" in v})
    env = emu.key_env
    (tmp_path / "export.yaml").write_text(export_manifest(emu.base_url))
    out = tmp_path / "configs"
    secret_scan.watch(out)

    for e in ENVS:
        proc = secret_scan.run(["export", "export.yaml", "--env", e, "--out", "configs", "--json"], cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stderr
        assert all(f["changed"] for f in json.loads(proc.stdout)["files"])
    names = {(e, t): sorted(p.stem for p in (out / e / t).glob("*.yaml")) for e in ENVS for t in TENANTS}
    live = {(o["environment"], o["tenant"]): sorted(b["name"] for b in o["chatbots"])
            for o in demo_seed_document()["organizations"]}
    assert names == live  # every chatbot of every tenant and environment, one file each
    first = snapshot(out)
    assert not [p for p in first if not p.endswith(".yaml")]  # no temporary file left behind
    for text, _ in first.values():
        doc = yaml.safe_load(text)
        assert "exportedAt" not in doc.get("metadata", {})  # would change on every export

    # plan with the exported files as sources: nothing to do, for every chatbot
    journal = tmp_path / "journal.db"
    secret_scan.watch_journal(journal)
    for e in ENVS:
        (tmp_path / f"roundtrip-{e}.yaml").write_text(roundtrip_manifest(emu.base_url, out, e))
        proc = secret_scan.run(
            ["plan", f"roundtrip-{e}.yaml", "--env", e, "--json", "--journal", str(journal), "--detailed-exitcode"],
            cwd=tmp_path, env=env,
        )
        assert proc.returncode == 0, proc.stderr  # --detailed-exitcode: 0 = no changes
        doc = json.loads(proc.stdout)
        assert len(doc["chatbots"]) == sum(len(v) for (env_, _), v in live.items() if env_ == e)
        for chatbot in doc["chatbots"]:
            assert chatbot["error"] is None, chatbot
            s = chatbot["summary"]
            assert (s["create"], s["update"], s["delete"]) == (0, 0, 0), chatbot
            assert s["noop"] > 0 and all(op["op"] == "noop" for op in chatbot["operations"]), chatbot
    assert emu.stats()["total"]["applies"] == 0

    # export again: not one byte (nor mtime) changes
    time.sleep(0.05)  # mtime granularity: a rewrite would show
    for e in ENVS:
        proc = secret_scan.run(["export", "export.yaml", "--env", e, "--out", "configs", "--json"], cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stderr
        assert not any(f["changed"] for f in json.loads(proc.stdout)["files"])
    assert snapshot(out) == first

    secret_scan.check()


def test_a_killed_export_leaves_no_half_written_file(emulator: EmulatorServer, secret_scan: Any, tmp_path: Path) -> None:
    emu = emulator
    secret_scan.register_all(emu.keys)
    env = emu.key_env
    (tmp_path / "export.yaml").write_text(export_manifest(emu.base_url))
    full = tmp_path / "full"
    proc = secret_scan.run(["export", "export.yaml", "--env", "production", "--out", "full"], cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    expected = {p.relative_to(full): p.read_bytes() for p in full.rglob("*.yaml")}
    assert len(expected) == 60

    # slow answers and little concurrency: the export takes seconds; kill -9 it half-way
    emu.set_faults(latency_ms=60, jitter_ms=20)
    partial = tmp_path / "partial"
    secret_scan.watch(partial)
    child = subprocess.Popen(
        [sys.executable, "-m", "wizsync.cli", "export", "export.yaml", "--env", "production", "--out", "partial",
         "--concurrency", "2"],
        cwd=tmp_path, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while len(list(partial.rglob("*.yaml"))) < 10:
            assert child.poll() is None, "the export finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        out, err = child.communicate(timeout=30)
        secret_scan.record("killed export stdout", out)
        secret_scan.record("killed export stderr", err)
    assert child.returncode == -signal.SIGKILL

    files = [p for p in partial.rglob("*") if p.is_file()]
    written = [p for p in files if p.name.endswith(".yaml")]
    assert 10 <= len(written) < 60
    for p in written:
        assert p.read_bytes() == expected[p.relative_to(partial)], f"{p} is not a complete export"
        assert yaml.safe_load(p.read_text())["spec"]
    # at most the temporary file of a write in progress: a dot-name ending .tmp, never read as a source
    for p in files:
        if p not in written:
            assert p.name.startswith(".") and p.name.endswith(".tmp"), p

    # and finishing the job later gives the full export
    emu.set_faults(clear=True)
    proc = secret_scan.run(["export", "export.yaml", "--env", "production", "--out", "partial"], cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert {p.relative_to(partial): p.read_bytes() for p in partial.rglob("*.yaml")} == expected
    secret_scan.check()


TRICKY = {
    "core": {"name": "tricky", "systemPrompt": "Hi ${user}, cost $${x} and $5 {y} ${",
             "welcomeMessage": "ünïcödé — “quotes” 'single' \"double\"\nline2: x"},
    "skills": [{"name": "a: b", "instructions": "- item\n# not a comment", "triggers": ["yes", "no", "on", "1.0", "null"]}],
}


def test_values_that_look_like_templates_or_yaml_survive_the_round_trip(secret_scan: Any, tmp_path: Path) -> None:
    seed = {"keySeed": "tricky", "organizations": [{
        "name": "acme-staging", "tenant": "acme", "environment": "staging",
        "keys": [{"label": "acme/staging", "envName": "WIZCHAT_ACME_STAGING_KEY"}],
        "chatbots": [{"name": "tricky", "id": "cb_tricky", "config": TRICKY}]}]}
    with EmulatorServer(seed=seed) as emu:
        secret_scan.register_all(emu.keys)
        head = f'version: 1\nenvironments:\n  staging: {{baseUrl: "{emu.base_url}"}}\n' \
               "tenants:\n  acme: {keys: {staging: {env: WIZCHAT_ACME_STAGING_KEY}}}\nchatbots:\n"
        (tmp_path / "export.yaml").write_text(head + "  - discover: {tenant: acme}\n    source: {self: true}\n")
        (tmp_path / "rt.yaml").write_text(
            head + "  - {name: tricky, tenant: acme, ids: {staging: cb_tricky}, source: {file: out/staging/acme/tricky.yaml}}\n"
        )
        proc = secret_scan.run(["export", "export.yaml", "--env", "staging", "--out", "out"], cwd=tmp_path, env=emu.key_env)
        assert proc.returncode == 0, proc.stderr
        proc = secret_scan.run(["plan", "rt.yaml", "--env", "staging", "--json", "--journal", str(tmp_path / "j.db")],
                               cwd=tmp_path, env=emu.key_env)
        assert proc.returncode == 0, proc.stderr
        (chatbot,) = json.loads(proc.stdout)["chatbots"]
        assert chatbot["error"] is None
        assert [op for op in chatbot["operations"] if op["op"] != "noop"] == []
        # the rendered document is what the server holds, character for character
        proc = secret_scan.run(["render", "rt.yaml", "--env", "staging"], cwd=tmp_path, env=emu.key_env)
        assert proc.returncode == 0, proc.stderr
        rendered = yaml.safe_load(proc.stdout)["spec"]
        assert rendered["core"]["systemPrompt"] == TRICKY["core"]["systemPrompt"]
        assert rendered["core"]["welcomeMessage"] == TRICKY["core"]["welcomeMessage"]
        assert rendered["skills"][0]["triggers"] == TRICKY["skills"][0]["triggers"]
    secret_scan.check()


HOSTILE_NAMES = ["a/b", "a_b", "a b", ".", "..", "Help", "help", "../../escape"]


def test_every_chatbot_gets_its_own_stable_file_whatever_its_name(secret_scan: Any, tmp_path: Path) -> None:
    bots = [{"name": name, "id": f"cb_n{i}", "config": {"core": {"name": name, "temperature": i / 10}}}
            for i, name in enumerate(HOSTILE_NAMES)]
    seed = {"keySeed": "names", "organizations": [{
        "name": "acme-staging", "tenant": "acme", "environment": "staging",
        "keys": [{"label": "acme/staging", "envName": "WIZCHAT_ACME_STAGING_KEY"}], "chatbots": bots}]}
    with EmulatorServer(seed=seed) as emu:
        secret_scan.register_all(emu.keys)
        head = f'version: 1\nenvironments:\n  staging: {{baseUrl: "{emu.base_url}"}}\n' \
               "tenants:\n  acme: {keys: {staging: {env: WIZCHAT_ACME_STAGING_KEY}}}\nchatbots:\n"
        (tmp_path / "export.yaml").write_text(head + "  - discover: {tenant: acme}\n    source: {self: true}\n")
        out = tmp_path / "out"
        secret_scan.watch(out)
        proc = secret_scan.run(["export", "export.yaml", "--env", "staging", "--out", "out"], cwd=tmp_path, env=emu.key_env)
        assert proc.returncode == 0, proc.stderr
        n = len(HOSTILE_NAMES)
        assert f"Exported {n} chatbot(s) of 'staging' to out: {n} file(s), {n} written, 0 unchanged." in proc.stdout
        files = sorted(p for p in tmp_path.rglob("*") if p.is_file() and p.suffix == ".yaml" and out in p.parents)
        assert len(files) == n and all(p.parent == out / "staging" / "acme" for p in files)  # nothing escaped
        by_id = {yaml.safe_load(p.read_text())["metadata"]["chatbotId"]: p for p in files}
        assert sorted(by_id) == sorted(b["id"] for b in bots)  # one file per chatbot, none overwritten
        for bot in bots:  # each file holds its own chatbot's config
            assert yaml.safe_load(by_id[bot["id"]].read_text())["spec"]["core"]["temperature"] == bot["config"]["core"]["temperature"]
        names = {b["name"]: by_id[b["id"]].name for b in bots}
        assert names["a_b"] == "a_b.yaml" and names["help"] == "help.yaml"  # plain names keep their name
        assert names["a/b"].startswith("a_b-") and names["a b"].startswith("a_b-") and names["Help"].startswith("Help-")
        assert names["."].startswith("chatbot-") and names[".."].startswith("chatbot-")
        first = snapshot(out)

        # again, and with one chatbot selected: the same names, not one byte changed
        proc = secret_scan.run(["export", "export.yaml", "--env", "staging", "--out", "out"], cwd=tmp_path, env=emu.key_env)
        assert proc.returncode == 0, proc.stderr
        assert f"{n} file(s), 0 written, {n} unchanged." in proc.stdout
        proc = secret_scan.run(["export", "export.yaml", "--env", "staging", "--out", "out", "--chatbot", "acme/a b", "--json"],
                               cwd=tmp_path, env=emu.key_env)
        assert proc.returncode == 0, proc.stderr
        (only,) = json.loads(proc.stdout)["files"]
        assert Path(only["path"]).name == names["a b"] and only["changed"] is False and only["name"] == "acme/a b"
        assert snapshot(out) == first
    secret_scan.check()
