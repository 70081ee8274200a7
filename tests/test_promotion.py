"""Promotion, end to end over real HTTP: export staging, render it for production (overlay with a
variable and a ${secret:...}, a per-chatbot override, a chatbot that leaves `domains` unmanaged),
plan it on production with `wizsync plan --json`, and get exactly the operations the seed's
staging/production differences call for — no more, no less. Nothing secret shows anywhere.

The seed below is small and written by hand so every expected operation is known: each
difference between the two organizations is listed next to the operation it must produce.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from wizchat_management.emulator import EmulatorServer

MCP_TOKEN = "acme-prod-mcp-token-5b81c2e97d"  # the ${secret:ACME_MCP_TOKEN} value, set only in the environment
SEED_SECRETS = {  # secret values that live only in the emulator: never in any output either
    "staging webhook secret": "whsec_acme_staging_f00dfeedcafe1234",
    "production webhook secret": "whsec_acme_production_0badc0de5678",
    "staging crm header": "Bearer crm-staging-token-9a8b7c6d",
    "production crm header": "Bearer crm-production-token-1e2f3a4b",
    "stale search header": "Bearer search-token-before-rotation",
}
IDS = {"support-billing": "cb_billing", "support-returns": "cb_returns", "sales-assistant": "cb_sales"}
SEARCH_URL = "https://mcp.eu.acme.example/search"  # what the overlay's url renders to in production


def _bot(env: str, name: str, **sections: Any) -> dict[str, Any]:
    security = {"requireAuth": False, "rateLimitPerMinute": 60,
                "webhookSecret": SEED_SECRETS[f"{env} webhook secret"]}
    config = {"core": {"name": name, "model": "gpt-4o", "temperature": 0.3, "systemPrompt": f"You are {name}."},
              "security": security, "telemetry": {"enabled": True, "sampleRate": 1.0}, "mcpServers": [],
              "skills": [{"name": "escalate", "description": "Escalate", "instructions": "v1"}], "domains": []}
    config.update(sections)
    suffix = "s" if env == "staging" else "p"
    return {"name": name, "id": f"{IDS[name]}_{suffix}", "config": config}


def _crm(env: str) -> dict[str, Any]:
    return {"name": "crm", "url": "https://mcp.acme.example/crm", "headers": {"Authorization": SEED_SECRETS[f"{env} crm header"]}}


def _search(header: str) -> dict[str, Any]:
    return {"name": "search", "url": SEARCH_URL, "headers": {"Authorization": header}}


ESCALATE_V2 = {"name": "escalate", "description": "Escalate", "instructions": "v2"}
REFUND = {"name": "refund-policy", "description": "Refunds", "instructions": "30 days."}
LEGACY = {"name": "legacy-faq", "description": "Old FAQ", "instructions": "retired"}

STAGING = [
    _bot("staging", "support-billing", mcpServers=[_crm("staging")], skills=[ESCALATE_V2, REFUND],
         domains=[{"hostname": "billing.staging.acme.example", "primary": True}]),
    _bot("staging", "support-returns"),
    _bot("staging", "sales-assistant", telemetry={"enabled": False, "sampleRate": 1.0},
         domains=[{"hostname": "sales.acme.example", "primary": True}]),
]
PRODUCTION = [
    # temperature 0.5 (override says 0.2); sampleRate already 0.1; crm has its own header (staging's
    # comes back "<redacted>": kept); search already holds the secret's value; skills one behind plus a
    # legacy one; a production-only domain (domains are unmanaged for this chatbot).
    _bot("production", "support-billing",
         core={"name": "support-billing", "model": "gpt-4o", "temperature": 0.5, "systemPrompt": "You are support-billing."},
         telemetry={"enabled": True, "sampleRate": 0.1},
         mcpServers=[_crm("production"), _search(f"Bearer {MCP_TOKEN}")],
         skills=[{"name": "escalate", "description": "Escalate", "instructions": "v1"}, LEGACY],
         domains=[{"hostname": "billing.acme.example", "primary": True}]),
    # only the search header differs (a token to rotate)
    _bot("production", "support-returns", telemetry={"enabled": True, "sampleRate": 0.1},
         mcpServers=[_search(SEED_SECRETS["stale search header"])]),
    # telemetry enabled in production (staging disabled it); no search server yet
    _bot("production", "sales-assistant", telemetry={"enabled": True, "sampleRate": 0.1},
         domains=[{"hostname": "sales.acme.example", "primary": True}]),
]
SEED = {
    "keySeed": "promotion-test",
    "organizations": [
        {"name": f"acme-{env}", "id": f"org_acme_{env}", "tenant": "acme", "environment": env,
         "keys": [{"label": f"acme/{env}", "envName": f"WIZCHAT_ACME_{env.upper()}_KEY"}], "chatbots": bots}
        for env, bots in (("staging", STAGING), ("production", PRODUCTION))
    ],
}

# (op, section, key) -> changes (path, before, after) for updates; noops are counted, not listed.
EXPECTED: dict[str, dict[tuple[str, str, str | None], list[tuple[str, Any, Any]] | None]] = {
    "support-billing": {
        ("update", "core", None): [("temperature", 0.5, 0.2)],
        ("update", "skills", "escalate"): [("instructions", "v1", "v2")],
        ("create", "skills", "refund-policy"): None,
        ("delete", "skills", "legacy-faq"): None,
    },
    "support-returns": {
        # the server redacts both sides; wizsync shows what it sends, masked (spec: diffs show <secret:NAME>)
        ("update", "mcpServers", "search"): [("headers.Authorization", "<redacted>", "Bearer <secret:ACME_MCP_TOKEN>")],
    },
    "sales-assistant": {
        ("update", "telemetry", None): [("enabled", True, False)],
        ("create", "mcpServers", "search"): None,
    },
}
EXPECTED_NOOPS = {
    # core, security... with domains unmanaged: security, telemetry, crm, search
    "support-billing": {("security", None), ("telemetry", None), ("mcpServers", "crm"), ("mcpServers", "search")},
    "support-returns": {("core", None), ("security", None), ("telemetry", None), ("skills", "escalate")},
    "sales-assistant": {("core", None), ("security", None), ("skills", "escalate"), ("domains", "sales.acme.example")},
}

EXPORT_MANIFEST = """\
version: 1
environments:
  staging: {{baseUrl: "{base}"}}
