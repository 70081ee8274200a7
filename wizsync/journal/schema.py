"""The journal's SQLite schema, and its idempotent migration.

Schema version lives in ``PRAGMA user_version`` (currently 2). Timestamps are
RFC 3339 UTC text (``2026-11-25T21:15:30.123Z``: fixed width, so text order is
time order). Columns marked JSON hold compact JSON text; :class:`Journal`
decodes them on read. Nothing here ever holds an API key or a secret value:
every write passes the secret guard (``guard.py``).

``runs`` — one row per plan / apply / rollback run (``resume`` continues the
same row; each resume session is an event ``run.resumed``).

=================  =========================================================
id                 TEXT PK, e.g. ``r20261125-211530-ab12`` (sorts by start)
command            ``plan`` | ``apply`` | ``rollback``
environment        environment name from the manifest
manifest_path      absolute path of the manifest
manifest_hash      hash of the manifest as the run read it (caller's choice)
options            JSON: batches, maxFailures, prune, allowDeletes, selectors,
                   concurrency, plan run id, ... (whatever resume needs)
status             ``running`` | ``completed`` | ``halted`` | ``failed`` |
                   ``interrupted``
started_at         RFC 3339
finished_at        RFC 3339 or NULL while running
pid, host          process that started (or last resumed) the run
counts             JSON summary, e.g. ``{"applied": 58, "failed": 2, ...}``
error              run-level message (why halted/failed), or NULL
wizsync_version    version that wrote the row
parent_run         rollback: the run it rolls back; else NULL
=================  =========================================================

``items`` — one row per (run, chatbot); PK ``(run_id, name)``.

=================  =========================================================
run_id, name       run id, chatbot address (tenant/name)
tenant             tenant name; ``chatbot_id``: the server's chatbot id
batch, position    batch number (0-based) and order in the rollout
state              ``pending`` → ``planned`` → ``applying`` → ``applied`` |
                   ``unchanged`` | ``failed`` | ``drifted`` | ``skipped``.
                   ``applying`` is committed before the apply request is
                   sent: after a crash it means "may have happened".
plan_summary       JSON ``{"create": n, "update": n, "delete": n, "noop": n}``
plan_ops           JSON list of plan operations (already masked)
doc_hash           hash of the rendered (masked) document
attempts           apply attempts (+1 on each ``mark_applying``)
requests           HTTP requests spent on this chatbot (summed over attempts)
throttled          429 answers received; ``retries``: retried requests
error_code, error_message, error_section, error_key
                   last failure (``error_section``/``error_key``: the failed
                   section and item key of a 422 partial failure)
applied_ops        JSON: what the server reports as applied
revision_before, revision_after
                   server config revision before / after the apply
planned_at, applying_at, finished_at, updated_at
                   RFC 3339; ``duration_ms``: applying_at → finished_at
=================  =========================================================

``events`` — append-only log (UPDATE and DELETE are refused by triggers):
``id`` INTEGER PK AUTOINCREMENT, ``run_id``, ``ts``, ``item`` (chatbot name or
NULL), ``kind`` (e.g. ``run.start``, ``item.applying``, ``item.applied``,
``batch.start``, ``run.resumed``, ``run.finish``), ``data`` JSON.

``snapshots`` — PK ``(run_id, name)``: the live config of a chatbot before
the run changed it (server export, secrets already ``"<redacted>"``):
``tenant``, ``chatbot_id``, ``document`` JSON, ``revision``, ``taken_at``.
The first snapshot of a (run, chatbot) is kept: a resumed run must not
overwrite it with the config its own first attempt already applied.

``pins`` — PK ``(target, chatbot_id)`` (schema version 2): what each
target's key saw, like ssh's known_hosts. ``target`` is ``tenant/environment``;
one row per chatbot id its ``list_chatbots`` returned at the last accepted
run: ``base_url``, ``first_seen`` (RFC 3339) and ``first_run``, ``last_seen``.

Indexes: ``runs(started_at)``, ``runs(environment, status)``,
``runs(parent_run)``, ``items(run_id, state)``, ``items(run_id, batch,
position)``, ``events(run_id, id)``.
"""

from __future__ import annotations

import sqlite3

from .errors import JournalError
from .states import ItemState, RunStatus

RUN_COMMANDS = ("plan", "apply", "rollback")
# The stored strings; the meaning of each lives in states.py.
RUN_STATUSES = tuple(s.value for s in RunStatus)
ITEM_STATES = tuple(s.value for s in ItemState)
# Resume skips these; a second apply of them in the same run is refused.
DONE_STATES = tuple(s.value for s in ItemState if s.is_done)

