"""The executor over httpx.MockTransport: retry sorting, 429s, counters, in-flight cap, per-key isolation, stop."""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from wizchat_management import WizChatApiError, WizChatConnectionError
from wizsync.engine import Executor, KeySpec, Stopped, run
from wizsync.engine.retry import MAX_THROTTLE_WAIT

KEY_A = "wpk_test_" + "A" * 30
KEY_B = "wpk_test_" + "B" * 30
BASE = "http://wizchat.test"


def _chatbot(cid: str) -> dict[str, Any]:
    return {"id": cid, "name": cid, "status": "active", "revision": 1, "createdAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-01-01T00:00:00Z"}


def _error(status: int, code: str, headers: dict[str, str] | None = None, details: Any = None) -> httpx.Response:
    return httpx.Response(status, headers=headers, json={"error": {"code": code, "message": code, "details": details}})


class FakeApi:
    """Per-key token buckets (real clock) plus scripted answers per chatbot id."""

    def __init__(self, limits: dict[str, tuple[float, int] | None], latency: float = 0.0) -> None:
        self.limits = limits
        self.buckets = {key: (float(lim[1]), time.monotonic()) for key, lim in limits.items() if lim}
        self.latency = latency
        self.script: dict[str, list[Any]] = {}
        self.seen: Counter[str] = Counter()
        self.sent_at: dict[str, list[float]] = {}
        self.in_flight = 0
        self.max_in_flight = 0

    def _take(self, key: str) -> tuple[bool, dict[str, str], float]:
        lim = self.limits.get(key)
        if lim is None:
            return True, {}, 0.0
        rate, burst = lim
        level, stamp = self.buckets[key]
        now = time.monotonic()
        level = min(burst, level + (now - stamp) * rate)
        ok = level >= 1
        if ok:
            level -= 1
        self.buckets[key] = (level, now)
        headers = {"X-RateLimit-Limit": str(burst), "X-RateLimit-Remaining": str(int(level)),
                   "X-RateLimit-Reset": f"{(burst - level) / rate:.3f}"}
        return ok, headers, (1 - level) / rate

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        key = request.headers["authorization"].removeprefix("Bearer ")
        cid = request.url.path.split("/")[4]
        self.seen[cid] += 1
        self.sent_at.setdefault(key, []).append(time.monotonic())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            ok, headers, wait = self._take(key)
            if not ok:
                ms = math.ceil(wait * 1000)
                return _error(429, "rate_limited", {**headers, "Retry-After": str(max(1, math.ceil(ms / 1000)))},
                              {"retryAfterMs": ms})
            steps = self.script.get(cid)
            if steps:
                step = steps.pop(0)
                if isinstance(step, Exception):
                    raise step
                if isinstance(step, httpx.Response):
                    step.headers.update(headers)
                    return step
            return httpx.Response(200, headers=headers, json=_chatbot(cid))
        finally:
            self.in_flight -= 1


def executor(api: FakeApi, keys: dict[str, str] | None = None, **kw: Any) -> Executor:
    keys = keys or {"acme/staging": KEY_A}
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("backoff_cap", 0.05)
    return Executor({label: KeySpec(k, BASE) for label, k in keys.items()},
                    transport=httpx.MockTransport(api), **kw)


def get(cid: str) -> Callable[[Any], Awaitable[Any]]:
    return lambda client: client.get_chatbot(cid)


def test_transient_errors_are_retried_then_succeed() -> None:
    api = FakeApi({KEY_A: None})
    api.script["cb_1"] = [_error(500, "internal_error"), _error(503, "unavailable"),
                          httpx.ConnectError("refused"), httpx.ReadTimeout("slow")]
    events: list[tuple[str, str | None, str, dict[str, Any]]] = []

    async def main() -> Any:
        async with executor(api, max_attempts=5, on_event=lambda *e: events.append(e)) as ex:
            result = await ex.call("acme/staging", get("cb_1"), context="support")
            return result, ex.stats()

    result, stats = run(main())
    assert result.id == "cb_1"
    assert api.seen["cb_1"] == 5
    s = stats["acme/staging"]
    assert s["requests"] == 5 and s["retries"] == 4 and s["connection_errors"] == 2
    assert s["responses"] == {"200": 1, "500": 1, "503": 1}
    assert s["calls"] == 1 and s["failed"] == 0 and s["throttled"] == 0
    kinds = [e[2] for e in events]
    assert kinds == ["attempt", "retry"] * 4 + ["attempt", "ok"]
    assert all(e[0] == "acme/staging" and e[1] == "support" for e in events)
    assert events[1][3]["error"] == "500 internal_error"


