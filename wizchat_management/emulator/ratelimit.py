"""Rate limits of the emulator: per key and per organization, three limiter kinds. No HTTP here.

A limit is ``rate`` requests per second with a ``burst``; what it means
depends on the limiter kind, so the emulator can be the servers wizsync has
never seen (issue 10):

- ``token-bucket`` (the documented contract): capacity = burst, refilled at
  rate per second;
- ``fixed-window``: at most ``burst`` requests per window of ``burst/rate``
  seconds, windows aligned on the clock, nothing carried over;
- ``sliding-window``: at most ``burst`` requests in any trailing
  ``burst/rate`` seconds (a sliding-window log).

A limit is set globally and may be overridden per key; an organization may
have its own limit too (``org_rate``: one allowance shared by every key of
that organization), checked in addition to the key's. A refused request
costs nothing. ``None`` means unlimited. The clock is injectable so tests can
move time by hand.

How a refusal is *told* (X-RateLimit-* headers or not, Retry-After as
seconds, an HTTP-date or not at all) is ``Telling``: the gateway (app.py)
renders it; this module only decides.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass

__all__ = [
    "LIMITER_KINDS",
    "RETRY_AFTER_FORMS",
    "UNLIMITED_CAPACITY",
    "Decision",
    "Limit",
    "RateLimiter",
    "Telling",
    "make_limit",
]

LIMITER_KINDS = ("token-bucket", "fixed-window", "sliding-window")
RETRY_AFTER_FORMS = ("seconds", "http-date", "none")

# Shown as X-RateLimit-Limit/Remaining when a key is unlimited, so the
# headers stay present (and integers) on every response.
UNLIMITED_CAPACITY = 1_000_000


@dataclass(frozen=True)
class Limit:
    rate: float  # requests per second
    burst: int  # bucket capacity / requests per window

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


@dataclass(frozen=True)
class Telling:
    """What answers tell the client about the limit."""

    rate_headers: bool = True  # X-RateLimit-* on every answer, details.retryAfterMs on a 429
    retry_after: str = "seconds"  # the Retry-After header of a 429: seconds | http-date | none

    def __post_init__(self) -> None:
        if self.retry_after not in RETRY_AFTER_FORMS:
            raise ValueError(f"retry_after must be one of {', '.join(RETRY_AFTER_FORMS)}")


@dataclass
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: float  # seconds until the allowance is whole again
    retry_after_ms: int = 0  # when refused: exact ms until one request is allowed

    @property
    def retry_after_s(self) -> int:
        """Retry-After as delay-seconds: rounded up, at least 1."""
        return max(1, math.ceil(self.retry_after_ms / 1000))


class _Allowance:
    """One limit's state; ``wait`` is the seconds until one request is allowed (0: now)."""

    def __init__(self, limit: Limit, now: float) -> None:
        self.limit = limit

    def wait(self, now: float) -> float:
        raise NotImplementedError

    def take(self, now: float) -> None:
        raise NotImplementedError

    def remaining(self, now: float) -> int:
        raise NotImplementedError

    def reset(self, now: float) -> float:
        raise NotImplementedError


class _TokenBucket(_Allowance):
    def __init__(self, limit: Limit, now: float) -> None:
        super().__init__(limit, now)
        self.tokens, self.stamp = float(limit.burst), now

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(float(self.limit.burst), self.tokens + (now - self.stamp) * self.limit.rate)
            self.stamp = now

    def wait(self, now: float) -> float:
        self._refill(now)
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.limit.rate

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1.0

    def remaining(self, now: float) -> int:
        self._refill(now)
        return int(self.tokens)

    def reset(self, now: float) -> float:
        self._refill(now)
        return max(0.0, (self.limit.burst - self.tokens) / self.limit.rate)


class _FixedWindow(_Allowance):
    def __init__(self, limit: Limit, now: float) -> None:
        super().__init__(limit, now)
        self.window = limit.burst / limit.rate
        self.index, self.count = math.floor(now / self.window), 0

    def _roll(self, now: float) -> None:
        index = math.floor(now / self.window)
        if index != self.index:
            self.index, self.count = index, 0

    def _left(self, now: float) -> float:
        return max(0.0, (self.index + 1) * self.window - now)

    def wait(self, now: float) -> float:
        self._roll(now)
        return 0.0 if self.count < self.limit.burst else self._left(now)

    def take(self, now: float) -> None:
        self._roll(now)
        self.count += 1

    def remaining(self, now: float) -> int:
        self._roll(now)
        return max(0, self.limit.burst - self.count)

    def reset(self, now: float) -> float:
        self._roll(now)
        return self._left(now) if self.count else 0.0


class _SlidingLog(_Allowance):
    def __init__(self, limit: Limit, now: float) -> None:
        super().__init__(limit, now)
        self.window = limit.burst / limit.rate
        self.log: deque[float] = deque()

    def _trim(self, now: float) -> None:
        while self.log and self.log[0] <= now - self.window:
            self.log.popleft()

    def wait(self, now: float) -> float:
        self._trim(now)
        return 0.0 if len(self.log) < self.limit.burst else self.log[0] + self.window - now

    def take(self, now: float) -> None:
        self._trim(now)
        self.log.append(now)

    def remaining(self, now: float) -> int:
        self._trim(now)
        return max(0, self.limit.burst - len(self.log))

    def reset(self, now: float) -> float:
        self._trim(now)
        return max(0.0, self.log[-1] + self.window - now) if self.log else 0.0


