"""`--shard I/N` decided offline: parsing, and the split of a fleet's keys (pure, table-driven).

A key is never split, every key lands in exactly one shard, the split is the
same whatever the order of the manifest's entries, and it balances chatbots
(greedy largest-first: the heaviest key first, into the lightest shard).
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from wizsync.manifest import load_manifest, resolve_targets
from wizsync.fleet.shards import (
    Shard,
    ShardSpec,
    assign,
    key_weights,
    parse_shard,
    partition,
    restrict,
    shard_journal_name,
)

PARSE_OK = [
    ("1/1", {}, ShardSpec(1, 1)),
    ("2/4", {}, ShardSpec(2, 4)),
    ("4/4", {}, ShardSpec(4, 4)),
    (" 3/8 ", {}, ShardSpec(3, 8)),
    ("auto/4", {"JOB_COMPLETION_INDEX": "0"}, ShardSpec(1, 4)),
    ("auto/4", {"JOB_COMPLETION_INDEX": "3"}, ShardSpec(4, 4)),
    ("auto/1", {"JOB_COMPLETION_INDEX": " 0 "}, ShardSpec(1, 1)),
    ("2/4", {"JOB_COMPLETION_INDEX": "0"}, ShardSpec(2, 4)),  # an explicit shard ignores the variable
]


@pytest.mark.parametrize(("text", "environ", "expected"), PARSE_OK, ids=[f"{t.strip()}-{e}" for t, e, _ in PARSE_OK])
def test_parse_shard(text: str, environ: dict[str, str], expected: ShardSpec) -> None:
    assert parse_shard(text, environ) == expected


PARSE_BAD = [
    ("0/4", {}, "between 1 and 4"),
    ("5/4", {}, "between 1 and 4"),
    ("1/0", {}, "between 1 and 10000"),
    ("1/10001", {}, "between 1 and 10000"),
    ("-1/4", {}, "not I/N"),
    ("+1/4", {}, "not I/N"),
    ("1", {}, "not I/N"),
    ("1/4/2", {}, "not I/N"),
    ("a/4", {}, "not I/N"),
    ("1.5/4", {}, "not I/N"),
    ("", {}, "not I/N"),
    ("1 / 4", {}, "not I/N"),
    ("auto", {"JOB_COMPLETION_INDEX": "0"}, "not I/N"),
    ("auto/4", {}, "JOB_COMPLETION_INDEX (set by a Kubernetes Indexed Job), which is not set"),
    ("auto/4", {"JOB_COMPLETION_INDEX": ""}, "which is not set"),
    ("auto/4", {"JOB_COMPLETION_INDEX": "4"}, "JOB_COMPLETION_INDEX=4 is not below 4"),
    ("auto/4", {"JOB_COMPLETION_INDEX": "-1"}, "is not a shard index (0 to 3)"),
    ("auto/4", {"JOB_COMPLETION_INDEX": "two"}, "is not a shard index"),
]


@pytest.mark.parametrize(("text", "environ", "message"), PARSE_BAD, ids=[f"{t}-{e}" for t, e, _ in PARSE_BAD])
def test_parse_shard_refuses(text: str, environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        parse_shard(text, environ)
    assert message in str(info.value)


PARTITIONS = [
    # weights, shards, expected keys per shard
    ({"a": 1, "b": 1, "c": 1, "d": 1}, 2, [("a", "c"), ("b", "d")]),
    ({"a": 1, "b": 1, "c": 1}, 4, [("a",), ("b",), ("c",), ()]),  # more shards than keys: the last ones empty
    ({"a": 10, "b": 6, "c": 5, "d": 4, "e": 1}, 2, [("a", "d"), ("b", "c", "e")]),  # 14 / 12
    ({"big": 100, "x": 1, "y": 1, "z": 1}, 2, [("big",), ("x", "y", "z")]),  # a key is never split
    ({"k1": 3, "k2": 3, "k3": 2, "k4": 2, "k5": 2}, 2, [("k1", "k3", "k5"), ("k2", "k4")]),
    ({"solo": 7}, 1, [("solo",)]),
    ({}, 3, [(), (), ()]),
]


@pytest.mark.parametrize(("weights", "count", "expected"), PARTITIONS)
def test_partition(weights: dict[str, int], count: int, expected: list[tuple[str, ...]]) -> None:
    assert partition(weights, count) == expected


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 16])
def test_partition_covers_every_key_once_whatever_the_input_order(count: int) -> None:
    rng = random.Random(count)
    weights = {f"t{i}/production": rng.randint(1, 40) for i in range(37)}
    shards = partition(weights, count)
    assert sorted(k for s in shards for k in s) == sorted(weights)  # every key exactly once
    for _ in range(5):
        shuffled = dict(rng.sample(sorted(weights.items()), len(weights)))
        assert partition(shuffled, count) == shards
    loads = [sum(weights[k] for k in s) for s in shards]
    # Largest-first greedy: no shard exceeds the lightest by more than the heaviest single key.
    assert max(loads) - min(loads) <= max(weights.values())


def test_shard_journal_names() -> None:
    assert shard_journal_name("journal.db", ShardSpec(2, 4)) == "journal-shard-2-of-4.db"
    assert shard_journal_name("runs.sqlite3", ShardSpec(1, 1)) == "runs-shard-1-of-1.sqlite3"
    assert shard_journal_name("journal", ShardSpec(3, 8)) == "journal-shard-3-of-8"


MANIFEST = """\
version: 1
environments:
  production: {baseUrl: "https://api.example.test"}
  staging: {baseUrl: "https://staging.example.test"}
