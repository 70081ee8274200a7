"""The journal defends itself: a damaged journal is refused before anything is sent; a read-only one
can still be listed and shown; a full disk ends the run `interrupted` with a clear message and the
resume completes it once there is room; journal files are private (0600)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from apply_fleet import Cli, live, promoted, query, write_manifest
from click.testing import CliRunner

from wizsync.cli import cli as wizsync_cli
from wizsync.journal import Journal


def _damage(journal: Path) -> None:
    """Overwrite the header of the items table's root page: the file still opens, quick_check fails."""
    conn = sqlite3.connect(journal)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'items'").fetchone()[0]
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()  # the last connection checkpoints the WAL into the file
    data = bytearray(journal.read_bytes())
    offset = (root - 1) * page
    data[offset + 8 : offset + 60] = b"\xff" * 52
    journal.write_bytes(bytes(data))


def test_a_damaged_journal_is_refused_before_any_request(emulator, secret_scan, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator)
    cli = Cli(secret_scan, tmp_path, emulator)
    assert cli.run("plan", "wizsync.yaml", "--env", "production").returncode == 0
    healthy = cli.journal.read_bytes() if not Path(f"{cli.journal}-wal").exists() else None
    assert healthy is not None  # wizsync closed it cleanly: everything is in the main file
    _damage(cli.journal)
    before = emulator.stats()["total"]["requests"]
    damaged = cli.journal.read_bytes()

    for args in (("apply", "wizsync.yaml", "--env", "production", "--yes", "--allow-deletes"),
                 ("plan", "wizsync.yaml", "--env", "production")):
        proc = cli.run(*args)
        assert proc.returncode == 1, proc.stderr
        assert "is damaged (PRAGMA quick_check" in proc.stderr and "nothing was sent" in proc.stderr, proc.stderr
        assert str(cli.journal) in proc.stderr and "Traceback" not in proc.stderr
    assert emulator.stats()["total"]["requests"] == before
    assert cli.journal.read_bytes() == damaged  # not written to
    cli.journal.write_bytes(healthy)  # for the secret scan's dump of the journal


@contextmanager
def _read_only(directory: Path) -> Iterator[None]:
    """Make ``directory`` read-only for wizsync: a read-only tmpfs mount as root (file modes do not stop
    root), else mode 0444 files in a 0555 directory."""
    if os.geteuid() == 0:
        saved = directory.with_name(directory.name + ".saved")
        shutil.copytree(directory, saved)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(directory)], check=True)
        try:
            shutil.copytree(saved, directory, dirs_exist_ok=True)
            subprocess.run(["mount", "-o", "remount,ro", str(directory)], check=True)
            yield
        finally:
            subprocess.run(["umount", str(directory)], check=True)
        return
    for f in directory.iterdir():
        f.chmod(0o444)
    directory.chmod(0o555)
    try:
        yield
    finally:
        directory.chmod(0o755)


def test_runs_and_show_read_a_read_only_journal_and_a_run_refuses_it_clearly(emulator, secret_scan, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator)
    cli = Cli(secret_scan, tmp_path, emulator)
    assert cli.run("plan", "wizsync.yaml", "--env", "production").returncode == 0
    run_id = cli.last_run()["id"]
    with _read_only(cli.journal.parent):
        listed = cli.run("runs")
        assert listed.returncode == 0 and run_id in listed.stdout, listed.stderr
        shown = cli.json("show", run_id)
        assert shown["status"] == "completed" and len(shown["chatbots"]) == 60
        before = emulator.stats()["total"]["requests"]
        refused = cli.run("apply", "wizsync.yaml", "--env", "production", "--yes", "--allow-deletes")
        assert refused.returncode == 1 and "is read-only" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
        assert emulator.stats()["total"]["requests"] == before


def test_a_full_disk_ends_the_run_interrupted_and_resume_completes_it_after_freeing_space(
    emulator, secret_scan, tmp_path: Path, monkeypatch
) -> None:
    write_manifest(tmp_path, emulator)
    cli = Cli(secret_scan, tmp_path, emulator)
    # The disk fills after 10 applies: SQLite's max_page_count caps the file where it is (SQLITE_FULL).
    real_mark = Journal.mark_applying
    marks = []

    def mark_then_fill(self: Journal, *args, **kw):  # type: ignore[no-untyped-def]
        marks.append(1)
        if len(marks) == 10:
            pages = self.db.execute("PRAGMA page_count").fetchone()[0]
            self.db.execute(f"PRAGMA max_page_count = {pages}")
        return real_mark(self, *args, **kw)

    monkeypatch.setattr(Journal, "mark_applying", mark_then_fill)
    # In this process, so the patched journal is the one the apply writes.
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        wizsync_cli, ["apply", "wizsync.yaml", "--env", "production", "--yes", "--allow-deletes"],
        env={**emulator.key_env, "NO_COLOR": "1"},
    )
    secret_scan.record("apply (disk full) output", result.output)
    monkeypatch.setattr(Journal, "mark_applying", real_mark)  # space freed

    assert result.exit_code == 1, result.output
    run_id = cli.last_run()["id"]
    assert "is full" in result.output and f"wizsync resume {run_id}" in result.output, result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    run = cli.show(run_id)
    assert run["status"] == "interrupted", run["run"]
    assert 10 <= len(marks) < 60
    assert query(cli.journal, "SELECT status FROM runs WHERE id = ?", [run_id])[0]["status"] == "interrupted"

    resumed = cli.run("resume", run_id, "--yes")
    assert resumed.returncode == 0, resumed.stderr
    assert cli.show(run_id)["status"] == "completed"
    staging = live(emulator, "staging")
    for key, bot in live(emulator, "production").items():
        assert bot["spec"] == promoted(staging[key]["spec"]), key
    assert emulator.stats()["total"]["applies"] == 60  # every chatbot applied once, none twice


def test_journal_files_are_private(emulator, secret_scan, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator)
    cli = Cli(secret_scan, tmp_path, emulator)
    assert cli.run("plan", "wizsync.yaml", "--env", "production").returncode == 0
    assert cli.journal.stat().st_mode & 0o777 == 0o600
    assert cli.journal.parent.stat().st_mode & 0o777 == 0o700
    # A journal an older wizsync left world-readable is tightened by the next run.
    cli.journal.chmod(0o644)
    assert cli.run("plan", "wizsync.yaml", "--env", "production").returncode == 0
    assert cli.journal.stat().st_mode & 0o777 == 0o600
