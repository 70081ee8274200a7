"""A server newer than this wizsync: a config holding a section, section keys and item fields the
contract does not name goes through plan, apply, export and a file source made from the export,
and the server still holds all of it afterwards. What the server sends never stops a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from wizchat_management import WizChatClient
from wizchat_management.emulator import EmulatorServer
from wizsync.cli import cli

NEWER = {
    "core": {"name": "bot", "temperature": 0.5, "avatarUrl": "https://cdn.example/a.png"},
    "security": {"requireAuth": True, "ipAllowList": ["10.0.0.0/8"]},
    "telemetry": {"enabled": True},
    "mcpServers": [{"name": "search", "url": "https://mcp.example/search", "timeoutMs": 1500}],
    "skills": [{"name": "greet", "instructions": "Say hi", "priority": 3}],
    "domains": [],
    "futureSection": {"flag": True},
}
SEED = {
    "keySeed": "newer-contract",
    "organizations": [{
        "name": "acme-staging", "tenant": "acme", "environment": "staging",
        "keys": [{"label": "acme/staging", "envName": "WIZCHAT_ACME_STAGING_KEY"}],
        "chatbots": [{"name": "bot", "config": NEWER}],
    }],
}
MANIFEST = """\
version: 1
environments:
  staging: {{baseUrl: "{base}"}}
tenants:
  acme:
    keys: {{staging: {{env: WIZCHAT_ACME_STAGING_KEY}}}}
overlays:
  staging:
    spec:
      core: {{temperature: {temperature}}}
chatbots:
  - name: bot
    tenant: acme
    source: {source}
"""


def cli_run(args: list[str], env: dict[str, str], scan: Any) -> Any:
    result = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    scan.record(" ".join(args[:1]), result.output)
    return result


def live_spec(emu: EmulatorServer) -> dict[str, Any]:
    with WizChatClient(emu.keys["acme/staging"], base_url=emu.base_url) as client:
        (bot,) = client.list_chatbots()
        spec: dict[str, Any] = client.get_config(bot.id).model_dump(mode="json", exclude_unset=True)["spec"]
        return spec


def assert_newer_fields_kept(spec: dict[str, Any]) -> None:
    assert spec["futureSection"] == {"flag": True}
    assert spec["core"]["avatarUrl"] == "https://cdn.example/a.png"
    assert spec["security"]["ipAllowList"] == ["10.0.0.0/8"]
    assert spec["mcpServers"][0]["timeoutMs"] == 1500
    assert spec["skills"][0]["priority"] == 3


def test_a_newer_servers_config_through_plan_apply_export_and_a_file_source(tmp_path: Path, secret_scan: Any) -> None:
    with EmulatorServer(seed=SEED) as emu:
        secret_scan.register_all(emu.keys)
        env = emu.key_env
        journal = str(tmp_path / "journal.db")
        manifest = tmp_path / "wizsync.yaml"

        # A bulk patch on the live config (self source): plans and applies, unknown fields kept.
        manifest.write_text(MANIFEST.format(base=emu.base_url, temperature=0.3, source="{self: true}"))
        plan = cli_run(["plan", str(manifest), "--env", "staging", "--journal", journal, "--json"], env, secret_scan)
        assert plan.exit_code == 0, plan.output
        (item,) = json.loads(plan.stdout)["chatbots"]
        changed = [(o["section"], o["op"]) for o in item["operations"] if o["op"] != "noop"]
        assert changed == [("core", "update")]
        apply = cli_run(["apply", str(manifest), "--env", "staging", "--journal", journal, "--yes"], env, secret_scan)
        assert apply.exit_code == 0, apply.output
        spec = live_spec(emu)
        assert spec["core"]["temperature"] == 0.3
        assert_newer_fields_kept(spec)

        # Export writes what the server sent, and says what this wizsync does not know.
        out = tmp_path / "configs"
        export = cli_run(["export", str(manifest), "--env", "staging", "--out", str(out)], env, secret_scan)
        assert export.exit_code == 0, export.output
        (path,) = list(out.rglob("*.yaml"))
        exported = yaml.safe_load(path.read_text())
        assert_newer_fields_kept(exported["spec"])
        assert exported["allowUnknown"] == [
            "spec.core.avatarUrl", "spec.futureSection", "spec.mcpServers.timeoutMs",
            "spec.security.ipAllowList", "spec.skills.priority",
        ]

        # The exported file is a valid source as it is: validate, plan (all noop), apply.
        source = "{file: " + str(path.relative_to(tmp_path)) + "}"
        manifest.write_text(MANIFEST.format(base=emu.base_url, temperature=0.3, source=source))
        validate = cli_run(["validate", str(manifest)], env, secret_scan)
        assert validate.exit_code == 0, validate.output
        plan = cli_run(["plan", str(manifest), "--env", "staging", "--journal", journal, "--json"], env, secret_scan)
        assert plan.exit_code == 0, plan.output
        (item,) = json.loads(plan.stdout)["chatbots"]
        assert {o["op"] for o in item["operations"]} == {"noop"}

        # An edit of a field this wizsync does not know is planned and shown as what it is.
        path.write_text(path.read_text().replace("timeoutMs: 1500", "timeoutMs: 3000"))
        plan = cli_run(["plan", str(manifest), "--env", "staging", "--journal", journal], env, secret_scan)
        assert plan.exit_code == 0, plan.output
        assert "timeoutMs: 1500 → 3000" in plan.stdout
        apply = cli_run(["apply", str(manifest), "--env", "staging", "--journal", journal, "--yes"], env, secret_scan)
        assert apply.exit_code == 0, apply.output
        spec = live_spec(emu)
        assert spec["mcpServers"][0]["timeoutMs"] == 3000
        spec["mcpServers"][0]["timeoutMs"] = 1500
        assert_newer_fields_kept(spec)

        # The same file without its allowUnknown is strict again: every unknown field is an error.
        document = yaml.safe_load(path.read_text())
        del document["allowUnknown"]
        path.write_text(yaml.safe_dump(document))
        validate = cli_run(["validate", str(manifest), "--json"], env, secret_scan)
        assert validate.exit_code == 1
        assert len(json.loads(validate.stdout)["errors"]) == 5
