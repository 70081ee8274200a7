"""One adaptive token bucket per API key, paced from the server's own numbers.

Why our own class: aiolimiter's rate is fixed at construction and
pyrate-limiter suits static limits (their docs); here the rate is learnt at
run time and changes on a throttle.

The model mirrors the server's bucket (openapi.json, the X-RateLimit-* headers):
capacity = ``X-RateLimit-Limit``, tokens = ``X-RateLimit-Remaining``, and
``X-RateLimit-Reset`` = seconds until full, so refill rate = (limit −
remaining) / reset. Before any header the manifest hint (perSecond, burst)
stands in; with neither, a couple of probe requests go first and their headers
teach the rest. Tokens are reserved *before* a request is sent (in-flight
accounting), so a burst of tasks never overdraws the bucket.

On a 429 the key is blocked for the server's Retry-After and its rate drops
CUBIC-style (botocore ``retries/adaptive.py`` + ``cubic.py``: β = 0.7,
C = 0.4, min rate 0.5/s), then climbs back along the cubic curve toward the
rate the server advertises.

Headers that describe a *window* (fixed, or a sliding log spent in a burst:
nothing comes back until Reset, then all of it) are told apart at their first
429: the wait for one request (Retry-After) is as long as the wait until the
allowance is whole (Reset), where a bucket's is one token's refill, at most
Reset / Limit. A Retry-After in whole seconds cannot tell the two apart when the
window is about a second long (a bucket of 10 at 10/s asks for "1" too): such a
429 is only remembered, and the exact wait of its body (``details.retryAfterMs``,
handed to ``block``) decides. Such a key spends Remaining, then waits for the
window to end (``_windowed``): exact for a window, zero 429s after that first one.

A server that sends no ``X-RateLimit-*`` headers is paced blind
(``grant.GrantedRate``): the granted rate is measured from the requests it
accepted between 429s, held as a ceiling, and probed above sparingly. A 503
that carries ``Retry-After`` counts as a 429 (RFC 9110 §15.6.4).

Every wait the server asks for (Retry-After, X-RateLimit-Reset) is capped at
``max_wait`` (``retry.MAX_SERVER_WAIT``); a capped value and every wait of a
second or more are reported through ``on_wait`` (the executor turns them into
engine events), and ``snapshot()`` tells whether the key is waiting, why and
for how long: a key never stalls silently.

The state transitions (``poll``/``take``/``on_response``/``on_failure``/
``block``) are synchronous and read an injectable clock, so tests drive them
with a fake clock; ``acquire`` is the only coroutine.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

from wizchat_management._retry_after import parse_retry_after, server_clock

from .grant import GrantedRate, SharedClimb
from .retry import MAX_SERVER_WAIT

__all__ = [
    "KeyLimiter", "KeyRefused", "Ticket", "LimiterSnapshot", "OnWait",
    "describes_window", "floor_seconds", "rate_limit_headers", "reset_seconds", "retry_after_precision",
]

#: ``on_wait(kind, detail)``: kind ``waiting`` (detail: reason, seconds),
#: ``wait_capped`` (detail: source, asked, capped_to), for a key paced blind,
#: ``paced`` (detail: phase, ceiling, pace) when its phase changes, or ``windowed``
#: (detail: limit, reset) when its headers turn out to describe a window.
OnWait = Callable[[str, "dict[str, Any]"], None]

# botocore/retries/adaptive.py + cubic.py
CUBIC_BETA = 0.7
CUBIC_C = 0.4
MIN_RATE = 0.5
# How many requests may be in flight on a key we know nothing about yet:
# their response headers tell us the bucket before we send more.
PROBE_IN_FLIGHT = 2
# Longest nap of the head waiter before it re-reads the state (a response may
# have taught us something without waking it, e.g. under a fake clock).
_MAX_NAP = 0.5
# Window of the measured send rate (the CUBIC w_max when no rate is known).
_SEND_WINDOW = 2.0
_EPSILON = 1e-6
# X-RateLimit-Reset is sent in seconds with three decimals (openapi.json).
_RESET_PRECISION = 0.0005
# A wait this long or longer is announced (``on_wait``); shorter ones are pacing.
WAIT_NOTICE = 1.0
# The same capped value is reported at most once per this many seconds per key.
_CAP_NOTICE_EVERY = 10.0
# Seconds added to the estimated instant the server counted a request (Reset's
# printed precision, clock granularity), when refill is counted from the send.
ANCHOR_MARGIN = 0.002
# Round trips seen before the fastest one is trusted as the trip without delay (the first
# carries the connection's set-up).
_ANCHOR_SAMPLES = 3
# The rate counts as known exactly once its bracket from the headers is this narrow.
_EXACT_RATE = 0.02
# Header-paced throttle episodes after which the headers are not trusted to pace.
_SURPRISES_TO_DISTRUST = 2
# A 429 whose Retry-After is at least this share of its Reset describes a window: the next
# request waits about as long as the whole allowance does (a token bucket's waits one token's
# refill, Reset / Limit of it when empty: at most half). A sliding log spent over a tenth of its
# window asks for 0.9 of it.
_WINDOW_SHARE = 0.6
# A 429 left undecided by its rounded Retry-After is decided by the exact wait handed to ``block``
# right after it (the same answer's body), not by one that comes later.
_EVIDENCE_FRESH = 0.5


class KeyRefused(Exception):
    """The server refuses this key for longer than any wait we accept: nothing is sent until then."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"refused for {seconds:.0f} s more")
        self.seconds = seconds


