"""Every request has an overall deadline and every answer a size cap, on both HTTP backends.

Against a raw server on 127.0.0.1 (tests/rawserver.py) that trickles one byte at a time (each
read is quick, so no per-read timeout fires: only the overall deadline ends it), declares or
streams an answer larger than the cap, or never answers at all. Through the engine and through
`wizsync plan` / `wizsync apply` as real processes. A stop (Ctrl-C) never waits on a stuck request.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rawserver import RawServer
from secret_scan import wizsync_env

from wizchat_management import WizChatTimeoutError
from wizsync.engine import HTTP_BACKENDS, Executor, KeySpec, ResponseTooLarge, Stopped, Transport, run

KEY = "wpk_test_rawserver0123456789abcdef"
LABEL = "acme/staging"
MIB = 1024 * 1024
DOC = {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig", "spec": {"core": {"temperature": 0.5}}}
CHANGE = {
    "chatbotId": "cb_1", "dryRun": True, "revision": 3, "applied": [], "failed": None,
    "plan": {"summary": {"create": 0, "update": 1, "delete": 0, "noop": 0},
             "operations": [{"op": "update", "section": "core", "key": None,
                             "changes": [{"path": "temperature", "before": 0.3, "after": 0.5}]}]},
}
LIVE = {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig", "metadata": {"chatbotId": "cb_1", "revision": 3},
        "spec": {"core": {"temperature": 0.3}}}

LISTING = {"data": [{"id": "cb_1", "name": "bot-1", "status": "active", "revision": 3, "createdAt": "2026-01-01T00:00:00Z",
                     "updatedAt": "2026-01-01T00:00:00Z"}], "nextCursor": None}

backends = pytest.mark.parametrize("backend", HTTP_BACKENDS)


def listing_then(behaviour: Any) -> Any:
    """A CLI run lists the tenant first (to check its key owns the chatbot): answer that normally."""

    def answer(method: str, target: str) -> tuple[Any, ...]:
        if method == "GET" and target.split("?")[0] == "/api/v1/chatbots":
            return ("json", 200, LISTING)
        return behaviour(method, target)  # type: ignore[no-any-return]

    return answer


def engine_call(server: RawServer, backend: str, fn: Any, **options: Any) -> tuple[Any, dict[str, Any]]:
    """Run one ``ex.call`` against ``server``: (its result or the exception it raised, the key's stats)."""

    async def main() -> tuple[Any, dict[str, Any]]:
        base = await server.start()
        request_timeout = options.pop("request_timeout", 0.6)
        try:
            async with Executor({LABEL: KeySpec(KEY, base)}, http=Transport(backend=backend, request_timeout=request_timeout),
                                backoff_base=0.01, **options) as ex:
                try:
                    result: Any = await ex.call(LABEL, fn)
                except Exception as exc:
                    result = exc
                return result, ex.stats()[LABEL]
        finally:
            await server.stop()

    return run(main())


@backends
def test_a_trickling_answer_fails_at_the_deadline_and_is_retried_like_a_lost_one(backend: str) -> None:
    server = RawServer(lambda method, target: ("trickle", 0.05))
    error, stats = engine_call(server, backend, lambda c: c.get_config("cb_1"), max_attempts=3)
    assert isinstance(error, WizChatTimeoutError), repr(error)
    assert "request deadline" in str(error) and "--request-timeout" in str(error)
    assert server.requests[("GET", "/api/v1/chatbots/cb_1/config")] == 3  # tried again, up to max_attempts
    assert stats["retries"] == 2 and stats["failed"] == 1


@backends
def test_an_answer_declared_over_the_cap_fails_without_reading_it(backend: str) -> None:
    # The server declares 17 MiB, sends one byte and goes silent: waiting for the body
    # would end at the (long) deadline instead; the cap ends it at once.
    server = RawServer(lambda method, target: ("declare", 17 * MIB))
    error, stats = engine_call(server, backend, lambda c: c.get_config("cb_1"), request_timeout=600)
    assert isinstance(error, ResponseTooLarge), repr(error)
    assert "larger than the 16 MiB" in str(error) and "Content-Length 17825792" in str(error)
    assert error.code == "response_too_large"
    assert server.requests[("GET", "/api/v1/chatbots/cb_1/config")] == 1  # a permanent error: not retried


@backends
def test_a_streamed_answer_over_the_cap_fails_once_the_cap_is_passed(backend: str) -> None:
    # No Content-Length: 17 MiB in chunks, then silence. Reading stops at the cap.
    server = RawServer(lambda method, target: ("chunks", 17 * MIB))
    error, _ = engine_call(server, backend, lambda c: c.get_config("cb_1"), request_timeout=600)
    assert isinstance(error, ResponseTooLarge), repr(error)
    assert "larger than the 16 MiB" in str(error)


@backends
def test_a_smaller_cap_is_held_and_answers_under_it_pass(backend: str) -> None:
    server = RawServer(lambda method, target: ("json", 200, LIVE))
    doc, _ = engine_call(server, backend, lambda c: c.get_config("cb_1"))
    assert doc.spec.core == {"temperature": 0.3}

    async def main() -> Any:
        base = await server.start()
        try:
            async with Executor({LABEL: KeySpec(KEY, base)}, http=Transport(backend=backend, max_response_bytes=50)) as ex:  # type: ignore[arg-type]
                with pytest.raises(ResponseTooLarge, match="larger than the 50 bytes"):
                    await ex.call(LABEL, lambda c: c.get_config("cb_1"))
        finally:
            await server.stop()

    run(main())


def stop_while_stuck(backend: str, fn: Any) -> tuple[Any, RawServer]:
    """Start ``fn`` against a server that never finishes answering; stop the executor once it is at the server."""
    server = RawServer(lambda method, target: ("trickle", 0.05))

    async def main() -> Any:
        base = await server.start()
        try:
            # A deadline far beyond the test's own timeout: only the stop can end this call.
            async with Executor({LABEL: KeySpec(KEY, base)}, http=Transport(backend=backend, request_timeout=3600),  # type: ignore[arg-type]
                                stop_grace=0.2) as ex:
                task = asyncio.ensure_future(ex.call(LABEL, fn))
                while not server.arrived.is_set():
                    await asyncio.sleep(0.01)
                ex.stop()
                try:
                    return await task
                except Exception as exc:
                    return exc
        finally:
            await server.stop()

    return run(main()), server


@backends
def test_a_stop_abandons_a_stuck_read_after_the_grace(backend: str) -> None:
    error, server = stop_while_stuck(backend, lambda c: c.apply_config("cb_1", DOC, dry_run=True))
    assert isinstance(error, Stopped), repr(error)  # a read changed nothing: simply not done
    assert sum(server.requests.values()) == 1


@backends
def test_a_stop_abandons_a_stuck_write_as_uncertain_and_does_not_retry_it(backend: str) -> None:
    error, server = stop_while_stuck(backend, lambda c: c.apply_config("cb_1", DOC))
    # A write may have reached the server: a timeout (transient: "may have applied"), never Stopped.
    assert isinstance(error, WizChatTimeoutError), repr(error)
    assert "abandoned: the run is stopping" in str(error)
    assert sum(server.requests.values()) == 1


# -- through the CLI --------------------------------------------------------------------------


def workspace(tmp_path: Path, base: str) -> dict[str, str]:
    (tmp_path / "bot.yaml").write_text("spec:\n  core: {temperature: 0.5}\n")
    (tmp_path / "wizsync.yaml").write_text(
        "version: 1\nenvironments:\n"
        f'  staging: {{baseUrl: "{base}"}}\n'
        "tenants:\n  acme: {keys: {staging: {env: WIZCHAT_ACME_STAGING_KEY}}}\n"
        "defaults:\n  sections: [core]\n"
        "chatbots:\n  - {name: bot-1, tenant: acme, ids: {staging: cb_1}, source: {file: bot.yaml}}\n"
    )
    return {"WIZCHAT_ACME_STAGING_KEY": KEY}


@backends
def test_plan_against_a_trickling_server_fails_that_chatbot_at_the_deadline(
    backend: str, fast_backoff: None, secret_scan: Any, tmp_path: Path
) -> None:
    secret_scan.register("api key", KEY)
    server = RawServer(listing_then(lambda method, target: ("trickle", 0.05)))
    with server.threaded() as base:
        env = workspace(tmp_path, base)
        proc = secret_scan.run(["plan", "wizsync.yaml", "--env", "staging", "--json", "--request-timeout", "0.5",
                                "--http-backend", backend, "--journal", str(tmp_path / "j.db")],
                               cwd=tmp_path, env=env, timeout=60)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    (bot,) = json.loads(proc.stdout)["chatbots"]
    assert "request deadline" in bot["error"]["message"], bot
    assert server.requests[("POST", "/api/v1/chatbots/cb_1/apply")] == 4  # 1 try + 3 retries, then failed


def test_plan_refuses_an_oversize_answer_by_its_content_length(secret_scan: Any, tmp_path: Path) -> None:
    secret_scan.register("api key", KEY)
    server = RawServer(listing_then(lambda method, target: ("declare", 64 * MIB)))
    with server.threaded() as base:
        env = workspace(tmp_path, base)
        proc = secret_scan.run(["plan", "wizsync.yaml", "--env", "staging", "--json", "--journal", str(tmp_path / "j.db")],
                               cwd=tmp_path, env=env, timeout=60)
    assert proc.returncode == 1, proc.stderr[-2000:]
    (bot,) = json.loads(proc.stdout)["chatbots"]
    assert bot["error"]["code"] == "response_too_large", bot
    assert "larger than the 16 MiB" in bot["error"]["message"]


def test_ctrl_c_during_a_stuck_apply_ends_the_run_and_records_it_uncertain(secret_scan: Any, tmp_path: Path) -> None:
    """The apply request never gets an answer (deadline 1 h): the first Ctrl-C still ends the run
    after the stop grace; the journal says the apply may have reached the server."""
    secret_scan.register("api key", KEY)

    def behaviour(method: str, target: str) -> tuple[Any, ...]:
        if method == "GET":
            return ("json", 200, LIVE)
        if "dryRun=true" in target:
            return ("json", 200, CHANGE)
        return ("trickle", 0.05)

    server = RawServer(listing_then(behaviour))
    journal = tmp_path / "j.db"
    secret_scan.watch_journal(journal)
    with server.threaded() as base:
        env = wizsync_env(workspace(tmp_path, base))
        proc = subprocess.Popen(
            [sys.executable, "-m", "wizsync.cli", "apply", "wizsync.yaml", "--env", "staging", "--yes", "--json",
             "--request-timeout", "3600", "--journal", str(journal)],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            while server.requests[("POST", "/api/v1/chatbots/cb_1/apply")] < 3:  # plan, fresh plan, the apply
                assert proc.poll() is None, proc.communicate()
                server.arrived.clear()
                server.arrived.wait(1)
            os.kill(proc.pid, signal.SIGINT)
            out, err = proc.communicate(timeout=60)  # waiting on the stuck request would take an hour
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    secret_scan.record("apply stdout", out)
    secret_scan.record("apply stderr", err)
    assert proc.returncode == 1, err[-2000:]
    assert "Traceback" not in err
    doc = json.loads(out)
    assert doc["status"] == "interrupted"
    (item,) = doc["chatbots"]
    assert item["state"] == "failed", item
    assert "abandoned: the run is stopping" in item["error"]["message"], item
    assert "may have reached the server" in item["error"]["message"], item
    assert item["applied_ops"], item  # rollback sees what it may have changed
    assert server.requests[("POST", "/api/v1/chatbots/cb_1/apply")] == 3  # the stuck apply was not sent again
