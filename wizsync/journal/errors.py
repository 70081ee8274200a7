"""Errors raised by the journal and the run lock.

Every message is meant to be shown to a person as is (the CLI turns these
into ``click.ClickException``) and never contains a secret value.
"""

from __future__ import annotations


class JournalError(Exception):
    """Any journal problem a user can act on (bad path, unknown run, newer schema...)."""


class UnknownRunError(JournalError):
    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"no run {run_id!r} in this journal; `wizsync runs` lists the run ids")


class UnknownItemError(JournalError):
    def __init__(self, run_id: str, name: str) -> None:
        self.run_id = run_id
        self.name = name
        super().__init__(f"run {run_id!r} has no chatbot {name!r}")


class SecretInJournalError(JournalError):
    """A write would have stored a secret value or an API key; nothing was written.

    The message names where it was found (table, column, chatbot) and why
    (a registered secret or an API-key-shaped string) but never the value.
    """


class RunLockedError(JournalError):
    """Another live process holds the lock this run needs."""

    def __init__(self, message: str, holder: dict[str, object] | None) -> None:
        self.holder = holder or {}
        super().__init__(message)


class JournalDamagedError(JournalError):
    """The journal file failed SQLite's ``quick_check`` (or is not a database): nothing is written to it."""


class JournalFullError(JournalError):
    """A write failed because the journal's disk (or filesystem) is full (SQLITE_FULL).

    Not bad input: the run that meets it ends ``interrupted`` (resumable once
    space is freed), never ``failed``.
    """


class JournalReadOnlyError(JournalError):
    """A write was attempted on a journal that can only be read (file mode, directory, mount)."""
