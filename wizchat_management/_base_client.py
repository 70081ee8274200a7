"""Everything the sync and async clients share that does no I/O.

Like httpx's ``BaseClient``: request building and response handling live here
as plain methods, so ``WizChatClient`` and ``AsyncWizChatClient`` duplicate
only the lines that send.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from ._exceptions import WizChatApiError, WizChatConnectionError, WizChatTimeoutError
from ._retry_after import retry_after_from_response
from ._version import __version__
from .contract import component_schema, drop_forbidden_nulls
from .models import ApplyResult, ChatbotConfigDocument, ChatbotList

__all__ = ["BaseClient", "DEFAULT_BASE_URL", "DEFAULT_TIMEOUT", "Listing", "MAX_IDLE_PAGES", "PAGE_SIZE"]

log = logging.getLogger("wizchat_management")

DEFAULT_BASE_URL = "https://www.wizchat.com"
# Apply runs every section server-side; give it room, but never hang forever.
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
# The largest page the API serves: the fewest requests against the rate limit.
PAGE_SIZE = 200
# Pages in a row that list no chatbot the listing has not shown yet, each naming a cursor of its
# own, before the listing is a broken server's (a cursor that embeds the time, a pager stuck on
# one offset): it would otherwise never end. 100 pages of 200 is 20,000 rows a server hid in a row.
MAX_IDLE_PAGES = 100
# An error's ``details`` nested deeper than this is dropped (the code and message stay): the API's
# own are one or two levels, and every caller that walks them (a report, a scrubber) recurses.
MAX_DETAILS_DEPTH = 32

ModelT = TypeVar("ModelT", bound=BaseModel)


class Listing:
    """What one ``list_chatbots`` has seen so far: the cursors it followed, the chatbot ids it
    listed, and how many pages in a row listed nothing new. Private: the engine of a caller that
    sends a listing page by page (``_list_page``) keeps one per listing."""

    __slots__ = ("cursors", "ids", "idle")

    def __init__(self) -> None:
        self.cursors: set[str] = set()
        self.ids: set[str] = set()
        self.idle = 0


class _NotGiven:
    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Any = _NotGiven()


class BaseClient:
    """Holds the key and base URL; builds requests and turns responses into models or errors."""

    def __init__(self, api_key: str, *, base_url: str = DEFAULT_BASE_URL) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ValueError("api_key must be a non-empty string (a wpk_live_… or wpk_test_… key)")
        bad = next((i for i, c in enumerate(api_key) if not "!" <= c <= "~"), None)
        if bad is not None:
            # Refused here, by position: sent as a header, the HTTP layer's error would quote it whole.
            raise ValueError(
                f"api_key holds whitespace, a line break or a non-printable character (character {bad + 1} of "
                f"{len(api_key)}); pass the key alone (its value is not shown)"
            )
        self.__api_key = api_key
        self.base_url = base_url.rstrip("/")

    def __repr__(self) -> str:
        # Never the key: reprs end up in logs and tracebacks.
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    # -- requests -----------------------------------------------------------

    def _headers(self, *, json_body: bool = False) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.__api_key}",
            "Accept": "application/json",
            "User-Agent": f"wizchat-management-python/{__version__}",
        }
        if json_body:
            headers["Content-Type"] = "application/json"
        return headers

    def _url(self, *segments: str) -> str:
        parts = []
        for segment in segments:
            if not isinstance(segment, str) or not segment:
                raise ValueError("chatbot_id must be a non-empty string")
            parts.append(quote(segment, safe=""))
        return "/".join([self.base_url, "api/v1/chatbots", *parts])

    @staticmethod
    def _apply_params(dry_run: bool, prune: bool | None) -> dict[str, str]:
        params: dict[str, str] = {}
        if dry_run:
            params["dryRun"] = "true"
        if prune is not None:
            params["prune"] = "true" if prune else "false"
        return params

    @staticmethod
    def _document_body(document: ChatbotConfigDocument | Mapping[str, Any]) -> dict[str, Any]:
        """The JSON body of an apply: exactly what the caller holds, minus any stray ``dryRun``.

        ``exclude_unset`` sends back only the fields that were read or set, so
        a document from ``get_config`` returns unchanged: no defaults injected,
        absent sections stay absent, unknown fields kept. A ``None`` the contract
        does not admit as ``null`` (an optional, non-nullable field such as
        ``transport``) means "not given" and is left out, never sent as ``null``.
        """
        cleaned: dict[str, Any] = drop_forbidden_nulls(_as_body(document), component_schema("ChatbotConfigDocument"))
        return cleaned

    @staticmethod
    def _document_json(document: ChatbotConfigDocument | Mapping[str, Any]) -> bytes:
        """``_document_body`` encoded as JSON (UTF-8, compact, as httpx encodes ``json=``).

        Most documents hold no ``null`` at all: their encoding shows it (every
        null token follows ``:``, ``[`` or ``,``), and the contract walk that
        drops forbidden nulls (~30 µs a document) runs only when one may be there, and the
        document is encoded again only when the walk dropped one.
        """
        body = _as_body(document)
        encoded = _encode(body)
        if b":null" in encoded or b"[null" in encoded or b",null" in encoded:
            cleaned = drop_forbidden_nulls(body, component_schema("ChatbotConfigDocument"))
            if cleaned != body:  # the walk only drops keys: equal means every null was admitted
                encoded = _encode(cleaned)
        return encoded

    # -- responses ----------------------------------------------------------

    def _parse(self, response: httpx.Response, model: type[ModelT]) -> ModelT:
        self._log(response)
        if not response.is_success:
            raise self._error(response)
        return self._validate(response, model)

    def _parse_apply(self, response: httpx.Response, dry_run: bool) -> ApplyResult:
        self._log(response)
        # 422 is a partial failure with an ApplyResult body, not an error.
        if not (response.is_success or response.status_code == 422):
            raise self._error(response)
        result = self._validate(response, ApplyResult)
        if dry_run and (result.dryRun is not True or result.applied):
            # Asked to plan, the server changed the chatbot. Never hand that back as a plan: the
            # caller would show "would change" for what is done, and go on to the next one.
            raise WizChatApiError(
                response.status_code,
                "dry_run_applied",
                f"{response.request.method} {response.request.url.copy_with(query=None)}: asked for a dry-run, "
                f"the server carried it out as an apply (its answer: dryRun {str(result.dryRun).lower()}, "
                f"{len(result.applied)} operation(s) applied, revision {result.revision}). Something between "
                "this client and the API (a gateway, a proxy) may drop the dryRun query parameter: check this chatbot",
                {"revision": result.revision, "applied": len(result.applied)},
                request_id=response.headers.get("x-request-id"),
            )
        return result

    @staticmethod
    def _validate(response: httpx.Response, model: type[ModelT]) -> ModelT:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise WizChatApiError(
                response.status_code,
                "invalid_response",
                f"the server's answer is not a valid {model.__name__}: {exc.error_count()} error(s), "
                f"first: {_first_error(exc)}",
                None,
                request_id=response.headers.get("x-request-id"),
            ) from None

    @staticmethod
    def _error(response: httpx.Response) -> WizChatApiError:
        status = response.status_code
        code, message, details = f"http_{status}", response.reason_phrase or f"HTTP {status}", None
        try:
            body = json.loads(response.content)
        except (ValueError, RecursionError):  # not JSON, or nested past the interpreter's stack
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and isinstance(error.get("code"), str):
            code = error["code"]
            if isinstance(error.get("message"), str):
                message = error["message"]
            if isinstance(error.get("details"), dict) and _depth_within(error["details"], MAX_DETAILS_DEPTH):
                details = error["details"]
        retry_after = (
            retry_after_from_response(response.headers, details) if status in (429, 503) else None
        )
        return WizChatApiError(
            status,
            code,
            message,
            details,
            retry_after=retry_after,
            request_id=response.headers.get("x-request-id"),
        )

    def _transport_error(self, request: httpx.Request, exc: Exception) -> WizChatConnectionError:
        """The SDK error for ``exc``, raised as is (``raise client._transport_error(...)``, no ``from``).

        The URL carries no secret (the key travels in a header); httpx's own
        message may be empty, so name the exception class too. A message of the
        HTTP layer that quotes a header (h11's "Illegal header value b'Bearer …'")
        is replaced, and the original is dropped from the chain, so no traceback
        shows the key either.
        """
        kind = WizChatTimeoutError if isinstance(exc, httpx.TimeoutException) else WizChatConnectionError
        detail = str(exc) or type(exc).__name__
        quoted = isinstance(exc, httpx.LocalProtocolError) or any(
            value in detail for value in (self.__api_key, *self._headers().values())
        )
        if quoted:
            detail = "the HTTP layer refused the request's headers (their values are not shown)"
        error = kind(f"{request.method} {request.url}: no answer ({type(exc).__name__}: {detail})")
        error.__cause__ = None if quoted else exc
        error.__suppress_context__ = True
        return error

    @staticmethod
    def _log(response: httpx.Response) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s -> %s (request id %s)",
                response.request.method,
                response.request.url,
                response.status_code,
                response.headers.get("x-request-id"),
            )

    @staticmethod
    def _page_params(cursor: str | None) -> dict[str, Any]:
        """The query of one page of ``list_chatbots``: the largest page, from ``cursor`` if given."""
        return {"limit": PAGE_SIZE} if cursor is None else {"limit": PAGE_SIZE, "cursor": cursor}

    @staticmethod
    def _next_cursor(page: ChatbotList, seen: Listing, url: str) -> str | None:
        """The cursor of the page after ``page``, or None at the end; a paging that cannot end raises.

        An empty cursor is the end too: some servers send ``""`` where the contract says null. A
        cursor already followed is a loop; ``MAX_IDLE_PAGES`` pages in a row that list no new
        chatbot, each with a new cursor, are a loop the cursors hide.
        """
        cursor = page.nextCursor
        if not cursor:
            return None
        if cursor in seen.cursors:
            raise WizChatApiError(200, "invalid_response", f"GET {url}: the server repeated cursor {cursor!r}")
        seen.cursors.add(cursor)
        before = len(seen.ids)
        seen.ids.update(c.id for c in page.data)
        seen.idle = 0 if len(seen.ids) > before else seen.idle + 1
        if seen.idle >= MAX_IDLE_PAGES:
            raise WizChatApiError(200, "invalid_response", (
                f"GET {url}: {seen.idle} pages in a row listed no chatbot not listed before, each with a new "
                "cursor: the server's paging does not end"))
        return cursor


def _depth_within(value: Any, limit: int) -> bool:
    """Whether ``value`` nests no deeper than ``limit`` containers (iterative: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return False
                stack.append((child, depth + 1))
    return True


def _as_body(document: ChatbotConfigDocument | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(document, BaseModel):
        body: dict[str, Any] = document.model_dump(mode="json", by_alias=True, exclude_unset=True)
    elif isinstance(document, Mapping):
        body = dict(document)
    else:
        raise TypeError(f"document must be a ChatbotConfigDocument or a mapping, not {type(document).__name__}")
    body.pop("dryRun", None)  # the query parameter is the single source of truth
    return body


def _encode(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
    return f"{loc}: {err.get('msg')}"
