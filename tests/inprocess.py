"""``wizsync ARGS`` run inside the test process, the way ``python -m wizsync.cli ARGS`` runs it.

A real process pays ~1 s of imports per command; most tests care about what
the command did (exit code, output, files, journal, requests), not about the
process boundary. This runs ``wizsync.cli.main`` with what a fresh process
would have: its own ``os.environ`` (exactly ``env``), working folder,
``sys.argv``, stdin/stdout/stderr (click's ``CliRunner`` isolation: not a
terminal, no colour), and an exit code from ``SystemExit``. What escapes
``main`` (a bug ``main`` does not catch, a ``KeyboardInterrupt``) is written
to stderr as the interpreter would, so a test asserting "no traceback" still
sees one. Everything the ``wizsync`` loggers emit is returned too, for the
secret scan.

Everything process-wide is put back afterwards: environment, folder, argv,
the ``wizsync`` logger's level and handlers. Tests that need the boundary
itself (kill -9, signals, locks held by another process, the README
commands) start a real process instead (``SecretScan.run(..., process=True)``).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Mapping, Sequence

from click.testing import CliRunner

__all__ = ["run_in_process"]


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.levelname} {record.getMessage()}")


def _exit_code(code: object, stderr: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=stderr)  # sys.exit("message"): printed, exit 1
    return 1


def run_in_process(
    args: Sequence[str], *, cwd: str | os.PathLike[str], env: Mapping[str, str], input: str | bytes | None = None
) -> tuple[subprocess.CompletedProcess[str], str]:
    """(the result as ``subprocess.run`` would give it, the ``wizsync`` loggers' records as text)."""
    from wizsync import cli

    logger = logging.getLogger("wizsync")
    saved_env, saved_cwd, saved_argv = dict(os.environ), os.getcwd(), sys.argv
    saved_level, saved_handlers, saved_propagate = logger.level, list(logger.handlers), logger.propagate
    capture = _Capture()
    logger.addHandler(capture)
    logger.propagate = False  # the records are the scan's, not pytest's log capture
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    sys.argv = ["wizsync", *args]
    try:
        with CliRunner().isolation(input=input) as (out, err, _mixed):
            try:
                cli.main()
                code = 0
            except SystemExit as exc:
                code = _exit_code(exc.code, sys.stderr)
            except BaseException:  # what would end the interpreter with a traceback
                traceback.print_exc(file=sys.stderr)
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            stdout, stderr = out.getvalue(), err.getvalue()
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        logger.setLevel(saved_level)
        logger.handlers[:] = saved_handlers
        logger.propagate = saved_propagate
    result = subprocess.CompletedProcess(
        ["wizsync", *args], code, stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace")
    )
    return result, "\n".join(capture.lines)
