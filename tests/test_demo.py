"""`wizsync demo` as a newcomer runs it: a real process from a clean directory.

It must exit 0 with a completed, journaled rollout (every chatbot applied or
unchanged), and the commands it prints at the end must work when run as
printed, against `wizsync emulator --state ...` serving what the demo left.
No API key, demo secret or seeded secret may show in any output, file the
demo wrote (bar the keys file) or journal row.
"""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from secret_scan import SecretScan, wizsync_env
from wizchat_management.emulator.demo import demo_seed_document

BIN = Path(sys.executable).parent  # where `pip install -e .` put the `wizsync` script
RERUN_MARK = "Re-run any step by hand:"


def _seeded_secrets() -> dict[str, str]:
    """Secret values that live only in the emulator's demo data: never to be shown either."""
    found: dict[str, str] = {}
    for org in demo_seed_document()["organizations"]:
        for bot in org["chatbots"]:
            where = f"{org['name']}/{bot['name']}"
            found[f"{where} webhookSecret"] = bot["config"]["security"]["webhookSecret"]
            for server in bot["config"]["mcpServers"]:
                found[f"{where} mcp {server['name']} header"] = server["headers"]["Authorization"]
    return found


def _dotenv(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))
    return {k: v for k, v in pairs}


def _register(scan: SecretScan, demo_dir: Path) -> dict[str, str]:
    values = _dotenv(demo_dir / "keys.env")
    assert any(k.startswith("WIZCHAT_") for k in values) and "WIZSYNC_DEMO_MCP_TOKEN" in values
    scan.register_all(values)
    scan.register_all(_seeded_secrets())
    # Everything the demo wrote except the keys file itself (credentials, mode 600, by design).
    for path in (demo_dir / "wizsync.yaml", demo_dir / "configs"):
        scan.watch(path)
    scan.watch_journal(demo_dir / "journal.db")
    return values


def _apply_runs(journal: Path) -> list[tuple[str, str, dict[str, int]]]:
    conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        runs = conn.execute("SELECT id, status FROM runs WHERE command = 'apply' ORDER BY started_at").fetchall()
        out = []
        for run_id, status in runs:
            counts = dict(conn.execute("SELECT state, COUNT(*) FROM items WHERE run_id = ? GROUP BY state", (run_id,)))
            out.append((run_id, status, counts))
        return out
    finally:
        conn.close()


def _printed_commands(text: str) -> list[str]:
    tail = text.split(RERUN_MARK, 1)[1]
    return [line.strip() for line in tail.splitlines() if line.strip() and not line.strip().startswith("#")]


