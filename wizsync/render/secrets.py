"""Secret references inside rendered strings: masked for people, resolved only for requests.

A string that used ``${secret:NAME}`` becomes a ``SecretText``: literal parts
and ``SecretRef`` parts. ``masked()`` shows each reference as
``<secret:NAME>``; ``resolve(environ)`` reads the values, and is called only
when a request body is built. A missing variable is an error naming the
secret, never a value.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from wizsync.manifest.errors import ManifestError

__all__ = ["SecretRef", "SecretText", "forbidden_values", "mask"]


@dataclass(frozen=True)
class SecretRef:
    """``${secret:NAME}``; ``file``/``line``/``key`` say where it was written (for errors).

    ``line`` may be given as a lookup, called only when an error needs it: the manifest's
    line index is built on first use (``Manifest.line_of``), and a reference is no error.
    """

    name: str
    file: str | None = field(default=None, compare=False)
    where: int | Callable[[], int | None] | None = field(default=None, compare=False, repr=False)
    key: str | None = field(default=None, compare=False)

    @property
    def line(self) -> int | None:
        return self.where() if callable(self.where) else self.where

    def missing_error(self, used_by: str) -> ManifestError:
        return ManifestError(
            f"secret {self.name} is not set in the environment (needed by {used_by})",
            file=self.file,
            line=self.line,
            key=self.key,
            hint=f"Export {self.name} before running wizsync (its value is read only when a request is sent)",
        )


@dataclass(frozen=True)
class SecretText:
    """A string with secret references; never ``str()`` it into output (use ``masked``)."""

    parts: tuple[str | SecretRef, ...]

    @property
    def refs(self) -> list[SecretRef]:
        return [p for p in self.parts if isinstance(p, SecretRef)]

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.refs]

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
                raise part.missing_error(where)
            out.append(value)
        return "".join(out)

    def __repr__(self) -> str:  # reprs end up in logs: masked only
        return f"SecretText({self.masked()!r})"

    __str__ = masked


def mask(name: str) -> str:
    return f"<secret:{name}>"


def forbidden_values(
    secret_names: Iterable[str], environ: Mapping[str, str] | None = None, extra: Iterable[str] = ()
) -> set[str]:
    """The values no output may hold: the resolved secrets a run uses, plus ``extra`` (API keys).

    E.g. ``forbidden_values(rendered.secret_names, os.environ, [api_key])``.
    """
    environ = os.environ if environ is None else environ
    found = {environ[n] for n in secret_names if environ.get(n)}
    return found | {e for e in extra if e}
