"""Shared pytest fixtures (keep small: other areas add theirs here too)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from wizchat_management.emulator import EmulatorServer


@pytest.fixture(autouse=True)
def lock_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own run-lock folder (``WIZSYNC_LOCK_DIR``, passed on to the wizsync processes it starts),
    so tests running at once never meet each other's locks, nor the developer's."""
    path = tmp_path_factory.mktemp("locks")
    monkeypatch.setenv("WIZSYNC_LOCK_DIR", str(path))
    return path


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    """A fresh emulator (demo seed, no limit, no faults) on 127.0.0.1:<ephemeral port>.

    ``emulator.base_url``, ``emulator.keys["acme/staging"]``, ``emulator.key_env``,
    ``emulator.state``, ``emulator.set_faults(...)``, ``emulator.set_limits(...)``.
    """
    with EmulatorServer(seed="demo") as emu:
        yield emu


@pytest.fixture
def secret_scan() -> Iterator[object]:
    """A ``SecretScan`` (tests/secret_scan.py): register keys and secrets, run wizsync through ``scan.run``,
    ``scan.watch(dir)`` / ``scan.watch_journal(path)``; the test fails at teardown if any value leaked."""
    from secret_scan import SecretScan

    scan = SecretScan()
    yield scan
    scan.check()
