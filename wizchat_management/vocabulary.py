"""The API's vocabulary, defined once for the SDK, its emulator and every tool built on them.

Everything here is read off ``openapi.json`` (``Spec``, ``Section``,
``bearerAuth``) and the published API description; code that needs a section
name, an array section's item key, the redaction marker or the key format
imports it from here instead of spelling it again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import Enum
from typing import Final, Literal

__all__ = [
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
    "wire_value",
]

SectionName = Literal["core", "security", "telemetry", "mcpServers", "skills", "domains"]

# In ``Spec``'s field order: the order documents are written and hashed in.
SECTIONS: Final[tuple[SectionName, ...]] = ("core", "security", "telemetry", "mcpServers", "skills", "domains")
# The order the server applies sections in (and lists a plan's operations in).
APPLY_ORDER: Final[tuple[SectionName, ...]] = ("core", "security", "telemetry", "domains", "mcpServers", "skills")
# Sections that are one object (merged field by field) ...
OBJECT_SECTIONS: Final[tuple[SectionName, ...]] = ("core", "security", "telemetry")
# ... and sections that are lists of items, each identified by one field.
ITEM_KEYS: Final[Mapping[str, str]] = {"mcpServers": "name", "skills": "name", "domains": "hostname"}
ARRAY_SECTIONS: Final[tuple[SectionName, ...]] = ("mcpServers", "skills", "domains")

# What the server shows instead of a secret value; sent back, it keeps the live value.
REDACTED: Final = "<redacted>"

# Every Management API key starts so (``bearerAuth``: ``wpk_live_…`` / ``wpk_test_…``).
API_KEY_PREFIX: Final = "wpk_"
# A key in any text: the documented format is ``wpk_live_``/``wpk_test_`` + 24 or more
# url-safe characters; 16 is enough to call it a key, so a truncated one is found too.
# One pattern for everything that looks for keys (the journal's guard, log masking,
# the manifest's refusal of inline keys).
API_KEY_RE: Final = re.compile(r"wpk_(?:live|test)_[A-Za-z0-9_-]{16,}")
_WHOLE_KEY = re.compile(r"wpk_(?:live|test)_[A-Za-z0-9_-]{24,}")


def is_api_key(value: str) -> bool:
    """Whether ``value`` is, as a whole, a well-formed API key (the documented format)."""
    return _WHOLE_KEY.fullmatch(value) is not None


def wire_value(value: str) -> str:
    """The wire string of an enum field: a listed value (a str-based Enum member) or a newer one.

    openapi.json types an enum a newer server may extend (``Operation.op``,
    ``Section``, ``transport``, ``status``) as the enum or ``NewerValue``, so the
    models hold either the Enum member or the plain string the server sent.
    """
    return str(value.value) if isinstance(value, Enum) else value
