"""The life of one run, whatever the command: lock, journal row, recorder, signals, how it ends.

``plan``, ``apply``, ``resume`` and ``rollback`` differ in where their items
come from (``wizsync.items``: the fleet, the journal, snapshots) and in
what they do with them; how a run starts, holds its lock, counts requests and
ends is written once, here:

1. preparation (``prepared``): the journal is open, nothing is held yet; a
   refusal closes the journal and leaves no run behind;
2. ``run_lifecycle`` takes the run's OS-level lock (released by the kernel if
   the process is killed) and yields a :class:`Lifecycle`;
3. ``Lifecycle.start`` (a new run) or ``Lifecycle.reopen`` (a resume) makes
   the journal's run row this process's: from then on the run is never left
   ``running`` by a process alive to say otherwise — it ends ``failed`` on a
   user error, ``interrupted`` on anything else (Ctrl-C, a crash of ours), or
   with the status ``Lifecycle.finish`` records;
4. on the way out, whatever happened: the reporter is closed, the lock
   released, the journal closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .engine import Executor
from .journal import Journal, JournalError, LockTarget, RunLock
from .manifest import ManifestError
from .recorder import Recorder
from .report.feed import feed_key_states
from .report.progress import key_states

if TYPE_CHECKING:
    from .report.progress import Reporter

__all__ = ["USER_ERRORS", "Lifecycle", "prepared", "run_lifecycle"]

# A run that stops on one of these failed (bad input, a refusal); on anything else it was interrupted.
USER_ERRORS: tuple[type[BaseException], ...] = (ManifestError, JournalError)


@contextmanager
def prepared(journal: Journal) -> Iterator[Journal]:
    """Checks before a run holds anything: on an error the journal is closed (no run is left behind).

    On success the journal stays open: ``run_lifecycle`` takes it over.
    """
    try:
        yield journal
    except BaseException:
        journal.close()
        raise


@dataclass
class Lifecycle:
    """One run of this process, from its lock to its final status."""

    journal: Journal
    run_id: str
    user_errors: tuple[type[BaseException], ...]
    reporter: Reporter | None = None
    recorder: Recorder = field(init=False)
    live: bool = False  # the journal's run row is this process's (started or reopened)
    lock: RunLock | None = None
    _stack: ExitStack = field(default_factory=ExitStack)

    def __post_init__(self) -> None:
        listener = self.reporter.request_event if self.reporter is not None else None
        self.recorder = Recorder(self.journal, self.run_id, listener=listener)

    def watch(self, ex: Executor) -> None:
        """Feed the reporter the executor's per-key state (requests, 429s, retries, pace, waits) while the run lasts."""
        if self.reporter is not None:
            reporter = self.reporter
            task = asyncio.ensure_future(feed_key_states(ex, reporter))

            def stop() -> None:
                task.cancel()
                reporter.keys(key_states(ex.stats()))  # the final counts, for the summary line

            self._stack.callback(stop)

    def _go_live(self) -> None:
        # From here on an exception ends the run `failed` or `interrupted`, never `running`.
        self._stack.enter_context(self.journal.closing_run(self.run_id, self.user_errors))
        self.live = True

    def start(
        self,
        command: str,
        environment: str,
        manifest_path: Any,
        manifest_hash: str | None,
        options: Mapping[str, Any],
        *,
        parent_run: str | None = None,
    ) -> None:
        """Record the new run (``running``)."""
        self.journal.start_run(command, environment, manifest_path, manifest_hash, dict(options),
                               parent_run=parent_run, run_id=self.run_id)  # fmt: skip
        self._go_live()

    def hold(self, targets: Sequence[LockTarget]) -> None:
        """Also lock these targets (a resume learns them from the manifest it reopens)."""
        assert self.lock is not None
        self.lock.add(targets)

    def reopen(self, *, force: bool) -> None:
        """A resume: the recorded run goes back to ``running`` under this process."""
        self.journal.reopen_run(self.run_id, force=force)
        self._go_live()

    def graceful(self, ex: Executor) -> None:
        """From now on the first Ctrl-C (or SIGTERM) stops the run gracefully; a second one forces."""
        ex.stop_on_signals()

    def finish(self, status: str, error: str | None = None) -> None:
        """Record how the run ended (the counters no item took first, so the totals count every request)."""
        self.recorder.flush()
        self.journal.finish_run(self.run_id, status, error=error or None)


@contextmanager
def run_lifecycle(
    journal: Journal,
    run_id: str,
    acquire: Callable[[], RunLock],
    *,
    user_errors: tuple[type[BaseException], ...] = USER_ERRORS,
    reporter: Reporter | None = None,
) -> Iterator[Lifecycle]:
    """Hold the run's lock for the block; the journal (already open) is closed on the way out."""
    with prepared(journal):
        lock = acquire()
    life = Lifecycle(journal, run_id, user_errors, reporter, lock=lock)
    try:
        with life._stack:
            yield life
    finally:
        if reporter is not None:
            reporter.finish()
        lock.release()
        journal.close()
