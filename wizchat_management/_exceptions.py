"""The SDK's errors.

``WizChatApiError`` is the one error type for answers from the API (every
non-2xx except the documented 422 of apply). ``WizChatConnectionError`` is
raised when no answer came back at all (connection refused or dropped,
timeout, protocol error), so callers can tell "the server said no" from "the
server was never heard".
"""

from __future__ import annotations

from typing import Any

__all__ = ["WizChatError", "WizChatApiError", "WizChatConnectionError", "WizChatTimeoutError"]


class WizChatError(Exception):
    """Base class of every error this SDK raises."""


class WizChatApiError(WizChatError):
    """The API answered with an error (non-2xx, except the 422 of apply).

    ``code`` is the envelope's ``error.code``, or ``http_<status>`` when the
    body is not the standard envelope. ``retry_after`` (seconds) is set on
    429 answers, from ``details.retryAfterMs`` or the ``Retry-After`` header.
    ``request_id`` is the server's ``X-Request-Id``, for support tickets.
    """

    status: int
    code: str
    message: str
    details: dict[str, Any] | None
    retry_after: float | None
    request_id: str | None

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        retry_after: float | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.retry_after = retry_after
        self.request_id = request_id

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, request_id={self.request_id!r})"
        )


class WizChatConnectionError(WizChatError):
    """No answer was received: the connection failed, dropped, or broke the protocol.

    The original ``httpx.TransportError`` is the ``__cause__``. Whether the
    request reached the server is unknown, so only idempotent calls (every
    call of this API, apply included) are safe to retry.
    """


class WizChatTimeoutError(WizChatConnectionError):
    """No answer arrived within the client's timeout."""
