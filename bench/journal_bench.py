"""Journal throughput figures (prints, asserts nothing): python bench/journal_bench.py [N] [--history RUNS].

- record_plans of N chatbots (the `plan` of a big fleet; target <= 1 ms per chatbot)
- the apply path per chatbot: save_snapshot + mark_applying (durable) + record_result, as three
  commits and with the snapshot joining the mark's durable commit (what apply does)
- with ``--history RUNS``: a journal holding RUNS plans of N chatbots (a long-lived one), and what
  a writer's open costs on it: with its full ``PRAGMA quick_check`` (a file changed since wizsync
  closed it) and as a clean close left it (journal/verified.py). RUNS=600, N=1000: 430 MB, ~45 s.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from wizsync.journal import Journal


def _plan_rows(n: int) -> list[dict[str, object]]:
    """A plan's rows for N chatbots: five changed fields each, one of them a secret reference."""
    return [
        {"name": f"bot-{i:05d}", "tenant": f"t{i % 3}", "batch": i // 100, "position": i,
         "plan_summary": {"create": 1, "update": 2, "delete": 0, "noop": 5},
         "plan_ops": [{"op": "update", "section": "faq", "key": f"q{k}", "value": "<secret:CRM>"} for k in range(5)],
         "doc_hash": f"sha256:{i:064d}"}
        for i in range(n)
    ]


def history(n: int, runs: int) -> None:
    from wizsync.journal import verified

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "journal.db"
        rows = _plan_rows(n)
        with Journal.open(path) as journal:
            for _ in range(runs):
                journal.record_plans(journal.start_run("plan", "production", "/srv/wizsync.yaml", "mh", {}), rows)
        print(f"history: {runs} plans of {n} chatbots, {path.stat().st_size / 1e6:.0f} MB")
        for label, stamped in (("changed since its close (full check)", False), ("as a clean close left it", True)):
            took = []
            for _ in range(3):
                if not stamped:
                    verified.stamp_path(path).unlink(missing_ok=True)
                start = time.perf_counter()
                journal = Journal.open(path)
                took.append(time.perf_counter() - start)
                journal.close()
            print(f"writer's open, {label}: {min(took) * 1000:.0f} ms (min of 3)")


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal.open(Path(tmp) / "journal.db")
        journal.forbid(["a-registered-secret-value", "wpk_live_" + "x" * 24])
        run_id = journal.start_run("plan", "production", "/srv/wizsync.yaml", "mh", {})
        rows = _plan_rows(n)
        start = time.perf_counter()
        journal.record_plans(run_id, rows)
        took = time.perf_counter() - start
        print(f"record_plans: {n} chatbots in {took * 1000:.0f} ms = {took / n * 1000:.3f} ms/chatbot")

        apply_id = journal.start_run("apply", "production", "/srv/wizsync.yaml", "mh", {})
        m = min(n, 500)
        journal.add_items(apply_id, rows[:m])
        start = time.perf_counter()
        for row in rows[:m]:
            journal.save_snapshot(apply_id, row["name"], {"spec": {"persona": {"name": "x"}}}, 3)
            journal.mark_applying(apply_id, row["name"], doc_hash=row["doc_hash"])
            journal.record_result(apply_id, row["name"], "applied", revision_after=4, requests=1)
        took = time.perf_counter() - start
        print(f"apply path (snapshot + durable applying mark + result): {took / m * 1000:.2f} ms/chatbot over {m}")

        # What apply does (wizsync/apply/batches.py): the snapshot joins the mark's durable commit.
        joined = journal.start_run("apply", "production", "/srv/wizsync.yaml", "mh", {})
        journal.add_items(joined, rows[:m])
        start = time.perf_counter()
        for row in rows[:m]:
            with journal.write(durable=True):
                journal.save_snapshot(joined, row["name"], {"spec": {"persona": {"name": "x"}}}, 3)
                journal.mark_applying(joined, row["name"], doc_hash=row["doc_hash"])
            journal.record_result(joined, row["name"], "applied", revision_after=4, requests=1)
        took = time.perf_counter() - start
        print(f"apply path, snapshot and mark in one durable commit + result: {took / m * 1000:.2f} ms/chatbot over {m}")

        start = time.perf_counter()
        items = journal.items(run_id)
        took = time.perf_counter() - start
        print(f"items(): read {len(items)} rows in {took * 1000:.0f} ms")
        print(f"integrity_check: {journal.integrity_check()}")
        journal.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    runs = None
    if "--history" in args:
        at = args.index("--history")
        runs = int(args[at + 1])
        del args[at : at + 2]
    count = int(args[0]) if args else (1000 if runs else 5000)
    if runs:
        history(count, runs)
    else:
        main(count)
