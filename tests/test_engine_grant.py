"""The blind limiter's decisions (wizsync/engine/grant.py) as tables: pure functions, no clock."""

from __future__ import annotations

import math

import pytest

from wizsync.engine.grant import HOLD, MIN_SAMPLE, SCOUT_LEASE, GrantedRate, SharedClimb, climb_estimate, reopened_rate


@pytest.mark.parametrize(("burst", "elapsed", "expected"), [
    (2, 1.0, 2.0),  # 2 per second came back after a second: a 2/s window
    (2, 2.0, 1.0),  # a Retry-After rounded up makes it slower, never faster
    (20, 1.0, 20.0),
    (0, 1.0, None),  # nothing got through: nothing to say
    (2, 0.0, None),
    (2, -1.0, None),
])
def test_reopened_rate(burst: int, elapsed: float, expected: float | None) -> None:
    assert reopened_rate(burst, elapsed) == expected


B = 2
LONG = MIN_SAMPLE + B  # accepted requests enough for the burst-net count to bound the rate


@pytest.mark.parametrize(("accepted", "elapsed", "held", "start_pace", "expected", "why"), [
    # A short climb: too few requests for the count; the pace the last ones held says it.
    (4, 2.0, 1.95, 1.0, 1.95, "short climb: held pace"),
    # A long climb that started under the count's figure: allowance went unused, so the
    # count is low; the held pace says more (a window limiter pins it).
    (LONG, 6.0, 1.93, 0.8, 1.93, "climb started low: held pace"),
    # A long climb never under the count: it bounds the rate from below, the held pace
    # (a token bucket's burst carried the climb past the rate) from above.
    (LONG + 1, 4.0, 2.5, 1.8, math.sqrt((LONG + 1 - B) / 4.0 * 2.5), "tight count: geometric mean"),
    # ... and where the held pace is no more than the count, the count itself.
    (LONG + 1, 4.0, 1.5, 1.8, (LONG + 1 - B) / 4.0, "held under the count: the count"),
    (LONG, 0.0, 1.9, 1.0, 1.9, "no elapsed time: held pace"),
])
def test_climb_estimate(accepted: int, elapsed: float, held: float, start_pace: float, expected: float, why: str) -> None:
    assert climb_estimate(accepted, elapsed, B, held, start_pace) == pytest.approx(expected), why


def test_recent_pace_is_the_pace_of_the_last_accepted_requests_since_the_last_429() -> None:
    g = GrantedRate(min_rate=0.5)
    for t in (0.0, 0.05):
        g.on_accepted(t)
    g.on_throttle(0.1, 0.12)
    assert g.recent_pace(0.2) is None  # nothing accepted since the 429
    for t in (1.0, 1.6, 2.1, 2.6):
        g.on_accepted(t)
    # the last two intervals (2.1 → 2.6 and 1.6 → 2.1): 2 per second; earlier ones left out
    assert g.recent_pace(3.0) == pytest.approx(2.0)


def test_slow_start_then_climb_then_hold_near_a_window_limiters_rate() -> None:
    """A 2/s window: 2 accepted, a 429, the window back a second later, a climb, its 429."""
    g = GrantedRate(min_rate=0.5)
    assert g.phase() == "slow-start" and g.ceiling is None
    g.on_accepted(0.00)
    g.on_accepted(0.05)
    g.on_throttle(0.10, 0.12)
    assert g.phase() == "climb"
    # The window reopened a second after the first request: the climb starts near 2/s.
    g.on_accepted(1.00)
    assert g.ceiling == pytest.approx(0.9 * 2 / 1.0)
    for t in (1.52, 2.03, 2.53):
        g.on_accepted(t)
    g.on_throttle(2.95, 2.97)  # paced faster than 2/s: refused within the window
    assert g.phase() == "hold"
    assert g.ceiling is not None and 1.9 <= g.ceiling <= 2.0
    assert g.pace(3.0) < 2.0  # held under it


def test_a_429_with_nothing_accepted_since_the_last_is_no_news() -> None:
    g = GrantedRate(min_rate=0.5)
    g.on_accepted(0.0)
    g.on_accepted(0.05)
    g.on_throttle(0.1, 0.12)
    ceiling, hint = g.ceiling, g.wait_hint()
    g.on_throttle(0.7, 0.72)  # the window is still closed
    assert g.ceiling == ceiling and g.snapshot().throttles == 2
    assert hint is not None and g.wait_hint() == pytest.approx(2 * hint)  # waits twice as long


def test_an_answer_to_a_request_sent_before_the_429_starts_no_episode() -> None:
    """Answers come late under load: what was sent before the 429 tells nothing about after it."""
    g = GrantedRate(min_rate=0.5)
    g.on_accepted(0.00)
    g.on_throttle(0.20, 0.25)
    g.on_accepted(0.15)  # sent before the 429, answered after it
    assert g.recent_pace(0.3) is None
    g.on_accepted(1.00)  # the first one sent after it: the window is back
    # Slow start got 2 through (one answered late), and they came back a second after the first.
    assert g.ceiling == pytest.approx(0.9 * 2 / 1.0)
    for t in (1.52, 2.03, 2.53):
        g.on_accepted(t)
    assert g.recent_pace(2.9) == pytest.approx(2 / 1.01)