tenants:
  acme: {keys: {production: {env: A_P}, staging: {env: A_S}}}
  globex: {keys: {production: {env: G_P}}}
  initech: {keys: {production: {env: I_P}}}
  umbrella: {keys: {production: {env: U_P}}}
defaults:
  source: {file: bot.yaml}
chatbots:
"""
ENTRIES = [
    "  - {name: acme-1, tenant: acme, labels: {tier: gold}}",
    "  - {name: acme-2, tenant: acme}",
    "  - {name: acme-3, tenant: acme, source: {environment: staging}}",
    "  - {name: globex-1, tenant: globex, labels: {tier: gold}}",
    "  - {discover: {tenant: initech, match: 'support-*', shardWeight: 5}}",
    "  - {name: umbrella-1, tenant: umbrella}",
    "  - {name: umbrella-2, tenant: umbrella, labels: {tier: gold}}",
]


def _plan(tmp_path: Path, entries: list[str], name: str = "m.yaml", select: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    (tmp_path / "bot.yaml").write_text("spec: {core: {name: x}}\n")
    path = tmp_path / name
    path.write_text(MANIFEST + "\n".join(entries) + "\n")
    return resolve_targets(load_manifest(path), "production", select=select)


def test_weights_count_entries_and_discover_weights(tmp_path: Path) -> None:
    plan = _plan(tmp_path, ENTRIES)
    assert key_weights(plan) == {"acme/production": 3, "globex/production": 1, "initech/production": 5,
                                 "umbrella/production": 2}


def test_the_split_ignores_the_manifest_order(tmp_path: Path) -> None:
    expected = assign(_plan(tmp_path, ENTRIES), ShardSpec(1, 2))
    # initech 5 → 1; acme 3 → 2; umbrella 2 → 2 (3 < 5); globex 1 → 1 (5 = 5: the lower number)
    assert expected.keys == ("globex/production", "initech/production")
    for n, order in enumerate(itertools.islice(itertools.permutations(ENTRIES), 0, 720, 97)):
        plan = _plan(tmp_path, list(order), name=f"m{n}.yaml")
        assert assign(plan, ShardSpec(1, 2)).keys == expected.keys
        assert assign(plan, ShardSpec(2, 2)).keys == ("acme/production", "umbrella/production")


def test_restrict_keeps_whole_keys_with_their_sources(tmp_path: Path) -> None:
    plan = _plan(tmp_path, ENTRIES)
    shards = [assign(plan, ShardSpec(i, 3)) for i in (1, 2, 3)]
    restricted = [restrict(plan, s) for s in shards]
    names = [[t.name for t in r.targets] for r in restricted]
    assert sorted(n for ns in names for n in ns) == sorted(t.name for t in plan.targets)
    for shard, r in zip(shards, restricted):
        assert {f"{t.tenant}/production" for t in r.targets} == set(shard.keys)
        assert r.shard == shard
    acme = next(r for r in restricted if any(t.tenant == "acme" for t in r.targets))
    assert [t.name for t in acme.targets if t.tenant == "acme"] == ["acme/acme-1", "acme/acme-2", "acme/acme-3"]  # order kept


def test_the_split_follows_the_selection(tmp_path: Path) -> None:
    plan = _plan(tmp_path, ENTRIES, select=("tier=gold",))
    assert key_weights(plan) == {"acme/production": 1, "globex/production": 1, "umbrella/production": 1}
    assert [assign(plan, ShardSpec(i, 3)).keys for i in (1, 2, 3)] == [
        ("acme/production",), ("globex/production",), ("umbrella/production",)]


def test_a_recorded_shard_round_trips() -> None:
    shard = Shard(2, 4, ("acme/production", "globex/production"), 9)
    assert Shard.from_json(shard.as_json()) == shard
    assert str(shard) == "2/4" and shard.spec == ShardSpec(2, 4)
