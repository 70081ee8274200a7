"""The SDK (sync and async) black-box against the emulator over real HTTP: every apply rule of the spec."""

from __future__ import annotations

import asyncio
import copy
import re
import time
from typing import Any

import httpx
import pytest

from wizchat_management import AsyncWizChatClient, WizChatApiError, WizChatClient, WizChatConnectionError

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class AsyncAsSync:
    """Runs AsyncWizChatClient calls on one private loop, so one test body covers both clients."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = AsyncWizChatClient(*a, **kw)

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._client, name)
        return lambda *a, **kw: self._loop.run_until_complete(fn(*a, **kw))

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        http = self._client._client
        if not self._client._owns_client:  # a client passed in is the caller's to close
            self._loop.run_until_complete(http.aclose())
        self._loop.close()


# "async-aiohttp": the async client over the README's faster transport (httpx-aiohttp's
# AiohttpTransport under httpx.AsyncClient, passed as http_client=): same contract, same errors.
@pytest.fixture(params=["sync", "async", "async-aiohttp"])
def connect(request: pytest.FixtureRequest, emulator: Any) -> Any:
    made: list[Any] = []

    def make(label: str = "acme/staging", key: str | None = None) -> Any:
        key = key or emulator.keys[label]
        c: Any
        if request.param == "sync":
            c = WizChatClient(key, base_url=emulator.base_url, timeout=10)
        elif request.param == "async":
            c = AsyncAsSync(key, base_url=emulator.base_url, timeout=10)
        else:
            from httpx_aiohttp import AiohttpTransport

            http = httpx.AsyncClient(transport=AiohttpTransport(), timeout=10)
            c = AsyncAsSync(key, base_url=emulator.base_url, http_client=http)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def doc_of(client: Any, chatbot_id: str) -> dict[str, Any]:
    return client.get_config(chatbot_id).model_dump(mode="json", by_alias=True, exclude_unset=True)


def bot_with(client: Any, predicate: Any) -> Any:
    for b in client.list_chatbots():
        if predicate(doc_of(client, b.id)):
            return b
    raise AssertionError("no demo chatbot matches")


def test_validation_error_lists_every_path_and_applies_nothing(connect: Any, emulator: Any) -> None:
    c = connect()
    bot = c.list_chatbots()[0]
    before = emulator.state.snapshot()[bot.id]
    doc = doc_of(c, bot.id)
    doc["spec"]["core"]["name"] = ""
    doc["spec"]["core"]["temperature"] = 2.5
    doc["spec"]["telemetry"]["sampleRate"] = 1.5
    doc["spec"]["telemetry"]["exportUrl"] = "http://otel.example.com/v1"
    doc["spec"]["skills"] = [{"name": "a"}, {"name": "a"}]
    doc["spec"]["domains"] = [{"hostname": "not a host!"}]
    doc["spec"]["mcpServers"] = [{"name": "x", "url": "ftp://mcp.example.com", "transport": "carrier-pigeon"}]
    for dry_run in (True, False):
        with pytest.raises(WizChatApiError) as e:
            c.apply_config(bot.id, doc, dry_run=dry_run)
        assert e.value.status == 400 and e.value.code == "validation_error"
        paths = {err["path"] for err in e.value.details["errors"]}
        assert {
            "spec.core.name", "spec.core.temperature", "spec.telemetry.sampleRate", "spec.telemetry.exportUrl",
            "spec.skills[1].name", "spec.domains[0].hostname", "spec.mcpServers[0].url", "spec.mcpServers[0].transport",
        } <= paths
    assert emulator.state.snapshot()[bot.id] == before


def test_http_on_loopback_is_a_valid_url(connect: Any) -> None:
    c = connect()
    bot = c.list_chatbots()[0]
    doc = {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig",
           "spec": {"telemetry": {"exportUrl": "http://127.0.0.1:4318/v1/traces"}}}
    assert c.apply_config(bot.id, doc, dry_run=True).plan.summary.update == 1


def test_object_sections_merge_and_null_removes(connect: Any) -> None:
    c = connect()
    bot = c.list_chatbots()[0]
    live = doc_of(c, bot.id)["spec"]["core"]
    doc = {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig",
           "spec": {"core": {"welcomeMessage": None, "language": "es"}}}
    r = c.apply_config(bot.id, doc)
    assert r.failed is None and r.revision == bot.revision + 1
    [op] = r.applied
    changes = {ch.path: (ch.before, ch.after) for ch in op.changes}
    assert changes == {"welcomeMessage": (live["welcomeMessage"], None), "language": (live["language"], "es")}
    core = doc_of(c, bot.id)["spec"]["core"]
    assert "welcomeMessage" not in core and core["language"] == "es"
    assert {k: v for k, v in core.items() if k not in ("welcomeMessage", "language")} == {
        k: v for k, v in live.items() if k not in ("welcomeMessage", "language")
    }
    assert c.get_chatbot(bot.id).revision == bot.revision + 1
    assert RFC3339.match(c.get_chatbot(bot.id).updatedAt)


def test_array_items_keyed_with_defaults_and_prune(connect: Any) -> None:
    c = connect()
    bot = bot_with(c, lambda d: len(d["spec"]["skills"]) >= 2)
    skills = doc_of(c, bot.id)["spec"]["skills"]
    first, second = copy.deepcopy(skills[0]), skills[1]
    del first["enabled"]  # default true: same as live
    changed = {**second, "instructions": "New instructions."}
    new = {"name": "brand-new", "description": "d", "instructions": "i", "triggers": []}
    doc = {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig", "spec": {"skills": [first, changed, new]}}

    def ops(result: Any) -> dict[str, str]:
        return {o.key: o.op for o in result.plan.operations}

    pruned = c.apply_config(bot.id, doc, dry_run=True)
    expect = {first["name"]: "noop", second["name"]: "update", "brand-new": "create"}
    expect.update({s["name"]: "delete" for s in skills[2:]})
    assert ops(pruned) == expect
    upd = next(o for o in pruned.plan.operations if o.op == "update")
    assert [(ch.path, ch.after) for ch in upd.changes] == [("instructions", "New instructions.")]
    kept = c.apply_config(bot.id, doc, dry_run=True, prune=False)
    assert ops(kept) == {first["name"]: "noop", second["name"]: "update", "brand-new": "create"}
    r = c.apply_config(bot.id, doc, prune=False)
    assert r.failed is None
    names = [s["name"] for s in doc_of(c, bot.id)["spec"]["skills"]]
    assert set(names) == {s["name"] for s in skills} | {"brand-new"}
    assert next(s for s in doc_of(c, bot.id)["spec"]["skills"] if s["name"] == "brand-new")["enabled"] is True


def test_secrets_are_write_only_redacted_and_kept(connect: Any, emulator: Any) -> None:
    c = connect()
    bot = bot_with(c, lambda d: any(m.get("headers") for m in d["spec"]["mcpServers"]))
    doc = doc_of(c, bot.id)
    assert doc["spec"]["security"]["webhookSecret"] == "<redacted>"
    server = next(m for m in doc["spec"]["mcpServers"] if m.get("headers"))
    assert set(server["headers"].values()) == {"<redacted>"}
    raw_before = emulator.state.chatbots[bot.id].config
    real_secret = raw_before["security"]["webhookSecret"]
    assert real_secret != "<redacted>"
    # Sent back unchanged: all noop, real values kept.
    r = c.apply_config(bot.id, doc)
    assert r.plan.summary.noop == len(r.plan.operations) and r.revision == bot.revision
    assert emulator.state.chatbots[bot.id].config["security"]["webhookSecret"] == real_secret
    # A new value: the plan shows the change, redacted on both sides; the secret never comes back.
    doc["spec"]["security"]["webhookSecret"] = "whsec_brand_new_value"
    server["headers"]["Authorization"] = "Bearer rotated-token-123"
    r = c.apply_config(bot.id, doc)
    changes = [(o.section, ch.path, ch.before, ch.after) for o in r.applied for ch in o.changes]
    assert ("security", "webhookSecret", "<redacted>", "<redacted>") in changes
    assert ("mcpServers", "headers.Authorization", "<redacted>", "<redacted>") in changes
    assert "whsec_brand_new_value" not in r.model_dump_json() and "rotated-token-123" not in r.model_dump_json()
    live = emulator.state.chatbots[bot.id].config
    assert live["security"]["webhookSecret"] == "whsec_brand_new_value"
    assert next(m for m in live["mcpServers"] if m["name"] == server["name"])["headers"]["Authorization"] == (
        "Bearer rotated-token-123"
    )


def test_redacted_without_a_current_value_is_a_validation_error(connect: Any) -> None:
    c = connect()
    bot = c.list_chatbots()[0]
    doc = {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig", "spec": {"mcpServers": [
        {"name": "fresh", "url": "https://mcp.example.com", "headers": {"Authorization": "<redacted>"}}]}}
    with pytest.raises(WizChatApiError) as e:
        c.apply_config(bot.id, doc, dry_run=True, prune=False)
    assert e.value.status == 400 and e.value.details["errors"][0]["path"] == "spec.mcpServers[0].headers.Authorization"


def test_partial_failure_keeps_what_ran_before(connect: Any, emulator: Any) -> None:
    c = connect()
    bot = c.list_chatbots()[0]
    doc = doc_of(c, bot.id)
    doc["spec"]["core"]["systemPrompt"] = "Changed prompt."
    doc["spec"]["telemetry"]["sampleRate"] = 0.33
    doc["spec"]["domains"].append({"hostname": "shop.example.unverified", "primary": False})
    doc["spec"]["skills"].append({"name": "never-runs", "instructions": "x"})
    r = c.apply_config(bot.id, doc)
    assert r.failed is not None and r.failed.code == "domain_verification_failed"
    assert r.failed.section == "domains" and r.failed.key == "shop.example.unverified"
    assert [(o.section, o.op) for o in r.applied] == [("core", "update"), ("telemetry", "update")]
    assert r.revision == bot.revision + 1
    after = doc_of(c, bot.id)["spec"]
    assert after["core"]["systemPrompt"] == "Changed prompt." and after["telemetry"]["sampleRate"] == 0.33
    assert "never-runs" not in [s["name"] for s in after["skills"]]
    assert "shop.example.unverified" not in [d["hostname"] for d in after["domains"]]

    doc = doc_of(c, bot.id)
    doc["spec"]["domains"].append({"hostname": "ok.example.com"})
    doc["spec"]["mcpServers"].append({"name": "down", "url": "https://mcp.down.unreachable/x"})
    doc["spec"]["skills"].append({"name": "never-runs", "instructions": "x"})
    r = c.apply_config(bot.id, doc)
    assert r.failed.code == "mcp_unreachable" and r.failed.key == "down"
    assert [(o.section, o.key) for o in r.applied] == [("domains", "ok.example.com")]
    assert emulator.stats()["keys"]["acme/staging"]["partialFailures"] == 2


def test_apply_is_idempotent_and_revisions_count_changes(connect: Any) -> None:
    c = connect()
    bot = c.list_chatbots()[1]
    doc = doc_of(c, bot.id)
    doc["spec"]["core"]["temperature"] = 1.25
    assert c.apply_config(bot.id, doc).revision == bot.revision + 1
    again = c.apply_config(bot.id, doc)
    assert again.applied == [] and again.plan.summary.noop == len(again.plan.operations)
    assert again.revision == bot.revision + 1 == c.get_chatbot(bot.id).revision


def test_unknown_fields_survive_a_round_trip(connect: Any) -> None:
    c = connect()
    bot = c.list_chatbots()[2]
    doc = doc_of(c, bot.id)
    doc["x-owner"] = "team-a"
    doc["spec"]["futureSection"] = {"flag": True}
    doc["spec"]["core"]["avatarUrl"] = "https://cdn.example.com/a.png"
    doc["spec"]["skills"][0]["priority"] = 3
    c.apply_config(bot.id, doc)
    back = doc_of(c, bot.id)
    assert back["x-owner"] == "team-a" and back["spec"]["futureSection"] == {"flag": True}
    assert back["spec"]["core"]["avatarUrl"] == "https://cdn.example.com/a.png"
    assert back["spec"]["skills"][0]["priority"] == 3
    r = c.apply_config(bot.id, back, dry_run=True)
    assert r.plan.summary.noop == len(r.plan.operations)


def test_null_or_absent_sections_are_unmanaged(connect: Any) -> None:
    c = connect()
    bot = bot_with(c, lambda d: d["spec"]["skills"])
    doc = {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig", "spec": {"skills": None, "core": {}}}
    r = c.apply_config(bot.id, doc)
    assert [(o.section, o.op) for o in r.plan.operations] == [("core", "noop")]
    assert doc_of(c, bot.id)["spec"]["skills"]


def test_scopes_per_present_section(connect: Any, emulator: Any) -> None:
    core_only = emulator.add_key("org_acme_staging", scopes=["chatbots:read", "chatbots:write"])
    mcp_reader = emulator.add_key("org_acme_staging", scopes=["chatbots:read", "chatbots:write", "mcp:read"])
    bot = connect().list_chatbots()[0]
    doc = {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig",
           "spec": {"core": {"language": "it"}, "mcpServers": []}}
    c = connect(key=core_only)
    with pytest.raises(WizChatApiError) as e:
        c.apply_config(bot.id, doc, dry_run=True)
    assert e.value.status == 403 and e.value.code == "insufficient_scope"
    assert e.value.details == {"required": ["chatbots:read", "mcp:read"],
                               "granted": ["chatbots:read", "chatbots:write"]}
    with pytest.raises(WizChatApiError) as e:
        c.get_config(bot.id)
    assert e.value.status == 403 and "security:read" in e.value.details["required"]
    assert c.apply_config(bot.id, {**doc, "spec": {"core": {"language": "it"}}}).failed is None
    m = connect(key=mcp_reader)
    assert m.apply_config(bot.id, doc, dry_run=True).dryRun is True
    with pytest.raises(WizChatApiError) as e:
        m.apply_config(bot.id, doc)
    assert e.value.status == 403 and e.value.details["required"] == ["chatbots:write", "mcp:write"]


def test_another_tenants_chatbot_is_not_found(connect: Any) -> None:
    acme_bot = connect("acme/staging").list_chatbots()[0]
    globex = connect("globex/staging")
    doc = {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig", "spec": {}}
    for call in (lambda: globex.get_chatbot(acme_bot.id), lambda: globex.get_config(acme_bot.id),
                 lambda: globex.apply_config(acme_bot.id, doc, dry_run=True)):
        with pytest.raises(WizChatApiError) as e:
            call()
        assert (e.value.status, e.value.code) == (404, "not_found")


def test_unknown_or_missing_key_is_401(connect: Any, emulator: Any) -> None:
    with pytest.raises(WizChatApiError) as e:
        connect(key="wpk_test_" + "x" * 30).list_chatbots()
    assert (e.value.status, e.value.code) == (401, "unauthorized")
    r = httpx.get(emulator.base_url + "/api/v1/chatbots")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized" and r.headers["x-request-id"]


def test_pagination_and_query_validation(connect: Any, emulator: Any) -> None:
    c = connect()
    everything = [b.id for b in c.list_chatbots()]
    assert len(everything) == 20 and len(set(everything)) == 20
    h = {"Authorization": f"Bearer {emulator.keys['acme/staging']}"}
    url = emulator.base_url + "/api/v1/chatbots"
    seen, cursor = [], None
    while True:
        page = httpx.get(url, params={"limit": 7, **({"cursor": cursor} if cursor else {})}, headers=h).json()
        seen += [b["id"] for b in page["data"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == everything
    assert len(httpx.get(url, headers=h).json()["data"]) == 20  # default 50
    for params in ({"limit": 0}, {"limit": 201}, {"limit": "ten"}, {"cursor": "garbage!"}):
        r = httpx.get(url, params=params, headers=h)
        assert r.status_code == 400 and r.json()["error"]["code"] == "validation_error", params
    r = httpx.post(f"{emulator.base_url}/api/v1/chatbots/{everything[0]}/apply", params={"dryRun": "maybe"},
                   headers=h, json={})
    assert r.status_code == 400 and r.json()["error"]["details"]["errors"][0]["path"] == "dryRun"
    r = httpx.post(f"{emulator.base_url}/api/v1/chatbots/{everything[0]}/apply", headers=h, content=b"{nope")
    assert r.status_code == 400 and r.json()["error"]["code"] == "validation_error"


def test_rate_limit_429_with_retry_after_and_headers(connect: Any, emulator: Any) -> None:
    emulator.set_limits(rate=0.5, burst=2, key="acme/staging")
    h = {"Authorization": f"Bearer {emulator.keys['acme/staging']}"}
    url = emulator.base_url + "/api/v1/chatbots/cb_missing"
    first = httpx.get(url, headers=h)  # a 404 costs a token and carries the headers too
    assert first.status_code == 404 and first.headers["x-ratelimit-limit"] == "2"
    assert first.headers["x-ratelimit-remaining"] == "1" and float(first.headers["x-ratelimit-reset"]) > 0
    httpx.get(url, headers=h)
    r = httpx.get(url, headers=h)
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    ms = r.json()["error"]["details"]["retryAfterMs"]
    assert 1000 < ms <= 2000 and int(r.headers["retry-after"]) == 2 and r.headers["x-ratelimit-remaining"] == "0"
    with pytest.raises(WizChatApiError) as e:
        connect().list_chatbots()
    assert e.value.status == 429 and 0 < e.value.retry_after <= 2
    assert connect("globex/staging").list_chatbots()  # other keys have their own bucket
    s = emulator.stats()["keys"]["acme/staging"]
    assert s["rateLimited"] == 2 and s["byStatus"]["404"] == 2


def test_forced_429_burst(connect: Any, emulator: Any) -> None:
    emulator.force_429("acme/staging", count=2)
    c = connect()
    for _ in range(2):
        with pytest.raises(WizChatApiError) as e:
            c.list_chatbots()
        assert e.value.status == 429 and e.value.retry_after >= 1
    assert c.list_chatbots()


def test_faults_server_errors_and_dropped_connections(connect: Any, emulator: Any, request: pytest.FixtureRequest) -> None:
    c = connect()
    emulator.set_faults(error_rate=1.0)
    with pytest.raises(WizChatApiError) as e:
        c.list_chatbots()
    assert (e.value.status, e.value.code) in ((500, "internal_error"), (503, "unavailable"))
    emulator.set_faults(error_rate=0.0, drop_rate=1.0)
    with pytest.raises(WizChatConnectionError):
        c.list_chatbots()
    emulator.set_faults(clear=True)
    assert c.list_chatbots()
    # aiohttp sends a GET once more by itself when a kept-alive connection turns out dropped
    # (README, "A faster async transport"); wizsync's engine turns that off to count every attempt.
    dropped = emulator.stats()["keys"]["acme/staging"]["byStatus"]["dropped"]
    assert dropped in ((1, 2) if "aiohttp" in request.node.callspec.params["connect"] else (1,))


def test_latency_fault_slows_answers(emulator: Any) -> None:
    import time

    emulator.set_faults(latency_ms=80)
    c = WizChatClient(emulator.keys["acme/staging"], base_url=emulator.base_url)
    t = time.perf_counter()
    c.list_chatbots()
    assert time.perf_counter() - t >= 0.08
    c.close()


def test_every_response_has_a_request_id_and_the_envelope(emulator: Any) -> None:
    h = {"Authorization": f"Bearer {emulator.keys['acme/staging']}"}
    before = time.time()
    for method, path, status in (("GET", "/nowhere", 404), ("DELETE", "/api/v1/chatbots", 405),
                                 ("GET", "/api/v1/chatbots", 200)):
        r = httpx.request(method, emulator.base_url + path, headers=h)
        assert r.status_code == status and r.headers["x-request-id"].startswith("req_")
        assert "x-ratelimit-limit" in r.headers
        if status != 200:
            assert set(r.json()["error"]) == {"code", "message", "details"}
    log = emulator.requests(limit=3)
    assert [e["status"] for e in log] == [404, 405, 200] and log[0]["key"] == "acme/staging"
    arrivals = [e["at"] for e in log]  # when each arrived, in order, to the ms
    assert before - 0.001 <= arrivals[0] <= arrivals[1] <= arrivals[2] <= time.time()
    assert emulator.keys["acme/staging"] not in repr(emulator.requests())


def test_demo_round_trip_plans_all_noop(emulator: Any) -> None:
    """For every chatbot of the demo seed: get_config then a dry-run of that document is all noop."""
    checked = 0
    for label, key in emulator.keys.items():
        with WizChatClient(key, base_url=emulator.base_url) as c:
            for bot in c.list_chatbots():
                assert RFC3339.match(bot.createdAt) and RFC3339.match(bot.updatedAt)
                result = c.apply_config(bot.id, c.get_config(bot.id), dry_run=True)
                ops = result.plan.operations
                assert result.plan.summary.noop == len(ops) >= 3, (label, bot.name)
                assert result.plan.summary.create == result.plan.summary.update == result.plan.summary.delete == 0
                checked += 1
    assert checked == 120


def test_demo_promotion_matches_by_name_and_plans_changes(emulator: Any) -> None:
    with WizChatClient(emulator.keys["acme/staging"], base_url=emulator.base_url) as stg, \
            WizChatClient(emulator.keys["acme/production"], base_url=emulator.base_url) as prd:
        staging = {b.name: b.id for b in stg.list_chatbots()}
        production = {b.name: b.id for b in prd.list_chatbots()}
        assert staging.keys() == production.keys() and any(n.startswith("support-") for n in staging)
        changed = 0
        for name, sid in staging.items():
            doc = stg.get_config(sid).model_dump(mode="json", by_alias=True, exclude_unset=True)
            doc["spec"]["domains"] = None  # hostnames are per environment
            doc["spec"]["security"] = None
            r = prd.apply_config(production[name], doc, dry_run=True)
            changed += r.plan.summary.noop != len(r.plan.operations)
        assert 5 <= changed < len(staging)


def test_an_integral_number_is_an_integer_as_json_schema_counts_it(connect: Any, emulator: Any) -> None:
    c = connect()
    bot = c.list_chatbots()[3]
    doc = {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig", "metadata": {"revision": 2.0},
           "spec": {"security": {"rateLimitPerMinute": 60.0}}}
    c.apply_config(bot.id, doc)
    stored = doc_of(c, bot.id)["spec"]["security"]["rateLimitPerMinute"]
    assert stored == 60 and isinstance(stored, int)
    again = c.apply_config(bot.id, {**doc, "spec": {"security": {"rateLimitPerMinute": 60}}}, dry_run=True)
    assert [o.op for o in again.plan.operations] == ["noop"]
    with pytest.raises(WizChatApiError) as err:
        c.apply_config(bot.id, {**doc, "spec": {"security": {"rateLimitPerMinute": 60.5}}}, dry_run=True)
    assert err.value.details["errors"][0]["path"] == "spec.security.rateLimitPerMinute"
    h = {"Authorization": f"Bearer {emulator.keys['acme/staging']}"}
    page = httpx.get(emulator.base_url + "/api/v1/chatbots", params={"limit": "5.0"}, headers=h)
    assert page.status_code == 200 and len(page.json()["data"]) == 5
