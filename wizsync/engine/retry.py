"""Retry timing and error sorting: small pure functions, no I/O, no clock.

Everything that decides *whether* a failed call is tried again and *how long*
to wait lives here, so it can be checked by a table (tests/test_engine_retry.py).
"""

from __future__ import annotations

import math
import random
from typing import Callable, Literal

from wizchat_management import WizChatApiError, WizChatConnectionError
from wizchat_management._retry_after import retry_after_from_response

__all__ = [
    "ErrorKind",
    "classify",
    "is_transient",
    "is_throttled",
    "is_retryable",
    "backoff_delay",
    "throttle_delay",
    "precision_of_retry_after",
    "halts_run",
    "outcome_unknown",
    "MAX_THROTTLE_WAIT",
    "MAX_SERVER_WAIT",
]

ErrorKind = Literal["transient", "throttled", "permanent"]

# Stainless SDKs (openai/anthropic `_base_client.py`): obey Retry-After up to
# 60 s (openai now 120 s) and refuse to retry beyond; a batch tool that would
# sit for minutes on one key is better off failing that item and letting
# `resume` pick it up later.
MAX_THROTTLE_WAIT = 60.0
#: The one cap on every wait learnt from a server: Retry-After (seconds or
#: HTTP-date), ``details.retryAfterMs`` and ``X-RateLimit-Reset``
#: (docs/rate-limits.md, "Waits the server asks for").
MAX_SERVER_WAIT = MAX_THROTTLE_WAIT


# 4xx answers that say "not now" rather than "no", as a gateway or load balancer sends them:
# 408 Request Timeout (the request did not reach the server whole; RFC 9110 §15.5.9: it may be
# repeated) and 425 Too Early (RFC 8470). Stainless SDKs retry 408 too; 409 means something of
# its own to each API, and this contract names none.
_TRANSIENT_4XX = frozenset({408, 425})


def classify(exc: BaseException) -> ErrorKind:
    """The one place that sorts errors: ``transient`` (retry with backoff),
    ``throttled`` (429: the key's limiter waits, then retry) or ``permanent``
    (never retried: the same request would get the same answer).
    """
    if isinstance(exc, WizChatApiError):
        if exc.code == "invalid_response":
            # The server answered but not per the contract: retrying repeats it.
            return "permanent"
        if exc.status == 429:
            return "throttled"
        if exc.status == 503 and exc.retry_after is not None:
            # RFC 9110 §15.6.4: 503 + Retry-After is "come back later", as a 429 says.
            return "throttled"
        if 500 <= exc.status <= 599 or exc.status in _TRANSIENT_4XX:
            return "transient"
        # 400/401/403/404 and anything else the server said "no" to.
        return "permanent"
    if isinstance(exc, WizChatConnectionError):  # WizChatTimeoutError included
        # No answer at all; every call of this API is idempotent (the SDK's
        # WizChatConnectionError docstring), so sending again is safe.
        return "transient"
    return "permanent"


# Answers after which no request of the run may be sent: a server (or a gateway in front of it)
# that carried out a dry-run would carry out every dry-run still to come, on every chatbot.
_HALTING_CODES = frozenset({"dry_run_applied"})


def halts_run(exc: BaseException) -> bool:
    """Whether ``exc`` stops the whole run (permanent for its call too: ``classify``)."""
    return isinstance(exc, WizChatApiError) and exc.code in _HALTING_CODES


def outcome_unknown(exc: BaseException) -> bool:
    """Whether a write that ended in ``exc`` may have been carried out: no answer, a transient one,
    one too large to read, or one the server gave as done or partly done (2xx, 422) that could not
    be read as such (a gateway's page, a cut-off body). A definite refusal (another 4xx) did nothing."""
    if classify(exc) == "transient":
        return True
    if not isinstance(exc, WizChatApiError):
        return False
    if exc.code == "response_too_large":
        return True
    return exc.code == "invalid_response" and (200 <= exc.status < 300 or exc.status == 422)


def is_transient(exc: BaseException) -> bool:
    return classify(exc) == "transient"


def is_throttled(exc: BaseException) -> bool:
    return classify(exc) == "throttled"


def is_retryable(exc: BaseException) -> bool:
    return classify(exc) != "permanent"


def backoff_delay(
    attempt: int,
    *,
    base: float = 0.5,
    cap: float = 8.0,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number ``attempt + 1`` (``attempt`` counts from 0).

    Stainless SDKs: ``min(0.5·2ⁿ, 8 s)·(1 − 0.25·rand)`` — exponential, capped,
    with up to 25 % jitter downwards so clients that failed together spread out.
    """
    n = min(max(int(attempt), 0), 64)  # 2**64 is plenty past any cap; avoids overflow
    delay = min(base * (2.0**n), cap)
    r = rand()
    if not (0.0 <= r <= 1.0):  # a broken random source must not make a negative wait
        r = 1.0
    return delay * (1.0 - 0.25 * r)


def precision_of_retry_after(exc: BaseException) -> float | None:
    """How exact ``exc.retry_after`` is: 1 ms when it came from ``details.retryAfterMs``, else None.

    A ``Retry-After`` header is rounded (whole seconds, an HTTP-date); the body's milliseconds are
    not, and tell a window of about a second from a token bucket (``KeyLimiter.block``).
    """
    details = exc.details if isinstance(exc, WizChatApiError) else None
    # The SDK's own reading of the body, without the header: a value only when retryAfterMs is usable.
    from_body = retry_after_from_response({}, details) if isinstance(details, dict) else None
    return 0.001 if from_body is not None else None


def throttle_delay(
    retry_after: float | None,
    *,
    attempt: int = 0,
    max_wait: float = MAX_THROTTLE_WAIT,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait after a 429 (or a 503 carrying Retry-After), or None: do not retry.

    ``retry_after`` is ``WizChatApiError.retry_after``: the SDK already prefers
    the exact ``details.retryAfterMs`` over the rounded ``Retry-After`` header.
    A usable value (finite, 0 ≤ v ≤ ``max_wait``) is obeyed as is; a missing or
    nonsensical one (None, negative, NaN, inf) falls back to ``backoff_delay``;
    a value beyond ``max_wait`` returns None — refuse rather than stall a run.
    """
    if retry_after is None or not isinstance(retry_after, (int, float)) or isinstance(retry_after, bool):
        return backoff_delay(attempt, rand=rand)
    value = float(retry_after)
    if math.isnan(value) or value < 0:
        return backoff_delay(attempt, rand=rand)
    if value > max_wait:  # inf included
        return None
    return value