tenants:
  acme:
    keys: {{staging: {{env: WIZCHAT_ACME_STAGING_KEY}}}}
chatbots:
  - discover: {{tenant: acme}}
    source: {{self: true}}
"""

PROMOTION_MANIFEST = """\
version: 1
environments:
  staging: {{baseUrl: "{base}"}}
  production: {{baseUrl: "{base}", protected: true, vars: {{region: eu}}}}
tenants:
  acme:
    keys:
      staging: {{env: WIZCHAT_ACME_STAGING_KEY}}
      production: {{env: WIZCHAT_ACME_PRODUCTION_KEY}}
overlays:
  production:
    spec:
      telemetry: {{sampleRate: 0.1}}
      mcpServers:
        - name: search
          url: https://mcp.${{region}}.acme.example/search
          headers: {{Authorization: "Bearer ${{secret:ACME_MCP_TOKEN}}"}}
chatbots:
  - name: support-billing
    tenant: acme
{ids_billing}    source: {source_billing}
    sections: [core, security, telemetry, mcpServers, skills]
    overrides:
      production: {{spec: {{core: {{temperature: 0.2}}}}}}
  - name: support-returns
    tenant: acme
{ids_returns}    source: {source_returns}
  - name: sales-assistant
    tenant: acme
{ids_sales}    source: {source_sales}
"""


@pytest.fixture
def promo_emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(seed=SEED) as emu:
        yield emu


def _manifest(base: str, kind: str) -> str:
    fields: dict[str, str] = {}
    for logical, short in (("support-billing", "billing"), ("support-returns", "returns"), ("sales-assistant", "sales")):
        if kind == "file":
            # exported files as sources; production ids given, so render needs no network
            fields[f"source_{short}"] = f"{{file: configs/staging/acme/{logical}.yaml}}"
            fields[f"ids_{short}"] = f"    ids: {{production: {IDS[logical]}_p}}\n"
        else:
            # the live staging config; chatbots matched by name in each environment
            fields[f"source_{short}"] = "{environment: staging}"
            fields[f"ids_{short}"] = ""
    return PROMOTION_MANIFEST.format(base=base, **fields)


def _changed_ops(chatbot: dict[str, Any]) -> dict[tuple[str, str, str | None], list[tuple[str, Any, Any]] | None]:
    out: dict[tuple[str, str, str | None], list[tuple[str, Any, Any]] | None] = {}
    for op in chatbot["operations"]:
        if op["op"] == "noop":
            continue
        key = (op["op"], op["section"], op["key"])
        assert key not in out, f"operation {key} twice"
        changes = op["changes"]
        out[key] = sorted((c["path"], c["before"], c["after"]) for c in changes) if op["op"] == "update" else None
    return out


@pytest.mark.parametrize("kind", ["file", "environment"])
def test_promotion_plans_exactly_the_expected_operations(
    kind: str, promo_emulator: EmulatorServer, secret_scan: Any, tmp_path: Path
) -> None:
    emu = promo_emulator
    secret_scan.register_all({label: key for label, key in emu.keys.items()})
    secret_scan.register("ACME_MCP_TOKEN", MCP_TOKEN)
    secret_scan.register_all(SEED_SECRETS)
    env = {**emu.key_env, "ACME_MCP_TOKEN": MCP_TOKEN}
    journal = tmp_path / "journal.db"
    secret_scan.watch_journal(journal)

    # 1. export staging: the config-as-code files the promotion reads
    (tmp_path / "export.yaml").write_text(EXPORT_MANIFEST.format(base=emu.base_url))
    proc = secret_scan.run(["export", "export.yaml", "--env", "staging", "--out", "configs"], cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    secret_scan.watch(tmp_path / "configs")
    exported = sorted(p.name for p in (tmp_path / "configs" / "staging" / "acme").iterdir())
    assert exported == ["sales-assistant.yaml", "support-billing.yaml", "support-returns.yaml"]
    billing = yaml.safe_load((tmp_path / "configs/staging/acme/support-billing.yaml").read_text())
    assert billing["spec"]["security"]["webhookSecret"] == "<redacted>"
    assert billing["spec"]["mcpServers"][0]["headers"] == {"Authorization": "<redacted>"}

    # 2. render for production: overlay, override and the secret, masked
    (tmp_path / "wizsync.yaml").write_text(_manifest(emu.base_url, kind))
    render_args = ["render", "wizsync.yaml", "--env", "production", "--chatbot", "support-billing"]
    proc = secret_scan.run(render_args + ([] if kind == "file" else ["--online"]), cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    rendered = yaml.safe_load(proc.stdout)
    assert "<secret:ACME_MCP_TOKEN>" in proc.stdout
    spec = rendered["spec"]
    assert spec["core"]["temperature"] == 0.2
    assert spec["telemetry"]["sampleRate"] == 0.1
    assert {s["name"]: s for s in spec["mcpServers"]}["search"] == {
        "name": "search", "url": SEARCH_URL, "headers": {"Authorization": "Bearer <secret:ACME_MCP_TOKEN>"}}
    assert spec.get("domains") is None  # unmanaged for this chatbot: sent as null, never touched

    # 3. plan on production, as JSON: exactly the expected operations
    proc = secret_scan.run(
        ["plan", "wizsync.yaml", "--env", "production", "--json", "--journal", str(journal), "--detailed-exitcode"],
        cwd=tmp_path, env=env,
    )
    assert proc.returncode == 2, proc.stderr  # --detailed-exitcode: changes present
    doc = json.loads(proc.stdout)
    assert doc["status"] == "completed"
    chatbots = {c["name"]: c for c in doc["chatbots"]}
    assert set(chatbots) == {f"acme/{name}" for name in EXPECTED}  # every address is tenant/name
    for name, expected in EXPECTED.items():
        got = chatbots[f"acme/{name}"]
        assert got["error"] is None, got["error"]
        assert got["chatbot_id"] == f"{IDS[name]}_p"
        assert _changed_ops(got) == {k: sorted(v) if v else v for k, v in expected.items()}, name
        noops = {(op["section"], op["key"]) for op in got["operations"] if op["op"] == "noop"}
        assert noops == EXPECTED_NOOPS[name], name
        summary = got["summary"]
        assert summary == {
            "create": sum(k[0] == "create" for k in expected), "update": sum(k[0] == "update" for k in expected),
            "delete": sum(k[0] == "delete" for k in expected), "noop": len(EXPECTED_NOOPS[name]),
        }, name

    # the plan changed nothing on the server, and touched no staging chatbot with a write
    assert emu.stats()["total"]["applies"] == 0
    assert {e["key"] for e in emu.requests() if e["method"] != "GET"} == {"acme/production"}

    # 4. the journal holds the same plan: one row per chatbot with its summary and document hash
    conn = sqlite3.connect(journal)
    try:
        rows = conn.execute(
            "SELECT name, plan_summary, doc_hash FROM items WHERE run_id = ?", (doc["run_id"],)
        ).fetchall()
        status = conn.execute("SELECT status, command FROM runs WHERE id = ?", (doc["run_id"],)).fetchone()
    finally:
        conn.close()
    assert status == ("completed", "plan")
    assert {name: json.loads(summary) for name, summary, _ in rows} == {n: c["summary"] for n, c in chatbots.items()}
    assert all(h for _, _, h in rows)

    # 5. the human plan shows the same changes, secrets masked
    proc = secret_scan.run(["plan", "wizsync.yaml", "--env", "production", "--no-color", "--journal", str(journal)],
                           cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "legacy-faq" in proc.stdout and "refund-policy" in proc.stdout and "<redacted>" in proc.stdout

    secret_scan.check()
    places = secret_scan.places()
    assert any(p.startswith("journal") for p in places) and sum(p.endswith(".yaml") for p in places) == 3
    assert sum("wizsync plan" in p for p in places) >= 3
