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
- where the pace the last accepted requests held is still well over that
  figure, both fit (a bucket's burst carried the climb; or a window met
  after the climb had been sending under the rate, whose unused allowance
  is lost), so *verify*: the lower figure is the ceiling while the higher is
  paced for as many requests as a bucket at the lower would take to refuse
  it; no 429 and the higher is the ceiling;
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

The keys of one server share their climb (``SharedClimb``): the first key out
of slow start climbs, the others whose first 429 said the same trail it (under
its pace and under what their own allowance coming back said), and take the
rate it measured (its second 429) as their own ceiling. One climb's 429 for the server, not one per key: keys of one
server are nearly always granted alike, and a key that is not finds out at
its own first 429 in hold (its ceiling drops, as above) or its first probe.

Pure and clock-free: every method takes the time it happens at.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["GrantedRate", "GrantSnapshot", "SharedClimb"]

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
# Intervals between the last accepted requests that tell the pace which held: at least this many,
# and at least slow start's burst (a window limiter of L requests refuses the (L+1)-th within its
# window: over the last L intervals the accepted ones kept to its rate; over fewer they may not).
RECENT = 2
_KEEP_SECONDS = 300.0  # accepted send times older than this are forgotten
_MAX_EXPONENT = 30.0  # 2**30 × the ceiling: unpaced, for all practical purposes
# Keys whose climbs start within this factor of each other found the same limit at their first 429.
ALIKE = 1.25
# A climbing key that has had nothing accepted for this long (out of work, held by a long
# Retry-After) no longer climbs for the others: the next of them to hear of it climbs instead.
SCOUT_LEASE = 3.0
# A key waiting for the scout climbs behind it at this share of the scout's pace, never under its
# own start and never past HOLD × what its own allowance coming back said (``reopened_rate``): a
# fixed window refuses a pace over its rate only now and then, and a bucket's burst carries the
# scout past its rate, so the scout's pace may be well past it; a key paced there would spend its
# own burst, or be refused, before the scout measures.
FOLLOW = 0.9
FIRST_BARE_WAIT = 1.0  # seconds a bare 429 that ends slow start waits, at least
MAX_VERIFY = 32  # accepted requests a climb's higher figure is held for, at most, before it is believed

Phase = Literal["slow-start", "climb", "verify", "hold", "probe"]


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


class SharedClimb:
    """The climb the blind keys of one server share: one key (the scout) climbs, the rest wait for its measurement.

    Each of a server's keys comes out of slow start knowing little (its first
    429, docs/rate-limits.md "What learning costs"); only a climb past the rate,
    which costs a second 429, measures it. Keys of one server are nearly always
    granted alike, so the first key to leave slow start climbs and the others
    whose climb would start within ``ALIKE`` of its start trail it (``FOLLOW``)
    until it measures; then they hold under that measurement and follow it as
    it moves, until a 429 of their own. A scout that stops
    climbing without measuring, or has had nothing accepted for
    ``SCOUT_LEASE`` s, hands the climb to the next key that hears of it.
    """

    def __init__(self) -> None:
        self._scout: GrantedRate | None = None
        self._start = 0.0  # where the scout's climb began (requests/s)

    def join(self, key: GrantedRate, start: float, at: float) -> Literal["scout", "follow", "adopt", "alone"]:
        """``key``'s climb would start at ``start`` (requests/s), at time ``at``: what it does."""
        scout = self._scout
        if scout is not None and scout is not key and self._alive(scout, at):
            if max(start, self._start) > ALIKE * min(start, self._start):
                return "alone"  # its first 429 said otherwise: its limit is its own
            return "follow" if scout.phase() == "climb" else "adopt"
        self._scout, self._start = key, start
        return "scout"

    def _alive(self, scout: GrantedRate, at: float) -> bool:
        if scout.phase() != "climb":
            return scout.ceiling is not None and scout.measured_climb  # done: its figure stands
        last = scout.last_accepted()
        return last is not None and at - last <= SCOUT_LEASE

    def pace(self, now: float | None) -> float | None:
        """The scout's pace while it climbs."""
        scout = self._scout
        return scout.pace(now) if scout is not None and scout.phase() == "climb" else None

    def ceiling(self) -> float | None:
        """What the scout measured (its ceiling now), once its climb is over."""
        scout = self._scout
        if scout is None or scout.phase() == "climb" or not scout.measured_climb:
            return None
        return scout.ceiling


