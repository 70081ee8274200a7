"""``plan --format markdown``: a plan summary for a pull-request comment or the GitHub job summary.

Per-tenant counts, every delete called out, each changed chatbot's diff
collapsed under ``<details>``, failures listed. Bounded: GitHub rejects a
comment over 65,536 characters, so once the next block would not fit, the
rest is left out and a note says how many chatbots were and where the full
plan is (``wizsync show RUN_ID``). The same input gives the same text.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .diff import render_diffs, summary_phrase
from .model import SUMMARY_KEYS, ChatbotReport
from .summary import DeleteRef, Estimate, Totals, compute_totals, estimate_line, list_deletes
from .values import forbidden_list, safe_text, scrub

__all__ = ["GITHUB_COMMENT_LIMIT", "MarkdownParts", "chatbot_block", "failure_line", "parts_of", "render_markdown", "render_parts"]

#: GitHub's limit on a comment body (and a sensible one for $GITHUB_STEP_SUMMARY).
GITHUB_COMMENT_LIMIT = 65_536
# Room kept for the truncation note and the closing lines.
_RESERVE = 600


def _code(text: str) -> str:
    """Inline code that a backtick in a name cannot break."""
    return "`" + text.replace("`", "'") + "`"


def _fence(body: str, lang: str = "diff") -> str:
    ticks = "```"
    while ticks in body:
        ticks += "`"
    return f"{ticks}{lang}\n{body}\n{ticks}"


def _tenant_table(tenants: Mapping[str, Totals]) -> list[str]:
    rows = ["| tenant | chatbots | with changes | create | update | delete | errors |", "|---|---:|---:|---:|---:|---:|---:|"]
    for tenant in sorted(tenants):
        t = tenants[tenant]
        rows.append(f"| {html.escape(tenant)} | {t.chatbots} | {t.chatbots_with_changes} | {t.create} | {t.update} "
                    f"| {t.delete} | {t.errors + t.failed} |")
    return rows


def chatbot_block(report: ChatbotReport, fb: list[str]) -> str:
    """A changed chatbot's collapsed diff (``fb``: :func:`.values.forbidden_list`)."""
    counts = report.counts or dict.fromkeys(SUMMARY_KEYS, 0)
    phrase = ", ".join(f"{counts[k]} {k}" for k in ("create", "update", "delete") if counts.get(k))
    name = html.escape(safe_text(scrub(report.name, fb)))
    diff = render_diffs([report], fb, only_changes=True).plain
    return f"<details><summary><code>{name}</code> ({html.escape(report.tenant)}): {phrase}</summary>\n\n{_fence(diff)}\n\n</details>"


def failure_line(report: ChatbotReport, fb: list[str]) -> str:
    """A chatbot that could not be planned, as its line of the failures section."""
    error = report.error or {}
    return (f"- {_code(scrub(report.name, fb))}: {_code(str(error.get('code', 'error')))} "
            f"{html.escape(safe_text(scrub(str(error.get('message', '')), fb)))}")


@dataclass
class MarkdownParts:
    """What the summary is made of, in report order: whole reports (:func:`render_markdown`) or a
    plan's spooled rows (``report.spool``, MARKDOWN) give the same parts, so the same text.

    ``blocks``: each changed chatbot's :func:`chatbot_block` as (its length, its text); the text
    may be scrubbed already, the length is the unscrubbed one (what the room is measured in).
    """

    totals: Totals
    tenants: Mapping[str, Totals]
    deletes: list[DeleteRef]
    failures: Iterable[str]
    blocks: Iterable[tuple[int, str]]


def parts_of(reports: Iterable[ChatbotReport], forbidden: Iterable[str] = ()) -> MarkdownParts:
    fb = forbidden_list(forbidden)
    items = sorted(reports, key=lambda r: (r.tenant, r.name, r.chatbot_id or ""))
    tenants = {t: compute_totals(r for r in items if r.tenant == t) for t in {r.tenant for r in items}}
    blocks = ((len(b), b) for b in (chatbot_block(r, fb) for r in items if r.has_changes and not r.error))
    return MarkdownParts(compute_totals(items), tenants, list_deletes(items),
                         [failure_line(r, fb) for r in items if r.error], blocks)


def render_markdown(
    reports: Iterable[ChatbotReport],
    *,
    environment: str,
    run_id: str | None = None,
    keys: Mapping[str, Mapping[str, Any]] | None = None,
    estimate: Estimate | None = None,
    forbidden: Iterable[str] = (),
    limit: int = GITHUB_COMMENT_LIMIT,
) -> str:
    """The plan as GitHub-flavoured markdown, at most ``limit`` characters."""
    forbidden = list(forbidden)
    return render_parts(parts_of(reports, forbidden), environment=environment, run_id=run_id, keys=keys,
                        estimate=estimate, forbidden=forbidden, limit=limit)


