"""Secret guard: the last line of defence that keeps secrets out of the journal.

The renderer already masks secrets (``<secret:NAME>``) and the server already
redacts them (``"<redacted>"``); this guard checks every serialized value the
journal is about to write for (a) a value registered with
:meth:`SecretGuard.forbid` (the resolved ``${secret:...}`` values and the API
keys of the run) and (b) anything shaped like a WizChat API key
(``wpk_live_``/``wpk_test_`` + url-safe characters, openapi.json `bearerAuth`).
A hit raises :class:`SecretInJournalError` naming where, never what.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from wizchat_management import API_KEY_RE

from .errors import SecretInJournalError


# Shorter registered values are ignored: a 1-3 character "secret" would match
# ordinary text (revision numbers, booleans) and refuse every write.
MIN_SECRET_LEN = 4


def _forms(value: str) -> set[str]:
    """The ways ``value`` can appear inside text the journal stores (raw and JSON-escaped)."""
    escaped = json.dumps(value)[1:-1]
    ascii_escaped = json.dumps(value, ensure_ascii=True)[1:-1]
    return {value, escaped, ascii_escaped}


class SecretGuard:
    """Holds the forbidden values of one process; checks text before it is written."""

    def __init__(self) -> None:
        self._forbidden: set[str] = set()
        # The forbidden values by their first MIN_SECRET_LEN characters: a check looks for each
        # distinct prefix once, not for every value (a wide fleet's API keys share "wpk_").
        self._by_prefix: dict[str, list[str]] = {}

    def forbid(self, values: Iterable[str | None]) -> None:
        for value in values:
            if isinstance(value, str) and len(value) >= MIN_SECRET_LEN:
                for form in _forms(value) - self._forbidden:
                    self._forbidden.add(form)
                    self._by_prefix.setdefault(form[:MIN_SECRET_LEN], []).append(form)

    def _holds_forbidden(self, text: str) -> bool:
        for prefix, values in self._by_prefix.items():
            at = text.find(prefix)
            while at >= 0:
                if any(text.startswith(v, at) for v in values):
                    return True
                at = text.find(prefix, at + 1)
        return False

    def check(self, text: str, where: str) -> None:
        """Raise if ``text`` holds a forbidden value or an API key; ``where`` names the place."""
        if API_KEY_RE.search(text):
            raise SecretInJournalError(
                f"refused to write {where} to the journal: it contains a string shaped like an "
                "API key (wpk_live_/wpk_test_...); keys must never be journaled"
            )
        if self._holds_forbidden(text):
            raise SecretInJournalError(
                f"refused to write {where} to the journal: it contains the value of a secret "
                "(a registered ${secret:...} or API key value); secrets must be masked first"
            )
