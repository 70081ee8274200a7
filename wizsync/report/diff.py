"""A chatbot's plan as a person reads it: summary header, then ``+ ~ -`` per item.

::

    acme-support (acme, cb_123): 1 to create, 1 to update, 1 to delete, 3 unchanged
      ~ core
          ~ temperature: 0.7 → 0.2
      mcpServers
        + search
            + url: "https://mcp.eu.acme.example/search"
            + headers.Authorization: "Bearer <secret:ACME_MCP_TOKEN>"
        - legacy

Sections come in the server's execution order; noop items are only counted.
One builder makes styled segments; :func:`render_diff` turns them into a rich
``Text`` (coloured when the console is) and :func:`diff_lines` into plain
strings. Values go through :mod:`.values`: elided, escaped, secrets masked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Sequence

from wizchat_management import APPLY_ORDER, ITEM_KEYS
from wizchat_management.models import Operation

from .model import ChatbotReport
if TYPE_CHECKING:  # rich is imported when a diff is drawn: a --json run never needs it
    from rich.console import Console
    from rich.text import Text

from .values import (
    DEFAULT_LIMIT,
    MASK,
    desired_item,
    flatten,
    forbidden_list,
    format_value,
    line_delta,
    safe_text,
    scrub,
    secret_display,
)

SYMBOL = {"create": "+", "update": "~", "delete": "-"}
STYLE = {"create": "green", "update": "yellow", "delete": "red", "failed": "bold red", "error": "bold red"}

Segment = tuple[str, "str | None"]
Line = list[Segment]


def _val(v: Any) -> str:
    return v.value if hasattr(v, "value") else str(v)


def summary_phrase(counts: dict[str, int]) -> str:
    return (
        f"{counts['create']} to create, {counts['update']} to update, "
        f"{counts['delete']} to delete, {counts['noop']} unchanged"
    )


def _header(report: ChatbotReport, fb: Sequence[str]) -> Line:
    ident = ", ".join(x for x in (report.tenant, report.chatbot_id) if x)
    head: Line = [(safe_text(scrub(report.name, fb)), "bold"), (f" ({safe_text(scrub(ident, fb))}): ", None)]
    if report.error:
        code = safe_text(scrub(str(report.error.get("code", "error")), fb))
        msg = safe_text(scrub(str(report.error.get("message", "")), fb))
        return head + [(f"error {code}: {msg}", STYLE["error"])]
    counts = report.counts
    head.append((summary_phrase(counts) if counts else "no plan", None))
    if report.state:  # apply/show: the journal state, and the revision it left
        tag = str(report.state)
        if report.effective_revision is not None:
            tag += f", rev {report.effective_revision}"
        style = STYLE["failed"] if report.state in ("failed", "drifted") else "dim"
        head.append((f" [{safe_text(scrub(tag, fb))}]", style))
    return head


def _change_lines(op: Operation, report: ChatbotReport, fb: Sequence[str], limit: int, indent: str) -> list[Line]:
    section, kind = _val(op.section), _val(op.op)
    out: list[Line] = []
    changes = op.changes
    if changes is None and kind == "create":
        # The server may list no field changes for a new item: show the
        # desired item's fields instead (already masked: <secret:NAME>).
        item = desired_item(report.desired, section, op.key)
        key_field = ITEM_KEYS.get(section)
        changes_iter: Iterable[tuple[str, Any, Any]] = [
            (p, None, v) for p, v in flatten(item) if p != key_field  # the key is on the item line
        ]
    elif kind == "delete":
        return out
    else:
        key_field = ITEM_KEYS.get(section) if kind == "create" else None
        changes_iter = [(c.path, c.before, c.after) for c in (changes or []) if c.path != key_field]
    for path, before, after in changes_iter:
        shown = secret_display(report.desired, section, op.key, path)
        after_s = shown if shown is not None else after
        before_v, after_v = scrub(before, fb), scrub(after_s, fb)
        p = safe_text(scrub(path, fb))
        if kind == "create" or (before is None and after is not None):
            out.append([(f"{indent}+ {p}: ", STYLE["create"]), (format_value(after_v, limit), None)])
        elif after is None:
            out.append([(f"{indent}- {p}: ", STYLE["delete"]), (format_value(before_v, limit), None)])
        else:
            line: Line = [
                (f"{indent}~ {p}: ", STYLE["update"]),
                (format_value(before_v, limit), None),
                (" → ", "dim"),
                (format_value(after_v, limit), None),
            ]
            delta = line_delta(before_v, after_v)
            if delta:
                line.append((f" ({delta})", "dim"))
            out.append(line)
    return out


def diff_segments(report: ChatbotReport, forbidden: Iterable[str] = (), limit: int = DEFAULT_LIMIT) -> list[Line]:
    """The styled lines of one chatbot's diff (header first)."""
    fb = forbidden_list(forbidden)
    lines: list[Line] = [_header(report, fb)]
    plan = report.plan
    if plan is not None and not report.error:
        by_section: dict[str, list[Operation]] = {}
        for op in plan.operations:
            if _val(op.op) != "noop":
                by_section.setdefault(_val(op.section), []).append(op)
        order = [s for s in APPLY_ORDER if s in by_section] + sorted(set(by_section) - set(APPLY_ORDER))
        for section in order:
            sec = safe_text(scrub(section, fb))
            keyed = section in ITEM_KEYS or any(op.key is not None for op in by_section[section])
            if keyed:
                lines.append([(f"  {sec}", "bold")])
            for op in by_section[section]:
                kind = _val(op.op)
                sym, style = SYMBOL.get(kind, "?"), STYLE.get(kind)
                if keyed:
                    label = safe_text(scrub(str(op.key), fb)) if op.key is not None else "(section)"
                    lines.append([(f"    {sym} {label}", style)])
                    lines.extend(_change_lines(op, report, fb, limit, " " * 8))
                else:
                    lines.append([(f"  {sym} {sec}", style)])
                    lines.extend(_change_lines(op, report, fb, limit, " " * 6))
    failed = report.failed
    if failed is not None:
        where = _val(failed.section) + (f" {failed.key}" if failed.key is not None else "")
        text = f"  ! failed to {_val(failed.op)} {where}: {failed.code}: {failed.message}"
        lines.append([(safe_text(scrub(text, fb)), STYLE["failed"])])
    return [_defend(line, fb) for line in lines]


