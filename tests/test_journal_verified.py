"""A journal wizsync closed cleanly is not scanned again (``PRAGMA quick_check`` is O(size)); any other
state of the file is: one changed since, one a killed run left, one with transactions still in its WAL,
one whose stamp is not wizsync's. The damaged one is still refused."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wizsync.journal import Journal, JournalDamagedError
from wizsync.journal import store, verified
from wizsync.journal.verified import Stamp, matches

BASE = Stamp(size=4096, mtime_ns=1_700_000_000_000_000_000, ino=12, dev=3, header="ab" * 32)


@pytest.mark.parametrize(
    ("recorded", "now", "wal_bytes", "skip"),
    [
        (BASE, BASE, None, True),  # as left, no WAL file
        (BASE, BASE, 0, True),  # an empty WAL (a reader opened it): nothing the main file lacks
        (BASE, BASE, 4152, False),  # frames in the WAL: a writer at work, or a crash
        (None, BASE, None, False),  # no stamp: the first open, or a run that never closed
        (BASE, None, None, False),  # the file cannot be read
        (BASE, Stamp(8192, BASE.mtime_ns, 12, 3, BASE.header), None, False),  # grown
        (BASE, Stamp(4096, BASE.mtime_ns + 1, 12, 3, BASE.header), None, False),  # written since
        (BASE, Stamp(4096, BASE.mtime_ns, 13, 3, BASE.header), None, False),  # replaced (a copy, a restore)
        (BASE, Stamp(4096, BASE.mtime_ns, 12, 4, BASE.header), None, False),  # another filesystem
        (BASE, Stamp(4096, BASE.mtime_ns, 12, 3, "cd" * 32), None, False),  # its SQLite header changed
    ],
)
def test_the_check_is_skipped_only_for_the_file_as_a_clean_close_left_it(
    recorded: Stamp | None, now: Stamp | None, wal_bytes: int | None, skip: bool
) -> None:
    assert matches(recorded, now, wal_bytes) is skip


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"format": 2, "size": 1}', '{"format": 1, "size": 1}',
                                  '{"format": 1, "size": "1", "mtime_ns": 1, "ino": 1, "dev": 1, "header": "x"}'])
def test_a_stamp_this_wizsync_did_not_write_is_not_trusted(text: str) -> None:
    assert Stamp.parse(text) is None


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every full check a writer's open runs, by path."""
    seen: list[Path] = []
    real = store._quick_check

    def counted(conn: sqlite3.Connection, path: Path) -> None:
        seen.append(path)
        real(conn, path)

    monkeypatch.setattr(store, "_quick_check", counted)
    return seen


def _write_a_run(journal: Journal) -> str:
    return journal.start_run("plan", "production", "/srv/wizsync.yaml", "mh", {})


def test_a_cleanly_closed_journal_is_not_scanned_again(tmp_path: Path, checks: list[Path]) -> None:
    path = tmp_path / "journal.db"
    with Journal.open(path) as j:
        _write_a_run(j)
    assert verified.stamp_path(path).is_file() and not Path(f"{path}-wal").exists()
    assert oct(verified.stamp_path(path).stat().st_mode & 0o777) == "0o600"
    checks.clear()
    with Journal.open(path) as j:
        assert not verified.stamp_path(path).exists()  # taken before anything is written
        run = _write_a_run(j)
    assert checks == []
    with Journal.open(path, readonly=True) as j:  # readers neither need nor touch the stamp
        assert j.get_run(run).id == run
    with Journal.open(path) as j:
        pass
    assert checks == []


def test_a_journal_changed_since_its_stamp_is_scanned_and_a_damaged_one_refused(tmp_path: Path, checks: list[Path]) -> None:
    path = tmp_path / "journal.db"
    with Journal.open(path) as j:
        _write_a_run(j)
    conn = sqlite3.connect(path)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'items'").fetchone()[0]
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    time.sleep(0.05)  # later than the close (file times are coarse: a few ms)
    data = bytearray(path.read_bytes())
    data[(root - 1) * page : (root - 1) * page + 60] = b"\xff" * 60  # its page type and header
    path.write_bytes(bytes(data))  # same size, same inode: only its time tells
    checks.clear()
    with pytest.raises(JournalDamagedError, match="is damaged"):
        Journal.open(path)
    assert checks == [path]
    with pytest.raises(JournalDamagedError):  # and on every open after it: no stamp came back
        Journal.open(path)


KILLED_WRITER = """
import sys
from wizsync.journal import Journal
j = Journal.open(sys.argv[1])
j.start_run("plan", "production", "/srv/wizsync.yaml", "mh", {})
print("written", flush=True)
sys.stdin.read()  # held open until killed
"""


def test_a_writer_killed_mid_run_leaves_no_stamp(tmp_path: Path, checks: list[Path]) -> None:
    path = tmp_path / "journal.db"
    with Journal.open(path) as j:
        _write_a_run(j)
    assert verified.stamp_path(path).is_file()
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "written\n"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert not verified.stamp_path(path).exists()  # its open took the stamp; its close never came
    checks.clear()
    with Journal.open(path) as j:
        _write_a_run(j)
    assert checks == [path]


def test_transactions_in_the_wal_from_another_tool_are_scanned(tmp_path: Path, checks: list[Path]) -> None:
    path = tmp_path / "journal.db"
    with Journal.open(path) as j:
        _write_a_run(j)
    other = sqlite3.connect(path)  # e.g. the sqlite3 shell, still open: its writes sit in the WAL
    other.execute("UPDATE runs SET manifest_path = '/elsewhere/wizsync.yaml'")
    other.commit()
    try:
        assert Path(f"{path}-wal").stat().st_size > 0
        checks.clear()
        with Journal.open(path):
            pass
        assert checks == [path]
    finally:
        other.close()


def test_a_failed_write_leaves_no_stamp(tmp_path: Path, checks: list[Path]) -> None:
    path = tmp_path / "journal.db"
    j = Journal.open(path)
    with pytest.raises(Exception):
        with j.write():
            j._conn.execute("INSERT INTO no_such_table VALUES (1)")
    j.close()
    assert not verified.stamp_path(path).exists()
    checks.clear()
    with Journal.open(path):
        pass
    assert checks == [path]


def test_a_stamp_left_beside_another_file_is_not_trusted(tmp_path: Path, checks: list[Path]) -> None:
    """A journal restored from a copy (new inode) beside the stamp of the one it replaced."""
    path = tmp_path / "journal.db"
    with Journal.open(path) as j:
        _write_a_run(j)
    copy = tmp_path / "copy.db"
    copy.write_bytes(path.read_bytes())
    st = path.stat()
    os.replace(copy, path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with the old times
    checks.clear()
    with Journal.open(path):
        pass
    assert checks == [path]
