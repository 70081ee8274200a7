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
"""

from __future__ import annotations

import datetime
import email.utils
import math
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["parse_retry_after", "retry_after_from_response"]


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value, or None if absent/unusable.

    ``now`` (epoch seconds) is the clock an HTTP-date is measured against.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_tz(value)
        except (TypeError, ValueError, IndexError):  # pragma: no cover - parsedate_tz rarely raises
            parsed = None
        if parsed is None:
            return None
        try:
            datetime.datetime(*parsed[:6])  # a real calendar date and time (no 32 Nov, no 25:00)
            at = email.utils.mktime_tz(parsed)
        except (OverflowError, ValueError):
            return None
        return max(float(at) - (time.time() if now is None else now), 0.0)
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
    return parse_retry_after(headers.get("retry-after"), now=now)
