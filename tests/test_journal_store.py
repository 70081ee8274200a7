"""The journal as a library, on real SQLite files: round trips, states, bulk plans, secret guard."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from wizsync.journal import (
    SCHEMA_VERSION,
    Journal,
    JournalError,
    SecretInJournalError,
    UnknownItemError,
    UnknownRunError,
    default_journal_path,
)
from wizsync.journal.store import PLAN_CHUNK

MANIFEST_HASH = "sha256:m1"


@pytest.fixture()
def journal(tmp_path: Path) -> Journal:
    j = Journal.open(tmp_path / ".wizsync" / "journal.db")
    yield j
    j.close()


def start(journal: Journal, command: str = "apply", **kw) -> str:
    return journal.start_run(command, "production", "/srv/fleet/wizsync.yaml", MANIFEST_HASH, kw or {"batches": [1, "10%", "100%"]})


def test_default_path_is_beside_the_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "fleet" / "wizsync.yaml"
    assert default_journal_path(manifest) == (tmp_path / "fleet" / ".wizsync" / "journal.db").resolve()


def test_open_creates_directory_wal_schema_and_reopens_idempotently(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "journal.db"
    with Journal.open(path) as j:
        assert j.db.journal_mode == "wal"
        assert j.db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert set(j.db.table_names()) >= {"runs", "items", "events", "snapshots"}
        run_id = start(j)
    with Journal.open(path) as j:  # second open migrates nothing and keeps data
        assert j.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert j.get_run(run_id).status == "running"


def test_read_only_open_of_a_missing_journal_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="no journal at"):
        Journal.open(tmp_path / "nope.db", create=False)
    assert not (tmp_path / "nope.db").exists()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    Journal.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(JournalError, match="newer than this wizsync"):
        Journal.open(path)


def test_run_round_trip_and_listing(journal: Journal) -> None:
    plan = journal.start_run("plan", "staging", "/srv/m.yaml", "h0", {"selectors": ["tier=gold"]})
    apply_ = start(journal)
    rollback = journal.start_run("rollback", "production", "/srv/fleet/wizsync.yaml", MANIFEST_HASH, {}, parent_run=apply_)
    run = journal.get_run(apply_)
    assert run.command == "apply" and run.environment == "production"
    assert run.manifest_path == "/srv/fleet/wizsync.yaml" and run.manifest_hash == MANIFEST_HASH
    assert run.options == {"batches": [1, "10%", "100%"]}
    assert run.status == "running" and run.finished_at is None and run.pid and run.host
    assert run.started_at.endswith("Z") and "T" in run.started_at
    assert journal.get_run(rollback).parent_run == apply_
    assert [r.id for r in journal.runs()] == [rollback, apply_, plan]
    assert [r.id for r in journal.runs(limit=1)] == [rollback]
    assert [r.id for r in journal.runs(environment="staging")] == [plan]

    journal.finish_run(apply_, "halted", {"applied": 3, "failed": 2}, error="2 failures > budget 1")
    run = journal.get_run(apply_)
    assert run.status == "halted" and run.counts == {"applied": 3, "failed": 2}
    assert run.error == "2 failures > budget 1" and run.finished_at >= run.started_at

    before = journal.reopen_run(apply_, session=2)
    assert before.status == "halted"
    assert journal.get_run(apply_).status == "running" and journal.get_run(apply_).finished_at is None
    kinds = [e.kind for e in journal.events(apply_)]
    assert kinds == ["run.start", "run.finish", "run.resumed"]
    journal.set_run_status(apply_, "interrupted")
    assert journal.get_run(apply_).status == "interrupted"


def test_unknown_ids_name_the_run_and_suggest_runs(journal: Journal) -> None:
    with pytest.raises(UnknownRunError, match=r"r20990101-000000-0000.*wizsync runs"):
        journal.get_run("r20990101-000000-0000")
    with pytest.raises(UnknownRunError):
        journal.start_run("rollback", "e", None, None, {}, parent_run="rnope")
    run_id = start(journal)
    with pytest.raises(UnknownItemError, match="ghost"):
        journal.mark_applying(run_id, "ghost")
    with pytest.raises(UnknownRunError):
        journal.items("rnope")


def test_item_lifecycle_write_ahead_and_results(journal: Journal) -> None:
    run_id = start(journal)
    journal.add_items(run_id, [
        {"name": "support-bot", "tenant": "acme", "chatbot_id": "cb_1", "batch": 0, "position": 0},
        {"name": "sales-bot", "tenant": "acme", "chatbot_id": "cb_2", "batch": 1, "position": 1},
        {"name": "faq-bot", "tenant": "globex", "chatbot_id": "cb_3", "batch": 1, "position": 2},
    ])
    assert [i.state for i in journal.items(run_id)] == ["pending"] * 3
    journal.record_plans(run_id, [
        {"name": "support-bot", "plan_summary": {"create": 1, "update": 0, "delete": 0, "noop": 4},
         "plan_ops": [{"op": "create", "section": "faq", "key": "q1"}], "doc_hash": "d1"},
        {"name": "sales-bot", "plan_summary": {"create": 0, "update": 0, "delete": 0, "noop": 5}, "doc_hash": "d2"},
    ])
    # A plan row updates only what it names: tenant, batch... survive the upsert.
    support = journal.item(run_id, "support-bot")
    assert support.state == "planned" and support.tenant == "acme" and support.batch == 0 and support.planned_at
    assert support.plan_ops == [{"op": "create", "section": "faq", "key": "q1"}]

    assert journal.mark_applying(run_id, "support-bot", revision_before=7) == 1
    assert journal.item(run_id, "support-bot").state == "applying"
    journal.record_result(run_id, "support-bot", "failed", error_code="invalid_config", error_message="bad",
                          error_section="faq", error_key="q1", applied_ops=[{"section": "persona"}],
                          requests=2, throttled=1, retries=1)
    failed = journal.item(run_id, "support-bot")
    assert (failed.state, failed.error_code, failed.error_section, failed.error_key) == ("failed", "invalid_config", "faq", "q1")
    assert failed.applied_ops == [{"section": "persona"}] and failed.duration_ms is not None

    # Retry: a second attempt clears the error, counts add up.
    assert journal.mark_applying(run_id, "support-bot") == 2
    journal.record_result(run_id, "support-bot", "applied", revision_after=8, requests=1)
    done = journal.item(run_id, "support-bot")
    assert (done.state, done.attempts, done.requests, done.throttled, done.retries) == ("applied", 2, 3, 1, 1)
    assert done.error_code is None and done.revision_before == 7 and done.revision_after == 8
    with pytest.raises(JournalError, match="already applied"):
        journal.mark_applying(run_id, "support-bot")

    journal.record_result(run_id, "sales-bot", "unchanged")
    journal.update_item(run_id, "faq-bot", state="skipped", error_message="halted before its batch")
    assert [i.name for i in journal.items(run_id, states=["applied", "unchanged"])] == ["support-bot", "sales-bot"]
    assert journal.item_counts(run_id) == {"applied": 1, "unchanged": 1, "skipped": 1}
    with pytest.raises(ValueError):
        journal.update_item(run_id, "faq-bot", state="exploded")
    with pytest.raises(ValueError, match="unknown item field"):
        journal.update_item(run_id, "faq-bot", colour="red")

    kinds = [(e.item, e.kind) for e in journal.events(run_id) if e.item]
    assert kinds == [
        ("support-bot", "item.applying"), ("support-bot", "item.failed"),
        ("support-bot", "item.applying"), ("support-bot", "item.applied"),
        ("sales-bot", "item.unchanged"), ("faq-bot", "item.state"),
    ]
    failed_event = journal.events(run_id, item="support-bot", kinds=["item.failed"])[0]
    assert failed_event.data["error_section"] == "faq" and failed_event.data["throttled"] == 1


def test_add_items_again_keeps_states(journal: Journal) -> None:
    run_id = start(journal)
    journal.add_items(run_id, [{"name": "a", "batch": 0}])
    journal.mark_applying(run_id, "a")
    journal.add_items(run_id, [{"name": "a", "batch": 0}, {"name": "b", "batch": 0}])
    assert {i.name: i.state for i in journal.items(run_id)} == {"a": "applying", "b": "pending"}


def test_add_items_streams_a_large_fleet_in_one_transaction(journal: Journal) -> None:
    # Rows come from a generator and are prepared a chunk at a time; they still land all or none.
    run_id = start(journal)
    n = 3 * PLAN_CHUNK + 7
    assert journal.add_items(run_id, ({"name": f"bot-{i}", "position": i} for i in range(n))) == n
    assert journal.item_counts(run_id) == {"pending": n}
    other = start(journal)
    rows = ({"name": f"bot-{i}", "colour": "red"} if i == 2 * PLAN_CHUNK else {"name": f"bot-{i}"} for i in range(n))
    with pytest.raises(ValueError, match="unknown item field"):
        journal.add_items(other, rows)
    assert journal.items(other) == []  # the chunks before the bad row were rolled back with it


def test_events_are_append_only(journal: Journal) -> None:
    run_id = start(journal)
    event_id = journal.event(run_id, "batch.start", batch=0, size=1)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        journal.db.execute("UPDATE events SET kind = 'x' WHERE id = ?", [event_id])
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        journal.db.execute("DELETE FROM events")
    assert journal.events(run_id)[-1].data == {"batch": 0, "size": 1}


def test_snapshots_first_one_wins(journal: Journal) -> None:
    run_id = start(journal)
    doc = {"spec": {"persona": {"name": "Ava"}, "secrets": {"crm": "<redacted>"}}, "revision": 3}
    assert journal.save_snapshot(run_id, "bot", doc, 3, tenant="acme", chatbot_id="cb_1") is True
    # A resumed run must not replace the pre-run config with its own first attempt's result.
    assert journal.save_snapshot(run_id, "bot", {"spec": {}}, 4) is False
    snap = journal.snapshot(run_id, "bot")
    assert snap is not None and snap.document == doc and snap.revision == 3 and snap.chatbot_id == "cb_1"
    assert journal.save_snapshot(run_id, "bot", {"spec": {}}, 4, replace=True) is True
    assert [s.revision for s in journal.snapshots(run_id)] == [4]
    assert journal.snapshot(run_id, "other") is None


def test_bulk_plan_of_5000_chatbots_commits_in_chunks(journal: Journal) -> None:
    run_id = start(journal, command="plan")
    rows = (
        {"name": f"bot-{i:05d}", "tenant": f"t{i % 3}", "batch": i // 1000, "position": i,
         "plan_summary": {"create": 0, "update": i % 2, "delete": 0, "noop": 3},
         "plan_ops": [{"op": "update", "path": f"persona.greeting#{i}"}], "doc_hash": f"h{i}"}
        for i in range(5000)
    )
    assert journal.record_plans(run_id, rows, chunk_size=500) == 5000
    assert journal.item_counts(run_id) == {"planned": 5000}
    assert len(journal.events(run_id, kinds=["items.planned"])) == 10  # one commit per 500 rows
    items = journal.items(run_id)
    assert [i.position for i in items] == list(range(5000))
    assert items[4321].plan_ops == [{"op": "update", "path": "persona.greeting#4321"}]


def test_secret_guard_finds_any_of_many_keys_that_share_a_prefix(tmp_path: Path) -> None:
    # A wide fleet registers one key per tenant, all alike at the start (not shaped like a
    # WizChat key here, so only the registered values can catch them).
    keys = [f"tenant-key-{i:03d}-" + "q" * 12 for i in range(200)]
    with Journal.open(tmp_path / "j.db") as j:
        j.forbid(keys)
        run_id = start(j)
        for leaked in (keys[0], keys[137], keys[-1]):
            with pytest.raises(SecretInJournalError):
                j.event(run_id, "note", text=f"tenant-key-1 then {leaked} at the end")
        j.event(run_id, "note", text="tenant-key-137-" + "q" * 11)  # one character short: not a key
        assert len(j.events(run_id, kinds=["note"])) == 1


def test_secret_guard_refuses_registered_secret_and_api_keys_without_echo(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    secret = "Sup3r-s3cret-CRM-token"
    api_key = "wpk_live_" + "Ab3dEf6hIj9kLm2nOp5qRs8t"
    with Journal.open(path) as j:
        j.forbid([secret, None, ""])
        run_id = start(j)
        j.add_items(run_id, [{"name": "bot"}])
        attempts = [
            lambda: j.start_run("apply", "prod", None, None, {"token": secret}),
            lambda: j.event(run_id, "note", "bot", text=f"header was Bearer {api_key}"),
            lambda: j.update_item(run_id, "bot", error_message=f"echo: {secret}"),
            lambda: j.record_plans(run_id, [{"name": "bot", "plan_ops": [{"value": secret}]}]),
            lambda: j.save_snapshot(run_id, "bot", {"spec": {"secrets": {"crm": secret}}}, 1),
            lambda: j.record_result(run_id, "bot", "failed", error_message="key wpk_test_" + "x" * 20),
            lambda: j.event(run_id, "note", quoted=f'he said "{secret}"'),
        ]
        for attempt in attempts:
            with pytest.raises(SecretInJournalError) as info:
                attempt()
            message = str(info.value)
            assert secret not in message and "wpk_live_Ab3" not in message and "x" * 20 not in message
            assert "refused" in message
        # Masked values pass.
        j.save_snapshot(run_id, "bot", {"spec": {"secrets": {"crm": "<redacted>"}}}, 1)
        j.record_plans(run_id, [{"name": "bot", "plan_ops": [{"value": "<secret:CRM_TOKEN>"}]}])
        assert j.item(run_id, "bot").state == "planned"
        assert j.integrity_check() == ["ok"]
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert secret.encode() not in stored and b"wpk_live_" not in stored and b"wpk_test_" not in stored


def test_connection_belongs_to_its_thread(journal: Journal) -> None:
    run_id = start(journal)
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            journal.event(run_id, "from-thread")
        except BaseException as exc:  # noqa: BLE001 - captured for the assert
            errors.append(exc)

    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert errors and isinstance(errors[0], sqlite3.ProgrammingError)


def test_failed_write_rolls_back_the_whole_transaction(journal: Journal) -> None:
    run_id = start(journal)
    journal.add_items(run_id, [{"name": "a"}])
    with pytest.raises(RuntimeError):
        with journal.write():
            journal.update_item(run_id, "a", state="failed")
            journal.event(run_id, "half")
            raise RuntimeError("crash mid-transaction")
    assert journal.item(run_id, "a").state == "pending"
    assert [e.kind for e in journal.events(run_id)] == ["run.start"]


def test_row_writes_join_the_open_transaction(journal: Journal) -> None:
    # add_items/save_snapshot write rows through journal/database.py's upserts: they must not commit early.
    run_id = start(journal)
    with pytest.raises(RuntimeError):
        with journal.write():
            journal.add_items(run_id, [{"name": "a"}, {"name": "b"}])
            journal.save_snapshot(run_id, "a", {"spec": {}}, 1)
            raise RuntimeError("crash mid-transaction")
    assert journal.items(run_id) == [] and journal.snapshots(run_id) == []


def test_caller_chosen_run_id_for_lock_first_flows(journal: Journal) -> None:
    from wizsync.journal import RunLock, new_run_id

    run_id = new_run_id()
    with RunLock.acquire(journal.path, run_id, environment="production", manifest_path="/srv/m.yaml"):
        assert journal.start_run("apply", "production", "/srv/m.yaml", "h", {}, run_id=run_id) == run_id
    with pytest.raises(JournalError, match="already exists"):
        journal.start_run("apply", "production", "/srv/m.yaml", "h", {}, run_id=run_id)
    with pytest.raises(ValueError):
        journal.finish_run(run_id, "running")
