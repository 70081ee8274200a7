"""``wizsync plan``: dry-run every selected chatbot and show what apply would change."""

from __future__ import annotations

import sys

import click

from wizsync import __version__
from wizsync.engine import Transport, run
from wizsync.run.plan_run import PlanRun, run_plan
from wizsync.plan.planfile import PlanFileWriter
from wizsync.report.errordoc import emit_stream
from wizsync.report.jsonout import stream_document
from wizsync.report.markdown import render_parts
from wizsync.report.summary import print_report
from wizsync.fleet.pinning import parse_repin
from wizsync.fleet.session import Session, open_session
from wizsync.fleet.shards import ShardSpec, shard_line

from .common import (
    repin_option,
    concurrency_option,
    transport_options,
    env_option,
    journal_option,
    manifest_argument,
    output_options,
    reporter_for,
    selection_options,
    shard_option,
    stdout_console,
    user_errors,
)

__all__ = ["plan"]


@click.command("plan")
@manifest_argument
@env_option
@selection_options
@shard_option
@concurrency_option
@transport_options
@journal_option
@repin_option
@click.option("--no-prune", is_flag=True, help="Merge only: never plan deletes of items missing from the document.")
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when nothing would change, 2 when something would, 1 on errors.",
)
@click.option("--out", "out_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="Also write the plan to FILE: a self-contained plan file for `wizsync apply FILE` "
              "(secrets as ${secret:NAME} references, never values; docs/plan-files.md).")
@click.option(
    "--format", "output_format", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True,
    help="stdout: the diffs (text), the --json document, or a markdown summary for a pull-request comment or "
    "$GITHUB_STEP_SUMMARY (bounded to 65,536 characters).",
)
@output_options
def plan(
    manifest_path: str,
    environment: str,
    select: tuple[str, ...],
    chatbots: tuple[str, ...],
    shard: ShardSpec | None,
    concurrency: int | None,
    transport: Transport,
    journal: str | None,
    repin: tuple[str, ...],
    no_prune: bool,
    detailed_exitcode: bool,
    out_file: str | None,
    output_format: str,
    as_json: bool,
    no_color: bool,
    verbose: bool,
    quiet: bool,
) -> None:
    """Dry-run every selected chatbot of ENV on the server and show the diffs.

    Requests run concurrently, paced per API key from the rate-limit headers.
    The plan is recorded as a run in the journal; `wizsync apply --plan RUN_ID`
    applies exactly what it showed.

    \b
    Examples:
      wizsync plan wizsync.yaml --env production
      wizsync plan wizsync.yaml --env production --detailed-exitcode   # CI: 2 = changes
      wizsync plan wizsync.yaml --env production --format markdown >> "$GITHUB_STEP_SUMMARY"
    """
    as_json = as_json or output_format == "json"
    markdown = output_format == "markdown" and not as_json
    # Every report streams from a spool of rows (markdown's holds only what the summary can show),
    # --out from a spool of plan-file entries: no chatbot's result is kept once recorded.
    with user_errors():
        session = open_session(
            manifest_path, environment, select=select, chatbots=chatbots, concurrency=concurrency, journal=journal,
            shard=shard,
            transport=transport,
        )
    plan_file = PlanFileWriter(session, no_prune=no_prune) if out_file else None
    try:
        with user_errors():
            result = run(run_plan(session, no_prune=no_prune, reporter=reporter_for(quiet or as_json, verbose, no_color),
                                  repin=parse_repin(session.manifest, repin),
                                  report="markdown" if markdown else ("json" if as_json else "text"),
                                  keep_outcomes=False, plan_file=plan_file))
        try:
            _report(result, session, manifest_path, environment, out_file, plan_file, as_json, markdown, verbose,
                    quiet, no_color)
        finally:
            if result.spool is not None:
                result.spool.close()
    finally:
        if plan_file is not None:
            plan_file.close()
    if result.errors:
        sys.exit(1)
    if detailed_exitcode and result.changed:
        sys.exit(2)


def _report(result: PlanRun, session: Session, manifest_path: str, environment: str, out_file: str | None,
            plan_file: PlanFileWriter | None, as_json: bool, markdown: bool, verbose: bool, quiet: bool,
            no_color: bool) -> None:
    if out_file and plan_file is not None:
        if result.errors:
            click.echo(f"no plan file written: {len(result.errors)} chatbot(s) could not be planned", err=True)
        else:
            plan_file.write(out_file, result.run_id, __version__)
            click.echo(f"Plan file {out_file}: apply exactly this plan anywhere with `wizsync apply {out_file}`", err=True)
    keys = {label: s for label, s in result.stats.items()}
    spool = result.spool
    assert spool is not None
    if markdown:
        sys.stdout.write(render_parts(spool.markdown_parts(), environment=environment, run_id=result.run_id, keys=keys,
                                      estimate=result.estimate, forbidden=result.forbidden))
        return
    if as_json:
        extra = {"shard": session.shard.as_json()} if session.shard is not None else {}
        emit_stream(stream_document(
            "plan", spool.entries(), spool.totals, spool.deletes, run_id=result.run_id, environment=environment,
            status="failed" if result.errors else "completed", keys=keys, estimate=result.estimate,
            forbidden=result.forbidden, extra=extra,
            error={"code": "chatbots_failed", "message": f"{len(result.errors)} chatbot(s) could not be planned"}
            if result.errors else None,
        ))
        return
    console = stdout_console(no_color)
    print_report(console, spool.lines(only_changes=not verbose, only_problems=quiet), spool.totals, spool.deletes,
                 keys, result.estimate, result.forbidden, title="Plan")
    # Paths are text, not rich markup ("[...]" in a folder name must print as is).
    if session.shard is not None:
        console.print(f"\n{shard_line(session.shard)}", markup=False, highlight=False)
    console.print(f"\nRun {result.run_id} recorded in {session.journal_path}.", markup=False, highlight=False)
    if result.changed:
        sharded = f" --shard {session.shard}" if session.shard is not None else ""
        console.print(f"Apply exactly this plan: wizsync apply {manifest_path} --env {environment}{sharded} --plan {result.run_id}"
                      f" --journal {session.journal_path}", markup=False, highlight=False)
