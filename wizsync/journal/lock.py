"""The run lock: one rollout per target on this machine, whatever the journal or manifest copy.

An ``apply``/``resume``/``rollback`` holds, for as long as it runs:

- one ``target-<hash>.lock`` per target it changes, a target being (API base
  URL, tenant, environment): a second run on any of them refuses, even from
  another ``--journal`` or an edited copy of the manifest;
- ``run-<hash>.lock`` for (journal, run id): a second resume of the same run
  refuses, and ``show``/``runs`` tell a live run from a killed one by it
  (a ``plan`` holds only this one: it changes nothing).

The locks live in one per-user folder (:func:`lock_dir`: ``$WIZSYNC_LOCK_DIR``,
else the platform's user state folder, e.g. ``~/.local/state/wizsync/locks``),
not beside the journal, so every journal on the machine meets the same locks.
Across machines nothing here helps: serialize there with the CI's concurrency
groups (docs/safety.md).

They are OS-level locks (``flock`` on Linux/macOS, ``msvcrt.locking`` on
Windows through ``filelock``) the kernel drops when the holder dies, so a
kill -9 leaves nothing stale. Acquiring never waits: contention is an
immediate :class:`RunLockedError` naming the holder (run, command, pid, host,
since, journal), read from a ``.holder.json`` sidecar. Files are 0600, and a
holder deletes its files on release (on POSIX; a file left by a killed holder
goes at the next acquire or probe of it), so the folder does not fill up.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import RunLockedError
from .ids import now_rfc3339

LOCK_DIR_ENV = "WIZSYNC_LOCK_DIR"


def lock_dir() -> Path:
    """The per-user lock folder: ``$WIZSYNC_LOCK_DIR`` if set, else the platform's user state folder."""
    configured = os.environ.get(LOCK_DIR_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_state_dir("wizsync", appauthor=False)) / "locks"


@dataclass(frozen=True, order=True)
class LockTarget:
    """What one rollout changes: a tenant's organization in an environment, at an API base URL."""

    base_url: str
    tenant: str
    environment: str

    @property
    def label(self) -> str:
        return f"{self.tenant}/{self.environment}"

    @classmethod
    def of(cls, base_url: str, tenant: str, environment: str) -> LockTarget:
        return cls(normal_base_url(base_url), tenant, environment)


def normal_base_url(url: str) -> str:
    """``HTTPS://Api.X.com/`` and ``https://api.x.com`` are one target."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


def run_lock_path(journal_path: str | os.PathLike[str], run_id: str) -> Path:
    return lock_dir() / f"run-{_digest('run', str(Path(journal_path).resolve()), run_id)}.lock"


def target_lock_path(target: LockTarget) -> Path:
    return lock_dir() / f"target-{_digest('target', target.base_url, target.tenant, target.environment)}.lock"


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
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(holder, sort_keys=True))
    os.replace(tmp, _sidecar(lock_path))


class _OsLock:
    """A non-blocking exclusive lock on one file, which the holder deletes when it lets go.

    POSIX: ``flock``. Deleting a lock file is safe because whoever locks it
    checks afterwards that the path still names the inode it locked (else it
    locked a deleted file: it retries on the new one).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._fallback: Any = None

    def try_acquire(self, *, create: bool = True) -> bool:
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
            from filelock import FileLock, Timeout

            if not create and not self.path.exists():
                return False
            self._fallback = FileLock(str(self.path))
            try:
                self._fallback.acquire(timeout=0)
            except Timeout:
                self._fallback = None
                return False
            return True
        import fcntl

        for _ in range(100):
            flags = os.O_RDWR | (os.O_CREAT if create else 0)
            try:
                fd = os.open(self.path, flags, 0o600)
            except FileNotFoundError:
                return False
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return True
            os.close(fd)  # locked a file its holder deleted meanwhile: take the new one
            if not create:
                return False
        raise OSError(f"could not lock {self.path}: it keeps being replaced")

    def release(self, *, delete: bool = True) -> None:
        if self._fallback is not None:  # pragma: no cover - Windows
            self._fallback.release()
            self._fallback = None
            return
        if self._fd is None:
            return
        if delete:
            with contextlib.suppress(OSError):
                _sidecar(self.path).unlink()
            with contextlib.suppress(OSError):
                self.path.unlink()
        os.close(self._fd)  # closing drops the flock
        self._fd = None


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "another process (it is starting up; its details are not written yet)"
    parts = [f"run {holder.get('run_id')}"]
    if holder.get("command"):
        parts.append(f"(wizsync {holder['command']})")
    parts.append(f"in process {holder.get('pid')} on host {holder.get('host')}")
    if holder.get("acquired_at"):
        parts.append(f"since {holder['acquired_at']}")
    if holder.get("journal"):
        parts.append(f"with journal {holder['journal']}")
    return " ".join(parts)


