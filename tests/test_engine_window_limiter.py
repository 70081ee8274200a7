"""Windows that send X-RateLimit-* headers: a fixed window, a sliding-window log (fake clock).

Most gateways count requests per window and still send ``X-RateLimit-Limit/Remaining/Reset``,
with Reset the time until the window ends. Read as a token bucket's, those headers promise a
refill that never comes before the window ends: a 429 per window, then the headers distrusted
and the key paced blind at 1.2-1.7 of the floor. The first 429 tells a window apart
(``describes_window``: its Retry-After is as long as its Reset), and from then on the key
spends what Remaining says and waits for the window's end: one 429 in all, at the floor. A
token bucket with the same headers is never taken for a window.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Callable

import pytest
from test_engine_blind_limiter import FakeClock, FixedWindow, SlidingLog, TokenBucket, run_fleet

from wizsync.engine.limiter import KeyLimiter, describes_window, retry_after_precision


def _headers(limit: int, remaining: float, reset: float, retry_after: float | None) -> dict[str, str]:
    headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(int(remaining)),
               "X-RateLimit-Reset": f"{max(0.0, reset):.3f}"}
    if retry_after is not None:
        headers["Retry-After"] = f"{retry_after:.3f}"
    return headers


class HeaderWindow(FixedWindow):
    """N requests per aligned window; Reset = until the window ends."""

    def hit(self) -> tuple[int, dict[str, str]]:
        index = math.floor(self.clock() / self.window)
        if index != self.current:
            self.current, self.count = index, 0
        left = (index + 1) * self.window - self.clock()
        ok = self.count < self.limit
        self.count += ok
        return (200 if ok else 429), _headers(self.limit, self.limit - self.count, left, None if ok else left)


class HeaderSlidingLog(SlidingLog):
    """N requests in any trailing window; Reset = until the newest leaves it, Retry-After = the oldest."""

    def hit(self) -> tuple[int, dict[str, str]]:
        now = self.clock()
        self.log = [t for t in self.log if t > now - self.window]
        ok = len(self.log) < self.limit
        if ok:
            self.log.append(now)
        reset = self.log[-1] + self.window - now if self.log else 0.0
        return (200 if ok else 429), _headers(self.limit, self.limit - len(self.log), reset,
                                              None if ok else self.log[0] + self.window - now)


class HeaderBucket(TokenBucket):
    """The contract's own: Reset = until the bucket is full, Retry-After = until one token is back."""

    def hit(self) -> tuple[int, dict[str, str]]:
        now = self.clock()
        self.level = min(self.burst, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        ok = self.level >= 1
        self.level -= ok
        return (200 if ok else 429), _headers(self.burst, self.level, (self.burst - self.level) / self.rate,
                                              None if ok else (1 - self.level) / self.rate)


@pytest.mark.parametrize(("limit", "remaining", "reset", "retry_after", "window"), [
    (20, 0, 9.5, 9.5, True),  # a fixed window: nothing back until it ends
    (20, 0, 9.5, 10.0, True),  # ... with Retry-After rounded up to whole seconds
    (20, 0, 1.0, 0.9, True),  # a sliding log spent over a tenth of its window
    (20, 0, 9.85, 0.35, False),  # a bucket of 20 at 2/s: one token's refill
    (20, 0, 9.85, 1.0, False),  # ... rounded up
    (2, 0, 0.85, 0.35, False),  # a bucket of 2 at 2/s, exact
    (1, 0, 0.5, 0.5, False),  # a bucket of one refills whole with its one token: nothing to tell
    (20, 3, 9.5, 9.5, False),  # a 429 with allowance left is the server's hiccup, not its limiter
    (20, 0, 9.5, None, False),  # no Retry-After: nothing to compare
    (20, 0, 0.0, 1.0, False),
])
def test_a_429_tells_a_window_from_a_bucket(limit: int, remaining: float, reset: float, retry_after: float | None,
                                            window: bool) -> None:
    assert describes_window(limit, remaining, reset, retry_after) is window


@pytest.mark.parametrize(("limit", "reset", "retry_after", "precision", "window"), [
    # A bucket of 10 at 10/s, refused: one token is 0.1 s away, the header says "1" (whole seconds,
    # rounded up, at least 1). Read without its rounding, 1 ≥ 0.6 × Reset looked like a window.
    (10, 1.0, 1.0, 1.0, False),
    (10, 1.0, 0.1, 0.001, False),  # ... its exact wait (details.retryAfterMs)
    (2, 0.7, 1.0, 1.0, False),  # a window of 2 per second: "1" cannot tell it from a bucket ...
    (2, 0.7, 0.7, 0.001, True),  # ... its exact wait can
    (1800, 1500.0, 1500.0, 1.0, True),  # a window of half an hour: whole seconds are plenty
    (20, 9.5, 10.0, 1.0, True),  # a fixed window of 10 s, Retry-After rounded up
])
def test_a_rounded_retry_after_tells_a_window_only_beyond_its_rounding(limit: int, reset: float, retry_after: float,
                                                                       precision: float, window: bool) -> None:
    assert describes_window(limit, 0, reset, retry_after, precision) is window


@pytest.mark.parametrize(("raw", "precision"), [
    ("1", 1.0), ("120", 1.0), ("0.250", 0.001), ("1.5", 0.1), (None, 0.0), ("", 0.0),
    ("Wed, 21 Oct 2026 07:28:00 GMT", 1.0),
])
def test_the_precision_of_a_retry_after_header_is_read_from_how_it_is_written(raw: str | None,
                                                                              precision: float) -> None:
    assert retry_after_precision(raw) == pytest.approx(precision)


def _spend(limiter: KeyLimiter, limit: int, reset_of: Callable[[int], float]) -> None:
    for remaining in range(limit - 1, -1, -1):
        limiter.on_response(limiter.take(), 200, _headers(limit, remaining, reset_of(remaining), None))


def test_a_small_fast_bucket_refused_with_whole_seconds_stays_a_bucket() -> None:
    # The emulator's own: a bucket of 10 at 10/s, "Retry-After: 1" on a 429 whose exact wait is
    # 0.1 s. Taken for a window, the key waited a whole second per refusal and was refused again.
    clock = FakeClock()
    limiter = KeyLimiter(clock=clock)
    _spend(limiter, 10, lambda remaining: (10 - remaining) / 10)
    refused = _headers(10, 0, 1.0, None)
    refused["Retry-After"] = "1"
    limiter.on_response(limiter.take(), 429, refused)
    limiter.block(0.1, "retry-after", precision=0.001)
    snap = limiter.snapshot()
    assert snap.mode == "headers", snap
    clock.now += 0.1
    assert limiter.poll() == pytest.approx(0.0, abs=0.01)  # one token's refill, not a window's wait


def test_a_window_of_a_second_is_told_apart_by_the_exact_wait_of_its_429() -> None:
    clock = FakeClock()
    limiter = KeyLimiter(clock=clock)
    _spend(limiter, 2, lambda remaining: 0.7)  # a window of 2 per second, 0.7 s left in it
    refused = _headers(2, 0, 0.7, None)
    refused["Retry-After"] = "1"  # rounded up: no telling from the header alone
    limiter.on_response(limiter.take(), 429, refused)
    assert limiter.snapshot().mode == "headers"
    limiter.block(0.7, "retry-after", precision=0.001)  # details.retryAfterMs
    assert limiter.snapshot().mode == "window"
    assert limiter.poll() == pytest.approx(0.7)
    clock.now += 0.7
    assert limiter.poll() == 0.0
    limiter.take()
    assert limiter.poll() == 0.0  # the whole window's allowance is back, not one token of it


def test_a_rounded_wait_alone_never_turns_an_undecided_429_into_a_window() -> None:
    clock = FakeClock()
    limiter = KeyLimiter(clock=clock)
    _spend(limiter, 2, lambda remaining: 0.7)
    refused = _headers(2, 0, 0.7, None)
    refused["Retry-After"] = "1"
    limiter.on_response(limiter.take(), 429, refused)
    limiter.block(1.0, "retry-after")  # the header's value: nothing new
    assert limiter.snapshot().mode == "headers"


def test_a_window_met_a_moment_before_its_end_is_told_apart_at_the_next_429() -> None:
    # The emulator's fixed window of 5 per 0.25 s, "Retry-After: 1" and the exact wait in the body.
    # Its first 429 came 1 ms before the window's end: nothing tells that from a bucket. Counted
    # against the headers at once, it and the next window's 429 distrusted them before that one's
    # exact wait (0.218 s, a window's) could tell: the key was paced blind (a CI run's 6 429s).
    clock = FakeClock()
    limiter = KeyLimiter(clock=clock)

    def refused(reset: float, exact: float) -> None:
        headers = _headers(5, 0, reset, None)
        headers["Retry-After"] = "1"
        limiter.on_response(limiter.take(), 429, headers)
        limiter.block(exact, "retry-after", precision=0.001)

    _spend(limiter, 5, lambda remaining: 0.001)
    refused(0.001, 0.001)
    assert limiter.snapshot().mode == "headers"
    clock.now += 0.032
    _spend(limiter, 5, lambda remaining: 0.218)
    refused(0.218, 0.218)
    assert limiter.snapshot().mode == "window"
    assert limiter.poll() == pytest.approx(0.218)


def test_an_undecided_429_its_exact_wait_does_not_tell_still_counts_against_the_headers() -> None:
    # Two 429s of an allowance that someone else spends from (a bucket's exact waits, short):
    # the headers are distrusted as before, the undecided 429s counted once their waits are known.
    clock = FakeClock()
    limiter = KeyLimiter(clock=clock)
    for _ in range(2):
        _spend(limiter, 2, lambda remaining: 0.7)
        headers = _headers(2, 0, 0.7, None)
        headers["Retry-After"] = "1"
        limiter.on_response(limiter.take(), 429, headers)
        limiter.block(0.05, "retry-after", precision=0.001)
        clock.now += 1.0
    assert limiter.snapshot().mode not in ("headers", "window")  # paced blind, by what the key learns


SHAPES = [(2, 20, 200), (2, 2, 100), (1, 60, 300), (20, 20, 1000)]  # rate, limit per window, requests


@pytest.mark.parametrize("phase", [0.0, 0.37])
@pytest.mark.parametrize(("rate", "burst", "n"), SHAPES)
@pytest.mark.parametrize("server", [HeaderWindow, HeaderSlidingLog], ids=["fixed-window", "sliding-window"])
def test_a_window_with_headers_costs_one_429_and_runs_at_its_rate(server: type, rate: float, burst: int, n: int,
                                                                  phase: float) -> None:
    over_floor, throttled, (limiter,) = run_fleet(server, rate, burst, n, start=1000.0 + phase)
    snap = limiter.snapshot()
    # (A sliding log of 2 paced as a bucket is never refused: its headers never needed telling apart.)
    assert throttled == [1] and snap.mode == "window" or throttled == [0] and snap.mode == "headers", (throttled, snap)
    if snap.mode == "window":
        # What the key believes it is granted (the progress estimate): from the length of a window.
        assert snap.server_rate is not None and 0.9 * rate <= snap.server_rate <= 1.1 * rate, snap
    # (An aligned fixed window met late in its first window gives a second one early: under the floor.)
    assert over_floor <= 1.12


@pytest.mark.parametrize(("in_flight", "latency"), [(8, 0.1), (16, 0.2)])
def test_what_was_in_flight_with_the_429_that_told_the_window_apart_distrusts_nothing(in_flight: int,
                                                                                     latency: float) -> None:
    # Read as a bucket's, the headers had many requests sent when the first 429 told the window
    # apart; their refusals come back after it. They are no news: counted as surprises, they
    # distrusted the headers and the key was paced blind, at 2-4 times the floor.
    over_floor, throttled, (limiter,) = run_fleet(HeaderWindow, 20, 20, 600, in_flight=in_flight, latency=latency)
    assert limiter.snapshot().mode == "window"
    assert throttled[0] <= in_flight  # the first 429 and what was in flight with it, no more
    assert over_floor <= 1.05


def test_a_window_whose_retry_after_is_an_http_date_is_told_apart_too() -> None:
    clock = FakeClock()
    clock.now = 1_764_000_000.2  # Unix time: an HTTP-date is read against the wall clock
    limiter = KeyLimiter(clock=clock, wall=clock)
    for remaining in range(19, -1, -1):  # a window of 20 spent at once, 9.8 s left in it
        limiter.on_response(limiter.take(), 200, _headers(20, remaining, 9.8, None))
    ticket = limiter.take()
    refused = _headers(20, 0, 9.7, None)
    refused["Retry-After"] = email.utils.formatdate(math.ceil(clock.now + 9.7), usegmt=True)
    limiter.on_response(ticket, 429, refused)
    assert limiter.snapshot().mode == "window"
    assert limiter.poll() == pytest.approx(9.7)  # nothing more until the window is over


@pytest.mark.parametrize(("rate", "burst", "n"), SHAPES)
def test_a_token_bucket_with_the_same_headers_is_not_taken_for_a_window(rate: float, burst: int, n: int) -> None:
    over_floor, throttled, (limiter,) = run_fleet(HeaderBucket, rate, burst, n)
    assert throttled == [0] and limiter.snapshot().mode == "headers"
    assert over_floor <= 1.02