@pytest.mark.parametrize("failure", [_error(500, "internal_error"), _error(503, "unavailable"), httpx.ConnectError("no")])
def test_transient_errors_are_bounded(failure: Any) -> None:
    api = FakeApi({KEY_A: None})
    api.script["cb_1"] = [failure] * 10

    async def main() -> Any:
        async with executor(api, max_attempts=3) as ex:
            with pytest.raises((WizChatApiError, WizChatConnectionError)):
                await ex.call("acme/staging", get("cb_1"))
            return ex.stats()

    stats = run(main())
    assert api.seen["cb_1"] == 3
    assert stats["acme/staging"]["retries"] == 2 and stats["acme/staging"]["failed"] == 1


@pytest.mark.parametrize("status, code", [(400, "validation_error"), (401, "unauthorized"),
                                          (403, "insufficient_scope"), (404, "not_found")])
def test_permanent_errors_are_never_retried(status: int, code: str) -> None:
    api = FakeApi({KEY_A: None})
    api.script["cb_1"] = [_error(status, code)] * 3
    events: list[Any] = []

    async def main() -> Any:
        async with executor(api, on_event=lambda *e: events.append(e)) as ex:
            with pytest.raises(WizChatApiError) as info:
                await ex.call("acme/staging", get("cb_1"), context="x")
            assert info.value.status == status
            return ex.stats()

    stats = run(main())
    assert api.seen["cb_1"] == 1
    assert stats["acme/staging"]["retries"] == 0 and stats["acme/staging"]["failed"] == 1
    assert [e[2] for e in events] == ["attempt", "failed"]
    assert events[-1][3] == {"attempts": 1, "error": f"{status} {code}", "kind": "permanent"}


def test_a_429_waits_retry_after_ms_and_is_not_a_transient_retry() -> None:
    api = FakeApi({KEY_A: None})
    api.script["cb_1"] = [_error(429, "rate_limited", {"Retry-After": "1"}, {"retryAfterMs": 300})] * 2
    events: list[Any] = []

    async def main() -> Any:
        async with executor(api, max_attempts=1, on_event=lambda *e: events.append(e)) as ex:
            t0 = time.monotonic()
            await ex.call("acme/staging", get("cb_1"))
            return time.monotonic() - t0, ex.stats()

    elapsed, stats = run(main())
    s = stats["acme/staging"]
    assert api.seen["cb_1"] == 3  # two 429s did not use up max_attempts=1
    assert s["throttled"] == 2 and s["retries"] == 0 and s["responses"] == {"200": 1, "429": 2}
    # The exact retryAfterMs (0.3 s each), not the rounded-up Retry-After (1 s each).
    assert 0.55 <= elapsed < 1.5
    assert s["limiter_wait_seconds"] >= 0.5
    throttled = [e for e in events if e[2] == "throttled"]
    assert len(throttled) == 2 and throttled[0][3]["retry_after"] == pytest.approx(0.3)


def test_a_429_asking_for_too_long_fails_the_call() -> None:
    api = FakeApi({KEY_A: None})
    api.script["cb_1"] = [_error(429, "rate_limited", {"Retry-After": "600"})]

    async def main() -> None:
        async with executor(api) as ex:
            with pytest.raises(WizChatApiError) as info:
                await ex.call("acme/staging", get("cb_1"))
            assert info.value.status == 429

    run(main())
    assert api.seen["cb_1"] == 1


def test_a_503_with_retry_after_is_a_throttle_and_the_key_says_it_waits() -> None:
    api = FakeApi({KEY_A: None})
    api.script["cb_1"] = [_error(503, "unavailable", {"Retry-After": "1"})]
    events: list[Any] = []
    seen: list[Any] = []

    async def main() -> Any:
        async with executor(api, max_attempts=1, on_event=lambda *e: events.append(e)) as ex:
            task = asyncio.ensure_future(ex.call("acme/staging", get("cb_1")))
            while not any(e[2] == "waiting" for e in events):
                await asyncio.sleep(0.01)
            seen.append(ex.stats()["acme/staging"]["waiting"])
            await task
            return ex.stats()

    stats = run(main())["acme/staging"]
    # max_attempts=1 would have failed a transient 503: this one was a throttle.
    assert api.seen["cb_1"] == 2 and stats["throttled"] == 0 and stats["retries"] == 0
    assert [e[2] for e in events if e[2] in ("throttled", "retry")] == ["throttled"]
    waiting = [e for e in events if e[2] == "waiting"]
    assert waiting[0][1] is None and waiting[0][3] == {"reason": "retry-after", "seconds": 1.0}
    assert seen[0]["reason"] == "retry-after" and 0 < seen[0]["seconds"] <= 1.0
    assert stats["waiting"] is None or stats["waiting"]["reason"] == "rate"


