"""Journal throughput figures (prints, asserts nothing): python bench/journal_bench.py [N].

- record_plans of N chatbots (the `plan` of a big fleet; target <= 1 ms per chatbot)
- the apply path per chatbot: save_snapshot + mark_applying (durable) + record_result, as three
  commits and with the snapshot joining the mark's durable commit (what apply does)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from wizsync.journal import Journal


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal.open(Path(tmp) / "journal.db")
        journal.forbid(["a-registered-secret-value", "wpk_live_" + "x" * 24])
        run_id = journal.start_run("plan", "production", "/srv/wizsync.yaml", "mh", {})
        rows = [
            {"name": f"bot-{i:05d}", "tenant": f"t{i % 3}", "batch": i // 100, "position": i,
             "plan_summary": {"create": 1, "update": 2, "delete": 0, "noop": 5},
             "plan_ops": [{"op": "update", "section": "faq", "key": f"q{k}", "value": "<secret:CRM>"} for k in range(5)],
             "doc_hash": f"sha256:{i:064d}"}
            for i in range(n)
        ]
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
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