@dataclass(frozen=True)
class Ticket:
    """A reserved token: handed back with the response (or failure) it paid for."""

    seq: int
    sent_at: float


@dataclass(frozen=True)
class _WindowEvidence:
    """A 429 whose rounded Retry-After could describe a window or a bucket: the exact wait decides (``block``)."""

    limit: float
    remaining: float
    reset: float
    at: float  # when it came back
    surprise: bool  # a 429 the headers did not foresee, counted if the exact wait tells no window


@dataclass(frozen=True)
class LimiterSnapshot:
    capacity: float | None
    server_rate: float | None  # what the server advertises (headers, else hint)
    rate: float | None  # what we pace at now (server rate, lowered after a 429)
    tokens: float | None
    in_flight: int
    blocked_for: float
    recovering: bool  # a 429 lowered the rate and it has not climbed back yet
    # How the rate is known: "headers", "window" (headers describing a window), "hint",
    # "probing" (nothing known yet), or blind learning's phase ("slow-start", "climb", "verify", "hold", "probe").
    mode: str = "probing"
    # Why the key sends nothing right now ("retry-after", "backoff", "rate"), or None.
    waiting: str | None = None
    wait_seconds: float = 0.0  # how long it still waits for that reason


def _number(text: str | None) -> float | None:
    """A header's value as a finite number ≥ 0, or None."""
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _header_float(headers: Mapping[str, str], name: str) -> float | None:
    return _number(headers.get(name))


def _leading_float(raw: str | None) -> float | None:
    """The number a rate-limit field starts with: ``10`` of ``10, 10;w=1`` (a draft's quota list)."""
    return None if raw is None else _number(raw.split(",", 1)[0].split(";", 1)[0])


def _members(raw: str | None) -> list[tuple[str, dict[str, str]]]:
    """A structured-field list (RFC 9651) as (item, parameters): ``"a";r=5;t=1, b;q=9`` → a {r, t}, b {q}.

    Enough of the syntax for the draft's fields: no quoted commas or semicolons in them.
    """
    members = []
    for member in (raw or "").split(","):
        item, *params = member.split(";")
        pairs = (param.strip().partition("=") for param in params)
        members.append((item.strip().strip('"'), {key: value for key, _, value in pairs}))
    return members


def rate_limit_headers(headers: Mapping[str, str]) -> tuple[float | None, float | None, float | None]:
    """(limit, remaining, reset in seconds) from an answer's lower-cased headers, each None if absent.

    ``X-RateLimit-Limit/Remaining/Reset`` (openapi.json); else the IETF draft's names a gateway
    may send instead (draft-ietf-httpapi-ratelimit-headers): ``RateLimit-Limit/Remaining/Reset``
    (to draft 06, a quota list's first number), draft 07's one ``RateLimit: limit=100,
    remaining=50, reset=30``, or draft 08 on's structured pair ``RateLimit: "default";r=50;t=30``
    with ``RateLimit-Policy: "default";q=100;w=60`` (``l=`` for the quota in draft 08), the
    policy closest to running out when several are sent. All count in requests and seconds, as
    ours do.
    """
    if "x-ratelimit-limit" in headers or "x-ratelimit-remaining" in headers:
        return (_header_float(headers, "x-ratelimit-limit"), _header_float(headers, "x-ratelimit-remaining"),
                _header_float(headers, "x-ratelimit-reset"))
    if "ratelimit-limit" in headers or "ratelimit-remaining" in headers:
        return (_leading_float(headers.get("ratelimit-limit")), _leading_float(headers.get("ratelimit-remaining")),
                _leading_float(headers.get("ratelimit-reset")))
    members = _members(headers.get("ratelimit"))
    current = [(name, params) for name, params in members if "r" in params]
    if current:
        name, params = min(current, key=lambda member: _number(member[1]["r"]) or 0.0)
        policy = dict(_members(headers.get("ratelimit-policy"))).get(name, {})
        return _number(policy.get("q", policy.get("l"))), _number(params["r"]), _number(params.get("t"))
    # Draft 07: each member is a name=value item.
    fields = {name.strip().lower(): value for name, _, value in (item.partition("=") for item, _ in members)}
    return _number(fields.get("limit")), _number(fields.get("remaining")), _number(fields.get("reset"))


