"""The admin API under ``/_emulator/`` (not part of openapi.json), guarded by the admin token.

    GET  /_emulator/health                 no token; {"ok": true}
    POST /_emulator/reset                  back to the start: initial seed, limits, faults; stats and log cleared
    POST /_emulator/seed[?replace=true]    {"demo": true} or a seed document -> {"keys": {label: key}, ...}
    GET  /_emulator/keys                   [{label, orgId, scopes, envName, key, rate, burst}]
    POST /_emulator/keys                   {"org": org id or name, "label", "scopes"?, "rate"?, "burst"?} -> the key
    GET/PUT /_emulator/limits              {"global": {"rate", "burst"} | null, "keys": {label: {"rate", "burst"} | {"unlimited": true} | {}}}
    GET/PUT /_emulator/faults              {"latencyMs", "jitterMs", "errorRate", "dropRate", "loseAfterApplyRate", "seed",
                                            "force429": {"key": label | null, "count": N, "seconds": T}, "clear": true}
    GET  /_emulator/stats                  per key label: requests, byStatus, rateLimited, applies, dryRuns
    GET  /_emulator/requests?limit=&key=   the request log (key labels, never key values)
"""

from __future__ import annotations

import hmac
import json
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .demo import demo_seed_document
from .responses import ApiError, json_response, validation_error
from .seed import SeedError, apply_seed, build_seed, derive_key
from .state import ALL_SCOPES, ApiKey

_FAULT_FIELDS = {"latencyMs": "latency_ms", "jitterMs": "jitter_ms", "errorRate": "error_rate",
                 "dropRate": "drop_rate", "seed": "seed", "loseAfterApplyRate": "lose_after_apply_rate",
                 "ignoreDryRun": "ignore_dry_run"}


def _ctx(request: Request) -> Any:
    return request.app.state.ctx


def _guard(request: Request) -> None:

    raw = request.headers.get("authorization", "")
    scheme, _, token = raw.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), _ctx(request).admin_token.encode()):
        raise ApiError(401, "unauthorized", "the admin API needs 'Authorization: Bearer <admin token>'")


async def _body(request: Request) -> Any:

    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise validation_error([{"path": "", "message": f"the body is not valid JSON: {exc}"}]) from None


def _bad(message: str, path: str = "") -> Exception:

    return validation_error([{"path": path, "message": message}])


def reseed(ctx: Any, seed: Any, *, replace: bool) -> dict[str, str]:
    """Seed ``ctx.state`` from "demo", a seed document or None; returns label -> key."""
    if replace:
        ctx.state.reset()
        ctx.limiter.per_key.clear()
        ctx.limiter.per_org.clear()
    if seed is None:
        return {}
    doc = demo_seed_document() if seed == "demo" else seed
    seeded = build_seed(doc)
    apply_seed(ctx.state, seeded)
    ctx.sync_org_limits(seeded.org_limits)
    ctx.sync_key_limits()
    return seeded.key_map()


async def health(request: Request) -> Response:

    return json_response({"ok": True})


async def reset(request: Request) -> Response:

    _guard(request)
    ctx = _ctx(request)
    ctx.limiter.set_global(*ctx.initial_limits)
    initial = ctx.initial_rate_config
    if initial:
        ctx.limiter.configure(limiter=initial["limiter"], telling=initial["telling"])
        ctx.limiter.set_org_default(*initial["org"])
    ctx.faults.clear()
    ctx.stats.clear()
    ctx.log.clear()
    keys = reseed(ctx, ctx.initial_seed, replace=True)
    return json_response({"ok": True, "keys": sorted(keys)})


async def seed(request: Request) -> Response:

    _guard(request)
    body = await _body(request)
    if not isinstance(body, dict):
        raise _bad("the body must be a seed document or {\"demo\": true}")
    doc = "demo" if body.get("demo") is True else body
    try:
        keys = reseed(_ctx(request), doc, replace=request.query_params.get("replace") == "true")
    except SeedError as exc:
        raise _bad(str(exc)) from None
    return json_response({"ok": True, "keys": keys, "chatbots": len(_ctx(request).state.chatbots)})


def _key_json(k: ApiKey) -> dict[str, Any]:
    return {"label": k.label, "orgId": k.org_id, "scopes": sorted(k.scopes), "envName": k.env_name, "key": k.key,
            "rate": k.rate, "burst": k.burst}


async def list_keys(request: Request) -> Response:

    _guard(request)
    return json_response({"keys": [_key_json(k) for k in _ctx(request).state.keys.values()]})


