"""The confirmation a protected environment asks for, read so that one Ctrl-C aborts at any instant.

``click.confirm`` writes the question, then blocks in ``input()``, that is in read(2) on the
terminal. Python runs a signal's handler only between bytecodes, or when a blocking call is
interrupted: a Ctrl-C that lands after the question is written but before that read begins
(a busy machine widens the gap) trips the handler's flag, the read then blocks, and the
interrupt is only seen after Enter. Here the answer is awaited in short ``select`` calls, with
Python code between them, so a pending Ctrl-C raises ``KeyboardInterrupt`` within ``_POLL``
seconds wherever it landed (``wizsync.run.signals`` turns it into the run's end).
"""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Callable
from typing import TextIO

import click

__all__ = ["confirmer", "ask_yes_no"]

_POLL = 0.1  # seconds between looks at a pending signal while the question waits
_YES = ("y", "yes")
_NO = ("n", "no")


def _read_line(stream: TextIO) -> str:
    """One line typed on the terminal ``stream`` ("" at end of input), in short waits.

    Read from the descriptor, not the buffered stream: a line typed ahead stays in the
    terminal's queue, where ``select`` sees it, instead of in a buffer it does not.
    """
    fd = stream.fileno()
    while not select.select([fd], [], [], _POLL)[0]:
        pass
    return os.read(fd, 4096).decode(stream.encoding or "utf-8", "replace")


def ask_yes_no(question: str, *, stream: TextIO | None = None) -> bool:
    """``click.confirm(question, default=False, err=True)``'s question and answers, read as above.

    Enter alone is no; anything but y/yes/n/no asks again; end of input aborts (``click.Abort``).
    """
    stream = stream if stream is not None else sys.stdin
    while True:
        click.echo(f"{question} [y/N]: ", nl=False, err=True)
        line = _read_line(stream)
        if not line:
            click.echo(err=True)
            raise click.Abort()
        answer = line.strip().lower()
        if answer in _YES:
            return True
        if answer in _NO or not answer:
            return False
        click.echo("Error: invalid input", err=True)


def confirmer(environment: str, protected: bool, yes: bool) -> Callable[[str], bool] | None:
    """None when no question is needed; else a prompt; refuses when there is no terminal to ask on."""
    if yes or not protected:
        return None
    if not sys.stdin.isatty():
        raise click.ClickException(
            f"'{environment}' is a protected environment and there is no terminal to confirm on: "
            "review the plan, then pass --yes"
        )

    def ask(question: str) -> bool:
        return ask_yes_no(f"{question} ('{environment}' is protected)")

    return ask
