"""Where the journal is: one rule for every command, and a sentence that says which part applied.

1. ``--journal PATH``, else
2. the ``WIZSYNC_JOURNAL`` environment variable, else
3. ``.wizsync/journal.db`` beside the manifest: the ``MANIFEST`` argument of
   ``plan``/``apply``/``export``, the ``--manifest PATH`` option of ``runs``,
   ``show``, ``resume`` and ``rollback`` — and without one, ``wizsync.yaml``
   in the current folder (so ``.wizsync/journal.db`` there).

``plan`` and ``apply`` print the journal they used with the run id, so the
command to continue a run names the same journal whatever folder it is typed in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import default_journal_path

__all__ = ["DEFAULT_MANIFEST", "JournalLocation", "locate_journal"]

#: The manifest a command without a MANIFEST argument assumes (``--manifest`` overrides it).
DEFAULT_MANIFEST = "wizsync.yaml"


@dataclass(frozen=True)
class JournalLocation:
    path: Path
    source: str  # "option" | "env" | "manifest" | "default"
    manifest: Path | None = None

    def why(self) -> str:
        """Which part of the rule chose the path, as a clause: ``"given by --journal"``."""
        if self.source == "option":
            return "given by --journal"
        if self.source == "env":
            return "given by WIZSYNC_JOURNAL"
        if self.source == "manifest":
            return f"beside the manifest {self.manifest}"
        return f"beside {DEFAULT_MANIFEST} in the current folder, the default manifest"

    def missing_message(self) -> str:
        """What to say when there is no journal there: the path, why that path, how to point elsewhere."""
        fix = (
            "pass --journal PATH, or --manifest PATH for the journal beside that manifest"
            if self.source in ("manifest", "default")
            else "check the path"
        )
        return (
            f"no journal at {self.path} ({self.why()}; the journal is --journal, else WIZSYNC_JOURNAL, "
            f"else .wizsync/journal.db beside the manifest): {fix}"
        )


def locate_journal(journal: str | os.PathLike[str] | None, *, from_env: bool, manifest: str | os.PathLike[str] | None) -> JournalLocation:
    """The journal for a command: ``journal`` as given (``from_env`` when it came from WIZSYNC_JOURNAL).

    ``manifest`` None means the command was given none: ``wizsync.yaml`` in the current folder.
    """
    if journal:
        return JournalLocation(Path(journal).resolve(), "env" if from_env else "option")
    if manifest is not None:
        return JournalLocation(default_journal_path(manifest), "manifest", Path(manifest).resolve())
    return JournalLocation(default_journal_path(DEFAULT_MANIFEST), "default", Path(DEFAULT_MANIFEST).resolve())
