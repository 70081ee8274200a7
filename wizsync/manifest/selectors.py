"""``--select`` and ``--chatbot`` filters: parsing and matching (pure).

``--select`` takes comma-separated terms ANDed together: ``key=value``,
``key==value`` or ``key!=value``; several ``--select`` options AND as well.
Keys are label names or the built-ins ``name``, ``tenant`` and ``wave``
(built-ins win over labels of the same name); values may be globs.
``--chatbot`` globs (repeatable) match the logical name; any one may match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from .errors import ManifestError

__all__ = ["Selection", "parse_selection"]

_TERM = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9_./-]*)\s*(==|!=|=)\s*([^\s=!,][^=!,]*?)\s*$")
BUILT_INS = ("name", "tenant", "wave")


@dataclass(frozen=True)
class Term:
    key: str
    negate: bool
    pattern: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        value = fields.get(self.key)
        hit = value is not None and fnmatchcase(value, self.pattern)
        return hit != self.negate


@dataclass(frozen=True)
class Selection:
    """What the user selected; the empty selection selects everything."""

    terms: tuple[Term, ...] = ()
    chatbot_globs: tuple[str, ...] = ()

    def matches(self, *, name: str, tenant: str, wave: str, labels: Mapping[str, str]) -> bool:
        fields = {**labels, "name": name, "tenant": tenant, "wave": wave}
        if self.chatbot_globs and not any(fnmatchcase(name, g) for g in self.chatbot_globs):
            return False
        return all(term.matches(fields) for term in self.terms)

    def may_match_unnamed(self, *, tenant: str, wave: str, labels: Mapping[str, str]) -> bool:
        """For a ``discover`` entry before listing: False only if no name could match."""
        fields = {**labels, "tenant": tenant, "wave": wave}
        return all(term.matches(fields) for term in self.terms if term.key != "name")


def parse_selection(select: str | Iterable[str] = (), chatbots: Sequence[str] = ()) -> Selection:
    """Parse ``--select`` texts and ``--chatbot`` globs; ``ManifestError`` (key ``--select``) if malformed."""
    texts = [select] if isinstance(select, str) else list(select)
    terms: list[Term] = []
    for text in texts:
        for raw in text.split(","):
            if not raw.strip():
                raise ManifestError(
                    f"empty term in --select {text!r}", key="--select", hint="Write key=value terms separated by commas, e.g. tier=gold,wave!=canary"
                )
            match = _TERM.match(raw)
            if not match:
                raise ManifestError(
                    f"bad selector term {raw.strip()!r}",
                    key="--select",
                    hint="Write key=value or key!=value terms separated by commas, e.g. tier=gold,wave!=canary "
                    "(keys: labels or name, tenant, wave)",
                )
            key, op, pattern = match.groups()
            terms.append(Term(key, op == "!=", pattern))
    for glob in chatbots:
        if not glob.strip():
            raise ManifestError("empty --chatbot value", key="--chatbot", hint="Give a chatbot name or glob, e.g. 'acme-*'")
    return Selection(tuple(terms), tuple(g.strip() for g in chatbots))