def test_a_wait_beyond_the_cap_is_capped_and_reported() -> None:
    api = FakeApi({KEY_A: None})
    api.script["cb_1"] = [_error(429, "rate_limited", {"Retry-After": "100000000"})]
    events: list[Any] = []

    async def main() -> Any:
        async with executor(api, on_event=lambda *e: events.append(e)) as ex:
            with pytest.raises(WizChatApiError):
                await ex.call("acme/staging", get("cb_1"))
            return ex.stats()

    stats = run(main())["acme/staging"]
    capped = [e[3] for e in events if e[2] == "wait_capped"]
    assert capped == [{"source": "retry-after", "asked": 100000000.0, "capped_to": MAX_THROTTLE_WAIT}]
    assert stats["waiting"]["reason"] == "retry-after"
    assert 0 < stats["waiting"]["seconds"] <= MAX_THROTTLE_WAIT


def test_map_keeps_input_order_and_failures_do_not_cancel_others() -> None:
    api = FakeApi({KEY_A: None}, latency=0.001)
    api.script["cb_3"] = [_error(404, "not_found")]
    ids = [f"cb_{i}" for i in range(10)]
    seen: list[str] = []

    async def main() -> Any:
        async with executor(api) as ex:
            return await ex.map(ids, lambda cid: ex.call("acme/staging", get(cid), context=cid),
                                on_outcome=lambda o: seen.append(o.item))

    outcomes = run(main())
    assert [o.item for o in outcomes] == ids
    assert [o.ok for o in outcomes] == [i != 3 for i in range(10)]
    assert isinstance(outcomes[3].error, WizChatApiError) and outcomes[3].value is None
    assert outcomes[5].value.id == "cb_5"
    assert sorted(seen) == sorted(ids)


def test_every_key_starts_its_first_call_before_any_key_starts_a_second() -> None:
    # A wide fleet: each key's extra workers prepare a call (render, build) and then wait for
    # a token. Started key by key, they would all run before the last key's first call went
    # out; a key's first dry-run must not wait for the other keys' queued work.
    api = FakeApi({KEY_A: None, KEY_B: None}, latency=0.001)
    labels = {"a/p": KEY_A, "b/p": KEY_B, "c/p": KEY_A}
    started: list[tuple[str, int]] = []

    async def main() -> Any:
        async with executor(api, labels, concurrency=4) as ex:
            async def one(item: tuple[str, int]) -> Any:
                started.append(item)
                return await ex.call(item[0], get(f"cb_{item[0][0]}{item[1]}"))

            items = [(label, i) for label in labels for i in range(6)]
            return await ex.map(items, one, key=lambda item: item[0])

    outcomes = run(main())
    assert all(o.ok for o in outcomes) and len(outcomes) == 18
    assert [label for label, _ in started[:3]] == list(labels)  # one per key first
    assert {i for _, i in started[:3]} == {0}  # each key's own order kept


def test_2000_queued_calls_never_exceed_the_in_flight_cap() -> None:
    api = FakeApi({KEY_A: None, KEY_B: None}, latency=0.002)

    async def main() -> Any:
        async with executor(api, {"a/p": KEY_A, "b/p": KEY_B}, concurrency=4) as ex:
            outcomes = await ex.map(range(2000), lambda i: ex.call("a/p" if i % 2 else "b/p", get(f"cb_{i}")))
            return outcomes, ex.stats()

    outcomes, stats = run(main())
    assert all(o.ok for o in outcomes)
    assert api.max_in_flight == 4
    assert stats["a/p"]["requests"] + stats["b/p"]["requests"] == 2000


