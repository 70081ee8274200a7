"""``--log-file``: a plain-text log of a command's events, through python ``logging``.

Everything wizsync logs goes to the ``wizsync`` logger. Without ``--log-file``
it has only a ``NullHandler`` (no output, and python's last-resort handler
never prints a stray warning). With it, one ``FileHandler`` appends
timestamped lines: the command, each progress event the reporter sees (run
start, batch start, every chatbot's outcome, 429/retry counts, messages),
errors, and the exit code.

Log records carry names, labels (``acme/production``) and states, never a
key or a secret value: the messages are built from the same data as the
terminal output. As a second line of defence a filter masks anything shaped
like an API key before a record is written.

Every line names its run (``run=r20261201-...``), so the log of a failed CI
job says which run to ``show``/``resume``. The id is known once the journal
records the run (a record with ``wizsync_run_id``, logged by the journal);
lines logged before that are held and written with it. A command that
records no run (``validate``, a plan refused before it started) writes
``run=-``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import click

from wizchat_management import API_KEY_RE

__all__ = ["LOGGER", "open_log_file", "close_log_file", "start_logging", "LoggingReporter", "LoggedGroup"]

LOGGER = logging.getLogger("wizsync")
LOGGER.addHandler(logging.NullHandler())

_FORMAT = "%(asctime)s %(levelname)-7s run=%(run_id)s %(message)s"
# Lines held until the run id is known; beyond this many they are written with ``run=-``.
_HOLD = 1000


class _MaskKeys(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        masked = API_KEY_RE.sub("wpk_***", text)
        if masked != text:
            record.msg, record.args = masked, None
        return True


class _RunLogHandler(logging.FileHandler):
    """A file handler that stamps each record with the current run id, holding records until it is known."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path, mode="a", encoding="utf-8")
        self.run_id: str | None = None
        self._held: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        announced = getattr(record, "wizsync_run_id", None)
        if announced:
            self.run_id = str(announced)
        if self.run_id is None and len(self._held) < _HOLD:
            self._held.append(record)
            return
        self._release()
        record.run_id = self.run_id or "-"
        super().emit(record)

    def _release(self) -> None:
        held, self._held = self._held, []
        for record in held:
            record.run_id = self.run_id or "-"
            super().emit(record)

    def close(self) -> None:
        self.acquire()
        try:
            self._release()
        finally:
            self.release()
        super().close()


def open_log_file(path: str | os.PathLike[str]) -> logging.Handler:
    """Append the ``wizsync`` logger's records to ``path`` (created, parents too); returns the handler."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handler = _RunLogHandler(path)
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(_MaskKeys())
    handler.setLevel(logging.DEBUG)
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.DEBUG)
    return handler


def close_log_file(handler: logging.Handler) -> None:
    LOGGER.removeHandler(handler)
    handler.close()


_ATTENTION = frozenset({"failed", "drifted", "error", "halted"})


class LoggingReporter:
    """Forwards every progress call to ``inner`` (the terminal reporter) and logs it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._keys: dict[str, tuple[int, int, int]] = {}
        self._batches: int | None = None

    def start(self, total: int, labels: Mapping[str, int] | Iterable[str] = (), batches: int | None = None, title: str = "") -> None:
        self._batches = batches
        tenants = len(set(labels))
        LOGGER.info("%s: %d chatbot(s), %d tenant(s)%s", title or "run", total, tenants,
                    f", {batches} batch(es)" if batches else "")
        self.inner.start(total, labels, batches=batches, title=title)

    def batch_started(self, n: int, size: int) -> None:
        LOGGER.info("batch %d%s started: %d chatbot(s)", n, f"/{self._batches}" if self._batches else "", size)
        self.inner.batch_started(n, size)

    def item_done(self, name: str, tenant: str, state: str, detail: str = "") -> None:
        level = logging.WARNING if state in _ATTENTION else logging.INFO
        LOGGER.log(level, "%s (%s): %s%s", name, tenant, state, f" {detail}" if detail else "")
        self.inner.item_done(name, tenant, state, detail)

    def phase(self, title: str, total: int | None = None) -> None:
        LOGGER.info("%s: started%s", title, f" ({total})" if total else "")
        self.inner.phase(title, total)

    def advance(self, n: int = 1) -> None:
        self.inner.advance(n)

    def keys(self, states: Mapping[str, Any]) -> None:
        self.inner.keys(states)

    def request_event(self, label: str, context: str | None, kind: str, detail: Mapping[str, Any]) -> None:
        # Waits (and capped waits) are logged by the engine itself (logger wizsync.engine).
        if kind in ("retry", "throttled"):
            from ..report.progress import event_line

            LOGGER.info("%s", event_line(label, context, kind, detail))
        self.inner.request_event(label, context, kind, detail)

    def pause(self) -> None:
        self.inner.pause()

    def unpause(self) -> None:
        self.inner.unpause()

    def message(self, text: str) -> None:
        LOGGER.info("%s", text)
        self.inner.message(text)

    def finish(self) -> None:
        LOGGER.info("progress finished")
        self.inner.finish()


class LoggedGroup(click.Group):
    """A click group that logs which command ran and how it ended (error message, exit code)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = super().invoke(ctx)
        except click.exceptions.Exit as exc:
            LOGGER.debug("exit %s", exc.exit_code)
            raise
        except click.ClickException as exc:
            LOGGER.error("%s (exit %s)", exc.format_message(), exc.exit_code)
            raise
        except SystemExit as exc:
            LOGGER.info("exit %s", exc.code)
            raise
        except click.Abort:
            LOGGER.error("aborted")
            raise
        except Exception as exc:
            LOGGER.error("internal error: %s", type(exc).__name__)
            raise
        LOGGER.info("exit 0")
        return result


def start_logging(ctx: click.Context, log_file: str | None, version: str) -> None:
    """The group's part: open ``--log-file`` for this command (closed with the context), log the start."""
    if log_file:
        try:
            handler = open_log_file(log_file)
        except OSError as exc:
            raise click.ClickException(
                f"cannot write the log file {log_file}: {exc.strerror or exc}. "
                "Pass a writable path to --log-file (or unset WIZSYNC_LOG_FILE)"
            ) from None
        ctx.call_on_close(lambda: close_log_file(handler))
    # Which command, version and process; never its arguments (they may hold an admin token).
    sub = ctx.invoked_subcommand or "-"
    LOGGER.info("wizsync %s %s (pid %d, python %s)", version, sub, os.getpid(), sys.version.split()[0])
