"""``wizsync runs`` and ``wizsync show``: the run history and one run, read from the journal.

Both read several journals at once (``--journal`` repeated, or a quoted glob)
and merge them into one view: the runs of every journal, and a fleet-wide
summary of the shards of a ``--shard`` rollout (``wizsync.report.fleetview``).
"""

from __future__ import annotations

import glob
import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click

from wizsync.report.fleetview import FleetSummary, RunView, fleet_summary
from wizsync.journal import Journal, JournalError, RunRecord, UnknownRunError
from wizsync.report.errordoc import emit

from .common import user_errors
from .runview import (
    effective_status,
    existing_journal,
    journal_location,
    key_stats,
    manifest_path_option,
    print_run,
    run_document,
    run_json,
)

__all__ = ["runs", "show", "journals_option", "expand_journals"]

DEFAULT_JOURNAL = ".wizsync/journal.db"

journals_option = click.option(
    "--journal",
    "journals",
    multiple=True,
    metavar="PATH|GLOB",
    type=click.Path(dir_okay=False),
    envvar="WIZSYNC_JOURNAL",
    help="Journal to read (default: .wizsync/journal.db beside --manifest, else in the current folder). Repeat it, or give a quoted glob (e.g. '.wizsync/journal-shard-*.db'), to merge "
    "the journals of a sharded rollout into one view (env: WIZSYNC_JOURNAL, ':'-separated).",
)


def expand_journals(values: tuple[str, ...] | list[str]) -> list[Path]:
    """Paths and globs → journal paths, each once, in the order given (a glob's matches sorted)."""
    paths: list[Path] = []
    for value in values:
        if any(c in value for c in "*?[") and not Path(value).is_file():
            matches = sorted(glob.glob(value))
            if not matches:
                raise JournalError(f"no journal matches {value!r}: shard journals are named journal-shard-I-of-N.db")
            paths.extend(Path(m) for m in matches)
        else:
            paths.append(Path(value))
    return list(dict.fromkeys(p.resolve() for p in paths))


_FIND = manifest_path_option("Look for the journal beside this manifest (default: wizsync.yaml in the current folder).")


def journal_paths(journals: tuple[str, ...], manifest: str | None) -> list[Path]:
    """The journals to read, by the one journal rule; a path that holds none is an error saying why that path."""
    if not journals:
        return [existing_journal(journal_location(None, manifest, param="journals"))]
    paths = expand_journals(journals)
    for path in paths:
        if not path.is_file():
            existing_journal(journal_location(str(path), None, param="journals"))
    return paths


def _shard_text(run: RunRecord) -> str | None:
    shard = (run.options or {}).get("shard")
    return f"{shard['index']}/{shard['count']}" if isinstance(shard, dict) else None


def run_view(journal: Journal, path: Path, run: RunRecord) -> RunView:
    records = journal.items(run.id)
    stats = key_stats(journal, run, records)
    return RunView(
        journal=path, run=run, status=effective_status(path, run), counts=journal.item_counts(run.id),
        keys=tuple(sorted({f"{r.tenant}/{run.environment}" for r in records if r.tenant})),
        requests=sum(s["requests"] for s in stats.values()), throttled=sum(s["throttled"] for s in stats.values()),
        retries=sum(s["retries"] for s in stats.values()),
    )


def print_fleet(summary: FleetSummary) -> None:
    out = click.echo
    shards = f", {summary.shards} shard(s)" if summary.shards else ""
    span = f"  [{summary.started_at} → {summary.finished_at or 'not finished'}]" if summary.started_at else ""
    out(f"Fleet: {summary.command or 'mixed'} '{summary.environment or 'mixed'}'{shards}, {summary.runs} run(s): {summary.status}{span}")
    out("  " + ", ".join(f"{s} {n}" for s, n in sorted(summary.counts.items())) + f"  ({summary.total} chatbots)")
    out(f"  {summary.requests} requests, {summary.throttled} throttled (429), {summary.retries} retries")
    if summary.budget is not None:
        verdict = "EXCEEDED" if summary.budget_exceeded else "within"
        out(f"  failure budget: {summary.failed} failed, {summary.budget} allowed "
            f"(maxFailures {summary.max_failures} of {summary.total} chatbots): {verdict}")
    elif summary.failed:
        out(f"  {summary.failed} failed")
    for problem in summary.problems:
        out(f"  problem: {problem}")
    out(f"Fleet check: {'ok' if summary.ok else 'NOT ok'}")


