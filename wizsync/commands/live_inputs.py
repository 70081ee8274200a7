"""Fetch what rendering needs from the API, sequentially, with the sync SDK.

Used by ``render --online`` and ``validate --check-keys``: chatbot listings
(to match names and expand ``discover``) and live configs (``environment`` /
``self`` sources). Small fleets only need this; ``plan`` goes through the
concurrent engine. Retries (tenacity): 429 waits Retry-After, 5xx and
connection errors back off with jitter; other errors never retry.
Errors are ``ManifestError`` naming tenant and environment, never a key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Callable, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from wizchat_management import (
    ChatbotConfigDocument,
    PublicChatbot,
    WizChatApiError,
    WizChatClient,
    WizChatConnectionError,
    WizChatError,
)
from wizsync.fleet import api_error
from wizsync.manifest import Manifest, ManifestError, Target, read_api_key
from wizsync.render import live_config_needed

__all__ = ["LiveInputs"]

T = TypeVar("T")


_backoff = wait_exponential_jitter(multiplier=0.5, max=8.0, jitter=0.5)


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, WizChatApiError):
        return exc.status == 429 or exc.status >= 500
    return isinstance(exc, WizChatConnectionError)


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, (int, float)) and 0 <= retry_after <= 60:
        return float(retry_after)
    return float(_backoff(state))


class LiveInputs:
    """One sync client per (tenant, environment); listings cached. Close it when done."""

    def __init__(self, manifest: Manifest, environ: Mapping[str, str] | None = None) -> None:
        self.manifest = manifest
        self.environ = environ
        self._clients: dict[tuple[str, str], WizChatClient] = {}
        self._listings: dict[tuple[str, str], list[PublicChatbot]] = {}

    def __enter__(self) -> "LiveInputs":
        return self

    def __exit__(self, *exc: object) -> None:
        for client in self._clients.values():
            client.close()

    def _client(self, tenant: str, environment: str) -> WizChatClient:
        if (tenant, environment) not in self._clients:
            key = read_api_key(self.manifest, tenant, environment, self.environ)
            base_url = self.manifest.environments[environment].baseUrl
            self._clients[(tenant, environment)] = WizChatClient(key, base_url=base_url)
        return self._clients[(tenant, environment)]

    def _call(self, tenant: str, environment: str, action: str, fn: Callable[[WizChatClient], T]) -> T:
        client = self._client(tenant, environment)
        try:
            for attempt in Retrying(
                retry=retry_if_exception(_retryable), wait=_wait, stop=stop_after_attempt(5), reraise=True
            ):
                with attempt:
                    return fn(client)
        except WizChatError as exc:
            raise api_error(self.manifest, tenant, environment, action, exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def listing(self, tenant: str, environment: str) -> list[PublicChatbot]:
        key = (tenant, environment)
        if key not in self._listings:
            self._listings[key] = self._call(tenant, environment, "list_chatbots", lambda c: c.list_chatbots())
        return self._listings[key]

    def listings(self, tenants: Iterable[str], environment: str) -> dict[str, list[PublicChatbot]]:
        return {tenant: self.listing(tenant, environment) for tenant in tenants}

    def source_document(self, target: Target) -> ChatbotConfigDocument | None:
        """The live config a bound target renders from, or None for a file source."""
        ref = live_config_needed(self.manifest, target)
        if ref is None:
            return None
        ref = ref.bind(self.manifest, self.listing(ref.tenant, ref.environment) if ref.chatbot_id is None else [])
        chatbot_id: Any = ref.chatbot_id
        return self._call(ref.tenant, ref.environment, f"get_config({chatbot_id})", lambda c: c.get_config(chatbot_id))
