"""Progress in every phase, live per-key counters, -v and -q, against the emulator over real HTTP.

Before: the live 429/retry counters never moved (Reporter.stats() was never called), `apply -v`
through a pipe printed no retry or 429 line, the fleet loading and up-front plan were silent,
and `plan -q` printed every diff.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from rich.console import Console

from docs_fleet import cli_env, write_manifest
from wizchat_management.emulator import EmulatorServer
from wizsync.engine import run
from wizsync.run.plan_run import run_plan
from wizsync.report.progress import RichReporter, event_line, key_states
from wizsync.fleet.session import open_session

ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_verbose_through_a_pipe_logs_each_429_wait_and_quiet_prints_only_the_summary(secret_scan: Any, tmp_path: Path) -> None:
    with EmulatorServer(seed="demo") as emu:
        secret_scan.register_all(emu.keys)
        manifest = write_manifest(tmp_path, emu.base_url)
        env = cli_env(emu.key_env, NO_COLOR="1")
        emu.force_429("acme/production", count=2)
        # in-process: its stdout and stderr are not terminals, as through a pipe
        verbose = secret_scan.run(["plan", str(manifest), "--env", "production", "-v"], cwd=tmp_path, env=env)
        quiet = secret_scan.run(["plan", str(manifest), "--env", "production", "-q"], cwd=tmp_path, env=env)
        normal = secret_scan.run(["plan", str(manifest), "--env", "production"], cwd=tmp_path, env=env)
    for proc in (verbose, quiet, normal):
        assert proc.returncode == 0, proc.stderr
    # -v: one plain line per 429, naming the key and the wait; the phases announce themselves.
    throttled = [line for line in verbose.stderr.splitlines() if "acme/production" in line and ": 429 on attempt" in line]
    assert len(throttled) == 2, verbose.stderr
    assert "loading the fleet: started" in verbose.stderr
    # The final key counts are the executor's, 429s included (they used to read 0).
    assert re.search(r"keys: .*acme/production \d+ requests, 2 throttled \(429\)", verbose.stderr), verbose.stderr
    # -q: no per-chatbot line on stderr, no diff on stdout: the summary only.
    assert "loading the fleet" not in quiet.stderr and "applied" not in quiet.stderr
    assert len(quiet.stdout.splitlines()) < len(normal.stdout.splitlines())
    assert "Plan: 5 chatbots" in quiet.stdout and "Requests per key" in quiet.stdout
    assert "~ " not in quiet.stdout and "+ " not in quiet.stdout  # no diff lines


def test_live_view_shows_per_key_requests_429s_and_a_final_frame(secret_scan: Any, tmp_path: Path, monkeypatch: Any) -> None:
    with EmulatorServer(seed="demo") as emu:
        secret_scan.register_all(emu.keys)
        manifest = write_manifest(tmp_path, emu.base_url)
        for name, value in cli_env(emu.key_env).items():
            monkeypatch.setenv(name, value)
        emu.force_429("globex/production", count=1)
        buf = io.StringIO()
        reporter = RichReporter(Console(file=buf, force_terminal=True, color_system=None, width=160))
        session = open_session(manifest, "production", journal=tmp_path / "j.db")
        result = run(run_plan(session, reporter=reporter))
    raw = buf.getvalue()
    secret_scan.record("live view", raw)
    final = ANSI_RE.sub("", raw).split("\r")[-1]
    row = next(line for line in final.splitlines() if line.strip().startswith("key globex/production"))
    assert "1×429" in row, row
    requests = result.stats["globex/production"]["requests"]
    assert f"{requests} req" in row, (row, requests)
    assert any(line.startswith("loading the fleet") for line in final.splitlines()), final


def test_key_state_and_event_lines_say_why_and_how_long() -> None:
    states = key_states({"acme/production": {"requests": 9, "throttled": 2, "retries": 1, "rate": 4.0,
                                             "waiting": {"reason": "retry-after", "seconds": 2.5}}})
    assert states["acme/production"].text() == "9 req, 2×429, 1 retries, 4/s, waiting 2.5s (retry-after)"
    assert event_line("acme/production", None, "wait_capped", {"asked": 600, "source": "Retry-After", "capped_to": 60}) == (
        "acme/production: the server asked to wait 600s (Retry-After); waiting 60s at most"
    )
    assert event_line("k", "acme/x", "retry", {"attempt": 1, "error": "503 unavailable", "wait": 0.5}) == (
        "k acme/x: retry after attempt 1 (503 unavailable), waiting 0.5s"
    )
    assert event_line("k", None, "attempt", {}) is None
