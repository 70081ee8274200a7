"""``--select`` and ``--chatbot`` filters: parsing and matching (pure).

``--select`` takes comma-separated terms ANDed together: ``key=value``,
``key==value`` or ``key!=value``; several ``--select`` options AND as well.
Keys are label names or the built-ins ``name``, ``tenant`` and ``wave``
(built-ins win over labels of the same name); values may be globs.
``--chatbot`` globs (repeatable) match the address; any one may match.

A chatbot's address is ``tenant/name``. A pattern with a ``/`` (``--chatbot
'globex/support-*'``, ``name=acme/*``) matches the address; a bare one
(``support-billing``) matches the name in every tenant, so it selects each
tenant's chatbot of that name (the plan lists them all; nothing is guessed).
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
        if self.key == "name":
            hit = name_matches(fields["tenant"], fields["name"], self.pattern)
        else:
            value = fields.get(self.key)
            hit = value is not None and fnmatchcase(value, self.pattern)
        return hit != self.negate


def name_matches(tenant: str, name: str, pattern: str) -> bool:
    """A ``tenant/name`` pattern matches the address; a bare pattern matches the name in any tenant."""
    if "/" in pattern:
        return fnmatchcase(f"{tenant}/{name}", pattern)
    return fnmatchcase(name, pattern)


@dataclass(frozen=True)
class Selection:
    """What the user selected; the empty selection selects everything."""

    terms: tuple[Term, ...] = ()
    chatbot_globs: tuple[str, ...] = ()

    def matches(self, *, name: str, tenant: str, wave: str, labels: Mapping[str, str]) -> bool:
        """Does the chatbot ``name`` (its own name, not the address) of ``tenant`` match?"""
        fields = {**labels, "name": name, "tenant": tenant, "wave": wave}
        if self.chatbot_globs and not any(name_matches(tenant, name, g) for g in self.chatbot_globs):
            return False
        return all(term.matches(fields) for term in self.terms)

    def may_match_unnamed(self, *, tenant: str, wave: str, labels: Mapping[str, str], name_glob: str = "*") -> bool:
        """For a ``discover`` entry before listing: False only if no name it can produce could match.

        Exact names (no glob characters) given with ``--chatbot`` or ``name=`` are
        tested against the entry's ``name_glob``, so ``--chatbot acme-support``
        needs no listing of an unrelated discover entry.
        """
        fields = {**labels, "tenant": tenant, "wave": wave}
        if not all(term.matches(fields) for term in self.terms if term.key != "name"):
            return False
        exact = [[t.pattern] for t in self.terms if t.key == "name" and not t.negate and not _has_glob(t.pattern)]
        literal_globs = [g for g in self.chatbot_globs if not _has_glob(g)]
        if self.chatbot_globs and len(literal_globs) == len(self.chatbot_globs):
            exact.append(literal_globs)  # any one of them
        for names in exact:
            if not any(_could_be(tenant, n, name_glob) for n in names):
                return False
        return True


def _could_be(tenant: str, exact: str, name_glob: str) -> bool:
    """Can a discover entry of ``tenant`` matching ``name_glob`` produce the chatbot ``exact`` names?"""
    if "/" in exact:
        owner, _, exact = exact.partition("/")
        if owner != tenant:
            return False
    return fnmatchcase(exact, name_glob)


def _has_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


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
            raise ManifestError(
                "empty --chatbot value", key="--chatbot", hint="Give a chatbot name, address or glob, e.g. 'acme/support-*'"
            )
    return Selection(tuple(terms), tuple(g.strip() for g in chatbots))
