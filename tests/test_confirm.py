"""The confirmation prompt on a real terminal (``pty.openpty``): its answers, and a Ctrl-C at any instant.

The end-to-end Ctrl-C (a child wizsync on a pty, exit 130, nothing sent) is in test_signals.py.
Here the prompt alone, in this process: answers as ``click.confirm`` took them, and the case that
test could only hit by luck on a busy machine, a SIGINT whose handler is pending while the
prompt waits (it landed before the wait began, or on another thread): it still aborts.
"""

from __future__ import annotations

import os
import pty
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any, TextIO

import click
import pytest

from wizsync.commands.confirm import ask_yes_no


@pytest.fixture
def terminal() -> Iterator[tuple[int, TextIO]]:
    """(master fd to type on, the slave end as the prompt's stdin), canonical mode as a shell leaves it."""
    master, slave = pty.openpty()
    stream = os.fdopen(slave, "r", encoding="utf-8")
    try:
        yield master, stream
    finally:
        stream.close()
        os.close(master)


@pytest.mark.parametrize(("typed", "answer", "asked"), [
    (b"y\n", True, 1),
    (b"YES\n", True, 1),
    (b"n\n", False, 1),
    (b"\n", False, 1),  # Enter alone: the default is no
    (b"maybe\nyes\n", True, 2),  # asked again after an answer it does not take; the typed-ahead line is kept
])
def test_the_prompt_takes_the_answers_click_confirm_takes(terminal: tuple[int, TextIO], capsys: Any,
                                                          typed: bytes, answer: bool, asked: int) -> None:
    master, stream = terminal
    os.write(master, typed)
    assert ask_yes_no("Apply 3 changed chatbot(s)?", stream=stream) is answer
    err = capsys.readouterr().err
    assert err.count("Apply 3 changed chatbot(s)? [y/N]: ") == asked
    assert err.count("Error: invalid input") == asked - 1


def test_end_of_input_at_the_prompt_aborts(terminal: tuple[int, TextIO]) -> None:
    master, stream = terminal
    os.write(master, b"\x04")  # Ctrl-D on an empty line
    with pytest.raises(click.Abort):
        ask_yes_no("Apply?", stream=stream)


def test_a_ctrl_c_pending_while_the_prompt_waits_aborts_it(terminal: tuple[int, TextIO]) -> None:
    # The main thread blocks SIGINT, so the signal lands on another thread: its handler is pending
    # for the main thread, and nothing interrupts a read(2) there. input() then waited for Enter
    # (what a Ctrl-C landing just before its read did on a busy machine); the prompt must not.
    master, stream = terminal
    unstick = threading.Timer(10.0, os.write, (master, b"n\n"))  # a prompt that never looks: answer it, fail below

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    go = threading.Event()

    def send() -> None:
        go.wait()
        time.sleep(0.3)  # the prompt is waiting by now
        os.kill(os.getpid(), signal.SIGINT)

    previous = signal.signal(signal.SIGINT, interrupt)
    # Started before the main thread blocks SIGINT (a thread inherits its creator's mask): it takes the signal.
    sender = threading.Thread(target=send)
    sender.start()
    unstick.start()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    began = time.monotonic()
    try:
        go.set()
        with pytest.raises(KeyboardInterrupt):
            ask_yes_no("Apply?", stream=stream)
        assert time.monotonic() - began < 10.0
    finally:
        unstick.cancel()
        sender.join()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        signal.signal(signal.SIGINT, previous)
