"""The ``wizsync`` command line: thin click commands over the library.

Each command lives in ``wizsync/commands/<name>.py`` and is registered below;
library errors become ``click.ClickException`` at that edge, never a traceback.
"""

from __future__ import annotations

import click

from . import __version__

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "WIZSYNC"}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="wizsync")
def cli() -> None:
    """Fleet config-as-code for WizChat chatbots.

    \b
    manifest → render → plan → apply (ordered batches) → journal → report

    \b
    Examples:
      wizsync demo                                  # the whole job on a local emulator
      wizsync plan wizsync.yaml --env production    # dry-run every chatbot
      wizsync apply wizsync.yaml --env production   # roll out in batches
    """


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


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
