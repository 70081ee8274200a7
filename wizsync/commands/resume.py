"""``wizsync resume``: continue an interrupted, halted or failed run where it stopped."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from wizsync.engine import Transport, run
from wizsync.journal import Journal, JournalError
from wizsync.run.flows import resume_run
from wizsync.fleet.shards import ShardSpec, shard_journal_name

from .apply import finish
from .common import output_options, reporter_for, shard_option, transport_options, user_errors
from .confirm import confirmer
from .runview import existing_journal, journal_location, journal_path_option, manifest_path_option

__all__ = ["resume"]


def _shard_journal(ctx: click.Context, journal: str | None, shard: ShardSpec | None, manifest: str | None = None) -> Path:
    """The journal by the one journal rule; ``--shard`` without ``--journal``: the shard's beside the default one."""
    location = journal_location(journal, manifest)
    if shard is not None and location.source in ("manifest", "default"):
        path = location.path
        location = replace(location, path=path.with_name(shard_journal_name(path.name, shard)))
    return existing_journal(location)


def _check_shard(journal_path: Path, run_id: str, shard: ShardSpec) -> None:
    """A matrix job resuming another shard's run (or an unsharded one) is refused before anything is sent."""
    with Journal.open(journal_path, readonly=True) as journal:
        recorded = (journal.get_run(run_id).options or {}).get("shard")
    if not isinstance(recorded, dict):
        raise JournalError(f"run {run_id} was not sharded; resume it without --shard")
    if (int(recorded["index"]), int(recorded["count"])) != (shard.index, shard.count):
        raise JournalError(f"run {run_id} is shard {recorded['index']}/{recorded['count']}, not {shard}; "
                           "resume it from its own shard")


@click.command("resume")
@click.argument("run_id", metavar="RUN_ID")
@journal_path_option
@manifest_path_option("The run's manifest where it is now, after the checkout moved (default: the path the run recorded). "
                      "The journal defaults to .wizsync/journal.db beside it.")
@shard_option
@click.option("--force", is_flag=True, allow_from_autoenv=False, help="Resume even though the manifest or a rendered document changed since the run started.")
@click.option("--yes", "-y", is_flag=True, allow_from_autoenv=False, help="Do not ask for confirmation on a protected environment.")
@transport_options
@output_options
@click.pass_context
def resume(ctx: click.Context, run_id: str, journal: str | None, manifest: str | None, shard: ShardSpec | None, force: bool, yes: bool,
           transport: Transport, as_json: bool, no_color: bool, verbose: bool, quiet: bool) -> None:
    """Continue run RUN_ID with its recorded options.

    Chatbots already applied or unchanged are skipped; the rest are planned
    afresh and applied (apply is idempotent, so one that was in flight when
    the run stopped is settled by its fresh plan). Refuses when the manifest
    or a rendered document changed since the run started, unless --force.
    A shard's run keeps the keys it was given, whatever the manifest says now.

    \b
    Examples:
      wizsync resume r20261125-101500-ab12
      wizsync resume r20261125-101500-ab12 --manifest ~/new-checkout/wizsync.yaml --yes
      wizsync resume r20261125-101500-ab12 --shard 2/4 --yes   # .wizsync/journal-shard-2-of-4.db
    """
    journal_path = _shard_journal(ctx, journal, shard, manifest)
    with user_errors():
        if shard is not None:
            _check_shard(journal_path, run_id, shard)
        outcome = run(resume_run(
            journal_path, run_id, force=force,
            confirm_for=lambda env, protected: confirmer(env, protected, yes),
            reporter=reporter_for(quiet, verbose, no_color), transport=transport,
            manifest=Path(manifest).resolve() if manifest else None,
        ))
    finish(outcome, as_json, verbose)
