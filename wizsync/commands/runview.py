"""How a run is shown after apply/resume/rollback, and by ``show``: from the journal, always.

Reading the journal (not in-memory state) means what a user sees is exactly
what was recorded, whether the run just ended or ended last week.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from wizchat_management import JSONValue
from wizchat_management.vocabulary import wire_value

from wizsync.journal import ItemRecord, Journal, RunRecord, lock_holder
from wizsync.journal.states import ItemState, RunStatus
from wizsync.journal.location import JournalLocation, locate_journal
from wizsync.report import ChatbotReport
from wizsync.report.model import FailedStep, JournalFacts
from wizsync.report.jsonout import build_document, dumps
from wizsync.report.next_steps import next_steps
from wizsync.report.values import scrub
from wizsync.fleet.shards import Shard, shard_line

__all__ = ["item_reports", "effective_status", "print_run", "run_json", "run_document", "key_stats",
           "journal_path_option", "manifest_path_option", "journal_location", "open_journal_at", "existing_journal"]

_F = TypeVar("_F", bound=Callable[..., Any])

journal_path_option = click.option(
    "--journal",
    "journal",
    metavar="PATH",
    type=click.Path(dir_okay=False),
    envvar="WIZSYNC_JOURNAL",
    help="SQLite journal holding the run (default: .wizsync/journal.db beside --manifest; env: WIZSYNC_JOURNAL).",
)


def manifest_path_option(help: str) -> Callable[[_F], _F]:
    return click.option("--manifest", "manifest", metavar="PATH", type=click.Path(dir_okay=False), help=help)


def journal_location(journal: str | None, manifest: str | None, *, param: str = "journal") -> JournalLocation:
    """The one journal rule (``wizsync.journal.location``) for this command's options."""
    ctx = click.get_current_context()
    from_env = ctx.get_parameter_source(param) == click.core.ParameterSource.ENVIRONMENT
    return locate_journal(journal, from_env=from_env, manifest=manifest)


def existing_journal(location: JournalLocation) -> Path:
    """The journal's path if there is one there; else an error that says where it looked and why."""
    if not location.path.is_file():
        raise click.ClickException(location.missing_message())
    return location.path


def open_journal_at(location: JournalLocation) -> Journal:
    return Journal.open(existing_journal(location), readonly=True)


def effective_status(journal_path: Path, run: RunRecord) -> RunStatus:
    """A run still marked ``running`` that no live process holds was killed: it is interrupted."""
    if run.status is RunStatus.RUNNING and lock_holder(journal_path, run.id) is None:
        return RunStatus.INTERRUPTED
    return run.status


def _failed_step(r: ItemRecord) -> FailedStep | None:
    """A 422 partial failure as the journal kept it: the failed section and key, and the op the plan had there."""
    if not r.error_section:
        return None
    op = next((wire_value(o.op) for o in r.planned_operations
               if wire_value(o.section) == r.error_section and o.key == r.error_key), None)
    return FailedStep(op, r.error_section, r.error_key, r.error_code, r.error_message or "")


def item_reports(records: Iterable[ItemRecord]) -> list[ChatbotReport]:
    """One report per journal item, with what only the journal knows (what the server kept, where it stopped)."""
    return [
        ChatbotReport(
            name=r.name, tenant=r.tenant or "", chatbot_id=r.chatbot_id, summary=r.plan_summary,
            state=r.state, revision=r.revision_after, batch=r.batch,
            error={"code": r.error_code, "message": r.error_message or ""} if r.error_code else None,
            journal=JournalFacts(applied=r.applied_operations, failed=_failed_step(r)),
        )
        for r in records
    ]


def key_stats(journal: Journal, run: RunRecord, records: Iterable[ItemRecord]) -> dict[str, dict[str, int]]:
    """Requests, 429s and retries per key label, from the journal.

    429s and retries come from the event log, which has one event per
    occurrence, listings included; requests from the items plus the requests
    no item took (``requests.other``).
    """
    keys: dict[str, dict[str, int]] = {}

    def stats(label: str) -> dict[str, int]:
        return keys.setdefault(label, {"requests": 0, "throttled": 0, "retries": 0})

    for r in records:
        stats(f"{r.tenant}/{run.environment}")["requests"] += r.requests
    for e in journal.events(run.id, kinds=["request.throttled", "request.retry", "requests.other"]):
        label = str(e.data.get("key") or "?")
        if e.kind == "requests.other":
            stats(label)["requests"] += int(e.data.get("requests", 0))
        else:
            stats(label)["throttled" if e.kind == "request.throttled" else "retries"] += 1
    return keys


def run_json(journal: Journal, journal_path: Path, run_id: str, forbidden: Iterable[str] = (),
             extra: Mapping[str, JSONValue] | None = None, *, error: Mapping[str, str] | None = None) -> str:
    return dumps(run_document(journal, journal_path, run_id, forbidden, extra, error=error))