def render_parts(
    parts: MarkdownParts,
    *,
    environment: str,
    run_id: str | None = None,
    keys: Mapping[str, Mapping[str, Any]] | None = None,
    estimate: Estimate | None = None,
    forbidden: Iterable[str] = (),
    limit: int = GITHUB_COMMENT_LIMIT,
) -> str:
    """:func:`render_markdown` from its parts: the blocks are read only while they fit."""
    fb = forbidden_list(forbidden)
    head = _headline(parts.totals, environment, run_id) + _tenant_table(parts.tenants) + [""]
    head += _deletes_section(parts.deletes, fb, limit) + _failures_section(parts.totals.errors, parts.failures)
    tail = _closing(keys, estimate)
    out = "\n".join(head)
    budget = limit - len("\n".join(tail)) - _RESERVE
    if len(out) > budget:  # even the deletes do not fit: cut the list itself
        out = out[: max(0, budget)].rsplit("\n", 1)[0]
        return scrub(out + "\n\n> **Truncated**: this plan is too large for one comment; the full plan is in "
                     f"the plan's text output or {_code('wizsync plan ... --json')}.\n", fb)
    out += _changed_section(parts.totals.chatbots_with_changes, parts.blocks, budget - len(out), limit)
    out += "\n".join(tail) + "\n"
    return scrub(out, fb)


def _headline(totals: Totals, environment: str, run_id: str | None) -> list[str]:
    head = [f"## wizsync plan: {_code(environment)}", ""]
    line = f"{totals.chatbots} chatbots, **{totals.chatbots_with_changes} with changes**: {summary_phrase(totals.as_dict())}"
    if totals.errors:
        line += f"; **{totals.errors} could not be planned**"
    head += [line + ".", ""]
    if run_id:
        head += [f"Run {_code(run_id)}: apply exactly this plan with {_code(f'wizsync apply ... --plan {run_id}')}.", ""]
    return head


def _deletes_section(deletes: list[DeleteRef], fb: list[str], limit: int) -> list[str]:
    """Every delete, unless they alone would fill half the comment: then as many as fit, and how many more."""
    if not deletes:
        return []
    lines = [f"### :warning: Deletes ({len(deletes)})", "", "Applying this plan removes:", ""]
    room, listed = limit // 2, 0
    for d in deletes:
        entry = f"- {_code(scrub(d.chatbot, fb))} ({html.escape(d.tenant)}): {d.section}" + (
            f" {_code(scrub(d.key, fb))}" if d.key is not None else "")
        room -= len(entry) + 1
        if room < 0:
            break
        lines.append(entry)
        listed += 1
    if listed < len(deletes):
        lines.append(f"- **and {len(deletes) - listed} more deletes** (all of them: the plan's text output)")
    return lines + [""]


def _failures_section(count: int, failures: Iterable[str]) -> list[str]:
    if not count:
        return []
    return [f"### Could not be planned ({count})", "", *failures, ""]


def _closing(keys: Mapping[str, Mapping[str, Any]] | None, estimate: Estimate | None) -> list[str]:
    """Requests per API key and the time estimate: always shown, so their room is reserved first."""
    tail: list[str] = []
    if keys:
        tail += ["", "<details><summary>Requests per API key</summary>", ""]
        tail += [f"- {_code(label)}: {int(keys[label].get('requests', 0) or 0)} requests, "
                 f"{int(keys[label].get('throttled', 0) or 0)} throttled (429), {int(keys[label].get('retries', 0) or 0)} retries"
                 for label in sorted(keys)]
        tail += ["", "</details>"]
    if estimate is not None:
        tail += ["", f"_{estimate_line(estimate)}_"]
    return tail


def _changed_section(changed: int, blocks: Iterable[tuple[int, str]], room: int, limit: int) -> str:
    """Each changed chatbot's diff while it fits in ``room`` characters; a note counts the rest."""
    if not changed:
        return ""
    out = f"\n### Changed chatbots ({changed})\n"
    size, shown = len(out), 0
    pieces = [out]
    for length, block in blocks:
        if size + length + 2 > room:
            break
        pieces.append("\n" + block + "\n")
        size += length + 2
        shown += 1
    out = "".join(pieces)
    if shown < changed:
        where = "the plan's text output (the job log) or " + _code("wizsync plan ... --json")
        out += (f"\n> **Truncated**: {changed - shown} more changed chatbot(s) not shown, to stay under "
                f"GitHub's {limit:,}-character limit; the counts above include them. Full plan: {where}.\n")
    return out
