"""The HTTP layer: a thin Starlette app answering exactly what openapi.json documents.

A pure-ASGI gateway in front of the routes does what every response needs:
``X-Request-Id``, key lookup, the rate limit (a 429 is answered here, before
any routing or body parsing, so it costs almost nothing), fault injection,
``X-RateLimit-*`` headers, statistics and the request log. Handlers only
check scopes and call the engine.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.utils
import itertools
import json
import math
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import engine
from .faults import FaultInjector, drop_connection
from .ratelimit import RateLimiter
from .responses import ApiError, dumps as _dumps, envelope, json_response, validation_error
from .state import ApiKey, EmulatorState, now_rfc3339
from .stats import RequestLog, Stats

API = "/api/v1"
_CURSOR_RE = re.compile(r"^o:(\d{1,9})$")


@dataclass
class EmulatorContext:
    """Everything the app serves from; shared with the admin API and the in-process server."""

    state: EmulatorState
    limiter: RateLimiter
    faults: FaultInjector
    admin_token: str
    stats: Stats = field(default_factory=Stats)
    log: RequestLog = field(default_factory=RequestLog)
    # Re-applied by the admin reset: "demo", a seed document, or None (empty).
    initial_seed: Any = None
    initial_limits: tuple[float | None, int | None] = (None, None)
    # limiter kind, Telling and the org-wide limit, re-applied by the admin reset.
    initial_rate_config: dict[str, Any] = field(default_factory=dict)

    def sync_key_limits(self) -> None:
        """Per-key limits stored on the keys (seed files) into the limiter."""
        for k in list(self.state.keys.values()):
            if k.rate is not None:
                self.limiter.set_key(k.label, k.rate, k.burst)

    def sync_org_limits(self, org_limits: dict[str, tuple[float, int | None]]) -> None:
        """Organizations' own shared limits (a seed's ``organizations[].rate``) into the limiter."""
        for org_id, (rate, burst) in org_limits.items():
            self.limiter.set_org(org_id, rate, burst)


# -- gateway ----------------------------------------------------------------


def _bearer(scope: Mapping[str, Any]) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            raw = value.decode("latin-1")
            scheme, _, token = raw.partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else ""
    return None


class Gateway:
    """ASGI middleware: request id, key, rate limit, faults, headers, stats and log."""

    def __init__(self, app: Any, ctx: EmulatorContext) -> None:
        self.app = app
        self.ctx = ctx
        self._ids = itertools.count(1)
        self._prefix = os.urandom(4).hex()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = f"req_{self._prefix}{next(self._ids):08x}"
        token = None if scope["path"].startswith("/_emulator") else _bearer(scope)
        key = self.ctx.state.key_for(token) if token else None
        extra: list[tuple[bytes, bytes]] = [(b"x-request-id", rid.encode())]
        # Each stage either answers (its status; 0 when the connection is dropped) or lets the request on.
        status = await self._rate_limit(send, key, extra) if key is not None else None
        if status is None and token is not None:  # an API request (admin calls get no faults)
            status = await self._fault(send, extra)
        if status is None:
            status = await self._forward(scope, receive, send, key, token is not None, extra)
        self._record(scope, status, key.label if key else None, rid, started)

    async def _rate_limit(self, send: Any, key: ApiKey, extra: list[tuple[bytes, bytes]]) -> int | None:
        """A 429 when the key's limit (or a forced-429 fault) says no, before any routing; adds the rate headers."""
        forced_ms = self.ctx.faults.forced_429(key.label)
        limiter = self.ctx.limiter
        decision = (limiter.peek(key.label, key.org_id) if forced_ms is not None
                    else limiter.acquire(key.label, key.org_id))
        if forced_ms is not None:
            decision.allowed, decision.retry_after_ms = False, forced_ms
        telling = limiter.telling
        if telling.rate_headers:
            extra.extend(_rate_headers(decision))
        if decision.allowed:
            return None
        await self._raw(send, 429, extra + _retry_after(decision, telling.retry_after), {
            "code": "rate_limited",
            **({"message": f"rate limit exceeded for this API key; retry in {decision.retry_after_ms} ms",
                "details": {"retryAfterMs": decision.retry_after_ms}} if telling.rate_headers
               else {"message": "rate limit exceeded", "details": None}),
        })
        return 429

    async def _fault(self, send: Any, extra: list[tuple[bytes, bytes]]) -> int | None:
        """An injected delay, dropped connection or transient 5xx, as the fault injector decides."""
        fault = self.ctx.faults.decide()
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if fault.action == "drop":
            if drop_connection(send):
                return 0
            raise ConnectionAbortedError("emulator fault: dropped connection")
        if fault.action in ("500", "503"):
            code = "internal_error" if fault.action == "500" else "unavailable"
            await self._raw(send, int(fault.action), extra, {
                "code": code, "message": "emulator fault: injected transient server error", "details": None,
            })
            return int(fault.action)
        return None

    async def _forward(
        self, scope: dict[str, Any], receive: Any, send: Any, key: ApiKey | None, api: bool, extra: list[tuple[bytes, bytes]]
    ) -> int:
        """The routed answer with ``extra`` headers added; its status (0 when the answer is lost)."""
        scope.setdefault("state", {})["key"] = key
        if api and self.ctx.faults.settings.ignore_dry_run:
            # --ignore-dry-run: a gateway that drops a query parameter it does not know. The
            # dry-run arrives as an apply, and is carried out (its answer says so: dryRun false).
            scope["query_string"] = _without_param(scope.get("query_string", b""), b"dryRun")
        # --lose-after-apply-rate: the write happens, the answer never leaves.
        lose = api and _is_write(scope) and self.ctx.faults.lose_after_apply()
        status_box = [0]

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = message["status"]
                message["headers"] = list(message.get("headers", [])) + extra
            if not lose:
                await send(message)

        await self.app(scope, receive, send_with_headers)
        if lose:
            if not drop_connection(send):
                raise ConnectionAbortedError("emulator fault: answer lost after the apply")
            return 0
        return status_box[0]

    @staticmethod
    async def _raw(send: Any, status: int, headers: list[tuple[bytes, bytes]], error: dict[str, Any]) -> None:
        body = _dumps({"error": error})
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())] + headers,
        })
        await send({"type": "http.response.body", "body": body})

    def _record(self, scope: dict[str, Any], status: int, label: str | None, rid: str, started: float) -> None:
        if label is not None:
            self.ctx.stats.request(label, status)
        self.ctx.log.add(scope["method"], scope["path"], status, label, rid, started)


