"""The ``wizsync`` command line: thin click commands over the library.

Each command lives in ``wizsync/commands/<name>.py`` and is registered in
``COMMANDS``; library errors become ``click.ClickException`` at that edge,
never a traceback. A command's module is imported only when that command
runs (``validate`` does not pay for the emulator's web stack), and ``--help``
imports none.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import os
import sys

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from . import __version__
from .commands.logfile import LoggedGroup, start_logging

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "WIZSYNC"}

# name -> ("module:attribute" of the click command, its one-line summary). The group's --help lists
# the summaries, so it imports no command (tests/test_cli_docs.py checks each is the command's own).
COMMANDS = {
    "validate": ("wizsync.commands.validate:validate",
                 "Check a manifest: schema, references, templates, secrets, key files."),
    "render": ("wizsync.commands.render:render",
               "Print the desired config documents of ENV, secrets shown as <secret:NAME>."),
    "export": ("wizsync.commands.export:export",
               "Write the live config of every selected chatbot of ENV to DIR/<env>/<tenant>/<name>.yaml."),
    "plan": ("wizsync.commands.plan:plan",
             "Dry-run every selected chatbot of ENV on the server and show the diffs."),
    "apply": ("wizsync.commands.apply:apply",
              "Apply the manifest to ENV in ordered batches, journaling every result; or apply a plan file."),
    "resume": ("wizsync.commands.resume:resume", "Continue run RUN_ID with its recorded options."),
    "rollback": ("wizsync.commands.rollback:rollback",
                 "Re-apply the config each chatbot had before run RUN_ID, as a run of its own."),
    "runs": ("wizsync.commands.history:runs", "List the runs in the journal(s), newest first."),
    "show": ("wizsync.commands.history:show",
             "Show a run: status, per-batch and per-chatbot states, errors, counts, durations."),
    "emulator": ("wizchat_management.emulator.cli:emulator_command",
                 "Run a local WizChat Management API emulator (stateful, on loopback)."),
    "demo": ("wizsync.commands.demo:demo",
             "Run the whole job on a local emulator: export, render, plan, apply, show."),
}


def _json_requested(args: list[str], environ: os._Environ[str] | dict[str, str]) -> tuple[str | None, bool]:
    """(subcommand, whether it was asked for JSON): ``--json``, ``--format json`` or WIZSYNC_<CMD>_AS_JSON."""
    if not args:
        return None, False
    command, rest = args[0], args[1:]
    if "--" in rest:
        rest = rest[: rest.index("--")]
    if "--json" in rest or "--format=json" in rest:
        return command, True
    if any(a == "--format" and b == "json" for a, b in zip(rest, rest[1:])):
        return command, True
    value = environ.get(f"WIZSYNC_{command.upper()}_AS_JSON", "").strip().lower()
    return command, value in ("1", "true", "yes", "on", "t", "y")


if TYPE_CHECKING:
    from .report.errordoc import ErrorInfo


def _error_info(exc: BaseException) -> ErrorInfo:
    from .report.errordoc import ErrorInfo

    tagged = getattr(exc, "wizsync_error", None)
    if isinstance(tagged, ErrorInfo):  # set by commands.common (a click error with a file/line/key)
        return tagged
    if isinstance(exc, click.UsageError):
        return ErrorInfo("usage_error", exc.format_message())
    if isinstance(exc, click.ClickException):
        return ErrorInfo("error", exc.format_message())
    if isinstance(exc, (click.Abort, KeyboardInterrupt)):
        return ErrorInfo("aborted", "aborted")
    return ErrorInfo("internal_error", f"internal error: {type(exc).__name__}; this is a bug in wizsync")


def _emit_error(command: str | None, exit_code: int, exc: BaseException) -> None:
    """The one JSON document of a failing ``--json`` command, unless it wrote its own already."""
    from .report.errordoc import dumps_error, error_document, written

    if not written():
        sys.stdout.write(dumps_error(error_document(command, exit_code, _error_info(exc))))
        sys.stdout.flush()


class LazyGroup(LoggedGroup):
    """Imports a command's module when the command is looked up (click's lazy-loading pattern).

    With ``--json`` an error that ends the command also prints the error document on stdout.
    """

    def invoke(self, ctx: click.Context) -> object:
        from .report.errordoc import reset

        reset()
        command, as_json = _json_requested([*getattr(ctx, "_protected_args", []), *ctx.args], os.environ)
        ctx.meta["wizsync.json"] = (command, as_json)
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            if as_json:
                _emit_error(command, exc.exit_code, exc)
            raise
        except click.Abort as exc:
            if as_json:
                _emit_error(command, 1, exc)
            raise

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's command list, from the summaries of the commands not loaded (their modules stay unimported)."""
        commands = []
        for name in self.list_commands(ctx):
            cmd = self.commands.get(name) or click.Command(name, help=COMMANDS[name][1])
            if not cmd.hidden:
                commands.append((name, cmd))
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _ in commands)
            with formatter.section("Commands"):
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in commands])

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS and name not in self.commands:
            module, attribute = COMMANDS[name][0].split(":")
            with _collector_paused():
                command = getattr(importlib.import_module(module), attribute)
            self.add_command(command, name)
        return super().get_command(ctx, name)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Import without the cycle collector, then set what was imported aside from it (``gc.freeze``).

    A command's imports are ~100,000 objects that live until exit and hold no
    garbage: collecting during them, and traversing them in every later full
    collection, is CPU spent before the first request and between answers.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


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
    # At exit, after every command has closed what it opened: the interpreter's teardown runs the
    # cycle collector over the whole heap several times (~0.17 s of CPU after a 1,000-chatbot plan).
    # Frozen, it does not; refcounting still frees and finalizes everything else, the journal is
    # committed and closed already, and Python never promised __del__ of what lives at exit
    # (https://docs.python.org/3/reference/datamodel.html#object.__del__).
    _register_exit_freeze()
    _skip_httpx_cli()
    try:
        cli(standalone_mode=True)
    except Exception as exc:  # click handles its own errors; this is only what escaped as a bug
        if os.environ.get("WIZSYNC_DEBUG"):
            raise
        command, as_json = _json_requested(sys.argv[1:] if sys.argv[1:2] != ["--log-file"] else sys.argv[3:], os.environ)
        if as_json:
            _emit_error(command, 1, exc)
        click.echo(
            f"wizsync: internal error: {type(exc).__name__}. This is a bug in wizsync; nothing more was sent. "
            "Re-run with WIZSYNC_DEBUG=1 for the traceback and report it.",
            err=True,
        )
        sys.exit(1)
    finally:
        # What the command froze goes back to the collector: a caller running main() in-process
        # (tests/inprocess.py) keeps an ordinary heap; a process exiting freezes it again at exit.
        gc.unfreeze()


_exit_freeze: list[bool] = []


def _skip_httpx_cli() -> None:
    """Keep httpx from importing its own command-line client into this process.

    ``import httpx`` imports ``httpx._main`` (rich's console, progress, syntax and
    pygments: ~50 ms before a command's first request) whenever those happen to
    be installed, and falls back to a stub when that import fails. wizsync never
    runs httpx's CLI; a ``None`` in ``sys.modules`` makes that one import fail
    (https://docs.python.org/3/reference/import.html#the-module-cache).
    """
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def _register_exit_freeze() -> None:
    if not _exit_freeze:  # once per process, however often main() runs in it
        atexit.register(gc.freeze)
        _exit_freeze.append(True)


if __name__ == "__main__":
    main()
