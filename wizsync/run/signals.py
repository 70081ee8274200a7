"""Ctrl-C and SIGTERM during a run, the way operators expect (kubectl, terraform).

- While the run works (fleet loading, the up-front plan, the batches): the
  first SIGINT or SIGTERM stops it gracefully — nothing new starts, requests
  in flight finish (or are abandoned after ``GRACE_SECONDS``), the run ends
  ``interrupted`` and says how to resume. A second signal forces: the run
  ends ``interrupted`` at once (an apply in flight stays ``applying``: "may
  have happened", which resume settles).
- At the confirmation prompt nothing has been sent yet: one Ctrl-C (or a
  SIGTERM) aborts at once, without waiting for Enter.

``asyncio.run`` installs a SIGINT handler that only cancels the main task,
which cannot interrupt a prompt blocked reading the terminal (the first
Ctrl-C was swallowed until Enter). So the prompt gets Python's own
``KeyboardInterrupt`` handler for its duration.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["GRACE_SECONDS", "RunStopped", "Forced", "StopSignals", "signal_name"]

#: How long requests in flight may take to finish after a graceful stop before they are abandoned.
#: Under Kubernetes' default 30 s between SIGTERM and SIGKILL, so the journal is written first.
GRACE_SECONDS = 20.0

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


class RunStopped(Exception):
    """A stop signal came before the rollout (fleet loading, the up-front plan, the prompt): nothing more is sent."""

    def __init__(self, signum: int, *, at_prompt: bool = False) -> None:
        super().__init__(f"stopped by {signal_name(signum)}" + (" at the confirmation prompt" if at_prompt else ""))
        self.signum = signum
        self.at_prompt = at_prompt
        self.run_id: str | None = None  # set by the run lifecycle


class Forced(KeyboardInterrupt):
    """A second signal, or the grace period ran out: stop at once."""

    def __init__(self, signum: int, *, expired: bool = False) -> None:
        super().__init__(f"forced by {signal_name(signum)}" + (" (the grace period ran out)" if expired else ""))
        self.signum = signum
        self.run_id: str | None = None  # set by the run lifecycle


class StopSignals:
    """The run's signal handling; ``on_stop`` is told about the first signal (e.g. ``Executor.stop``)."""

    def __init__(self, grace: float = GRACE_SECONDS) -> None:
        self.grace = grace
        self.signum: int | None = None  # the first signal received
        self.forced: Forced | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_stop: list[Callable[[], None]] = []
        self._timer: asyncio.TimerHandle | None = None

    @property
    def stopping(self) -> bool:
        return self.signum is not None

    def install(self, on_stop: Callable[[], None]) -> None:
        """Handle both signals in the running loop from now on (idempotent; ``on_stop`` is added)."""
        if on_stop not in self._on_stop:
            self._on_stop.append(on_stop)
        if self.signum is not None:
            on_stop()
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._add_handlers()

    def _add_handlers(self) -> None:
        assert self._loop is not None
        for signum in SIGNALS:
            try:
                self._loop.add_signal_handler(signum, self._received, signum)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - not the main thread, Windows
                pass

    def _remove_handlers(self) -> None:
        assert self._loop is not None
        for signum in SIGNALS:
            try:
                self._loop.remove_signal_handler(signum)
            except (NotImplementedError, RuntimeError):  # pragma: no cover
                pass

    def _received(self, signum: int) -> None:
        if self.signum is not None:
            self._force(Forced(signum))
        self.signum = signum
        for stop in self._on_stop:
            stop()
        assert self._loop is not None
        self._timer = self._loop.call_later(self.grace, lambda: self._force(Forced(signum, expired=True)))

    def _force(self, forced: Forced) -> None:
        # Raised out of the loop: asyncio.run cancels the main task, whose lifecycle records `interrupted`.
        self.forced = forced
        raise forced

    def check(self) -> None:
        """Between phases: raise ``RunStopped`` when a stop came (so nothing after it starts)."""
        if self.signum is not None:
            raise RunStopped(self.signum)

    def uninstall(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._loop is not None:
            self._remove_handlers()
            self._loop = None

    @contextmanager
    def prompting(self) -> Iterator[None]:
        """For a blocking prompt: one Ctrl-C or SIGTERM aborts it at once (``RunStopped``)."""
        self.check()
        if self._loop is not None:
            self._remove_handlers()
        received: list[int] = []

        def interrupt(signum: int, frame: FrameType | None) -> Any:
            received.append(signum)
            raise KeyboardInterrupt

        try:
            previous = {s: signal.signal(s, interrupt) for s in SIGNALS}
        except ValueError:  # pragma: no cover - not the main thread: signals are not ours to take
            previous = {}
        try:
            yield
        except KeyboardInterrupt:
            raise RunStopped(received[0] if received else signal.SIGINT, at_prompt=True) from None
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            if self._loop is not None:
                self._add_handlers()
