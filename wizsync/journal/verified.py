"""The journal as wizsync last left it: a stamp that spares a clean journal its full check.

A writer checks the whole file first (``PRAGMA quick_check``), and that check
is O(size): ~0.65 s at 430 MB (600 plans of 1,000 chatbots), more from a
cold disk, on every command, growing with the journal's history. The check
is there for a file that changed outside wizsync's transactions: a copy cut
short, a restore without its ``-wal``, another tool, a bad disk. So a clean
close (no ``-wal`` left: every transaction is in the main file) writes a stamp
beside the journal, ``<journal>-verified``: the main file's size, modification
time, inode and its SQLite header's digest. The next writer skips the check
only if the file still matches that stamp and no ``-wal`` is there, and it
removes the stamp before it writes anything: a run that is killed, or another
writer at work, leaves none, and the next open checks in full.

What a stamp cannot see is a change that keeps size, mtime, inode and header
(bytes rotting on disk between two runs); SQLite still refuses a damaged page
when a read or write reaches it (``SQLITE_CORRUPT``: "the journal ... is
damaged"). docs/journal.md says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["Stamp", "leave", "matches", "stamp_of", "stamp_path", "take"]

FORMAT = 1
_HEADER = 100  # bytes: the SQLite database header (https://www.sqlite.org/fileformat.html#the_database_header)


@dataclass(frozen=True)
class Stamp:
    """What identifies one state of the main file, cheaply: never its content beyond the header."""

    size: int
    mtime_ns: int
    ino: int
    dev: int
    header: str  # sha256 of the first 100 bytes

    def as_json(self) -> str:
        return json.dumps({"format": FORMAT, **asdict(self)}, sort_keys=True)

    @classmethod
    def parse(cls, text: str) -> Stamp | None:
        """The stamp in ``text``, or None for anything this wizsync did not write (then: check in full)."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.pop("format", None) != FORMAT:
                return None
            stamp = cls(**data)
        except (ValueError, TypeError):
            return None
        ints = (stamp.size, stamp.mtime_ns, stamp.ino, stamp.dev)
        if not all(type(v) is int for v in ints) or not isinstance(stamp.header, str):
            return None
        return stamp


def stamp_path(journal: Path) -> Path:
    return journal.with_name(journal.name + "-verified")


def _wal(journal: Path) -> Path:
    return journal.with_name(journal.name + "-wal")


def stamp_of(journal: Path) -> Stamp | None:
    """The main file's stamp now; None when it cannot be read."""
    try:
        with open(journal, "rb") as f:
            st = os.fstat(f.fileno())
            header = f.read(_HEADER)
    except OSError:
        return None
    return Stamp(st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, hashlib.sha256(header).hexdigest())


def matches(recorded: Stamp | None, now: Stamp | None, wal_bytes: int | None) -> bool:
    """Whether the file is as the last clean close left it: the one case a full check is skipped.

    ``wal_bytes`` is the size of the ``-wal`` file, None when there is none: a WAL with
    frames in it holds transactions the main file has not taken yet (a crash, a writer at work).
    """
    return recorded is not None and now is not None and recorded == now and not wal_bytes


def take(journal: Path) -> bool:
    """At a writer's open: True if the full check may be skipped. The stamp is gone either way.

    Removing it comes first, before anything is written, so that no stamp outlives the
    state it describes; one that cannot be removed is not trusted.
    """
    path = stamp_path(journal)
    try:
        recorded = Stamp.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return False  # none (the usual first open), or unreadable: check
    try:
        path.unlink()
    except OSError:
        return False
    try:
        wal_bytes: int | None = _wal(journal).stat().st_size
    except FileNotFoundError:
        wal_bytes = None
    except OSError:
        return False
    return matches(recorded, stamp_of(journal), wal_bytes)


def leave(journal: Path) -> None:
    """At a writer's close, after its connection closed: stamp the file if every transaction is in it.

    A ``-wal`` still there means another connection is open (or SQLite kept it): no stamp,
    and the next writer checks in full. Failing to write one costs only that check.
    """
    if _wal(journal).exists():
        return
    now = stamp_of(journal)
    if now is None:
        return
    path = stamp_path(journal)
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(OSError):
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(now.as_json())
        os.replace(tmp, path)
