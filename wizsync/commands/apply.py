"""``wizsync apply``: roll a manifest out to an environment in ordered batches."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from wizsync.apply.batches import ApplyOptions
from wizsync.engine import Transport, run
from wizsync.journal import Journal, RunLockedError
from wizsync.report.errordoc import emit
from wizsync.apply.schedule import parse_batches, parse_max_failures
from wizsync.journal import default_journal_path
from wizsync.fleet.pinning import parse_repin
from wizsync.plan.planfile import is_plan_file, load_plan_file
from wizsync.run.flows import RunOutcome, apply_plan_file, apply_run
from wizsync.fleet.session import open_session
from wizsync.fleet.shards import ShardSpec

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
    user_errors,
)
from .confirm import confirmer
from .runview import print_run, run_json

__all__ = ["apply", "batches_option", "max_failures_option"]


def _batches(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int | str] | None:
    if value is None:
        return None
    try:
        return parse_batches(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _max_failures(ctx: click.Context, param: click.Parameter, value: str | None) -> int | str | None:
    if value is None:
        return None
    try:
        return parse_max_failures(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


batches_option = click.option(
    "--batches", callback=_batches, metavar="SIZES",
    help="Batch sizes, counts or percentages of the run; the last repeats (default: rollout.batches), e.g. 1,10%,100%.",
)
max_failures_option = click.option(
    "--max-failures", callback=_max_failures, metavar="N|P%",
    help="Halt after the batch in which failed chatbots exceed this (default: rollout.maxFailures).",
)


def finish(outcome: RunOutcome, as_json: bool, verbose: bool) -> None:
    """Show the run from the journal, name what cannot be restored, exit 0 only when it completed."""
    with Journal.open(outcome.journal_path, readonly=True) as journal:
        if as_json:
            losses = [str(loss) for loss in outcome.losses]
            s = outcome.summary
            error = None if s.ok else {"code": s.status, "message": s.message or f"run {s.run_id} ended {s.status}"}
            emit(run_json(journal, outcome.journal_path, s.run_id, outcome.forbidden,
                          {"cannot_restore": losses} if losses else None, error=error))
        else:
            print_run(journal, outcome.journal_path, outcome.summary.run_id, verbose=verbose, forbidden=outcome.forbidden)
    if outcome.summary.message:
        click.echo(outcome.summary.message, err=True)
    for loss in outcome.losses:
        click.echo(f"cannot restore: {loss}", err=True)
    stopped = getattr(outcome, "stopped", None)
    if stopped is not None and stopped.at_prompt:
        sys.exit(128 + stopped.signum)  # 130 for Ctrl-C: the shell's convention for "interrupted"
    if not outcome.summary.ok:
        sys.exit(1)


def locked(exc: RunLockedError) -> click.ClickException:
    return click.ClickException(str(exc))


@click.command("apply")
@manifest_argument
@click.option("--env", "environment", metavar="ENV", help="Target environment (not with a plan file: it names its own).")
@selection_options
@shard_option
@batches_option
@max_failures_option
@click.option("--no-prune", is_flag=True, help="Merge only: never delete items missing from the documents.")
@click.option("--allow-deletes", is_flag=True, allow_from_autoenv=False, help="Apply plans that delete items (refused without it).")
@click.option("--plan", "plan_run", metavar="RUN_ID", help="Apply exactly what that plan run showed; anything that differs is 'drifted'.")
@click.option("--yes", "-y", is_flag=True, allow_from_autoenv=False, help="Do not ask for confirmation on a protected environment.")
@concurrency_option
@transport_options
@journal_option
@repin_option
@output_options
def apply(
    manifest_path: str,
    environment: str | None,
    select: tuple[str, ...],
    chatbots: tuple[str, ...],
    shard: ShardSpec | None,
    batches: list[int | str] | None,
    max_failures: int | str | None,
    no_prune: bool,
    allow_deletes: bool,
    plan_run: str | None,
    yes: bool,
    concurrency: int | None,
    transport: Transport,
    journal: str | None,
    repin: tuple[str, ...],
    as_json: bool,
    no_color: bool,
    verbose: bool,
    quiet: bool,
) -> None:
    """Apply the manifest to ENV in ordered batches, journaling every result; or apply a plan file.

    Chatbots go in rollout.waves order (canary first), then manifest order,
    cut into batches. Each batch re-plans its chatbots, skips the unchanged,
    applies the rest concurrently; the run halts when failures exceed the
    budget. Interrupted or halted runs continue with `wizsync resume RUN_ID`;
    `wizsync rollback RUN_ID` restores what a run changed. MANIFEST may be a
    plan file (`wizsync plan --out FILE`): exactly its plan is applied, from
    any folder, with keys and secrets from the environment (docs/plan-files.md).

    \b
    Examples:
      wizsync apply wizsync.yaml --env staging
      wizsync apply wizsync.yaml --env production --plan r20261125-101500-ab12 --yes
      wizsync apply plan.json --yes                 # a plan file, no manifest needed
    """
    if is_plan_file(manifest_path):
        _apply_plan_file(manifest_path, environment, select, chatbots, plan_run, batches, max_failures, no_prune,
                         allow_deletes, yes, concurrency, transport, journal, as_json, no_color, verbose, quiet)
        return
    if environment is None:
        raise click.UsageError("Missing option '--env'.")
    with user_errors():
        session = open_session(manifest_path, environment, select=select, chatbots=chatbots,
                               concurrency=concurrency, journal=journal, shard=shard,
                               transport=transport)
        rollout = session.manifest.rollout
        options = ApplyOptions(
            batches=batches or list(rollout.batches),
            max_failures=rollout.maxFailures if max_failures is None else max_failures,
            no_prune=no_prune,
            allow_deletes=allow_deletes,
            plan_run=plan_run,
            concurrency=session.concurrency,
            select=list(select),
            chatbots=list(chatbots),
            shard=session.selectors.get("shard"),
        )
        # Before any request: a protected environment without --yes needs a terminal.
        confirm = confirmer(environment, session.manifest.environments[environment].protected, yes)
        outcome = run(apply_run(session, options, confirm=confirm, reporter=reporter_for(quiet, verbose, no_color),
                                repin=parse_repin(session.manifest, repin)))
    finish(outcome, as_json, verbose)


def _apply_plan_file(path: str, environment: str | None, select: tuple[str, ...], chatbots: tuple[str, ...],
                     plan_run: str | None, batches: list[int | str] | None, max_failures: int | str | None,
                     no_prune: bool, allow_deletes: bool, yes: bool, concurrency: int | None, transport: Transport,
                     journal: str | None, as_json: bool, no_color: bool, verbose: bool, quiet: bool) -> None:
    """``apply FILE``: the plan decides the chatbots and the environment; selection options would contradict it."""
    if select or chatbots or plan_run or no_prune:
        raise click.UsageError("a plan file fixes its chatbots and operations: --select, --chatbot, --plan and "
                               "--no-prune do not apply to it")
    with user_errors():
        pf = load_plan_file(path)
        if environment is not None and environment != pf.environment:
            raise click.UsageError(f"the plan file plans '{pf.environment}', not '{environment}'")
        options = ApplyOptions(batches=batches or ["100%"], max_failures=0 if max_failures is None else max_failures,
                               allow_deletes=allow_deletes, concurrency=concurrency or pf.data.get("options", {}).get("concurrency") or 16)
        # The journal rule with the plan file standing in for the manifest: beside it unless told.
        journal_path = Path(journal) if journal else default_journal_path(pf.path)
        outcome = run(apply_plan_file(pf, options, journal_path, reporter=reporter_for(quiet, verbose, no_color),
                                      confirm_for=lambda env, protected: confirmer(env, protected, yes),
                                      transport=transport))
    finish(outcome, as_json, verbose)
