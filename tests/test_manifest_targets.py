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
        ("acme/acme-support", "cb_a1", "canary"),
        ("acme/acme-sales", "cb_a2", "default"),
        ("globex/support-billing", "cb_g1", "default"),
        ("globex/support-returns", "cb_g2", "default"),  # the explicit globex entry owns support-billing
        ("acme/support-billing", "cb_a3", "default"),  # every address is tenant/name, whoever came first
    ]
    assert targets[3].discovered and targets[3].labels == {"tier": "bronze"}
    assert [t.chatbot_name for t in targets] == [
        "acme-support", "acme-sales", "support-billing", "support-returns", "support-billing"
    ]


def test_selectors_filter_and_exact_names_skip_listings(manifest) -> None:  # type: ignore[no-untyped-def]
    plan = resolve_targets(manifest, "production", chatbots=["acme-support"])
    assert plan.listings_needed() == []  # explicit id, and no discover entry can produce that name
    assert [t.name for t in plan.bind({})] == ["acme/acme-support"]

    gold = resolve_targets(manifest, "production", select="tier=gold")
    assert [t.name for t in gold.bind({})] == ["acme/acme-support"]
    not_canary = resolve_targets(manifest, "production", select=["wave!=canary", "tenant=globex"])
    assert [t.name for t in not_canary.bind(LISTINGS)] == ["globex/support-billing", "globex/support-returns"]
    globbed = resolve_targets(manifest, "production", chatbots=["support-r*"])
    assert [t.name for t in globbed.bind(LISTINGS)] == ["globex/support-returns"]


def test_a_bare_name_matches_in_every_tenant_and_an_address_in_one(manifest) -> None:  # type: ignore[no-untyped-def]
    bare = resolve_targets(manifest, "production", chatbots=["support-billing"])
    assert [t.name for t in bare.bind(LISTINGS)] == ["globex/support-billing", "acme/support-billing"]
    one = resolve_targets(manifest, "production", chatbots=["acme/support-billing"])
    assert one.listings_needed() == ["acme"]  # globex's entries cannot produce an acme address
    assert [t.name for t in one.bind(LISTINGS)] == ["acme/support-billing"]
    by_term = resolve_targets(manifest, "production", select="name=globex/support-*")
    assert [t.name for t in by_term.bind(LISTINGS)] == ["globex/support-billing", "globex/support-returns"]
    glob = resolve_targets(manifest, "production", chatbots=["*/acme-s*"])
    assert [t.name for t in glob.bind(LISTINGS)] == ["acme/acme-support", "acme/acme-sales"]
    not_acme = resolve_targets(manifest, "production", select="name!=acme/*")
    assert [t.name for t in not_acme.bind(LISTINGS)] == ["globex/support-billing", "globex/support-returns"]


def test_addresses_do_not_depend_on_manifest_order(tmp_path: Path) -> None:
    head, entries = MANIFEST.split("chatbots:\n")
    chunks = ["  - " + chunk for chunk in entries.split("  - ")[1:]]
    addresses = []
    for order in (chunks, chunks[::-1], chunks[2:] + chunks[:2]):
        path = tmp_path / "wizsync.yaml"
        path.write_text(head + "chatbots:\n" + "".join(order))
        targets = resolve_targets(load_manifest(path), "production").bind(LISTINGS)
        addresses.append(sorted((t.name, t.chatbot_id, t.chatbot_name) for t in targets))
    assert addresses[0] == addresses[1] == addresses[2]
    assert ("acme/support-billing", "cb_a3", "support-billing") in addresses[0]


def test_two_tenants_may_each_name_a_chatbot_alike_but_one_tenant_not_twice(tmp_path: Path) -> None:
    path = tmp_path / "wizsync.yaml"
    head = MANIFEST.split("chatbots:\n")[0]
    path.write_text(head + "chatbots:\n  - {name: faq, tenant: acme}\n  - {name: faq, tenant: globex}\n")
    plan = resolve_targets(load_manifest(path), "production")
    assert [t.name for t in plan.targets] == ["acme/faq", "globex/faq"]
    path.write_text(head + "chatbots:\n  - {name: faq, tenant: acme}\n  - {name: faq, tenant: acme}\n")
    with pytest.raises(ManifestError, match=r"duplicate chatbot 'acme/faq' \(also chatbots\[0\]"):
        load_manifest(path)


def test_tenant_and_environment_names_cannot_hold_a_slash(tmp_path: Path) -> None:
    path = tmp_path / "wizsync.yaml"
    path.write_text(MANIFEST.replace("  globex: {", "  glo/bex: {").split("chatbots:")[0])
    with pytest.raises(ManifestError, match="tenant name 'glo/bex' is not valid"):
        load_manifest(path)
    # environments name folders too (export writes DIR/<env>/<tenant>/): no way out of DIR
    path.write_text(MANIFEST.replace("environments: {staging: {}, production: {}}", "environments: {'../up': {}}").split("chatbots:")[0])
    with pytest.raises(ManifestError, match="environment name '../up' is not valid"):
        load_manifest(path)


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
