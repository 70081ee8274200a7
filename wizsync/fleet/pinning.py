"""Targets are pinned: before any dry-run or apply, each (tenant, environment) key is proved to point
where the manifest says.

Three proofs, the first offline, the others from one ``list_chatbots`` per key (which fleet
loading then reuses; a key whose listing fails is unproven, and only its chatbots fail):

1. **No two targets share a key value** (:func:`duplicate_key_errors`).
2. **No two targets see the same chatbot.** Chatbot ids belong to one
   organization, so two keys that list a common id are keys of one
   organization: a staging key in a production variable, one tenant's key in
   another's. Compared between the keys of the run and against what the journal
   pinned for every other target.
3. **Each target still sees what it saw** (trust on first use, like ssh's
   known_hosts): the journal pins the ids a target's key listed at its first
   run; a later run whose key shares none of them, or loses most of them, is
   refused with what changed, until re-pinned with ``--repin TENANT/ENV``. An
   optional pin in the manifest (``tenants.<t>.expect.<env>: {chatbots: [...]}``)
   must be seen as well; unlike the journal's, it travels with the manifest into
   review and into CI jobs that start from an empty journal.

The decisions (:func:`decide`) are pure; :func:`check_targets` does the
listing and the journal's part.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


from ..manifest import Listed

from ..engine import Executor
from ..journal import Journal
from ..manifest import Manifest, ManifestError, read_api_key
from .load import FetchFailed, key_label, tolerant_listing

__all__ = ["PinCheck", "check_targets", "decide", "duplicate_key_errors", "parse_repin", "target_pins_error"]

# "Loses most": fewer than this share of the pinned ids still seen.
KEEP_AT_LEAST = 0.5
_SHOWN = 3


def _ids(ids: Sequence[str] | frozenset[str] | set[str]) -> str:
    listed = sorted(ids)
    more = f", ... ({len(listed)} in all)" if len(listed) > _SHOWN else ""
    return ", ".join(listed[:_SHOWN]) + more


def _pairs(manifest: Manifest) -> list[tuple[str, str]]:
    return [(tenant, env) for tenant, spec in manifest.tenants.items() for env in spec.keys]


def duplicate_key_errors(
    manifest: Manifest, labels: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> list[ManifestError]:
    """Two targets configured with the same key value, among every key that can be read (offline).

    With ``labels``, only duplicates involving one of them count (the keys a
    command uses); keys that cannot be read are skipped (a missing key is
    reported where it is needed). Names both entries, never the value.
    """
    owners: dict[str, list[tuple[str, str]]] = {}
    for tenant, env in _pairs(manifest):
        try:
            value = read_api_key(manifest, tenant, env, environ)
        except ManifestError:
            continue
        owners.setdefault(value, []).append((tenant, env))
    errors = []
    for same in owners.values():
        if len(same) < 2 or (labels is not None and not any(key_label(*p) in labels for p in same)):
            continue
        first, *others = same
        for tenant, env in others:
            errors.append(manifest.error(
                ("tenants", tenant, "keys", env),
                f"tenants '{first[0]}' in '{first[1]}' and '{tenant}' in '{env}' are configured with the same API key "
                f"value (tenants.{first[0]}.keys.{first[1]} and tenants.{tenant}.keys.{env}); each target needs its "
                "own organization's key",
                "One of the two variables or files holds the other's key: fix it. Nothing was sent",
            ))
    return errors


@dataclass
class PinCheck:
    """What the check proved (one line per target), what it refuses, and what to pin."""

    proved: dict[str, str] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)
    record: dict[str, frozenset[str]] = field(default_factory=dict)
    # Each target key's listing (or what failed: that key is unproven), for fleet loading.
    listings: dict[str, list[Listed] | FetchFailed] = field(default_factory=dict)

    def proven_listings(self, environment: str) -> dict[str, list[Listed] | FetchFailed]:
        """The listings of ``environment``'s keys, by tenant."""
        return {label.split("/", 1)[0]: page for label, page in self.listings.items()
                if label.split("/", 1)[1] == environment}

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, target: str, text: str) -> None:
        self.problems.setdefault(target, []).append(text)


