"""The journal and the run lock across real processes: kill -9, concurrent readers, lock holders."""

from __future__ import annotations

import queue
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wizsync.journal import Journal, JournalError, LockTarget, RunLock, RunLockedError, lock_holder

CHILD = Path(__file__).parent / "helpers" / "journal_child.py"
MANIFEST = "/srv/fleet/wizsync.yaml"
URL = "http://127.0.0.1:8080"


class Child:
    """A journal_child.py process whose stdout lines arrive on a queue (readline with a timeout)."""

    def __init__(self, *args: object) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), *map(str, args)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def expect(self, prefix: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            if line is None:
                stderr = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(f"child ended before {prefix!r}: {stderr}")
            if line.startswith(prefix):
                return line

    def kill9(self) -> None:
        self.proc.kill()  # SIGKILL on POSIX: no cleanup code runs in the child
        self.proc.wait(timeout=10)


@pytest.fixture()
def children() -> Iterator[list[Child]]:
    spawned: list[Child] = []
    yield spawned
    for child in spawned:
        if child.proc.poll() is None:
            child.kill9()


def spawn(children: list[Child], *args: object) -> Child:
    child = Child(*args)
    children.append(child)
    return child


def new_run(path: Path, names: list[str]) -> str:
    with Journal.open(path) as j:
        run_id = j.start_run("apply", "production", MANIFEST, "mh", {"batches": [1, "100%"]})
        j.add_items(run_id, [{"name": n, "batch": 0, "position": i} for i, n in enumerate(names)])
    return run_id


def test_kill_9_after_write_ahead_mark_leaves_item_applying(tmp_path: Path, children: list[Child]) -> None:
    db = tmp_path / ".wizsync" / "journal.db"
    run_id = new_run(db, ["support-bot", "sales-bot"])
    child = spawn(children, "applying", db, run_id, "support-bot")
    child.expect("ready")
    child.kill9()

    with Journal.open(db) as j:
        assert j.integrity_check() == ["ok"]
        item = j.item(run_id, "support-bot")
        assert (item.state, item.attempts, item.doc_hash) == ("applying", 1, "h-new")
        assert j.item(run_id, "sales-bot").state == "pending"
        assert [(e.kind, e.item) for e in j.events(run_id)] == [("run.start", None), ("item.applying", "support-bot")]
        assert j.get_run(run_id).status == "running"  # nobody marked it: resume must treat it as interrupted
        assert lock_holder(db, run_id) is None


@pytest.mark.parametrize("trial", range(5))
def test_kill_9_at_random_moments_during_a_burst(tmp_path: Path, children: list[Child], trial: int) -> None:
    rng = random.Random(trial)
    db = tmp_path / "journal.db"
    names = [f"bot{i:03d}" for i in range(200)]
    run_id = new_run(db, names)
    child = spawn(children, "burst", db, run_id, len(names))
    for _ in range(rng.randint(1, 25)):
        child.expect("step")
    time.sleep(rng.uniform(0, 0.03))  # land somewhere inside the next item's transactions
    child.kill9()

    with Journal.open(db) as j:
        assert j.integrity_check() == ["ok"]
        states = [i.state for i in j.items(run_id)]
        # Items are processed in order: applied..., at most one in flight, pending...
        done = states.count("applied")
        assert states[:done] == ["applied"] * done
        assert all(s == "pending" for s in states[done + 1 :])
        assert states[done] in ("applying", "pending") if done < len(states) else True
        # Every state change committed together with its event: the last item event matches the state.
        for item in j.items(run_id):
            item_events = [e.kind for e in j.events(run_id, item=item.name) if e.kind.startswith("item.")]
            expected = {"pending": [], "applying": ["item.applying"], "applied": ["item.applying", "item.applied"]}
            assert item_events == expected[item.state], item.name
            snap = j.snapshot(run_id, item.name)
            assert item.state == "pending" or (snap is not None and snap.document == {"spec": {"i": int(item.name[3:])}})

        # What resume does with it: the same run continues; snapshots taken earlier are kept.
        before_kill = {s.name: s.document for s in j.snapshots(run_id)}
        j.reopen_run(run_id, reason="test")
        for item in j.items(run_id, states=["pending", "applying"]):
            j.save_snapshot(run_id, item.name, {"spec": {"after": "first attempt"}}, 99)
            j.mark_applying(run_id, item.name)
            j.record_result(run_id, item.name, "applied")
        j.finish_run(run_id, "completed")
        assert j.item_counts(run_id) == {"applied": len(names)}
        after = {s.name: s.document for s in j.snapshots(run_id)}
        assert before_kill and all(after[name] == doc for name, doc in before_kill.items())
        assert j.integrity_check() == ["ok"]


def test_reader_does_not_block_the_writer(tmp_path: Path, children: list[Child]) -> None:
    db = tmp_path / "journal.db"
    run_id = new_run(db, ["a"])
    with Journal.open(db) as reader:
        reader.db.execute("BEGIN")  # a `wizsync show` in the middle of reading
        before = reader.db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        # The writer's busy timeout is tiny: any wait on the reader would fail it.
        writer = spawn(children, "writes", db, run_id, 50, 0.05)
        writer.expect("done")
        assert writer.proc.wait(timeout=10) == 0
        assert reader.db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == before  # snapshot isolation
        reader.db.execute("COMMIT")
        assert reader.db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == before + 50


def test_writer_mid_transaction_does_not_block_readers(tmp_path: Path, children: list[Child]) -> None:
    db = tmp_path / "journal.db"
    run_id = new_run(db, ["a", "b"])
    holder = spawn(children, "hold-write", db)
    holder.expect("ready")
    with Journal.open(db, create=False, timeout=0.1) as reader:
        assert reader.get_run(run_id).status == "running"
        assert [i.name for i in reader.items(run_id)] == ["a", "b"]
        assert reader.events(run_id)[0].kind == "run.start"
        # ... while a second writer does wait for it (and here gives up after its busy timeout).
        with pytest.raises(JournalError, match="busy"):
            reader.event(run_id, "blocked")


def test_run_lock_is_one_rollout_per_target_whatever_the_journal_and_frees_on_kill_9(
    tmp_path: Path, children: list[Child], lock_dir: Path
) -> None:
    db = tmp_path / ".wizsync" / "journal.db"
    other_db = tmp_path / "elsewhere" / "journal.db"  # another --journal, e.g. a copy of the manifest's folder
    run_id = "r20261125-211530-ab12"
    holder = spawn(children, "lock", db, run_id, "production", URL, "acme,globex")
    holder.expect("locked")
    pid = holder.proc.pid

    with pytest.raises(RunLockedError) as same_run:
        RunLock.acquire(db, run_id, environment="production", command="resume")
    message = str(same_run.value)
    assert run_id in message and f"process {pid}" in message and "released automatically" in message
    assert same_run.value.holder["pid"] == pid
    assert lock_holder(db, run_id)["pid"] == pid  # type: ignore[index]
    assert lock_holder(other_db, run_id) is None  # run ids are per journal

    # Another run on one of its targets refuses, from any journal, whatever the URL's spelling.
    for journal, url in ((db, URL), (other_db, URL + "/"), (other_db, URL.upper().replace("HTTP", "http"))):
        with pytest.raises(RunLockedError, match=rf"tenant 'globex' in 'production'.*{run_id}.*process {pid}"):
            RunLock.acquire(journal, "r20261125-211531-cd34", environment="production",
                            targets=[LockTarget.of(url, "globex", "production"), LockTarget.of(url, "initech", "production")])
    # Other targets are independent (another tenant, environment or API), and a refused attempt held nothing.
    free = [LockTarget.of(URL, "initech", "production"), LockTarget.of(URL, "acme", "staging"),
            LockTarget.of("http://127.0.0.1:1", "acme", "production")]
    with RunLock.acquire(other_db, "r20261125-211531-cd34", environment="production", targets=free) as other:
        assert other.held
        modes = {p.name: p.stat().st_mode & 0o777 for p in lock_dir.iterdir()}
        assert modes and set(modes.values()) == {0o600}, modes

    holder.kill9()
    # Not stale: the kernel released it; the very next non-blocking acquire succeeds.
    assert lock_holder(db, run_id) is None
    lock = RunLock.acquire(db, run_id, environment="production", targets=[LockTarget.of(URL, "acme", "production")])
    assert lock.held and lock.holder["pid"] != pid
    lock.release()
    assert not lock.held
    # Released locks take their files with them; the dead holder's were cleared by the probe and the acquire.
    leftover = sorted(p.name for p in lock_dir.iterdir())
    assert len(leftover) <= 2, leftover  # at most globex's target lock (+ sidecar) the killed holder left
    with RunLock.acquire(db, "r20261125-211533-gh78", environment="production",
                         targets=[LockTarget.of(URL, "globex", "production")]):
        pass
    assert list(lock_dir.iterdir()) == []
