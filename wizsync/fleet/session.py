"""One command's context: the manifest, its selected targets, the keys, the journal.

Built in the order that keeps bad input from ever reaching the API: load the
manifest, select targets, run every offline check, read every key; only
then does a command open the engine.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engine import DEFAULT_CONCURRENCY, Executor, KeySpec, Transport
from ..journal import Journal, LockTarget, default_journal_path
from ..journal.recorder import Recorder
from ..manifest import Manifest, TargetPlan, load_manifest, parse_selection, raise_all, resolve_targets
from ..render.secrets import forbidden_values
from .load import FleetItem, fetch_pairs, key_pairs, key_specs, no_match_error, precheck
from .shards import Shard, ShardSpec, assign, restrict, shard_journal_name

if TYPE_CHECKING:
    from ..manifest import Listed

    from .load import FetchFailed
    from .pinning import PinCheck

__all__ = ["Session", "manifest_hash", "open_session", "make_executor"]


def manifest_hash(path: str | os.PathLike[str]) -> str:
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()


def make_executor(keys: Mapping[str, KeySpec], concurrency: int, recorder: Recorder | None = None, **kwargs: Any) -> Executor:
    """The engine every command sends its requests through (one place that builds it)."""
    return Executor(keys, concurrency=concurrency, on_event=recorder, **kwargs)


@dataclass
class Session:
    manifest_path: Path
    manifest: Manifest
    environment: str
    plan: TargetPlan
    keys: dict[str, KeySpec]
    concurrency: int
    journal_path: Path
    selectors: dict[str, Any] = field(default_factory=dict)
    shard: Shard | None = None
    transport: Transport = field(default_factory=Transport)  # --http-backend, --request-timeout
    # What prove_targets found: fleet loading reuses its listings instead of listing each key again.
    proof: PinCheck | None = None

    @property
    def manifest_hash(self) -> str:
        return manifest_hash(self.manifest_path)

    def forbidden(self, items: Sequence[FleetItem] = ()) -> set[str]:
        """Values no output, file or journal row may hold: every API key and resolved secret."""
        names = {n for item in items for n in item.rendered.secret_names}
        return forbidden_values(names, os.environ, [spec.api_key for spec in self.keys.values()])

    async def prove_targets(self, ex: Executor, journal: Journal, run_id: str, *, repin: frozenset[str] = frozenset(),
                            command: str = "plan/apply") -> PinCheck:
        """Before any dry-run or apply: every key of the session points where the manifest says (``wizsync.fleet.pinning``)."""
        from .pinning import check_targets

        self.proof = await check_targets(ex, self.manifest, sorted(self.keys), journal, run_id, repin=repin,
                                         command=command)
        return self.proof

    def proven_listings(self) -> dict[str, list[Listed] | FetchFailed] | None:
        """This environment's listings from ``prove_targets`` (by tenant), or None before it ran."""
        return self.proof.proven_listings(self.environment) if self.proof is not None else None

    def lock_targets(self, tenants: Sequence[str] | None = None) -> list[LockTarget]:
        """The targets a run of this session changes (its selected tenants, or ``tenants``), for the run lock."""
        chosen = tenants if tenants is not None else [t.tenant for t in self.plan.targets]
        base_url = self.manifest.environments[self.environment].baseUrl
        return sorted({LockTarget.of(base_url, tenant, self.environment) for tenant in chosen})

    def open_journal(self) -> Journal:
        journal = Journal.open(self.journal_path)
        journal.forbid(self.forbidden())
        return journal

    def executor(self, recorder: Recorder | None = None, **kwargs: Any) -> Executor:
        kwargs.setdefault("http", self.transport)
        return make_executor(self.keys, self.concurrency, recorder, **kwargs)


def open_session(
    manifest_path: str | os.PathLike[str],
    environment: str,
    *,
    select: Sequence[str] = (),
    chatbots: Sequence[str] = (),
    concurrency: int | None = None,
    journal: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    check: bool = True,
    sources: bool = True,
    keys: str | None = None,
    shard: ShardSpec | Shard | None = None,
    transport: Transport | None = None,
) -> Session:
    """Everything a command needs before its first request; raises ``ManifestError`` on bad input.

    ``check`` runs every offline check of ``validate`` for the environments
    involved; ``sources`` also reads the keys of source environments.
    ``keys`` says which keys to read instead: ``"fetches"`` only those
    rendering's fetches need (``render --online``), ``"none"`` none at all.
    ``shard`` keeps one shard's keys (``wizsync.fleet.shards``): a ``ShardSpec`` is
    assigned its keys from the selection; a recorded ``Shard`` (resume,
    rollback) keeps exactly the keys it was given, whatever the manifest says now.
    Only the shard's keys are read, and its journal defaults to
    ``journal-shard-I-of-N.db`` beside the default one.
    """
    manifest = load_manifest(manifest_path)
    selection = parse_selection(list(select), list(chatbots))
    plan = resolve_targets(manifest, environment, select=selection)
    assigned: Shard | None = None
    if isinstance(shard, ShardSpec):
        if not plan.targets:
            raise no_match_error(plan)  # before splitting: a typo must not pass as "an empty shard"
        assigned = assign(plan, shard)
    elif shard is not None:
        assigned = shard
    if assigned is not None:
        plan = restrict(plan, assigned)
    if keys == "fetches":
        pairs = fetch_pairs(plan)
    elif keys == "none":
        pairs = []
    else:
        # export reads the environment it exports and nothing else: no sources, no templates.
        pairs = key_pairs(plan) if sources else [(t.tenant, environment) for t in plan.targets]
    pairs = list(dict.fromkeys(pairs))
    if check:
        # The target environment even when this shard owns no key: every shard checks the same.
        envs = {env for _, env in pairs} | ({environment} if assigned is not None else set())
        precheck(manifest, sorted(envs), environ)
    specs = key_specs(manifest, pairs, environ)
    if specs:
        from .pinning import duplicate_key_errors

        raise_all(duplicate_key_errors(manifest, list(specs), environ))  # offline: before any request
    journal_path = Path(journal) if journal else default_journal_path(manifest_path)
    if assigned is not None and not journal:
        journal_path = journal_path.with_name(shard_journal_name(journal_path.name, assigned))
    selectors: dict[str, Any] = {"select": list(select), "chatbots": list(chatbots)}
    if assigned is not None:
        selectors["shard"] = assigned.as_json()
    return Session(
        manifest_path=Path(manifest_path).resolve(),
        manifest=manifest,
        environment=environment,
        plan=plan,
        keys=specs,
        concurrency=concurrency or manifest.rollout.concurrency or DEFAULT_CONCURRENCY,
        journal_path=journal_path,
        selectors=selectors,
        shard=assigned,
        transport=transport or Transport(),
    )