def decide(
    seen: Mapping[str, frozenset[str]],
    known: Mapping[str, Mapping[str, str]],
    expected: Mapping[str, Sequence[str]],
    repin: frozenset[str] = frozenset(),
    *,
    recording: bool = True,
) -> PinCheck:
    """Judge what each target's key sees (``seen``) against the others, the journal's pins and the manifest.

    ``recording=False`` (``validate --check-keys``) words first uses as what the next run will pin.
    """
    check = PinCheck()
    _same_organization(check, seen, known)
    for label in sorted(seen):
        ids = seen[label]
        want = set(expected.get(label, ()))
        missing = want - ids
        if missing:
            check.problem(label, f"does not see chatbot(s) the manifest expects ({_ids(missing)}, "
                                 f"tenants.{label.replace('/', '.expect.')})")
        proved, line = _against_pins(label, ids, known, repin=label in repin, recording=recording)
        if not proved:
            check.problem(label, line)
            continue
        if want and not missing:
            line += f"; all {len(want)} the manifest expects"
        check.proved[label] = line
        check.record[label] = ids
    if check.problems:
        check.record = {}
        check.proved = {k: v for k, v in check.proved.items() if k not in check.problems}
    return check


def _same_organization(check: PinCheck, seen: Mapping[str, frozenset[str]], known: Mapping[str, Mapping[str, str]]) -> None:
    """Proof 2: no two targets of the run, nor a target and one the journal pinned, see a common chatbot."""
    labels = sorted(seen)
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            common = seen[a] & seen[b]
            if common:
                text = (f"sees the same chatbot(s) as {b} ({_ids(common)}): their keys are keys of one organization "
                        f"(a staging key in a production variable, or one tenant's key in another's)")
                check.problem(a, text)
                check.problem(b, text.replace(f"as {b}", f"as {a}"))
        for other, pins in sorted(known.items()):
            if other in seen:
                continue
            common = seen[a] & set(pins)
            if common:
                check.problem(a, f"sees chatbot(s) the journal pinned to {other} ({_ids(common)}): this key is "
                                 f"{other}'s organization's")


def _against_pins(
    label: str, ids: frozenset[str], known: Mapping[str, Mapping[str, str]], *, repin: bool, recording: bool
) -> tuple[bool, str]:
    """Proof 3 for one target: (proved, its line) or (refused, why), from the ids the journal pinned to it."""
    pinned = set(known.get(label, {}))
    shared = ids & pinned
    if repin:
        return True, f"re-pinned: {len(ids)} chatbot(s) (was {len(pinned)}, {len(shared)} in common)"
    if not pinned:
        return True, (f"first use: pinned the {len(ids)} chatbot(s) its key sees" if recording else
                      f"not pinned yet: the next plan/apply pins the {len(ids)} chatbot(s) its key sees")
    if not shared:
        first = min(known[label].values())
        owners = sorted(o for o, other in known.items() if o != label and ids & set(other))
        whose = f"; what it sees now is pinned to {', '.join(owners)}: swapped keys?" if owners else ""
        return False, (f"shares none of the {len(pinned)} chatbot(s) pinned since {first} "
                       f"(was {_ids(pinned)}; now {_ids(ids) if ids else 'none'}){whose}")
    if len(shared) < KEEP_AT_LEAST * len(pinned):
        return False, (f"lost most of its pinned chatbots: {len(shared)} of {len(pinned)} still seen "
                       f"(gone: {_ids(pinned - ids)})")
    line = f"sees {len(shared)} of its {len(pinned)} pinned chatbot(s)"
    if ids - pinned or pinned - ids:
        line += f" (+{len(ids - pinned)} new, -{len(pinned - ids)} gone)"
    return True, line


