"""Merge, template and secret rules of rendering (pure functions, no I/O but tmp files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from wizchat_management import ChatbotConfigDocument
from wizsync.manifest import ManifestError, load_manifest, resolve_targets
from wizsync.render import Origin, SecretText, document_hash, expand, merge_spec, render_target

ORIGIN = Origin("test.yaml", lambda path: 7, ("overlays", "production", "spec"), "bot")


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    return merge_spec(base, patch, Origin("m.yaml", lambda p: None, ("overlays", "production"), "bot"))


# -- merge -------------------------------------------------------------------------------------


@pytest.mark.parametrize("copy_base", [True, False])  # False: rendering's own base, not copied first
def test_objects_deep_merge_and_inputs_are_untouched(copy_base: bool) -> None:
    base = {
        "core": {"name": "A", "model": "m1", "extra": {"x": 1, "y": 2}},
        "mcpServers": [{"name": "crm", "url": "https://a/crm", "allowedTools": ["x"]}, {"name": "kb", "url": "https://a/kb"}],
        "guardrails": {"blocked": ["a"], "maxTurns": 4},
    }
    patch = {
        "core": {"model": "m2", "extra": {"y": 3}},
        "mcpServers": [{"name": "crm", "allowedTools": ["y"]}, {"name": "kb", "$delete": True}],
        "guardrails": {"maxTurns": None},
    }
    before, patch_before = json.loads(json.dumps(base)), json.loads(json.dumps(patch))
    out = merge_spec(base, patch, Origin("m.yaml", lambda p: None, ("overlays", "production"), "bot"), copy_base=copy_base)
    assert out == {
        "core": {"name": "A", "model": "m2", "extra": {"x": 1, "y": 3}},
        "mcpServers": [{"name": "crm", "url": "https://a/crm", "allowedTools": ["y"]}],
        "guardrails": {"blocked": ["a"]},  # null removes the key
    }
    assert base == before and patch == patch_before


def test_array_sections_merge_by_key_never_replace() -> None:
    base = {
        "mcpServers": [{"name": "crm", "url": "https://a/crm", "allowedTools": ["x"]}, {"name": "kb", "url": "https://a/kb"}],
        "domains": [{"hostname": "a.example", "primary": True}],
    }
    patch = {
        "mcpServers": [{"name": "kb", "url": "https://b/kb"}, {"name": "new", "url": "https://b/new"}],
        "domains": [{"hostname": "b.example"}],
    }
    out = merge(base, patch)
    assert out["mcpServers"] == [
        {"name": "crm", "url": "https://a/crm", "allowedTools": ["x"]},
        {"name": "kb", "url": "https://b/kb"},
        {"name": "new", "url": "https://b/new"},
    ]
    assert [d["hostname"] for d in out["domains"]] == ["a.example", "b.example"]


def test_delete_marker_removes_an_item_and_unknown_delete_is_a_noop() -> None:
    base = {"skills": [{"name": "a"}, {"name": "b"}]}
    out = merge(base, {"skills": [{"name": "a", "$delete": True}, {"name": "zzz", "$delete": True}]})
    assert out == {"skills": [{"name": "b"}]}


def test_null_removes_keys_but_object_section_keys_stay_null_for_the_server() -> None:
    base = {
        "core": {"name": "A", "welcomeMessage": "hi"},
        "mcpServers": [{"name": "crm", "url": "https://a", "headers": {"X": "1", "Y": "2"}}],
        "skills": [{"name": "s"}],
    }
    out = merge(base, {"core": {"welcomeMessage": None}, "mcpServers": [{"name": "crm", "headers": {"X": None}}], "skills": None})
    # Object sections merge server-side: only an explicit null removes the live key.
    assert out["core"] == {"name": "A", "welcomeMessage": None}
    assert out["mcpServers"][0]["headers"] == {"Y": "2"}
    assert out["skills"] is None  # the section becomes unmanaged


def test_scalar_lists_are_replaced() -> None:
    out = merge({"security": {"allowedOrigins": ["https://a"]}}, {"security": {"allowedOrigins": ["https://b"]}})
    assert out["security"]["allowedOrigins"] == ["https://b"]


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"core": {"$delete": True}}, "'$delete' is only valid on an item"),
        ({"mcpServers": {"name": "x"}}, "must be a list of items keyed by 'name'"),
        ({"domains": [{"primary": True}]}, "an item needs a plain 'hostname'"),
        ({"skills": [{"name": "a", "$delete": "yes"}]}, "'$delete' must be true or false"),
    ],
)
def test_merge_mistakes_are_located_errors(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(ManifestError) as info:
        merge({"skills": [{"name": "a"}]}, patch)
    assert message in str(info.value) and "m.yaml" in str(info.value) and "overlays.production.spec" in str(info.value)


# -- templates ---------------------------------------------------------------------------------

SCOPES = [("chatbot", {"a": "A", "n": 0.2}), ("tenant", {"a": "tenant-a", "b": "B"}), ("built-ins", {"env": "prod"})]


def test_lookup_order_escape_and_types() -> None:
    doc = {"x": "${a}-${b}-${env}", "y": "$${a} and $${", "t": "${n}", "s": "n=${n}", "keep": 3, "list": ["${b}"]}
    assert expand(doc, SCOPES, ORIGIN) == {"x": "A-B-prod", "y": "${a} and ${", "t": 0.2, "s": "n=0.2", "keep": 3, "list": ["B"]}


def test_undefined_variable_names_chatbot_file_line_and_field() -> None:
    with pytest.raises(ManifestError) as info:
        expand({"core": {"systemPrompt": "hi ${nope}"}}, SCOPES, ORIGIN)
    text = str(info.value)
    assert text.startswith("test.yaml:7: overlays.production.spec.core.systemPrompt: chatbot 'bot': undefined variable 'nope'")
    assert "\n" not in text


def test_secret_reference_is_masked_and_resolved_only_on_demand() -> None:
    value = expand("Bearer ${secret:TOKEN}!", SCOPES, ORIGIN)
    assert isinstance(value, SecretText)
    assert value.masked() == str(value) == "Bearer <secret:TOKEN>!"
    assert "s3cr3t" not in repr(value)
    assert value.resolve({"TOKEN": "s3cr3t"}, where="w") == "Bearer s3cr3t!"
    with pytest.raises(ManifestError) as info:
        value.resolve({}, where="chatbot 'bot'")
    assert "secret TOKEN is not set" in str(info.value) and "test.yaml:7" in str(info.value)


# -- whole documents ---------------------------------------------------------------------------

MANIFEST = """\
version: 1
environments:
  staging: {vars: {region: eu-staging}}
  production: {vars: {region: eu}}