async def add_key(request: Request) -> Response:

    _guard(request)
    ctx = _ctx(request)
    body = await _body(request)
    if not isinstance(body, dict):
        raise _bad("the body must be an object")
    org = next((o for o in ctx.state.orgs.values() if body.get("org") in (o.id, o.name)), None)
    if org is None:
        raise _bad("unknown organization (give its id or name)", "org")
    label = body.get("label") or f"{org.name}/{secrets.token_hex(3)}"
    if ctx.state.key_by_label(label):
        raise _bad(f"a key labelled {label!r} exists", "label")
    scopes = body.get("scopes", list(ALL_SCOPES))
    if not isinstance(scopes, list) or any(s not in ALL_SCOPES for s in scopes):
        raise _bad("must be a list of known scopes", "scopes")
    live = org.environment == "production"
    key = body.get("key") or derive_key(secrets.token_hex(16), label, live)
    try:
        k = ctx.state.add_key(ApiKey(key=key, org_id=org.id, label=label, scopes=frozenset(scopes),
                                     rate=body.get("rate"), burst=body.get("burst"), env_name=body.get("envName")))
        if k.rate is not None:
            ctx.limiter.set_key(k.label, k.rate, k.burst)
    except (ValueError, TypeError) as exc:
        raise _bad(str(exc)) from None
    return json_response(_key_json(k), 201)


async def limits(request: Request) -> Response:

    _guard(request)
    ctx = _ctx(request)
    if request.method == "PUT":
        body = await _body(request)
        if not isinstance(body, dict):
            raise _bad("the body must be an object")
        try:
            if "global" in body:
                g = body["global"] or {}
                ctx.limiter.set_global(g.get("rate"), g.get("burst"))
            for label, spec in (body.get("keys") or {}).items():
                if ctx.state.key_by_label(label) is None:
                    raise _bad(f"no key labelled {label!r}", f"keys.{label}")
                spec = spec or {}
                ctx.limiter.set_key(label, spec.get("rate"), spec.get("burst"), unlimited=bool(spec.get("unlimited")))
        except (ValueError, TypeError, AttributeError) as exc:
            raise _bad(str(exc)) from None
    return json_response(ctx.limiter.describe())


def _faults_json(ctx: Any) -> dict[str, Any]:
    d = ctx.faults.describe()
    return {**{k: d[v] for k, v in _FAULT_FIELDS.items()}, "force429": d["force429"]}


async def faults(request: Request) -> Response:

    _guard(request)
    ctx = _ctx(request)
    if request.method == "PUT":
        body = await _body(request)
        if not isinstance(body, dict):
            raise _bad("the body must be an object")
        unknown = set(body) - set(_FAULT_FIELDS) - {"force429", "clear"}
        if unknown:
            raise _bad(f"unknown field(s): {', '.join(sorted(unknown))}")
        try:
            if body.get("clear"):
                ctx.faults.clear()
            changes = {_FAULT_FIELDS[k]: v for k, v in body.items() if k in _FAULT_FIELDS}
            if changes:
                ctx.faults.configure(**changes)
            f = body.get("force429")
            if f:
                if f.get("key") is not None and ctx.state.key_by_label(f["key"]) is None:
                    raise _bad(f"no key labelled {f['key']!r}", "force429.key")
                ctx.faults.force_429(f.get("key"), count=f.get("count"), seconds=f.get("seconds"))
        except (ValueError, TypeError, AttributeError) as exc:
            raise _bad(str(exc)) from None
    return json_response(_faults_json(ctx))


async def stats(request: Request) -> Response:

    _guard(request)
    return json_response(_ctx(request).stats.snapshot())


async def requests_log(request: Request) -> Response:

    _guard(request)
    raw = request.query_params.get("limit")
    limit = int(raw) if raw and raw.isdigit() else None
    return json_response({"requests": _ctx(request).log.entries(limit, request.query_params.get("key"))})


def admin_routes() -> list[Route]:
    p = "/_emulator"
    return [
        Route(f"{p}/health", health, methods=["GET"]),
        Route(f"{p}/reset", reset, methods=["POST"]),
        Route(f"{p}/seed", seed, methods=["POST"]),
        Route(f"{p}/keys", list_keys, methods=["GET"]),
        Route(f"{p}/keys", add_key, methods=["POST"]),
        Route(f"{p}/limits", limits, methods=["GET", "PUT"]),
        Route(f"{p}/faults", faults, methods=["GET", "PUT"]),
        Route(f"{p}/stats", stats, methods=["GET"]),
        Route(f"{p}/requests", requests_log, methods=["GET"]),
    ]
