"""The httpx-MockTransport suite: every statement of the SDK's description and of the
spec's Transport/Endpoints sections, for the sync and the async client alike."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import runpy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from wizchat_management import (
    ApplyResult,
    AsyncWizChatClient,
    ChatbotConfigDocument,
    PublicChatbot,
    WizChatApiError,
    WizChatClient,
    WizChatConnectionError,
    WizChatTimeoutError,
)
from wizchat_management._base_client import MAX_DETAILS_DEPTH, MAX_IDLE_PAGES

KEY = "wpk_live_" + "S3cr3tS3cr3tS3cr3tS3cr3t"
DATA = Path(__file__).parent / "data"

CHATBOT = {
    "id": "cb_1",
    "name": "Support",
    "description": None,
    "status": "active",
    "revision": 3,
    "createdAt": "2026-11-25T21:00:00Z",
    "updatedAt": "2026-11-25T21:00:00.120+00:00",
}
PLAN = {"summary": {"create": 0, "update": 1, "delete": 0, "noop": 2}, "operations": []}
APPLY_OK = {"dryRun": False, "applied": [], "failed": None, "plan": PLAN, "revision": 4}


def apply_ok(request: httpx.Request) -> dict[str, Any]:
    """APPLY_OK, as a server answers the request: a dry-run's answer says it was one."""
    return {**APPLY_OK, "dryRun": request.url.params.get("dryRun") == "true"}


