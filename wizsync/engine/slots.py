"""The global in-flight cap: N slots, first come first served, and a stop that wakes every waiter.

``asyncio.Semaphore`` cannot be told to fail its waiters, so waiting for a slot
"unless the run stops" took two tasks and an ``asyncio.wait`` per request
whenever the cap was reached, which at the cap is every request (~5 % of the
client CPU per request in plan, bench/no_limit.py). Here a waiter is one
future: ``release`` hands the slot straight to the first waiter, ``stop``
fails the waiters that asked to be stopped.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

__all__ = ["Slots"]


class Slots:
    """``limit`` slots; ``acquire(stoppable=True)`` raises ``stopped()`` once ``stop()`` was called."""

    def __init__(self, limit: int, stopped: Callable[[], BaseException]) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._free = limit
        self._stopped = stopped
        self._stopping = False
        self._waiters: deque[tuple[asyncio.Future[None], bool]] = deque()

    def locked(self) -> bool:
        return self._free == 0

    async def acquire(self, *, stoppable: bool = True) -> None:
        if stoppable and self._stopping:
            raise self._stopped()
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (waiter, stoppable)
        self._waiters.append(entry)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release()  # handed a slot just as it was cancelled: pass it on
            else:
                self._discard(entry)
            raise
        except BaseException:
            self._discard(entry)
            raise

    def release(self) -> None:
        """Give a slot back: to the first waiter still waiting, else to the pool."""
        while self._waiters:
            waiter, _ = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1

    def stop(self) -> None:
        """Every stoppable waiter fails now, and every stoppable acquire from now on."""
        self._stopping = True
        kept: deque[tuple[asyncio.Future[None], bool]] = deque()
        for waiter, stoppable in self._waiters:
            if not stoppable:
                kept.append((waiter, stoppable))
            elif not waiter.done():
                waiter.set_exception(self._stopped())
        self._waiters = kept

    def _discard(self, entry: tuple[asyncio.Future[None], bool]) -> None:
        try:
            self._waiters.remove(entry)
        except ValueError:
            pass