def _without_param(query: bytes, name: bytes) -> bytes:
    """``query`` without any ``name=…`` pair (the rest as sent)."""
    return b"&".join(p for p in query.split(b"&") if p and p.split(b"=", 1)[0] != name)


def _rate_headers(decision: Any) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-ratelimit-limit", str(decision.limit).encode()),
        (b"x-ratelimit-remaining", str(decision.remaining).encode()),
        (b"x-ratelimit-reset", f"{decision.reset:.3f}".encode()),
    ]


def _retry_after(decision: Any, form: str) -> list[tuple[bytes, bytes]]:
    """Retry-After as delay-seconds, an HTTP-date (RFC 9110 IMF-fixdate), or not at all."""
    if form == "none":
        return []
    if form == "http-date":
        # An HTTP-date counts whole seconds: round up, so the date is never early.
        at = math.ceil(time.time() + decision.retry_after_ms / 1000)
        return [(b"retry-after", email.utils.formatdate(at, usegmt=True).encode())]
    return [(b"retry-after", str(decision.retry_after_s).encode())]


def _is_write(scope: dict[str, Any]) -> bool:
    """A POST .../apply that is not a dry run."""
    if scope["method"] != "POST" or not scope["path"].endswith("/apply"):
        return False
    query = scope.get("query_string", b"").decode("latin-1")
    return "dryRun=true" not in query.split("&")


# -- API handlers -----------------------------------------------------------


def _key(request: Request, required: tuple[str, ...] | list[str]) -> ApiKey:
    key: ApiKey | None = request.scope.get("state", {}).get("key")
    if key is None:
        token = _bearer(request.scope)
        msg = (
            "missing Authorization header (expected 'Bearer wpk_…')" if token is None
            else "malformed Authorization header (expected 'Bearer wpk_…')" if token == ""
            else "unknown API key"
        )
        raise ApiError(401, "unauthorized", msg)
    missing = [s for s in required if s not in key.scopes]
    if missing:
        raise ApiError(
            403,
            "insufficient_scope",
            f"this API key lacks scope(s): {', '.join(missing)}",
            {"required": list(dict.fromkeys(required)), "granted": sorted(key.scopes)},
        )
    return key


def _check_query(request: Request, allowed: tuple[str, ...]) -> list[dict[str, str]]:
    """Unknown or repeated query parameters are errors: the contract documents every one."""
    errors = []
    seen: set[str] = set()
    for name, _ in request.query_params.multi_items():
        if name not in allowed:
            errors.append({"path": name or "(empty)", "message": "unknown query parameter"})
        elif name in seen:
            errors.append({"path": name, "message": "given more than once"})
        seen.add(name)
    return errors


def _bool_param(request: Request, name: str, default: bool) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw in ("true", "false"):
        return raw == "true"
    raise validation_error([{"path": name, "message": "must be true or false"}])


def _chatbot(request: Request, key: ApiKey) -> Any:
    cb = request.app.state.ctx.state.chatbot_for(key.org_id, request.path_params["chatbotId"])
    if cb is None:
        raise ApiError(404, "not_found", "no such chatbot")
    return cb