class GrantedRate:
    def __init__(self, *, min_rate: float, ceiling: float | None = None, shared: SharedClimb | None = None) -> None:
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
        self._shared = shared
        self._follows = False  # climbing behind another key of the server until it measures
        self._linked = False  # holding under that key's ceiling, until a 429 of our own
        self._reopen = 0.0  # what slow start's allowance coming back said (reopened_rate)
        self._climb_from: float | None = None  # when the climb's time-based doubling counts from
        self.measured_climb = False  # a climb of this key's own ended in a measurement
        # After a climb whose two figures disagree: (the higher one, accepted requests to hold it for).
        self._verify: tuple[float, int] | None = None

    @property
    def ceiling(self) -> float | None:
        return self._ceiling

    def _over(self, now: float | None) -> float:
        over = max(0.0, self._n - self._hold) / self._doubling
        if self._climbing and now is not None and self._climb_from is not None:
            # A slow server would make a climb counted in requests slow in time too.
            over = max(over, (now - self._climb_from) / CLIMB_SECONDS)
        return min(over, _MAX_EXPONENT)

    def pace(self, now: float | None = None) -> float:
        if self._ceiling is None:
            return SLOW_START_RATE * math.pow(2.0, min(self._n / SLOW_START_DOUBLING, _MAX_EXPONENT))
        if self._verify is not None:
            return max(self._min_rate, HOLD * self._verify[0])
        if self._follows:
            scout = self._shared.pace(now) if self._shared is not None else None
            behind = min(FOLLOW * scout, HOLD * self._reopen) if scout is not None else 0.0
            return max(self._min_rate, self._ceiling, behind)
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
        if self._verify is not None:
            return "verify"
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
        if self._verify is not None and self._n >= self._verify[1]:
            # The higher figure held as long as a bucket at the lower one would have taken to
            # refuse it: the climb was a window limiter's, and its pace the rate.
            self._ceiling, self._verify = self._verify[0], None
            self._hold, self._n = MIN_HOLD, 0
        if self._follows:
            self._join(sent_at)  # has the scout measured, or stopped climbing for us?
        elif self._linked and self._shared is not None:
            # The scout's ceiling moves on its evidence (a 429 in hold, a probe): ours with it.
            shared = self._shared.ceiling()
            if shared is not None:
                self._ceiling = max(self._min_rate, shared)
        if len(self._accepted) > 4096 or self._accepted[0] < sent_at - _KEEP_SECONDS:
            cut = bisect.bisect_left(self._accepted, sent_at - _KEEP_SECONDS)
            del self._accepted[: max(cut, len(self._accepted) - 4096)]

    def _reopened(self, sent_at: float) -> None:
        """The first request accepted after slow start's 429: the climb starts from what that says."""
        self._burst = bisect.bisect_left(self._accepted, self._throttles[0]) if self._throttles else 0
        reopen = reopened_rate(self._burst, sent_at - self._first) if self._first is not None else None
        if reopen is not None and self._ceiling is not None:
            self._ceiling = max(self._ceiling, REOPEN_SHARE * reopen)
            self._reopen = reopen
        if self._shared is not None and self._ceiling is not None:
            self._join(sent_at)

    def _join(self, sent_at: float) -> None:
        """Ask the server's shared climb what to do (out of slow start, then while following the scout)."""
        assert self._shared is not None and self._ceiling is not None
        verdict = self._shared.join(self, self._ceiling, sent_at)
        shared = self._shared.ceiling()
        if verdict == "adopt" and shared is not None:
            # The server's rate as another key measured it: hold under it, as after a climb of our own.
            self._ceiling = max(self._min_rate, shared)
            self._climbing, self._follows, self._linked = False, False, True
            self._hold, self._doubling, self._n = MIN_HOLD, PROBE_DOUBLING, 0
        elif verdict == "follow":
            self._follows = True
        elif self._follows:
            # The climb is ours now (or our own): it starts here, not at our 429.
            self._follows = False
            self._climb_from, self._n = sent_at, 0

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

    def last_accepted(self) -> float | None:
        """Send time of the newest accepted request."""
        return self._accepted[-1] if self._accepted else None

    def recent_pace(self, sent_at: float) -> float | None:
        """The pace the last few accepted requests before ``sent_at`` held (since the last 429)."""
        start = self._starts[-1] if self._starts else -math.inf
        lo = bisect.bisect_left(self._accepted, start)
        hi = bisect.bisect_right(self._accepted, sent_at)
        last = self._accepted[lo:hi][-(max(RECENT, self._burst) + 1):]
        if len(last) < 3 or last[-1] <= last[0]:
            return None
        return (len(last) - 1) / (last[-1] - last[0])

    def on_throttle(self, sent_at: float, now: float | None = None) -> None:
        """A 429 (or 503 + Retry-After) for a request sent at ``sent_at`` began a new episode."""
        self._episodes += 1
        phase, pace, n = self.phase(), self.pace(now), self._n
        if self._ceiling is not None and n == 0 and self._throttles:
            # Nothing accepted since the last 429: the allowance is still used up
            # (a window not yet over). No news about the rate; wait longer.
            self._closed += 1
            return
        # A 429 of our own: from here on the ceiling rests on this key's evidence.
        self._follows = self._linked = False
        if self._ceiling is None:
            # Slow start overshot: the accepted rate over the last second bounds
            # the grant from above (the burst is in it); climb from half of it.
            recent = self._count(sent_at - 1.0, sent_at)
            self._ceiling = max(self._min_rate, 0.5 * recent)
            self._climbing, self._hold, self._doubling = True, 0, CLIMB_DOUBLING
            self._climb_from = sent_at
        elif phase == "verify":
            # The higher figure drew a 429: a token bucket's burst had carried the climb. The lower stands.
            self._verify = None
            self._hold, self._doubling = MIN_HOLD, PROBE_DOUBLING
        else:
            ceiling = self._hold_ceiling(sent_at, pace) if phase == "hold" else self._probe_ceiling(phase, sent_at, pace)
            self._ceiling = max(self._min_rate, ceiling)
            self.measured_climb = self.measured_climb or phase == "climb"
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
            since = start - (self._climb_from if self._climb_from is not None else self._throttles[-1])
            start_pace = old * 2.0 ** min(max(0.0, since) / CLIMB_SECONDS, _MAX_EXPONENT)
            high = min(held, reached)
            ceiling = climb_estimate(accepted, sent_at - start, self._burst, high, start_pace)
            sustained = self.sustained(sent_at)
            if sustained is not None and accepted >= MIN_SAMPLE + self._burst:
                # A long climb's figure is lowered toward what the accepted requests prove (a
                # token bucket's burst carries a climb past the rate), but not far: that bound
                # is low by whatever allowance went unused while we waited or climbed. (A short
                # climb, which a window limiter ends, proves too little to lower it.)
                ceiling = min(ceiling, max(sustained / HOLD, CLIMB_FLOOR * ceiling))
            if high > CONFIRM * ceiling:
                # Both fit the evidence: a bucket whose burst carried the climb past its rate (the
                # lower figure), or a window limiter the climb met where the key had been sending
                # under the rate (the pace the last accepted requests held; what a window grants
                # and nobody uses is lost, so the bounds are low). Hold the higher for as many
                # requests as a bucket at the lower would take to refuse it (its burst spent at the
                # difference): no 429 means it was the rate. A 429 costs one more, and only
                # the scout's climb pays it for the server's other keys (``SharedClimb``).
                span = math.ceil(max(1, self._burst) * high / (high - ceiling)) + 1
                self._verify = (high, min(MAX_VERIFY, span))
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
        wait = 2.0 ** min(self._closed, 8) / max(self._min_rate, self._ceiling)
        if self._climbing and len(self._throttles) == 1 and not self._started:
            # Slow start's 429, nothing accepted since: a limit per second is the commonest kind, and
            # its window may have just begun; retrying within it draws a second 429 on every key (a
            # bucket loses at most a second, once).
            wait = max(wait, FIRST_BARE_WAIT)
        return wait

    def snapshot(self) -> GrantSnapshot:
        return GrantSnapshot(
            ceiling=self._ceiling,
            pace=self.pace(),
            phase=self.phase(),
            throttles=self._episodes,
        )
