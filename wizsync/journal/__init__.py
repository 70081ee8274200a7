"""The run journal (SQLite) and the run lock.

Typical use by a command::

    journal = Journal.open(options.journal or default_journal_path(manifest))
    journal.forbid(resolved_secret_values + api_keys)
    run_id = new_run_id()  # lock first: a refused lock leaves no orphan run row
    targets = [LockTarget.of(base_url, tenant, env) for tenant in tenants]  # what the run changes
    with RunLock.acquire(journal.path, run_id, environment=env, targets=targets,
                         manifest_path=manifest, command="apply"):
        journal.start_run("apply", env, manifest, manifest_hash, {"batches": [...]}, run_id=run_id)
        journal.add_items(run_id, [{"name": n, "tenant": t, "batch": b, "position": i}, ...])
        journal.save_snapshot(run_id, name, live_doc, revision)      # before the apply
        journal.mark_applying(run_id, name, doc_hash=h)              # committed before the request
        journal.record_result(run_id, name, "applied", revision_after=r, requests=2)
        journal.finish_run(run_id, "completed")

Schema: :mod:`wizsync.journal.schema`. Store: :mod:`wizsync.journal.store`.
Lock: :mod:`wizsync.journal.lock`. Secret guard: :mod:`wizsync.journal.guard`.
Scratch files for streamed rows (not the journal): :mod:`wizsync.journal.scratch`.
"""

from .errors import (
    JournalDamagedError,
    JournalError,
    JournalFullError,
    JournalReadOnlyError,
    RunLockedError,
    SecretInJournalError,
    UnknownItemError,
    UnknownRunError,
)
from .ids import new_run_id, now_rfc3339
from .lock import LockTarget, RunLock, lock_dir, lock_holder
from .schema import DONE_STATES, ITEM_STATES, RUN_COMMANDS, RUN_STATUSES, SCHEMA_VERSION
from .store import (
    EventRecord,
    ItemRecord,
    Journal,
    RunRecord,
    SnapshotRecord,
    default_journal_path,
    to_json,
)

__all__ = [
    "DONE_STATES",
    "ITEM_STATES",
    "RUN_COMMANDS",
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "EventRecord",
    "ItemRecord",
    "Journal",
    "JournalDamagedError",
    "JournalError",
    "JournalFullError",
    "JournalReadOnlyError",
    "LockTarget",
    "RunLock",
    "RunLockedError",
    "RunRecord",
    "SecretInJournalError",
    "SnapshotRecord",
    "UnknownItemError",
    "UnknownRunError",
    "default_journal_path",
    "lock_dir",
    "lock_holder",
    "new_run_id",
    "now_rfc3339",
    "to_json",
]
