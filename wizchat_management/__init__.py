"""Official Python SDK for the WizChat Management API (config-as-code control plane).

Typed Pydantic v2 models (``wizchat_management.models``, generated from
``openapi.json``) and a thin httpx client, sync and async.
"""

from ._base_client import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, PAGE_SIZE
from ._client import AsyncWizChatClient, WizChatClient
from ._exceptions import WizChatApiError, WizChatConnectionError, WizChatError, WizChatTimeoutError
from ._version import __version__
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
