"""wizsync's execution engine: per-key pacing, a global in-flight cap, retries.

``retry`` holds the pure timing/sorting functions, ``limiter`` the adaptive
per-key token bucket, ``transport`` the HTTP backend and the limits every
answer is held to (deadline, size cap), ``wire`` the SDK's requests built
without httpx's per-request parsing, ``slots`` the global in-flight cap,
``executor`` the concurrent runner on ``AsyncWizChatClient`` that every
API-calling command shares.
"""

from .executor import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_THROTTLES,
    Executor,
    KeySpec,
    STOP_GRACE,
    OnEvent,
    Outcome,
    Stopped,
    run,
)
from .limiter import KeyLimiter
from .retry import backoff_delay, classify, is_retryable, is_throttled, is_transient, throttle_delay
from .transport import (
    DEFAULT_HTTP_BACKEND,
    DEFAULT_REQUEST_TIMEOUT,
    HTTP_BACKENDS,
    MAX_RESPONSE_BYTES,
    HttpBackend,
    ResponseTooLarge,
    Transport,
    UnsupportedProxy,
)

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_THROTTLES",
    "DEFAULT_HTTP_BACKEND",
    "DEFAULT_REQUEST_TIMEOUT",
    "HTTP_BACKENDS",
    "MAX_RESPONSE_BYTES",
    "STOP_GRACE",
    "HttpBackend",
    "ResponseTooLarge",
    "Transport",
    "UnsupportedProxy",
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
