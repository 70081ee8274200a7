"""Secret scan: fail a test when an API key or a secret value reached anything wizsync printed, wrote or journaled.

A test registers the values that must never show (every emulator key, every
``${secret:...}`` value it put in the environment), runs wizsync through
``scan.run(...)`` (in-process, or a real subprocess with ``process=True``;
its stdout/stderr and log records are kept), and names
the directories and journals wizsync wrote. ``scan.check()`` (also run by the
``secret_scan`` fixture at teardown) looks for each value in each place,
raw and JSON-escaped, and for anything shaped like a WizChat API key. A
finding names the secret and the place, never the value.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["SecretScan", "wizsync_env", "API_KEY_RE"]

# openapi.json `bearerAuth`: wpk_live_/wpk_test_ + url-safe characters.
API_KEY_RE = re.compile(r"wpk_(?:live|test)_[A-Za-z0-9_-]{16,}")


def wizsync_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without any WizChat key or WIZSYNC_* setting (but the test's lock folder), plus ``extra``."""
    # WIZSYNC_LOCK_DIR stays: it is the test's own lock folder (conftest.py), never the developer's.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WIZCHAT_", "WIZSYNC_")) or k == "WIZSYNC_LOCK_DIR"}
    env.pop("NO_COLOR", None)
    # Tests talk to 127.0.0.1 only: a proxy of the machine running them never applies.
    for name in [k for k in env if k.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")]:
        del env[name]
    env.update(extra or {})
    return env


def _forms(value: str) -> set[str]:
    return {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}


def journal_dump(path: Path) -> str:
    """Every table of a journal as SQL text (sqlite3 ``iterdump``), opened read-only."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


class SecretScan:
    def __init__(self) -> None:
        self._values: dict[str, str] = {}
        self._outputs: list[tuple[str, str]] = []
        self._paths: list[Path] = []
        self._journals: list[Path] = []

    # -- what must never show -------------------------------------------------------
    def register(self, name: str, value: str) -> None:
        assert len(value) >= 8, f"secret {name} is too short to scan for meaningfully"
        self._values[name] = value

    def register_all(self, values: Mapping[str, str]) -> None:
        for name, value in values.items():
            self.register(name, value)

    @property
    def values(self) -> dict[str, str]:
        return dict(self._values)

    # -- where to look ----------------------------------------------------------------
    def record(self, where: str, text: str | bytes | None) -> None:
        if text:
            self._outputs.append((where, text.decode("utf-8", "replace") if isinstance(text, bytes) else text))

    def watch(self, path: str | os.PathLike[str]) -> None:
        """A file or directory (recursively) wizsync wrote: scanned at check time."""
        self._paths.append(Path(path))

    def watch_journal(self, path: str | os.PathLike[str]) -> None:
        self._journals.append(Path(path))

    def run(
        self,
        args: Sequence[str],
        *,
        cwd: str | os.PathLike[str],
        env: Mapping[str, str] | None = None,
        timeout: float = 90,
        process: bool = False,
        input: str | None = None,
        **kwargs: Any,
    ) -> subprocess.CompletedProcess[str]:
        """``wizsync ARGS`` in ``cwd``; its stdout, stderr (and, in-process, its log records) are scanned later.

        In-process by default (tests/inprocess.py: same environment, folder, streams and exit code
        as a fresh process, without ~1 s of imports); ``process=True`` starts ``python -m
        wizsync.cli ARGS`` as a real process, for tests where the process boundary is the point.
        """
        label = "wizsync " + " ".join(args[:1])
        if process:
            proc = subprocess.run(
                [sys.executable, "-m", "wizsync.cli", *args], cwd=cwd, env=wizsync_env(env), input=input,
                capture_output=True, text=True, timeout=timeout, **kwargs,
            )
        else:
            from inprocess import run_in_process

            # stdin=DEVNULL is what an in-process run has anyway (an empty, non-terminal stdin)
            assert set(kwargs) <= {"stdin"} and kwargs.get("stdin", subprocess.DEVNULL) == subprocess.DEVNULL, kwargs
            proc, log = run_in_process(args, cwd=cwd, env=wizsync_env(env), input=input)
            self.record(f"{label} log records", log)
        self.record(f"{label} stdout", proc.stdout)
        self.record(f"{label} stderr", proc.stderr)
        return proc

    # -- the check ----------------------------------------------------------------------
    def _texts(self) -> Iterable[tuple[str, str]]:
        yield from self._outputs
        for root in self._paths:
            files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
            for f in files:
                yield str(f), f.read_bytes().decode("utf-8", "replace")
        for journal in self._journals:
            if journal.exists():
                yield f"journal {journal}", journal_dump(journal)

    def findings(self) -> list[str]:
        found: list[str] = []
        forms = {name: _forms(value) for name, value in self._values.items()}
        for where, text in self._texts():
            for name, variants in forms.items():
                if any(v in text for v in variants):
                    found.append(f"secret {name} appears in {where}")
            if API_KEY_RE.search(text):
                found.append(f"something shaped like an API key appears in {where}")
        return sorted(set(found))

    def check(self) -> None:
        found = self.findings()
        assert not found, "secrets leaked:\n  " + "\n  ".join(found)

    def places(self) -> list[str]:
        """What was scanned (a test can assert the scan saw what it meant to)."""
        return [where for where, _ in self._texts()]
