"""``validate --check-keys``: every tenant's key of every checked environment, tried with a listing.

Read-only: one ``list_chatbots`` per (tenant, environment) with a key entry,
through the engine (its pacing and retry policy, as every other command),
then each environment's chatbot names bound against those listings, and the
targets proved as a run would prove them (``wizsync.fleet.pinning``: no two keys of
one organization, what the journal pinned, the manifest's ``expect``), without
pinning anything. Every problem is collected, none stops the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..engine import KeySpec, Transport
from ..journal import Journal
from ..manifest import Listed, Manifest, ManifestError, resolve_targets
from .load import key_label, key_specs, list_tenants
from .pinning import decide, expectations, target_pins_error
from .session import make_executor

__all__ = ["KeyCheck", "check_keys"]


@dataclass
class KeyCheck:
    calls: int = 0  # listings that succeeded
    errors: list[ManifestError] = field(default_factory=list)
    proved: dict[str, str] = field(default_factory=dict)  # target → what was proved about its key


def _readable_keys(manifest: Manifest, pairs: Sequence[tuple[str, str]], check: KeyCheck,
                   environ: Mapping[str, str] | None) -> dict[str, KeySpec]:
    specs: dict[str, KeySpec] = {}
    for pair in pairs:
        try:
            specs.update(key_specs(manifest, [pair], environ))
        except ManifestError as exc:
            check.errors.append(exc)
    return specs


def _pinned(journal_path: Path | None) -> dict[str, dict[str, str]]:
    """What the journal pinned, read-only; nothing when there is no journal yet."""
    if journal_path is None or not journal_path.is_file():
        return {}
    with Journal.open(journal_path, readonly=True) as journal:
        return journal.pins()


async def check_keys(
    manifest: Manifest, environments: Sequence[str], *, concurrency: int, environ: Mapping[str, str] | None = None,
    transport: Transport | None = None, journal_path: Path | None = None,
) -> KeyCheck:
    check = KeyCheck()
    pairs = [(tenant, env) for env in environments for tenant, spec in manifest.tenants.items() if env in spec.keys]
    keys = _readable_keys(manifest, pairs, check, environ)
    readable = [p for p in pairs if key_label(*p) in keys]
    async with make_executor(keys, concurrency, http=transport) as ex:
        listed = await list_tenants(ex, manifest, readable)
    listings: dict[tuple[str, str], list[Listed]] = {}
    for pair, result in listed.items():
        if isinstance(result, ManifestError):
            check.errors.append(result)
        else:
            listings[pair] = result
            check.calls += 1
    if len(listings) == len(readable) and listings:
        seen = {key_label(*pair): frozenset(c.id for c in listing) for pair, listing in listings.items()}
        pins = decide(seen, _pinned(journal_path), expectations(manifest), recording=False)
        check.proved = pins.proved
        if not pins.ok:
            check.errors.append(target_pins_error(manifest, pins))
    for env in environments:
        plan = resolve_targets(manifest, env)
        needed = plan.listings_needed()
        if any((t, env) not in listings for t in needed):
            continue  # a tenant's listing failed: that error is already reported
        try:
            plan.bind({t: listings[(t, env)] for t in needed})
        except ManifestError as exc:
            check.errors.append(exc)
    return check
