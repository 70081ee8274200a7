"""``--shard I/N``: split one environment's fleet over N processes by target key (pure).

A key (``tenant/environment``, :func:`wizsync.fleet.load.key_label`) is never split, so
per-key rate limits hold with shards running side by side. The split is decided
from the manifest and the selection alone, before any request: a discover
entry's size is not known before listing, so it weighs its ``shardWeight``
(default 1) and an explicit entry weighs 1. Deciding from live listings would
let shards that start minutes apart disagree (a chatbot created in between moves
a key), putting one key in two shards or in none; a manifest-only rule gives
every machine the same answer.

Balancing is greedy largest-first bin packing: keys by weight (heaviest first,
then by name), each into the lightest shard so far (lowest number on a tie). It
depends on the set of keys and their weights, never on the order of entries in
the manifest.

Shards are numbered 1..N (as in ``--shard 2/4``); ``auto/N`` takes the shard from
the 0-based ``JOB_COMPLETION_INDEX`` a Kubernetes Indexed Job gives each pod.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..manifest import TargetPlan
from .load import key_label

__all__ = ["INDEX_VARIABLE", "MAX_SHARDS", "ShardSpec", "Shard", "parse_shard", "partition", "key_weights", "assign", "restrict", "shard_journal_name", "shard_line", "overlapping"]

INDEX_VARIABLE = "JOB_COMPLETION_INDEX"
MAX_SHARDS = 10_000
_SPEC = re.compile(r"^(\d+|auto)/(\d+)$")


@dataclass(frozen=True)
class ShardSpec:
    """Which shard this process is: ``index`` of ``count``, 1-based."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True)
class Shard:
    """A shard's share of the fleet: the keys it owns, out of ``fleet_keys`` keys in all."""

    index: int
    count: int
    keys: tuple[str, ...]
    fleet_keys: int

    @property
    def spec(self) -> ShardSpec:
        return ShardSpec(self.index, self.count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "count": self.count, "keys": list(self.keys), "fleet_keys": self.fleet_keys}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Shard:
        return cls(int(data["index"]), int(data["count"]), tuple(data.get("keys") or ()), int(data.get("fleet_keys") or 0))


def parse_shard(text: str, environ: Mapping[str, str]) -> ShardSpec:
    """``I/N`` or ``auto/N``; ``ValueError`` with a message fit for the user otherwise."""
    match = _SPEC.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not I/N or auto/N (e.g. 2/4: the second of four shards)")
    count = int(match.group(2))
    if not 1 <= count <= MAX_SHARDS:
        raise ValueError(f"{text!r}: the number of shards must be between 1 and {MAX_SHARDS}")
    if match.group(1) == "auto":
        raw = environ.get(INDEX_VARIABLE)
        if raw is None or not raw.strip():
            raise ValueError(
                f"{text!r} takes the shard from {INDEX_VARIABLE} (set by a Kubernetes Indexed Job), which is not set; "
                f"give the shard as I/{count} instead"
            )
        if not raw.strip().isdigit():
            raise ValueError(f"{INDEX_VARIABLE}={raw.strip()!r} is not a shard index (0 to {count - 1})")
        zero_based = int(raw.strip())
        if zero_based >= count:
            raise ValueError(
                f"{INDEX_VARIABLE}={zero_based} is not below {count}: the Job's completions must equal N of auto/{count}"
            )
        return ShardSpec(zero_based + 1, count)
    index = int(match.group(1))
    if not 1 <= index <= count:
        raise ValueError(f"{text!r}: the shard must be between 1 and {count} (shards are numbered from 1)")
    return ShardSpec(index, count)


def partition(weights: Mapping[str, int], count: int) -> list[tuple[str, ...]]:
    """The keys of each of ``count`` shards (index 0 is shard 1), each list sorted by name."""
    if count < 1:
        raise ValueError("count must be at least 1")
    bins: list[list[str]] = [[] for _ in range(count)]
    heap = [(0, i) for i in range(count)]  # (load, shard): the lightest, then the lowest number
    for key in sorted(weights, key=lambda k: (-weights[k], k)):
        load, i = heapq.heappop(heap)
        bins[i].append(key)
        heapq.heappush(heap, (load + weights[key], i))
    return [tuple(sorted(b)) for b in bins]


def key_weights(plan: TargetPlan) -> dict[str, int]:
    """Each target key's expected chatbot count: explicit entries 1, discover entries their ``shardWeight``."""
    weights: dict[str, int] = {}
    for target in plan.targets:
        label = key_label(target.tenant, plan.environment)
        weight = target.discover.shardWeight if target.discover is not None else 1
        weights[label] = weights.get(label, 0) + weight
    return weights


def assign(plan: TargetPlan, spec: ShardSpec) -> Shard:
    """The keys ``spec`` owns among the keys of the plan's (selected) targets."""
    weights = key_weights(plan)
    return Shard(spec.index, spec.count, partition(weights, spec.count)[spec.index - 1], len(weights))


def restrict(plan: TargetPlan, shard: Shard) -> TargetPlan:
    """The plan with only the targets of the shard's keys (their order kept)."""
    owned = set(shard.keys)
    targets = tuple(t for t in plan.targets if key_label(t.tenant, plan.environment) in owned)
    return replace(plan, targets=targets, shard=shard)


def shard_journal_name(filename: str, spec: ShardSpec | Shard) -> str:
    """``journal.db`` → ``journal-shard-2-of-4.db``: the default journal of a shard, beside the unsharded one."""
    stem, dot, suffix = filename.rpartition(".")
    if not dot:
        stem, suffix = filename, ""
    return f"{stem}-shard-{spec.index}-of-{spec.count}{'.' + suffix if suffix else ''}"


def shard_line(shard: Shard) -> str:
    """``Shard 2/4: 3 of 10 keys (acme/production, ...)``, for the human reports."""
    shown = ", ".join(shard.keys[:8]) + (f", ... ({len(shard.keys)} in all)" if len(shard.keys) > 8 else "")
    return f"Shard {shard}: {len(shard.keys)} of {shard.fleet_keys} key(s)" + (f" ({shown})" if shard.keys else " (no key: nothing to do)")


def overlapping(shards: Sequence[Shard]) -> dict[str, list[str]]:
    """Keys claimed by more than one of these shards → the shards (``I/N``) claiming them."""
    owners: dict[str, list[str]] = {}
    for shard in shards:
        for key in shard.keys:
            owners.setdefault(key, []).append(str(shard))
    return {k: v for k, v in owners.items() if len(v) > 1}