_KINDS: dict[str, type[_Allowance]] = {
    "token-bucket": _TokenBucket,
    "fixed-window": _FixedWindow,
    "sliding-window": _SlidingLog,
}


class RateLimiter:
    """Allowances keyed by API key label, plus one per organization with an org limit."""

    def __init__(
        self,
        rate: float | None = None,
        burst: int | None = None,
        *,
        limiter: str = "token-bucket",
        org_rate: float | None = None,
        org_burst: int | None = None,
        telling: Telling | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self.kind = _check_kind(limiter)
        self.telling = telling or Telling()
        self.global_limit: Limit | None = make_limit(rate, burst)
        self.org_limit: Limit | None = make_limit(org_rate, org_burst)  # every organization's own
        self.per_key: dict[str, Limit | None] = {}
        self.per_org: dict[str, Limit | None] = {}
        self._allowances: dict[tuple[str, str], _Allowance] = {}

    # -- configuration -------------------------------------------------------

    def configure(self, *, limiter: str | None = None, telling: Telling | None = None) -> None:
        with self._lock:
            if limiter is not None:
                self.kind = _check_kind(limiter)
                self._allowances.clear()
            if telling is not None:
                self.telling = telling

    def set_global(self, rate: float | None, burst: int | None) -> None:
        with self._lock:
            self.global_limit = make_limit(rate, burst)
            self._allowances = {k: v for k, v in self._allowances.items() if k[0] != "key"}

    def set_org_default(self, rate: float | None, burst: int | None) -> None:
        """The limit every organization shares among its keys (``--org-rate``); None: none."""
        with self._lock:
            self.org_limit = make_limit(rate, burst)
            self._allowances = {k: v for k, v in self._allowances.items() if k[0] != "org"}

    def set_key(self, label: str, rate: float | None, burst: int | None, *, unlimited: bool = False) -> None:
        """Override one key's limit; ``unlimited=True`` exempts it, rate=burst=None reverts to global."""
        with self._lock:
            if unlimited:
                self.per_key[label] = None
            elif rate is None and burst is None:
                self.per_key.pop(label, None)
            else:
                self.per_key[label] = make_limit(rate, burst)
            self._allowances.pop(("key", label), None)

    def set_org(self, org_id: str, rate: float | None, burst: int | None) -> None:
        """One organization's shared limit (a seed file's ``organizations[].rate``); None reverts."""
        with self._lock:
            if rate is None and burst is None:
                self.per_org.pop(org_id, None)
            else:
                self.per_org[org_id] = make_limit(rate, burst)
            self._allowances.pop(("org", org_id), None)

    def limit_for(self, label: str) -> Limit | None:
        if label in self.per_key:
            return self.per_key[label]
        return self.global_limit

    def org_limit_for(self, org_id: str | None) -> Limit | None:
        if org_id is None:
            return None
        if org_id in self.per_org:
            return self.per_org[org_id]
        return self.org_limit

    # -- decisions -----------------------------------------------------------

    def _allowance(self, scope: str, name: str, limit: Limit, now: float) -> _Allowance:
        a = self._allowances.get((scope, name))
        if a is None or a.limit != limit or not isinstance(a, _KINDS[self.kind]):
            a = self._allowances[(scope, name)] = _KINDS[self.kind](limit, now)
        return a

    def _active(self, label: str, org_id: str | None, now: float) -> list[_Allowance]:
        out = []
        limit = self.limit_for(label)
        if limit is not None:
            out.append(self._allowance("key", label, limit, now))
        org = self.org_limit_for(org_id)
        if org is not None and org_id is not None:
            out.append(self._allowance("org", org_id, org, now))
        return out

    def _decide(self, label: str, org_id: str | None, take: bool) -> Decision:
        with self._lock:
            now = self.clock()
            active = self._active(label, org_id, now)
            if not active:
                return Decision(True, UNLIMITED_CAPACITY, UNLIMITED_CAPACITY, 0.0)
            wait = max(a.wait(now) for a in active)
            allowed = wait <= 0.0
            if take and allowed:
                for a in active:
                    a.take(now)
            # The tightest allowance is the one the headers describe.
            tight = min(active, key=lambda a: (a.remaining(now), -a.reset(now)))
            return Decision(
                allowed or not take,
                tight.limit.burst,
                tight.remaining(now),
                tight.reset(now),
                0 if allowed else max(1, math.ceil(wait * 1000)),
            )

    def acquire(self, label: str, org_id: str | None = None) -> Decision:
        """Take one request's allowance for ``label`` (and its organization) if there is one."""
        return self._decide(label, org_id, take=True)

    def peek(self, label: str, org_id: str | None = None) -> Decision:
        """The headers' values without taking anything (for answers that must not cost)."""
        return self._decide(label, org_id, take=False)

    def describe(self) -> dict[str, object]:
        def d(limit: Limit | None) -> dict[str, object] | None:
            return None if limit is None else {"rate": limit.rate, "burst": limit.burst}

        return {
            "global": d(self.global_limit),
            "keys": {k: d(v) for k, v in self.per_key.items()},
            "limiter": self.kind,
            "org": d(self.org_limit),
            "orgs": {k: d(v) for k, v in self.per_org.items()},
            "rateHeaders": self.telling.rate_headers,
            "retryAfter": self.telling.retry_after,
        }

    def settings(self) -> dict[str, object]:
        return {"limiter": self.kind, **asdict(self.telling)}


def _check_kind(kind: str) -> str:
    if kind not in _KINDS:
        raise ValueError(f"limiter must be one of {', '.join(LIMITER_KINDS)}")
    return kind
