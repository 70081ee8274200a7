"""The runs of several journals as one fleet: what ``runs`` and ``show`` print over shards (pure).

Each ``--shard`` process keeps its own journal; a fleet-wide view reads one
run per shard and answers what no single journal can: did every shard run,
did they run the same manifest and selection, does any key show up in two
shards, what are the fleet's counts, and do its failures fit the failure
budget of the whole fleet (``rollout.maxFailures`` of all its chatbots; each
shard halts on its own share only, so an absolute budget is checked here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..apply.schedule import failure_budget
from ..fleet.shards import Shard, overlapping
from ..journal import RunRecord

__all__ = ["RunView", "FleetSummary", "fleet_summary"]

# The fleet's status is the most pressing of its runs' statuses.
_PRECEDENCE = ("running", "failed", "interrupted", "halted", "completed")


@dataclass(frozen=True)
class RunView:
    """One run as the fleet view needs it (read from its journal by the caller)."""

    journal: Path
    run: RunRecord
    status: str  # effective: a dead ``running`` run is ``interrupted``
    counts: Mapping[str, int]
    keys: tuple[str, ...]  # key labels of the run's chatbots
    requests: int = 0
    throttled: int = 0
    retries: int = 0

    @property
    def shard(self) -> Shard | None:
        data = (self.run.options or {}).get("shard")
        return Shard.from_json(data) if isinstance(data, Mapping) else None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def label(self) -> str:
        return f"shard {self.shard}" if self.shard is not None else "unsharded"


@dataclass
class FleetSummary:
    command: str | None
    environment: str | None
    shards: int | None  # N of the shards merged; None when not (all) sharded
    status: str
    runs: int
    total: int
    counts: dict[str, int]
    requests: int
    throttled: int
    retries: int
    failed: int
    max_failures: int | str | None
    budget: int | None
    started_at: str | None
    finished_at: str | None
    problems: list[str] = field(default_factory=list)

    @property
    def budget_exceeded(self) -> bool:
        return self.budget is not None and self.failed > self.budget

    @property
    def ok(self) -> bool:
        """Every shard ran and completed, consistently, within the fleet's failure budget."""
        return self.status == "completed" and not self.budget_exceeded and not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "command": self.command, "environment": self.environment, "shards": self.shards, "status": self.status,
            "ok": self.ok, "runs": self.runs, "total": self.total, "counts": dict(sorted(self.counts.items())),
            "requests": self.requests, "throttled": self.throttled, "retries": self.retries,
            "failure_budget": {"failed": self.failed, "max_failures": self.max_failures, "budget": self.budget,
                               "exceeded": self.budget_exceeded},
            "started_at": self.started_at, "finished_at": self.finished_at, "problems": list(self.problems),
        }


def _one(values: Sequence[Any]) -> Any:
    distinct = list(dict.fromkeys(values))
    return distinct[0] if len(distinct) == 1 else None


def _selection(view: RunView) -> tuple[tuple[str, ...], tuple[str, ...]]:
    options = view.run.options or {}
    return tuple(options.get("select") or ()), tuple(options.get("chatbots") or ())


def _consistency(views: Sequence[RunView]) -> list[str]:
    """Why these runs do not add up to one fleet run (empty: they do)."""
    sharded = [v.shard for v in views if v.shard is not None]
    problems = _mismatches(views) + _shard_gaps(views, sharded)
    if not any(v.total for v in views):
        # Each shard may rightly find nothing; all of them finding nothing hides a typo in the selection.
        problems.append("no chatbot in any run: the selection matched nothing")
    return problems + _key_clashes(views, sharded)


def _mismatches(views: Sequence[RunView]) -> list[str]:
    """Runs of different commands, environments, manifests or selections."""
    problems: list[str] = []
    commands = sorted({v.run.command for v in views})
    environments = sorted({v.run.environment for v in views})
    if len(commands) > 1:
        problems.append(f"the runs are of different commands ({', '.join(commands)})")
    if len(environments) > 1:
        problems.append(f"the runs are of different environments ({', '.join(environments)})")
    if len({v.run.manifest_hash for v in views}) > 1:
        problems.append("the runs used different manifests (manifest hashes differ): their shards do not fit together")
    if len({_selection(v) for v in views}) > 1:
        problems.append("the runs used different --select/--chatbot selections: their shards do not fit together")
    return problems