class _Emulator:
    """The printed `wizsync emulator ...` line, run as is (through the installed script)."""

    def __init__(self, command: str, cwd: Path) -> None:
        args = shlex.split(command)
        assert args[:2] == ["wizsync", "emulator"], command
        self.proc = subprocess.Popen([str(BIN / "wizsync"), *args[1:]], cwd=cwd, env=wizsync_env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     stdin=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        self.output: list[str] = []
        for line in self.proc.stdout:
            self.output.append(line)
            if "listening on" in line:
                break
        else:
            raise AssertionError("the printed emulator command did not start:\n" + "".join(self.output))
        threading.Thread(target=lambda: self.output.extend(self.proc.stdout or ()), daemon=True).start()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def scan() -> Iterator[SecretScan]:
    s = SecretScan()
    yield s
    s.check()


def test_demo_from_a_clean_directory_and_its_printed_commands(tmp_path: Path, scan: SecretScan) -> None:
    demo = scan.run(["demo"], cwd=tmp_path, timeout=120, process=True)  # the README command, as typed
    assert demo.returncode == 0, demo.stdout + demo.stderr
    demo_dir = tmp_path / "wizsync-demo"  # the default: a fresh folder under the current one
    _register(scan, demo_dir)
    for step in ("== 1.", "== 2. Export staging", "== 3. Render production", "== 4. Plan", "== 5. Apply", "== 6. Show"):
        assert step in demo.stdout
    assert "<secret:WIZSYNC_DEMO_MCP_TOKEN>" in demo.stdout  # the secret is shown masked, by name
    assert "batch 1/3" in demo.stdout and "batch 3/3" in demo.stdout

    # The journal: one apply run, completed, every chatbot applied or unchanged.
    runs = _apply_runs(demo_dir / "journal.db")
    assert len(runs) == 1
    run_id, status, counts = runs[0]
    assert status == "completed"
    assert set(counts) <= {"applied", "unchanged"} and counts.get("applied", 0) > 0
    assert sum(counts.values()) == 60  # acme 20 + globex 19 + initech 21 production chatbots
    assert len(list((demo_dir / "configs" / "staging").rglob("*.yaml"))) == 60

    # The printed commands, as printed, from the same directory.
    commands = _printed_commands(demo.stdout)
    assert commands[0].startswith("wizsync emulator --state ") and "--port" in commands[0]
    assert commands[1].startswith("set -a; . ")
    emulator = _Emulator(commands[0], tmp_path)
    try:
        env = wizsync_env({"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"})
        results: dict[str, subprocess.CompletedProcess[str]] = {}
        for command in commands[2:]:
            proc = subprocess.run(["bash", "-c", f"{commands[1]}\n{command}"], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
            name = shlex.split(command)[1]
            scan.record(f"{name} stdout", proc.stdout)
            scan.record(f"{name} stderr", proc.stderr)
            assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"
            results[name] = proc
    finally:
        emulator.stop()
        scan.record("emulator output", "".join(emulator.output))

    assert set(results) == {"validate", "export", "render", "plan", "apply", "runs", "show", "resume", "rollback"}
    assert "60 file(s), 0 written, 60 unchanged" in results["export"].stdout  # the demo's export, byte for byte
    assert "<secret:WIZSYNC_DEMO_MCP_TOKEN>" in results["render"].stdout
    assert "60 chatbots, 0 with changes" in results["plan"].stdout + results["plan"].stderr  # the demo applied it all
    assert f"Run {run_id}: apply 'production': completed" in results["show"].stdout
    assert "nothing to resume" in results["resume"].stdout + results["resume"].stderr
    assert f"rolls back {run_id}" in results["rollback"].stdout and ": completed" in results["rollback"].stdout


def test_demo_json_summary_and_a_fresh_default_folder(tmp_path: Path, scan: SecretScan) -> None:
    (tmp_path / "wizsync-demo").mkdir()
    (tmp_path / "wizsync-demo" / "mine.txt").write_text("not the demo's")
    proc = scan.run(["demo", "--json"], cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    demo_dir = tmp_path / "wizsync-demo-2"  # the taken name is left alone
    assert (tmp_path / "wizsync-demo" / "mine.txt").read_text() == "not the demo's"
    _register(scan, demo_dir)

    doc: dict[str, Any] = json.loads(proc.stdout)  # stdout is the JSON document alone
    assert doc["command"] == "apply" and doc["environment"] == "production" and doc["status"] == "completed"
    assert len(doc["chatbots"]) == 60 and {c["state"] for c in doc["chatbots"]} <= {"applied", "unchanged"}
    assert doc["totals"]["failed"] == 0 and doc["totals"]["errors"] == 0
    assert [c["batch"] for c in doc["chatbots"] if c["name"] == "acme/support-billing"] == [1]  # the canary goes first
    info = doc["run"]["demo"]
    assert Path(info["dir"]).resolve() == demo_dir.resolve() and info["exported"] == 60
    assert info["commands"][0].startswith("wizsync emulator --state ")
    assert "== 6. Show the run" in proc.stderr and RERUN_MARK in proc.stderr


def test_demo_refuses_a_directory_that_is_not_empty(tmp_path: Path, scan: SecretScan) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "wizsync.yaml").write_text("version: 1\n")
    proc = scan.run(["demo", "--dir", "used"], cwd=tmp_path, timeout=60)
    assert proc.returncode == 1
    assert "not an empty directory" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "used" / "wizsync.yaml").read_text() == "version: 1\n"


def test_readme_two_commands_match_ci() -> None:
    """README's "Run the tests" is exactly what .ci/run runs; its first command is the demo."""
    root = Path(__file__).resolve().parent.parent
    ci = [line.strip() for line in (root / ".ci" / "run").read_text().splitlines() if line.strip() and not line.startswith("#")]
    test_command = next(line for line in ci if "pytest" in line)
    install = next(line for line in ci if "pip install" in line and "-e" in line)
    readme = (root / "README.md").read_text()
    two = readme.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    assert "wizsync demo" in two.split("Run the tests", 1)[0]
    tests_block = two.split("Run the tests", 1)[1]
    assert test_command in tests_block
    assert install.split("pip install", 1)[1].replace("--quiet", "").split() == ["-e", '".[dev]"']
    assert 'pip install -e ".[dev]"' in tests_block
