"""One dry-run first, per server: the rest wait until its answer proves the server only plans.

A server, or a gateway in front of it that drops query parameters it does not
know, may carry out a dry-run as an apply (``POST …/apply`` without
``dryRun=true`` is an apply). The SDK refuses such an answer
(``dry_run_applied``) and the engine then stops the run (``retry.halts_run``),
but by then every dry-run in flight has reached the server too: with a cap of
16 in flight, up to 16 chatbots changed by a ``plan``. So the first dry-run to
each origin (scheme, host, port) goes alone; the others wait for its answer.
The judge is the SDK: a dry-run call that returns (its answer said ``dryRun:
true``, nothing applied) opens the origin for the rest of the run; one that
fails hands the turn to the next dry-run (an error, no answer, a 429), except
the one that applied, which has stopped the run first, so nothing else is
sent (``Executor.call``). It costs one round trip, once per origin, at the
start of a run's dry-runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

__all__ = ["DryRunGate"]


class DryRunGate:
    """Per origin: unproven (the next dry-run goes alone), probing (one is out), proven (all go)."""

    def __init__(self) -> None:
        self._proven: set[bytes] = set()
        self._probing: dict[bytes, asyncio.Event] = {}  # origin → set when the probe's answer is in

    @staticmethod
    def origin(request: httpx.Request) -> bytes:
        url = request.url
        return b"%s://%s:%d" % (url.raw_scheme, url.raw_host, url.port or (443 if url.scheme == "https" else 80))

    async def enter(self, origin: bytes, wait: Callable[[asyncio.Event], Awaitable[Any]]) -> bool:
        """Return once ``origin``'s dry-run may be sent; True if it is the probe (``settle`` it after).

        ``wait(event)`` waits for the probe out (the executor's: a stop ends the wait).
        """
        while origin not in self._proven:
            probe = self._probing.get(origin)
            if probe is None:
                self._probing[origin] = asyncio.Event()
                return True
            await wait(probe)
        return False

    def settle(self, origin: bytes, proven: bool) -> None:
        """The probe's outcome: the origin is proven, or the next dry-run probes."""
        if proven:
            self._proven.add(origin)
        event = self._probing.pop(origin, None)
        if event is not None:
            event.set()
