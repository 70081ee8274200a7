"""``document_hash``: a stable fingerprint of a masked rendered document.

sha256 of canonical JSON (sorted keys, no whitespace, UTF-8). It is computed
on the masked view, so it never depends on (or leaks) a secret value: a
rotated secret alone does not change the hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["canonical_json", "document_hash"]


def canonical_json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def document_hash(masked_document: Mapping[str, Any]) -> str:
    """``"sha256:<hex>"`` of the canonical JSON of ``masked_document``."""
    return "sha256:" + hashlib.sha256(canonical_json(masked_document).encode("utf-8")).hexdigest()
