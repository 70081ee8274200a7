"""Fleet totals, the deletes (listed one by one: deletes must never surprise),
request/429/retry counts per API key, and the apply-time estimate.

The estimate is the floor from the token-bucket model (docs/rate-limits.md, "The
limits and retries"): key k with burst b_k and refill r_k/s cannot serve n_k
requests before ``(n_k - b_k) / r_k`` seconds, and keys run in parallel, so
the fleet needs at least ``max_k`` of that.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from wizchat_management.vocabulary import wire_value

from ..engine.limiter import floor_seconds

from .diff import Line, render_diffs, summary_phrase, to_text
from .model import SUMMARY_KEYS, ChatbotReport
from .values import forbidden_list, safe_text, scrub

if TYPE_CHECKING:  # rich is imported when the text report is drawn: a --json run never needs it
    from rich.text import Text

KEY_STAT_FIELDS = ("requests", "throttled", "retries")


@dataclass(frozen=True)
class Totals:
    chatbots: int = 0
    chatbots_with_changes: int = 0
    errors: int = 0
    failed: int = 0
    create: int = 0
    update: int = 0
    delete: int = 0
    noop: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class DeleteRef:
    chatbot: str
    tenant: str
    section: str
    key: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Estimate:
    """``requests`` apply will send; ``floor_seconds`` the lower bound on its duration.

    ``by_key`` the floor per key label; ``unknown`` the labels with requests but
    no known rate (excluded from the floor).
    """

    requests: int
    floor_seconds: float
    by_key: dict[str, float] = field(default_factory=dict)
    unknown: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "floor_seconds": self.floor_seconds,
            "by_key": {k: self.by_key[k] for k in sorted(self.by_key)},
            "unknown": list(self.unknown),
        }


def compute_totals(reports: Iterable[ChatbotReport]) -> Totals:
    n = changed = errors = failed = 0
    sums = dict.fromkeys(SUMMARY_KEYS, 0)
    for r in reports:
        n += 1
        if r.error:
            errors += 1
            continue
        if r.failed is not None or r.state == "failed":
            failed += 1
        counts = r.counts or {}
        for k in SUMMARY_KEYS:
            sums[k] += counts.get(k, 0)
        changed += int(r.has_changes)
    return Totals(n, changed, errors, failed, **sums)


def list_deletes(reports: Iterable[ChatbotReport]) -> list[DeleteRef]:
    """Every planned delete, sorted by (tenant, chatbot, section, key)."""
    out = []
    for r in reports:
        plan = r.plan
        if plan is None or r.error:
            continue
        for op in plan.operations:
            if op.op == "delete":
                out.append(DeleteRef(r.name, r.tenant, wire_value(op.section), op.key))
    return sorted(out, key=lambda d: (d.tenant, d.chatbot, d.section, d.key or ""))


def count_apply_requests(
    reports: Iterable[ChatbotReport],
    per_chatbot: int = 2,
    label_of: Callable[[ChatbotReport], str] = lambda r: r.tenant,
) -> dict[str, int]:
    """Requests apply will send per key label: ``per_chatbot`` for each chatbot with changes.

    2 = the fresh dry-run plus the apply; pass 3 if a snapshot read precedes them.
    """
    out: dict[str, int] = {}
    for r in reports:
        if r.has_changes and not r.error:
            label = label_of(r)
            out[label] = out.get(label, 0) + per_chatbot
    return out


def estimate_apply(
    requests_by_key: Mapping[str, int],
    rates_by_key: Mapping[str, float],
    bursts_by_key: Mapping[str, float],
) -> Estimate:
    """The floor ``max_k max(0, n_k - b_k) / r_k`` (a missing burst counts as 0)."""
    by_key: dict[str, float] = {}
    unknown = []
    for label in sorted(requests_by_key):
        n = requests_by_key[label]
        rate = rates_by_key.get(label)
        if not rate or rate <= 0:
            if n > 0:
                unknown.append(label)
            continue
        by_key[label] = round(floor_seconds(n, bursts_by_key.get(label) or 0, rate), 3)
    return Estimate(
        requests=sum(requests_by_key.values()),
        floor_seconds=max(by_key.values(), default=0.0),
        by_key=by_key,
        unknown=tuple(unknown),
    )


def _seconds(s: float) -> str:
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(int(round(s)), 60)
    return f"{m} min {sec:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def estimate_line(est: Estimate) -> str:
    line = (
        f"apply needs ~{est.requests} requests; at the known rate limits it will take "
        f"≥ {_seconds(est.floor_seconds)} (floor)"
    )
    if est.unknown:
        line += f"; no rate known yet for {', '.join(est.unknown)}"
    return safe_text(line)


def render_summary(
    totals: Totals,
    deletes: Iterable[DeleteRef] = (),
    keys: Mapping[str, Mapping[str, int]] | None = None,
    estimate: Estimate | None = None,
    title: str = "Plan",
    forbidden: Iterable[str] = (),
) -> Text:
    """The closing block of ``plan``/``apply``: totals, deletes, per-key counts, estimate.

    ``keys``: ``{label: {"requests": n, "throttled": n, "retries": n}}`` (plain dicts).
    """
    from rich.text import Text

    fb = forbidden_list(forbidden)
    t = Text()
    t.append(f"{safe_text(title)}: ", "bold")
    t.append(f"{totals.chatbots} chatbots, {totals.chatbots_with_changes} with changes")
    if totals.errors:
        t.append(f", {totals.errors} with errors", "bold red")
    if totals.failed:
        t.append(f", {totals.failed} failed", "bold red")
    t.append(": " + summary_phrase(totals.as_dict()))
    dels = list(deletes)
    if dels:
        t.append(f"\nDeletes ({len(dels)}), review before apply:", "bold red")
        for d in dels:
            where = f"{d.section} {d.key}" if d.key is not None else d.section
            t.append("\n")
            t.append(safe_text(scrub(f"  - {d.chatbot} ({d.tenant}) {where}", fb)), "red")
    if keys:
        t.append("\nRequests per key:", "bold")
        width = max(len(safe_text(k)) for k in keys)
        for label in sorted(keys):
            st = keys[label]
            req, thr, ret = (int(st.get(f, 0) or 0) for f in KEY_STAT_FIELDS)
            t.append(f"\n  {safe_text(scrub(label, fb)):<{width}}  {req} requests, ")
            t.append(f"{thr} throttled (429)", "yellow" if thr else None)
            t.append(f", {ret} retries")
    if estimate is not None:
        t.append("\nEstimate: ", "bold")
        t.append(estimate_line(estimate))
    return t


def render_report(
    reports: Iterable[ChatbotReport],
    keys: Mapping[str, Mapping[str, int]] | None = None,
    estimate: Estimate | None = None,
    forbidden: Iterable[str] = (),
    only_changes: bool = False,
    title: str = "Plan",
    only_failures: bool = False,
) -> Text:
    """What ``plan`` prints on stderr: every diff, a blank line, then :func:`render_summary`.

    ``only_changes=True`` (the default a command may pick unless ``-v``) leaves
    out chatbots with nothing to do; the totals still count them.
    ``only_failures=True`` (``-q``) shows only the chatbots that failed.
    """
    items = list(reports)
    fb = forbidden_list(forbidden)
    # -q: the chatbots that failed, then the summary (which still counts every chatbot and lists every delete).
    shown = [r for r in items if r.error or r.failed is not None or r.state == "failed"] if only_failures else items
    out = render_diffs(shown, fb, only_changes=only_changes)
    if out.plain:
        out.append("\n\n")
    out.append_text(render_summary(compute_totals(items), list_deletes(items), keys, estimate, title, fb))
    return out


def print_report(
    console: Any,
    diffs: Iterable[list[Line]],
    totals: Totals,
    deletes: Iterable[DeleteRef],
    keys: Mapping[str, Mapping[str, int]] | None = None,
    estimate: Estimate | None = None,
    forbidden: Iterable[str] = (),
    title: str = "Plan",
) -> None:
    """:func:`render_report`'s output printed on ``console`` one chatbot at a time (the same text).

    ``diffs``: each shown chatbot's styled lines, in report order, already chosen (``only_changes``,
    ``only_failures``); ``totals``/``deletes`` are the whole fleet's.
    """
    from rich.text import Text

    printed = False
    for lines in diffs:
        if printed:
            console.print(Text())
        console.print(to_text(lines))
        printed = True
    if printed:
        console.print(Text())
    console.print(render_summary(totals, deletes, keys, estimate, title, forbidden))
