"""The per-key adaptive token bucket, driven by a fake clock and a simulated server bucket."""

from __future__ import annotations

import asyncio
import email.utils
import heapq
import math
from typing import Any

import pytest

from wizsync.engine.limiter import CUBIC_BETA, KeyLimiter, rate_limit_headers, reset_seconds


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ServerBucket:
    """The emulator's contract (openapi.json): capacity = burst, refill = rate/s."""

    def __init__(self, clock: FakeClock, rate: float, burst: int) -> None:
        self.clock, self.rate, self.burst = clock, rate, burst
        self.level = float(burst)
        self.stamp = clock()

    def hit(self) -> tuple[int, dict[str, str]]:
        now = self.clock()
        self.level = min(self.burst, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        status = 200
        if self.level >= 1:
            self.level -= 1
        else:
            status = 429
        headers = {
            "X-RateLimit-Limit": str(self.burst),
            "X-RateLimit-Remaining": str(int(math.floor(self.level))),
            "X-RateLimit-Reset": f"{(self.burst - self.level) / self.rate:.3f}",
        }
        if status == 429:
            headers["Retry-After"] = str(math.ceil((1 - self.level) / self.rate))
        return status, headers

    def retry_after_exact(self) -> float:
        return (1 - self.level) / self.rate


def drive(limiter: KeyLimiter, server: ServerBucket, clock: FakeClock, seconds: float, latency: float = 0.0) -> dict[str, int]:
    """Send as fast as the limiter allows for ``seconds``; one request in flight at a time."""
    counts = {"200": 0, "429": 0}
    end = clock() + seconds
    while clock() < end:
        wait = limiter.poll()
        if wait > 0:
            clock.advance(min(wait, 1.0))
            continue
        ticket = limiter.take()
        clock.advance(latency)
        status, headers = server.hit()
        limiter.on_response(ticket, status, headers)
        counts[str(status)] += 1
        if status == 429:
            limiter.block(server.retry_after_exact())
    return counts


def test_without_hint_it_probes_then_paces_from_headers() -> None:
    clock = FakeClock()
    limiter = KeyLimiter(clock=clock, probe=2)
    server = ServerBucket(clock, rate=10, burst=10)
    # Nothing known: two probes may go, the third waits for their headers.
    t1, t2 = limiter.take(), limiter.take()
    assert limiter.poll() == math.inf
    for t in (t1, t2):
        limiter.on_response(t, *server.hit())
    assert limiter.poll() == 0.0  # 8 tokens left per the headers
    counts = drive(limiter, server, clock, seconds=30, latency=0.005)
    sent = counts["200"] + counts["429"]
    assert counts["429"] <= 0.02 * sent
    # Burst (8 left) + ~10/s for 30 s; pacing costs at most a few percent.
    assert 0.9 * (8 + 300) <= counts["200"] <= 8 + 300 + 1
    assert limiter.snapshot().server_rate == pytest.approx(10, rel=0.1)
    assert limiter.snapshot().capacity == 10


@pytest.mark.parametrize(("headers", "expected"), [
    ({"x-ratelimit-limit": "20", "x-ratelimit-remaining": "7", "x-ratelimit-reset": "6.500"}, (20, 7, 6.5)),
    # The IETF draft's names, as gateways send them (to draft 06; a quota list's first number).
    ({"ratelimit-limit": "20", "ratelimit-remaining": "7", "ratelimit-reset": "7"}, (20, 7, 7)),
    ({"ratelimit-limit": "10, 10;w=1, 50;w=60", "ratelimit-remaining": "3", "ratelimit-reset": "1"}, (10, 3, 1)),
    # Draft 07's one field.
    ({"ratelimit": "limit=100, remaining=50, reset=30"}, (100, 50, 30)),
    # Draft 08 on: the current counters name their policy, whose quota is the limit.
    ({"ratelimit": '"default";r=50;t=30', "ratelimit-policy": '"default";q=100;w=60'}, (100, 50, 30)),
    ({"ratelimit": "default;r=4;t=1", "ratelimit-policy": "default;l=10;w=1"}, (10, 4, 1)),  # draft 08's tokens
    # Several policies: the one closest to running out binds.
    ({"ratelimit": '"burst";r=8;t=1, "daily";r=2;t=3600',
      "ratelimit-policy": '"burst";q=10;w=1, "daily";q=1000;w=86400'}, (1000, 2, 3600)),
    ({"ratelimit": '"default";r=5;t=2'}, (None, 5, 2)),  # no policy sent: no limit to pace by
    # X-RateLimit-* wins when both are sent.
    ({"x-ratelimit-limit": "5", "x-ratelimit-remaining": "1", "ratelimit-limit": "9", "ratelimit-remaining": "9"},
     (5, 1, None)),
    ({"ratelimit-limit": "lots", "ratelimit-remaining": "-1"}, (None, None, None)),
    ({"retry-after": "2"}, (None, None, None)),
])
def test_rate_limit_headers_are_read_in_every_spelling_a_gateway_uses(
    headers: dict[str, str], expected: tuple[float | None, float | None, float | None]
) -> None:
    assert rate_limit_headers(headers) == expected


@pytest.mark.parametrize(("reset", "wall", "seconds"), [
    (6.5, 1_764_000_000.0, 6.5),  # the contract's: seconds from now
    (3600.0, 1_764_000_000.0, 3600.0),  # long, but a wait (capped later, with a notice)
    (1_764_000_042.0, 1_764_000_000.0, 42.0),  # a Unix timestamp (GitHub's, X's)
    (1_764_000_000.5, 1_764_000_001.0, 0.0),  # one already past: nothing to wait for
    (None, 1_764_000_000.0, None),
])
def test_a_reset_sent_as_a_timestamp_is_read_as_the_seconds_until_it(reset: float | None, wall: float,
                                                                      seconds: float | None) -> None:
    assert reset_seconds(reset, wall) == seconds


@pytest.mark.parametrize(("date_offset", "seconds"), [
    (-300.0, 42.0),  # the server's clock 5 minutes behind ours: 42 s on its clock, not 0
    (300.0, 42.0),  # 5 minutes ahead: 42 s, not 342 s (past the cap)
    (1.0, 42.0),  # within the tolerance (whole seconds, the trip): our clock
])
def test_a_reset_timestamp_is_read_on_the_servers_clock_when_ours_disagrees(date_offset: float, seconds: float) -> None:
    wall = 1_764_000_000.0
    server_now = wall + date_offset
    date = email.utils.formatdate(server_now, usegmt=True)
    reset = server_now + 42.0 if abs(date_offset) > 2 else wall + 42.0
    assert reset_seconds(reset, wall, date) == pytest.approx(seconds)


class EpochBucket(ServerBucket):
    """The same bucket behind a gateway that sends Reset as the Unix time it will be full at."""

    def __init__(self, clock: FakeClock, rate: float, burst: int, epoch: float) -> None:
        super().__init__(clock, rate, burst)
        self.epoch = epoch  # Unix time at clock() == 0

    def hit(self) -> tuple[int, dict[str, str]]:
        status, headers = super().hit()
        headers["X-RateLimit-Reset"] = f"{self.epoch + self.clock() + float(headers['X-RateLimit-Reset']):.3f}"
        return status, headers


def test_a_gateway_sending_reset_as_a_timestamp_is_paced_by_it_without_a_capped_wait() -> None:
    clock = FakeClock()
    epoch = 1_764_000_000.0
    notices: list[str] = []
    limiter = KeyLimiter(clock=clock, wall=lambda: epoch + clock(), on_wait=lambda kind, detail: notices.append(kind))
    counts = drive(limiter, EpochBucket(clock, rate=10, burst=10, epoch=epoch), clock, seconds=30, latency=0.005)
    assert counts["429"] == 0 and "wait_capped" not in notices
    assert 0.9 * (10 + 300) <= counts["200"] <= 10 + 300 + 1
    assert limiter.snapshot().server_rate == pytest.approx(10, rel=0.1)


class DraftBucket(ServerBucket):
    """The same bucket behind a gateway that names its headers after the IETF draft."""

    def hit(self) -> tuple[int, dict[str, str]]:
        status, headers = super().hit()
        return status, {k.replace("X-RateLimit-", "RateLimit-"): v for k, v in headers.items()}


def test_a_gateway_with_the_drafts_header_names_is_paced_by_them_not_blind() -> None:
    clock = FakeClock()
    limiter = KeyLimiter(clock=clock)
    server = DraftBucket(clock, rate=10, burst=10)
    counts = drive(limiter, server, clock, seconds=30, latency=0.005)
    assert counts["429"] == 0
    assert 0.9 * (10 + 300) <= counts["200"] <= 10 + 300 + 1
    assert limiter.snapshot().mode == "headers" and limiter.snapshot().server_rate == pytest.approx(10, rel=0.1)


def test_a_bucket_of_one_is_paced_at_its_rate_not_below_it() -> None:
    # Burst 1: every answer says Remaining 0, so the floored count bounds the rate only from
    # above. A request that found the bucket full (Remaining = Limit - 1) measures it exactly.
    clock = FakeClock()
    limiter = KeyLimiter(clock=clock, probe=1)
    server = ServerBucket(clock, rate=5, burst=1)
    counts = drive(limiter, server, clock, seconds=60, latency=0.005)
    assert limiter.snapshot().server_rate == pytest.approx(5, rel=0.005)
    assert counts["429"] == 0
    assert counts["200"] >= 0.97 * 5 * 60  # at the floor, not the 90 % of a rate known only from above


def drive_counted_on_arrival(limiter: KeyLimiter, server: ServerBucket, clock: FakeClock, n: int,
                             up: list[float], down: float) -> tuple[dict[str, int], list[float]]:
    """``n`` requests, each one as soon as the limiter allows, several in flight if it lets them.

    The server counts a request when it *arrives*, ``up[i]`` s after its send (a real gateway's
    way, and the emulator's: it counts before it adds latency), and answers ``down`` s later.
    Returns the counts and the instants the server counted the accepted requests.
    """
    counts = {"200": 0, "429": 0}
    events: list[tuple[float, int, str, Any]] = []  # (time, order, kind, payload)
    arrivals: list[float] = []
    order = 0
    sent = 0
    answered = 0
    while answered < n:
        wait = limiter.poll() if sent < n else math.inf
        due = events[0][0] if events else math.inf
        if wait <= 0 and clock() <= due:
            ticket = limiter.take()
            heapq.heappush(events, (clock() + up[sent % len(up)], order, "arrive", ticket))
            sent, order = sent + 1, order + 1
            continue
        at = min(due, clock() + min(wait, 1.0))
        clock.advance(max(0.0, at - clock()))
        if events and events[0][0] <= clock():
            _, _, kind, payload = heapq.heappop(events)
            if kind == "arrive":
                status, headers = server.hit()
                if status == 200:
                    arrivals.append(clock())
                heapq.heappush(events, (clock() + down, order, "answer", (payload, status, headers, server.retry_after_exact())))
                order += 1
            else:
                ticket, status, headers, retry_after = payload
                limiter.on_response(ticket, status, headers)
                counts[str(status)] += 1
                if status == 429:
                    sent -= 1  # retried
                    limiter.block(retry_after)
                else:
                    answered += 1
    return counts, arrivals


def test_a_bucket_of_one_is_paced_from_the_send_not_from_the_answer() -> None:
    # Counted on arrival, answered 40 ms later: anchored at the answers, a key would send
    # every 0.04 + 0.2 s. Once the rate is exact it is paced from the send, so the
    # server sees a request every 1/R (plus a margin of a few ms), and refuses none.
    clock = FakeClock()
    limiter = KeyLimiter(clock=clock, probe=1)
    server = ServerBucket(clock, rate=5, burst=1)
    counts, arrivals = drive_counted_on_arrival(limiter, server, clock, 100, up=[0.001], down=0.04)
    assert counts["429"] == 0
    gaps = sorted(b - a for a, b in zip(arrivals[5:], arrivals[6:]))
    assert gaps[len(gaps) // 2] <= 1.02 * 0.2  # the median: at the rate, not 1.2x it
    assert gaps[0] >= 0.2  # never early for the server's count


def _send_when_due(limiter: KeyLimiter, clock: FakeClock, *, slot_wait: float = 0.0, rtt: float = 0.02) -> float:
    """One request on a bucket of one at 5/s: token, ``slot_wait`` for a global slot, send, answer; its send time."""
    while (wait := limiter.poll()) > 0:
        clock.advance(wait)
    ticket = limiter.take()
    clock.advance(slot_wait)
    sent = clock()
    ticket = limiter.sending(ticket)
    clock.advance(rtt)
    limiter.on_response(ticket, 200, _headers(1, 0, 0.2))
    return sent


def test_a_wait_for_a_global_slot_is_not_taken_for_a_slow_round_trip() -> None:
    # A wide fleet's first requests queue for the in-flight cap after their token. The server
    # counts a request when it arrives, after that wait: timed from the take, the wait would
    # read as a 0.3 s round trip, and the spread of round trips would keep the key paced from
    # its answers (every 1/R + round trip) for the next several requests.
    clock = FakeClock()
    limiter = KeyLimiter(clock=clock, probe=1)
    for _ in range(4):  # the rate (exact from Remaining = Limit - 1) and the round trip are learnt
        _send_when_due(limiter, clock)
    _send_when_due(limiter, clock, slot_wait=0.3)
    sends = [_send_when_due(limiter, clock) for _ in range(4)]
    gaps = [b - a for a, b in zip(sends, sends[1:])]
    assert all(0.2 <= g <= 0.2 * 1.02 for g in gaps), gaps


def test_a_bucket_of_one_sends_nothing_while_an_answer_is_out() -> None:
    # Two requests in flight on a bucket of one token: the second is refused if the first
    # reaches the server late (a busy client, a slow network), whatever the pace says.
    clock = FakeClock()
    limiter = KeyLimiter(clock=clock, probe=1)
    limiter.on_response(limiter.take(), 200, _headers(1, 0, 0.2))
    clock.advance(0.201)
    assert limiter.poll() == 0.0
    limiter.take()
    clock.advance(0.5)  # no answer yet: the bucket has refilled in our model, not at the server
    assert limiter.poll() == math.inf


def test_a_delayed_trip_there_costs_at_most_one_429_then_the_answers_pace() -> None:
    # The trip to the server is fast for a while (the fastest round trip is learnt), then
    # every other request is held up 30 ms on the way: sent on time from the send, the
    # one after a held-up request arrives early. The margin covers the round trip's excess
    # over the fastest; if the server still refuses one, the key goes back to pacing from
    # the answers for good.
    clock = FakeClock()
    limiter = KeyLimiter(clock=clock, probe=1)
    server = ServerBucket(clock, rate=5, burst=1)
    up = [0.001] * 10 + [0.031, 0.001] * 45
    counts, arrivals = drive_counted_on_arrival(limiter, server, clock, 100, up=up, down=0.02)
    assert counts["429"] <= 1
    assert counts["200"] == 100


def test_a_429_says_nothing_exact_about_the_rate() -> None:
    # Remaining = Limit - 1 on an accepted request means it found the bucket full, so Reset
    # is one token's refill. A refused request took nothing: its Reset is shorter, and
    # must not raise the rate above what the server grants.
    clock = FakeClock()
    limiter = KeyLimiter(clock=clock, probe=1)
    limiter.on_response(limiter.take(), 200, _headers(1, 0, 0.2))
    assert limiter.snapshot().server_rate == pytest.approx(5, rel=0.005)
    limiter.on_response(limiter.take(), 429, _headers(1, 0, 0.05))
    assert limiter.snapshot().server_rate <= 5.0


def test_the_hint_paces_from_the_first_request() -> None:
    clock = FakeClock()
    limiter = KeyLimiter(rate_hint=5, burst_hint=3, clock=clock)
    assert limiter.rate() == 5
    for _ in range(3):
        assert limiter.poll() == 0.0
        limiter.take()
    assert limiter.poll() == pytest.approx(0.2)  # 1 token / 5 per s
    clock.advance(0.2)
    assert limiter.poll() == 0.0


def test_headers_win_over_the_hint() -> None:
    clock = FakeClock()
    limiter = KeyLimiter(rate_hint=100, burst_hint=100, clock=clock)  # an optimistic hint
    server = ServerBucket(clock, rate=4, burst=5)
    counts = drive(limiter, server, clock, seconds=20, latency=0.01)
    sent = counts["200"] + counts["429"]
    # The hint lets the first burst overshoot; the headers then take over.
    assert counts["429"] <= 3
    assert counts["200"] >= 0.9 * (5 + 80)
    assert limiter.snapshot().server_rate == pytest.approx(4, rel=0.1)
    assert limiter.snapshot().capacity == 5
    assert sent < 100


def test_in_flight_requests_reserve_tokens() -> None:
    clock = FakeClock()
    limiter = KeyLimiter(rate_hint=1, burst_hint=3, clock=clock)
    tickets = [limiter.take() for _ in range(3)]
    assert limiter.poll() > 0  # the three in flight spent the bucket before any answer
    assert limiter.snapshot().in_flight == 3
    # An answer saying 2 remain, while 2 others are still in flight: 0 for us.
    limiter.on_response(tickets[0], 200, {"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "2", "X-RateLimit-Reset": "1"})
    assert limiter.snapshot().tokens == pytest.approx(0)
    limiter.on_failure(tickets[1])
    limiter.on_failure(tickets[2])
    assert limiter.snapshot().in_flight == 0


def test_a_stale_answer_does_not_raise_the_token_count() -> None:
    clock = FakeClock()
    limiter = KeyLimiter(rate_hint=1, burst_hint=10, clock=clock)
    old, new = limiter.take(), limiter.take()
    headers = lambda remaining: {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset": "5"}  # noqa: E731
    limiter.on_response(new, 200, headers(1))
    assert limiter.snapshot().tokens == pytest.approx(0)  # 1 left, and `old` still in flight
    limiter.on_response(old, 200, headers(9))  # overtaken on the way back
    assert limiter.snapshot().tokens == pytest.approx(0)


def _headers(limit: int, remaining: int, reset: float) -> dict[str, str]:
    return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset": str(reset)}


def test_a_429_blocks_for_retry_after_and_slows_down_cubic_like() -> None:
    clock = FakeClock()
    limiter = KeyLimiter(rate_hint=10, burst_hint=1, clock=clock)
    ticket = limiter.take()
    limiter.on_response(ticket, 429, _headers(1, 0, 0.1))
    server_rate = limiter.snapshot().server_rate
    assert server_rate is not None and 8 <= server_rate <= 10  # from the headers
    limiter.block(0.3)
    assert limiter.poll() == pytest.approx(0.3)
    assert limiter.rate() == pytest.approx(server_rate * CUBIC_BETA)  # β = 0.7 (botocore)
    assert limiter.snapshot().recovering
    clock.advance(0.3)
    assert limiter.poll() == 0.0  # the server promised one token now
    # Recovery climbs along the cubic back to the server's rate, then stops tracking.
    rates = []
    for _ in range(30):
        clock.advance(0.1)
        rates.append(limiter.rate())
    assert rates == sorted(rates)
    assert rates[-1] == pytest.approx(server_rate)
    assert not limiter.snapshot().recovering


def test_answers_sent_before_a_slow_down_do_not_slow_it_again() -> None:
    clock = FakeClock()
    limiter = KeyLimiter(rate_hint=10, burst_hint=5, clock=clock)
    tickets = [limiter.take() for _ in range(5)]
    for t in tickets:  # five concurrent requests all throttled at once
        limiter.on_response(t, 429, _headers(5, 0, 0.5))
    server_rate = limiter.snapshot().server_rate
    assert server_rate is not None
    assert limiter.rate() == pytest.approx(server_rate * CUBIC_BETA)  # one decrease, not 0.7**5
    later = limiter.take()
    limiter.on_response(later, 429, _headers(5, 0, 0.5))
    assert limiter.rate() < server_rate * CUBIC_BETA  # news: slower again
    # Two 429s the headers did not foresee: they describe an allowance others
    # spend from too (an organization's shared limit), so the key is paced blind.
    assert limiter.snapshot().mode == "hold"


def test_throttles_under_a_server_slower_than_the_hint_stay_rare() -> None:
    clock = FakeClock()
    limiter = KeyLimiter(rate_hint=10, burst_hint=10, clock=clock)
    server = ServerBucket(clock, rate=2, burst=2)  # the hint is 5x too optimistic
    counts = drive(limiter, server, clock, seconds=60, latency=0.01)
    assert counts["429"] <= 5
    assert counts["200"] >= 0.9 * 120


def test_a_server_without_rate_headers_is_paced_blind_from_the_first_answer() -> None:
    clock = FakeClock()
    limiter = KeyLimiter(clock=clock)
    limiter.on_response(limiter.take(), 200, {})
    assert limiter.snapshot().mode == "slow-start"
    # Slow start: paced, but the pace doubles with every couple of accepted requests,
    # so a server that never throttles is soon not held back at all.
    first = limiter.rate()
    assert first is not None and first > 0
    for _ in range(40):
        clock.advance(limiter.poll())
        limiter.on_response(limiter.take(), 200, {})
    assert limiter.rate() > 1000 * first
    limiter.on_response(limiter.take(), 429, {})  # now the measured rate takes over
    assert limiter.snapshot().mode == "climb"
    limiter.block(1.0)
    assert limiter.poll() == pytest.approx(1.0)
    assert limiter.snapshot().waiting == "retry-after"


def test_estimate_uses_the_floor_formula() -> None:
    clock = FakeClock()
    limiter = KeyLimiter(clock=clock)
    assert limiter.estimate_seconds(10) is None  # rate unknown
    assert limiter.estimate_seconds(0) == 0.0
    hinted = KeyLimiter(rate_hint=10, burst_hint=20, clock=clock)
    assert hinted.estimate_seconds(120) == pytest.approx((120 - 20) / 10)
    assert hinted.estimate_seconds(15) == 0.0


def test_acquire_is_fifo_and_wakes_on_news() -> None:
    async def main() -> list[int]:
        limiter = KeyLimiter(probe=1)  # real clock; nothing known: one probe at a time
        order: list[int] = []

        async def worker(i: int) -> None:
            ticket = await limiter.acquire()
            order.append(i)
            await asyncio.sleep(0.001)
            limiter.on_response(ticket, 200, {})  # no headers: unpaced from now on

        await asyncio.wait_for(asyncio.gather(*(worker(i) for i in range(20))), timeout=5)
        return order

    assert asyncio.run(main()) == list(range(20))