def envelope(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


class Recorder:
    """A MockTransport handler that records requests and answers from a routing function."""

    def __init__(self, route: Callable[[httpx.Request], httpx.Response]) -> None:
        self.route = route
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.route(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def run_client(kind: str, recorder: Recorder, method: str, *args: Any, base_url: str = "https://api.test", **kwargs: Any) -> Any:
    """Call one helper on a sync or an async client backed by the recorder."""
    transport = httpx.MockTransport(recorder)
    if kind == "sync":
        with WizChatClient(KEY, base_url=base_url, http_client=httpx.Client(transport=transport)) as client:
            return getattr(client, method)(*args, **kwargs)

    async def go() -> Any:
        async with AsyncWizChatClient(KEY, base_url=base_url, http_client=httpx.AsyncClient(transport=transport)) as client:
            return await getattr(client, method)(*args, **kwargs)

    return asyncio.run(go())


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def json_response(status: int, body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


# -- transport ----------------------------------------------------------------


def test_every_request_carries_the_bearer_key_and_accepts_json(kind: str) -> None:
    rec = Recorder(lambda r: json_response(200, CHATBOT))
    run_client(kind, rec, "get_chatbot", "cb_1")
    assert rec.last.headers["authorization"] == f"Bearer {KEY}"
    assert rec.last.headers["accept"] == "application/json"
    assert str(rec.last.url) == "https://api.test/api/v1/chatbots/cb_1"


def test_base_url_defaults_to_wizchat_and_trailing_slash_is_harmless() -> None:
    assert WizChatClient(KEY).base_url == "https://www.wizchat.com"
    rec = Recorder(lambda r: json_response(200, CHATBOT))
    run_client("sync", rec, "get_chatbot", "cb_1", base_url="http://127.0.0.1:9/")
    assert str(rec.last.url) == "http://127.0.0.1:9/api/v1/chatbots/cb_1"


def test_chatbot_ids_are_path_escaped(kind: str) -> None:
    rec = Recorder(lambda r: json_response(404, envelope("not_found", "no")))
    with pytest.raises(WizChatApiError):
        run_client(kind, rec, "get_config", "../admin?x=1")
    assert rec.last.url.raw_path == b"/api/v1/chatbots/..%2Fadmin%3Fx%3D1/config"


# -- endpoints ----------------------------------------------------------------


def test_list_chatbots_follows_next_cursor_and_returns_the_whole_list(kind: str) -> None:
    pages = {
        None: {"data": [CHATBOT], "nextCursor": "c2"},
        "c2": {"data": [{**CHATBOT, "id": "cb_2"}], "nextCursor": "c3"},
        "c3": {"data": [{**CHATBOT, "id": "cb_3"}], "nextCursor": None},
    }
    rec = Recorder(lambda r: json_response(200, pages[r.url.params.get("cursor")]))
    chatbots = run_client(kind, rec, "list_chatbots")
    assert [c.id for c in chatbots] == ["cb_1", "cb_2", "cb_3"]
    assert all(isinstance(c, PublicChatbot) for c in chatbots)
    assert [r.url.params.get("cursor") for r in rec.requests] == [None, "c2", "c3"]
    assert all(r.url.path == "/api/v1/chatbots" and r.method == "GET" for r in rec.requests)
    assert all(1 <= int(r.url.params["limit"]) <= 200 for r in rec.requests)


def test_list_chatbots_refuses_a_cursor_loop(kind: str) -> None:
    rec = Recorder(lambda r: json_response(200, {"data": [], "nextCursor": "same"}))
    with pytest.raises(WizChatApiError, match="repeated cursor"):
        run_client(kind, rec, "list_chatbots")
    assert len(rec.requests) == 2


def test_list_chatbots_refuses_a_paging_that_never_ends_behind_new_cursors(kind: str) -> None:
    # A cursor that embeds the time (or a pager stuck on one offset): every page a new cursor,
    # never a chatbot not listed before. Followed forever, the listing would never end.
    rec = Recorder(lambda r: json_response(200, {"data": [CHATBOT], "nextCursor": f"c{len(rec.requests)}"}))
    with pytest.raises(WizChatApiError, match="100 pages in a row listed no chatbot not listed before") as info:
        run_client(kind, rec, "list_chatbots")
    assert info.value.code == "invalid_response"
    assert len(rec.requests) == 1 + MAX_IDLE_PAGES  # the first page listed cb_1; 100 more added nothing


def test_list_chatbots_follows_empty_pages_while_they_lead_somewhere(kind: str) -> None:
    # A server that filters after paging may send a page with nothing on it, and a cursor: followed.
    pages = {None: {"data": [], "nextCursor": "c2"}, "c2": {"data": [], "nextCursor": "c3"},
             "c3": {"data": [CHATBOT], "nextCursor": None}}
    rec = Recorder(lambda r: json_response(200, pages[r.url.params.get("cursor")]))
    assert [c.id for c in run_client(kind, rec, "list_chatbots")] == ["cb_1"]


def test_list_chatbots_ends_at_an_empty_cursor(kind: str) -> None:
    # Some servers end a listing with "" rather than null (Slack's API does): there is no page "".
    pages = {None: {"data": [CHATBOT], "nextCursor": "c2"}, "c2": {"data": [{**CHATBOT, "id": "cb_2"}], "nextCursor": ""}}
    rec = Recorder(lambda r: json_response(200, pages[r.url.params.get("cursor")]))
    assert [c.id for c in run_client(kind, rec, "list_chatbots")] == ["cb_1", "cb_2"]
    assert [r.url.params.get("cursor") for r in rec.requests] == [None, "c2"]


def test_get_chatbot_and_get_config_return_typed_models(kind: str) -> None:
    doc = {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig", "spec": {"core": {"name": "A"}}}
    rec = Recorder(lambda r: json_response(200, doc if r.url.path.endswith("/config") else CHATBOT))
    chatbot = run_client(kind, rec, "get_chatbot", "cb_1")
    assert isinstance(chatbot, PublicChatbot) and chatbot.revision == 3
    config = run_client(kind, rec, "get_config", "cb_1")
    assert isinstance(config, ChatbotConfigDocument) and config.spec.core == {"name": "A"}
    assert rec.last.method == "GET" and rec.last.url.path == "/api/v1/chatbots/cb_1/config"


@pytest.mark.parametrize(
    ("kwargs", "expected_params"),
    [
        ({}, {}),
        ({"dry_run": True}, {"dryRun": "true"}),
        ({"dry_run": False}, {}),
        ({"prune": False}, {"prune": "false"}),
        ({"prune": True}, {"prune": "true"}),
        ({"dry_run": True, "prune": False}, {"dryRun": "true", "prune": "false"}),
    ],
)
def test_apply_sends_dry_run_only_when_asked_and_prune_only_when_given(
    kind: str, kwargs: dict[str, Any], expected_params: dict[str, str]
) -> None:
    rec = Recorder(lambda r: json_response(200, apply_ok(r)))
    doc = {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig", "spec": {}}
    run_client(kind, rec, "apply_config", "cb_1", doc, **kwargs)
    assert rec.last.method == "POST" and rec.last.url.path == "/api/v1/chatbots/cb_1/apply"
    assert dict(rec.last.url.params) == expected_params
    assert rec.last.headers["content-type"] == "application/json"


def test_a_stray_dry_run_in_the_body_is_stripped(kind: str) -> None:
    rec = Recorder(lambda r: json_response(200, apply_ok(r)))
    doc = {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig", "dryRun": True, "spec": {}}
    run_client(kind, rec, "apply_config", "cb_1", doc)
    model = ChatbotConfigDocument.model_validate(doc)  # extra="allow" keeps it on the model
    run_client(kind, rec, "apply_config", "cb_1", model, dry_run=False)
    for request in rec.requests:
        assert "dryRun" not in json.loads(request.content)
        assert "dryRun" not in request.url.params
    assert doc["dryRun"] is True  # the caller's mapping is not mutated


@pytest.mark.parametrize("status", [200, 422])
def test_apply_returns_apply_result_for_200_and_for_422_partial_failure(kind: str, status: int) -> None:
    failed = {"op": "create", "section": "domains", "key": "x.unverified", "code": "domain_verification_failed", "message": "DNS"}
    body = {**APPLY_OK, "failed": failed if status == 422 else None}
    rec = Recorder(lambda r: json_response(status, body))
    result = run_client(kind, rec, "apply_config", "cb_1", {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig", "spec": {}})
    assert isinstance(result, ApplyResult)
    assert (result.failed is None) == (status == 200)
    if status == 422:
        assert result.failed.code == "domain_verification_failed"


def test_apply_rejects_a_document_of_the_wrong_type(kind: str) -> None:
    rec = Recorder(lambda r: json_response(200, apply_ok(r)))
    with pytest.raises(TypeError, match="ChatbotConfigDocument or a mapping"):
        run_client(kind, rec, "apply_config", "cb_1", ["not", "a", "document"])
    assert rec.requests == []


# -- lossless round trip -------------------------------------------------------

SERVER_DOC: dict[str, Any] = {
    "apiVersion": "wizchat.com/v1",
    "kind": "ChatbotConfig",
    "metadata": {"chatbotId": "cb_1", "name": "Support", "revision": 7, "exportedAt": "2026-11-25T21:00:00.000+00:00", "etag": "W/1"},
    "futureTopLevel": {"x": [1, 2]},
    "spec": {
        "core": {"name": "Support", "temperature": 0.7, "unknownCoreKey": {"deep": True}},
        "security": {"allowedOrigins": ["HTTPS://Example.COM:443/"], "webhookSecret": "<redacted>", "newSecurityField": 1},
        "telemetry": None,
        "mcpServers": [
            {"name": "search", "url": "https://MCP.example.com:443/a/../b?q=1#frag", "transport": "sse",
             "headers": {"Authorization": "<redacted>"}, "allowedTools": None, "vendorExtension": "kept"},
            {"name": "minimal", "url": "http://127.0.0.1:8080"},
        ],
        "skills": [],
        "newSection": {"preview": True},
    },
}


def test_get_config_then_apply_sends_back_exactly_what_the_server_sent(kind: str) -> None:
    def route(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return json_response(200, SERVER_DOC)
        return json_response(200, apply_ok(request))

    rec = Recorder(route)
    if kind == "sync":
        with WizChatClient(KEY, base_url="https://api.test", http_client=httpx.Client(transport=httpx.MockTransport(rec))) as c:
            c.apply_config("cb_1", c.get_config("cb_1"), dry_run=True)
    else:
        async def go() -> None:
            async with AsyncWizChatClient(KEY, base_url="https://api.test", http_client=httpx.AsyncClient(transport=httpx.MockTransport(rec))) as c:
                await c.apply_config("cb_1", await c.get_config("cb_1"), dry_run=True)

        asyncio.run(go())
    # No URL normalisation, no defaults (enabled/transport) injected, absent sections
    # (domains) absent, null sections null, unknown fields everywhere kept, "<redacted>" kept.
    assert json.loads(rec.last.content) == SERVER_DOC


def test_editing_core_as_a_dict_sends_the_edit_and_nothing_else(kind: str) -> None:
    config = ChatbotConfigDocument.model_validate(SERVER_DOC)
    core = dict(config.spec.core or {})
    core["name"] = "Acme Support Bot"
    config.spec.core = core
    rec = Recorder(lambda r: json_response(200, apply_ok(r)))
    run_client(kind, rec, "apply_config", "cb_1", config)
    sent = json.loads(rec.last.content)
    expected = json.loads(json.dumps(SERVER_DOC))
    expected["spec"]["core"]["name"] = "Acme Support Bot"
    assert sent == expected


# -- errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "details"),
    [
        (400, "validation_error", {"errors": [{"path": "spec.core.name", "message": "must not be empty"}]}),
        (401, "unauthorized", None),
        (403, "insufficient_scope", {"required": ["mcp:write"], "granted": ["chatbots:read"]}),
        (404, "not_found", None),
        (500, "internal_error", None),
        (503, "unavailable", None),
    ],
)
def test_non_2xx_raises_wizchat_api_error_from_the_envelope(kind: str, status: int, code: str, details: Any) -> None:
    rec = Recorder(lambda r: json_response(status, envelope(code, "it failed", details), **{"X-Request-Id": "req_42"}))
    with pytest.raises(WizChatApiError) as info:
        run_client(kind, rec, "apply_config", "cb_1", {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig", "spec": {}})
    err = info.value
    assert (err.status, err.code, err.message, err.details) == (status, code, "it failed", details)
    assert err.request_id == "req_42"
    assert err.retry_after is None


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (502, b"<html>Bad Gateway</html>", "text/html"),
        (404, b'{"detail": "Not Found"}', "application/json"),
        (500, b"", "text/plain"),
        (418, b'{"error": "teapot"}', "application/json"),
        (301, b"", "text/plain"),
        # Nested past the interpreter's stack: json.loads raised RecursionError, not the SDK's error.
        (500, b'{"error": {"code": "boom", "details": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}", "application/json"),
    ],
)
def test_code_falls_back_to_http_status_when_the_body_is_not_the_envelope(kind: str, status: int, body: bytes, content_type: str) -> None:
    rec = Recorder(lambda r: httpx.Response(status, content=body, headers={"content-type": content_type}))
    with pytest.raises(WizChatApiError) as info:
        run_client(kind, rec, "get_chatbot", "cb_1")
    assert info.value.code == f"http_{status}"
    assert info.value.status == status
    assert info.value.details is None


def test_error_details_nested_deeper_than_any_api_error_are_dropped_and_code_and_message_kept(kind: str) -> None:
    # Every caller that walks details (a report, a secret scrubber) recurses: a server's 500-level
    # nesting would take it past Python's stack. The API's own details are one or two levels deep.
    deep: Any = {"leaf": 1}
    for _ in range(MAX_DETAILS_DEPTH):
        deep = {"a": deep}
    shallow = {"retryAfterMs": 40, "field": {"path": ["spec", "core"]}}
    for details, kept in ((deep, False), (shallow, True)):
        rec = Recorder(lambda r, d=details: json_response(500, envelope("boom", "it broke", d)))
        with pytest.raises(WizChatApiError) as info:
            run_client(kind, rec, "get_chatbot", "cb_1")
        assert (info.value.code, info.value.message) == ("boom", "it broke")
        assert (info.value.details == details) if kept else info.value.details is None


@pytest.mark.parametrize(
    ("headers", "details", "expected"),
    [
        ({"Retry-After": "3"}, None, 3.0),
        ({"Retry-After": "3"}, {"retryAfterMs": 2250}, 2.25),
        ({}, {"retryAfterMs": 40}, 0.04),
        ({}, None, None),
        ({"Retry-After": "soon"}, None, None),
    ],
)
def test_429_carries_retry_after_in_seconds(kind: str, headers: dict[str, str], details: Any, expected: float | None) -> None:
    rec = Recorder(lambda r: json_response(429, envelope("rate_limited", "slow down", details), **headers))
    with pytest.raises(WizChatApiError) as info:
        run_client(kind, rec, "get_chatbot", "cb_1")
    assert info.value.status == 429 and info.value.code == "rate_limited"
    assert info.value.retry_after == expected


OPERATION = {"op": "update", "section": "core", "key": None, "changes": [{"path": "temperature", "before": 0.9, "after": 0.2}]}


@pytest.mark.parametrize(("dry_run_field", "applied"), [(False, []), (False, [OPERATION]), (True, [OPERATION])],
                         ids=["says-applied", "says-applied-with-ops", "dry-run-with-ops"])
def test_a_dry_run_the_server_carried_out_is_never_returned_as_a_plan(kind: str, dry_run_field: bool,
                                                                       applied: list[Any]) -> None:
    # A gateway that drops the dryRun parameter turns the dry-run into an apply: its answer says so.
    answer = {"dryRun": dry_run_field, "applied": applied, "failed": None, "revision": 8,
              "plan": {"summary": {"create": 0, "update": 1, "delete": 0, "noop": 0}, "operations": [OPERATION]}}
    rec = Recorder(lambda r: json_response(200, answer, **{"x-request-id": "req_gw"}))
    with pytest.raises(WizChatApiError) as info:
        run_client(kind, rec, "apply_config", "cb_1", {"spec": {}}, dry_run=True)
    assert info.value.code == "dry_run_applied" and info.value.request_id == "req_gw"
    assert info.value.details == {"revision": 8, "applied": len(applied)}
    assert "asked for a dry-run, the server carried it out as an apply" in info.value.message
    assert rec.last.url.params["dryRun"] == "true"
    # The same answer to an apply is what an apply returns.
    rec = Recorder(lambda r: json_response(200, answer))
    assert run_client(kind, rec, "apply_config", "cb_1", {"spec": {}}).revision == 8


def test_a_2xx_answer_that_is_not_the_documented_model_is_an_api_error(kind: str) -> None:
    rec = Recorder(lambda r: httpx.Response(200, content=b"not json"))
    with pytest.raises(WizChatApiError) as info:
        run_client(kind, rec, "get_chatbot", "cb_1")
    assert info.value.code == "invalid_response"


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx.ConnectError("connection refused"), WizChatConnectionError),
        (httpx.RemoteProtocolError("server disconnected"), WizChatConnectionError),
        (httpx.ReadTimeout("timed out"), WizChatTimeoutError),
    ],
)
def test_transport_failures_raise_the_connection_error_not_the_api_error(kind: str, exc: Exception, expected: type) -> None:
    def route(request: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(expected) as info:
        run_client(kind, Recorder(route), "get_chatbot", "cb_1")
    assert not isinstance(info.value, WizChatApiError)
    assert isinstance(info.value.__cause__, httpx.TransportError)
    assert "GET https://api.test/api/v1/chatbots/cb_1" in str(info.value)


# -- secrets ---------------------------------------------------------------------


def test_the_api_key_never_appears_in_repr_str_errors_or_logs(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = WizChatClient(KEY)
    assert KEY not in repr(client) and KEY not in str(client)
    assert KEY not in repr(AsyncWizChatClient(KEY))
    texts: list[str] = []
    for route in (
        lambda r: json_response(401, envelope("unauthorized", "bad key")),
        lambda r: httpx.Response(500, content=b"oops"),
    ):
        with pytest.raises(WizChatApiError) as info:
            run_client(kind, Recorder(route), "get_chatbot", "cb_1")
        texts += [str(info.value), repr(info.value)]

    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(WizChatConnectionError) as conn:
        run_client(kind, Recorder(boom), "get_chatbot", "cb_1")
    texts += [str(conn.value), repr(conn.value)]
    texts += [record.getMessage() for record in caplog.records]
    assert any("cb_1" in t for t in texts)  # the log and errors did say something
    assert not [t for t in texts if KEY in t]


def test_an_empty_api_key_is_refused_before_any_request() -> None:
    with pytest.raises(ValueError, match="api_key"):
        WizChatClient("")


# -- pools -------------------------------------------------------------------------


def test_context_managers_close_the_pool_they_own_but_not_a_pool_passed_in() -> None:
    mine = httpx.Client(transport=httpx.MockTransport(lambda r: json_response(200, CHATBOT)))
    with WizChatClient(KEY, http_client=mine) as client:
        client.get_chatbot("cb_1")
    assert not mine.is_closed
    mine.close()
    with WizChatClient(KEY) as owned:
        pass
    assert owned._client.is_closed

    async def go() -> None:
        theirs = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: json_response(200, CHATBOT)))
        async with AsyncWizChatClient(KEY, http_client=theirs) as client:
            await client.get_chatbot("cb_1")
        assert not theirs.is_closed
        await theirs.aclose()
        async with AsyncWizChatClient(KEY) as owned_async:
            pass
        assert owned_async._client.is_closed

    asyncio.run(go())


def test_timeout_applies_to_the_clients_requests() -> None:
    seen: list[Any] = []

    def route(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return json_response(200, CHATBOT)

    with WizChatClient(KEY, timeout=2.5, http_client=httpx.Client(transport=httpx.MockTransport(route))) as c:
        c.get_chatbot("cb_1")
    with WizChatClient(KEY, timeout=3.0) as owned:
        assert owned._client.timeout.read == 3.0
    assert seen[0]["read"] == 2.5


# -- the seed's quickstart, unchanged ------------------------------------------------


def test_the_published_quickstart_runs_unchanged(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    seed = Path(__file__).resolve().parents[2] / "shared" / "seed" / "000_7c33ffa13a0ca17f.txt"
    quickstart = DATA / "seed_quickstart.py"
    if seed.exists():  # the committed copy must be the seed's text, verbatim
        assert quickstart.read_text() in seed.read_text()

    state: dict[str, Any] = {"core": {"name": "Old"}}

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/chatbots":
            return json_response(200, {"data": [CHATBOT], "nextCursor": None})
        if request.url.path.endswith("/config"):
            return json_response(200, {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig", "spec": dict(state)})
        body = json.loads(request.content)
        dry = request.url.params.get("dryRun") == "true"
        changed = body["spec"]["core"] != state["core"]
        op = {"op": "update" if changed else "noop", "section": "core", "key": None}
        summary = {"create": 0, "update": int(changed), "delete": 0, "noop": int(not changed)}
        if not dry:
            state["core"] = body["spec"]["core"]
        return json_response(200, {"dryRun": dry, "applied": [] if dry else [op], "failed": None,
                                   "plan": {"summary": summary, "operations": [op]}, "revision": 1})

    real_client = httpx.Client

    def mocked_client(*args: Any, **kwargs: Any) -> httpx.Client:
        kwargs["transport"] = httpx.MockTransport(route)
        return real_client(*args, **kwargs)

    monkeypatch.setattr(httpx, "Client", mocked_client)
    monkeypatch.setenv("WIZCHAT_API_KEY", KEY)
    runpy.run_path(str(quickstart), run_name="__main__")
    out = capsys.readouterr().out
    assert "update=1" in out and "core" in out
    assert state["core"] == {"name": "Acme Support Bot"}


def test_none_is_never_sent_as_null_where_the_contract_forbids_null(kind: str) -> None:
    from wizchat_management.models import ConfigMetadata, PublicMcpServer, PublicSecurity, PublicSkill, Spec

    doc = ChatbotConfigDocument(
        apiVersion="wizchat.com/v1",
        kind="ChatbotConfig",
        metadata=ConfigMetadata(name="x", revision=None),
        spec=Spec(
            core={"welcomeMessage": None},  # free-form: null removes the key
            security=PublicSecurity(requireAuth=None),  # nullable: null removes the key
            mcpServers=[PublicMcpServer(name="s", url="https://m.example", transport=None, enabled=None, allowedTools=None)],
            skills=[PublicSkill(name="k", description=None, triggers=None)],
            domains=None,  # a null section is unmanaged
        ),
    )
    rec = Recorder(lambda r: json_response(200, apply_ok(r)))
    run_client(kind, rec, "apply_config", "cb_1", doc, dry_run=True)
    sent = json.loads(rec.last.content)
    assert sent["metadata"] == {"name": "x"}
    assert sent["spec"]["core"] == {"welcomeMessage": None}
    assert sent["spec"]["security"] == {"requireAuth": None}
    assert sent["spec"]["mcpServers"] == [{"name": "s", "url": "https://m.example", "allowedTools": None}]
    assert sent["spec"]["skills"] == [{"name": "k"}]
    assert sent["spec"]["domains"] is None
    # A mapping body is held to the same rule; a key the contract does not name is sent as it is.
    rec = Recorder(lambda r: json_response(200, apply_ok(r)))
    body = {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig",
            "spec": {"domains": [{"hostname": "a.example", "primary": None, "future": None}]}}
    run_client(kind, rec, "apply_config", "cb_1", body)
    assert json.loads(rec.last.content)["spec"]["domains"] == [{"hostname": "a.example", "future": None}]


def test_text_that_reads_like_null_is_sent_as_it_is_and_real_nulls_still_follow_the_contract(kind: str) -> None:
    prompt = 'Answer ":null", "[null,null]" or ",null" when unsure.'
    plain = {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig", "spec": {"core": {"systemPrompt": prompt}}}
    rec = Recorder(lambda r: json_response(200, apply_ok(r)))
    run_client(kind, rec, "apply_config", "cb_1", plain, dry_run=True)
    assert json.loads(rec.last.content) == plain
    assert rec.last.headers["content-type"] == "application/json"
    mixed = {**plain, "spec": {**plain["spec"], "domains": [{"hostname": "a.example", "primary": None}]}}
    rec = Recorder(lambda r: json_response(200, apply_ok(r)))
    run_client(kind, rec, "apply_config", "cb_1", mixed, dry_run=True)
    assert json.loads(rec.last.content) == {**plain, "spec": {**plain["spec"], "domains": [{"hostname": "a.example"}]}}


def test_a_field_change_without_before_parses_as_a_create(kind: str) -> None:
    # openapi.json: FieldChange.before is absent (or null) when the value is created.
    plan = {"summary": {"create": 1, "update": 0, "delete": 0, "noop": 0}, "operations": [
        {"op": "create", "section": "skills", "key": "k", "changes": [{"path": "instructions", "after": "Be brief"}]}]}
    rec = Recorder(lambda r: json_response(200, {**APPLY_OK, "dryRun": True, "plan": plan}))
    result = run_client(kind, rec, "apply_config", "cb_1", {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig", "spec": {}}, dry_run=True)
    change = result.plan.operations[0].changes[0]
    assert change.before is None and change.after == "Be brief"
