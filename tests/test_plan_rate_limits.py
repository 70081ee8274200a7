"""`wizsync plan` against rate-limited keys over real HTTP: 150 chatbots over 3 keys at 10 requests/s
(burst 10) each, plus a 4th tenant whose key allows 1 request/s (5 s of pacing per fast key, 8 s
for the slow one: enough to tell a key that waits on another from one that does not).

- every chatbot is planned;
- 429s stay under 2% of requests, and wizsync's counts (JSON and journal) agree with the emulator's;
- no key waits on another tenant's limit: each fast key finishes at its own floor
  ((n − burst) / rate, docs/rate-limits.md) plus a margin, while the slow tenant is still running — its
  chatbots come first in the manifest, so a limiter that held an in-flight slot while waiting
  for a token would starve the others.

The engine-level equivalent over httpx.MockTransport lives in test_engine_executor.py; this one
goes end to end: manifest, CLI, engine, emulator token buckets, report and journal.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wizchat_management.emulator import EmulatorServer

FAST = {"t1": 50, "t2": 50, "t3": 50}  # chatbots per tenant
FAST_RATE, FAST_BURST = 10, 10
SLOW, SLOW_COUNT, SLOW_RATE, SLOW_BURST = "slow", 8, 1, 1
MARGIN = 2.0  # seconds over the floor: start-up is not in the window (first request → last)


def chatbot_id(tenant: str, i: int) -> str:
    return f"cb_{tenant}_{i:04d}"


def seed() -> dict[str, Any]:
    orgs = []
    for tenant, count in [(SLOW, SLOW_COUNT), *FAST.items()]:
        rate, burst = (SLOW_RATE, SLOW_BURST) if tenant == SLOW else (FAST_RATE, FAST_BURST)
        orgs.append({
            "name": f"{tenant}-staging", "tenant": tenant, "environment": "staging",
            "keys": [{"label": f"{tenant}/staging", "envName": f"WIZCHAT_{tenant.upper()}_STAGING_KEY",
                      "rate": rate, "burst": burst}],
            "chatbots": [{"name": f"bot-{i:04d}", "id": chatbot_id(tenant, i),
                          "config": {"core": {"name": f"bot-{i:04d}", "temperature": 0.3}}} for i in range(count)],
        })
    return {"keySeed": "rate-limit-test", "organizations": orgs}


def manifest(base: str) -> str:
    lines = ["version: 1", "environments:", f'  staging: {{baseUrl: "{base}"}}', "tenants:"]
    tenants = [(SLOW, SLOW_COUNT), *FAST.items()]
    for tenant, _ in tenants:
        lines.append(f"  {tenant}: {{keys: {{staging: {{env: WIZCHAT_{tenant.upper()}_STAGING_KEY}}}}}}")
    lines += ["defaults:", "  sections: [core]", "chatbots:"]
    for tenant, count in tenants:  # the slow tenant first
        for i in range(count):
            lines.append(f"  - {{name: {tenant}-bot-{i:04d}, tenant: {tenant}, ids: {{staging: {chatbot_id(tenant, i)}}}, "
                         "source: {file: bot.yaml}}")
    return "\n".join(lines) + "\n"


class RequestTimes:
    """When each key's requests reached the emulator (monotonic), recorded in its request log."""

    def __init__(self, emu: EmulatorServer) -> None:
        self.times: defaultdict[str, list[float]] = defaultdict(list)
        self._lock = threading.Lock()
        log = emu.ctx.log
        original = log.add

        def add(method: str, path: str, status: int, label: str | None, *args: Any) -> None:
            if label is not None:
                with self._lock:
                    self.times[label].append(time.monotonic())
            original(method, path, status, label, *args)

        log.add = add  # type: ignore[method-assign]


@pytest.fixture
def limited_emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(seed=seed()) as emu:
        yield emu


