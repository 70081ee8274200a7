"""Options and error handling shared by the commands that call the API.

Library errors become ``click.ClickException`` here, at the edge: one
paragraph, exit 1, never a traceback.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from wizsync.engine import DEFAULT_HTTP_BACKEND, DEFAULT_REQUEST_TIMEOUT, HTTP_BACKENDS, MAX_RESPONSE_BYTES, Transport, UnsupportedProxy
from wizsync.journal import JournalError
from wizsync.commands.logfile import LoggingReporter
from wizsync.manifest import ManifestError, ManifestErrors
from wizsync.report.progress import Reporter, make_reporter
from wizsync.report.terminal import color_enabled, make_console
from wizsync.run.signals import Forced, RunStopped
from wizsync.fleet.shards import ShardSpec, parse_shard

__all__ = [
    "manifest_argument",
    "env_option",
    "selection_options",
    "journal_option",
    "concurrency_option",
    "repin_option",
    "shard_option",
    "transport_options",
    "output_options",
    "user_errors",
    "click_error",
    "tag",
    "reporter_for",
    "stdout_console",
]

F = TypeVar("F", bound=Callable[..., Any])

manifest_argument = click.argument("manifest_path", metavar="MANIFEST", type=click.Path(dir_okay=False))
env_option = click.option("--env", "environment", required=True, metavar="ENV", help="Target environment.")
journal_option = click.option(
    "--journal",
    "journal",
    metavar="PATH",
    type=click.Path(dir_okay=False),
    envvar="WIZSYNC_JOURNAL",
    help="SQLite journal (default: .wizsync/journal.db beside the manifest; env: WIZSYNC_JOURNAL).",
)
repin_option = click.option(
    "--repin", "repin", multiple=True, metavar="TENANT/ENV", allow_from_autoenv=False,
    help="Trust what this target's key sees now, replacing what the journal pinned (repeatable; docs/safety.md \"Wrong target\").",
)
concurrency_option = click.option(
    "--concurrency",
    type=click.IntRange(1, 1024),
    metavar="N",
    envvar="WIZSYNC_CONCURRENCY",
    help="Requests in flight overall (default: rollout.concurrency, else 16; env: WIZSYNC_CONCURRENCY).",
)


def _shard(ctx: click.Context, param: click.Parameter, value: str | None) -> ShardSpec | None:
    if value is None:
        return None
    try:
        return parse_shard(value, os.environ)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


shard_option = click.option(
    "--shard", callback=_shard, metavar="I/N",
    help="Only shard I of N (1-based; auto/N: I is JOB_COMPLETION_INDEX + 1), split by tenant key before any "
    "request; journal default: journal-shard-I-of-N.db beside the default one. See docs/shards.md.",
)


def transport_options(f: F) -> F:
    """``--request-timeout`` and ``--http-backend``, handed to the command as one ``transport: Transport``."""

    @functools.wraps(f)
    def wrapper(*args: Any, request_timeout: float | None, http_backend: str | None, **kwargs: Any) -> Any:
        transport = Transport(backend=http_backend or DEFAULT_HTTP_BACKEND,  # type: ignore[arg-type]
                              request_timeout=request_timeout or DEFAULT_REQUEST_TIMEOUT)
        return f(*args, transport=transport, **kwargs)

    wrapper = click.option(
        "--http-backend",
        type=click.Choice(HTTP_BACKENDS),
        envvar="WIZSYNC_HTTP_BACKEND",
        help=f"HTTP client under the engine: aiohttp (default, least CPU per request) or httpx (pure Python) "
        "(env: WIZSYNC_HTTP_BACKEND).",
    )(wrapper)
    wrapper = click.option(
        "--request-timeout",
        type=click.FloatRange(0, 24 * 3600, min_open=True),
        metavar="SECONDS",
        envvar="WIZSYNC_REQUEST_TIMEOUT",
        help=f"Overall deadline of one request: connect, headers and the whole body (default "
        f"{DEFAULT_REQUEST_TIMEOUT:g} s); a request past it is retried like any lost answer. Answers over "
        f"{MAX_RESPONSE_BYTES // (1024 * 1024)} MiB are refused unread (env: WIZSYNC_REQUEST_TIMEOUT).",
    )(wrapper)
    return wrapper  # type: ignore[return-value]


def selection_options(f: F) -> F:
    f = click.option(
        "--chatbot", "chatbots", multiple=True, metavar="GLOB", help="Only chatbots matching: an address tenant/name, or a bare name (every tenant); globs allowed (repeatable)."
    )(f)
    f = click.option(
        "--select", "select", multiple=True, metavar="EXPR", help="Label filter, e.g. tier=gold,wave!=canary (repeatable: AND)."
    )(f)
    return f


def output_options(f: F) -> F:
    f = click.option("--json", "as_json", is_flag=True, help="Machine output (JSON) on stdout; human text on stderr.")(f)
    f = click.option("--no-color", is_flag=True, help="No colours (also: the NO_COLOR environment variable).")(f)
    f = click.option("-v", "--verbose", is_flag=True, help="Show unchanged chatbots and every request event.")(f)
    f = click.option("-q", "--quiet", is_flag=True, help="Only failures and the final summary.")(f)
    return f


# A ManifestError about one of these names a bad command-line argument: a usage error (exit 2, spec).
_OPTION_KEYS = {"--env", "--select", "--chatbot"}


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's user-facing errors into a one-paragraph click error (exit 1; 2 for a bad option)."""
    try:
        yield
    except (ManifestError, JournalError) as exc:
        raise click_error(exc) from None
    except UnsupportedProxy as exc:
        raise click.ClickException(str(exc)) from None
    except RunStopped as stop:  # a plan stopped by a signal (apply/resume/rollback return an outcome instead)
        raise click.ClickException(f"run {stop.run_id} {stop}: it ended interrupted; what finished is journalled") from None
    except Forced as forced:  # a second signal: stopped at once, the run recorded `interrupted`
        if forced.run_id:
            click.echo(f"\n{forced}: run {forced.run_id} ended interrupted at once; an apply in flight may have "
                       f"reached the server. Resume: wizsync resume {forced.run_id}", err=True)
        sys.exit(128 + forced.signum)


