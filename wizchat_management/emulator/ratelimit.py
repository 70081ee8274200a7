"""Per-key token buckets (capacity = burst, refill = rate per second) and the X-RateLimit-* headers.

A limit is configured globally and may be overridden per key; ``None`` means
unlimited. The clock is injectable so tests can move time by hand.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# Shown as X-RateLimit-Limit/Remaining when a key is unlimited, so the
# headers stay present (and integers) on every response.
UNLIMITED_CAPACITY = 1_000_000


@dataclass(frozen=True)
class Limit:
    rate: float  # tokens per second
    burst: int  # bucket capacity

    def __post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise ValueError("rate must be a positive number of requests per second")
        if self.burst < 1:
            raise ValueError("burst must be >= 1")


def make_limit(rate: float | None, burst: int | None) -> Limit | None:
    """``rate`` alone gives a burst of max(1, rate); neither gives unlimited."""
    if rate is None and burst is None:
        return None
    if rate is None:
        raise ValueError("burst needs a rate")
    return Limit(float(rate), int(burst if burst is not None else max(1, math.ceil(rate))))


@dataclass
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: float  # seconds until full
    retry_after_ms: int = 0  # when refused: exact ms until one token

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", f"{self.reset:.3f}".encode()),
        ]

    @property
    def retry_after_s(self) -> int:
        """Retry-After: integer seconds, rounded up, at least 1."""
        return max(1, math.ceil(self.retry_after_ms / 1000))


class _Bucket:
    __slots__ = ("limit", "tokens", "stamp")

    def __init__(self, limit: Limit, now: float) -> None:
        self.limit = limit
        self.tokens = float(limit.burst)
        self.stamp = now

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(float(self.limit.burst), self.tokens + (now - self.stamp) * self.limit.rate)
            self.stamp = now


class RateLimiter:
    """Token buckets keyed by API key label."""

    def __init__(
        self, rate: float | None = None, burst: int | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self.global_limit: Limit | None = make_limit(rate, burst)
        self.per_key: dict[str, Limit | None] = {}
        self._buckets: dict[str, _Bucket] = {}

    def set_global(self, rate: float | None, burst: int | None) -> None:
        with self._lock:
            self.global_limit = make_limit(rate, burst)
            self._buckets.clear()

    def set_key(self, label: str, rate: float | None, burst: int | None, *, unlimited: bool = False) -> None:
        """Override one key's limit; ``unlimited=True`` exempts it, rate=burst=None reverts to global."""
        with self._lock:
            if unlimited:
                self.per_key[label] = None
            elif rate is None and burst is None:
                self.per_key.pop(label, None)
            else:
                self.per_key[label] = make_limit(rate, burst)
            self._buckets.pop(label, None)

    def limit_for(self, label: str) -> Limit | None:
        if label in self.per_key:
            return self.per_key[label]
        return self.global_limit

    def _bucket(self, label: str, limit: Limit, now: float) -> _Bucket:
        b = self._buckets.get(label)
        if b is None or b.limit != limit:
            b = self._buckets[label] = _Bucket(limit, now)
        else:
            b.refill(now)
        return b

    def acquire(self, label: str) -> Decision:
        """Take one token for ``label`` if there is one; a refusal costs nothing."""
        limit = self.limit_for(label)
        if limit is None:
            return Decision(True, UNLIMITED_CAPACITY, UNLIMITED_CAPACITY, 0.0)
        with self._lock:
            now = self.clock()
            b = self._bucket(label, limit, now)
            if b.tokens >= 1.0:
                b.tokens -= 1.0
                allowed, wait_ms = True, 0
            else:
                allowed = False
                wait_ms = max(1, math.ceil((1.0 - b.tokens) / limit.rate * 1000))
            reset = (limit.burst - b.tokens) / limit.rate
            return Decision(allowed, limit.burst, int(b.tokens), max(0.0, reset), wait_ms)

    def peek(self, label: str) -> Decision:
        """The headers' values without taking a token (for answers that must not cost one)."""
        limit = self.limit_for(label)
        if limit is None:
            return Decision(True, UNLIMITED_CAPACITY, UNLIMITED_CAPACITY, 0.0)
        with self._lock:
            b = self._bucket(label, limit, self.clock())
            return Decision(True, limit.burst, int(b.tokens), max(0.0, (limit.burst - b.tokens) / limit.rate))

    def describe(self) -> dict[str, object]:
        def d(limit: Limit | None) -> dict[str, object] | None:
            return None if limit is None else {"rate": limit.rate, "burst": limit.burst}

        return {"global": d(self.global_limit), "keys": {k: d(v) for k, v in self.per_key.items()}}