# A Reset at least this large is a Unix timestamp (2001-09-09 on), not a wait: no server asks for 31 years.
_EPOCH_RESET = 1e9


def reset_seconds(reset: float | None, wall_now: float, server_date: str | None = None) -> float | None:
    """A Reset header as seconds from now (a pure function).

    The contract sends seconds until the allowance is whole; GitHub's API, X's and others send
    the instant, as Unix seconds, and a gateway may copy them. Read as a wait, a timestamp is
    ~1.7·10⁹ s: capped, and warned about, on every answer, with the rate reckoned from the cap.
    The instant is on the server's clock: measured against its ``Date`` (``server_date``) when
    ours disagrees (``server_clock``).
    """
    if reset is None or reset < _EPOCH_RESET:
        return reset
    return max(0.0, reset - server_clock(server_date, wall_now))


def describes_window(limit: float, remaining: float, reset: float | None, retry_after: float | None,
                     precision: float = 0.0) -> bool:
    """Whether a 429's headers describe a window rather than a token bucket (a pure decision).

    Refused with nothing left, a bucket lets the next request in after one token's refill
    (Retry-After at most Reset / Limit); a window only when it ends, which is when its
    allowance is whole again (Retry-After ≈ Reset). ``precision`` is how far the printed
    Retry-After may be from the true wait (1 s for whole seconds or an HTTP-date, rounded
    either way): a window is told only when even the shortest true wait is longer than a
    bucket's could be. A bucket of one cannot tell the two apart, and needs not: it refills
    whole with its one token.
    """
    if limit <= 1 or remaining >= 1 or reset is None or reset <= 0 or retry_after is None:
        return False
    return retry_after >= _WINDOW_SHARE * reset and retry_after - precision > reset / limit


def retry_after_precision(raw: str | None) -> float:
    """How far a ``Retry-After`` value may be from the wait it rounds (a pure function).

    ``"2"`` or an HTTP-date: 1 s; ``"1.250"``: 1 ms; absent: 0 (nothing to compare).
    """
    text = (raw or "").strip()
    if not text:
        return 0.0
    whole, dot, decimals = text.partition(".")
    if whole.isdigit() and dot and decimals.isdigit():
        return 10.0 ** -len(decimals)
    return 1.0


def floor_seconds(n_requests: int, burst: float, rate: float) -> float:
    """The least time ``n_requests`` take on one key: ``max(0, n − b) / r`` (docs/rate-limits.md, "The floor").

    The one formula behind every estimate: a key's (``KeyLimiter.estimate_seconds``),
    the run's and the plan's apply-time line (``report.summary.estimate_apply``).
    """
    return max(0.0, n_requests - burst) / rate

