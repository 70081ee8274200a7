"""A server that carries out dry-runs: the first dry-run to a server goes alone, and one that was applied stops the run.

A gateway that drops query parameters it does not know turns ``POST …/apply?dryRun=true`` into
an apply. The SDK refuses such an answer as a plan (``dry_run_applied``); the engine sends the first
dry-run to each server alone (wizsync/engine/dryrun_gate.py) and stops the run when one was
applied, so a ``plan`` changes one chatbot, not as many as were in flight. Against an
``httpx.MockTransport`` server that counts what arrives; the emulator's ``--ignore-dry-run`` fault
is driven through the CLI in tests/test_plan_errors.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from wizchat_management import WizChatApiError
from wizsync.engine import Executor, KeySpec, Stopped, run

KEYS = {"acme/staging": "wpk_test_" + "A" * 30, "globex/staging": "wpk_test_" + "B" * 30}
BASE = "http://wizchat.test"
DOC = {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig", "spec": {"core": {"name": "bot"}}}
OP = {"op": "update", "section": "core", "key": None, "changes": [{"path": "name", "before": "old", "after": "bot"}]}
PLAN = {"summary": {"create": 0, "update": 1, "delete": 0, "noop": 0}, "operations": [OP]}


class Server:
    """Answers dry-runs as ``mode`` says ("plan", or "apply": a gateway dropped dryRun), after ``latency`` s."""

    def __init__(self, mode: str, latency: float = 0.02, first: httpx.Response | None = None) -> None:
        self.mode, self.latency, self.first = mode, latency, first
        self.arrivals: list[int] = []  # for each dry-run, how many others were in flight when it arrived
        self.in_flight = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.params.get("dryRun") == "true"
        self.arrivals.append(self.in_flight)
        self.in_flight += 1
        try:
            await asyncio.sleep(self.latency)
            if self.first is not None and len(self.arrivals) == 1:
                return self.first
            applied = self.mode == "apply"
            return httpx.Response(200, json={"dryRun": not applied, "applied": [OP] if applied else [],
                                             "failed": None, "plan": PLAN, "revision": 2 if applied else 1})
        finally:
            self.in_flight -= 1


def plan_all(server: Server, n: int = 12, concurrency: int = 16) -> tuple[list[Any], bool, list[tuple[Any, ...]]]:
    """``n`` dry-runs over two keys of one server; (outcomes, whether the executor stopped, events)."""
    events: list[tuple[Any, ...]] = []
    labels = sorted(KEYS)

    async def main() -> tuple[list[Any], bool]:
        specs = {label: KeySpec(key, BASE) for label, key in KEYS.items()}
        async with Executor(specs, concurrency=concurrency, transport=httpx.MockTransport(server),
                            on_event=lambda *e: events.append(e)) as ex:
            def dry_run(i: int) -> Any:
                return ex.call(labels[i % 2], lambda c: c.apply_config(f"cb_{i}", DOC, dry_run=True), context=f"bot-{i}")

            outcomes = await ex.map(range(n), dry_run)
            return outcomes, ex.stopping

    outcomes, stopped = run(main())
    return outcomes, stopped, events


def test_the_first_dry_run_to_a_server_goes_alone_and_the_rest_together() -> None:
    server = Server("plan")
    outcomes, stopped, _ = plan_all(server)
    assert all(o.ok for o in outcomes) and not stopped
    assert server.arrivals[0] == 0  # alone: nothing else was out when it arrived
    assert server.arrivals[1] == 0  # and the next one only once its answer was in
    assert max(server.arrivals[2:]) >= 1  # then no more gating: the rest overlap


def test_a_server_that_applies_a_dry_run_changes_one_chatbot_and_the_run_stops() -> None:
    server = Server("apply")
    outcomes, stopped, events = plan_all(server)
    assert len(server.arrivals) == 1  # one chatbot changed, not one per request in flight
    assert stopped
    first, rest = outcomes[0], outcomes[1:]
    assert isinstance(first.error, WizChatApiError) and first.error.code == "dry_run_applied"
    assert "asked for a dry-run, the server carried it out as an apply" in first.error.message
    assert first.error.details == {"revision": 2, "applied": 1}
    assert all(isinstance(o.error, Stopped) for o in rest), [o.error for o in rest]
    halted = [e for e in events if e[2] == "halted"]
    assert len(halted) == 1 and halted[0][1] == "bot-0" and "dry_run_applied" in halted[0][3]["error"]


@pytest.mark.parametrize("first", [
    httpx.Response(400, json={"error": {"code": "invalid_config", "message": "no", "details": None}}),
    httpx.Response(200, content=b"<html>gateway</html>"),
], ids=["refused", "not-json"])
def test_a_first_dry_run_that_fails_hands_the_turn_to_the_next(first: httpx.Response) -> None:
    server = Server("plan", first=first)
    outcomes, stopped, _ = plan_all(server)
    assert not stopped and not outcomes[0].ok and all(o.ok for o in outcomes[1:])
    assert server.arrivals[:2] == [0, 0]  # the second went alone too: it was the next probe