async def list_chatbots(request: Request) -> Response:
    key = _key(request, ("chatbots:read",))
    errors = _check_query(request, ("limit", "cursor"))
    limit = 50
    raw_limit = request.query_params.get("limit")
    if raw_limit is not None:
        # "60.0" is an integer to JSON Schema (the contract's type system), so it is one here.
        if not re.fullmatch(r"[+]?\d{1,9}(?:\.0*)?", raw_limit) or not 1 <= int(float(raw_limit)) <= 200:
            errors.append({"path": "limit", "message": "must be an integer between 1 and 200"})
        else:
            limit = int(float(raw_limit))
    offset = 0
    raw_cursor = request.query_params.get("cursor")
    if raw_cursor is not None:
        try:
            m = _CURSOR_RE.match(base64.urlsafe_b64decode(raw_cursor.encode("ascii") + b"==").decode())
        except (binascii.Error, UnicodeError, ValueError):
            m = None
        if m is None:
            errors.append({"path": "cursor", "message": "not a cursor returned by this API"})
        else:
            offset = int(m.group(1))
    if errors:
        raise validation_error(errors)
    bots = request.app.state.ctx.state.list_chatbots(key.org_id)
    page = bots[offset : offset + limit]
    end = offset + limit
    next_cursor = base64.urlsafe_b64encode(f"o:{end}".encode()).decode().rstrip("=") if end < len(bots) else None
    return json_response({"data": [cb.public() for cb in page], "nextCursor": next_cursor})


async def get_chatbot(request: Request) -> Response:
    key = _key(request, ("chatbots:read",))
    if errors := _check_query(request, ()):
        raise validation_error(errors)
    return json_response(_chatbot(request, key).public())


async def get_config(request: Request) -> Response:
    key = _key(request, engine.CONFIG_READ_SCOPES)
    if errors := _check_query(request, ()):
        raise validation_error(errors)
    cb = _chatbot(request, key)
    spec = engine.redact_config(cb.config)
    spec.update(cb.spec_extra)
    doc = {
        "apiVersion": engine.API_VERSION,
        "kind": engine.KIND,
        "metadata": {"chatbotId": cb.id, "name": cb.name, "revision": cb.revision, "exportedAt": now_rfc3339()},
        "spec": spec,
    }
    doc.update(cb.doc_extra)
    return json_response(doc)


async def apply_config(request: Request) -> Response:
    ctx: EmulatorContext = request.app.state.ctx
    key = _key(request, ())
    dry_run, prune = _apply_params(request)
    cb = _chatbot(request, key)
    body = await request.body()
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise validation_error([{"path": "", "message": f"the body is not valid JSON: {exc}"}]) from None
    scopes = engine.READ_SCOPE if dry_run else engine.WRITE_SCOPE
    _key(request, [scopes[s] for s in engine.present_sections(doc)] if isinstance(doc, dict) else [])
    try:
        outcome = ctx.state.apply_config(cb, doc, dry_run=dry_run, prune=prune)
    except engine.ApplyValidationError as exc:
        raise validation_error(exc.errors) from None
    failed = outcome.result is not None and outcome.result.failed
    ctx.stats.count(key.label, "dryRuns" if dry_run else "applies")
    if failed:
        ctx.stats.count(key.label, "partialFailures")
    return json_response(outcome.public(), 422 if failed else 200)


def _apply_params(request: Request) -> tuple[bool, bool]:
    """``dryRun`` and ``prune``; every bad query parameter reported at once."""
    errors = _check_query(request, ("dryRun", "prune"))
    try:
        dry_run = _bool_param(request, "dryRun", False)
    except ApiError as exc:
        errors += exc.details["errors"]  # type: ignore[index]
        dry_run = False
    try:
        prune = _bool_param(request, "prune", True)
    except ApiError as exc:
        errors += exc.details["errors"]  # type: ignore[index]
        prune = True
    if errors:
        raise validation_error(errors)
    return dry_run, prune


# -- errors -----------------------------------------------------------------


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return envelope(exc.status, exc.code, exc.message, exc.details)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return envelope(404, "not_found", f"no route for {request.method} {request.url.path}")
    if exc.status_code == 405:
        resp = envelope(405, "method_not_allowed", f"{request.method} is not allowed on {request.url.path}")
        if exc.headers:
            resp.headers.update(exc.headers)
        return resp
    return envelope(exc.status_code, f"http_{exc.status_code}", str(exc.detail))


async def _internal_error(request: Request, exc: Exception) -> Response:
    return envelope(500, "internal_error", "the emulator hit an unexpected error")


def create_app(ctx: EmulatorContext) -> Any:
    """The ASGI app: API routes, admin routes, the gateway in front."""
    from .admin import admin_routes

    routes = [
        Route(f"{API}/chatbots", list_chatbots, methods=["GET"]),
        Route(f"{API}/chatbots/{{chatbotId}}", get_chatbot, methods=["GET"]),
        Route(f"{API}/chatbots/{{chatbotId}}/config", get_config, methods=["GET"]),
        Route(f"{API}/chatbots/{{chatbotId}}/apply", apply_config, methods=["POST"]),
        *admin_routes(),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _internal_error},
    )
    app.state.ctx = ctx
    return Gateway(app, ctx)
