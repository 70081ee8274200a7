"""The retry timing and error sorting of the execution engine, as tables."""

from __future__ import annotations

import math

import httpx
import pytest

from wizchat_management import WizChatApiError, WizChatConnectionError, WizChatTimeoutError
from wizsync.engine.retry import (
    MAX_THROTTLE_WAIT,
    backoff_delay,
    classify,
    is_retryable,
    is_throttled,
    is_transient,
    throttle_delay,
)

NO_JITTER = lambda: 0.0  # noqa: E731
FULL_JITTER = lambda: 1.0  # noqa: E731


@pytest.mark.parametrize(
    "attempt, expected",
    [
        (0, 0.5),
        (1, 1.0),
        (2, 2.0),
        (3, 4.0),
        (4, 8.0),  # reaches the cap
        (5, 8.0),
        (10, 8.0),
        (-3, 0.5),  # nonsense attempts behave like the first
        (10_000, 8.0),  # no overflow
    ],
)
def test_backoff_delay_is_exponential_and_capped(attempt: int, expected: float) -> None:
    assert backoff_delay(attempt, rand=NO_JITTER) == pytest.approx(expected)
    # Stainless jitter: at most 25 % shorter, never longer.
    assert backoff_delay(attempt, rand=FULL_JITTER) == pytest.approx(expected * 0.75)


@pytest.mark.parametrize("attempt", range(11))
def test_backoff_delay_stays_within_bounds_with_real_randomness(attempt: int) -> None:
    for _ in range(50):
        delay = backoff_delay(attempt)
        assert 0.375 <= delay <= 8.0


@pytest.mark.parametrize(
    "base, cap, attempt, expected",
    [(0.1, 1.0, 0, 0.1), (0.1, 1.0, 3, 0.8), (0.1, 1.0, 4, 1.0), (2.0, 3.0, 0, 2.0), (2.0, 3.0, 1, 3.0)],
)
def test_backoff_delay_base_and_cap(base: float, cap: float, attempt: int, expected: float) -> None:
    assert backoff_delay(attempt, base=base, cap=cap, rand=NO_JITTER) == pytest.approx(expected)


def test_backoff_delay_with_a_broken_random_source_is_never_negative() -> None:
    assert backoff_delay(0, rand=lambda: 7.0) == pytest.approx(0.375)
    assert backoff_delay(0, rand=lambda: -1.0) == pytest.approx(0.375)


@pytest.mark.parametrize(
    "retry_after, attempt, expected",
    [
        (None, 0, 0.5),  # missing: exponential fallback
        (None, 3, 4.0),
        (0, 0, 0.0),  # "now" is obeyed
        (0.2, 0, 0.2),  # exact retryAfterMs, sub-second
        (1, 5, 1.0),  # the server's value wins over the attempt count
        (5, 0, 5.0),
        (60, 0, 60.0),  # at the bound: obeyed
        (60.001, 0, None),  # beyond: refused
        (600, 0, None),
        (math.inf, 0, None),
        (-1, 0, 0.5),  # nonsense: fallback
        (-0.001, 2, 2.0),
        (math.nan, 0, 0.5),
        (math.nan, 10, 8.0),
        ("5", 0, 0.5),  # not a number: fallback
        (True, 0, 0.5),
    ],
)
def test_throttle_delay(retry_after: object, attempt: int, expected: float | None) -> None:
    got = throttle_delay(retry_after, attempt=attempt, rand=NO_JITTER)  # type: ignore[arg-type]
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


def test_throttle_delay_max_wait_is_configurable() -> None:
    assert MAX_THROTTLE_WAIT == 60.0
    assert throttle_delay(100, max_wait=120) == 100
    assert throttle_delay(10, max_wait=5) is None


def _api(status: int, code: str = "x") -> WizChatApiError:
    return WizChatApiError(status, code, "m")


@pytest.mark.parametrize(
    "exc, kind",
    [
        (_api(500, "internal_error"), "transient"),
        (_api(502), "transient"),
        (_api(503, "unavailable"), "transient"),
        (_api(504), "transient"),
        # A gateway's "not now": the request did not reach the server whole, or came too early.
        (_api(408, "http_408"), "transient"),
        (_api(425, "http_425"), "transient"),
        (_api(409, "http_409"), "permanent"),
        (WizChatConnectionError("refused"), "transient"),
        (WizChatTimeoutError("slow"), "transient"),
        (_api(429, "rate_limited"), "throttled"),
        # RFC 9110: 503 + Retry-After is "come back later", like a 429; without it, a 5xx.
        (WizChatApiError(503, "unavailable", "m", retry_after=2.0), "throttled"),
        (_api(400, "validation_error"), "permanent"),
        (_api(401, "unauthorized"), "permanent"),
        (_api(403, "insufficient_scope"), "permanent"),
        (_api(404, "not_found"), "permanent"),
        (_api(422), "permanent"),  # 422 that reached us as an error (not apply's ApplyResult)
        (_api(200, "invalid_response"), "permanent"),
        (_api(500, "invalid_response"), "permanent"),
        (ValueError("bug"), "permanent"),
        (httpx.ConnectError("raw httpx, not through the SDK"), "permanent"),
    ],
)
def test_classify(exc: BaseException, kind: str) -> None:
    assert classify(exc) == kind
    assert is_transient(exc) == (kind == "transient")
    assert is_throttled(exc) == (kind == "throttled")
    assert is_retryable(exc) == (kind != "permanent")
