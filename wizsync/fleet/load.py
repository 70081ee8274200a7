"""The fleet of one run: manifest + environment → keys, bound targets, rendered documents.

Every API-calling command starts here. The order matters for safety:

1. everything that can be checked offline is checked first (``check_manifest``
   for the environment: templates, secrets set, key files readable), and
   every key is read, so bad input fails before a single request is sent;
2. then, through the engine, the read-only calls rendering needs:
   ``list_chatbots`` where a target is matched by name or discovered, and
   ``get_config`` of each ``environment``/``self`` source;
3. then every target is rendered (``wizsync.render``).

Keys are named everywhere by a label ``tenant/environment``; the key value
lives only in the engine's clients.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from wizchat_management import AsyncWizChatClient, WizChatApiError, WizChatError
from wizchat_management._base_client import Listing  # the state of the SDK's page step (_list_page)

from ..engine import Executor, KeySpec
from ..engine.errors import CallError, error_info, key_refused
from ..manifest import Listed, Manifest, ManifestError, Target, TargetPlan, raise_all, read_api_key
from ..render import RenderedDocument, check_manifest, live_config_needed, render_target
from ..render.promotion import promotion_gaps
from ..render.sources import LiveConfigRef

T = TypeVar("T")

__all__ = [
    "api_error",
    "no_match_error",
    "FleetItem",
    "key_label",
    "key_specs",
    "key_pairs",
    "fetch_pairs",
    "precheck",
    "bind_targets",
    "load_fleet",
    "load",
    "LoadedFleet",
    "FleetFailure",
    "FetchFailed",
    "list_tenants",
]


def key_label(tenant: str, environment: str) -> str:
    return f"{tenant}/{environment}"


@dataclass(frozen=True, slots=True)
class FleetItem:
    """One selected chatbot, bound to its live id, with its desired document."""

    target: Target
    rendered: RenderedDocument

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def label(self) -> str:
        return key_label(self.target.tenant, self.target.environment)

    @property
    def chatbot_id(self) -> str:
        assert self.target.chatbot_id is not None  # bound by load_fleet
        return self.target.chatbot_id


def api_error(manifest: Manifest, tenant: str, environment: str, action: str, exc: WizChatError) -> ManifestError:
    """A one-paragraph error for a failed call; 401/403 point at the tenant's key entry."""
    key_path = ("tenants", tenant, "keys", environment)
    if isinstance(exc, WizChatApiError):
        hint = {
            401: "The key is missing, malformed or revoked: check the variable or file this entry names",
            403: "The key lacks a scope (chatbots:read and the read scope of each managed section)",
            404: "The chatbot id is not visible with this tenant's key: check ids and the tenant",
        }.get(exc.status)
        return manifest.error(
            key_path, f"tenant '{tenant}' in '{environment}': {action} failed: {exc.status} {exc.code}: {exc.message}", hint
        )
    return manifest.error(
        key_path,
        f"tenant '{tenant}' in '{environment}': {action} failed: {type(exc).__name__}: {exc}",
        f"Check environments.{environment}.baseUrl ({manifest.environments[environment].baseUrl}) and the network",
    )


def key_pairs(plan: TargetPlan) -> list[tuple[str, str]]:
    """(tenant, environment) of every key the plan's targets need: their own and their sources'."""
    pairs: list[tuple[str, str]] = []
    for target in plan.targets:
        needed = [(target.tenant, plan.environment)]
        if target.source.kind == "environment" and target.source.environment:
            needed.append((target.tenant, target.source.environment))
        for pair in needed:
            if pair not in pairs:
                pairs.append(pair)
    return pairs


def fetch_pairs(plan: TargetPlan) -> list[tuple[str, str]]:
    """(tenant, environment) of the keys rendering's fetches need: listings and live sources only.

    ``render --online`` reads these keys and no other: a chatbot with a file
    source and an explicit id needs no key to render.
    """
    pairs = [(tenant, plan.environment) for tenant in plan.listings_needed()]
    for target in plan.targets:
        ref = live_config_needed(plan.manifest, target)
        if ref is not None:
            pairs.append((ref.tenant, ref.environment))
    return list(dict.fromkeys(pairs))


def key_specs(
    manifest: Manifest, pairs: Iterable[tuple[str, str]], environ: Mapping[str, str] | None = None
) -> dict[str, KeySpec]:
    """Read every key up front (a missing key is bad input: fail before any request)."""
    specs: dict[str, KeySpec] = {}
    for tenant, env in pairs:
        hint = manifest.tenants[tenant].rateLimit
        specs[key_label(tenant, env)] = KeySpec(
            api_key=read_api_key(manifest, tenant, env, environ),
            base_url=manifest.environments[env].baseUrl,
            rate_hint=hint.perSecond if hint else None,
            burst_hint=hint.burst if hint else None,
        )
    return specs