def test_a_throttled_key_does_not_slow_another_key() -> None:
    # Key A: 2 requests/s, burst 1 (its 40 calls need ~20 s). Key B: unlimited.
    api = FakeApi({KEY_A: (2.0, 1), KEY_B: None}, latency=0.002)

    async def main() -> Any:
        async with executor(api, {"slow/p": KEY_A, "fast/p": KEY_B}, concurrency=8) as ex:
            slow = asyncio.ensure_future(
                ex.map(range(40), lambda i: ex.call("slow/p", get(f"cb_slow{i}"))))
            await asyncio.sleep(0.05)  # the slow key's tasks are all queued first
            t0 = time.monotonic()
            fast = await ex.map(range(300), lambda i: ex.call("fast/p", get(f"cb_fast{i}")))
            fast_elapsed = time.monotonic() - t0
            ex.stop()  # graceful: the slow key's not-yet-started calls end as Stopped
            slow_outcomes = await slow
            return fast, fast_elapsed, slow_outcomes, ex.stats()

    fast, fast_elapsed, slow_outcomes, stats = run(main())
    assert all(o.ok for o in fast)
    # 300 calls × 2 ms at 8 in flight ≈ 0.1 s; waiting on key A would take 20 s.
    assert fast_elapsed < 2.0
    started = [o for o in slow_outcomes if o.ok]
    stopped = [o for o in slow_outcomes if isinstance(o.error, Stopped)]
    assert len(started) + len(stopped) == 40 and 1 <= len(started) <= 10
    assert stats["slow/p"]["throttled"] <= 1
    assert stats["slow/p"]["requests"] == len(started) + stats["slow/p"]["throttled"]


def test_stop_lets_in_flight_calls_finish_and_starts_nothing_new() -> None:
    api = FakeApi({KEY_A: None}, latency=0.2)
    events: list[Any] = []

    async def main() -> Any:
        async with executor(api, concurrency=3, on_event=lambda *e: events.append(e)) as ex:
            task = asyncio.ensure_future(ex.map(range(10), lambda i: ex.call("acme/staging", get(f"cb_{i}"), context=str(i))))
            await asyncio.sleep(0.05)
            ex.stop()
            assert ex.stopping
            outcomes = await task
            with pytest.raises(Stopped):
                await ex.call("acme/staging", get("cb_late"))
            return outcomes

    outcomes = run(main())
    # Nothing is known of the key yet, so it probes with 1 in flight (below the cap of 3).
    started = sum(o.ok for o in outcomes)
    assert started == 1
    assert [o.ok for o in outcomes] == [True] * started + [False] * (10 - started)
    assert all(isinstance(o.error, Stopped) for o in outcomes[started:])
    assert sum(api.seen.values()) == started  # nothing sent after the stop
    assert sum(1 for e in events if e[2] == "stopped") == 10 - started + 1


