"""How long a 429 (or 503) asks the caller to wait: small pure functions.

Order of precedence, after Stainless SDKs: ``details.retryAfterMs`` (exact,
milliseconds) then ``Retry-After`` as delay-seconds, then as an HTTP-date
(RFC 9110 allows both forms).
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["parse_retry_after", "retry_after_from_response"]


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value, or None if absent/unusable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        seconds = email.utils.mktime_tz(parsed) - (time.time() if now is None else now)
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(seconds, 0.0)


def retry_after_from_response(
    headers: Mapping[str, str], details: Mapping[str, Any] | None, *, now: float | None = None
) -> float | None:
    """Seconds to wait, preferring the exact ``details.retryAfterMs`` over the rounded header."""
    if details is not None:
        ms = details.get("retryAfterMs")
        if isinstance(ms, (int, float)) and not isinstance(ms, bool) and ms >= 0 and math.isfinite(ms):
            return float(ms) / 1000.0
    return parse_retry_after(headers.get("retry-after"), now=now)
