"""The journal: one SQLite file recording every run (plain ``sqlite3``, :mod:`.database`).

Durability and concurrency choices (docs/journal.md, "Write-ahead
discipline"; https://www.sqlite.org/wal.html):

- WAL, so ``wizsync show`` / ``runs`` read while an apply writes, neither
  blocking the other.
- ``synchronous=NORMAL``: in WAL mode a committed transaction survives kill -9
  of the process in every journal mode; only a power loss / OS crash can lose
  the last few commits, never corrupt the file. FULL would fsync on every
  commit (thousands during a plan). The one commit that must survive even a
  power loss, :meth:`Journal.mark_applying` (the write-ahead mark sent before
  an apply request), is committed with ``synchronous=FULL``; since the WAL is
  appended in order, that fsync also makes every earlier commit (the
  snapshot, the plan) durable.
- Every write is one ``BEGIN IMMEDIATE`` transaction (:meth:`Journal.write`):
  a deferred transaction that reads then writes gets ``SQLITE_BUSY`` at once,
  without waiting for the busy timeout, when another process writes.
- One writer: the connection belongs to the thread that opened it (sqlite3
  enforces it). With asyncio, call the journal from the event-loop thread.

The tables are documented in :mod:`wizsync.journal.schema`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import socket
import sqlite3
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wizchat_management.models import Operation

from .database import Database
from .errors import (
    JournalDamagedError,
    JournalError,
    JournalFullError,
    JournalReadOnlyError,
    UnknownItemError,
    UnknownRunError,
)
from .guard import SecretGuard
from .ids import new_run_id, now_rfc3339, parse_rfc3339
from .schema import (
    ITEM_COLUMNS,
    ITEM_JSON,
    ITEM_STATES,
    RUN_COMMANDS,
    RUN_JSON,
    RUN_STATUSES,
    SCHEMA_VERSION,
    migrate,
    schema_version,
)
from .states import ItemState, RunStatus, item_may_move
from . import verified

DEFAULT_DIRNAME = ".wizsync"
DEFAULT_FILENAME = "journal.db"
# How long a writer waits for another process's write transaction (seconds).
DEFAULT_BUSY_TIMEOUT = 30.0
# Rows per transaction in record_plans(): big enough to amortize the commit,
# small enough that a reader never waits long and a crash loses little.
PLAN_CHUNK = 500

FINAL_STATES = tuple(s.value for s in ItemState if s.is_outcome)
_SETTABLE_ITEM_FIELDS = frozenset(ITEM_COLUMNS) - {"run_id", "name", "updated_at"}


_LOG = logging.getLogger("wizsync.journal")


def _stored_manifest_path(manifest: Path, journal: Path) -> str:
    """The manifest as the journal records it: relative to the journal's folder when both are in one
    checkout (the manifest is under the folder holding ``.wizsync/``, or under the journal's own folder),
    so a moved checkout still finds it; else absolute."""
    manifest, folder = manifest.resolve(), Path(journal).resolve().parent
    root = folder.parent if folder.name == DEFAULT_DIRNAME else folder
    if manifest.is_relative_to(root):
        return os.path.relpath(manifest, folder)
    return str(manifest)


def default_journal_path(manifest_path: str | os.PathLike[str]) -> Path:
    """``.wizsync/journal.db`` in the manifest's directory (the spec's default for ``--journal``)."""
    return Path(manifest_path).resolve().parent / DEFAULT_DIRNAME / DEFAULT_FILENAME


# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class RunRecord:
    id: str
    command: str
    environment: str
    manifest_path: str | None
    manifest_hash: str | None
    options: dict[str, Any]
    status: RunStatus
    started_at: str
    finished_at: str | None
    pid: int | None
    host: str | None
    counts: dict[str, Any]
    error: str | None
    wizsync_version: str | None
    parent_run: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ItemRecord:
    run_id: str
    name: str
    tenant: str | None = None
    chatbot_id: str | None = None
    batch: int | None = None
    position: int | None = None
    state: ItemState = ItemState.PENDING
    plan_summary: dict[str, int] | None = None
    plan_ops: Any = None
    doc_hash: str | None = None
    attempts: int = 0
    requests: int = 0
    throttled: int = 0
    retries: int = 0
    error_code: str | None = None
    error_message: str | None = None
    error_section: str | None = None
    error_key: str | None = None
    applied_ops: Any = None
    revision_before: int | None = None
    revision_after: int | None = None
    planned_at: str | None = None
    applying_at: str | None = None
    finished_at: str | None = None
    duration_ms: int | None = None
    updated_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def planned_operations(self) -> list[Operation]:
        """``plan_ops`` parsed back into the SDK's operations (as the dry-run answered them)."""
        return _operations(self.plan_ops)

    @property
    def applied_operations(self) -> list[Operation] | None:
        """``applied_ops`` parsed back into the SDK's operations; None when nothing was recorded."""
        return None if self.applied_ops is None else _operations(self.applied_ops)


