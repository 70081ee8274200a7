"""Target resolution: selectors, name matching, discover expansion, listings only when needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from wizchat_management import PublicChatbot
from wizsync.manifest import ManifestError, load_manifest, parse_selection, resolve_targets

MANIFEST = """\
version: 1
environments: {staging: {}, production: {}}
tenants:
  acme: {keys: {staging: {env: A}, production: {env: B}}}
  globex: {keys: {staging: {env: C}, production: {env: D}}}
defaults: {source: {self: true}}
rollout: {waves: [canary]}
chatbots:
  - {name: acme-support, tenant: acme, ids: {production: cb_a1}, labels: {tier: gold}, wave: canary}
  - {name: acme-sales, tenant: acme, labels: {tier: silver}}
  - {name: support-billing, tenant: globex}
  - discover: {tenant: globex, match: "support-*"}
    labels: {tier: bronze}
  - discover: {tenant: acme, match: "support-*"}
"""


def bot(id_: str, name: str) -> PublicChatbot:
    return PublicChatbot(id=id_, name=name, status="active", revision=0, createdAt="2026-01-01T00:00:00Z", updatedAt="2026-01-01T00:00:00Z")


LISTINGS = {
    "acme": [bot("cb_a1", "acme-support"), bot("cb_a2", "acme-sales"), bot("cb_a3", "support-billing")],
    "globex": [bot("cb_g1", "support-billing"), bot("cb_g2", "support-returns"), bot("cb_g3", "sales")],
}


@pytest.fixture
def manifest(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "wizsync.yaml"
    path.write_text(MANIFEST)
    return load_manifest(path)


def test_bind_matches_names_and_expands_discover(manifest) -> None:  # type: ignore[no-untyped-def]
    plan = resolve_targets(manifest, "production")
    assert plan.listings_needed() == ["acme", "globex"]
    targets = plan.bind(LISTINGS)
    assert [(t.name, t.chatbot_id, t.wave) for t in targets] == [
        ("acme-support", "cb_a1", "canary"),
        ("acme-sales", "cb_a2", "default"),
        ("support-billing", "cb_g1", "default"),
        ("support-returns", "cb_g2", "default"),  # the explicit globex entry owns support-billing
        ("acme/support-billing", "cb_a3", "default"),  # name taken by another tenant → qualified
    ]
    assert targets[3].discovered and targets[3].labels == {"tier": "bronze"}


def test_selectors_filter_and_exact_names_skip_listings(manifest) -> None:  # type: ignore[no-untyped-def]
    plan = resolve_targets(manifest, "production", chatbots=["acme-support"])
    assert plan.listings_needed() == []  # explicit id, and no discover entry can produce that name
    assert [t.name for t in plan.bind({})] == ["acme-support"]

    gold = resolve_targets(manifest, "production", select="tier=gold")
    assert [t.name for t in gold.bind({})] == ["acme-support"]
    not_canary = resolve_targets(manifest, "production", select=["wave!=canary", "tenant=globex"])
    assert [t.name for t in not_canary.bind(LISTINGS)] == ["support-billing", "support-returns"]
    globbed = resolve_targets(manifest, "production", chatbots=["support-r*"])
    assert [t.name for t in globbed.bind(LISTINGS)] == ["support-returns"]


def test_name_not_found_or_ambiguous(manifest) -> None:  # type: ignore[no-untyped-def]
    plan = resolve_targets(manifest, "staging", chatbots=["acme-sales"])
    with pytest.raises(ManifestError, match="no chatbot named 'acme-sales' in tenant 'acme' in environment 'staging'") as info:
        plan.bind({"acme": [bot("x", "other")]})
    assert ":10: chatbots[1].name" in str(info.value)
    with pytest.raises(ManifestError, match="2 chatbots named 'acme-sales'.*Set ids.staging"):
        plan.bind({"acme": [bot("x", "acme-sales"), bot("y", "acme-sales")]})


@pytest.mark.parametrize("text", ["tier", "tier=", "=gold", "a=b,,c=d", "tier!gold", "tier=gold=x"])
def test_bad_selectors(text: str) -> None:
    with pytest.raises(ManifestError, match="--select"):
        parse_selection(text)


def test_unknown_environment(manifest) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ManifestError, match="unknown environment 'prod'"):
        resolve_targets(manifest, "prod")