def run_document(journal: Journal, journal_path: Path, run_id: str, forbidden: Iterable[str] = (),
                 extra: Mapping[str, JSONValue] | None = None, *, error: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A run's ``--json`` document, built from its journal records alone."""
    run = journal.get_run(run_id)
    records = journal.items(run_id)
    status = effective_status(journal_path, run)
    info: dict[str, Any] = {**run.to_dict(), "status": status.value, "counts": journal.item_counts(run_id),
                            "journal": str(journal_path), **(extra or {})}
    return build_document(run.command, item_reports(records), run_id=run_id, environment=run.environment,
                          status=info["status"], keys=key_stats(journal, run, records), run=info,
                          forbidden=forbidden, error=error)


# ---------------------------------------------------------------- the human view


def _duration(run: RunRecord) -> str:
    from wizsync.journal.ids import parse_rfc3339

    if not run.finished_at:
        return "-"
    seconds = (parse_rfc3339(run.finished_at) - parse_rfc3339(run.started_at)).total_seconds()
    return f"{seconds:.1f}s"


def _header_lines(run: RunRecord, status: RunStatus, records: Sequence[ItemRecord], counts: Mapping[str, int]) -> list[str]:
    """The run's first line (what, where, how it ended), its shard, and its items per state."""
    parent = f" (rolls back {run.parent_run})" if run.command == "rollback" and run.parent_run else ""
    shard = (run.options or {}).get("shard")
    sharded = f" shard {shard['index']}/{shard['count']}" if isinstance(shard, dict) else ""
    lines = [f"Run {run.id}: {run.command} '{run.environment}'{sharded}{parent}: {status}  [{_duration(run)}]"]
    if isinstance(shard, dict):
        lines.append(f"  {shard_line(Shard.from_json(shard))}")
    lines.append("  " + ", ".join(f"{state} {n}" for state, n in sorted(counts.items())) + f"  ({len(records)} chatbots)")
    return lines


def _traffic_lines(keys: Mapping[str, Mapping[str, int]], run: RunRecord, fb: Sequence[str]) -> list[str]:
    total = {f: sum(k[f] for k in keys.values()) for f in ("requests", "throttled", "retries")}
    lines = [f"  {total['requests']} requests, {total['throttled']} throttled (429), {total['retries']} retries"]
    if run.error:
        lines.append(f"  error: {scrub(run.error, fb)}")
    return lines


def _batch_lines(records: Sequence[ItemRecord]) -> list[str]:
    lines = []
    for b in sorted({r.batch for r in records if r.batch is not None}):
        states = Counter(r.state.value for r in records if r.batch == b)
        lines.append(f"  batch {b}: " + ", ".join(f"{s} {n}" for s, n in sorted(states.items())))
    return lines


# States a reader is shown item by item even without --verbose: the ones that need a look.
_NOTABLE = frozenset({ItemState.FAILED, ItemState.DRIFTED, ItemState.SKIPPED, ItemState.APPLYING})


def _item_line(r: ItemRecord, fb: Sequence[str]) -> str:
    """One chatbot: where it stands, how long it took, and why it failed or stopped."""
    detail = ""
    if r.error_code:
        where = f" [{r.error_section}{' ' + r.error_key if r.error_key else ''}]" if r.error_section else ""
        detail = f": {r.error_code}{where}: {scrub(r.error_message or '', fb)}"
    elif r.state is ItemState.APPLYING:
        detail = ": an apply was sent and no answer recorded (the process stopped); resume settles it"
    applied = r.revision_after is not None and r.state is ItemState.APPLIED
    rev = f" rev {r.revision_before}→{r.revision_after}" if applied else ""
    took = f" in {r.duration_ms / 1000:.2f}s" if r.duration_ms is not None else ""
    tries = f", {r.attempts} attempts" if r.attempts > 1 else ""
    return f"    {r.name} ({r.tenant}, {r.chatbot_id}, batch {r.batch}): {r.state}{rev}{took}{tries}{detail}"


def _next_lines(journal_path: Path, run: RunRecord, status: RunStatus, records: Sequence[ItemRecord],
                counts: Mapping[str, int]) -> list[str]:
    """What is left undone, and the commands to run next."""
    lines = []
    left = [r for r in records if r.state in (ItemState.PENDING, ItemState.PLANNED, ItemState.APPLYING)]
    journal_arg = f" --journal {journal_path}"
    changes_runs = run.command in ("apply", "rollback")
    if status in (RunStatus.HALTED, RunStatus.INTERRUPTED, RunStatus.FAILED) and changes_runs and left:
        untouched = sorted({r.batch for r in left if r.batch is not None})
        lines.append(f"  not done: {len(left)} chatbot(s), batches {', '.join(map(str, untouched))}")
    steps = next_steps(run.command, status, run.options, records)
    # Never a resume hint for a run that a resume cannot finish: what to do instead.
    lines += [f"Instead:  {sentence}" for sentence in steps.instead]
    if steps.resumable:
        lines.append(f"Resume:   wizsync resume {run.id}{journal_arg}")
    if changes_runs and (counts.get(ItemState.APPLIED) or counts.get(ItemState.FAILED)):
        lines.append(f"Rollback: wizsync rollback {run.id}{journal_arg}")
    lines.append(f"Details:  wizsync show {run.id}{journal_arg}")
    return lines


def print_run(journal: Journal, journal_path: Path, run_id: str, *, verbose: bool = False, forbidden: Iterable[str] = ()) -> None:
    """A run as a human reads it: status, counts, every failure, what is left, what to run next."""
    fb = list(forbidden)
    run = journal.get_run(run_id)
    status = effective_status(journal_path, run)
    records = journal.items(run_id)
    counts = journal.item_counts(run_id)
    lines = _header_lines(run, status, records, counts)
    lines += _traffic_lines(key_stats(journal, run, records), run, fb)
    lines += _batch_lines(records)
    lines += [_item_line(r, fb) for r in records if verbose or r.state in _NOTABLE]
    lines += _next_lines(journal_path, run, status, records, counts)
    for line in lines:
        click.echo(line)
