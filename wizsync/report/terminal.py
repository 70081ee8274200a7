"""Colour or not, and a rich Console that honours that choice exactly.

Colour is on only when the stream is a TTY, ``--no-color`` was not given,
``NO_COLOR`` is unset or empty (https://no-color.org) and ``TERM`` is not
``dumb``. A plain console emits no escape sequence at all, whatever rich
would guess from the environment (``FORCE_COLOR``, ``TTY_COMPATIBLE``...).
"""

from __future__ import annotations

import os
import sys
from typing import IO, TYPE_CHECKING, Mapping

if TYPE_CHECKING:  # imported when a console is made: a --json run never makes one
    from rich.console import Console


def is_tty(stream: IO[str] | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # closed or exotic streams
        return False


def color_enabled(
    stream: IO[str] | None = None,
    no_color: bool = False,
    env: Mapping[str, str] | None = None,
    tty: bool | None = None,
) -> bool:
    """Whether human output on ``stream`` should be coloured."""
    env = os.environ if env is None else env
    if no_color or env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    return is_tty(stream if stream is not None else sys.stderr) if tty is None else tty


def make_console(stream: IO[str] | None = None, color: bool = False, width: int | None = None) -> Console:
    """A Console on ``stream``: ANSI styles when ``color``, otherwise bytes-plain text."""
    from rich.console import Console

    stream = stream if stream is not None else sys.stderr
    if color:
        return Console(
            file=stream, force_terminal=True, highlight=False, emoji=False, soft_wrap=True, width=width
        )
    # color_system=None turns every style into plain text; force_terminal=False
    # keeps rich from drawing cursor movements; soft_wrap keeps lines whole.
    return Console(
        file=stream,
        force_terminal=False,
        color_system=None,
        no_color=True,
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=True,
        width=width or 200,
        force_jupyter=False,
    )