def precheck(manifest: Manifest, environments: Sequence[str], environ: Mapping[str, str] | None = None) -> None:
    """Everything ``validate`` checks offline, for these environments; raises every error found.

    One error raises itself; several raise ``ManifestErrors``, each its own paragraph,
    so the user fixes them in one go.
    """
    raise_all(check_manifest(manifest, list(environments), environ).errors)


async def _listing(ex: Executor, manifest: Manifest, tenant: str, env: str) -> list[Listed]:
    try:
        return await _lister(ex, tenant, env)()
    except WizChatError as exc:
        raise api_error(manifest, tenant, env, "list_chatbots", exc) from None


@dataclass(frozen=True)
class FetchFailed:
    """A fetch fleet loading needed that the server did not answer (after the engine's retries)."""

    action: str  # e.g. "list_chatbots of tenant 'acme' in 'staging'"
    error: CallError

    @property
    def message(self) -> str:
        return f"loading the fleet: {self.action} failed: {self.error['message']}"


async def _tolerant(ex: Executor, manifest: Manifest, tenant: str, env: str, action: str,
                    call: Callable[[], Awaitable[T]]) -> T | FetchFailed:
    """The call's answer, or what failed; a refused key (401/403) is the manifest's problem: raised, naming its line."""
    try:
        return await call()
    except WizChatError as exc:
        if key_refused(exc):
            raise api_error(manifest, tenant, env, action, exc) from None
        return FetchFailed(f"{action} of tenant '{tenant}' in '{env}'", error_info(exc))


async def bind_targets(ex: Executor, plan: TargetPlan) -> list[Target]:
    """Bind every target to a live id, listing only the tenants that need it; any failed listing raises."""
    return (await _bind(ex, plan))[0]


async def _bind(ex: Executor, plan: TargetPlan) -> tuple[list[Target], dict[str, list[Listed]]]:
    tenants = plan.listings_needed()
    pages = await asyncio.gather(*(_listing(ex, plan.manifest, t, plan.environment) for t in tenants))
    listings = dict(zip(tenants, pages))
    targets = plan.bind(listings)
    # A shard may own no chatbot while the others do (open_session refused an empty fleet already).
    if not targets and plan.shard is None:
        raise no_match_error(plan)
    return targets, listings


def _lister(ex: Executor, tenant: str, env: str) -> Callable[[], Awaitable[list[Listed]]]:
    label, context = key_label(tenant, env), f"list:{tenant}"

    async def listed() -> list[Listed]:
        # One engine call per page, each retried on its own: a 5xx or a 429 on page 40 sends page 40
        # again, not 1-39 (a whole listing retried as one call rarely gets through a storm at 10,000
        # chatbots), and each page gets the whole retry budget. Kept for the whole run (the proof's
        # listings bind the fleet): the few fields read, not the models, page by page. By id: a
        # server that pages by offset shows a chatbot twice when one is created during the listing
        # (one chatbot, not two of the same name), and the later page is the fresher.
        kept: dict[str, Listed] = {}
        seen = Listing()  # the SDK's record of the listing's cursors: a paging that cannot end fails
        cursor: str | None = None
        while True:
            step = functools.partial(AsyncWizChatClient._list_page, cursor=cursor, seen=seen)  # the SDK's own page step
            page, cursor = await ex.call(label, step, context=context)
            kept.update((c.id, Listed.of(c)) for c in page)
            if cursor is None:
                return list(kept.values())

    return listed


async def tolerant_listing(ex: Executor, manifest: Manifest, tenant: str, env: str) -> list[Listed] | FetchFailed:
    """One key's ``list_chatbots``, or what failed; a refused key (401/403) raises, naming its manifest line."""
    return await _tolerant(ex, manifest, tenant, env, "list_chatbots", _lister(ex, tenant, env))


async def _bind_tolerant(
    ex: Executor, plan: TargetPlan, proven: Mapping[str, list[Listed] | FetchFailed] | None = None,
) -> tuple[list[Target], dict[str, list[Listed]], dict[str, FetchFailed]]:
    """Like ``_bind``, but a tenant whose listing failed fails only its targets that needed it.

    ``proven``: each tenant's listing from the target proof of this run
    (``fleet.pinning``), reused instead of listing again; a tenant whose proof
    failed fails every one of its targets, bound or not: its key was not proved.
    """
    proven = proven or {}
    tenants = [t for t in plan.listings_needed() if t not in proven]
    env = plan.environment
    pages = await asyncio.gather(*(tolerant_listing(ex, plan.manifest, t, env) for t in tenants))
    listed = {**proven, **dict(zip(tenants, pages))}
    failures = _failed_by_listing(plan, listed, proven)
    kept = replace(plan, targets=tuple(t for t in plan.targets if t.name not in failures))
    listings = {t: page for t, page in listed.items() if not isinstance(page, FetchFailed)}
    targets = kept.bind(listings) if kept.targets else []
    if not targets and not failures and plan.shard is None:
        raise no_match_error(plan)
    return targets, listings, failures


