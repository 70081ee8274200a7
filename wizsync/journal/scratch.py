"""A private scratch SQLite file: rows a command writes once and reads back in order.

The report spool and the plan-file writer keep one chatbot's row at a time in
one of these instead of in memory. Nothing in it needs to survive a crash (the
journal holds the run), so it is written without a rollback journal or fsync,
and it is unlinked as soon as it is open where the OS allows it: a killed
process leaves nothing behind.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile

__all__ = ["ScratchDb"]


class ScratchDb:
    """One scratch database, created with ``schema``; ``close`` removes what is left of it."""

    def __init__(self, prefix: str, schema: str) -> None:
        fd, self._path = tempfile.mkstemp(prefix=prefix, suffix=".db")  # mode 0600
        os.close(fd)
        self.db = sqlite3.connect(self._path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute(schema)
        try:  # POSIX: the open connection keeps it
            os.unlink(self._path)
        except OSError:
            pass  # Windows: removed on close

    def close(self) -> None:
        self.db.close()
        try:
            os.unlink(self._path)
        except FileNotFoundError:
            pass
