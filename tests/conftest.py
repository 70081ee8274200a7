"""Shared pytest fixtures (keep small: other areas add theirs here too)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wizchat_management.emulator import EmulatorServer


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    """A fresh emulator (demo seed, no limit, no faults) on 127.0.0.1:<ephemeral port>.

    ``emulator.base_url``, ``emulator.keys["acme/staging"]``, ``emulator.key_env``,
    ``emulator.state``, ``emulator.set_faults(...)``, ``emulator.set_limits(...)``.
    """
    with EmulatorServer(seed="demo") as emu:
        yield emu