@pytest.mark.parametrize(("accepted", "cap"), [(0, 1), (1, 1), (2, 2), (5, 5)])
def test_slow_start_lets_as_many_in_flight_as_were_accepted(accepted: int, cap: int) -> None:
    g = GrantedRate(min_rate=0.5)
    for i in range(accepted):
        g.on_accepted(0.1 * i)
    assert g.in_flight_cap() == cap


def test_after_slow_start_the_pace_alone_bounds_what_is_in_flight() -> None:
    g = GrantedRate(min_rate=0.5)
    g.on_accepted(0.0)
    g.on_throttle(0.1, 0.12)
    assert g.in_flight_cap() is None


def test_a_blind_key_in_slow_start_waits_for_an_answer_before_sending_more() -> None:
    from wizsync.engine.limiter import KeyLimiter

    now = [100.0]
    limiter = KeyLimiter(clock=lambda: now[0], probe=1)
    limiter.on_response(limiter.take(), 200, {})  # no X-RateLimit-*: paced blind, 1 accepted
    now[0] += limiter.poll()
    first = limiter.take()
    now[0] += 1.0
    assert limiter.poll() == math.inf  # one in flight, one accepted: the window is full
    limiter.on_response(first, 200, {})
    assert limiter.poll() < 1.0  # two accepted: two may be in flight


def test_sustained_is_what_the_accepted_requests_prove_the_server_grants() -> None:
    g = GrantedRate(min_rate=0.5)
    assert g.sustained(1.0) is None  # no 429 yet: no burst known to take off
    g.on_accepted(0.0)
    g.on_accepted(0.05)
    g.on_throttle(0.1, 0.12)  # slow start got 2 through: the burst is at most 2
    g.on_accepted(1.0)
    for i in range(1, 9):
        g.on_accepted(1.0 + 0.5 * i)  # 8 more at 2/s
    # From the first request: 11 accepted less the burst of 2, over 5 s; from the first one
    # after the 429: 9 less 2 over 4 s. The larger bound wins.
    assert g.sustained(5.1) == pytest.approx(max((11 - 2) / 5.0, (9 - 2) / 4.0))


def test_a_token_buckets_burst_does_not_carry_the_hold_above_the_rate() -> None:
    """The bench's case (issue 10): a bucket of 2 at 2/s. After the wait the bucket is full,
    so the climb runs past 2/s before its 429 and the last intervals say ~2.6/s. What the
    accepted requests prove (~1.95/s) is the lower figure; the higher one is tried for a
    bucket's worth of requests, draws its 429, and the hold settles under the rate."""
    g = GrantedRate(min_rate=0.5)
    g.on_accepted(0.0)
    g.on_accepted(0.076)
    g.on_throttle(0.143, 0.147)
    sends = [1.152, 1.697, 2.230, 2.733, 3.207, 3.656, 4.083, 4.493, 4.885, 5.255]  # a climb's sends
    for t in sends:
        g.on_accepted(t)
    assert g.recent_pace(5.6) is not None and g.recent_pace(5.6) > 2.5  # the burst carried it
    g.on_throttle(5.609, 5.613)
    assert g.phase() == "verify"
    assert g.ceiling is not None and 1.9 <= g.ceiling <= 2.05  # the lower figure
    assert g.pace(6.0) > 2.4  # the higher one, on trial
    for t in (6.61, 7.0, 7.4, 7.8, 8.2):
        g.on_accepted(t)
    g.on_throttle(8.6, 8.62)  # the bucket's burst is spent: the trial fails
    assert g.phase() == "hold"
    assert 1.85 <= g.pace(9.0) < 2.0


def _first_429(g: GrantedRate, reopen_at: float) -> None:
    """Slow start on a 2/s window: 2 accepted, a 429, the first request after it accepted at ``reopen_at``."""
    g.on_accepted(0.00)
    g.on_accepted(0.05)
    g.on_throttle(0.10, 0.12)
    g.on_accepted(reopen_at)


def _climb_to_429(g: GrantedRate) -> None:
    for t in (1.52, 2.03, 2.53):
        g.on_accepted(t)
    g.on_throttle(2.95, 2.97)


def test_keys_of_one_server_share_one_climb() -> None:
    """The first key out of slow start climbs; the other waits behind it, then holds under what it measured."""
    shared = SharedClimb()
    scout, other = GrantedRate(min_rate=0.5, shared=shared), GrantedRate(min_rate=0.5, shared=shared)
    _first_429(scout, 1.00)
    _first_429(other, 1.01)
    assert scout.phase() == other.phase() == "climb"
    # Behind the scout, and never past what its own allowance coming back said (2 in 1.01 s).
    assert other.pace(2.5) <= HOLD * 2 / 1.01
    assert other.pace(2.5) < scout.pace(2.5)
    _climb_to_429(scout)
    assert scout.phase() == "hold" and scout.ceiling is not None
    other.on_accepted(3.0)  # the next answer brings the news
    assert other.phase() == "hold"
    assert other.ceiling == scout.ceiling
    # One climb's 429 for the server: the other key spent only its first.
    assert scout.snapshot().throttles == 2 and other.snapshot().throttles == 1


