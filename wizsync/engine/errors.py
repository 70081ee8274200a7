"""Errors as data: ``{code, message, status?, request_id?}`` for the journal, reports and events.

Never a key: the SDK's errors carry none.
"""

from __future__ import annotations

from typing import TypedDict

from wizchat_management import WizChatApiError, WizChatConnectionError

__all__ = ["CallError", "error_info", "key_refused"]


class _CallErrorRequired(TypedDict):
    code: str
    message: str


class CallError(_CallErrorRequired, total=False):
    """A failed call as data; ``status`` and ``request_id`` when the server answered."""

    status: int
    request_id: str


def error_info(exc: BaseException) -> CallError:
    """``{code, message}`` (and the status, request id) of a failed call."""
    if isinstance(exc, WizChatApiError):
        info: CallError = {"code": exc.code, "message": exc.message, "status": exc.status}
        if exc.request_id:
            info["request_id"] = exc.request_id
        if exc.code == "validation_error" and exc.details and isinstance(exc.details.get("errors"), list):
            paths = [f"{e.get('path')}: {e.get('message')}" for e in exc.details["errors"][:5] if isinstance(e, dict)]
            if paths:
                info["message"] = f"{exc.message} ({'; '.join(paths)})"
        return info
    if isinstance(exc, WizChatConnectionError):
        return {"code": "connection_error", "message": str(exc)}
    return {"code": type(exc).__name__, "message": str(exc)}


def key_refused(exc: BaseException) -> bool:
    """The server refused the key itself (401/403): the manifest's key entry is to blame, not one chatbot."""
    return isinstance(exc, WizChatApiError) and exc.status in (401, 403)
