"""The run lock: OS-level file locks the kernel releases when the holder dies.

An ``apply``/``resume``/``rollback`` holds, for as long as it runs:

- ``locks/run-<RUN_ID>.lock``: a second apply/resume of the same run refuses;
- ``locks/target-<hash>.lock`` for (environment, manifest path) and for
  (environment, manifest hash): a second run on the same environment and
  manifest (same file, or the same content at another path) refuses.

The ``locks/`` directory sits beside the journal. The locks are ``filelock``
locks (``flock`` on Linux/macOS, ``msvcrt.locking`` on Windows), so a
process killed with kill -9 leaves nothing stale: the kernel drops its lock
and the next acquire succeeds at once (unlike a lock row in a table, which
Liquibase users must clear by hand — field-notes.md, "Locks"). Acquiring
never waits: contention is an immediate :class:`RunLockedError` naming the
holder (run, command, pid, host, since), read from a ``.holder.json`` sidecar
the holder writes next to each lock file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from .errors import RunLockedError
from .ids import now_rfc3339

_SAFE = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")


def lock_dir(journal_path: str | os.PathLike[str]) -> Path:
    return Path(journal_path).resolve().parent / "locks"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]


def run_lock_path(journal_path: str | os.PathLike[str], run_id: str) -> Path:
    name = run_id if _SAFE.match(run_id) else _digest("run", run_id)
    return lock_dir(journal_path) / f"run-{name}.lock"


def target_lock_paths(
    journal_path: str | os.PathLike[str], environment: str, manifest_path: str | os.PathLike[str] | None,
    manifest_hash: str | None,
) -> list[Path]:  # fmt: skip
    keys = []
    if manifest_path is not None:
        keys.append(_digest("path", environment, str(Path(manifest_path).resolve())))
    if manifest_hash:
        keys.append(_digest("hash", environment, manifest_hash))
    return [lock_dir(journal_path) / f"target-{k}.lock" for k in keys]


def _sidecar(lock_path: Path) -> Path:
    return lock_path.with_name(lock_path.name + ".holder.json")


def _read_holder(lock_path: Path) -> dict[str, Any]:
    try:
        data = json.loads(_sidecar(lock_path).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_holder(lock_path: Path, holder: dict[str, Any]) -> None:
    # Write then rename, so a reader never sees half a file.
    tmp = _sidecar(lock_path).with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(holder, sort_keys=True), encoding="utf-8")
    os.replace(tmp, _sidecar(lock_path))


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "another process (it is starting up; its details are not written yet)"
    parts = [f"run {holder.get('run_id')}"]
    if holder.get("command"):
        parts.append(f"(wizsync {holder['command']})")
    parts.append(f"in process {holder.get('pid')} on host {holder.get('host')}")
    if holder.get("acquired_at"):
        parts.append(f"since {holder['acquired_at']}")
    return " ".join(parts)


_RELEASE_NOTE = (
    "The lock is released automatically when that process ends (even if it is killed); "
    "wait for it to finish or stop it, then retry."
)


class RunLock:
    """The locks one run holds; use :meth:`acquire` as a context manager or call :meth:`release`."""

    def __init__(self, held: list[tuple[Path, FileLock]], holder: dict[str, Any]) -> None:
        self._held = held
        self.holder = holder

    @classmethod
    def acquire(
        cls,
        journal_path: str | os.PathLike[str],
        run_id: str,
        *,
        environment: str,
        manifest_path: str | os.PathLike[str] | None = None,
        manifest_hash: str | None = None,
        command: str = "apply",
    ) -> RunLock:
        """Take the run lock and the environment+manifest locks, without waiting.

        Raises :class:`RunLockedError` (naming the holder) if another process
        holds any of them; then nothing is held.
        """
        directory = lock_dir(journal_path)
        directory.mkdir(parents=True, exist_ok=True)
        holder = {
            "run_id": run_id,
            "command": command,
            "environment": environment,
            "manifest_path": None if manifest_path is None else str(Path(manifest_path).resolve()),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "acquired_at": now_rfc3339(),
        }
        wanted = [("run", run_lock_path(journal_path, run_id))] + [
            ("target", p) for p in target_lock_paths(journal_path, environment, manifest_path, manifest_hash)
        ]
        held: list[tuple[Path, FileLock]] = []
        try:
            for kind, path in wanted:
                lock = FileLock(str(path))
                try:
                    lock.acquire(timeout=0)
                except Timeout:
                    raise RunLockedError(_message(kind, run_id, environment, holder, path), _read_holder(path)) from None
                held.append((path, lock))
                _write_holder(path, holder)
        except BaseException:
            cls(held, holder).release()
            raise
        return cls(held, holder)

    def release(self) -> None:
        """Release every lock (idempotent). The sidecar goes first, while the lock is still ours."""
        while self._held:
            path, lock = self._held.pop()
            with contextlib.suppress(OSError):
                _sidecar(path).unlink()
            lock.release()

    @property
    def held(self) -> bool:
        return bool(self._held)

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _message(kind: str, run_id: str, environment: str, me: dict[str, Any], path: Path) -> str:
    holder = _read_holder(path)
    if kind == "run":
        head = f"run {run_id} is already running: held by {_describe(holder)}."
    else:
        head = (
            f"environment {environment!r} with manifest {me['manifest_path'] or '(same content)'} is already "
            f"being changed by {_describe(holder)}."
        )
    return f"{head} {_RELEASE_NOTE}"


def lock_holder(journal_path: str | os.PathLike[str], run_id: str) -> dict[str, Any] | None:
    """Who holds run ``run_id``'s lock right now: the holder's details, or ``None`` if nobody does.

    ``show``/``runs`` use it to tell a run that is really running from one
    whose process died (status ``running`` in the journal, no holder).
    Probing takes and drops the lock, so call it from a process that does not
    hold that run.
    """
    path = run_lock_path(journal_path, run_id)
    if not path.exists():
        return None
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return _read_holder(path) or {"run_id": run_id}
    lock.release()
    return None
