"""``wizsync demo``: the main job end to end on the embedded emulator (logic in ``wizsync.demo``)."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import IO, Any

import click
from rich.text import Text

from wizchat_management import JSONObject

from wizsync.report.errordoc import emit
from wizsync.demo import DemoError, DemoResult, fresh_dir, run_demo
from wizsync.journal import Journal, JournalError
from wizsync.manifest import ManifestError
from wizsync.report.progress import make_reporter
from wizsync.report.terminal import color_enabled, make_console

from .runview import print_run, run_json

__all__ = ["demo"]


class _StreamUI:
    """The demo's steps as text on one stream (stdout, or stderr under --json)."""

    def __init__(self, stream: IO[str], no_color: bool) -> None:
        self.stream = stream
        self.no_color = no_color
        self.console = make_console(stream, color=color_enabled(stream, no_color=no_color, env=os.environ))

    def step(self, number: int, title: str) -> None:
        self.console.print()
        self.console.print(Text(f"== {number}. {title}", style="bold"))

    def line(self, text: str = "") -> None:
        self.console.print(text, markup=False, highlight=False)

    def rich(self, renderable: Any) -> None:
        self.console.print(renderable)

    def reporter(self, quiet: bool) -> Any:
        return make_reporter(self.stream, color=False if self.no_color else None, quiet=quiet)


def _finish(ui: _StreamUI, result: DemoResult, as_json: bool) -> None:
    summary = result.apply.summary
    ui.step(6, "Show the run from the journal (what `wizsync show` prints)")
    with Journal.open(result.paths.journal, readonly=True) as journal:
        # print_run writes to stdout; under --json stdout is the JSON document's alone.
        with contextlib.redirect_stdout(ui.stream):
            print_run(journal, result.paths.journal, summary.run_id, forbidden=result.apply.forbidden)
        document = None
        if as_json:
            extra: JSONObject = {"demo": {
                "dir": str(result.paths.dir), "manifest": str(result.paths.manifest), "base_url": result.base_url,
                "port": result.port, "plan_run": result.plan.run_id, "exported": result.exported,
                "commands": [command for _, command in result.commands],
            }}
            document = run_json(journal, result.paths.journal, summary.run_id, result.apply.forbidden, extra)
    ui.line()
    ui.line("The emulator has stopped; its state (after the rollout) is kept. Re-run any step by hand:")
    for what, command in result.commands:
        ui.line(f"  # {what}")
        ui.line(f"  {command}")
    if document is not None:
        emit(document)
    if not summary.ok:
        raise click.ClickException(f"the demo's apply run ended '{summary.status}': {summary.message or 'see above'}")


@click.command("demo")
@click.option("--dir", "directory", type=click.Path(file_okay=False), metavar="DIR",
              help="Working directory to create (default: a fresh ./wizsync-demo, ./wizsync-demo-2, ...).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Emulator port (0: any free port); the manifest points at it.")
@click.option("--json", "as_json", is_flag=True, help="The apply run's summary (JSON) on stdout; the steps on stderr.")
@click.option("-q", "--quiet", is_flag=True, help="No per-chatbot progress lines.")
@click.option("--no-color", is_flag=True, help="No colours (also: the NO_COLOR environment variable).")
def demo(directory: str | None, port: int, as_json: bool, quiet: bool, no_color: bool) -> None:
    """Run the whole job on a local emulator: export, render, plan, apply, show.

    Starts the embedded WizChat emulator with the demo fleet (3 tenants ×
    staging/production, ~20 chatbots each), writes a manifest and a keys file
    into DIR, promotes staging to production in batches (canary first) and
    shows the journaled run. Nothing to configure, no prompt. It ends with
    the commands to re-run each step by hand.

    \b
    Examples:
      wizsync demo
      wizsync demo --dir /tmp/demo --port 8787
      wizsync demo --json | jq .totals
    """
    target = Path(directory) if directory else fresh_dir(Path.cwd())
    ui = _StreamUI(sys.stderr if as_json else sys.stdout, no_color)
    try:
        result = run_demo(target, ui, port=port, quiet=quiet)
    except DemoError as exc:
        raise click.ClickException(str(exc)) from None
    except (ManifestError, JournalError) as exc:
        raise click.ClickException(f"the demo hit an error it should not have (please report it): {exc}") from None
    except OSError as exc:
        raise click.ClickException(f"cannot run the demo in {target}: {exc.strerror or exc}") from None
    _finish(ui, result, as_json)