class KeyLimiter:
    """Adaptive async token bucket for ONE API key (never shared between keys)."""

    def __init__(
        self,
        *,
        rate_hint: float | None = None,
        burst_hint: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        probe: int = PROBE_IN_FLIGHT,
        min_rate: float = MIN_RATE,
        max_wait: float = MAX_SERVER_WAIT,
        on_wait: OnWait | None = None,
        shared: SharedClimb | None = None,
    ) -> None:
        self._clock = clock
        self._wall = wall  # Unix time, for a Reset sent as a timestamp (reset_seconds)
        self._shared = shared  # the climb this key's server's blind keys share (grant.SharedClimb)
        self._max_wait = max_wait
        self._on_wait = on_wait
        self._cap_noticed: dict[str, tuple[float, float]] = {}  # source -> (asked, when)
        self._block_reason: str | None = None
        self._refused_until = -math.inf  # see refuse()
        # Blind pacing (no X-RateLimit-* from this server): see grant.py.
        self._blind: GrantedRate | None = None
        self._headers_seen = False
        # 429s the headers did not foresee; past a few, the headers describe an
        # allowance others spend from too, and the key is paced blind instead.
        self._surprises = 0
        self._distrust_headers = False
        # The headers describe a window, not a bucket: Remaining is all there is until Reset.
        self._windowed = False
        self._window_end: float | None = None  # when the current window's allowance is whole again
        self._window_seq = -1  # newest request sent before the headers were told to describe a window
        self._window_evidence: _WindowEvidence | None = None  # the last 429 its rounded Retry-After left undecided
        self._blind_seq = -1  # newest request sent before the last blind slow-down
        self._probe = max(1, probe)
        # Header pacing counts refill from near the send, not the answer (_refilled_since_counted).
        self._send_anchored = True
        self._anchored_since: int | None = None  # newest request sent before the first send-anchored count
        self._rtt_min: float | None = None  # fastest round trip seen on this key
        self._rtts: deque[float] = deque(maxlen=_ANCHOR_SAMPLES + 1)  # the last accepted answers' round trips
        self._min_rate = min_rate
        now = clock()
        self._stamp = now
        self._in_flight = 0
        self._seq = 0
        self._applied_seq = -1  # newest request whose headers set our token count
        self._blocked_until = now
        self._sent: deque[float] = deque()
        # Bounds on the server's refill rate from headers (Remaining is an
        # integer, so each sample brackets the true rate).
        self._lo = 0.0
        self._hi = math.inf
        # CUBIC state after a throttle: (w_max, k, t_fail, seq at the decrease).
        self._cubic: tuple[float, float, float, int] | None = None
        self._no_headers = False  # the server answered without X-RateLimit-*
        rate = rate_hint if rate_hint is not None and rate_hint > 0 else None
        burst = float(burst_hint) if burst_hint is not None and burst_hint > 0 else None
        if rate is not None and burst is None:
            burst = max(1.0, float(math.floor(rate)))
        self._server_rate: float | None = rate
        self._capacity: float | None = burst
        self._metered = burst is not None  # we hold a model of the bucket
        self._tokens: float = burst if burst is not None else 0.0
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()

    # -- what we pace at ----------------------------------------------------

    def _measured_rate(self, now: float) -> float:
        while self._sent and self._sent[0] < now - _SEND_WINDOW:
            self._sent.popleft()
        return len(self._sent) / _SEND_WINDOW

    def rate(self) -> float | None:
        """Requests/s this key is paced at now, or None while unknown/unpaced."""
        return self._rate(self._clock())

    def _rate(self, now: float) -> float | None:
        if self._blind is not None:
            return self._blind.pace(now)
        rate = self._server_rate
        if self._cubic is not None:
            w_max, k, t_fail, _ = self._cubic
            cubic = max(self._min_rate, CUBIC_C * (now - t_fail - k) ** 3 + w_max)
            if rate is not None and cubic >= rate:
                self._cubic = None  # recovered to what the server grants
            else:
                rate = cubic if rate is None else min(rate, cubic)
        return rate

    def _capacity_now(self) -> float:
        # A bucket we only pace by a learnt rate (no headers) releases one at a time.
        if self._blind is not None:
            return 1.0
        return self._capacity if self._capacity is not None else 1.0

    @property
    def _paced(self) -> bool:
        return self._metered or self._cubic is not None or self._blind is not None

    def _refill(self, now: float) -> None:
        if self._windowed:
            if self._window_end is not None and now >= self._window_end:
                # The window is over: all of it is back, less what is still on its way there.
                self._tokens = (self._capacity or 1.0) - self._in_flight
                self._window_end = None
            self._stamp = max(self._stamp, now)
            return
        rate = self._rate(now)
        if rate is not None and now > self._stamp:
            self._tokens = min(self._capacity_now(), self._tokens + rate * (now - self._stamp))
        self._stamp = max(self._stamp, now)

    # -- state transitions (synchronous, clock-driven) -----------------------

    def poll(self) -> float:
        """Seconds until a token can be taken (0: take one now)."""
        now = self._clock()
        if now < self._blocked_until:
            return self._blocked_until - now
        if not self._paced:
            # Probing: a few requests go first; their headers describe the bucket.
            return 0.0 if self._in_flight < self._probe else math.inf
        cap = self._blind.in_flight_cap() if self._blind is not None else self._one_at_a_time()
        if cap is not None and self._in_flight >= cap:
            return math.inf  # an answer (on_response) frees a place
        self._refill(now)
        if self._tokens >= 1.0 - _EPSILON:  # float refill may land a hair below 1
            return 0.0
        if self._windowed:
            # Spent: until the window ends, or (its end unknown) until an answer tells it.
            if self._window_end is not None:
                return self._window_end - now
            return 0.0 if self._in_flight == 0 else math.inf
        rate = self._rate(now)
        if rate is None:
            # Headers without a usable Reset tell no rate: probe (a few in flight)
            # rather than wait for news that may never come.
            return 0.0 if self._in_flight < self._probe else math.inf
        return (1.0 - self._tokens) / rate

    def take(self) -> Ticket:
        """Reserve a token for a request about to be sent (call when ``poll() == 0``)."""
        now = self._clock()
        self._refill(now)
        if self._paced:
            self._tokens -= 1.0
        self._in_flight += 1
        self._seq += 1
        self._sent.append(now)
        return Ticket(self._seq, now)

    def sending(self, ticket: Ticket) -> Ticket:
        """``ticket`` as of now, when its request leaves (after a wait for a global in-flight slot).

        The server counts a request when it arrives, after that wait: timed from the
        take, the wait would read as round trip, and the spread of round trips
        (``_refilled_since_counted``) would keep the key paced from its answers.
        """
        now = self._clock()
        return Ticket(ticket.seq, now) if now > ticket.sent_at else ticket

    def on_response(self, ticket: Ticket, status: int, headers: Mapping[str, str]) -> None:
        """The server answered the request ``ticket`` paid for: learn from its headers."""
        now = self._clock()
        self._in_flight = max(0, self._in_flight - 1)
        headers = {k.lower(): v for k, v in headers.items()}  # plain dicts too, not only httpx.Headers
        limit, remaining, reset = rate_limit_headers(headers)
        reset = reset_seconds(reset, self._wall(), headers.get("date"))
        # RFC 9110 §15.6.4: a 503 with Retry-After is the server asking us to slow down.
        throttled = status == 429 or (status == 503 and "retry-after" in headers)
        headers_ok = limit is not None and remaining is not None and limit > 0
        if headers_ok and not self._distrust_headers:
            assert limit is not None and remaining is not None
            # Seconds or an HTTP-date, as the SDK reads it (an HTTP-date window is told apart too).
            raw = headers.get("retry-after") if throttled else None
            retry_after = parse_retry_after(raw, now=self._wall(), server_date=headers.get("date"))
            self._on_headers(now, ticket, limit, remaining, reset, throttled, retry_after, retry_after_precision(raw))
        elif not self._headers_seen and self._blind is None:
            self._start_blind(now)
        if self._blind is not None:
            self._on_blind_answer(now, ticket, throttled)
        elif throttled and not self._windowed:  # a window's end is exact: nothing to slow down
            self._decrease(now, ticket)
        self._changed.set()

    def _on_headers(self, now: float, ticket: Ticket, limit: float, remaining: float, reset: float | None,
                    throttled: bool, retry_after: float | None = None, precision: float = 0.0) -> None:
        """An answer with X-RateLimit-* headers we still trust: pace by them."""
        if self._blind is not None:  # headers after all: they win
            self._blind = None
            self._cubic = None
        self._headers_seen = True
        told_apart = throttled and not self._windowed and describes_window(limit, remaining, reset, retry_after,
                                                                           precision)
        if told_apart:
            self._enter_window(limit, reset)
        self._learn(now, ticket, limit, min(remaining, limit), reset, throttled)
        if told_apart:
            return  # not a surprise: the headers were right about the allowance, only not how it comes back
        if not throttled:
            return
        if self._anchored_since is not None and ticket.seq > self._anchored_since:
            # Sent too early for the server's count: pace from its answers from now on.
            self._send_anchored = False
        surprise = self._is_surprise(ticket, remaining)
        if not self._windowed and not self._distrust_headers and reset is not None \
                and describes_window(limit, remaining, reset, retry_after):
            # Undecided by its rounding alone (a window of about a second): the exact wait may
            # tell (block). Until it does, the 429 is not counted against the headers: a window
            # told by it is what they said, and a window's first 429 may come a moment before
            # its end, where nothing tells it from a bucket (counted then, and this one would
            # distrust the headers before its own exact wait could tell the window).
            if self._window_evidence is None or surprise:  # (one in flight with it adds nothing)
                self._settle_evidence(now)  # an older undecided 429 its exact wait never came for
                self._window_evidence = _WindowEvidence(limit, min(remaining, limit), reset, now, surprise)
        elif surprise:
            self._count_surprise(now)

    def _is_surprise(self, ticket: Ticket, remaining: float) -> bool:
        """Whether a 429 is one the headers failed to foresee (a pure reading of the key's state)."""
        news = ticket.seq > self._cubic[3] if self._cubic is not None else ticket.seq > self._window_seq
        # (A 429 that shows allowance left is the server's own hiccup: CUBIC copes.)
        return remaining < 1 and news

    def _count_surprise(self, now: float) -> None:
        """A 429 the headers did not foresee: past a few, they are not trusted to pace.

        The allowance really used up: someone else spends from it (a limit shared by an
        organization's keys, a gateway's).
        """
        if self._distrust_headers:
            return
        self._surprises += 1
        if self._surprises >= _SURPRISES_TO_DISTRUST:
            self._distrust_headers = True
            self._start_blind(now, ceiling=self._rate(now))

    def _settle_evidence(self, now: float) -> None:
        """The undecided 429 stays undecided (no exact wait came, or too late): counted as it read."""
        evidence, self._window_evidence = self._window_evidence, None
        if evidence is not None and evidence.surprise and not self._windowed:
            self._count_surprise(now)

    def _enter_window(self, limit: float, reset: float | None) -> None:
        """The headers describe a window: from here on the allowance is spent, then waited for whole."""
        self._windowed, self._cubic = True, None
        self._window_evidence = None
        # What was in flight with the 429 that told it was sent by the bucket reading: its
        # refusals are no news (as many as were in flight), not surprises that distrust the headers.
        self._window_seq = self._seq
        self._notify("windowed", {"limit": limit, "reset": reset})

    def _window_from_exact_wait(self, now: float, seconds: float, precision: float) -> None:
        """The exact wait of the 429 its rounded Retry-After left undecided: a window's, or a bucket's."""
        evidence = self._window_evidence
        if evidence is None or self._windowed or self._distrust_headers or now - evidence.at > _EVIDENCE_FRESH \
                or not describes_window(evidence.limit, evidence.remaining, evidence.reset, seconds, precision):
            self._settle_evidence(now)
            return
        self._window_evidence = None  # told: the headers were right about it, no surprise
        self._enter_window(evidence.limit, evidence.reset)
        self._capacity = evidence.limit
        self._tokens = evidence.remaining - self._in_flight
        self._window_end = evidence.at + min(evidence.reset, self._max_wait)
        self._refill(now)  # a window already over (a late exact wait) is whole again

    def _on_blind_answer(self, now: float, ticket: Ticket, throttled: bool) -> None:
        """An answer while the rate is learnt blind: a 429 slows down (once per slow-down), anything else counts as accepted."""
        blind = self._blind
        assert blind is not None
        before = (blind.phase(), blind.ceiling)
        if not throttled:
            blind.on_accepted(ticket.sent_at)
        elif ticket.seq > self._blind_seq:  # sent after the last slow-down: news
            self._refill(now)
            blind.on_throttle(ticket.sent_at, now)
            self._blind_seq = self._seq
            self._stamp = max(self._stamp, now)
            self._tokens = min(self._tokens, 0.0)
        phase = blind.phase()
        if phase != before[0] and phase != "probe":
            # What the key learnt, for the log: an operator (and a bench) can see each key's limit.
            self._notify("paced", {"phase": phase, "ceiling": blind.ceiling, "pace": blind.pace(now)})

    def _start_blind(self, now: float, ceiling: float | None = None) -> None:
        """The server answered without X-RateLimit-* (or they proved wrong): learn its rate from what it does."""
        self._refill(now)
        self._no_headers = True
        ceiling = ceiling if ceiling is not None else self._server_rate
        # A key with a rate of its own to start from (a hint, headers that proved wrong) climbs alone.
        shared = self._shared if ceiling is None else None
        self._blind = GrantedRate(min_rate=self._min_rate, ceiling=ceiling, shared=shared)
        self._cubic = None
        # Requests still in flight spend first; then one at a time at the learnt pace.
        self._tokens = min(self._tokens, 1.0) - self._in_flight if self._metered else 1.0 - self._in_flight
        self._stamp = now

    def _notify(self, kind: str, detail: dict[str, Any]) -> None:
        if self._on_wait is not None:
            self._on_wait(kind, detail)

    def cap_wait(self, seconds: float, source: str) -> float:
        """``seconds`` bounded by ``max_wait``; a capped value is reported (rate-limited per source)."""
        if seconds <= self._max_wait:
            return seconds
        now = self._clock()
        last = self._cap_noticed.get(source)
        if last is None or last[0] != seconds or now - last[1] >= _CAP_NOTICE_EVERY:
            self._cap_noticed[source] = (seconds, now)
            asked: float | str = seconds if math.isfinite(seconds) else "inf"
            self._notify("wait_capped", {"source": source, "asked": asked, "capped_to": self._max_wait})
        return self._max_wait

    def wait_hint(self) -> float | None:
        """How long to hold the key after a 429 that says nothing (no Retry-After), if we know."""
        if self._blind is not None:
            return self._blind.wait_hint()
        rate = self._rate(self._clock())
        return None if rate is None else 1.0 / max(rate, self._min_rate)

    def on_failure(self, ticket: Ticket) -> None:
        """No answer came back (connection error, cancelled): give back the in-flight slot.

        The token stays spent: the server may have counted the request.
        """
        self._in_flight = max(0, self._in_flight - 1)
        self._changed.set()

    def refuse(self, seconds: float) -> None:
        """The server wants no request on this key for ``seconds``, beyond ``max_wait``: refuse them here.

        Held for a capped wait instead, every call of the key would send once per ``max_wait``
        and fail on its 429 (an hour-long quota spent: a chatbot failed a minute, for hours).
        Refused, they fail at once without sending (``KeyRefused`` from ``check_refused`` and
        ``acquire``), until the last ``max_wait`` of the server's wait, which is waited as usual.
        """
        if math.isfinite(seconds) and seconds > self._max_wait:
            self._refused_until = max(self._refused_until, self._clock() + seconds - self._max_wait)
            self._changed.set()  # waiters in acquire see it now, not at the end of a capped wait

    def check_refused(self) -> None:
        """Raise ``KeyRefused`` while the server refuses this key (``refuse``)."""
        left = self._refused_until - self._clock()
        if left > 0:
            raise KeyRefused(left + self._max_wait)

    def block(self, seconds: float, reason: str = "retry-after", precision: float | None = None) -> None:
        """Send nothing on this key for ``seconds`` (the server's Retry-After), at most ``max_wait``.

        ``reason`` says where the wait comes from ("retry-after", "backoff");
        it shows in ``snapshot().waiting`` and, for a wait of a second or more,
        in an ``on_wait("waiting", ...)`` notice. ``precision``, when known, is how
        exact ``seconds`` is (1 ms for ``details.retryAfterMs``): an exact wait tells a
        window the last 429's rounded Retry-After could not.
        """
        now = self._clock()
        seconds = 0.0 if math.isnan(seconds) else max(0.0, seconds)
        if reason == "retry-after":
            if precision is not None:
                self._window_from_exact_wait(now, seconds, precision)
            else:
                self._settle_evidence(now)  # a wait as rounded as the header: nothing more to tell
            seconds = self.cap_wait(seconds, "retry-after")
        seconds = min(seconds, self._max_wait)
        self._refill(now)
        if now + seconds >= self._blocked_until:
            self._block_reason = reason
        self._blocked_until = max(self._blocked_until, now + seconds)
        if seconds >= WAIT_NOTICE:
            self._notify("waiting", {"reason": reason, "seconds": round(seconds, 3)})
        rate = self._rate(now)
        if self._windowed:
            pass  # the window's end (from its Reset) says when its allowance is back
        elif rate is not None:
            # The server's word (retryAfterMs): one token exactly when the wait
            # ends; requests still in flight will spend before us.
            self._tokens = 1.0 - rate * seconds - self._in_flight
        elif self._paced:
            self._tokens = min(self._tokens, 0.0)
        self._changed.set()

    def _learn(self, now: float, ticket: Ticket, limit: float, remaining: float, reset: float | None, throttled: bool = False) -> None:
        self._metered = True
        self._capacity = limit
        used = limit - remaining
        if reset is not None:
            # A Reset of 10⁸ s with Remaining 0 would otherwise pace at ~10⁻⁸/s: a silent stall.
            reset = self.cap_wait(reset, "x-ratelimit-reset")
        if self._windowed:
            self._learn_window(now, ticket, limit, remaining, reset, used)
            return
        if reset is not None and reset > 0 and used > 0:
            # Remaining is floored: the true level lies in [remaining, remaining+1),
            # so the rate lies in ((used-1)/reset, used/reset].
            lo, hi = max(0.0, (used - 1.0) / reset), used / reset
            if used == 1.0 and not throttled:
                # Remaining = Limit − 1: the request found the bucket full (a level in
                # [Limit, Limit + 1) is Limit, the cap), so Reset is exactly one token's
                # refill, give or take its printed precision (ms). The only measure a
                # bucket of 1 ever gives: without it the rate stays at 90 % of its bound.
                # (Not a 429's: it took nothing, its level lies anywhere under 1.)
                lo = max(lo, 1.0 / (reset + _RESET_PRECISION))
            if hi < self._lo or lo > self._hi:  # the server changed its rate: start over
                self._lo, self._hi = lo, hi
            else:
                self._lo, self._hi = max(self._lo, lo), min(self._hi, hi)
            # The tight lower bound once known; until then a cautious 90 % of the upper one.
            # (No MIN_RATE floor here: that bounds our own slow-down, not what the server grants.)
            self._server_rate = max(self._lo, 0.9 * self._hi)
        rtt = max(0.0, now - ticket.sent_at)
        if not throttled:  # a refusal may take another, shorter path through the server
            self._rtt_min = rtt if self._rtt_min is None else min(self._rtt_min, rtt)
            self._rtts.append(rtt)
        if ticket.seq > self._applied_seq:
            # The newest answer wins; requests still in flight will spend from
            # what the server reported, so count them as already spent.
            self._applied_seq = ticket.seq
            self._refill(now)
            level = remaining + self._refilled_since_counted(now, ticket, rtt)
            self._tokens = min(limit, level) - self._in_flight
            self._stamp = max(self._stamp, now)

    def _learn_window(self, now: float, ticket: Ticket, limit: float, remaining: float, reset: float | None,
                      used: float) -> None:
        """Headers of a window: Remaining is all there is until ``now + Reset`` (late by the trip back, so safe)."""
        if reset is not None and reset > 0 and used == 1.0:
            self._server_rate = limit / reset  # the window's first request: Reset is about its length
        if ticket.seq > self._applied_seq:
            self._applied_seq = ticket.seq
            self._tokens = min(limit, remaining) - self._in_flight
            self._window_end = now + reset if reset is not None and reset > 0 else None
            self._stamp = max(self._stamp, now)

    def _refilled_since_counted(self, now: float, ticket: Ticket, rtt: float) -> float:
        """Tokens the server has refilled since it counted ``ticket``'s request (docs/rate-limits.md, "Pacing from the send").

        The server counts a request when it arrives, somewhere between our send and its
        answer. Anchored at the answer (0 here), a key whose bucket holds one token sends
        every latency + 1/R instead of every 1/R. Once the rate is known to within
        ``_EXACT_RATE`` the count is anchored near the send instead, late by this
        answer's round trip beyond the fastest one seen (what the trip there may have
        been delayed by) plus ``ANCHOR_MARGIN``; never later than the answer. A 429 the
        headers did not foresee turns this off for the key (``_on_headers``).
        """
        rate = self._rate(now)
        if not self._send_anchored or rate is None or len(self._rtts) < _ANCHOR_SAMPLES or not self._rate_exact():
            return 0.0
        assert self._rtt_min is not None
        late = max(rtt - self._rtt_min, max(self._rtts) - min(self._rtts))
        counted = min(now, ticket.sent_at + late + ANCHOR_MARGIN)
        if counted < now and self._anchored_since is None:
            self._anchored_since = self._seq  # what is sent from here on is paced from the send
        return rate * (now - counted)

    def _one_at_a_time(self) -> int | None:
        """1 for a bucket of one token whose answers come back within one token's refill, else None.

        Such a bucket is never spent by two requests in flight at once, and the server
        counts a request when it arrives, which a busy client or network can delay past
        our send: sending the next one before the answer would risk a 429 for nothing.
        """
        rate = self._server_rate
        if self._capacity != 1.0 or not self._headers_seen or rate is None or self._rtt_min is None:
            return None
        return 1 if self._rtt_min * rate < 1.0 else None

    def _rate_exact(self) -> bool:
        return self._lo > 0 and self._hi <= self._lo * (1.0 + _EXACT_RATE)


    def _decrease(self, now: float, ticket: Ticket) -> None:
        if self._cubic is not None and ticket.seq <= self._cubic[3]:
            return  # sent before the last slow-down: no news about the new rate
        w_max = self._rate(now) or max(self._min_rate, self._measured_rate(now))
        # Zero point of the cubic: where the curve comes back to w_max (botocore cubic.py).
        k = (w_max * (1.0 - CUBIC_BETA) / CUBIC_C) ** (1.0 / 3.0)
        self._cubic = (w_max, k, now, self._seq)
        self._stamp = max(self._stamp, now)
        self._tokens = min(self._tokens, 0.0)

    # -- async side ---------------------------------------------------------

    async def acquire(self) -> Ticket:
        """Wait (FIFO among this key's callers only) until a token is ours."""
        async with self._lock:
            while True:
                self.check_refused()
                wait = self.poll()
                if wait <= 0:
                    return self.take()
                self._changed.clear()
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout=min(wait, _MAX_NAP))
                except asyncio.TimeoutError:
                    pass

    # -- reporting -----------------------------------------------------------

    def estimate_seconds(self, n_requests: int) -> float | None:
        """Lower bound on the time ``n_requests`` take on this key, starting from a full bucket.

        docs/rate-limits.md, "The floor": (n − b)/r with b the burst (capacity) and r the
        rate the server grants. None when the rate is not known yet.
        """
        if n_requests <= 0:
            return 0.0
        rate = self._server_rate if self._blind is None else self._blind.ceiling
        if rate is None:
            return None
        burst = self._capacity if self._capacity is not None and self._blind is None else 0.0
        return floor_seconds(n_requests, burst, rate)

    def snapshot(self) -> LimiterSnapshot:
        now = self._clock()
        self._refill(now)
        rate = self._rate(now)
        blocked = max(0.0, self._blocked_until - now)
        waiting: str | None = None
        wait = 0.0
        if blocked > 0:
            waiting, wait = self._block_reason or "retry-after", blocked
        elif self._windowed and self._tokens < 1.0 - _EPSILON and self._window_end is not None:
            waiting, wait = "rate", self._window_end - now
        elif self._paced and not self._windowed and rate is not None and self._tokens < 1.0 - _EPSILON:
            waiting, wait = "rate", (1.0 - self._tokens) / rate
        mode: str
        if self._blind is not None:
            mode = self._blind.phase()
        elif self._headers_seen:
            mode = "window" if self._windowed else "headers"
        else:
            mode = "hint" if self._metered else "probing"
        return LimiterSnapshot(
            capacity=self._capacity if self._blind is None else None,
            server_rate=self._server_rate if self._blind is None else self._blind.ceiling,
            rate=rate,
            tokens=self._tokens if self._paced else None,
            in_flight=self._in_flight,
            blocked_for=blocked,
            recovering=self._cubic is not None,
            mode=mode,
            waiting=waiting,
            wait_seconds=wait,
        )
