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
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from wizchat_management import ChatbotConfigDocument, PublicChatbot, WizChatApiError, WizChatError

from .engine import Executor, KeySpec
from .manifest import Manifest, ManifestError, Target, TargetPlan, raise_all, read_api_key
from .render import RenderedDocument, check_manifest, live_config_needed, render_target
from .render.promotion import promotion_gaps

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
    "list_tenants",
]


def key_label(tenant: str, environment: str) -> str:
    return f"{tenant}/{environment}"


@dataclass(frozen=True)
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


async def _listing(ex: Executor, manifest: Manifest, tenant: str, env: str) -> list[PublicChatbot]:
    try:
        return await ex.call(key_label(tenant, env), lambda c: c.list_chatbots(), context=f"list:{tenant}")
    except WizChatError as exc:
        raise api_error(manifest, tenant, env, "list_chatbots", exc) from None


async def bind_targets(ex: Executor, plan: TargetPlan) -> list[Target]:
    """Bind every target to a live id, listing only the tenants that need it."""
    return (await _bind(ex, plan))[0]


async def _bind(ex: Executor, plan: TargetPlan) -> tuple[list[Target], dict[str, list[PublicChatbot]]]:
    tenants = plan.listings_needed()
    pages = await asyncio.gather(*(_listing(ex, plan.manifest, t, plan.environment) for t in tenants))
    listings = dict(zip(tenants, pages))
    targets = plan.bind(listings)
    # A shard may own no chatbot while the others do (open_session refused an empty fleet already).
    if not targets and plan.shard is None:
        raise no_match_error(plan)
    return targets, listings


def no_match_error(plan: TargetPlan) -> ManifestError:
    """An empty selection that "succeeds" hides a typo in --select/--chatbot (field notes: silent success)."""
    return ManifestError(
        f"no chatbot of '{plan.environment}' matches the selection",
        file=plan.manifest.file,
        key="--select/--chatbot" if (plan.selection.terms or plan.selection.chatbot_globs) else "chatbots",
        hint="Check the --select/--chatbot patterns against `wizsync render --env ...`, or the manifest's chatbots",
    )


async def _sources(
    ex: Executor,
    plan: TargetPlan,
    targets: Sequence[Target],
    target_listings: Mapping[str, Sequence[PublicChatbot]],
    notices: list[str],
) -> dict[str, ChatbotConfigDocument]:
    manifest = plan.manifest
    refs = {t.name: ref for t in targets if (ref := live_config_needed(manifest, t)) is not None}
    pairs = list(dict.fromkeys((r.tenant, r.environment) for r in refs.values() if r.chatbot_id is None))
    pages = await asyncio.gather(*(_listing(ex, manifest, *pair) for pair in pairs))
    listings: dict[tuple[str, str], list[PublicChatbot]] = dict(zip(pairs, pages))
    # A promotion lists both sides' strays at once: every target without a source is an error,
    # every source chatbot the target lacks a notice (it is not promoted).
    gaps = promotion_gaps(plan, list(refs.values()), listings, target_listings)
    notices.extend(gap.notice() for gap in gaps if gap.only_in_source and not gap.only_in_target)
    raise_all([gap.error(manifest) for gap in gaps if gap.only_in_target])
    bound = {name: ref.bind(manifest, listings.get((ref.tenant, ref.environment), [])) for name, ref in refs.items()}
    if not bound:
        return {}

    async def fetch(name: str) -> ChatbotConfigDocument:
        ref = bound[name]
        assert ref.chatbot_id is not None
        chatbot_id = ref.chatbot_id
        return await ex.call(
            key_label(ref.tenant, ref.environment), lambda c: c.get_config(chatbot_id), context=name
        )

    outcomes = await ex.map(list(bound), fetch)
    documents: dict[str, ChatbotConfigDocument] = {}
    for outcome in outcomes:
        ref = bound[outcome.item]
        if outcome.error is not None:
            if isinstance(outcome.error, WizChatError):
                raise api_error(
                    manifest, ref.tenant, ref.environment, f"get_config of '{ref.chatbot_name}' ({ref.chatbot_id})",
                    outcome.error,
                ) from None
            raise outcome.error
        assert outcome.value is not None
        documents[outcome.item] = outcome.value
    return documents


async def load_fleet(
    ex: Executor, plan: TargetPlan, *, check_secrets: bool = True, notices: list[str] | None = None
) -> list[FleetItem]:
    """Bind, fetch live sources and render every selected target, in manifest order.

    ``check_secrets``: a secret a document references must be set (a run sends
    it); ``render`` only shows the documents, so it names missing ones instead.
    ``notices`` receives what the user should hear that is no error (chatbots a
    promotion leaves out because only its source has them).
    """
    targets, target_listings = await _bind(ex, plan)
    sources = await _sources(ex, plan, targets, target_listings, notices if notices is not None else [])
    items = [FleetItem(t, render_target(plan.manifest, t, sources.get(t.name))) for t in targets]
    if check_secrets:
        missing = [err for item in items for err in item.rendered.missing_secrets(os.environ)]
        if missing:
            raise missing[0]
    return items


async def list_tenants(ex: Executor, manifest: Manifest, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], list[PublicChatbot] | ManifestError]:
    """``list_chatbots`` of every (tenant, environment) concurrently: its listing, or the error naming its key."""

    async def one(pair: tuple[str, str]) -> list[PublicChatbot] | ManifestError:
        try:
            return await _listing(ex, manifest, *pair)
        except ManifestError as exc:
            return exc

    return dict(zip(pairs, await asyncio.gather(*(one(p) for p in pairs))))
