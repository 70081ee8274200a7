"""The wizsync manifest: load, validate and resolve targets (no network).

Public API::

    load_manifest(path) -> Manifest                      # raises ManifestError
    resolve_targets(manifest, env, *, select=(), chatbots=()) -> TargetPlan
    TargetPlan.listings_needed() -> list[str]            # tenants to list_chatbots() for
    TargetPlan.bind(listings: Mapping[str, Sequence[ListedChatbot]]) -> list[Target]
    read_api_key(manifest, tenant, env, environ=None) -> str
    parse_selection(select, chatbots) -> Selection

``ManifestError`` is the one error type: ``str(err)`` is one paragraph naming
file, line and key, and how to fix it; never a key or secret value.
"""

from .errors import ManifestError, ManifestErrors, format_key_path, raise_all
from .keys import read_api_key
from .loader import load_manifest
from .model import (
    DEFAULT_WAVE,
    ChatbotEntry,
    Defaults,
    DocumentPatch,
    Environment,
    KeyRef,
    Manifest,
    RateLimitHint,
    Rollout,
    Source,
    Tenant,
    parse_percent,
)
from .selectors import Selection, parse_selection
from .targets import Listed, ListedChatbot, Target, TargetPlan, find_chatbot_id, resolve_targets

__all__ = [
    "DEFAULT_WAVE",
    "ChatbotEntry",
    "Defaults",
    "DocumentPatch",
    "Environment",
    "KeyRef",
    "Listed",
    "ListedChatbot",
    "Manifest",
    "ManifestError",
    "ManifestErrors",
    "RateLimitHint",
    "Rollout",
    "Selection",
    "Source",
    "Target",
    "TargetPlan",
    "Tenant",
    "find_chatbot_id",
    "format_key_path",
    "load_manifest",
    "parse_percent",
    "parse_selection",
    "raise_all",
    "read_api_key",
    "resolve_targets",
]
