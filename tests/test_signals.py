"""Ctrl-C and SIGTERM the way operators expect, in every phase of a run.

- On a real pseudo-terminal (``pty.fork``: the terminal driver turns ^C into SIGINT for the
  foreground process group, as a user's terminal does): one Ctrl-C at the confirmation prompt
  aborts at once (exit 130), without waiting for Enter, and nothing is sent after the prompt.
- SIGTERM during fleet loading, the up-front plan, the batches and a rollback, and during a
  plan: the process ends by itself, the journal says ``interrupted`` (never ``running``), and
  the resume command is printed. Emulator latency holds each phase open; the test waits for
  the journal to show the phase, not for a fixed time.
- A second signal forces: the process ends while requests are still in flight.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from apply_fleet import Cli, query, wait_for_run, wait_until, write_manifest
from secret_scan import wizsync_env

SLOW = {"latency_ms": 200, "jitter_ms": 0}  # each phase lasts several answers: seconds to see it in the journal


def _read_until(fd: int, needle: bytes, seen: bytearray, timeout: float = 60) -> bool:
    """Read the terminal until ``needle`` shows (True) or it closes (False)."""
    import time

    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{needle!r} never showed on the terminal: {bytes(seen)[-2000:]!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other side closed
            return False
        if not chunk:
            return False
        seen += chunk
    return True


def _drain(fd: int, seen: bytearray) -> None:
    while True:
        try:
            ready, _, _ = select.select([fd], [], [], 30)
            chunk = os.read(fd, 4096) if ready else b""
        except OSError:
            return
        if not chunk:
            return
        seen += chunk


def _reap(pid: int, timeout: float = 30) -> tuple[int, int]:
    """``waitpid`` for a child that closed its terminal (it becomes reapable a moment later); (0, 0) if it lives on."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done or time.monotonic() > deadline:
            return done, status
        time.sleep(0.05)


def _runs(cli: Cli) -> list[dict[str, Any]]:
    return query(cli.journal, "SELECT id, command, status FROM runs ORDER BY started_at")


def test_one_ctrl_c_at_the_prompt_on_a_terminal_aborts_at_once(emulator: Any, secret_scan: Any, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator)
    cli = Cli(secret_scan, tmp_path, emulator)
    # Everything the child needs is made before the fork: a forked copy of this (threaded) process
    # runs no Python beyond chdir and exec, so no lock another thread held can stall it.
    argv = [sys.executable, "-m", "wizsync.cli", "apply", "wizsync.yaml", "--env", "production", "--allow-deletes"]
    env = wizsync_env(cli.env)
    pid, fd = pty.fork()
    if pid == 0:  # the child: wizsync on the terminal, as a user runs it
        os.chdir(tmp_path)
        os.execve(sys.executable, argv, env)
    seen = bytearray()
    try:
        assert _read_until(fd, b"is protected) [y/N]", seen), bytes(seen)
        sent_before = emulator.stats()["total"]["requests"]
        os.write(fd, b"\x03")  # ^C typed on the terminal: no Enter follows
        _drain(fd, seen)  # until the terminal closes, or 30 s of silence
        done, status = _reap(pid)
        if done == 0:  # still waiting for Enter: the bug this test is about
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"Ctrl-C at the prompt did not end wizsync: {bytes(seen)[-2000:]!r}")
    finally:
        os.close(fd)
    text = bytes(seen).decode("utf-8", "replace")
    secret_scan.record("apply on a pty", text)
    assert os.waitstatus_to_exitcode(status) == 130, text[-2000:]
    assert "Traceback" not in text
    assert emulator.stats()["total"]["requests"] == sent_before  # nothing sent after the prompt
    assert emulator.stats()["total"]["applies"] == 0
    runs = _runs(cli)
    assert [r["status"] for r in runs] == ["interrupted"], runs
    assert f"wizsync resume {runs[0]['id']}" in text
    secret_scan.check()


def _sigterm_when(cli: Cli, proc: subprocess.Popen[str], ready: Any, what: str) -> tuple[str, str]:
    run_id = wait_for_run(cli, proc)
    wait_until(lambda: ready(run_id), what=what)
    proc.send_signal(signal.SIGTERM)
    code, out, err = cli.collect(proc, f"SIGTERM during {what}")
    assert code != 0 and "Traceback" not in err, err[-2000:]
    status = query(cli.journal, "SELECT status FROM runs WHERE id = ?", [run_id])[0]["status"]
    assert status == "interrupted", (what, status, err[-2000:])
    return run_id, out + err


def _items(cli: Cli, run_id: str) -> list[dict[str, Any]]:
    return query(cli.journal, "SELECT name, state FROM items WHERE run_id = ?", [run_id])


def _requests(emulator: Any) -> int:
    return int(emulator.stats()["total"]["requests"])


