"""Every chatbot's address is tenant/name, whatever the manifest order (issue 11 §2).

Against the demo emulator (every tenant has a ``support-billing``), through the CLI in-process:
three orders of the same entries and tenants give the same plan, chatbot for chatbot;
``${chatbot}`` is the bare name and ``${tenant}`` the tenant; a bare ``--chatbot`` selects
that name in every tenant, an address selects one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from wizchat_management.emulator import EmulatorServer
from wizsync.cli import cli

HEAD = """\
version: 1
environments:
  staging: {{baseUrl: "{base}"}}
tenants:
{tenants}
defaults:
  source: {{self: true}}
  sections: [core]
overlays:
  staging:
    spec:
      core: {{systemPrompt: "You are ${{tenant}}'s ${{chatbot}} assistant"}}
chatbots:
"""
TENANTS = {
    "acme": "  acme: {keys: {staging: {env: WIZCHAT_ACME_STAGING_KEY}}}\n",
    "globex": "  globex: {keys: {staging: {env: WIZCHAT_GLOBEX_STAGING_KEY}}}\n",
}
ENTRIES = [
    "  - {name: support-billing, tenant: globex, labels: {tier: gold}}\n",
    '  - discover: {tenant: acme, match: "support-*"}\n',
    '  - discover: {tenant: globex, match: "support-*"}\n',
]


def write(root: Path, base: str, tenants: list[str], entries: list[str]) -> Path:
    path = root / "wizsync.yaml"
    text = HEAD.format(base=base, tenants="".join(TENANTS[t] for t in tenants).rstrip("\n")) + "".join(entries)
    path.write_text(text)
    return path


def run(scan: Any, emu: EmulatorServer, *args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), env={**emu.key_env, "NO_COLOR": "1"})
    scan.record(f"wizsync {args[0]} stdout", result.stdout)
    scan.record(f"wizsync {args[0]} stderr", result.stderr)
    return result


def plan(scan: Any, emu: EmulatorServer, root: Path, *extra: str) -> list[dict[str, Any]]:
    result = run(scan, emu, "plan", str(root / "wizsync.yaml"), "--env", "staging", "--json",
                 "--journal", str(root / "journal.db"), *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["chatbots"]


def comparable(chatbots: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        (c["name"], c["tenant"], c["chatbot_id"], json.dumps(c["summary"], sort_keys=True),
         json.dumps(c["operations"], sort_keys=True))
        for c in chatbots
    )


@pytest.fixture(scope="module")
def emu() -> Any:
    with EmulatorServer(seed="demo") as server:
        yield server


def test_a_reordered_manifest_plans_exactly_the_same(emu: EmulatorServer, secret_scan: Any, tmp_path: Path) -> None:
    secret_scan.register_all(emu.keys)
    secret_scan.watch_journal(tmp_path / "journal.db")
    orders = [
        (["acme", "globex"], ENTRIES),
        (["globex", "acme"], ENTRIES[::-1]),
        (["acme", "globex"], [ENTRIES[2], ENTRIES[0], ENTRIES[1]]),
    ]
    plans = []
    for tenants, entries in orders:
        write(tmp_path, emu.base_url, tenants, entries)
        plans.append(comparable(plan(secret_scan, emu, tmp_path)))
    assert plans[0] == plans[1] == plans[2]
    names = [row[0] for row in plans[0]]
    assert "acme/support-billing" in names and "globex/support-billing" in names
    assert all(name == f"{tenant}/{name.split('/', 1)[1]}" for name, tenant, *_ in plans[0])
    assert len(names) == len(set(names))


def test_chatbot_and_tenant_templates_are_bare_and_selection_matches_addresses(
    emu: EmulatorServer, secret_scan: Any, tmp_path: Path
) -> None:
    secret_scan.register_all(emu.keys)
    secret_scan.watch_journal(tmp_path / "journal.db")
    manifest = write(tmp_path, emu.base_url, ["acme", "globex"], ENTRIES)

    rendered = run(secret_scan, emu, "render", str(manifest), "--env", "staging", "--online", "--json",
                   "--chatbot", "support-billing")
    assert rendered.exit_code == 0, rendered.output
    prompts = {d["name"]: d["document"]["spec"]["core"]["systemPrompt"] for d in json.loads(rendered.stdout)}
    # a bare name matches in every tenant: both are listed, none is guessed
    assert prompts == {
        "globex/support-billing": "You are globex's support-billing assistant",
        "acme/support-billing": "You are acme's support-billing assistant",
    }

    one = plan(secret_scan, emu, tmp_path, "--chatbot", "acme/support-billing")
    assert [c["name"] for c in one] == ["acme/support-billing"]
    globbed = plan(secret_scan, emu, tmp_path, "--chatbot", "globex/support-*")
    assert globbed and {c["tenant"] for c in globbed} == {"globex"}
    by_term = plan(secret_scan, emu, tmp_path, "--select", "name=*/support-billing")
    assert sorted(c["name"] for c in by_term) == ["acme/support-billing", "globex/support-billing"]
