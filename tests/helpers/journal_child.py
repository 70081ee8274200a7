"""A child process for the journal crash and lock tests (run as a script, killed with -9).

Modes (each prints one line per step to stdout, flushed, so the parent can
kill it at a known or random point):

  applying DB RUN NAME          mark NAME applying, print "ready", sleep
  burst DB RUN N                per item: snapshot, applying, result, event; print "step I"
  hold-write DB                 open a BEGIN IMMEDIATE transaction, print "ready", sleep
  writes DB RUN N TIMEOUT       N committed events with busy timeout TIMEOUT; print "done SECONDS"
  lock DB RUN ENV URL TENANTS   hold the run lock and the targets (URL, each of TENANTS comma-separated, ENV);
                                print "locked", sleep
"""

from __future__ import annotations

import sys
import time

from wizsync.journal import Journal, LockTarget, RunLock


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> None:
    mode, db = argv[0], argv[1]
    if mode == "applying":
        journal = Journal.open(db)
        journal.mark_applying(argv[2], argv[3], doc_hash="h-new")
        say("ready")
        time.sleep(120)
    elif mode == "burst":
        journal = Journal.open(db)
        run_id, n = argv[2], int(argv[3])
        for i in range(n):
            name = f"bot{i:03d}"
            journal.save_snapshot(run_id, name, {"spec": {"i": i}}, i)
            journal.mark_applying(run_id, name, doc_hash=f"h{i}")
            journal.record_result(run_id, name, "applied", revision_after=i + 1, requests=1)
            journal.event(run_id, "tick", name, i=i)
            say(f"step {i}")
        say("finished")
        time.sleep(120)
    elif mode == "hold-write":
        journal = Journal.open(db)
        with journal.write():
            journal.db.execute("UPDATE runs SET error = 'held' WHERE 0")
            say("ready")
            time.sleep(120)
    elif mode == "writes":
        journal = Journal.open(db, timeout=float(argv[4]))
        start = time.monotonic()
        for i in range(int(argv[3])):
            journal.event(argv[2], "tick", None, i=i)
        say(f"done {time.monotonic() - start:.3f}")
    elif mode == "lock":
        targets = [LockTarget.of(argv[4], tenant, argv[3]) for tenant in argv[5].split(",")]
        lock = RunLock.acquire(db, argv[2], environment=argv[3], targets=targets, command="apply")
        say("locked")
        time.sleep(120)
        lock.release()
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1:])