def test_plan_150_chatbots_over_3_keys_at_10_rps_paces_each_key_on_its_own(
    limited_emulator: EmulatorServer, secret_scan: Any, tmp_path: Path
) -> None:
    emu = limited_emulator
    secret_scan.register_all(emu.keys)
    times = RequestTimes(emu)
    (tmp_path / "bot.yaml").write_text("spec:\n  core: {name: '${chatbot}', temperature: 0.5}\n")
    (tmp_path / "wizsync.yaml").write_text(manifest(emu.base_url))
    journal = tmp_path / "journal.db"
    secret_scan.watch_journal(journal)

    started = time.monotonic()
    proc = secret_scan.run(["plan", "wizsync.yaml", "--env", "staging", "--json", "--journal", str(journal)],
                           cwd=tmp_path, env=emu.key_env, timeout=60)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)

    # every chatbot planned (each one an update of core.temperature)
    total = SLOW_COUNT + sum(FAST.values())
    assert doc["status"] == "completed"
    assert len(doc["chatbots"]) == total
    for chatbot in doc["chatbots"]:
        assert chatbot["error"] is None, chatbot
        assert chatbot["summary"] == {"create": 0, "update": 1, "delete": 0, "noop": 0}, chatbot

    # 429s are rare, and everyone counts them the same way
    stats = emu.stats()
    server_keys = stats["keys"]
    assert stats["total"]["rateLimited"] < 0.02 * stats["total"]["requests"], stats["total"]
    assert stats["total"]["dryRuns"] == total
    reported = doc["keys"]
    conn = sqlite3.connect(journal)
    try:
        per_tenant = dict(conn.execute(
            "SELECT tenant, SUM(requests) || '/' || SUM(throttled) FROM items WHERE run_id = ? GROUP BY tenant",
            (doc["run_id"],)).fetchall())
        # Requests no chatbot took (each key's listing, the wrong-target proof) are journaled as
        # 'requests.other' events, per key: the run's totals count them too.
        for label, requests, throttled in conn.execute(
            "SELECT json_extract(data, '$.key'), json_extract(data, '$.requests'), json_extract(data, '$.throttled') "
            "FROM events WHERE run_id = ? AND kind = 'requests.other'", (doc["run_id"],)).fetchall():
            done, limited = (int(n) for n in per_tenant.get(label.split("/", 1)[0], "0/0").split("/"))
            per_tenant[label.split("/", 1)[0]] = f"{done + requests}/{limited + throttled}"
        throttled_events = conn.execute(
            "SELECT COUNT(*) FROM events WHERE run_id = ? AND kind = 'request.throttled'", (doc["run_id"],)
        ).fetchone()[0]
    finally:
        conn.close()
    for tenant in [SLOW, *FAST]:
        label = f"{tenant}/staging"
        server = server_keys[label]
        assert reported[label]["requests"] == server["requests"], (label, reported[label], server)
        assert reported[label]["throttled"] == server["rateLimited"], (label, reported[label], server)
        assert per_tenant[tenant] == f"{server['requests']}/{server['rateLimited']}", label
    assert throttled_events == stats["total"]["rateLimited"]

    # each fast key runs at its own pace: done by its floor + margin, while the slow key is still busy
    slow_times = times.times[f"{SLOW}/staging"]
    slow_span = slow_times[-1] - slow_times[0]
    assert slow_span >= (SLOW_COUNT - SLOW_BURST) / SLOW_RATE - 0.5  # the emulator really held it back
    for tenant, count in FAST.items():
        t = times.times[f"{tenant}/staging"]
        assert len(t) == server_keys[f"{tenant}/staging"]["requests"]
        floor = (count - FAST_BURST) / FAST_RATE
        span = t[-1] - t[0]
        assert span <= floor + MARGIN, f"{tenant}: {span:.2f}s for {count} requests (floor {floor:.1f}s)"
        assert t[-1] < slow_times[-1] - 1.0, f"{tenant} finished after (or with) the slow tenant"
    assert elapsed < 30
    secret_scan.check()
