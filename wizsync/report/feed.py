"""The live view's per-key counters: a task that reads ``Executor.stats()`` and hands them to the reporter.

Before it existed ``Reporter.stats()`` was never called and the bar read
``retries 0`` while the summary said 50. The executor's counters are the
truth (every request, 429 and retry of every key); this polls them on the
event loop (never from rich's refresh thread: the limiters are not thread-safe).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .progress import Reporter, key_states

if TYPE_CHECKING:
    from ..engine import Executor

__all__ = ["FEED_EVERY", "feed_key_states"]

FEED_EVERY = 0.5  # seconds between two reads (rich redraws 4 times a second)


async def feed_key_states(ex: Executor, reporter: Reporter, every: float = FEED_EVERY) -> None:
    """Until cancelled: ``reporter.keys(key_states(ex.stats()))`` every ``every`` seconds."""
    while True:
        reporter.keys(key_states(ex.stats()))
        await asyncio.sleep(every)
