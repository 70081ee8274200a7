"""A fleet's report rows on disk, so a plan's report never holds every chatbot's result in memory.

``plan`` adds each chatbot's report as its dry-run lands (then drops the
server's answer); the renderers read the rows back, sorted by (tenant, name,
chatbot_id), one at a time. Only what the closing summary needs stays in
memory: the running totals and the deletes (every delete is listed anyway).

A row is stored already rendered for the output the command prints: the
``--json`` entry (:func:`.jsonout.chatbot_entry`), the diff's styled lines
(:func:`.diff.diff_segments`) or, for ``--format markdown``, a failure's line,
all scrubbed of forbidden values. The markdown summary shows changed chatbots'
blocks only while they fit in a comment, so those are kept in memory, and only
the first ones in report order that can fit: a block that comes after them is
not even rendered. The file is
a private temporary SQLite database (mode 0600), unlinked once open where the OS allows it,
else removed on close.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterator, Sequence
from typing import Any

from ..journal.scratch import ScratchDb
from .diff import Line, diff_segments
from .jsonout import chatbot_entry
from .jsontext import indented
from .markdown import GITHUB_COMMENT_LIMIT, MarkdownParts, chatbot_block, failure_line
from .model import SUMMARY_KEYS, ChatbotReport
from .summary import DeleteRef, Totals, list_deletes
from .values import forbidden_list, scrub

__all__ = ["ReportSpool", "JSON", "MARKDOWN", "TEXT"]

JSON, TEXT, MARKDOWN = "json", "text", "markdown"

_TOTALS = ("chatbots", "chatbots_with_changes", "errors", "failed", *SUMMARY_KEYS)

_SCHEMA = """
CREATE TABLE rows (tenant TEXT NOT NULL, name TEXT NOT NULL, chatbot_id TEXT NOT NULL,
                   changed INTEGER NOT NULL, problem INTEGER NOT NULL, body TEXT NOT NULL)