def _operations(stored: Any) -> list[Operation]:
    # Stored by Operation.model_dump(mode="json"): validating gives back the same operations.
    from wizchat_management.models import Operation

    return [Operation.model_validate(op) for op in stored or []]


@dataclass(frozen=True)
class EventRecord:
    id: int
    run_id: str
    ts: str
    item: str | None
    kind: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SnapshotRecord:
    run_id: str
    name: str
    tenant: str | None
    chatbot_id: str | None
    document: Any
    revision: int | None
    taken_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- helpers


def _jsonable(value: Any) -> Any:
    # Pydantic models (the SDK's) are stored in their wire form.
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", by_alias=True)
    raise TypeError(f"cannot store a {type(value).__name__} in the journal as JSON")


def to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_jsonable)


def _from_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _ms_between(start: str, end: str) -> int:
    return int((parse_rfc3339(end) - parse_rfc3339(start)).total_seconds() * 1000)


# SQLite's primary result codes (the sqlite3 module names them only from Python 3.11).
SQLITE_BUSY, SQLITE_READONLY, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_NOTADB = 5, 8, 11, 13, 26


def _errorcode(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF  # the primary code of an extended one


def _translated(exc: sqlite3.DatabaseError, path: Path, doing: str) -> JournalError:
    """The user-facing error for an SQLite failure (full disk, read-only file, damaged file)."""
    code = _errorcode(exc)
    text = str(exc)
    if code == SQLITE_FULL or "disk is full" in text:
        then = ". Nothing was sent: free space and run again" if doing == "open" else ""
        return JournalFullError(f"the journal {path} is full: its disk or filesystem has no space left ({text}){then}")
    if code == SQLITE_READONLY or "readonly database" in text:
        return JournalReadOnlyError(
            f"the journal {path} is read-only ({text}): `wizsync runs`/`show` can read it, but a run "
            "needs a journal it can write (check the file's and directory's permissions, or pass --journal PATH)"
        )
    if code in (SQLITE_CORRUPT, SQLITE_NOTADB) or "malformed" in text or "not a database" in text:
        return _damaged(path, text)
    return JournalError(f"cannot {doing} the journal {path}: {text}")


def _damaged(path: Path, problems: str) -> JournalDamagedError:
    return JournalDamagedError(
        f"the journal {path} is damaged ({problems}); wizsync will not write to it, and nothing was sent. "
        f"Move it aside (keep it: `wizsync runs --journal` may still read what it holds) and run again "
        "with a fresh journal, or restore it from a copy"
    )


def _quick_check(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a damaged journal before a run writes to it (``PRAGMA quick_check``: O(size), no index rebuild)."""
    rows = [str(r[0]) for r in conn.execute("PRAGMA quick_check(5)").fetchall()]
    if rows != ["ok"]:
        raise _damaged(path, "PRAGMA quick_check: " + "; ".join(" ".join(r.split()) for r in rows[:5]))


def _prove_writable(conn: sqlite3.Connection) -> None:
    """Fail now on a read-only file, folder or mount, not at the run's first write (after its reads)."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if _errorcode(exc) == SQLITE_BUSY or "database is locked" in str(exc):
            return  # another process is writing it: writable, and write() waits its turn
        raise
    conn.execute("ROLLBACK")


def _create_private(path: Path) -> None:
    """Create the journal directory (0700) and file (0600); tighten an existing journal we own to 0600.

    The journal holds the fleet's configs before each change: readable by its owner only.
    SQLite gives the ``-wal`` and ``-shm`` files the main file's mode.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(OSError):
            st = file.stat()
            if st.st_uid == os.geteuid() and st.st_mode & 0o077:
                os.chmod(file, 0o600)


def _connect_read_only(path: Path, timeout: float) -> Database:
    """A read-only connection; ``immutable`` when SQLite cannot even share the WAL index (read-only directory).

    ``mode=ro`` reads a WAL journal while a run writes it, but needs the ``-shm``
    file to exist or be creatable; in a read-only directory only ``immutable=1``
    opens it (no writer can be at work there).
    """
    uri = "file:" + urllib.parse.quote(str(path.resolve()))
    last: sqlite3.Error | None = None
    for query in ("?mode=ro", "?mode=ro&immutable=1"):
        try:
            conn = sqlite3.connect(uri + query, uri=True, timeout=timeout, isolation_level=None)
        except sqlite3.Error as exc:
            last = exc
            continue
        try:
            version = schema_version(conn)
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            conn.close()
            last = exc
            if _errorcode(exc) in (SQLITE_CORRUPT, SQLITE_NOTADB):
                break
            continue
        if version > SCHEMA_VERSION:
            conn.close()
            raise JournalError(
                f"this journal has schema version {version}, newer than this wizsync "
                f"understands ({SCHEMA_VERSION}); upgrade wizsync to read it"
            )
        return Database(conn)
    assert last is not None
    raise _translated(last, path, "read") if isinstance(last, sqlite3.DatabaseError) else JournalError(
        f"cannot read the journal at {path}: {last}"
    )


# ---------------------------------------------------------------- journal


class Journal:
    """A handle on one journal file. Open with :meth:`Journal.open`; close it (or use ``with``)."""

    def __init__(self, db: Database, path: Path, *, readonly: bool = False) -> None:
        self.db = db
        self.path = path
        self.readonly = readonly
        self._conn: sqlite3.Connection = db.conn
        self._guard = SecretGuard()
        self._depth = 0
        # A writer stamps the file at close (journal/verified.py) unless a write failed on the way.
        self._stamp_at_close = not readonly

    # ------------------------------------------------------------ lifecycle

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        readonly: bool = False,
        timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> Journal:
        """Open the journal at ``path`` for writing (default) or, with ``readonly``, only for reading.

        A writer (``create`` makes the directory and file, mode 0700/0600)
        first runs ``PRAGMA quick_check``: a damaged journal is refused with
        :class:`JournalDamagedError` before anything is written or sent. The
        check is skipped only when the file is exactly as a clean close left
        it (``journal.verified``). The schema is created or migrated idempotently.

        ``readonly`` is for ``runs``/``show``: the file is opened read-only
        (``mode=ro``), so a journal on a read-only file, directory or mount can
        be listed; nothing is migrated or written. ``create=False`` makes a
        missing file a :class:`JournalError`, not a new empty journal.
        """
        path = Path(path)
        if (readonly or not create) and not path.is_file():
            raise JournalError(
                f"no journal at {path} (pass --journal PATH)"
            )
        if readonly:
            return cls(_connect_read_only(path, timeout), path, readonly=True)
        if path.is_file() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
            raise _translated(sqlite3.OperationalError("attempt to write a readonly database"), path, "open")
        try:
            # Before the connection reads anything (a WAL reader creates the -wal file).
            unchanged = verified.take(path)
            _create_private(path)
            # isolation_level=None: no implicit (deferred) BEGIN; write() issues BEGIN IMMEDIATE.
            conn = sqlite3.connect(str(path), timeout=timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"cannot open the journal at {path}: {exc}") from exc
        try:
            if not unchanged:
                _quick_check(conn, path)
            _prove_writable(conn)
            db = Database(conn)
            db.enable_wal()
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            migrate(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise _translated(exc, path, "open") from exc
        except BaseException:
            conn.close()
            raise
        return cls(db, path)

    def close(self) -> None:
        self._conn.close()
        if self._stamp_at_close:
            self._stamp_at_close = False
            verified.leave(self.path)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        if isinstance(exc[1], (sqlite3.DatabaseError, JournalDamagedError)):
            self._stamp_at_close = False
        self.close()

    # ------------------------------------------------------------ secrets

    def forbid(self, values: Iterable[str | None]) -> None:
        """Register secret values (resolved ``${secret:...}`` values, API keys) no write may contain."""
        self._guard.forbid(values)

    def _checked(self, where: str, row: Mapping[str, Any]) -> None:
        for column, value in row.items():
            if isinstance(value, str):
                self._guard.check(value, f"{where} column {column!r}")

    # ------------------------------------------------------------ transactions

    def _write_failed(self, exc: sqlite3.DatabaseError) -> JournalError:
        """The error for a failed write; after one, the file is not stamped at close (journal/verified.py)."""
        self._stamp_at_close = False
        return _translated(exc, self.path, "write")

    @contextlib.contextmanager
    def write(self, *, durable: bool = False) -> Iterator[Journal]:
        """One ``BEGIN IMMEDIATE`` transaction; nested blocks join the outer one (and its durability).

        ``durable=True`` commits with ``synchronous=FULL`` (survives power loss).
        Waits up to the busy timeout for another process's write; then raises
        :class:`JournalError`.
        """
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        if self.readonly:
            raise JournalReadOnlyError(f"the journal {self.path} was opened read-only; this command cannot write to it")
        if durable:
            self._conn.execute("PRAGMA synchronous=FULL")
        try:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if not (_errorcode(exc) == SQLITE_BUSY or "database is locked" in str(exc)):
                    raise self._write_failed(exc) from exc
                raise JournalError(
                    f"the journal {self.path} is busy: another process kept it locked for writing "
                    f"longer than the busy timeout ({exc})"
                ) from exc
            self._depth = 1
            try:
                yield self
            except BaseException as exc:
                self._rollback()
                if isinstance(exc, sqlite3.DatabaseError):
                    raise self._write_failed(exc) from exc
                raise
            else:
                try:
                    self._conn.execute("COMMIT")
                except sqlite3.DatabaseError as exc:
                    self._rollback()
                    raise self._write_failed(exc) from exc
                except BaseException:
                    self._rollback()
                    raise
            finally:
                self._depth = 0
        finally:
            if durable:
                self._conn.execute("PRAGMA synchronous=NORMAL")

    def _rollback(self) -> None:
        # A failed ROLLBACK (the disk is gone) must not hide the error that caused it.
        with contextlib.suppress(sqlite3.Error):
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")

    def _insert_event(self, run_id: str, kind: str, item: str | None, data: Mapping[str, Any]) -> int:
        row = {"run_id": run_id, "ts": now_rfc3339(), "item": item, "kind": kind, "data": to_json(dict(data))}
        self._checked(f"event {kind!r}", row)
        cur = self.db.execute(
            "INSERT INTO events (run_id, ts, item, kind, data) VALUES (:run_id, :ts, :item, :kind, :data)", row
        )
        return int(cur.lastrowid or 0)

    # ------------------------------------------------------------ runs

    def start_run(
        self,
        command: str,
        environment: str,
        manifest_path: str | os.PathLike[str] | None,
        manifest_hash: str | None,
        options: Mapping[str, Any] | None = None,
        parent_run: str | None = None,
        *,
        run_id: str | None = None,
    ) -> str:
        """Record a new run (status ``running``) and its ``run.start`` event; return its id.

        Pass ``run_id`` (from :func:`wizsync.journal.new_run_id`) to take the
        :class:`RunLock` first, so a refused lock leaves no orphan run row.
        """
        if command not in RUN_COMMANDS:
            raise ValueError(f"command must be one of {RUN_COMMANDS}, not {command!r}")
        from wizsync import __version__

        row: dict[str, Any] = {
            "command": command,
            "environment": environment,
            "manifest_path": None if manifest_path is None else _stored_manifest_path(Path(manifest_path), self.path),
            "manifest_hash": manifest_hash,
            "options": to_json(dict(options or {})),
            "status": "running",
            "started_at": now_rfc3339(),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "counts": "{}",
            "wizsync_version": __version__,
            "parent_run": parent_run,
        }
        self._checked("run", row)
        with self.write():
            if parent_run is not None:
                self._require_run(parent_run)
            if run_id is not None:
                if self.db.execute("SELECT 1 FROM runs WHERE id = ?", [run_id]).fetchone() is not None:
                    raise JournalError(f"run {run_id!r} already exists in this journal")
            else:
                for _ in range(20):  # 4 hex digits per second: a clash is rare, retry it
                    run_id = new_run_id()
                    if self.db.execute("SELECT 1 FROM runs WHERE id = ?", [run_id]).fetchone() is None:
                        break
                else:  # pragma: no cover - 20 clashes in a row
                    raise JournalError("could not allocate a unique run id")
            self.db.insert("runs", {"id": run_id, **row})
            self._insert_event(
                run_id, "run.start", None,
                {"command": command, "environment": environment, "pid": row["pid"], "host": row["host"],
                 "parent_run": parent_run},
            )
        # --log-file stamps every line with the run id from this record on (wizsync.commands.logfile).
        _LOG.info("run %s: %s '%s' started", run_id, command, environment, extra={"wizsync_run_id": run_id})
        return run_id

    def set_run_status(self, run_id: str, status: RunStatus | str, *, error: str | None = None) -> None:
        """Change a run's status (e.g. ``interrupted`` on Ctrl-C); records a ``run.status`` event."""
        status = self._check_status(status)
        finished = None if status is RunStatus.RUNNING else now_rfc3339()
        with self.write():
            self._require_run(run_id)
            self._checked("run", {"error": error})
            self.db.execute(
                "UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                [status, error, finished, run_id],
            )
            self._insert_event(run_id, "run.status", None, {"status": status, "error": error})

    @contextlib.contextmanager
    def closing_run(self, run_id: str, user_errors: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
        """Record how a run ends when it ends in an exception, then re-raise (see :meth:`stop_run`)."""
        try:
            yield
        except BaseException as exc:
            stopped = self.stop_run(run_id, exc, user_errors)
            if stopped is exc:
                raise
            raise stopped from exc

    def stop_run(
        self, run_id: str, exc: BaseException, user_errors: tuple[type[BaseException], ...] = ()
    ) -> BaseException:
        """Record why a run stopped on ``exc``; returns the exception to raise.

        ``failed`` with the message for ``user_errors`` (bad input, a refusal),
        ``interrupted`` for anything else (Ctrl-C, a crash of ours, a full
        disk): a run is never left ``running`` by a process that is still
        alive to say so. On a full disk the status goes in without its event
        if that is all that fits, and the error returned names the resume.
        """
        full = isinstance(exc, JournalFullError)
        failed = not full and isinstance(exc, user_errors)
        status, error = (RunStatus.FAILED, str(exc)) if failed else (RunStatus.INTERRUPTED, None)
        try:
            self.finish_run(run_id, status, error=error)
        except JournalError:
            # No room for the event (or the counts): the bare status usually still fits its page.
            with contextlib.suppress(sqlite3.Error):
                self.db.execute(
                    "UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                    [status, error, now_rfc3339(), run_id],
                )
            if not full:
                raise
        if full:
            return JournalFullError(
                f"{exc}. Run {run_id} stopped and is interrupted; every request sent before the disk filled "
                "is journaled (a chatbot left 'applying' may have been applied: the resume settles it). "
                f"Free space, then `wizsync resume {run_id}`"
            )
        return exc

    def finish_run(
        self, run_id: str, status: RunStatus | str, counts: Mapping[str, Any] | None = None, *, error: str | None = None
    ) -> None:
        """End a run: status, finished_at, counts (default: items per state) and a ``run.finish`` event."""
        status = self._check_status(status)
        if not status.is_final:
            raise ValueError("finish_run needs a final status (completed|halted|failed|interrupted)")
        with self.write():
            self._require_run(run_id)
            summary = dict(counts) if counts is not None else self.item_counts(run_id)
            row = {"status": status, "finished_at": now_rfc3339(), "counts": to_json(summary), "error": error}
            self._checked("run", row)
            self.db.execute(
                "UPDATE runs SET status = :status, finished_at = :finished_at, counts = :counts, error = :error "
                "WHERE id = :id",
                {**row, "id": run_id},
            )
            self._insert_event(run_id, "run.finish", None, {"status": status, "counts": summary, "error": error})

    def reopen_run(self, run_id: str, **data: Any) -> RunRecord:
        """Resume: the same run goes back to ``running`` under this process; a ``run.resumed`` event.

        Returns the run as it was before reopening (its previous status tells why it stopped).
        """
        with self.write():
            before = self.get_run(run_id)
            pid, host = os.getpid(), socket.gethostname()
            self.db.execute(
                "UPDATE runs SET status = 'running', finished_at = NULL, error = NULL, pid = ?, host = ? "
                "WHERE id = ?",
                [pid, host, run_id],
            )
            self._insert_event(
                run_id, "run.resumed", None, {"previous_status": before.status, "pid": pid, "host": host, **data}
            )
        _LOG.info("run %s: resumed (was %s)", run_id, before.status, extra={"wizsync_run_id": run_id})
        return before

    def manifest_of(self, run: RunRecord) -> Path | None:
        """The run's manifest as a path (one recorded relative to the journal's folder resolved against it)."""
        if not run.manifest_path:
            return None
        path = Path(run.manifest_path)
        return path if path.is_absolute() else (Path(self.path).resolve().parent / path).resolve()

    def get_run(self, run_id: str) -> RunRecord:
        rows = self._rows("SELECT * FROM runs WHERE id = ?", [run_id])
        if not rows:
            raise UnknownRunError(run_id)
        return self._run_record(rows[0])

    def runs(
        self,
        limit: int | None = 50,
        *,
        command: str | None = None,
        environment: str | None = None,
        status: str | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first, optionally filtered."""
        where, params = [], []
        for column, value in (("command", command), ("environment", environment), ("status", status)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY started_at DESC, rowid DESC"  # rowid: insertion order breaks ties
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [self._run_record(r) for r in self._rows(sql, params)]

    # ------------------------------------------------------------ items

    def add_items(self, run_id: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Add (or update) the chatbots of a run in one transaction; returns how many.

        Each row needs ``name``; optional: any item column (``tenant``,
        ``chatbot_id``, ``batch``, ``position``, ``state``, ...). A row without
        ``state`` starts ``pending`` and an existing row keeps its state, so
        re-adding the items of a resumed run resets nothing.
        """
        total = 0
        rows = iter(rows)
        with self.write():
            self._require_run(run_id)
            # Prepared a chunk at a time, in the one transaction: a fleet of 50,000 is never held
            # as prepared rows all at once (a row that cannot be prepared rolls back every chunk).
            while chunk := [self._item_row(run_id, r, {}) for r in itertools.islice(rows, PLAN_CHUNK)]:
                self._upsert_items(chunk)
                total += len(chunk)
        return total

    def record_plans(self, run_id: str, rows: Iterable[Mapping[str, Any]], *, chunk_size: int = PLAN_CHUNK) -> int:
        """Bulk-record plan results (``name``, ``plan_summary``, ``plan_ops``, ``doc_hash``, ...).

        Rows default to ``state='planned'`` and ``planned_at`` now. Commits
        every ``chunk_size`` rows (one ``items.planned`` event per chunk), so a
        plan of thousands of chatbots costs well under 1 ms per chatbot.
        """
        self._require_run(run_id)
        total = 0
        chunk: list[dict[str, Any]] = []
        for row in rows:
            chunk.append(self._item_row(run_id, row, {"state": ItemState.PLANNED, "planned_at": now_rfc3339()}))
            if len(chunk) >= chunk_size:
                total += self._commit_plan_chunk(run_id, chunk)
                chunk = []
        if chunk:
            total += self._commit_plan_chunk(run_id, chunk)
        return total

    def _commit_plan_chunk(self, run_id: str, chunk: list[dict[str, Any]]) -> int:
        with self.write():
            self._upsert_items(chunk)
            self._insert_event(run_id, "items.planned", None, {"count": len(chunk)})
        return len(chunk)

    def update_item(self, run_id: str, name: str, **fields: Any) -> None:
        """Set item columns (absolute values). A ``state`` change is logged as an ``item.state`` event."""
        row = self._item_row(run_id, {"name": name, **fields}, {})
        sets = {k: v for k, v in row.items() if k not in ("run_id", "name")}
        with self.write():
            current = self._require_item(run_id, name)
            if "state" in fields:
                self._check_move(run_id, name, current["state"], self._check_state(fields["state"]))
            self.db.execute(
                "UPDATE items SET " + ", ".join(f"{k} = :{k}" for k in sets) + " WHERE run_id = :run_id AND name = :name",
                row,
            )
            if "state" in fields:
                self._insert_event(run_id, "item.state", name, {"state": fields["state"]})

    def mark_applying(
        self,
        run_id: str,
        name: str,
        *,
        doc_hash: str | None = None,
        revision_before: int | None = None,
        **data: Any,
    ) -> int:
        """Write-ahead mark, committed durably BEFORE the apply request is sent; returns the attempt number.

        Sets ``state='applying'``, ``attempts += 1``, ``applying_at`` and an
        ``item.applying`` event. After a crash, ``applying`` means "the apply
        may have happened". Save the item's snapshot before calling this.
        Refuses an item already ``applied``/``unchanged`` in this run.
        """
        now = now_rfc3339()
        self._checked(f"chatbot {name!r}", {"doc_hash": doc_hash})
        with self.write(durable=True):
            current = self._require_item(run_id, name)
            if not item_may_move(ItemState(current["state"]), ItemState.APPLYING):
                raise JournalError(
                    f"chatbot {name!r} is already {current['state']} in run {run_id}; refusing to apply it again"
                )
            attempt = int(current["attempts"]) + 1
            self.db.execute(
                "UPDATE items SET state = 'applying', attempts = ?, applying_at = ?, finished_at = NULL, "
                "duration_ms = NULL, error_code = NULL, error_message = NULL, error_section = NULL, "
                "error_key = NULL, doc_hash = COALESCE(?, doc_hash), "
                "revision_before = COALESCE(?, revision_before), updated_at = ? WHERE run_id = ? AND name = ?",
                [attempt, now, doc_hash, revision_before, now, run_id, name],
            )
            self._insert_event(
                run_id, "item.applying", name, {"attempt": attempt, "doc_hash": doc_hash, **data}
            )
        return attempt

    def record_result(
        self,
        run_id: str,
        name: str,
        state: ItemState | str,
        *,
        applied_ops: Any = None,
        revision_after: int | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        error_section: str | None = None,
        error_key: str | None = None,
        requests: int = 0,
        throttled: int = 0,
        retries: int = 0,
        **data: Any,
    ) -> None:
        """Record how an item ended: ``applied|unchanged|failed|drifted|skipped``.

        ``requests``/``throttled`` (429s)/``retries`` are ADDED to the item's
        totals (one call per attempt). ``duration_ms`` is measured from
        ``applying_at`` when the item was ``applying``. Logs ``item.<state>``.
        """
        state = self._check_state(state)
        if not state.is_outcome:
            raise ValueError(f"record_result state must be one of {FINAL_STATES}, not {state.value!r}")
        now = now_rfc3339()
        row = {
            "state": state,
            "applied_ops": None if applied_ops is None else to_json(applied_ops),
            "revision_after": revision_after,
            "error_code": error_code,
            "error_message": error_message,
            "error_section": error_section,
            "error_key": error_key,
            "finished_at": now,
            "updated_at": now,
        }
        self._checked(f"chatbot {name!r}", row)
        with self.write():
            current = self._require_item(run_id, name)
            self._check_move(run_id, name, current["state"], state)
            duration = (
                _ms_between(current["applying_at"], now)
                if current["state"] == ItemState.APPLYING and current["applying_at"]
                else None
            )
            self.db.execute(
                "UPDATE items SET state = :state, applied_ops = COALESCE(:applied_ops, applied_ops), "
                "revision_after = COALESCE(:revision_after, revision_after), error_code = :error_code, "
                "error_message = :error_message, error_section = :error_section, error_key = :error_key, "
                "finished_at = :finished_at, updated_at = :updated_at, duration_ms = :duration_ms, "
                "requests = requests + :requests, throttled = throttled + :throttled, retries = retries + :retries "
                "WHERE run_id = :run_id AND name = :name",
                {**row, "duration_ms": duration, "requests": requests, "throttled": throttled,
                 "retries": retries, "run_id": run_id, "name": name},
            )
            event = {
                k: v
                for k, v in {
                    "error_code": error_code, "error_message": error_message, "error_section": error_section,
                    "error_key": error_key, "revision_after": revision_after, "duration_ms": duration,
                    "requests": requests, "throttled": throttled, "retries": retries,
                }.items()
                if v
            }
            self._insert_event(run_id, f"item.{state}", name, {**event, **data})

    def item(self, run_id: str, name: str) -> ItemRecord:
        return self._item_record(self._require_item(run_id, name))

    def items(self, run_id: str, states: Sequence[str] | str | None = None) -> list[ItemRecord]:
        """A run's items in rollout order (batch, position, name), optionally only some states."""
        self._require_run(run_id)
        sql, params = "SELECT * FROM items WHERE run_id = ?", [run_id]
        if states is not None:
            wanted = [states] if isinstance(states, str) else list(states)
            for s in wanted:
                self._check_state(s)
            sql += f" AND state IN ({', '.join('?' * len(wanted))})"
            params += wanted
        sql += " ORDER BY batch IS NULL, batch, position IS NULL, position, name"
        return [self._item_record(r) for r in self._rows(sql, params)]

    def item_counts(self, run_id: str) -> dict[str, int]:
        """Items per state, e.g. ``{"applied": 58, "failed": 2}``."""
        rows = self.db.execute("SELECT state, COUNT(*) FROM items WHERE run_id = ? GROUP BY state", [run_id])
        return {state: int(n) for state, n in rows.fetchall()}

    # ------------------------------------------------------------ events

    def event(self, run_id: str, kind: str, item: str | None = None, **data: Any) -> int:
        """Append one event (e.g. ``batch.start``, ``batch.halted``); returns its id."""
        with self.write():
            self._require_run(run_id)
            return self._insert_event(run_id, kind, item, data)

    def events(
        self, run_id: str, *, item: str | None = None, kinds: Sequence[str] | None = None
    ) -> list[EventRecord]:
        self._require_run(run_id)
        sql, params = "SELECT * FROM events WHERE run_id = ?", [run_id]
        if item is not None:
            sql += " AND item = ?"
            params.append(item)
        if kinds:
            sql += f" AND kind IN ({', '.join('?' * len(kinds))})"
            params += list(kinds)
        rows = self._rows(sql + " ORDER BY id", params)
        return [EventRecord(**{**r, "data": json.loads(r["data"])}) for r in rows]

    # ------------------------------------------------------------ snapshots

    def save_snapshot(
        self,
        run_id: str,
        name: str,
        document: Any,
        revision: int | None,
        *,
        tenant: str | None = None,
        chatbot_id: str | None = None,
        replace: bool = False,
    ) -> bool:
        """Store the live config of ``name`` before this run changes it; returns whether it was written.

        The first snapshot of a (run, chatbot) wins unless ``replace``: when a
        resumed run re-applies an item, the live config may already be this
        run's own, and must not become the "before" that rollback restores.
        """
        row = {
            "run_id": run_id, "name": name, "tenant": tenant, "chatbot_id": chatbot_id,
            "document": to_json(document), "revision": revision, "taken_at": now_rfc3339(),
        }
        self._checked(f"snapshot of {name!r}", row)
        with self.write():
            self._require_run(run_id)
            exists = self.db.execute(
                "SELECT 1 FROM snapshots WHERE run_id = ? AND name = ?", [run_id, name]
            ).fetchone()
            if exists and not replace:
                return False
            self.db.upsert_all("snapshots", [row], pk=("run_id", "name"))
            self._insert_event(run_id, "snapshot", name, {"revision": revision, "replaced": bool(exists)})
        return True

    def snapshot(self, run_id: str, name: str) -> SnapshotRecord | None:
        rows = self._rows("SELECT * FROM snapshots WHERE run_id = ? AND name = ?", [run_id, name])
        return self._snapshot_record(rows[0]) if rows else None

    def snapshots(self, run_id: str) -> list[SnapshotRecord]:
        self._require_run(run_id)
        rows = self._rows("SELECT * FROM snapshots WHERE run_id = ? ORDER BY name", [run_id])
        return [self._snapshot_record(r) for r in rows]

    # ------------------------------------------------------------ pins

    def pins(self) -> dict[str, dict[str, str]]:
        """What each target's key saw at its last accepted run: ``{"acme/production": {chatbot_id: first_seen}}``."""
        try:
            rows = self._rows("SELECT target, chatbot_id, first_seen FROM pins ORDER BY target, chatbot_id")
        except sqlite3.OperationalError:  # a read-only journal of schema version 1: nothing pinned yet
            return {}
        out: dict[str, dict[str, str]] = {}
        for r in rows:
            out.setdefault(r["target"], {})[r["chatbot_id"]] = r["first_seen"]
        return out

    def record_pins(self, run_id: str, target: str, chatbot_ids: Iterable[str], base_url: str, *, repinned: bool = False) -> None:
        """Pin ``target`` to what its key sees now: ids kept keep their ``first_seen``, gone ones are dropped."""
        ids = set(chatbot_ids)
        now = now_rfc3339()
        self._checked(f"pins of {target!r}", {"target": target, "base_url": base_url, "ids": " ".join(sorted(ids))})
        with self.write():
            known = {r["chatbot_id"] for r in self._rows("SELECT chatbot_id FROM pins WHERE target = ?", [target])}
            self._conn.executemany("DELETE FROM pins WHERE target = ? AND chatbot_id = ?", [(target, i) for i in sorted(known - ids)])
            self._conn.executemany("UPDATE pins SET last_seen = ?, base_url = ? WHERE target = ? AND chatbot_id = ?",
                                   [(now, base_url, target, i) for i in sorted(known & ids)])
            self._conn.executemany(
                "INSERT INTO pins (target, chatbot_id, base_url, first_seen, first_run, last_seen) VALUES (?, ?, ?, ?, ?, ?)",
                [(target, i, base_url, now, run_id, now) for i in sorted(ids - known)],
            )
            kind = "target.repinned" if repinned else ("target.pinned" if not known else "target.seen")
            self._insert_event(run_id, kind, None, {"target": target, "chatbots": len(ids),
                                                    "added": len(ids - known), "dropped": len(known - ids)})

    def forget_pins(self, run_id: str, target: str) -> None:
        """``--repin`` of a target this run does not list: what the journal pinned for it is forgotten."""
        with self.write():
            self.db.execute("DELETE FROM pins WHERE target = ?", [target])
            self._insert_event(run_id, "target.forgotten", None, {"target": target})

    # ------------------------------------------------------------ health

    def integrity_check(self) -> list[str]:
        """``PRAGMA integrity_check``: ``["ok"]`` when the file is sound, else the problems found."""
        return [str(r[0]) for r in self.db.execute("PRAGMA integrity_check").fetchall()]

    # ------------------------------------------------------------ internals

    def _require_run(self, run_id: str) -> None:
        if self.db.execute("SELECT 1 FROM runs WHERE id = ?", [run_id]).fetchone() is None:
            raise UnknownRunError(run_id)

    def _rows(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[dict[str, Any]]:
        cur = self._conn.cursor()
        cur.row_factory = sqlite3.Row
        return [dict(r) for r in cur.execute(sql, params).fetchall()]

    def _require_item(self, run_id: str, name: str) -> dict[str, Any]:
        rows = self._rows("SELECT * FROM items WHERE run_id = ? AND name = ?", [run_id, name])
        if not rows:
            self._require_run(run_id)
            raise UnknownItemError(run_id, name)
        return rows[0]

    @staticmethod
    def _check_status(status: RunStatus | str) -> RunStatus:
        if status not in RUN_STATUSES:
            raise ValueError(f"run status must be one of {RUN_STATUSES}, not {status!r}")
        return RunStatus(status)

    @staticmethod
    def _check_state(state: ItemState | str) -> ItemState:
        if state not in ITEM_STATES:
            raise ValueError(f"item state must be one of {ITEM_STATES}, not {state!r}")
        return ItemState(state)

    @staticmethod
    def _check_move(run_id: str, name: str, current: str, to: ItemState) -> None:
        """Refuse a state change that ``states.ITEM_MOVES`` does not allow (a bug in the caller)."""
        if not item_may_move(ItemState(current), to):
            raise JournalError(f"chatbot {name!r} is {current} in run {run_id}; it may not become {to.value}")

    def _item_row(self, run_id: str, row: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
        if "name" not in row or not isinstance(row["name"], str):
            raise ValueError("every item row needs a 'name' (the chatbot's address, tenant/name)")
        unknown = set(row) - _SETTABLE_ITEM_FIELDS - {"name"}
        if unknown:
            raise ValueError(f"unknown item field(s) {sorted(unknown)}; known: {sorted(_SETTABLE_ITEM_FIELDS)}")
        out: dict[str, Any] = {**defaults, **row, "run_id": run_id, "updated_at": now_rfc3339()}
        if "state" in out:
            self._check_state(out["state"])
        for column in ITEM_JSON:
            if column in out and out[column] is not None:
                out[column] = to_json(out[column])
        self._checked(f"chatbot {row['name']!r}", out)
        return out

    def _upsert_items(self, rows: list[dict[str, Any]]) -> None:
        # upsert_all fills a column missing from some rows with NULL; group rows
        # by their key set so an upsert never blanks a column it was not given.
        groups: dict[frozenset[str], list[dict[str, Any]]] = {}
        for r in rows:
            groups.setdefault(frozenset(r), []).append(r)
        for group in groups.values():
            self.db.upsert_all("items", group, pk=("run_id", "name"))

    # Records take the columns they know, so a newer schema's extra columns don't break reads.
    @staticmethod
    def _run_record(row: dict[str, Any]) -> RunRecord:
        values = {k: row[k] for k in RunRecord.__dataclass_fields__}
        for column in RUN_JSON:
            values[column] = _from_json(values[column]) or {}
        values["status"] = RunStatus(values["status"])
        return RunRecord(**values)

    @staticmethod
    def _item_record(row: dict[str, Any]) -> ItemRecord:
        values = {k: row[k] for k in ItemRecord.__dataclass_fields__}
        for column in ITEM_JSON:
            values[column] = _from_json(values[column])
        values["state"] = ItemState(values["state"])
        return ItemRecord(**values)

    @staticmethod
    def _snapshot_record(row: dict[str, Any]) -> SnapshotRecord:
        values = {k: row[k] for k in SnapshotRecord.__dataclass_fields__}
        values["document"] = _from_json(values["document"])
        return SnapshotRecord(**values)