def test_a_key_whose_first_429_said_otherwise_climbs_alone() -> None:
    shared = SharedClimb()
    scout, other = GrantedRate(min_rate=0.5, shared=shared), GrantedRate(min_rate=0.5, shared=shared)
    _first_429(scout, 1.00)  # 2 in 1 s: starts at 1.8/s
    _first_429(other, 3.00)  # 2 in 3 s: its limit is not the scout's
    assert other.pace(9.0) > other.pace(3.0)  # climbing on its own, not waiting


def test_a_scout_that_stops_climbing_hands_the_climb_on() -> None:
    shared = SharedClimb()
    scout, other = GrantedRate(min_rate=0.5, shared=shared), GrantedRate(min_rate=0.5, shared=shared)
    _first_429(scout, 1.00)
    _first_429(other, 1.01)
    start = other.pace(1.5)
    t = 1.5
    while t < 1.0 + SCOUT_LEASE + 1.0:  # the scout sends nothing more (out of work)
        other.on_accepted(t)
        t += 0.6
    assert other.phase() == "climb"
    assert other.pace(t + 6.0) > 1.5 * start  # its climb, from where it took it over


def test_a_key_holding_under_the_scouts_figure_follows_it_down() -> None:
    shared = SharedClimb()
    scout, other = GrantedRate(min_rate=0.5, shared=shared), GrantedRate(min_rate=0.5, shared=shared)
    _first_429(scout, 1.00)
    _first_429(other, 1.01)
    _climb_to_429(scout)
    other.on_accepted(3.0)
    before = scout.ceiling
    assert before is not None
    for t in (3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5):
        scout.on_accepted(t)
    scout.on_throttle(7.0, 7.02)  # its ceiling was too high
    assert scout.ceiling is not None and scout.ceiling < before
    other.on_accepted(7.1)
    assert other.ceiling == scout.ceiling
    # A 429 of its own unlinks it: its ceiling then rests on its own evidence.
    other.on_throttle(7.5, 7.52)
    lowered = other.ceiling
    scout.on_accepted(8.0)
    other.on_accepted(8.1)
    assert other.ceiling == lowered


def test_a_climb_that_met_a_window_after_a_slow_start_is_not_taken_for_a_burst() -> None:
    """A 2/s sliding window whose first Retry-After (an HTTP-date, whole seconds) was ~2 s: the climb
    starts at ~1/s and spends seconds under the rate, so what the accepted requests prove is low
    (~1.5/s). The pace the last of them held (~2/s) is tried for a bucket's worth of requests and,
    with no 429, believed."""
    g = GrantedRate(min_rate=0.5)
    g.on_accepted(0.0)
    g.on_accepted(0.0)
    g.on_throttle(0.02, 0.04)
    sends = [2.01, 2.765, 3.457, 4.096, 4.689, 5.243, 5.763, 6.281, 6.768]
    for t in sends:
        g.on_accepted(t)
    g.on_throttle(7.229, 7.25)
    assert g.phase() == "verify"
    assert g.ceiling is not None and g.ceiling < 1.7  # the lower figure, held meanwhile
    t = 8.3
    while g.phase() == "verify":
        g.on_accepted(t)
        t += 0.52
    assert g.phase() == "hold"
    assert g.ceiling is not None and 1.9 <= g.ceiling <= 2.05


def test_a_bare_429_that_ends_slow_start_waits_out_a_window_of_a_second() -> None:
    """A 2/s fixed window: 4 accepted in the last second tell a climb from 2/s, whose 1/rate (0.5 s)
    would retry inside the window that refused, drawing a second 429. The first wait is a second."""
    g = GrantedRate(min_rate=0.5)
    for t in (0.0, 0.1, 0.2, 0.3):
        g.on_accepted(t)
    g.on_throttle(0.4, 0.42)
    assert g.ceiling == pytest.approx(2.0)
    assert g.wait_hint() == pytest.approx(1.0)
    g.on_accepted(1.45)  # the window reopened: later bare 429s wait one request's worth
    assert g.wait_hint() == pytest.approx(1 / g.ceiling)


def test_a_429_before_anything_is_accepted_does_not_fail_the_trial() -> None:
    """Right after the climb's 429 a window may still be closed: that 429 says nothing of the higher figure."""
    g = GrantedRate(min_rate=0.5)
    g.on_accepted(0.0)
    g.on_accepted(0.0)
    g.on_throttle(0.02, 0.04)
    for t in [2.01, 2.765, 3.457, 4.096, 4.689, 5.243, 5.763, 6.281, 6.768]:
        g.on_accepted(t)
    g.on_throttle(7.229, 7.25)
    assert g.phase() == "verify"
    g.on_throttle(7.6, 7.62)  # sent before the window reopened
    assert g.phase() == "verify"
