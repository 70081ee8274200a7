"""``ManifestError``: the one error type of the manifest and rendering layer.

Every problem a user can fix in their files (YAML syntax, unknown key, bad
reference, undefined template variable, missing secret, unreadable key file...)
raises it. Its ``str()`` is one paragraph: ``FILE:LINE: KEY.PATH: what is
wrong. How to fix it.`` It never carries an API key or a secret value.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ManifestError", "ManifestErrors", "format_key_path", "raise_all"]


def format_key_path(path: Sequence[object]) -> str:
    """``('chatbots', 2, 'tenant')`` → ``chatbots[2].tenant``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class ManifestError(Exception):
    """A user-fixable problem in a manifest, a source document or the environment.

    ``file``/``line``/``key`` locate it (any may be None); ``hint`` says how to fix it.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | Sequence[object] | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message.rstrip(".")
        self.file = file
        self.line = line
        self.key = key if isinstance(key, str) or key is None else format_key_path(key)
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        key = f"{self.key}: " if self.key else ""
        text = f"{where}{key}{self.message}."
        if self.hint:
            text += " " + self.hint.rstrip(".") + "."
        # One paragraph, always: a multi-line cause (YAML's) is folded into it.
        return " ".join(text.split())


class ManifestErrors(ManifestError):
    """Several problems found at once (``errors``, in the order found), so a user fixes them in one go.

    Behaves as its first error for code that handles one; ``str()`` is one
    paragraph per error, one per line.
    """

    def __init__(self, errors: Sequence[ManifestError]) -> None:
        flat: list[ManifestError] = []
        for error in errors:
            flat.extend(error.errors if isinstance(error, ManifestErrors) else [error])
        if not flat:
            raise ValueError("ManifestErrors needs at least one error")
        self.errors: list[ManifestError] = flat
        first = flat[0]
        super().__init__(first.message, file=first.file, line=first.line, key=first.key, hint=first.hint)

    def __str__(self) -> str:
        return "\n".join(ManifestError.__str__(e) for e in self.errors)


def raise_all(errors: Sequence[ManifestError]) -> None:
    """Raise the one error, or all of them as ``ManifestErrors``; nothing when there is none."""
    if len(errors) == 1 and not isinstance(errors[0], ManifestErrors):
        raise errors[0]
    if errors:
        raise ManifestErrors(errors)