tenants:
  acme:
    keys: {staging: {env: K1}, production: {env: K2}}
    vars: {brand: Acme}
defaults:
  sections: [core, security, mcpServers, skills]
overlays:
  production:
    spec:
      mcpServers:
        - name: search
          headers: {Authorization: "Bearer ${secret:MCP_TOKEN}"}
        - {name: legacy, $delete: true}
chatbots:
  - name: bot
    tenant: acme
    ids: {staging: cb_s, production: cb_p}
    source: {file: bot.yaml}
    vars: {temp: 0.3}
    overrides:
      production: {spec: {core: {temperature: "${temp}"}}}
  - name: live
    tenant: acme
    source: {self: true}
"""
SOURCE = """\
apiVersion: wizchat.com/v1
kind: ChatbotConfig
metadata: {name: bot, exportedAt: "2026-01-01T00:00:00Z"}
spec:
  core: {name: "${brand} (${env})", temperature: 0.9}
  security: {webhookSecret: <redacted>, requireAuth: true}
  telemetry: {enabled: true}
  mcpServers:
    - {name: search, url: "https://mcp.${region}.example/search"}
    - {name: legacy, url: https://old.example}
"""


@pytest.fixture
def manifest_path(tmp_path: Path) -> Path:
    (tmp_path / "bot.yaml").write_text(SOURCE)
    (tmp_path / "wizsync.yaml").write_text(MANIFEST)
    return tmp_path / "wizsync.yaml"


def test_render_pipeline_masks_secrets_and_resolves_on_request(manifest_path: Path) -> None:
    manifest = load_manifest(manifest_path)
    target = resolve_targets(manifest, "production", chatbots=["bot"]).targets[0]
    doc = render_target(manifest, target)
    spec = doc.masked["spec"]
    assert doc.masked["apiVersion"] == "wizchat.com/v1" and doc.masked["kind"] == "ChatbotConfig"
    assert "metadata" not in doc.masked  # exportedAt would make the hash unstable
    assert spec["core"] == {"name": "Acme (production)", "temperature": 0.3}
    assert spec["security"]["webhookSecret"] == "<redacted>"  # kept: the server keeps its secret
    assert spec["telemetry"] is None  # not a managed section → unmanaged
    assert spec["domains"] is None
    assert spec["mcpServers"] == [
        {"name": "search", "url": "https://mcp.eu.example/search", "headers": {"Authorization": "Bearer <secret:MCP_TOKEN>"}}
    ]
    ChatbotConfigDocument.model_validate(doc.masked)
    assert doc.secret_names == ["MCP_TOKEN"]
    assert [str(e).split(":")[0] for e in doc.missing_secrets({})] == [str(manifest_path)]

    body = doc.resolve({"MCP_TOKEN": "tok-123"})
    assert body["spec"]["mcpServers"][0]["headers"]["Authorization"] == "Bearer tok-123"
    assert "tok-123" not in json.dumps(doc.masked) and "tok-123" not in doc.hash
    # Hash: stable, canonical, and independent of the secret's value.
    assert doc.hash == document_hash(json.loads(json.dumps(doc.masked))) == render_target(manifest, target).hash
    assert doc.hash.startswith("sha256:") and len(doc.hash) == 7 + 64
    with pytest.raises(ManifestError, match="secret MCP_TOKEN is not set"):
        doc.resolve({})


def test_staging_render_differs_and_live_source_needs_a_document(manifest_path: Path) -> None:
    manifest = load_manifest(manifest_path)
    plan = resolve_targets(manifest, "staging")
    bot, live = plan.targets
    assert render_target(manifest, bot).masked["spec"]["core"] == {"name": "Acme (staging)", "temperature": 0.9}
    with pytest.raises(ManifestError, match="must be fetched first"):
        render_target(manifest, live)
    live_doc = ChatbotConfigDocument.model_validate(
        {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig", "spec": {"core": {"name": "Live ${x}"}, "skills": []}}
    )
    out = render_target(manifest, live, live_doc).masked["spec"]
    assert out["core"] == {"name": "Live ${x}"}  # live configs are data, not templates
    assert out["skills"] == []


def test_render_output_is_plain_yaml(manifest_path: Path) -> None:
    manifest = load_manifest(manifest_path)
    doc = render_target(manifest, resolve_targets(manifest, "production", chatbots=["bot"]).targets[0])
    assert yaml.safe_load(yaml.safe_dump(doc.masked)) == doc.masked
