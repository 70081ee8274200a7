"""JSON responses and the error envelope shared by the API and the admin API."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response


class ApiError(Exception):
    """Answered as ``{"error": {"code", "message", "details"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(dumps(obj), status_code=status, media_type="application/json")


def envelope(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> Response:
    return json_response({"error": {"code": code, "message": message, "details": details}}, status)


def validation_error(errors: list[dict[str, str]]) -> ApiError:
    return ApiError(400, "validation_error", "the request is invalid; nothing was applied", {"errors": errors})