def target_pins_error(manifest: Manifest, check: PinCheck, *, command: str = "plan/apply") -> ManifestError:
    """One error listing every refused target, located at the first one's key entry."""
    first = sorted(check.problems)[0]
    tenant, env = first.split("/", 1)
    lines = [f"{label}: {text}" for label, texts in sorted(check.problems.items()) for text in texts]
    repins = " ".join(f"--repin {label}" for label in sorted(check.problems))
    return manifest.error(
        ("tenants", tenant, "keys", env),
        "wrong target: refused before any dry-run or apply, only listings were sent:\n  " + "\n  ".join(lines),
        "Check the variable or file of each key named (tenants.<tenant>.keys.<env>). If the change is intended "
        f"(the organization was re-created, its chatbots replaced), re-pin with `wizsync {command} ... {repins}`; "
        "see docs/safety.md \"Wrong target\"",
    )


def parse_repin(manifest: Manifest, values: Sequence[str]) -> frozenset[str]:
    """``--repin TENANT/ENV`` values, each a configured key (bad input otherwise)."""
    known = {key_label(*p) for p in _pairs(manifest)}
    for value in values:
        if value not in known:
            raise ManifestError(
                f"--repin {value!r}: no such target (known: {', '.join(sorted(known))})",
                file=manifest.file, key="--repin",
                hint="Give TENANT/ENV of a tenant's key entry, e.g. --repin acme/production",
            )
    return frozenset(values)


def expectations(manifest: Manifest) -> dict[str, list[str]]:
    return {key_label(t, env): list(pin.chatbots) for t, spec in manifest.tenants.items() for env, pin in spec.expect.items()}


async def list_seen(
    ex: Executor, manifest: Manifest, labels: Sequence[str]
) -> tuple[dict[str, frozenset[str]], dict[str, list[Listed] | FetchFailed]]:
    """One listing per target key: the chatbot ids each key sees, and each listing (or what failed).

    A refused key (401/403) raises, naming its manifest line; any other failure
    leaves that key unproven (its chatbots fail, the others go on).
    """
    async def one(label: str) -> list[Listed] | FetchFailed:
        tenant, env = label.split("/", 1)
        listing = await tolerant_listing(ex, manifest, tenant, env)
        if isinstance(listing, FetchFailed):
            return FetchFailed(f"proving the target {label} (list_chatbots; its chatbots are not touched)", listing.error)
        return listing

    listings = dict(zip(labels, await asyncio.gather(*(one(label) for label in labels))))
    seen = {label: frozenset(c.id for c in page) for label, page in listings.items() if not isinstance(page, FetchFailed)}
    return seen, listings


async def check_targets(
    ex: Executor, manifest: Manifest, labels: Sequence[str], journal: Journal, run_id: str, *,
    repin: frozenset[str] = frozenset(), command: str = "plan/apply",
) -> PinCheck:
    """Prove the run's target keys (``labels``, ``tenant/env``) before anything but listings is sent; pin them.

    The check keeps each key's listing (``PinCheck.listings``) for fleet loading to reuse.
    """
    seen, listings = await list_seen(ex, manifest, labels)
    # A re-pinned target the run does not list: its old pins are forgotten, not compared against.
    known = {label: ids for label, ids in journal.pins().items() if label in seen or label not in repin}
    check = decide(seen, known, expectations(manifest), repin)
    if not check.ok:
        raise target_pins_error(manifest, check, command=command)
    with journal.write():  # one transaction for every key's pins, not one per key
        for label in sorted(repin - set(seen)):
            journal.forget_pins(run_id, label)
        for label, ids in sorted(check.record.items()):
            env = label.split("/", 1)[1]
            journal.record_pins(run_id, label, ids, manifest.environments[env].baseUrl, repinned=label in repin)
    check.listings = listings
    return check
