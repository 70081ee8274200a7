"""The journal's SQLite connection, with the two row writes it needs: insert and upsert.

Plain ``sqlite3``: each statement joins the transaction the journal has open
(``BEGIN IMMEDIATE`` in ``Journal.write``); nothing here begins, commits or
rolls back. Values are bound as given (the journal encodes its JSON columns
itself). Table and column names come from the journal's own code, never from
input, and are quoted all the same.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["Database"]


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Database:
    """``conn`` and what the journal runs on it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, parameters)

    def table_names(self) -> list[str]:
        return [str(r[0]) for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]

    @property
    def journal_mode(self) -> str:
        return str(self.conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()

    def enable_wal(self) -> None:
        if self.journal_mode != "wal":
            self.conn.execute("PRAGMA journal_mode=wal")

    def insert(self, table: str, row: Mapping[str, Any]) -> None:
        columns = list(row)
        self.conn.execute(
            f"INSERT INTO {_quoted(table)} ({', '.join(map(_quoted, columns))}) VALUES ({', '.join('?' * len(columns))})",
            [row[c] for c in columns],
        )

    def upsert_all(self, table: str, rows: Iterable[Mapping[str, Any]], pk: Sequence[str]) -> None:
        """Insert each row, or update the row with its primary key: only the columns it gives.

        Every row of one call gives the same columns (those of the first row), the key's among them.
        """
        rows = list(rows)
        if not rows:
            return
        columns = list(rows[0])
        missing = [c for c in pk if c not in columns]
        if missing:
            raise ValueError(f"an upsert into {table} needs its key column(s) {missing}")
        others = [c for c in columns if c not in pk]
        action = ("DO UPDATE SET " + ", ".join(f"{_quoted(c)} = excluded.{_quoted(c)}" for c in others)
                  if others else "DO NOTHING")
        sql = (f"INSERT INTO {_quoted(table)} ({', '.join(map(_quoted, columns))}) VALUES "
               f"({', '.join('?' * len(columns))}) ON CONFLICT ({', '.join(map(_quoted, pk))}) {action}")
        self.conn.executemany(sql, [[r[c] for c in columns] for r in rows])
