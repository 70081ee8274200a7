"""Runs that overlap, and runs that are stopped: a second apply on the same environment+manifest, or a
second resume of the same run, refuses at once naming the holder and sends nothing; a lock left by a
kill -9ed holder is not stale; Ctrl-C lets requests in flight finish, records them, marks the run
interrupted and prints the resume command, and the resume completes it."""

from __future__ import annotations

import signal
from pathlib import Path

from apply_fleet import Cli, live, promoted, query, wait_for_run, wait_until, write_manifest

SLOW = {"latency_ms": 40, "jitter_ms": 20}  # an apply of 60 chatbots then lasts ~2 s


def _applied(cli: Cli, run_id: str) -> int:
    return query(cli.journal, "SELECT COUNT(*) AS n FROM items WHERE run_id = ? AND state = 'applied'", [run_id])[0]["n"]


def test_concurrent_apply_and_resume_refuse_and_a_killed_holder_leaves_no_stale_lock(emulator, secret_scan, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator)
    cli = Cli(secret_scan, tmp_path, emulator)
    emulator.set_faults(**SLOW)
    holder = cli.popen("apply", "wizsync.yaml", "--env", "production", "--yes", "--allow-deletes")
    run_id = wait_for_run(cli, holder)
    emulator.set_faults(latency_ms=1000, jitter_ms=0)  # the holder outlives the second apply, even on a loaded machine

    second = cli.apply("--allow-deletes")
    assert second.returncode == 1
    assert f"process {holder.pid}" in second.stderr and run_id in second.stderr, second.stderr
    assert "Traceback" not in second.stderr
    assert [r["id"] for r in query(cli.journal, "SELECT id FROM runs")] == [run_id]  # no run, so no request

    assert holder.poll() is None, "the first apply ended before the overlap was checked"
    emulator.set_faults(**SLOW)  # the holder's fleet loading and plan, at 1 s an answer, would take ~20 s
    wait_until(lambda: _applied(cli, run_id) >= 1, what="the first apply")
    cli.kill9(holder, "apply (holder)")
    assert holder.returncode == -signal.SIGKILL

    # the kernel dropped the dead holder's lock: resume starts at once (slowed, to be overlapped)
    resumer = cli.popen("resume", run_id, "--yes")
    wait_until(lambda: query(cli.journal, "SELECT 1 FROM events WHERE run_id = ? AND kind = 'run.resumed'", [run_id]) != [],
               what="the resume to start")
    emulator.set_faults(latency_ms=1000, jitter_ms=0)  # seconds of work left, even on a loaded machine
    twice = cli.run("resume", run_id, "--yes")
    assert twice.returncode == 1 and f"process {resumer.pid}" in twice.stderr, twice.stderr
    other = cli.apply("--allow-deletes")
    assert other.returncode == 1 and f"process {resumer.pid}" in other.stderr, other.stderr
    assert resumer.poll() is None, "the resume ended before the overlap was checked"
    emulator.set_faults(latency_ms=0, jitter_ms=0)
    code, _, err = cli.collect(resumer, "resume")
    assert code == 0, err
    assert cli.show(run_id)["status"] == "completed"


def test_ctrl_c_finishes_requests_in_flight_marks_the_run_interrupted_and_resume_completes_it(emulator, secret_scan, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator)
    cli = Cli(secret_scan, tmp_path, emulator)
    emulator.set_faults(**SLOW)
    proc = cli.popen("apply", "wizsync.yaml", "--env", "production", "--yes", "--allow-deletes")
    run_id = wait_for_run(cli, proc)
    wait_until(lambda: _applied(cli, run_id) >= 8, what="batch 3 to be under way")
    proc.send_signal(signal.SIGINT)
    code, out, err = cli.collect(proc, "apply (Ctrl-C)")
    assert code != 0
    assert f"wizsync resume {run_id}" in out + err
    assert "Traceback" not in err

    shown = cli.show(run_id)
    assert shown["status"] == "interrupted"
    states = {b["state"] for b in shown["chatbots"]}
    assert "applying" not in states, shown["run"]["counts"]  # every request in flight was answered and recorded
    assert shown["run"]["counts"].get("applied", 0) < 60
    # what the journal says was applied is what the server has
    for b in shown["chatbots"]:
        assert emulator.state.chatbots[b["chatbot_id"]].revision == (1 if b["state"] == "applied" else 0), b["name"]

    emulator.set_faults(latency_ms=0, jitter_ms=0)
    done = cli.run("resume", run_id, "--yes")
    assert done.returncode == 0, done.stderr
    assert cli.show(run_id)["run"]["counts"] == {"applied": 60}
    staging = live(emulator, "staging")
    for key, bot in live(emulator, "production").items():
        assert bot["spec"] == promoted(staging[key]["spec"]), key


def test_a_copy_of_the_manifest_or_another_journal_cannot_apply_to_the_same_targets_at_once(
    emulator, secret_scan, tmp_path: Path, lock_dir: Path
) -> None:
    first, copy = tmp_path / "first", tmp_path / "copy"
    first.mkdir()
    copy.mkdir()
    write_manifest(first, emulator)
    # The copy is edited (another batch plan) and writes another journal: same targets all the same.
    (copy / "wizsync.yaml").write_text((first / "wizsync.yaml").read_text().replace('batches: [1, "10%", "100%"]', "batches: [100%]"))
    cli, other = Cli(secret_scan, first, emulator), Cli(secret_scan, copy, emulator)
    emulator.set_faults(latency_ms=1000, jitter_ms=0)  # seconds per batch: the overlap is certain, even on a loaded machine
    holder = cli.popen("apply", "wizsync.yaml", "--env", "production", "--yes", "--allow-deletes")
    run_id = wait_for_run(cli, holder)

    for refused in (other.apply("--allow-deletes"),
                    cli.run("apply", "wizsync.yaml", "--env", "production", "--yes", "--allow-deletes",
                            "--journal", str(tmp_path / "third.db"))):
        assert refused.returncode == 1, refused.stderr
        assert f"process {holder.pid}" in refused.stderr and run_id in refused.stderr, refused.stderr
        assert "in 'production'" in refused.stderr and "Traceback" not in refused.stderr
    assert query(other.journal, "SELECT id FROM runs") == [] and query(tmp_path / "third.db", "SELECT id FROM runs") == []
    assert holder.poll() is None, "the first apply ended before the overlap was checked"

    emulator.set_faults(latency_ms=0, jitter_ms=0)
    code, _, err = cli.collect(holder, "apply (holder)")
    assert code == 0, err
    assert emulator.stats()["total"]["applies"] == 60  # the holder's: the refused runs sent none
    # The journal says which machine ran each batch (across machines, CI concurrency groups serialize).
    hosts = query(cli.journal, "SELECT json_extract(data, '$.host') AS host FROM events WHERE run_id = ? AND kind = 'batch.start'", [run_id])
    assert len(hosts) == 3 and all(h["host"] for h in hosts), hosts
    # Nothing left behind: released locks take their files with them.
    assert list(lock_dir.iterdir()) == []
    assert oct(cli.journal.stat().st_mode & 0o777) == "0o600"
