"""``validate --check-keys``: every tenant's key of every checked environment, tried with a listing.

Read-only: one ``list_chatbots`` per (tenant, environment) with a key entry,
through the engine (its pacing and retry policy, as every other command),
then each environment's chatbot names bound against those listings. Every
problem is collected, none stops the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from wizchat_management import PublicChatbot

from .engine import KeySpec, Transport
from .fleet import key_label, key_specs, list_tenants
from .manifest import Manifest, ManifestError, resolve_targets
from .session import make_executor

__all__ = ["KeyCheck", "check_keys"]


@dataclass
class KeyCheck:
    calls: int = 0  # listings that succeeded
    errors: list[ManifestError] = field(default_factory=list)


def _readable_keys(manifest: Manifest, pairs: Sequence[tuple[str, str]], check: KeyCheck,
                   environ: Mapping[str, str] | None) -> dict[str, KeySpec]:  # fmt: skip
    specs: dict[str, KeySpec] = {}
    for pair in pairs:
        try:
            specs.update(key_specs(manifest, [pair], environ))
        except ManifestError as exc:
            check.errors.append(exc)
    return specs


async def check_keys(
    manifest: Manifest, environments: Sequence[str], *, concurrency: int, environ: Mapping[str, str] | None = None,
    transport: Transport | None = None,
) -> KeyCheck:
    check = KeyCheck()
    pairs = [(tenant, env) for env in environments for tenant, spec in manifest.tenants.items() if env in spec.keys]
    keys = _readable_keys(manifest, pairs, check, environ)
    readable = [p for p in pairs if key_label(*p) in keys]
    async with make_executor(keys, concurrency, http=transport) as ex:
        listed = await list_tenants(ex, manifest, readable)
    listings: dict[tuple[str, str], list[PublicChatbot]] = {}
    for pair, result in listed.items():
        if isinstance(result, ManifestError):
            check.errors.append(result)
        else:
            listings[pair] = result
            check.calls += 1
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
