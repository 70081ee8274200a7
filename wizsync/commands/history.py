"""``wizsync runs`` and ``wizsync show``: the run history and one run, read from the journal."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from wizsync.journal import Journal

from .common import user_errors
from .runview import effective_status, journal_path_option, print_run, run_json

__all__ = ["runs", "show"]


@click.command("runs")
@journal_path_option
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True, help="How many runs, newest first.")
@click.option("--env", "environment", metavar="ENV", help="Only runs of this environment.")
@click.option("--json", "as_json", is_flag=True, help="Machine output (JSON) on stdout.")
def runs(journal: str, limit: int, environment: str | None, as_json: bool) -> None:
    """List the runs in the journal, newest first.

    \b
    Examples:
      wizsync runs
      wizsync runs --env production --limit 5 --json
    """
    path = Path(journal).resolve()
    with user_errors(), Journal.open(path, create=False) as j:
        records = j.runs(limit, environment=environment)
        rows = []
        for r in records:
            row = r.to_dict()
            row["status"] = effective_status(path, r)
            row["counts"] = j.item_counts(r.id)
            rows.append(row)
    if as_json:
        sys.stdout.write(json.dumps({"journal": str(path), "runs": rows}, indent=2, sort_keys=True) + "\n")
        return
    if not rows:
        click.echo(f"No runs in {path}.")
        return
    for row in rows:
        counts = ", ".join(f"{s} {n}" for s, n in sorted(row["counts"].items()))
        parent = f" ← {row['parent_run']}" if row.get("parent_run") else ""
        click.echo(f"{row['id']}  {row['command']:<8} {row['environment']:<12} {row['status']:<11} {row['started_at']}  {counts}{parent}")


@click.command("show")
@click.argument("run_id", metavar="RUN_ID")
@journal_path_option
@click.option("--json", "as_json", is_flag=True, help="Machine output (JSON) on stdout.")
@click.option("--events", is_flag=True, help="Also print the run's event log.")
@click.option("-v", "--verbose", is_flag=True, help="List every chatbot, not only those needing attention.")
def show(run_id: str, journal: str, as_json: bool, events: bool, verbose: bool) -> None:
    """Show one run: status, per-batch and per-chatbot states, errors, counts, durations.

    \b
    Examples:
      wizsync show r20261125-101500-ab12
      wizsync show r20261125-101500-ab12 --json | jq '.chatbots[] | select(.state=="failed")'
    """
    path = Path(journal).resolve()
    with user_errors(), Journal.open(path, create=False) as j:
        if as_json:
            sys.stdout.write(run_json(j, path, run_id))
        else:
            print_run(j, path, run_id, verbose=verbose)
        if events:
            for e in j.events(run_id):
                data = json.dumps(e.data, sort_keys=True) if e.data else ""
                click.echo(f"{e.ts}  {e.kind:<24} {e.item or '-':<28} {data}", err=as_json)
