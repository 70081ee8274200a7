"""An apply whose answer never came (5xx or no answer after the request went out) may have been
applied: the journal must say so, so that rollback covers it and resume settles it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from wizsync.apply.batches import ApplyOptions, BatchRunner, RunItem
from wizsync.engine import Executor, KeySpec
from wizsync.journal import Journal
from wizsync.journal.recorder import Recorder
from wizsync.rollback.restore import SnapshotDocument

DOC = {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig", "spec": {"core": {"name": "bot", "temperature": 0.3}}}
OP = {"op": "update", "section": "core", "key": None, "changes": [{"path": "temperature", "before": 0.9, "after": 0.3}]}


def server(apply_status: int) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={**DOC, "spec": {"core": {"name": "bot", "temperature": 0.9}}})
        if request.url.params.get("dryRun") == "true":
            plan = {"summary": {"create": 0, "update": 1, "delete": 0, "noop": 0}, "operations": [OP]}
            return httpx.Response(200, json={"dryRun": True, "applied": [], "failed": None, "plan": plan, "revision": 1})
        return httpx.Response(apply_status, json={"error": {"code": "x", "message": "apply answer", "details": None}})

    return httpx.MockTransport(handle)


def run_one(tmp_path: Path, apply_status: int) -> Any:
    journal = Journal.open(tmp_path / "journal.db")
    run_id = journal.start_run("apply", "production", None, None, {})
    journal.add_items(run_id, [{"name": "bot", "tenant": "acme", "chatbot_id": "cb_1", "batch": 1, "position": 0}])
    item = RunItem("bot", "acme", "production", "cb_1", SnapshotDocument(DOC), prune=True)

    async def go() -> None:
        recorder = Recorder(journal, run_id)
        keys = {"acme/production": KeySpec("wpk_test_" + "k" * 24, base_url="https://api.test")}
        async with Executor(keys, transport=server(apply_status), max_attempts=2, backoff_base=0.001) as ex:
            await BatchRunner(journal, run_id, ex, recorder, ApplyOptions()).run([[item]], 1)

    asyncio.run(go())
    record = journal.item(run_id, "bot")
    journal.close()
    return record


def test_a_5xx_answer_to_an_apply_records_what_it_may_have_applied(tmp_path: Path) -> None:
    record = run_one(tmp_path, 503)
    assert record.state == "failed"
    assert record.applied_ops == [OP]  # rollback restores core for this chatbot
    assert "may have reached the server" in record.error_message


def test_a_definite_rejection_records_nothing_applied(tmp_path: Path) -> None:
    record = run_one(tmp_path, 400)
    assert record.state == "failed"
    assert not record.applied_ops
    assert "may have" not in record.error_message
    assert json.dumps(record.to_dict())  # the record stays JSON-able


def test_an_unreadable_200_to_an_apply_records_what_it_may_have_applied(tmp_path: Path) -> None:
    # The server said "done" in a body that is not an ApplyResult (a gateway's page, a cut-off body):
    # the write may well have happened, so rollback must see it, as after a 5xx.
    record = run_one(tmp_path, 200)
    assert record.state == "failed" and record.error_code == "invalid_response"
    assert record.applied_ops == [OP]
    assert "may have reached the server" in record.error_message