_RELEASE_NOTE = (
    "The lock is released automatically when that process ends (even if it is killed); "
    "wait for it to finish or stop it, then retry."
)


class RunLock:
    """The locks one run holds; use :meth:`acquire` as a context manager or call :meth:`release`."""

    def __init__(self, held: list[_OsLock], holder: dict[str, Any]) -> None:
        self._held = held
        self.holder = holder

    @classmethod
    def acquire(
        cls,
        journal_path: str | os.PathLike[str],
        run_id: str,
        *,
        environment: str,
        targets: Sequence[LockTarget] = (),
        manifest_path: str | os.PathLike[str] | None = None,
        command: str = "apply",
    ) -> RunLock:
        """Take the run's lock and one lock per target, without waiting.

        Raises :class:`RunLockedError` (naming the holder) if another process
        holds any of them; then nothing is held.
        """
        directory = lock_dir()
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise RunLockedError(
                f"cannot create the lock folder {directory} ({exc}); set {LOCK_DIR_ENV} to a folder you can write",
                None,
            ) from exc
        unique = sorted(set(targets))
        holder: dict[str, Any] = {
            "run_id": run_id,
            "command": command,
            "environment": environment,
            "targets": [],
            "journal": str(Path(journal_path).resolve()),
            "manifest_path": None if manifest_path is None else str(Path(manifest_path).resolve()),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "acquired_at": now_rfc3339(),
        }
        lock = cls([], holder)
        try:
            lock._take(None, run_lock_path(journal_path, run_id))
            lock.add(unique)
        except BaseException:
            lock.release()
            raise
        return lock

    def add(self, targets: Sequence[LockTarget]) -> None:
        """Also take these targets' locks (a resume learns its targets from the manifest); all or none."""
        mine = set(self.holder["targets"])
        new = sorted(set(targets))
        taken: list[_OsLock] = []
        try:
            for target in new:
                path = target_lock_path(target)
                if any(h.path == path for h in self._held):
                    continue
                taken.append(self._take(target, path))
        except BaseException:
            for lock in taken:
                self._held.remove(lock)
                lock.release()
            raise
        self.holder["targets"] = sorted(mine | {t.label for t in new})
        for lock in self._held:  # every sidecar names all the targets
            _write_holder(lock.path, self.holder)

    def _take(self, target: LockTarget | None, path: Path) -> _OsLock:
        lock = _OsLock(path)
        if not lock.try_acquire():
            raise RunLockedError(_message(target, self.holder["run_id"], path), _read_holder(path))
        self._held.append(lock)
        _write_holder(path, self.holder)
        return lock

    def release(self) -> None:
        """Release every lock (idempotent), deleting its files while they are still ours."""
        while self._held:
            self._held.pop().release()

    @property
    def held(self) -> bool:
        return bool(self._held)

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _message(target: LockTarget | None, run_id: str, path: Path) -> str:
    holder = _read_holder(path)
    if target is None:
        head = f"run {run_id} is already running: held by {_describe(holder)}."
    else:
        head = (
            f"tenant '{target.tenant}' in '{target.environment}' ({target.base_url}) is already being changed by "
            f"{_describe(holder)}. One rollout per target at a time, whatever the journal or manifest copy."
        )
    return f"{head} {_RELEASE_NOTE}"


def lock_holder(journal_path: str | os.PathLike[str], run_id: str) -> dict[str, Any] | None:
    """Who holds run ``run_id``'s lock right now: the holder's details, or ``None`` if nobody does.

    ``show``/``runs`` use it to tell a run that is really running from one
    whose process died (status ``running`` in the journal, no holder).
    Probing never creates a file; it takes and drops a lock nobody holds,
    deleting the files a killed holder left. Call it from a process that
    does not hold that run.
    """
    path = run_lock_path(journal_path, run_id)
    if not path.exists():
        return None
    lock = _OsLock(path)
    if lock.try_acquire(create=False):
        lock.release()
        return None
    if not path.exists():
        return None  # released (and deleted) between the two checks
    return _read_holder(path) or {"run_id": run_id}
