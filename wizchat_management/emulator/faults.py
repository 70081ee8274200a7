"""Fault injection for tests and benchmarks: latency, 500/503 answers, dropped connections, forced 429s,
applies whose answer is lost after the write (``lose_after_apply_rate``), and a gateway that drops
the ``dryRun`` query parameter, so every dry-run is carried out (``ignore_dry_run``).

Decisions come from one seeded RNG, so a run with the same seed and the same
request order injects the same faults.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class FaultSettings:
    latency_ms: float = 0.0  # added to every API answer
    jitter_ms: float = 0.0  # plus uniform(0, jitter_ms)
    error_rate: float = 0.0  # probability of a 500 internal_error / 503 unavailable
    drop_rate: float = 0.0  # probability of closing the connection without an answer
    seed: int = 0
    # probability that a (non-dry-run) apply is carried out and then its answer is lost
    lose_after_apply_rate: float = 0.0
    # a gateway in front of the API that drops the dryRun query parameter: every dry-run is applied
    ignore_dry_run: bool = False

    def validate(self) -> None:
        for name in ("latency_ms", "jitter_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in ("error_rate", "drop_rate", "lose_after_apply_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if not isinstance(self.ignore_dry_run, bool):
            raise ValueError("ignore_dry_run must be true or false")


@dataclass
class _Forced429:
    label: str | None  # None = every key
    remaining: int | None  # answers left to force; None = until `until`
    until: float | None  # clock time; None = until `remaining` runs out


@dataclass
class FaultDecision:
    delay_s: float = 0.0
    action: str | None = None  # None, "drop", "500", "503", "429"
    retry_after_ms: int = 0


class FaultInjector:
    def __init__(self, settings: FaultSettings | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self.settings = settings or FaultSettings()
        self.settings.validate()
        self._rng = random.Random(self.settings.seed)
        self._forced: list[_Forced429] = []

    def configure(self, **changes: Any) -> FaultSettings:
        """Change some settings (same names as FaultSettings); a new ``seed`` restarts the RNG."""
        with self._lock:
            unknown = set(changes) - set(asdict(self.settings))
            if unknown:
                raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
            new = FaultSettings(**{**asdict(self.settings), **changes})
            new.validate()
            if "seed" in changes:
                self._rng = random.Random(new.seed)
            self.settings = new
            return new

    def force_429(self, label: str | None = None, *, count: int | None = None, seconds: float | None = None) -> None:
        """Answer 429 to the next ``count`` requests of ``label`` (or of every key), or for ``seconds``."""
        if count is None and seconds is None:
            raise ValueError("force_429 needs count or seconds")
        if count is not None and count < 1:
            raise ValueError("count must be >= 1")
        if seconds is not None and seconds <= 0:
            raise ValueError("seconds must be > 0")
        with self._lock:
            until = None if seconds is None else self.clock() + seconds
            self._forced.append(_Forced429(label, count, until))

    def clear(self) -> None:
        with self._lock:
            self._forced.clear()
            self.settings = FaultSettings(seed=self.settings.seed)

    def describe(self) -> dict[str, Any]:
        now = self.clock()
        return {
            **asdict(self.settings),
            "force429": [
                {
                    "key": f.label,
                    "count": f.remaining,
                    "seconds": None if f.until is None else round(max(0.0, f.until - now), 3),
                }
                for f in self._forced
            ],
        }

    def forced_429(self, label: str) -> int | None:
        """If a forced 429 applies to ``label`` now: the ms to announce in retryAfterMs."""
        if not self._forced:
            return None
        with self._lock:
            now = self.clock()
            self._forced = [
                f for f in self._forced if (f.until is None or f.until > now) and (f.remaining is None or f.remaining > 0)
            ]
            for f in self._forced:
                if f.label is None or f.label == label:
                    if f.remaining is not None:
                        f.remaining -= 1
                    if f.until is not None:
                        return max(1, int((f.until - now) * 1000))
                    return 1000
        return None

    def lose_after_apply(self) -> bool:
        """Whether this apply's answer is lost after the write (``lose_after_apply_rate``)."""
        if not self.settings.lose_after_apply_rate:
            return False
        with self._lock:
            return self._rng.random() < self.settings.lose_after_apply_rate

    def decide(self) -> FaultDecision:
        """Latency and the random fault (if any) of one API request."""
        s = self.settings
        if not (s.latency_ms or s.jitter_ms or s.error_rate or s.drop_rate):
            return FaultDecision()
        with self._lock:
            delay = (s.latency_ms + (self._rng.uniform(0, s.jitter_ms) if s.jitter_ms else 0.0)) / 1000
            roll = self._rng.random()
            if roll < s.drop_rate:
                return FaultDecision(delay, "drop")
            if roll < s.drop_rate + s.error_rate:
                return FaultDecision(delay, "500" if self._rng.random() < 0.5 else "503")
            return FaultDecision(delay)


def drop_connection(send: Any) -> bool:
    """Close the client's connection without any answer.

    uvicorn passes the ASGI app its RequestResponseCycle's bound ``send``; the
    cycle holds the transport. Aborting it gives the client a reset with no
    status line (httpx: RemoteProtocolError / ReadError), as a real dropped
    connection would. Marking the cycle disconnected stops uvicorn from trying
    to write its own 500 afterwards. Returns False when not under uvicorn.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        return False
    transport.abort()
    try:
        cycle.disconnected = True  # type: ignore[union-attr]
    except AttributeError:
        pass
    return True