class ManyErrors(click.ClickException):
    """Every problem of a ``ManifestErrors``, each its own ``Error:`` paragraph, then the count (exit 1)."""

    def __init__(self, exc: ManifestErrors) -> None:
        super().__init__(str(exc))
        self.errors = exc.errors

    def show(self, file: Any = None) -> None:
        for error in self.errors:
            click.echo(f"Error: {error}\n", err=True)
        click.echo(f"{len(self.errors)} problems found.", err=True)


def click_error(exc: ManifestError | JournalError) -> click.ClickException:
    """The click error for a library error: a usage error (exit 2) when it names a bad option.

    It carries the error's code and location for the ``--json`` error document (``report.errordoc``).
    """
    err: click.ClickException
    if isinstance(exc, ManifestErrors) and len(exc.errors) > 1:
        many = ManyErrors(exc)
        return tag(many, "manifest_error", exc.errors[0], count=len(exc.errors))
    if isinstance(exc, ManifestError) and exc.key in _OPTION_KEYS:
        err = click.UsageError(str(exc), ctx=click.get_current_context(silent=True))
    else:
        err = click.ClickException(str(exc))
    return tag(err, error_code_of(exc), exc)


def error_code_of(exc: BaseException) -> str:
    from wizsync.journal import RunLockedError

    if isinstance(exc, ManifestError):
        return "usage_error" if exc.key in _OPTION_KEYS else "manifest_error"
    if isinstance(exc, RunLockedError):
        return "locked"
    if type(exc).__name__ == "RefusedError":  # wizsync.run.flows.RefusedError, not imported for one name
        return "refused"
    if isinstance(exc, JournalError):
        return "journal_error"
    return "error"


def tag(err: click.ClickException, code: str, source: BaseException | None = None, *, count: int = 1) -> click.ClickException:
    """Attach the ``--json`` error fields (code; file, line, key of a ManifestError) to a click error.

    Of several problems, the first locates the error and the message says how many more there are.
    """
    from wizsync.report.errordoc import ErrorInfo

    file = getattr(source, "file", None)
    line = getattr(source, "line", None)
    key = getattr(source, "key", None)
    message = str(source) if count > 1 else err.format_message()
    if count > 1:
        message += f" ({count - 1} more problem(s): see stderr or `wizsync validate --json`)"
    err.wizsync_error = ErrorInfo(code, message, file=file, line=line, key=key)  # type: ignore[attr-defined]
    return err


def reporter_for(quiet: bool, verbose: bool, no_color: bool) -> Reporter:
    color = None if not no_color else False
    # Every progress event also goes to --log-file (a no-op without it).
    return LoggingReporter(make_reporter(sys.stderr, color=color, quiet=quiet, verbose=verbose))


def stdout_console(no_color: bool) -> Any:
    return make_console(sys.stdout, color=color_enabled(sys.stdout, no_color=no_color, env=os.environ))


def with_user_errors(f: F) -> F:
    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with user_errors():
            return f(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