def test_sigterm_while_loading_the_fleet_ends_the_run_interrupted(emulator: Any, secret_scan: Any, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator)
    cli = Cli(secret_scan, tmp_path, emulator)
    emulator.set_faults(**SLOW)
    proc = cli.popen("apply", "wizsync.yaml", "--env", "production", "--yes", "--allow-deletes")
    # the listings and live sources are being fetched: requests went out, no chatbot is recorded yet
    run_id, text = _sigterm_when(cli, proc, lambda r: _requests(emulator) > 0 and not _items(cli, r), "fleet loading")
    assert f"wizsync resume {run_id}" in text
    assert emulator.stats()["total"]["applies"] == 0
    emulator.set_faults(latency_ms=0)
    assert cli.run("resume", run_id, "--yes").returncode == 0
    assert query(cli.journal, "SELECT status FROM runs WHERE id = ?", [run_id])[0]["status"] == "completed"
    secret_scan.check()


def test_sigterm_during_the_up_front_plan_ends_the_run_interrupted(emulator: Any, secret_scan: Any, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator)
    cli = Cli(secret_scan, tmp_path, emulator)
    emulator.set_faults(**SLOW)
    proc = cli.popen("apply", "wizsync.yaml", "--env", "production", "--yes", "--allow-deletes")
    # every chatbot recorded (fleet loaded), none planned in a batch yet: the up-front plan runs
    run_id, text = _sigterm_when(cli, proc, lambda r: len(_items(cli, r)) == 60, "the up-front plan")
    assert f"wizsync resume {run_id}" in text
    assert emulator.stats()["total"]["applies"] == 0
    assert {i["state"] for i in _items(cli, run_id)} <= {"pending", "planned"}
    secret_scan.check()


def test_sigterm_during_the_batches_and_during_a_rollback_end_interrupted(emulator: Any, secret_scan: Any, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator)
    cli = Cli(secret_scan, tmp_path, emulator)
    emulator.set_faults(**SLOW)
    proc = cli.popen("apply", "wizsync.yaml", "--env", "production", "--yes", "--allow-deletes")

    def applied(run_id: str) -> bool:
        return sum(i["state"] == "applied" for i in _items(cli, run_id)) >= 8

    run_id, text = _sigterm_when(cli, proc, applied, "the batches")
    assert f"wizsync resume {run_id}" in text
    assert "applying" not in {i["state"] for i in _items(cli, run_id)}  # in-flight requests finished and recorded

    proc = cli.popen("rollback", run_id, "--yes")
    back, text = _sigterm_when(cli, proc, lambda r: any(i["state"] == "applied" for i in _items(cli, r)), "a rollback")
    assert back != run_id and f"wizsync resume {back}" in text
    secret_scan.check()


def test_sigterm_during_a_plan_ends_the_plan_run_interrupted(emulator: Any, secret_scan: Any, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator)
    cli = Cli(secret_scan, tmp_path, emulator)
    emulator.set_faults(**SLOW)
    proc = cli.popen("plan", "wizsync.yaml", "--env", "production")
    run_id, text = _sigterm_when(cli, proc, lambda r: len(_items(cli, r)) == 60, "a plan")
    assert "interrupted" in text
    secret_scan.check()


def test_a_second_signal_forces_while_requests_are_in_flight(emulator: Any, secret_scan: Any, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator)
    cli = Cli(secret_scan, tmp_path, emulator)
    proc = cli.popen("apply", "wizsync.yaml", "--env", "production", "--yes", "--allow-deletes")
    run_id = wait_for_run(cli, proc)
    wait_until(lambda: any(i["state"] == "applied" for i in _items(cli, run_id)), what="the canary applied")
    emulator.set_faults(latency_ms=15_000)  # from now on every answer takes 15 s
    wait_until(lambda: query(cli.journal, "SELECT 1 FROM events WHERE run_id = ? AND kind = 'batch.start' "
                                          "AND json_extract(data, '$.batch') = 2", [run_id]) != [], what="batch 2 in flight")
    proc.send_signal(signal.SIGINT)
    wait_until(lambda: query(cli.journal, "SELECT 1 FROM events WHERE run_id = ? AND kind = 'run.stopping'", [run_id]) != [],
               what="the graceful stop to begin")
    proc.send_signal(signal.SIGINT)
    code, out, err = cli.collect(proc, "apply (Ctrl-C twice)", timeout=12)  # before the answers in flight come
    assert code == 130, err[-2000:]
    assert "Traceback" not in err and f"wizsync resume {run_id}" in err
    assert query(cli.journal, "SELECT status FROM runs WHERE id = ?", [run_id])[0]["status"] == "interrupted"
    emulator.set_faults(latency_ms=0)
    secret_scan.check()
