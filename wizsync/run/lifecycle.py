"""The life of one run, whatever the command: lock, journal row, recorder, signals, how it ends.

``plan``, ``apply``, ``resume`` and ``rollback`` differ in where their items
come from (``wizsync.run.items``: the fleet, the journal, snapshots) and in
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

from ..engine import Executor, Stopped
from ..journal import Journal, JournalError, LockTarget, RunLock
from ..journal.recorder import Recorder
from ..manifest import ManifestError
from ..report.feed import feed_key_states
from ..report.progress import key_states
from .signals import RunStopped, StopSignals, signal_name

if TYPE_CHECKING:
    from ..report.progress import Reporter

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
    signals: StopSignals = field(default_factory=StopSignals)
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
        self._stack.push(_flush_on_error(self))  # runs first: the counters, then how the run ended
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
                               parent_run=parent_run, run_id=self.run_id)
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
        """The first Ctrl-C (or SIGTERM) also stops ``ex``: nothing new starts, calls in flight finish."""
        self.signals.install(ex.stop)

    def _stopping(self) -> None:
        """The first signal: say so in the journal at once (the run's end may take the grace period)."""
        if self.live and self.signals.signum is not None:
            self.journal.event(self.run_id, "run.stopping", signal=signal_name(self.signals.signum))

    def check(self) -> None:
        """Between phases: a stop that came ends the run here (``RunStopped``), before the next phase sends anything."""
        self.signals.check()

    def confirm(self, confirm: Callable[[str], bool], question: str) -> bool:
        """Ask, with one Ctrl-C (or SIGTERM) aborting at once (``RunStopped``, ``at_prompt``)."""
        if self.reporter is not None:
            self.reporter.pause()  # a live progress display would hide the question
        try:
            with self.signals.prompting():
                return confirm(question)
        finally:
            if self.reporter is not None:
                self.reporter.unpause()

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
    # Graceful from the start: a signal is remembered; each phase ends at the next check (see wizsync.run.signals).
    life.signals.install(life._stopping)
    try:
        with life._stack:
            try:
                yield life
            except Stopped:
                if life.signals.signum is None:
                    raise
                raise RunStopped(life.signals.signum) from None
    except RunStopped as stop:
        stop.run_id = run_id
        raise
    except BaseException:
        if life.signals.forced is not None:
            life.signals.forced.run_id = run_id
        raise
    finally:
        life.signals.uninstall()
        if reporter is not None:
            reporter.finish()
        lock.release()
        journal.close()


def _flush_on_error(life: Lifecycle) -> Callable[..., bool]:
    """On the way out with an error: journal the counters no item took, so a stopped run counts every request."""

    def exit_(exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        if exc is not None and life.live:
            try:
                life.recorder.flush()
            except Exception:  # the run's own error matters more
                pass
        return False

    return exit_
