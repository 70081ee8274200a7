"""Fault storm: `wizsync apply` of a 200-chatbot fleet (4 keys) while the emulator answers 10% 5xx,
drops 5% of connections and forces bursts of 429s on two keys (at the start and mid-run).

- every chatbot ends `applied` on the server (a run whose retries ran out leaves items `failed`;
  `wizsync resume` finishes them, as a user would);
- every retry and every 429 is counted: the journal's per-item counters, its `request.retry` /
  `request.throttled` / `request.failed` events and the emulator's own per-key counts agree
  exactly (each 5xx or dropped connection the server produced is a retry or a final failure
  in the journal, each 429 a throttle or a final failure, each request one attempt);
- nothing is reported `applied` that the server did not apply: each applied item's
  `revision_after` is the server's revision, the server holds the desired document, and each
  chatbot was changed exactly once (revision + 1: a fault never hits after the server applied,
  so no apply may count twice).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import generated_fleet as fleet
from apply_fleet import query

from wizchat_management import WizChatClient
from wizchat_management.emulator import EmulatorServer

N, K = 200, 4
ERROR_RATE, DROP_RATE = 0.10, 0.05
TRANSIENT = ("500", "503", "dropped")


def server_counts(emu: EmulatorServer) -> dict[str, int]:
    total = emu.stats()["total"]
    by = total["byStatus"]
    return {"requests": total["requests"], "transient": sum(by.get(s, 0) for s in TRANSIENT),
            "throttled": total["rateLimited"], "applies": total["applies"]}


def journal_counts(journal: Path) -> dict[str, int]:
    items = query(journal, "SELECT SUM(requests) AS r, SUM(retries) AS rt, SUM(throttled) AS th FROM items")[0]
    events: dict[str, int] = {e["kind"]: e["n"] for e in query(journal, "SELECT kind, COUNT(*) AS n FROM events GROUP BY kind")}
    failed = [json.loads(e["data"]) for e in query(journal, "SELECT data FROM events WHERE kind = 'request.failed'")]
    # Requests no chatbot took (listings, the wrong-target proof) are 'requests.other' events.
    other = [json.loads(e["data"]) for e in query(journal, "SELECT data FROM events WHERE kind = 'requests.other'")]
    return {
        "requests": (items["r"] or 0) + sum(o["requests"] for o in other),
        "retries": (items["rt"] or 0) + sum(o["retries"] for o in other),
        "throttled": (items["th"] or 0) + sum(o["throttled"] for o in other),
        "retry_events": events.get("request.retry", 0),
        "throttled_events": events.get("request.throttled", 0),
        "failed_transient": sum(1 for f in failed if f.get("error_kind") == "transient"),
        "failed_throttled": sum(1 for f in failed if f.get("error_kind") == "throttled"),
    }


def test_apply_through_a_fault_storm_applies_everything_once_and_counts_every_retry(
    fast_backoff: None, secret_scan: Any, tmp_path: Path
) -> None:
    with EmulatorServer(seed=fleet.seed(N, K), error_rate=ERROR_RATE, drop_rate=DROP_RATE, fault_seed=7) as emu:
        secret_scan.register_all(emu.keys)
        fleet.write(tmp_path, emu.base_url, N, K)
        journal = tmp_path / "journal.db"
        secret_scan.watch_journal(journal)
        before = {cb.id: cb.revision for cb in emu.state.chatbots.values()}
        emu.force_429(fleet.label(0), count=6)
        emu.force_429(fleet.label(1), count=3)
        # a second burst mid-run, on another key
        timer = threading.Timer(1.0, lambda: emu.force_429(fleet.label(2), count=5))
        timer.start()
        try:
            args = ["--env", fleet.ENV, "--journal", str(journal), "--json"]
            proc = secret_scan.run(["apply", "wizsync.yaml", *args, "--yes", "--batches", "25%,100%",
                                    "--max-failures", "100%"], cwd=tmp_path, env=emu.key_env, timeout=120)
        finally:
            timer.cancel()
        assert "Traceback" not in proc.stderr
        assert proc.returncode in (0, 1), proc.stderr[-2000:]
        doc = json.loads(proc.stdout)
        runs = [doc["run_id"]]
        # Retries that ran out leave items failed (never wrongly applied); resume finishes them.
        for _ in range(3):
            if doc["status"] == "completed":
                break
            assert doc["status"] == "failed", doc["status"]
            assert set(doc["run"]["counts"]) <= {"applied", "failed"}, doc["run"]["counts"]
            proc = secret_scan.run(["resume", runs[0], "--journal", str(journal), "--json", "--yes"], cwd=tmp_path,
                                   env=emu.key_env, timeout=120)
            assert "Traceback" not in proc.stderr
            doc = json.loads(proc.stdout)
        assert doc["status"] == "completed", doc["run"]

        server = server_counts(emu)  # before the checks below add requests of their own
        # every chatbot applied, once, with the desired document, as the journal says
        states = query(journal, "SELECT name, chatbot_id, state, revision_after FROM items WHERE run_id = ?", [runs[0]])
        assert len(states) == N and {s["state"] for s in states} == {"applied"}, sorted({s["state"] for s in states})
        clients = {t: WizChatClient(emu.keys[fleet.label(t)], base_url=emu.base_url) for t in range(K)}
        emu.set_faults(clear=True)
        try:
            for s in states:
                t = int(s["chatbot_id"].split("_")[1][1:])
                live = clients[t].get_config(s["chatbot_id"])
                core = live.model_dump(mode="json", by_alias=True)["spec"]["core"]
                assert core["temperature"] == fleet.WANT_TEMPERATURE and core["name"] == s["name"].split("/", 1)[1], (s["name"], core)  # ${chatbot}: the bare name
                assert live.metadata is not None and live.metadata.revision == before[s["chatbot_id"]] + 1, s
                assert s["revision_after"] == live.metadata.revision, s
        finally:
            for c in clients.values():
                c.close()

        # the storm really happened, and every fault is accounted for in the journal
        ours = journal_counts(journal)
        assert server["applies"] == N
        assert server["transient"] >= 0.08 * server["requests"], server
        assert server["throttled"] >= 6 + 3, server
        assert ours["requests"] == server["requests"], (ours, server)
        assert ours["retry_events"] == ours["retries"], ours
        assert ours["throttled_events"] == ours["throttled"], ours
        assert ours["retries"] + ours["failed_transient"] == server["transient"], (ours, server)
        assert ours["throttled"] + ours["failed_throttled"] == server["throttled"], (ours, server)
        secret_scan.check()