@click.command("runs")
@journals_option
@_FIND
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True, help="How many runs, newest first.")
@click.option("--env", "environment", metavar="ENV", help="Only runs of this environment.")
@click.option("--json", "as_json", is_flag=True, help="Machine output (JSON) on stdout.")
def runs(journals: tuple[str, ...], manifest: str | None, limit: int, environment: str | None, as_json: bool) -> None:
    """List the runs in the journal(s), newest first.

    With several journals (the shards of a fleet), the runs of all are listed
    together, followed by a fleet-wide summary of the newest run of each
    journal: counts, requests, the failure budget of the whole fleet, and
    any shard missing or overlapping another.

    \b
    Examples:
      wizsync runs
      wizsync runs --env production --limit 5 --json
      wizsync runs --journal '.wizsync/journal-shard-*.db'
    """
    rows: list[dict[str, Any]] = []
    views: list[RunView] = []
    with user_errors():
        paths = journal_paths(journals, manifest)
        for path in paths:
            with Journal.open(path, readonly=True) as j:
                records = j.runs(limit, environment=environment)
                for r in records:
                    row = r.to_dict()
                    row["status"] = effective_status(path, r)
                    row["counts"] = j.item_counts(r.id)
                    row["journal"] = str(path)
                    row["shard"] = _shard_text(r)
                    rows.append(row)
                if records and len(paths) > 1:
                    views.append(run_view(j, path, records[0]))
    rows.sort(key=lambda row: row["started_at"], reverse=True)
    rows = rows[:limit]
    fleet = fleet_summary(views) if len(paths) > 1 else None
    if as_json:
        doc: dict[str, Any] = {"journal": str(paths[0]), "runs": rows} if len(paths) == 1 else {
            "journals": [str(p) for p in paths], "runs": rows, "fleet": fleet.as_json() if fleet else None}
        doc["error"] = None
        emit(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        return
    if not rows:
        click.echo(f"No runs in {', '.join(map(str, paths))}.")
        return
    sharded = any(row["shard"] for row in rows)
    for row in rows:
        counts = ", ".join(f"{s} {n}" for s, n in sorted(row["counts"].items()))
        parent = f" ← {row['parent_run']}" if row.get("parent_run") else ""
        shard = f" {row['shard'] or '-':<7}" if sharded else ""
        where = f"  ({Path(row['journal']).name})" if len(paths) > 1 else ""
        click.echo(f"{row['id']}  {row['command']:<8} {row['environment']:<12}{shard} {row['status']:<11} "
                   f"{row['started_at']}  {counts}{parent}{where}")
    if fleet is not None:
        click.echo("")
        print_fleet(fleet)


def _pick(opened: list[tuple[Path, Journal]], run_ids: tuple[str, ...]) -> list[tuple[Path, Journal, str]]:
    """The runs to show: the ones named (each from the journal holding it), else the newest of each journal."""
    picked: list[tuple[Path, Journal, str]] = []
    if run_ids:
        for run_id in dict.fromkeys(run_ids):
            for path, j in opened:
                try:
                    j.get_run(run_id)
                except UnknownRunError:
                    continue
                picked.append((path, j, run_id))
                break
            else:
                if Path(run_id).is_file():  # an unquoted glob the shell expanded: --journal took only the first
                    raise JournalError(f"{run_id!r} is a file, not a run id: quote the glob (--journal "
                                       "'.wizsync/journal-shard-*.db') or repeat --journal for each journal")
                where = "this journal" if len(opened) == 1 else f"any of {len(opened)} journals"
                raise JournalError(f"no run {run_id!r} in {where} ({', '.join(str(p) for p, _ in opened)}); "
                                   "`wizsync runs` lists the run ids")
        return picked
    for path, j in opened:
        newest = j.runs(1)
        if not newest:
            raise JournalError(f"no runs in {path}: name the journals that hold runs, or the run ids")
        picked.append((path, j, newest[0].id))
    return picked


@click.command("show")
@click.argument("run_ids", nargs=-1, metavar="[RUN_ID]...")
@journals_option
@_FIND
@click.option("--json", "as_json", is_flag=True, help="Machine output (JSON) on stdout.")
@click.option("--events", is_flag=True, help="Also print the run's event log.")
@click.option("-v", "--verbose", is_flag=True, help="List every chatbot, not only those needing attention.")
@click.option("--check", is_flag=True,
              help="Exit 1 unless every run completed, every shard ran once, no key is in two shards and the "
                   "fleet's failures are within its budget.")
def show(run_ids: tuple[str, ...], journals: tuple[str, ...], manifest: str | None, as_json: bool, events: bool, verbose: bool, check: bool) -> None:
    """Show a run: status, per-batch and per-chatbot states, errors, counts, durations.

    Without RUN_ID, the newest run of each journal. With several runs (the
    shards of a fleet, one journal each), each run is shown, then the fleet:
    counts over all shards, the failure budget of the whole fleet, and any
    shard missing, repeated or overlapping another. --check turns that
    verdict into the exit code, for the last job of a CI matrix.

    \b
    Examples:
      wizsync show r20261125-101500-ab12
      wizsync show r20261125-101500-ab12 --json | jq '.chatbots[] | select(.state=="failed")'
      wizsync show --journal 'journals/journal-shard-*.db' --check
    """
    with user_errors(), ExitStack() as stack:
        paths = journal_paths(journals, manifest)
        opened = [(p, stack.enter_context(Journal.open(p, readonly=True))) for p in paths]
        picked = _pick(opened, run_ids)
        summary = fleet_summary([run_view(j, p, j.get_run(rid)) for p, j, rid in picked])
        if len(picked) == 1:
            path, j, run_id = picked[0]
            if as_json:
                emit(run_json(j, path, run_id))
            else:
                print_run(j, path, run_id, verbose=verbose)
        elif as_json:
            docs = [run_document(j, p, rid) for p, j, rid in picked]
            emit(json.dumps({"fleet": summary.as_json(), "runs": docs, "error": None}, indent=2, sort_keys=True) + "\n")
        else:
            for n, (path, j, run_id) in enumerate(picked):
                if n:
                    click.echo("")
                print_run(j, path, run_id, verbose=verbose)
            click.echo("")
            print_fleet(summary)
        if events:
            for path, j, run_id in picked:
                for e in j.events(run_id):
                    data = json.dumps(e.data, sort_keys=True) if e.data else ""
                    prefix = f"{run_id}  " if len(picked) > 1 else ""
                    click.echo(f"{prefix}{e.ts}  {e.kind:<24} {e.item or '-':<28} {data}", err=as_json)
    if check and not summary.ok:
        reasons = ([f"status {summary.status}"] if summary.status != "completed" else []) + summary.problems
        reasons += ["the fleet's failure budget is exceeded"] if summary.budget_exceeded else []
        click.echo(f"check failed: {'; '.join(reasons)}", err=True)
        sys.exit(1)
