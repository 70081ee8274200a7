"""A server newer than this SDK sends an enum value the contract does not list yet (openapi.json
``NewerValue``): a new MCP ``transport``, a new chatbot ``status``, a new operation kind or section.
The SDK keeps it as the plain string; wizsync plans, applies and exports it unchanged; what the
user writes is still checked against the listed values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import yaml

from wizchat_management import ApplyResult, OperationKind, WizChatClient
from wizchat_management.emulator import EmulatorServer
from wizchat_management.vocabulary import wire_value
from test_newer_contract import MANIFEST, cli_run  # the same one-chatbot fleet and in-process CLI

SEED = {
    "keySeed": "newer-enum-values",
    "newerValues": {"transport": ["websocket"], "status": ["archived"]},
    "organizations": [{
        "name": "acme-staging", "tenant": "acme", "environment": "staging",
        "keys": [{"label": "acme/staging", "envName": "WIZCHAT_ACME_STAGING_KEY"}],
        "chatbots": [{
            "name": "bot", "status": "archived",
            "config": {
                "core": {"name": "bot", "temperature": 0.5},
                "mcpServers": [{"name": "search", "url": "https://mcp.example/search", "transport": "websocket"}],
            },
        }],
    }],
}
def transport_of(emu: EmulatorServer) -> Any:
    with WizChatClient(emu.keys["acme/staging"], base_url=emu.base_url) as client:
        (bot,) = client.list_chatbots()
        (server,) = client.get_config(bot.id).spec.mcpServers or []
        return server.transport


def test_the_sdk_keeps_a_newer_transport_and_status_from_the_emulator() -> None:
    with EmulatorServer(seed=SEED) as emu, WizChatClient(emu.keys["acme/staging"], base_url=emu.base_url) as client:
        (bot,) = client.list_chatbots()
        assert bot.status == "archived"
        (server,) = client.get_config(bot.id).spec.mcpServers or []
        assert server.transport == "websocket" and wire_value(server.transport) == "websocket"
        # A listed value still compares equal to its Enum member and to its wire string.
        result = client.apply_config(bot.id, client.get_config(bot.id), dry_run=True)
        # (the newer value sent back as it came: nothing to change)
        assert {o.op for o in result.plan.operations} == {"noop"}
        assert "mcpServers" in {o.section for o in result.plan.operations}
        assert result.plan.operations[0].op == OperationKind.noop


def test_a_newer_operation_kind_and_section_parse() -> None:
    answer = {
        "dryRun": True, "applied": [], "failed": None, "revision": 3,
        "plan": {
            "operations": [{"op": "replace", "section": "workflows", "key": "w1"},
                           {"op": "noop", "section": "core", "key": None}],
            "summary": {"create": 0, "update": 0, "delete": 0, "noop": 1},
        },
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=answer)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    with WizChatClient("wpk_test_" + "a" * 32, base_url="http://127.0.0.1:9", http_client=http) as client:
        result = client.apply_config("cb_1", {"spec": {"core": {"name": "x"}}}, dry_run=True)
    assert isinstance(result, ApplyResult)
    assert [(wire_value(o.op), wire_value(o.section)) for o in result.plan.operations] == [
        ("replace", "workflows"), ("noop", "core")]


def test_wizsync_plans_applies_and_exports_a_newer_transport(tmp_path: Path, secret_scan: Any) -> None:
    with EmulatorServer(seed=SEED) as emu:
        secret_scan.register_all(emu.keys)
        env = emu.key_env
        journal = str(tmp_path / "journal.db")
        manifest = tmp_path / "wizsync.yaml"

        # The live config as the source, one overlay change: planned, applied, the new value kept.
        manifest.write_text(MANIFEST.format(base=emu.base_url, temperature=0.3, source="{self: true}"))
        plan = cli_run(["plan", str(manifest), "--env", "staging", "--journal", journal, "--json"], env, secret_scan)
        assert plan.exit_code == 0, plan.output
        (item,) = json.loads(plan.stdout)["chatbots"]
        assert [(o["section"], o["op"]) for o in item["operations"] if o["op"] != "noop"] == [("core", "update")]
        apply = cli_run(["apply", str(manifest), "--env", "staging", "--journal", journal, "--yes"], env, secret_scan)
        assert apply.exit_code == 0, apply.output
        assert transport_of(emu) == "websocket"

        # Export writes it as the server sent it; the file is a valid source as it is.
        out = tmp_path / "configs"
        export = cli_run(["export", str(manifest), "--env", "staging", "--out", str(out)], env, secret_scan)
        assert export.exit_code == 0, export.output
        (path,) = list(out.rglob("*.yaml"))
        exported = yaml.safe_load(path.read_text())
        assert exported["spec"]["mcpServers"][0]["transport"] == "websocket"
        assert exported["allowUnknown"] == ["spec.mcpServers.transport"]
        source = "{file: " + str(path.relative_to(tmp_path)) + "}"
        manifest.write_text(MANIFEST.format(base=emu.base_url, temperature=0.3, source=source))
        plan = cli_run(["plan", str(manifest), "--env", "staging", "--journal", journal, "--json"], env, secret_scan)
        assert plan.exit_code == 0, plan.output
        (item,) = json.loads(plan.stdout)["chatbots"]
        assert {o["op"] for o in item["operations"]} == {"noop"}

        # Written by the user (no allowUnknown), a value the contract does not list is an error.
        document = yaml.safe_load(path.read_text())
        del document["allowUnknown"]
        path.write_text(yaml.safe_dump(document))
        validate = cli_run(["validate", str(manifest), "--json"], env, secret_scan)
        assert validate.exit_code == 1
        (error,) = json.loads(validate.stdout)["errors"]
        assert "transport" in json.dumps(error)
