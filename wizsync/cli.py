"""The ``wizsync`` command line: thin click commands over the library.

Each command lives in ``wizsync/commands/<name>.py`` and is registered below;
library errors become ``click.ClickException`` at that edge, never a traceback.
"""

from __future__ import annotations

import os
import sys

import click

from . import __version__
from .logfile import LoggedGroup, start_logging

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "WIZSYNC"}


@click.group(cls=LoggedGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="wizsync")
@click.option(
    "--log-file",
    metavar="PATH",
    type=click.Path(dir_okay=False),
    envvar="WIZSYNC_LOG_FILE",
    show_envvar=True,
    help="Append a plain-text log of the command's events to PATH (labels and states; never a key or secret).",
)
@click.pass_context
def cli(ctx: click.Context, log_file: str | None) -> None:
    """Fleet config-as-code for WizChat chatbots.

    \b
    manifest → render → plan → apply (ordered batches) → journal → report

    \b
    Examples:
      wizsync demo                                  # the whole job on a local emulator
      wizsync plan wizsync.yaml --env production    # dry-run every chatbot
      wizsync apply wizsync.yaml --env production   # roll out in batches

    Options of every command also read WIZSYNC_<COMMAND>_<OPTION> environment
    variables (e.g. WIZSYNC_PLAN_CONCURRENCY=8); see docs/cli.md.
    """
    start_logging(ctx, log_file, __version__)


from wizchat_management.emulator.cli import emulator_command  # noqa: E402

cli.add_command(emulator_command, "emulator")

from .commands.render import render  # noqa: E402
from .commands.validate import validate  # noqa: E402

cli.add_command(validate)
cli.add_command(render)

from .commands.plan import plan  # noqa: E402

cli.add_command(plan)

from .commands.export import export  # noqa: E402

cli.add_command(export)

from .commands.apply import apply  # noqa: E402
from .commands.history import runs, show  # noqa: E402
from .commands.resume import resume  # noqa: E402
from .commands.rollback import rollback  # noqa: E402

cli.add_command(apply)
cli.add_command(resume)
cli.add_command(rollback)
cli.add_command(runs)
cli.add_command(show)

from .commands.demo import demo  # noqa: E402

cli.add_command(demo)


def main() -> None:
    """Entry point: a bug shows as one paragraph (WIZSYNC_DEBUG=1 for the traceback), never a secret."""
    try:
        cli(standalone_mode=True)
    except Exception as exc:  # click handles its own errors; this is only what escaped as a bug
        if os.environ.get("WIZSYNC_DEBUG"):
            raise
        click.echo(
            f"wizsync: internal error: {type(exc).__name__}. This is a bug in wizsync; nothing more was sent. "
            "Re-run with WIZSYNC_DEBUG=1 for the traceback and report it.",
            err=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
