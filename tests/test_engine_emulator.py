"""The execution engine against the real emulator over HTTP on 127.0.0.1 (issue 4's rate-limit check).

Every test runs on both HTTP backends (aiohttp under httpx, and httpx's own): same pacing, same
retries of 5xx and dropped connections, same 429 handling. The request deadline and the size cap
on both backends: tests/test_request_limits.py.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from wizchat_management.emulator import EmulatorServer
from wizchat_management.emulator.seed import derive_chatbot_id
from wizsync.engine import HTTP_BACKENDS, Executor, KeySpec, Transport, run

backends = pytest.mark.parametrize("backend", HTTP_BACKENDS)


def fleet_seed(keys: dict[str, tuple[float | None, int | None, int]]) -> dict[str, Any]:
    """One organization per key label: ``label -> (rate, burst, number of chatbots)``."""
    orgs = []
    for i, (label, (rate, burst, n)) in enumerate(keys.items()):
        key: dict[str, Any] = {"label": label}
        if rate is not None:
            key.update(rate=rate, burst=burst)
        orgs.append({
            "name": f"org{i}", "id": f"org_{i}", "tenant": label.split("/")[0], "environment": "production",
            "keys": [key],
            "chatbots": [{"name": f"bot-{j:03d}", "config": {"core": {"name": f"Bot {j}", "temperature": 0.5}}}
                         for j in range(n)],
        })
    return {"keySeed": "engine-tests", "organizations": orgs}


def fleet_ids(keys: dict[str, tuple[float | None, int | None, int]]) -> list[tuple[str, str]]:
    return [(label, derive_chatbot_id(f"org_{i}", f"bot-{j:03d}"))
            for i, (label, (_r, _b, n)) in enumerate(keys.items()) for j in range(n)]


DESIRED = {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig", "spec": {"core": {"temperature": 0.2}}}


FAST_N, FAST_RATE, FAST_BURST = 50, 10.0, 10  # per fast key: a floor of (50 - 10) / 10 = 4 s
SLOW_N, SLOW_RATE = 4, 0.5  # the slow key: (4 - 1) / 0.5 = 6 s


@backends
def test_fleet_of_150_over_3_keys_is_planned_with_rare_429s_and_no_key_waits_on_another(backend: str) -> None:
    fleet = {
        "acme/production": (FAST_RATE, FAST_BURST, FAST_N),
        "globex/production": (FAST_RATE, FAST_BURST, FAST_N),
        "initech/production": (FAST_RATE, FAST_BURST, FAST_N),
        # A much slower key in the same run: its chatbots need (SLOW_N - 1) / SLOW_RATE = 6 s.
        "slowco/production": (SLOW_RATE, 1, SLOW_N),
    }
    total = 3 * FAST_N + SLOW_N
    fast_floor, slow_floor = (FAST_N - FAST_BURST) / FAST_RATE, (SLOW_N - 1) / SLOW_RATE
    with EmulatorServer(seed=fleet_seed(fleet)) as emu:
        specs = {label: KeySpec(emu.keys[label], emu.base_url) for label in fleet}
        done_at: dict[str, float] = {}

        async def main() -> Any:
            async with Executor(specs, concurrency=16, http=Transport(backend)) as ex:  # type: ignore[arg-type]
                t0 = time.monotonic()

                async def plan(item: tuple[str, str]) -> Any:
                    label, cid = item
                    result = await ex.call(label, lambda c: c.apply_config(cid, DESIRED, dry_run=True), context=cid)
                    done_at[label] = time.monotonic() - t0
                    return result

                outcomes = await ex.map(fleet_ids(fleet), plan)
                return outcomes, ex.stats(), ex.estimate_seconds({label: n for label, (_r, _b, n) in fleet.items()})

        outcomes, stats, estimate = run(main())
        server_stats = emu.stats()

    assert len(outcomes) == total
    failed = [(o.item, repr(o.error)) for o in outcomes if not o.ok]
    assert not failed, failed[:3]
    assert all(o.value.dryRun and o.value.plan.summary.update == 1 for o in outcomes)

    requests = sum(s["requests"] for s in stats.values())
    throttled = sum(s["throttled"] for s in stats.values())
    assert requests == total + throttled
    assert throttled < 0.02 * requests, stats
    assert all(s["retries"] == 0 and s["failed"] == 0 for s in stats.values())

    # Each 10/s key is bound by its own floor (n − b) / r (docs/rate-limits.md, "The floor"), not by the slow key.
    for label in ("acme/production", "globex/production", "initech/production"):
        assert done_at[label] < fast_floor * 1.1 + 1.0, (label, done_at)
        assert stats[label]["server_rate"] is not None and abs(stats[label]["server_rate"] - FAST_RATE) < 1.0
        assert stats[label]["capacity"] == FAST_BURST
    # ...while the slow key was still busy: its calls were queued alongside theirs from the start.
    assert done_at["slowco/production"] > max(v for k, v in done_at.items() if k != "slowco/production")
    assert done_at["slowco/production"] >= slow_floor * 0.95, done_at
    # The estimate for a second pass uses the learnt rates: max_k (n_k − b_k)/r_k ≈ the slow key's floor.
    assert estimate is not None and slow_floor * 0.9 < estimate < slow_floor * 1.25, estimate
    assert server_stats is not None


@backends
def test_1200_queued_calls_on_a_small_pool_never_hit_pool_timeout(backend: str) -> None:
    fleet = {"a/production": (None, None, 3), "b/production": (None, None, 3)}
    ids = fleet_ids(fleet)
    with EmulatorServer(seed=fleet_seed(fleet)) as emu:
        specs = {label: KeySpec(emu.keys[label], emu.base_url) for label in fleet}

        async def main() -> Any:
            # Pool = cap = 3 connections per key, and a pool timeout short enough
            # that any request waiting for a connection would fail the test.
            async with Executor(specs, concurrency=3, timeout=httpx.Timeout(10.0, pool=0.2), http=Transport(backend)) as ex:  # type: ignore[arg-type]
                outcomes = await ex.map(range(1200), lambda i: ex.call(ids[i % 6][0], lambda c: c.get_chatbot(ids[i % 6][1])))
                return outcomes, ex.stats()

        outcomes, stats = run(main())
    errors = [repr(o.error) for o in outcomes if not o.ok]
    assert not errors, errors[:3]
    assert sum(s["requests"] for s in stats.values()) == 1200
    assert all(s["connection_errors"] == 0 for s in stats.values())


@backends
def test_forced_429s_from_the_emulator_are_waited_out_and_counted(backend: str) -> None:
    fleet = {"acme/production": (None, None, 1)}
    (label, cid), = fleet_ids(fleet)
    events: list[tuple[str, str | None, str, dict[str, Any]]] = []
    with EmulatorServer(seed=fleet_seed(fleet)) as emu:
        emu.force_429(label, count=2)
        specs = {label: KeySpec(emu.keys[label], emu.base_url)}

        async def main() -> Any:
            async with Executor(specs, max_attempts=1, on_event=lambda *e: events.append(e), http=Transport(backend)) as ex:  # type: ignore[arg-type]
                bot = await ex.call(label, lambda c: c.get_chatbot(cid), context="bot-000")
                return bot, ex.stats()

        bot, stats = run(main())
        key = emu.keys[label]
    assert bot.id == cid
    assert stats[label]["throttled"] == 2 and stats[label]["responses"]["200"] == 1
    call_events = [e[2] for e in events if e[1] is not None]
    assert call_events == ["attempt", "throttled", "attempt", "throttled", "attempt", "ok"]
    # The key's own notices (context None): each 1 s Retry-After is announced as a wait.
    assert [(e[2], e[3]["reason"]) for e in events if e[1] is None] == [("waiting", "retry-after")] * 2
    assert key not in repr(events)


@backends
def test_5xx_answers_and_dropped_connections_are_retried_and_every_attempt_counted(backend: str) -> None:
    fleet = {"acme/production": (None, None, 4)}
    ids = fleet_ids(fleet)
    with EmulatorServer(seed=fleet_seed(fleet), error_rate=0.15, drop_rate=0.15, fault_seed=11) as emu:
        specs = {label: KeySpec(emu.keys[label], emu.base_url) for label in fleet}

        async def main() -> Any:
            async with Executor(specs, concurrency=4, max_attempts=8, backoff_base=0.001, http=Transport(backend)) as ex:  # type: ignore[arg-type]
                outcomes = await ex.map(range(120), lambda i: ex.call(ids[i % 4][0], lambda c: c.get_chatbot(ids[i % 4][1])))
                return outcomes, ex.stats()["acme/production"]

        outcomes, stats = run(main())
        server = emu.stats()["total"]
    errors = [repr(o.error) for o in outcomes if not o.ok]
    assert not errors, errors[:3]
    by_status = server["byStatus"]
    faults = sum(by_status.get(s, 0) for s in ("500", "503", "dropped"))
    assert by_status.get("dropped", 0) > 0 and faults > 10, by_status
    # Each request the server saw is one the engine sent and counted (no silent resend by the
    # backend), and each fault it produced is one retry.
    assert stats["requests"] == server["requests"] == 120 + faults, (stats, server)
    assert stats["retries"] == faults
    assert stats["connection_errors"] == by_status.get("dropped", 0)
