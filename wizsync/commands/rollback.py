"""``wizsync rollback``: restore what a run changed, from the snapshots it journaled."""

from __future__ import annotations

from pathlib import Path

import click

from wizsync.engine import Transport, run
from wizsync.run.flows import rollback_run

from .apply import batches_option, finish, max_failures_option
from .common import output_options, reporter_for, transport_options, user_errors
from .confirm import confirmer
from .runview import existing_journal, journal_location, journal_path_option, manifest_path_option

__all__ = ["rollback"]


@click.command("rollback")
@click.argument("run_id", metavar="RUN_ID")
@journal_path_option
@manifest_path_option("The run's manifest where it is now, after the checkout moved (default: the path the run recorded). "
                      "The journal defaults to .wizsync/journal.db beside it.")
@batches_option
@max_failures_option
@click.option("--yes", "-y", is_flag=True, allow_from_autoenv=False, help="Do not ask for confirmation on a protected environment.")
@click.option("--force", is_flag=True, allow_from_autoenv=False,
              help="Also restore chatbots changed since the run left them (by a later run or by hand); default: left alone.")
@transport_options
@output_options
def rollback(
    run_id: str,
    journal: str | None,
    manifest: str | None,
    batches: list[int | str] | None,
    max_failures: int | str | None,
    yes: bool,
    force: bool,
    transport: Transport,
    as_json: bool,
    no_color: bool,
    verbose: bool,
    quiet: bool,
) -> None:
    """Re-apply the config each chatbot had before run RUN_ID, as a run of its own.

    Goes in reverse batch order through the same batches and failure budget
    (unless overridden). Only the sections the run touched are restored.
    Secret values are write-only: a secret the run changed cannot be
    restored, and rollback names each such field. Rolling back a rollback
    re-applies the original. A chatbot changed since the run left it (its
    revision moved: a later run, a hand edit) is listed and left alone
    unless --force.

    \b
    Examples:
      wizsync rollback r20261125-101500-ab12
      wizsync rollback r20261125-101500-ab12 --batches 100% --yes
    """
    with user_errors():
        outcome = run(rollback_run(
            existing_journal(journal_location(journal, manifest)), run_id, batches=batches, max_failures=max_failures,
            confirm_for=lambda env, protected: confirmer(env, protected, yes),
            reporter=reporter_for(quiet, verbose, no_color), transport=transport,
            manifest=Path(manifest).resolve() if manifest else None, force=force,
        ))
    finish(outcome, as_json, verbose)