def test_pagination_requests_are_each_paced_and_counted() -> None:
    pages = {None: ("c1", [_chatbot("cb_1")]), "c1": (None, [_chatbot("cb_2")])}

    async def handler(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        nxt, data = pages[cursor]
        return httpx.Response(200, json={"data": data, "nextCursor": nxt},
                              headers={"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4", "X-RateLimit-Reset": "0.2"})

    async def main() -> Any:
        async with Executor({"acme/staging": KeySpec(KEY_A, BASE)}, transport=httpx.MockTransport(handler)) as ex:
            bots = await ex.call("acme/staging", lambda c: c.list_chatbots())
            return bots, ex.stats()

    bots, stats = run(main())
    assert [b.id for b in bots] == ["cb_1", "cb_2"]
    assert stats["acme/staging"]["requests"] == 2 and stats["acme/staging"]["calls"] == 1
    assert stats["acme/staging"]["capacity"] == 5


def test_estimate_uses_hints_then_learnt_rates() -> None:
    api = FakeApi({KEY_A: (10.0, 10), KEY_B: None})
    specs = {"a/p": KeySpec(KEY_A, BASE, rate_hint=5, burst_hint=5), "b/p": KeySpec(KEY_B, BASE)}

    async def main() -> Any:
        async with Executor(specs, transport=httpx.MockTransport(api)) as ex:
            before = ex.estimate_seconds({"a/p": 105})
            unknown = ex.estimate_seconds({"b/p": 10})
            await ex.call("a/p", get("cb_1"))
            await ex.call("a/p", get("cb_2"))
            after = ex.estimate_seconds({"a/p": 105, "b/p": 0})
            return before, unknown, after

    before, unknown, after = run(main())
    assert before == pytest.approx((105 - 5) / 5)
    assert unknown is None
    assert after == pytest.approx((105 - 10) / 10, rel=0.15)  # headers win over the hint


def test_no_api_key_in_events_stats_or_reprs() -> None:
    api = FakeApi({KEY_A: None})
    api.script["cb_1"] = [httpx.ConnectError("refused"), _error(401, "unauthorized")]
    events: list[Any] = []

    async def main() -> Any:
        ex = executor(api, on_event=lambda *e: events.append(e))
        async with ex:
            with pytest.raises(WizChatApiError) as info:
                await ex.call("acme/staging", get("cb_1"))
            return repr(ex), repr(KeySpec(KEY_A, BASE)), str(info.value), repr(info.value), ex.stats()

    texts = run(main())
    blob = json.dumps([texts, events], default=str)
    assert KEY_A not in blob and "A" * 20 not in blob
    assert "acme/staging" in blob


def test_unknown_label_is_a_clear_error() -> None:
    async def main() -> None:
        async with executor(FakeApi({KEY_A: None})) as ex:
            with pytest.raises(ValueError, match="unknown key label 'nope/x'"):
                await ex.call("nope/x", get("cb_1"))

    run(main())


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        Executor({}, concurrency=0)
    with pytest.raises(ValueError, match="max_attempts"):
        Executor({}, max_attempts=0)


def test_a_key_refused_for_an_hour_fails_its_other_calls_at_once_without_sending() -> None:
    # "Retry-After: 3600" (an hourly quota spent): held for the capped 60 s instead, every other
    # call of the key sent once a minute and failed on its own 429, one chatbot a minute for an hour.
    api = FakeApi({KEY_A: None})
    api.script["cb_0"] = [_error(429, "rate_limited", {"Retry-After": "3600"})]
    ids = [f"cb_{i}" for i in range(6)]

    async def main() -> list[Any]:
        async with executor(api, concurrency=1) as ex:
            return await asyncio.gather(*(ex.call("acme/staging", get(i)) for i in ids), return_exceptions=True)

    began = time.monotonic()
    results = run(main())
    assert time.monotonic() - began < 10  # not a minute per call
    assert all(isinstance(r, WizChatApiError) and r.status == 429 for r in results), results
    assert sum(api.seen.values()) == 1  # only the call that learnt it was sent
    unsent = [r for r in results[1:] if isinstance(r, WizChatApiError)]
    assert all("not sent" in r.message and "try again after" in r.message for r in unsent), unsent


def test_a_server_whose_clock_is_ahead_is_waited_for_by_its_own_clock() -> None:
    """An HTTP-date Retry-After from a server 10 minutes ahead: 1 s on its clock (its Date header), not 601 s
    on ours, which is past what wizsync waits and would fail the call and pause the key."""
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(time.monotonic())
        if len(calls) == 1:
            server_now = time.time() + 600
            return _error(429, "rate_limited", {"Retry-After": email.utils.formatdate(server_now + 1, usegmt=True),
                                                "Date": email.utils.formatdate(server_now, usegmt=True)})
        return httpx.Response(200, json=_chatbot("cb_1"))

    async def main() -> Any:
        async with Executor({"acme/staging": KeySpec(KEY_A, BASE)}, transport=httpx.MockTransport(handler)) as ex:
            return await ex.call("acme/staging", get("cb_1"))

    assert run(main()).id == "cb_1"
    assert len(calls) == 2 and 0.0 < calls[1] - calls[0] < 3.0  # ~1 s (whole seconds each side), never minutes


def test_a_key_the_server_refuses_with_401_fails_its_other_calls_unsent() -> None:
    """A key revoked during a run: the first 401 says the key itself is refused (not a chatbot's
    permission, which is 403/404), so its other calls fail at once, named, instead of each being
    sent at the key's pace to be refused the same way. Another key goes on."""
    api = FakeApi({KEY_A: None, KEY_B: None})
    for i in range(8):
        api.script[f"cb_a{i}"] = [_error(401, "unauthorized")]

    async def main() -> Any:
        async with executor(api, keys={"acme/staging": KEY_A, "globex/staging": KEY_B}, concurrency=1) as ex:
            a = await ex.map(range(8), lambda i: ex.call("acme/staging", get(f"cb_a{i}")))
            b = await ex.map(range(3), lambda i: ex.call("globex/staging", get(f"cb_b{i}")))
            return a, b

    a, b = run(main())
    assert sum(api.seen[f"cb_a{i}"] for i in range(8)) == 1  # one 401 from the server, then none sent
    assert all(isinstance(o.error, WizChatApiError) and o.error.status == 401 for o in a)
    assert all("not sent: the server refused acme/staging's API key (401 unauthorized" in str(o.error) for o in a[1:])
    assert all(o.ok for o in b)