def _failed_by_listing(
    plan: TargetPlan,
    listed: Mapping[str, list[Listed] | FetchFailed],
    proven: Mapping[str, list[Listed] | FetchFailed],
) -> dict[str, FetchFailed]:
    """The targets a failed listing fails: those that needed it to bind, and every target of an unproven key."""
    failed = {t: page for t, page in listed.items() if isinstance(page, FetchFailed)}
    unproven = {t for t in proven if isinstance(proven[t], FetchFailed)}
    return {t.name: failed[t.tenant] for t in plan.targets
            if t.tenant in failed and (not t.bound or t.tenant in unproven)}


def no_match_error(plan: TargetPlan) -> ManifestError:
    """An empty selection that "succeeds" hides a typo in --select/--chatbot (silent success: auth0-deploy-cli #185, #357)."""
    return ManifestError(
        f"no chatbot of '{plan.environment}' matches the selection",
        file=plan.manifest.file,
        key="--select/--chatbot" if (plan.selection.terms or plan.selection.chatbot_globs) else "chatbots",
        hint="Check the --select/--chatbot patterns against `wizsync render --env ...`, or the manifest's chatbots",
    )


async def _source_refs(
    ex: Executor, plan: TargetPlan, targets: Sequence[Target], target_listings: Mapping[str, Sequence[Listed]],
    notices: list[str],
) -> tuple[dict[str, LiveConfigRef], dict[str, FetchFailed]]:
    """Every live source bound to its chatbot id, or the listing that failed for it."""
    manifest = plan.manifest
    refs = {t.name: ref for t in targets if (ref := live_config_needed(manifest, t)) is not None}
    pairs = list(dict.fromkeys((r.tenant, r.environment) for r in refs.values() if r.chatbot_id is None))
    pages = await asyncio.gather(*(_tolerant(ex, manifest, *p, "list_chatbots", _lister(ex, *p)) for p in pairs))
    failed = {pair: page for pair, page in zip(pairs, pages) if isinstance(page, FetchFailed)}
    listings = {pair: page for pair, page in zip(pairs, pages) if not isinstance(page, FetchFailed)}
    failures = {name: failed[(r.tenant, r.environment)] for name, r in refs.items() if (r.tenant, r.environment) in failed}
    refs = {name: r for name, r in refs.items() if name not in failures}
    # A promotion lists both sides' strays at once: every target without a source is an error,
    # every source chatbot the target lacks a notice (it is not promoted).
    gaps = promotion_gaps(plan, list(refs.values()), listings, target_listings)
    notices.extend(gap.notice() for gap in gaps if gap.only_in_source and not gap.only_in_target)
    raise_all([gap.error(manifest) for gap in gaps if gap.only_in_target])
    return {name: ref.bind(manifest, listings.get((ref.tenant, ref.environment), [])) for name, ref in refs.items()}, failures


async def _sources(
    ex: Executor,
    plan: TargetPlan,
    targets: Sequence[Target],
    target_listings: Mapping[str, Sequence[Listed]],
    notices: list[str],
) -> tuple[dict[str, RenderedDocument], dict[str, FetchFailed]]:
    """Each live-source target rendered from the config it was fetched (environment/self sources),
    or why that could not be fetched. Rendered as each answer lands: no fetched config waits for the rest."""
    bound, failures = await _source_refs(ex, plan, targets, target_listings, notices)
    if not bound:
        return {}, failures
    manifest = plan.manifest
    by_name = {t.name: t for t in targets if t.name in bound}

    async def fetch(name: str) -> RenderedDocument | FetchFailed:
        ref = bound[name]
        chatbot_id = ref.chatbot_id
        assert chatbot_id is not None
        action = f"get_config of source '{ref.chatbot_name}' ({chatbot_id})"
        got = await _tolerant(ex, manifest, ref.tenant, ref.environment, action, lambda: ex.call(
            key_label(ref.tenant, ref.environment), lambda c: c.get_config(chatbot_id), context=name))
        return got if isinstance(got, FetchFailed) else render_target(manifest, by_name[name], got)

    documents: dict[str, RenderedDocument] = {}
    # Per key (``key=``): a key's fetches wait in its queue, not as a suspended call each (executor.map).
    key = lambda name: key_label(bound[name].tenant, bound[name].environment)  # noqa: E731
    for outcome in await ex.map(list(bound), fetch, key=key):
        if outcome.error is not None:
            raise outcome.error  # not an API error (a stop, a bug of ours, a render error): not one chatbot's failure
        assert outcome.value is not None
        if isinstance(outcome.value, FetchFailed):
            failures[outcome.item] = outcome.value
        else:
            documents[outcome.item] = outcome.value
    return documents, failures


