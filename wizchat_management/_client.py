"""``WizChatClient`` and ``AsyncWizChatClient``: the I/O half of the SDK.

The two classes have the same surface; only the sending differs. Everything
else lives in ``_base_client.BaseClient``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx

from ._base_client import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, NOT_GIVEN, BaseClient, Listing
from .models import ApplyResult, ChatbotConfigDocument, ChatbotList, PublicChatbot

__all__ = ["WizChatClient", "AsyncWizChatClient"]

TimeoutTypes = float | httpx.Timeout | None
_SyncT = TypeVar("_SyncT", bound="WizChatClient")
_AsyncT = TypeVar("_AsyncT", bound="AsyncWizChatClient")


class WizChatClient(BaseClient):
    """Synchronous client of the WizChat Management API.

    Pass ``http_client`` to share a connection pool or to test with
    ``httpx.MockTransport``; a pool passed in is the caller's to close.
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: TimeoutTypes = NOT_GIVEN,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(api_key, base_url=base_url)
        self._owns_client = http_client is None
        self._timeout: Any = timeout
        if http_client is None:
            http_client = httpx.Client(timeout=DEFAULT_TIMEOUT if timeout is NOT_GIVEN else timeout)
            self._timeout = NOT_GIVEN
        self._client = http_client

    def _send(self, method: str, url: str, *, body: bytes | None = None, **kwargs: Any) -> httpx.Response:
        if self._timeout is not NOT_GIVEN:
            kwargs["timeout"] = self._timeout
        request = self._client.build_request(method, url, headers=self._headers(json_body=body is not None),
                                             content=body, **kwargs)
        try:
            return self._client.send(request)
        except httpx.TransportError as exc:
            raise self._transport_error(request, exc)  # its cause is set there: never a header value

    def list_chatbots(self) -> list[PublicChatbot]:
        """Every chatbot of the key's organization (follows ``nextCursor`` to the end)."""
        chatbots: list[PublicChatbot] = []
        cursor: str | None = None
        seen = Listing()
        while True:
            page, cursor = self._list_page(cursor, seen)
            chatbots.extend(page)
            if cursor is None:
                return chatbots

    def _list_page(self, cursor: str | None, seen: Listing) -> tuple[list[PublicChatbot], str | None]:
        """One page of ``list_chatbots`` (the first, or the one ``cursor`` names) and the next cursor.

        None at the end; a paging that cannot end raises (``seen``: the listing's so far). Private, not
        part of the surface the TypeScript SDK shares: for a caller that retries a listing page by
        page (wizsync's engine), so a failure on page 40 does not fetch 1-39 again.
        """
        url = self._url()
        page = self._parse(self._send("GET", url, params=self._page_params(cursor)), ChatbotList)
        return page.data, self._next_cursor(page, seen, url)

    def get_chatbot(self, chatbot_id: str) -> PublicChatbot:
        return self._parse(self._send("GET", self._url(chatbot_id)), PublicChatbot)

    def get_config(self, chatbot_id: str) -> ChatbotConfigDocument:
        """Export the chatbot's configuration as a desired-state document (secrets ``"<redacted>"``)."""
        return self._parse(self._send("GET", self._url(chatbot_id, "config")), ChatbotConfigDocument)

    def apply_config(
        self,
        chatbot_id: str,
        document: ChatbotConfigDocument | Mapping[str, Any],
        *,
        dry_run: bool = False,
        prune: bool | None = None,
    ) -> ApplyResult:
        """Reconcile (or with ``dry_run=True`` only plan); 200 and 422 both return ``ApplyResult``.

        A dry-run whose answer says it was carried out (``dryRun`` false, or operations applied: a
        gateway that drops the query parameter) raises ``WizChatApiError`` code ``dry_run_applied``.
        """
        response = self._send(
            "POST",
            self._url(chatbot_id, "apply"),
            params=self._apply_params(dry_run, prune),
            body=self._document_json(document),
        )
        return self._parse_apply(response, dry_run)

    def close(self) -> None:
        """Close the connection pool, if this client created it."""
        if self._owns_client:
            self._client.close()

    def __enter__(self: _SyncT) -> _SyncT:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncWizChatClient(BaseClient):
    """Asynchronous client with the same surface as ``WizChatClient`` (``aclose``, ``async with``)."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: TimeoutTypes = NOT_GIVEN,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(api_key, base_url=base_url)
        self._owns_client = http_client is None
        self._timeout: Any = timeout
        if http_client is None:
            http_client = httpx.AsyncClient(timeout=DEFAULT_TIMEOUT if timeout is NOT_GIVEN else timeout)
            self._timeout = NOT_GIVEN
        self._client = http_client

    async def _send(self, method: str, url: str, *, body: bytes | None = None, **kwargs: Any) -> httpx.Response:
        if self._timeout is not NOT_GIVEN:
            kwargs["timeout"] = self._timeout
        request = self._client.build_request(method, url, headers=self._headers(json_body=body is not None),
                                             content=body, **kwargs)
        try:
            return await self._client.send(request)
        except httpx.TransportError as exc:
            raise self._transport_error(request, exc)  # its cause is set there: never a header value

    async def list_chatbots(self) -> list[PublicChatbot]:
        """Every chatbot of the key's organization (follows ``nextCursor`` to the end)."""
        chatbots: list[PublicChatbot] = []
        cursor: str | None = None
        seen = Listing()
        while True:
            page, cursor = await self._list_page(cursor, seen)
            chatbots.extend(page)
            if cursor is None:
                return chatbots

    async def _list_page(self, cursor: str | None, seen: Listing) -> tuple[list[PublicChatbot], str | None]:
        """One page of ``list_chatbots`` (the first, or the one ``cursor`` names) and the next cursor.

        None at the end; a paging that cannot end raises (``seen``: the listing's so far). Private, not
        part of the surface the TypeScript SDK shares: for a caller that retries a listing page by
        page (wizsync's engine), so a failure on page 40 does not fetch 1-39 again.
        """
        url = self._url()
        page = self._parse(await self._send("GET", url, params=self._page_params(cursor)), ChatbotList)
        return page.data, self._next_cursor(page, seen, url)

    async def get_chatbot(self, chatbot_id: str) -> PublicChatbot:
        return self._parse(await self._send("GET", self._url(chatbot_id)), PublicChatbot)

    async def get_config(self, chatbot_id: str) -> ChatbotConfigDocument:
        """Export the chatbot's configuration as a desired-state document (secrets ``"<redacted>"``)."""
        return self._parse(
            await self._send("GET", self._url(chatbot_id, "config")), ChatbotConfigDocument
        )

    async def apply_config(
        self,
        chatbot_id: str,
        document: ChatbotConfigDocument | Mapping[str, Any],
        *,
        dry_run: bool = False,
        prune: bool | None = None,
    ) -> ApplyResult:
        """Reconcile (or with ``dry_run=True`` only plan); 200 and 422 both return ``ApplyResult``.

        A dry-run whose answer says it was carried out (``dryRun`` false, or operations applied: a
        gateway that drops the query parameter) raises ``WizChatApiError`` code ``dry_run_applied``.
        """
        response = await self._send(
            "POST",
            self._url(chatbot_id, "apply"),
            params=self._apply_params(dry_run, prune),
            body=self._document_json(document),
        )
        return self._parse_apply(response, dry_run)

    async def aclose(self) -> None:
        """Close the connection pool, if this client created it."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self: _AsyncT) -> _AsyncT:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
