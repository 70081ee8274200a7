"""The server goes away mid-apply: the emulator (a real subprocess with `--state FILE`) is killed with
SIGKILL while `wizsync apply` runs, and restarted on the same port from the same state file.

- a short outage: the run's retries (connection refused → backoff) carry it over; if a chatbot's
  retries ran out first, it is `failed`, never `applied`, and `wizsync resume` finishes the run;
- a long outage: the chatbots in flight run out of retries, the run halts cleanly at the failure
  budget (exit 1, status `halted`, nothing marked applied that the server did not keep), and
  `wizsync resume` completes it.

Either way every chatbot ends with the desired document, changed exactly once (revision + 1): an
apply the server committed just before it died is seen as done by the resume's fresh plan and is
not applied a second time.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import generated_fleet as fleet
from apply_fleet import query, wait_until
from secret_scan import wizsync_env

from wizchat_management import WizChatClient
from wizchat_management.emulator import EmulatorProcess

N, K = 60, 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def emulator(state: Path, seed: Path, port: int, token: str) -> EmulatorProcess:
    args = ["--seed", str(seed), "--state", str(state), "--latency-ms", "20", "--port", str(port)]
    return EmulatorProcess(args, admin_token=token).start()


def applied(journal: Path) -> int:
    return len(query(journal, "SELECT name FROM items WHERE state = 'applied'"))


def check_server(emu: EmulatorProcess, keys: dict[str, str], journal: Path, run_id: str) -> None:
    rows = query(journal, "SELECT name, chatbot_id, state, revision_after FROM items WHERE run_id = ?", [run_id])
    assert len(rows) == N and {r["state"] for r in rows} == {"applied"}, sorted({r["state"] for r in rows})
    clients = {t: WizChatClient(keys[fleet.env_name(t)], base_url=emu.base_url) for t in range(K)}
    try:
        for r in rows:
            t = int(r["chatbot_id"].split("_")[1][1:])
            doc = clients[t].get_config(r["chatbot_id"]).model_dump(mode="json", by_alias=True)
            assert doc["spec"]["core"]["temperature"] == fleet.WANT_TEMPERATURE, r
            assert doc["metadata"]["revision"] == 1, r  # seeded at 0, applied once
            assert r["revision_after"] == 1, r
    finally:
        for c in clients.values():
            c.close()


def run_with_outage(tmp_path: Path, secret_scan: Any, outage: float, extra: list[str]) -> tuple[dict[str, Any], Path, EmulatorProcess, dict[str, str]]:
    seed = fleet.write_seed(tmp_path / "seed.json", N, K)
    state, port, token = tmp_path / "emu.db", free_port(), "wza_restart-test-admin-token"
    emu = emulator(state, seed, port, token)
    keys = emu.key_env
    secret_scan.register_all(keys)
    fleet.write(tmp_path, emu.base_url, N, K)
    journal = tmp_path / "journal.db"
    secret_scan.watch_journal(journal)
    child = subprocess.Popen(
        [sys.executable, "-m", "wizsync.cli", "apply", "wizsync.yaml", "--env", fleet.ENV, "--journal", str(journal),
         "--yes", "--json", "--concurrency", "3", *extra],
        cwd=tmp_path, env=wizsync_env(keys), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: journal.exists() and applied(journal) >= 10, timeout=30, what="10 chatbots applied")
        assert child.poll() is None, "the apply finished before the server could be killed"
        os.kill(emu.pid, signal.SIGKILL)
        emu.proc.wait(10)  # type: ignore[union-attr]
        emu.stop()
        time.sleep(outage)
        emu = emulator(state, seed, port, token)  # same port, same state file
        out, err = child.communicate(timeout=90)
        secret_scan.record("apply stdout", out)
        secret_scan.record("apply stderr", err)
        assert "Traceback" not in err
        doc = json.loads(out)
        assert (child.returncode == 0) == (doc["status"] == "completed"), (child.returncode, doc["status"])
    except BaseException:
        emu.stop()  # the caller stops it once it is returned; a failure here must not leave it running
        raise
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    return doc, journal, emu, keys


def finish_with_resume(doc: dict[str, Any], journal: Path, tmp_path: Path, keys: dict[str, str], secret_scan: Any) -> dict[str, Any]:
    # whatever did not make it is failed (or still pending), never wrongly applied
    assert set(doc["run"]["counts"]) <= {"applied", "failed", "pending", "planned"}, doc["run"]["counts"]
    proc = secret_scan.run(["resume", doc["run_id"], "--journal", str(journal), "--json", "--yes"], cwd=tmp_path,
                           env=keys, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_a_short_outage_is_ridden_out_by_retries_or_resumed(secret_scan: Any, tmp_path: Path) -> None:
    doc, journal, emu, keys = run_with_outage(tmp_path, secret_scan, 0.2, ["--max-failures", "100%"])
    try:
        retried = query(journal, "SELECT data FROM events WHERE kind = 'request.retry'")
        assert retried, "the outage never showed as a retry"
        assert any("Connect" in json.loads(r["data"])["error"] or "connection" in json.loads(r["data"])["error"].lower()
                   for r in retried), retried[:3]
        if doc["status"] != "completed":
            doc = finish_with_resume(doc, journal, tmp_path, keys, secret_scan)
        assert doc["status"] == "completed"
        check_server(emu, keys, journal, doc["run_id"])
    finally:
        emu.stop()
    secret_scan.check()


def test_a_long_outage_halts_cleanly_and_resume_completes(secret_scan: Any, tmp_path: Path) -> None:
    # 4 s down (+ the restart) outlasts every call's retries (0.5 + 1 + 2 s at most): the run must halt
    doc, journal, emu, keys = run_with_outage(tmp_path, secret_scan, 4.0, ["--batches", "20%,100%", "--max-failures", "0"])
    try:
        assert doc["status"] == "halted", doc["status"]
        failed = query(journal, "SELECT name, error_code FROM items WHERE state = 'failed'")
        assert failed and {f["error_code"] for f in failed} == {"connection_error"}, failed
        doc = finish_with_resume(doc, journal, tmp_path, keys, secret_scan)
        assert doc["status"] == "completed"
        check_server(emu, keys, journal, doc["run_id"])
    finally:
        emu.stop()
    secret_scan.check()