@dataclass(frozen=True, slots=True)
class FleetFailure:
    """A selected chatbot fleet loading could not render: a listing or a live source the server did not give."""

    target: Target
    failed: FetchFailed

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def tenant(self) -> str:
        return self.target.tenant

    @property
    def label(self) -> str:
        return key_label(self.target.tenant, self.target.environment)

    @property
    def chatbot_id(self) -> str | None:
        return self.target.chatbot_id

    @property
    def error(self) -> CallError:
        """``{code, message}`` as the journal and reports hold a failed chatbot's error."""
        return {**self.failed.error, "message": self.failed.message}


@dataclass
class LoadedFleet:
    """Every selected chatbot, in manifest order: rendered (``FleetItem``) or failed (``FleetFailure``)."""

    entries: list[FleetItem | FleetFailure]

    @property
    def items(self) -> list[FleetItem]:
        return [e for e in self.entries if isinstance(e, FleetItem)]

    @property
    def failed(self) -> list[FleetFailure]:
        return [e for e in self.entries if isinstance(e, FleetFailure)]


async def load(
    ex: Executor, plan: TargetPlan, *, check_secrets: bool = True, notices: list[str] | None = None,
    proven: Mapping[str, list[Listed] | FetchFailed] | None = None,
) -> LoadedFleet:
    """Bind, fetch live sources and render every selected target, in manifest order.

    A fetch that still fails after the engine's retries fails the chatbots that
    needed it (``FleetFailure``), not the whole fleet; a refused key (401/403),
    a name not found and every offline problem are the manifest's: raised.
    ``check_secrets``: a secret a document references must be set (a run sends
    it); ``render`` only shows the documents, so it names missing ones instead.
    ``notices`` receives what the user should hear that is no error (chatbots a
    promotion leaves out because only its source has them). ``proven``: the
    listings the run's target proof made, per tenant (see ``_bind_tolerant``).
    """
    targets, target_listings, unbound = await _bind_tolerant(ex, plan, proven)
    listed = replace(plan, targets=tuple(t for t in plan.targets if t.name not in unbound))  # no gaps from a failed listing
    sources, failures = await _sources(ex, listed, targets, target_listings, notices if notices is not None else [])
    # In manifest order: each entry's chatbots where the entry is (a discover entry expands in place).
    bound: dict[tuple[Any, ...], list[Target]] = {}
    for target in targets:
        bound.setdefault(target.entry_path, []).append(target)
    entries: list[FleetItem | FleetFailure] = []
    for planned in plan.targets:
        if planned.name in unbound:
            entries.append(FleetFailure(planned, unbound[planned.name]))
            continue
        for t in bound.get(planned.entry_path, []):
            failed = failures.get(t.name)
            entries.append(FleetFailure(t, failed) if failed else FleetItem(t, sources.get(t.name) or render_target(plan.manifest, t)))
    fleet = LoadedFleet(entries)
    if check_secrets:
        missing = [err for item in fleet.items for err in item.rendered.missing_secrets(os.environ)]
        if missing:
            raise missing[0]
    return fleet


async def load_fleet(
    ex: Executor, plan: TargetPlan, *, check_secrets: bool = True, notices: list[str] | None = None
) -> list[FleetItem]:
    """``load``, for a command that needs every chatbot (render, the demo): the first failure raises."""
    fleet = await load(ex, plan, check_secrets=check_secrets, notices=notices)
    if fleet.failed:
        first = fleet.failed[0]
        more = f" (and {len(fleet.failed) - 1} more chatbot(s))" if len(fleet.failed) > 1 else ""
        raise ManifestError(f"{first.name}: {first.failed.message}{more}", file=plan.manifest.file,
                            hint="A server or network error: try again")
    return fleet.items


async def list_tenants(ex: Executor, manifest: Manifest, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], list[Listed] | ManifestError]:
    """``list_chatbots`` of every (tenant, environment) concurrently: its listing, or the error naming its key."""

    async def one(pair: tuple[str, str]) -> list[Listed] | ManifestError:
        try:
            return await _listing(ex, manifest, *pair)
        except ManifestError as exc:
            return exc

    return dict(zip(pairs, await asyncio.gather(*(one(p) for p in pairs))))
