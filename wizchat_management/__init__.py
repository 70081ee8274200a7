"""Official Python SDK for the WizChat Management API (config-as-code control plane).

Typed Pydantic v2 models (``wizchat_management.models``, generated from
``openapi.json``) and a thin httpx client, sync and async.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._base_client import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, PAGE_SIZE
    from ._client import AsyncWizChatClient, WizChatClient
    from ._exceptions import WizChatApiError, WizChatConnectionError, WizChatError, WizChatTimeoutError
    from .jsontypes import JSONArray, JSONObject, JSONValue
    from .models import (
        ApplyResult,
        ChatbotConfigDocument,
        ChatbotList,
        ConfigMetadata,
        FailedOperation,
        FieldChange,
        Operation,
        OperationKind,
        Plan,
        PlanSummary,
        PublicChatbot,
        Section,
        Spec,
    )
    from .vocabulary import (
        API_KEY_PREFIX,
        API_KEY_RE,
        APPLY_ORDER,
        ARRAY_SECTIONS,
        ITEM_KEYS,
        OBJECT_SECTIONS,
        REDACTED,
        SECTIONS,
        SectionName,
        is_api_key,
    )

# Loaded on first use (PEP 562): ``import wizchat_management`` for ``__version__`` (every wizsync
# command, ``wizsync --help``) does not pay ~0.5 s for httpx and the pydantic models.
_LAZY = {
    "DEFAULT_BASE_URL": "._base_client",
    "DEFAULT_TIMEOUT": "._base_client",
    "PAGE_SIZE": "._base_client",
    "AsyncWizChatClient": "._client",
    "WizChatClient": "._client",
    "WizChatApiError": "._exceptions",
    "WizChatConnectionError": "._exceptions",
    "WizChatError": "._exceptions",
    "WizChatTimeoutError": "._exceptions",
    "JSONArray": ".jsontypes",
    "JSONObject": ".jsontypes",
    "JSONValue": ".jsontypes",
    "ApplyResult": ".models",
    "ChatbotConfigDocument": ".models",
    "ChatbotList": ".models",
    "ConfigMetadata": ".models",
    "FailedOperation": ".models",
    "FieldChange": ".models",
    "Operation": ".models",
    "OperationKind": ".models",
    "Plan": ".models",
    "PlanSummary": ".models",
    "PublicChatbot": ".models",
    "Section": ".models",
    "Spec": ".models",
    "API_KEY_PREFIX": ".vocabulary",
    "API_KEY_RE": ".vocabulary",
    "APPLY_ORDER": ".vocabulary",
    "ARRAY_SECTIONS": ".vocabulary",
    "ITEM_KEYS": ".vocabulary",
    "OBJECT_SECTIONS": ".vocabulary",
    "REDACTED": ".vocabulary",
    "SECTIONS": ".vocabulary",
    "SectionName": ".vocabulary",
    "is_api_key": ".vocabulary",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "__version__",
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "PAGE_SIZE",
    "JSONValue",
    "JSONObject",
    "JSONArray",
    "WizChatClient",
    "AsyncWizChatClient",
    "WizChatError",
    "WizChatApiError",
    "WizChatConnectionError",
    "WizChatTimeoutError",
    "ApplyResult",
    "ChatbotConfigDocument",
    "ChatbotList",
    "ConfigMetadata",
    "FailedOperation",
    "FieldChange",
    "Operation",
    "OperationKind",
    "Plan",
    "PlanSummary",
    "PublicChatbot",
    "Section",
    "Spec",
    "SectionName",
    "SECTIONS",
    "APPLY_ORDER",
    "OBJECT_SECTIONS",
    "ARRAY_SECTIONS",
    "ITEM_KEYS",
    "REDACTED",
    "API_KEY_PREFIX",
    "API_KEY_RE",
    "is_api_key",
]
