"""wizsync's execution engine: per-key pacing, a global in-flight cap, retries.

``retry`` holds the pure timing/sorting functions, ``limiter`` the adaptive
per-key token bucket, ``executor`` the concurrent runner on
``AsyncWizChatClient`` that every API-calling command shares.
"""

from .executor import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_THROTTLES,
    Executor,
    KeySpec,
    OnEvent,
    Outcome,
    Stopped,
    run,
)
from .limiter import KeyLimiter
from .retry import backoff_delay, classify, is_retryable, is_throttled, is_transient, throttle_delay

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_THROTTLES",
    "Executor",
    "KeySpec",
    "KeyLimiter",
    "OnEvent",
    "Outcome",
    "Stopped",
    "run",
    "backoff_delay",
    "classify",
    "is_retryable",
    "is_throttled",
    "is_transient",
    "throttle_delay",
]