def _shard_gaps(views: Sequence[RunView], sharded: Sequence[Shard]) -> list[str]:
    """Shards that do not make one split of the fleet: mixed with unsharded runs, split differently, twice, missing."""
    problems: list[str] = []
    if sharded and len(sharded) < len(views):
        problems.append(f"{len(views) - len(sharded)} unsharded run(s) merged with shard runs")
    counts = sorted({s.count for s in sharded})
    if len(counts) > 1:
        problems.append(f"the shard runs split the fleet differently (into {', '.join(map(str, counts))} shards)")
    elif counts:
        problems += _shard_coverage(views, counts[0])
    return problems


def _shard_coverage(views: Sequence[RunView], count: int) -> list[str]:
    """Each shard 1..``count`` in exactly one run."""
    problems: list[str] = []
    by_index: dict[int, list[RunView]] = {}
    for v in views:
        if v.shard is not None:
            by_index.setdefault(v.shard.index, []).append(v)
    for index, group in sorted(by_index.items()):
        if len(group) > 1:
            where = ", ".join(f"{v.run.id} in {v.journal.name}" for v in group)
            problems.append(f"shard {index}/{count} appears in {len(group)} runs ({where})")
    missing = [i for i in range(1, count + 1) if i not in by_index]
    if missing:
        shown = ", ".join(f"{i}/{count}" for i in missing[:20]) + (" ..." if len(missing) > 20 else "")
        problems.append(f"no run of shard {shown}: the fleet is not complete without it")
    return problems


def _key_clashes(views: Sequence[RunView], sharded: Sequence[Shard]) -> list[str]:
    """No key in two runs, by what each shard was given and by what each run touched."""
    owners: dict[str, set[str]] = {}
    for v in views:
        for key in v.keys:
            owners.setdefault(key, set()).add(v.run.id)
    clashes = {k: sorted(o) for k, o in owners.items() if len(o) > 1}
    clashes.update({k: o for k, o in overlapping(sharded).items() if k not in clashes})
    return [f"key {key} is in more than one run ({', '.join(runs)})" for key, runs in sorted(clashes.items())[:20]]


def fleet_summary(views: Sequence[RunView]) -> FleetSummary:
    """The merged view of these runs (one per shard, usually)."""
    counts: dict[str, int] = {}
    for v in views:
        for state, n in v.counts.items():
            counts[state] = counts.get(state, 0) + n
    problems = _consistency(views) if views else ["no runs to merge"]
    total = sum(counts.values())
    command = _one([v.run.command for v in views])
    max_failures = _fleet_max_failures(command, views)
    if command in ("apply", "rollback") and max_failures is None and views:
        problems.append("the runs have different failure budgets (maxFailures)")
    return FleetSummary(
        command=command,
        environment=_one([v.run.environment for v in views]),
        shards=_shard_count(views),
        status=_fleet_status(views),
        runs=len(views),
        total=total,
        counts=counts,
        requests=sum(v.requests for v in views),
        throttled=sum(v.throttled for v in views),
        retries=sum(v.retries for v in views),
        failed=counts.get("failed", 0),
        max_failures=max_failures,
        budget=failure_budget(max_failures, total) if max_failures is not None else None,
        started_at=min((v.run.started_at for v in views), default=None),
        finished_at=_finished_at(views),
        problems=problems,
    )


def _fleet_status(views: Sequence[RunView]) -> str:
    """The most pressing of the runs' statuses."""
    statuses = {v.status for v in views}
    return next((s for s in _PRECEDENCE if s in statuses), _one(sorted(statuses)) or "unknown")


def _fleet_max_failures(command: str | None, views: Sequence[RunView]) -> int | str | None:
    """The runs' one ``max_failures`` (apply and rollback only); None when they differ."""
    if command not in ("apply", "rollback"):
        return None
    return _one([(v.run.options or {}).get("max_failures") for v in views])  # type: ignore[no-any-return]


def _shard_count(views: Sequence[RunView]) -> int | None:
    """N of the shards merged; None unless every run is a shard run of the same N."""
    shards = [v.shard for v in views]
    if not shards or any(s is None for s in shards):
        return None
    return _one([s.count for s in shards if s is not None])  # type: ignore[no-any-return]


def _finished_at(views: Sequence[RunView]) -> str | None:
    """When the last run finished; None while any has not."""
    finished = [v.run.finished_at for v in views]
    return max(finished) if finished and all(finished) else None  # type: ignore[type-var]
