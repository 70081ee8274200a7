"""The rate a server grants one key, learnt blind: from 429s, their absence and accepted requests.

For a server (or a gateway in front of it) that sends no ``X-RateLimit-*``
headers. Whatever its limiter (token bucket, fixed window, sliding-window
log), two facts hold:

- a 429 means the key's allowance is used up *at that instant*;
- between two such instants, every request the server accepted was paid for
  by allowance granted in between, so ``(accepted − 1) / elapsed`` is a
  lower bound on the granted rate (−1: the allowance left at either end is
  under one request; what the server granted while we were too slow to use
  it is lost, which only lowers the figure).

So the estimate only ever rests on what the server did, never on how fast we
happened to send (botocore's CUBIC takes the *send* rate at the throttle as
its w_max, which a burst inflates: 27-30 % 429s in issue 10's table).

The pace, per phase:

- *slow start*, before the first 429: from ``SLOW_START_RATE``, doubling
  every ``SLOW_START_DOUBLING`` accepted requests — fast enough for a server
  that never throttles, gentle enough that the first 429 comes alone;
- after it, a *climb*: from what slow start's allowance coming back says
  (``reopened_rate``: the requests it got through, over the time until the
  next one was accepted), doubling every ``CLIMB_DOUBLING`` accepted
  requests or ``CLIMB_SECONDS``, until the next 429. That 429 measures the
  rate (``climb_estimate``): the pace the last accepted requests held, which
  a window limiter pins (it refuses within a window of going faster), tempered
  by the accepted count net of the burst where the climb never ran below it
  (a token bucket's burst carries a climb past the rate);
- then *hold* at ``HOLD`` × the ceiling, a little under it: a window
  limiter (fixed or sliding) carries nothing over, so any pace above its
  rate draws 429s at once, and each one costs the whole key the
  Retry-After (often rounded up to a second);
- *probe* after ``hold`` accepted requests without a 429 (``MIN_HOLD`` after
  the climb: a probe is a 429 or more, for a few % of pace at best once the
  climb has measured the rate, so they stay rare): the pace doubles
  every ``PROBE_DOUBLING`` accepted requests until a 429. The ceiling then
  becomes the larger of the measurement and the geometric mean of the old
  ceiling and the pace that was throttled (a bisection between a rate that
  held and one that did not); a probe that finds no more than the ceiling
  doubles ``hold`` (up to ``MAX_HOLD``), so probes get rarer as the ceiling
  proves right, and 429s stay a small share of the requests;
- a 429 while holding means the ceiling is too high (or the server lowered
  its limit): it drops to the geometric mean of the measurement (a lower
  bound) and the pace that was throttled (an upper one).

Pure and clock-free: every method takes the time it happens at.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["GrantedRate", "GrantSnapshot"]

SLOW_START_RATE = 8.0
SLOW_START_DOUBLING = 2.0
CLIMB_DOUBLING = 12.0
CLIMB_SECONDS = 6.0  # ... or every this many seconds, whichever is sooner
HOLD = 0.97
CONFIRM = 1.1  # a probe that finds less than this × the ceiling confirms it
PROBE_DOUBLING = 12.0
MIN_HOLD = 256
MAX_HOLD = 4096
CUBIC_BETA = 0.7  # botocore's decrease, when there is too little to measure
# Fewer accepted requests than this between two 429s measure too coarsely:
# the window then reaches back to an earlier 429.
MIN_SAMPLE = 6
# The climb's figure is lowered to what the accepted requests prove, but not below this share of it.
CLIMB_FLOOR = 0.75
REOPEN_SHARE = 0.9  # the climb starts this far under what slow start's allowance coming back said
_SUSTAINED_SPAN = 128  # accepted requests ``sustained`` looks back over
RECENT = 2  # intervals between the last accepted requests that tell the pace which held
_KEEP_SECONDS = 300.0  # accepted send times older than this are forgotten
_MAX_EXPONENT = 30.0  # 2**30 × the ceiling: unpaced, for all practical purposes

Phase = Literal["slow-start", "climb", "hold", "probe"]


@dataclass(frozen=True)
class GrantSnapshot:
    ceiling: float | None  # the granted rate we believe in (requests/s)
    pace: float  # what we send at now
    phase: Phase
    throttles: int  # throttle episodes seen (one per slow-down)


def reopened_rate(burst: int, elapsed: float) -> float | None:
    """The rate ``burst`` requests say when they were accepted, then refused, and the next one
    accepted ``elapsed`` s after the first of them: the allowance they spent came back by then.

    A lower bound for a window limiter (its window reopened at most that late: a Retry-After
    rounded up to whole seconds only lengthens ``elapsed``); a token bucket refills one
    request's worth at a time, so the climb starts a little under it (``REOPEN_SHARE``).
    """
    if burst < 1 or elapsed <= 0:
        return None
    return burst / elapsed


def climb_estimate(accepted: int, elapsed: float, burst: int, held: float, start_pace: float) -> float:
    """The granted rate at the 429 that ends a climb (a pure function; tests/test_engine_grant.py).

    ``accepted`` requests were accepted over the climb's ``elapsed`` seconds,
    which began at ``start_pace``; ``held`` is the pace the last few of them
    kept (``GrantedRate.recent_pace``), ``burst`` what slow start got through
    before its 429.

    Every limiter kind lets about ``burst`` through at once and then its rate,
    so ``low = (accepted − burst) / elapsed`` bounds the rate from below — a
    tight bound only if the whole climb was sent at least that fast: time spent
    below the rate is allowance nobody used. ``held`` is close for a window
    limiter (it refuses within a window of going faster) but high for a token
    bucket, whose burst carries a climb well past the rate before a 429. So:
    their geometric mean where ``low`` is tight, else ``held``.
    """
    if accepted >= MIN_SAMPLE + burst and elapsed > 0:
        low = (accepted - burst) / elapsed
        if start_pace >= low:
            return math.sqrt(low * held) if held > low else low
    return held


class GrantedRate:
    def __init__(self, *, min_rate: float, ceiling: float | None = None) -> None:
        self._min_rate = min_rate
        self._accepted: list[float] = []  # send times of accepted requests, sorted
        self._ceiling = ceiling
        self._throttles: list[float] = []  # send times of the 429s that began an episode
        self._n = 0  # accepted since the episode began
        self._hold = MIN_HOLD  # accepted requests at the ceiling before a probe
        self._doubling = PROBE_DOUBLING
        self._climbing = False
        self._episodes = 0
        self._closed = 0  # 429s in a row with nothing accepted in between
        self._starts: list[float] = []  # send time of the first request accepted after each 429
        self._first: float | None = None  # send time of the first request accepted at all
        self._burst = 0  # requests sent before the first 429 and accepted (some answered after it)
        self._started = True  # the episode's first request sent after its 429 was accepted

    @property
    def ceiling(self) -> float | None:
        return self._ceiling

    def _over(self, now: float | None) -> float:
        over = max(0.0, self._n - self._hold) / self._doubling
        if self._climbing and now is not None and self._throttles:
            # A slow server would make a climb counted in requests slow in time too.
            over = max(over, (now - self._throttles[-1]) / CLIMB_SECONDS)
        return min(over, _MAX_EXPONENT)

    def pace(self, now: float | None = None) -> float:
        if self._ceiling is None:
            return SLOW_START_RATE * math.pow(2.0, min(self._n / SLOW_START_DOUBLING, _MAX_EXPONENT))
        factor = 1.0 if self._climbing else HOLD
        return max(self._min_rate, self._ceiling * factor * math.pow(2.0, self._over(now)))

    def in_flight_cap(self) -> int | None:
        """How many requests may be in flight at once, or None: no cap beyond the pace.

        In slow start, as many as have been accepted (at least one), as TCP's slow
        start grows its window: what is in flight when the first 429 comes back is
        refused too, so this bounds slow start's 429s by the burst it found.
        """
        return max(1, self._n) if self._ceiling is None else None

    def phase(self) -> Phase:
        if self._ceiling is None:
            return "slow-start"
        if self._climbing:
            return "climb"
        return "probe" if self._n > self._hold else "hold"

    def on_accepted(self, sent_at: float) -> None:
        bisect.insort(self._accepted, sent_at)
        self._closed = 0
        if self._first is None:
            self._first = sent_at
        # (Requests sent before the 429 may still be accepted after it: they start nothing.)
        if not self._started and self._throttles and sent_at > self._throttles[-1]:
            self._started = True
            self._starts = [*self._starts[-7:], sent_at]
            if self._climbing and len(self._throttles) == 1:
                self._reopened(sent_at)
        self._n += 1
        if len(self._accepted) > 4096 or self._accepted[0] < sent_at - _KEEP_SECONDS:
            cut = bisect.bisect_left(self._accepted, sent_at - _KEEP_SECONDS)
            del self._accepted[: max(cut, len(self._accepted) - 4096)]

    def _reopened(self, sent_at: float) -> None:
        """The first request accepted after slow start's 429: the climb starts from what that says."""
        self._burst = bisect.bisect_left(self._accepted, self._throttles[0]) if self._throttles else 0
        reopen = reopened_rate(self._burst, sent_at - self._first) if self._first is not None else None
        if reopen is not None and self._ceiling is not None:
            self._ceiling = max(self._ceiling, REOPEN_SHARE * reopen)

    def _count(self, start: float, end: float) -> int:
        """Accepted requests sent in (start, end]."""
        return bisect.bisect_right(self._accepted, end) - bisect.bisect_right(self._accepted, start)

    def measured(self, sent_at: float) -> float | None:
        """The granted rate measured up to a 429 for a request sent at ``sent_at``.

        Accepted requests per second since the first one accepted after an
        earlier 429 (the time the server told us to wait is left out: a
        window limiter grants nothing for it), reaching back as far as it
        takes to count ``MIN_SAMPLE`` of them.
        """
        for start in reversed(self._starts):
            elapsed = sent_at - start
            n = self._count(start, sent_at)  # the first one (at ``start``) excluded
            if n >= MIN_SAMPLE and elapsed > 0:
                return n / elapsed
        return None

    def sustained(self, sent_at: float) -> float | None:
        """The rate the requests accepted up to ``sent_at`` prove the server grants at least (a pure bound).

        However its limiter counts, a server holds at most its burst at any instant and
        adds its rate × the time: so for any two accepted requests, ``(accepted from
        one to the other − burst) / the time between``, with ``burst`` what slow start
        got through (at least the server's burst: slow start spent it whole). The
        largest over the last ``_SUSTAINED_SPAN`` accepted requests is the tightest such
        bound: the stretch where we sent at the rate, not the time we waited.
        """
        if self._first is None or not self._throttles:
            return None
        hi = bisect.bisect_right(self._accepted, sent_at)
        times = self._accepted[max(0, hi - _SUSTAINED_SPAN):hi]
        best = None
        for i, anchor in enumerate(times):
            for j in range(i + self._burst, len(times)):
                elapsed = times[j] - anchor
                if elapsed > 0:
                    rate = (j - i + 1 - self._burst) / elapsed
                    best = rate if best is None or rate > best else best
        return best

    def recent_pace(self, sent_at: float) -> float | None:
        """The pace the last few accepted requests before ``sent_at`` held (since the last 429)."""
        start = self._starts[-1] if self._starts else -math.inf
        lo = bisect.bisect_left(self._accepted, start)
        hi = bisect.bisect_right(self._accepted, sent_at)
        last = self._accepted[lo:hi][-(RECENT + 1):]
        if len(last) < 3 or last[-1] <= last[0]:
            return None
        return (len(last) - 1) / (last[-1] - last[0])

    def on_throttle(self, sent_at: float, now: float | None = None) -> None:
        """A 429 (or 503 + Retry-After) for a request sent at ``sent_at`` began a new episode."""
        self._episodes += 1
        phase, pace, n = self.phase(), self.pace(now), self._n
        if self._ceiling is None:
            # Slow start overshot: the accepted rate over the last second bounds
            # the grant from above (the burst is in it); climb from half of it.
            recent = self._count(sent_at - 1.0, sent_at)
            self._ceiling = max(self._min_rate, 0.5 * recent)
            self._climbing, self._hold, self._doubling = True, 0, CLIMB_DOUBLING
        elif n == 0 and self._throttles:
            # Nothing accepted since the last 429: the allowance is still used up
            # (a window not yet over). No news about the rate; wait longer.
            self._closed += 1
            return
        else:
            ceiling = self._hold_ceiling(sent_at, pace) if phase == "hold" else self._probe_ceiling(phase, sent_at, pace)
            self._ceiling = max(self._min_rate, ceiling)
            self._climbing, self._doubling = False, PROBE_DOUBLING
        self._throttles = [*self._throttles[-7:], sent_at]
        self._started = False
        self._n = 0
        self._closed = 0

    def _hold_ceiling(self, sent_at: float, pace: float) -> float:
        """Throttled while holding under the ceiling: the grant lies between the measurement
        (a lower bound) and the pace that was throttled. Bisect."""
        measured, old = self.measured(sent_at), self._ceiling or pace
        self._hold = min(MAX_HOLD, 2 * self._hold)
        return math.sqrt(measured * pace) if measured is not None and measured < pace else old * CUBIC_BETA

    def _probe_ceiling(self, phase: Phase, sent_at: float, pace: float) -> float:
        """Throttled in a probe or the climb: between the ceiling that held and the pace that did not."""
        measured, old = self.measured(sent_at), self._ceiling or pace
        # The pace we actually reached: others (in-flight cap, latency) may have held us below it.
        reached = min(pace, float(self._count(sent_at - 1.0, sent_at) + 1))
        held = self.recent_pace(sent_at)
        if phase == "climb" and held is not None and self._starts and self._throttles:
            start = self._starts[-1]
            accepted = self._count(start, sent_at) + 1  # the one at ``start`` included
            start_pace = old * 2.0 ** min((start - self._throttles[-1]) / CLIMB_SECONDS, _MAX_EXPONENT)
            ceiling = climb_estimate(accepted, sent_at - start, self._burst, min(held, reached), start_pace)
            sustained = self.sustained(sent_at)
            if sustained is not None and accepted >= MIN_SAMPLE + self._burst:
                # A long climb's figure is lowered toward what the accepted requests prove (a
                # token bucket's burst carries a climb past the rate), but not far: that bound
                # is low by whatever allowance went unused while we waited or climbed. (A short
                # climb, which a window limiter ends, proves too little to lower it.)
                ceiling = min(ceiling, max(sustained / HOLD, CLIMB_FLOOR * ceiling))
        else:
            ceiling = max(measured or 0.0, math.sqrt(old * max(old, reached)))
        if phase == "climb" or (measured is not None and measured > CONFIRM * old):
            self._hold = MIN_HOLD  # the server grants more than we held at: probe again soon
        elif ceiling <= CONFIRM * old:
            self._hold = min(MAX_HOLD, 2 * self._hold)  # confirmed: probe more rarely
        return ceiling

    def wait_hint(self) -> float | None:
        """Seconds until one request's allowance is back, for a 429 that says nothing."""
        if self._ceiling is None:
            return None
        # One request's allowance; doubled for each 429 in a row that found it still closed.
        return 2.0 ** min(self._closed, 8) / max(self._min_rate, self._ceiling)

    def snapshot(self) -> GrantSnapshot:
        return GrantSnapshot(
            ceiling=self._ceiling,
            pace=self.pace(),
            phase=self.phase(),
            throttles=self._episodes,
        )
