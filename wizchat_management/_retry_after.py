"""How long a 429 (or 503) asks the caller to wait: small pure functions.

Order of precedence, after Stainless SDKs: ``details.retryAfterMs`` (exact,
milliseconds) then ``Retry-After`` as delay-seconds, then as an HTTP-date.
RFC 9110 §10.2.3 allows both forms, and §5.6.7 asks a recipient to accept
all three date formats (IMF-fixdate, the obsolete RFC 850 form and
asctime); ``email.utils.parsedate_tz`` reads each of them.

What comes back is what the server asked for, never made up: a value that is
missing or unusable (not a number nor a date, negative, NaN, infinite) is
None, and the caller falls back to its own backoff. A date in the past is 0.
A huge but finite value is returned as is: bounding it is the caller's
policy (wizsync caps every server-asked wait at one maximum).

An HTTP-date is a time on the server's clock. Measured against ours, a
server whose clock is minutes ahead asks for minutes, one behind for
nothing. The answer's own ``Date`` header (RFC 9110 §6.6.1) is the server's
clock at the answer: when it is further from ours than both dates' whole
seconds can explain (``SKEW_TOLERANCE``), the wait is measured against it.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["SKEW_TOLERANCE", "parse_retry_after", "retry_after_from_response", "server_clock"]

# Seconds between the server's Date and our clock that are not skew: each side of an HTTP-date
# is whole seconds, and the answer took its time to arrive.
SKEW_TOLERANCE = 2.0


def _http_date(value: str) -> float | None:
    """Epoch seconds of an HTTP-date (any of RFC 9110's three formats), or None."""
    try:
        parsed = email.utils.parsedate_tz(value)
    except (TypeError, ValueError, IndexError):  # pragma: no cover - parsedate_tz rarely raises
        return None
    if parsed is None:
        return None
    try:
        datetime.datetime(*parsed[:6])  # a real calendar date and time (no 32 Nov, no 25:00)
        return float(email.utils.mktime_tz(parsed))
    except (OverflowError, ValueError):
        return None


def server_clock(server_date: str | None, now: float) -> float:
    """The clock a time the server sent is measured against: ``now`` (ours), or the answer's ``Date``
    (``server_date``) when the two are further apart than ``SKEW_TOLERANCE``."""
    server_now = _http_date(server_date) if server_date else None
    return server_now if server_now is not None and abs(server_now - now) > SKEW_TOLERANCE else now


def parse_retry_after(value: str | None, *, now: float | None = None, server_date: str | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value, or None if absent/unusable.

    ``now`` (epoch seconds) is the clock an HTTP-date is measured against; ``server_date`` the
    answer's ``Date`` header, which is measured against instead when the two clocks disagree.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        at = _http_date(value)
        if at is None:
            return None
        return max(at - server_clock(server_date, time.time() if now is None else now), 0.0)
    if not math.isfinite(seconds) or seconds < 0:
        return None  # delay-seconds is 1*DIGIT: a negative, NaN or inf is not a delay
    return seconds


def retry_after_from_response(
    headers: Mapping[str, str], details: Mapping[str, Any] | None, *, now: float | None = None
) -> float | None:
    """Seconds to wait, preferring the exact ``details.retryAfterMs`` over the rounded header."""
    if details is not None:
        ms = details.get("retryAfterMs")
        if isinstance(ms, (int, float)) and not isinstance(ms, bool) and math.isfinite(ms) and ms >= 0:
            return float(ms) / 1000.0
    return parse_retry_after(headers.get("retry-after"), now=now, server_date=headers.get("date"))