def _defend(line: Line, fb: Sequence[str]) -> Line:
    # Last-line defence: a forbidden value could only appear here by spanning
    # segments; if it does, the line loses its styles and is scrubbed whole.
    joined = "".join(s for s, _ in line)
    if any(f in joined for f in fb):
        return [(safe_text(scrub(joined, fb)), None)]
    return line


def to_text(lines: list[Line]) -> Text:
    """Styled lines as one rich ``Text``."""
    from rich.text import Text

    text = Text()
    for i, line in enumerate(lines):
        if i:
            text.append("\n")
        for s, style in line:
            text.append(s, style=style)
    return text


def render_diff(report: ChatbotReport, forbidden: Iterable[str] = (), limit: int = DEFAULT_LIMIT) -> Text:
    """One chatbot's diff as a rich ``Text`` (print it on any console)."""
    return to_text(diff_segments(report, forbidden, limit))


def diff_lines(report: ChatbotReport, forbidden: Iterable[str] = (), limit: int = DEFAULT_LIMIT) -> list[str]:
    """One chatbot's diff as plain lines (no styles, no control characters)."""
    return ["".join(s for s, _ in line) for line in diff_segments(report, forbidden, limit)]


def render_diffs(
    reports: Iterable[ChatbotReport],
    forbidden: Iterable[str] = (),
    limit: int = DEFAULT_LIMIT,
    only_changes: bool = False,
) -> Text:
    """Every chatbot's diff, sorted by (tenant, name), a blank line between."""
    fb = forbidden_list(forbidden)
    chosen = sorted(reports, key=lambda r: (r.tenant, r.name, r.chatbot_id or ""))
    if only_changes:
        chosen = [r for r in chosen if r.has_changes or r.error or r.failed]
    lines: list[Line] = []
    for r in chosen:
        if lines:
            lines.append([])
        lines.extend(diff_segments(r, fb, limit))
    return to_text(lines)


def print_diffs(
    console: Console,
    reports: Iterable[ChatbotReport],
    forbidden: Iterable[str] = (),
    limit: int = DEFAULT_LIMIT,
    only_changes: bool = False,
) -> None:
    """Print :func:`render_diffs` on ``console`` (see :func:`.terminal.make_console`)."""
    text = render_diffs(reports, forbidden, limit, only_changes)
    if text.plain:
        console.print(text)


__all__ = [
    "MASK",
    "diff_lines",
    "diff_segments",
    "print_diffs",
    "render_diff",
    "render_diffs",
    "summary_phrase",
]
