"""Secret references inside rendered strings: masked for people, resolved only for requests.

A string that used ``${secret:NAME}`` becomes a ``SecretText``: literal parts
and ``SecretRef`` parts. ``masked()`` shows each reference as
``<secret:NAME>``; ``resolve(environ)`` reads the values, and is called only
when a request body is built. A missing variable is an error naming the
secret, never a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from wizsync.manifest.errors import ManifestError

__all__ = ["SecretRef", "SecretText", "mask"]


@dataclass(frozen=True)
class SecretRef:
    name: str


@dataclass(frozen=True)
class SecretText:
    """A string with secret references; never ``str()`` it into output (use ``masked``)."""

    parts: tuple[str | SecretRef, ...]

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parts if isinstance(p, SecretRef)]

    def masked(self) -> str:
        return "".join(p if isinstance(p, str) else mask(p.name) for p in self.parts)

    def resolve(self, environ: Mapping[str, str], *, where: str) -> str:
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = environ.get(part.name)
            if not value:
                raise ManifestError(
                    f"secret {part.name} is not set in the environment (needed by {where})",
                    hint=f"Export {part.name} before running wizsync",
                )
            out.append(value)
        return "".join(out)

    def __repr__(self) -> str:  # reprs end up in logs: masked only
        return f"SecretText({self.masked()!r})"

    __str__ = masked


def mask(name: str) -> str:
    return f"<secret:{name}>"
