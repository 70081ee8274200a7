"""Official Python SDK for the WizChat Management API (config-as-code control plane).

Typed Pydantic v2 models (``wizchat_management.models``, generated from
``openapi.json``) and a thin httpx client, sync and async.
"""

from ._client import AsyncWizChatClient, WizChatClient
from ._exceptions import WizChatApiError, WizChatConnectionError, WizChatError, WizChatTimeoutError
from ._version import __version__
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

__all__ = [
    "__version__",
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
]
