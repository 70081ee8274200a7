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
from typing import Any

from .diff import render_diffs, summary_phrase
from .model import SUMMARY_KEYS, ChatbotReport
from .summary import Estimate, compute_totals, estimate_line, list_deletes
from .values import forbidden_list, safe_text, scrub

__all__ = ["GITHUB_COMMENT_LIMIT", "render_markdown"]

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


def _tenant_table(reports: list[ChatbotReport]) -> list[str]:
    rows = ["| tenant | chatbots | with changes | create | update | delete | errors |", "|---|---:|---:|---:|---:|---:|---:|"]
    for tenant in sorted({r.tenant for r in reports}):
        t = compute_totals([r for r in reports if r.tenant == tenant])
        rows.append(f"| {html.escape(tenant)} | {t.chatbots} | {t.chatbots_with_changes} | {t.create} | {t.update} "
                    f"| {t.delete} | {t.errors + t.failed} |")
    return rows


def _chatbot_block(report: ChatbotReport, fb: list[str]) -> str:
    counts = report.counts or dict.fromkeys(SUMMARY_KEYS, 0)
    phrase = ", ".join(f"{counts[k]} {k}" for k in ("create", "update", "delete") if counts.get(k))
    name = html.escape(safe_text(scrub(report.name, fb)))
    diff = render_diffs([report], fb, only_changes=True).plain
    return f"<details><summary><code>{name}</code> ({html.escape(report.tenant)}): {phrase}</summary>\n\n{_fence(diff)}\n\n</details>"


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
    fb = forbidden_list(forbidden)
    items = sorted(reports, key=lambda r: (r.tenant, r.name, r.chatbot_id or ""))
    head = _headline(items, environment, run_id) + _tenant_table(items) + [""]
    head += _deletes_section(items, fb, limit) + _failures_section(items, fb)
    tail = _closing(keys, estimate)
    out = "\n".join(head)
    budget = limit - len("\n".join(tail)) - _RESERVE
    if len(out) > budget:  # even the deletes do not fit: cut the list itself
        out = out[: max(0, budget)].rsplit("\n", 1)[0]
        return scrub(out + "\n\n> **Truncated**: this plan is too large for one comment; the full plan is in "
                     f"the plan's text output or {_code('wizsync plan ... --json')}.\n", fb)
    out += _changed_section(items, fb, budget - len(out), limit)
    out += "\n".join(tail) + "\n"
    return scrub(out, fb)


def _headline(items: list[ChatbotReport], environment: str, run_id: str | None) -> list[str]:
    totals = compute_totals(items)
    head = [f"## wizsync plan: {_code(environment)}", ""]
    line = f"{totals.chatbots} chatbots, **{totals.chatbots_with_changes} with changes**: {summary_phrase(totals.as_dict())}"
    if totals.errors:
        line += f"; **{totals.errors} could not be planned**"
    head += [line + ".", ""]
    if run_id:
        head += [f"Run {_code(run_id)}: apply exactly this plan with {_code(f'wizsync apply ... --plan {run_id}')}.", ""]
    return head


def _deletes_section(items: list[ChatbotReport], fb: list[str], limit: int) -> list[str]:
    """Every delete, unless they alone would fill half the comment: then as many as fit, and how many more."""
    deletes = list_deletes(items)
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


def _failures_section(items: list[ChatbotReport], fb: list[str]) -> list[str]:
    failed = [r for r in items if r.error]
    if not failed:
        return []
    lines = [f"### Could not be planned ({len(failed)})", ""]
    lines += [f"- {_code(scrub(r.name, fb))}: {_code(str((r.error or {}).get('code', 'error')))} "
              f"{html.escape(safe_text(scrub(str((r.error or {}).get('message', '')), fb)))}" for r in failed]
    return lines + [""]


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


def _changed_section(items: list[ChatbotReport], fb: list[str], room: int, limit: int) -> str:
    """Each changed chatbot's diff while it fits in ``room`` characters; a note counts the rest."""
    changed = [r for r in items if r.has_changes and not r.error]
    if not changed:
        return ""
    out = f"\n### Changed chatbots ({len(changed)})\n"
    shown = 0
    for r in changed:
        block = "\n" + _chatbot_block(r, fb) + "\n"
        if len(out) + len(block) > room:
            break
        out += block
        shown += 1
    if shown < len(changed):
        where = "the plan's text output (the job log) or " + _code("wizsync plan ... --json")
        out += (f"\n> **Truncated**: {len(changed) - shown} more changed chatbot(s) not shown, to stay under "
                f"GitHub's {limit:,}-character limit; the counts above include them. Full plan: {where}.\n")
    return out