RUN_JSON = ("options", "counts")
ITEM_JSON = ("plan_summary", "plan_ops", "applied_ops")
ITEM_COLUMNS = (
    "run_id", "name", "tenant", "chatbot_id", "batch", "position", "state",
    "plan_summary", "plan_ops", "doc_hash", "attempts", "requests", "throttled", "retries",
    "error_code", "error_message", "error_section", "error_key", "applied_ops",
    "revision_before", "revision_after", "planned_at", "applying_at", "finished_at",
    "duration_ms", "updated_at",
)

_V1 = """
CREATE TABLE runs (
    id              TEXT PRIMARY KEY,
    command         TEXT NOT NULL,
    environment     TEXT NOT NULL,
    manifest_path   TEXT,
    manifest_hash   TEXT,
    options         TEXT NOT NULL DEFAULT '{}',
    status          TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    finished_at     TEXT,
    pid             INTEGER,
    host            TEXT,
    counts          TEXT NOT NULL DEFAULT '{}',
    error           TEXT,
    wizsync_version TEXT,
    parent_run      TEXT REFERENCES runs(id)
);
CREATE INDEX runs_started ON runs(started_at);
CREATE INDEX runs_env_status ON runs(environment, status);
CREATE INDEX runs_parent ON runs(parent_run);

CREATE TABLE items (
    run_id          TEXT NOT NULL REFERENCES runs(id),
    name            TEXT NOT NULL,
    tenant          TEXT,
    chatbot_id      TEXT,
    batch           INTEGER,
    position        INTEGER,
    state           TEXT NOT NULL DEFAULT 'pending',
    plan_summary    TEXT,
    plan_ops        TEXT,
    doc_hash        TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    requests        INTEGER NOT NULL DEFAULT 0,
    throttled       INTEGER NOT NULL DEFAULT 0,
    retries         INTEGER NOT NULL DEFAULT 0,
    error_code      TEXT,
    error_message   TEXT,
    error_section   TEXT,
    error_key       TEXT,
    applied_ops     TEXT,
    revision_before INTEGER,
    revision_after  INTEGER,
    planned_at      TEXT,
    applying_at     TEXT,
    finished_at     TEXT,
    duration_ms     INTEGER,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
);
CREATE INDEX items_state ON items(run_id, state);
CREATE INDEX items_order ON items(run_id, batch, position);

CREATE TABLE events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id  TEXT NOT NULL REFERENCES runs(id),
    ts      TEXT NOT NULL,
    item    TEXT,
    kind    TEXT NOT NULL,
    data    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_run ON events(run_id, id);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'journal events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'journal events are append-only'); END;

CREATE TABLE snapshots (
    run_id      TEXT NOT NULL REFERENCES runs(id),
    name        TEXT NOT NULL,
    tenant      TEXT,
    chatbot_id  TEXT,
    document    TEXT NOT NULL,
    revision    INTEGER,
    taken_at    TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
);
"""

# Version 2: what each target's key saw, trust on first use (wizsync.fleet.pinning).
_V2 = """
CREATE TABLE pins (
    target      TEXT NOT NULL,
    chatbot_id  TEXT NOT NULL,
    base_url    TEXT,
    first_seen  TEXT NOT NULL,
    first_run   TEXT,
    last_seen   TEXT NOT NULL,
    PRIMARY KEY (target, chatbot_id)
);
"""

# MIGRATIONS[i] takes the schema from version i to i + 1. Append, never edit.
MIGRATIONS: tuple[str, ...] = (_V1, _V2)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema to :data:`SCHEMA_VERSION`; a no-op (one read) when it already is.

    The connection must be in autocommit mode (``isolation_level=None``). The
    version is re-read inside ``BEGIN IMMEDIATE`` so two processes opening a
    fresh journal at once migrate it exactly once.
    """
    if schema_version(conn) == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = schema_version(conn)
        if current > SCHEMA_VERSION:
            raise JournalError(
                f"this journal has schema version {current}, newer than this wizsync "
                f"understands ({SCHEMA_VERSION}); upgrade wizsync to read it"
            )
        for script in MIGRATIONS[current:]:
            # executescript() would COMMIT first; run statement by statement instead.
            for statement in _statements(script):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _statements(script: str) -> list[str]:
    """Split a DDL script on complete statements (triggers contain inner ``;``)."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
