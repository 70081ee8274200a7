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


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """wizsync's retry backoff (0.5 s · 2ⁿ, capped at 8 s) a tenth as long, for this test's in-process runs.

    For tests that count retries and check where a run ends, not how long it waited (the waits
    themselves are tests/test_engine_retry.py's); a real wizsync process keeps the real backoff.
    """
    from wizsync.engine import retry
    from wizsync.engine.executor import Executor

    executor_defaults = Executor.__init__.__kwdefaults__
    delay_defaults = retry.backoff_delay.__kwdefaults__
    assert executor_defaults["backoff_base"] == delay_defaults["base"] == 0.5, "the backoff defaults moved"
    assert executor_defaults["backoff_cap"] == delay_defaults["cap"] == 8.0, "the backoff defaults moved"
    for defaults, base, cap in ((executor_defaults, "backoff_base", "backoff_cap"), (delay_defaults, "base", "cap")):
        monkeypatch.setitem(defaults, base, 0.05)
        monkeypatch.setitem(defaults, cap, 0.8)
