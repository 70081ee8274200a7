"""The ``wizsync`` command line: thin click commands over the library.

Each command lives in ``wizsync/commands/<name>.py`` and is registered in
``COMMANDS``; library errors become ``click.ClickException`` at that edge,
never a traceback. A command's module is imported only when that command
runs (``validate`` does not pay for the emulator's web stack).
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from . import __version__
from .logfile import LoggedGroup, start_logging

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "WIZSYNC"}

# name -> "module:attribute" of the click command.
COMMANDS = {
    "validate": "wizsync.commands.validate:validate",
    "render": "wizsync.commands.render:render",
    "export": "wizsync.commands.export:export",
    "plan": "wizsync.commands.plan:plan",
    "apply": "wizsync.commands.apply:apply",
    "resume": "wizsync.commands.resume:resume",
    "rollback": "wizsync.commands.rollback:rollback",
    "runs": "wizsync.commands.history:runs",
    "show": "wizsync.commands.history:show",
    "emulator": "wizchat_management.emulator.cli:emulator_command",
    "demo": "wizsync.commands.demo:demo",
}


class LazyGroup(LoggedGroup):
    """Imports a command's module when the command is looked up (click's lazy-loading pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS and name not in self.commands:
            module, attribute = COMMANDS[name].split(":")
            self.add_command(getattr(importlib.import_module(module), attribute), name)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS)
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
