"""``wizsync resume``: continue an interrupted, halted or failed run where it stopped."""

from __future__ import annotations

from pathlib import Path

import click

from wizsync.engine import run
from wizsync.runs import resume_run

from .apply import finish
from .common import output_options, reporter_for, user_errors
from .runview import confirmer, journal_path_option

__all__ = ["resume"]


@click.command("resume")
@click.argument("run_id", metavar="RUN_ID")
@journal_path_option
@click.option("--force", is_flag=True, allow_from_autoenv=False, help="Resume even though the manifest or a rendered document changed since the run started.")
@click.option("--yes", "-y", is_flag=True, allow_from_autoenv=False, help="Do not ask for confirmation on a protected environment.")
@output_options
def resume(run_id: str, journal: str, force: bool, yes: bool, as_json: bool, no_color: bool, verbose: bool, quiet: bool) -> None:
    """Continue run RUN_ID with its recorded options.

    Chatbots already applied or unchanged are skipped; the rest are planned
    afresh and applied (apply is idempotent, so one that was in flight when
    the run stopped is settled by its fresh plan). Refuses when the manifest
    or a rendered document changed since the run started, unless --force.

    \b
    Examples:
      wizsync resume r20261125-101500-ab12
      wizsync resume r20261125-101500-ab12 --journal ops/.wizsync/journal.db --yes
    """
    with user_errors():
        outcome = run(resume_run(
            Path(journal).resolve(), run_id, force=force,
            confirm_for=lambda env, protected: confirmer(env, protected, yes),
            reporter=reporter_for(quiet, verbose, no_color),
        ))  # fmt: skip
    finish(outcome, as_json, verbose)