"""


class ReportSpool:
    """Rows of one report (``kind`` JSON or TEXT), streamed back in report order."""

    def __init__(self, kind: str, forbidden: Sequence[str] = (), *, markdown_limit: int = GITHUB_COMMENT_LIMIT) -> None:
        if kind not in (JSON, TEXT, MARKDOWN):
            raise ValueError(f"unknown report kind {kind!r}")
        self.kind = kind
        self._fb = forbidden_list(forbidden)
        self._encoded = [json.dumps(f, ensure_ascii=True)[1:-1] for f in self._fb]
        # A scratch file: nothing here needs to survive a crash (the journal holds the plan).
        self._scratch = ScratchDb("wizsync-report-", _SCHEMA)
        self._db = self._scratch.db
        self._pending: list[tuple[str, str, str, int, int, str]] = []
        self._sums = dict.fromkeys(_TOTALS, 0)
        self._tenants: dict[str, dict[str, int]] = {}
        self._deletes: list[DeleteRef] = []
        self._limit = markdown_limit
        self._blocks: list[tuple[tuple[str, str, str], int, str]] = []  # (key, unscrubbed length, scrubbed text)
        self._blocks_full = False  # the kept blocks already overflow the comment

    # -- writing ---------------------------------------------------------------

    def add(self, report: ChatbotReport) -> None:
        """One chatbot's row (rendered now, so the caller can drop the report)."""
        self._count(report, self._sums)
        self._count(report, self._tenants.setdefault(report.tenant, dict.fromkeys(_TOTALS, 0)))
        self._deletes.extend(list_deletes([report]))  # none for a chatbot that could not be planned
        key = (report.tenant, report.name, report.chatbot_id or "")
        if self.kind == MARKDOWN:
            self._markdown_row(report, key)
        else:
            problem = bool(report.error or report.failed is not None or report.state == "failed")
            body = self._json_row(report) if self.kind == JSON else json.dumps(diff_segments(report, self._fb), ensure_ascii=False)
            self._pending.append((*key, int(report.has_changes), int(problem), body))
        if len(self._pending) >= 500:
            self._flush()

    def _markdown_row(self, report: ChatbotReport, key: tuple[str, str, str]) -> None:
        # Only what the summary can show: a failure's line, or a changed chatbot's block kept with
        # its unscrubbed length (what the comment's room is measured in) while it can still fit.
        if report.error:
            self._pending.append((*key, 0, 1, scrub(failure_line(report, self._fb), self._fb)))
        elif report.has_changes and not (self._blocks_full and key > self._blocks[-1][0]):
            block = chatbot_block(report, self._fb)
            bisect.insort(self._blocks, (key, len(block), scrub(block, self._fb)))
            self._trim_blocks()

    def _trim_blocks(self) -> None:
        """Drop the blocks after the first that cannot fit (a summary shows each with 2 newlines)."""
        size = 0
        for i, (_, length, _) in enumerate(self._blocks):
            size += length + 2
            if size > self._limit:
                del self._blocks[i + 1:]
                self._blocks_full = True
                return

    def _json_row(self, report: ChatbotReport) -> str:
        # Scrubbing walks every value; the encoded text shows whether there is anything to scrub
        # (a value holds a forbidden string only if its encoding holds the string's encoding).
        entry = chatbot_entry(report)
        body = indented(entry)
        if any(e in body for e in self._encoded):
            body = indented(scrub(entry, self._fb))
        return body

    @staticmethod
    def _count(report: ChatbotReport, s: dict[str, int]) -> None:
        s["chatbots"] += 1
        if report.error:
            s["errors"] += 1
            return
        if report.failed is not None or report.state == "failed":
            s["failed"] += 1
        for k, v in (report.counts or {}).items():
            s[k] += v
        s["chatbots_with_changes"] += int(report.has_changes)

    def _flush(self) -> None:
        if self._pending:
            with self._db:
                self._db.executemany("INSERT INTO rows VALUES (?, ?, ?, ?, ?, ?)", self._pending)
            self._pending.clear()

    # -- reading ---------------------------------------------------------------

    @property
    def totals(self) -> Totals:
        return Totals(**self._sums)

    @property
    def deletes(self) -> list[DeleteRef]:
        """Every planned delete, sorted by (tenant, chatbot, section, key)."""
        return sorted(self._deletes, key=lambda d: (d.tenant, d.chatbot, d.section, d.key or ""))

    def __len__(self) -> int:
        return self._sums["chatbots"]

    def bodies(self, *, only_changes: bool = False, only_problems: bool = False) -> Iterator[str]:
        """The rows' stored text in report order (SQLite's binary order is Python's str order)."""
        self._flush()
        where = []
        if only_changes:
            where.append("(changed OR problem)")
        if only_problems:
            where.append("problem")
        sql = "SELECT body FROM rows" + (" WHERE " + " AND ".join(where) if where else "")
        for (body,) in self._db.execute(sql + " ORDER BY tenant, name, chatbot_id"):
            yield body

    def markdown_parts(self) -> MarkdownParts:
        """MARKDOWN rows: the parts of ``plan --format markdown`` (:func:`.markdown.render_parts`, at a
        ``limit`` no larger than ``markdown_limit``)."""
        if self.kind != MARKDOWN:
            raise ValueError("not a markdown report spool")
        self._flush()
        order = " ORDER BY tenant, name, chatbot_id"
        failures = (body for (body,) in self._db.execute("SELECT body FROM rows WHERE problem" + order))
        blocks = [(length, text) for _, length, text in self._blocks]
        tenants = {t: Totals(**sums) for t, sums in self._tenants.items()}
        return MarkdownParts(self.totals, tenants, self.deletes, failures, blocks)

    def entries(self) -> Iterator[str]:
        """JSON rows: each chatbot's ``--json`` entry, indented as a top-level value."""
        if self.kind != JSON:
            raise ValueError("not a JSON report spool")
        return self.bodies()

    def lines(self, *, only_changes: bool = False, only_problems: bool = False) -> Iterator[list[Line]]:
        """TEXT rows: each chatbot's diff as styled lines."""
        if self.kind != TEXT:
            raise ValueError("not a text report spool")
        for body in self.bodies(only_changes=only_changes, only_problems=only_problems):
            yield [[(s, style) for s, style in line] for line in json.loads(body)]

    def close(self) -> None:
        self._scratch.close()

    def __enter__(self) -> ReportSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

