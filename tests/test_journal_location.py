"""One rule for where the journal is, the same for every command, and messages that state it truly.

--journal, else WIZSYNC_JOURNAL, else .wizsync/journal.db beside the manifest (the MANIFEST
argument, or --manifest, or wizsync.yaml in the current folder). Also: every --log-file line
names the run (or `run=-` when the command recorded none).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from wizsync.cli import cli
from wizsync.journal import Journal


@pytest.fixture
def checkout(tmp_path: Path) -> tuple[Path, str]:
    """ops/wizsync.yaml with a journal beside it holding one plan run."""
    ops = tmp_path / "ops"
    ops.mkdir()
    (ops / "wizsync.yaml").write_text("version: 1\n")
    with Journal.open(ops / ".wizsync" / "journal.db") as j:
        run_id = j.start_run("plan", "production", ops / "wizsync.yaml", "sha256:x", {})
        j.finish_run(run_id, "completed")
    return tmp_path, run_id


def invoke(args: list[str], cwd: Path, secret_scan: Any, env: dict[str, str] | None = None) -> Any:
    old = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(cli, args, env={"WIZSYNC_JOURNAL": None, "NO_COLOR": "1", **(env or {})})
    finally:
        os.chdir(old)
    secret_scan.record(f"{args} output", result.output)
    return result


def test_runs_from_the_parent_folder_says_where_it_looked_and_why(checkout: tuple[Path, str], secret_scan: Any) -> None:
    root, run_id = checkout
    result = invoke(["runs"], root, secret_scan)
    assert result.exit_code == 1
    message = result.stderr
    assert str(root / ".wizsync" / "journal.db") in message
    assert "beside wizsync.yaml in the current folder" in message and "--manifest PATH" in message
    assert "recorded there" not in message  # the old message claimed plan/apply had put runs there


@pytest.mark.parametrize("command", [["runs"], ["show", "{run}"]])
def test_manifest_option_finds_the_journal_beside_it(command: list[str], checkout: tuple[Path, str], secret_scan: Any) -> None:
    root, run_id = checkout
    args = [a.format(run=run_id) for a in command]
    result = invoke([*args, "--manifest", "ops/wizsync.yaml"], root, secret_scan)
    assert result.exit_code == 0, result.output
    assert run_id in result.stdout
    # the same journal from inside ops/, by the default manifest
    assert invoke(args, root / "ops", secret_scan).exit_code == 0


def test_environment_and_option_are_named_when_they_point_nowhere(checkout: tuple[Path, str], secret_scan: Any) -> None:
    root, _ = checkout
    by_env = invoke(["runs"], root, secret_scan, env={"WIZSYNC_JOURNAL": str(root / "elsewhere.db")})
    assert by_env.exit_code == 1 and "given by WIZSYNC_JOURNAL" in by_env.stderr
    by_option = invoke(["runs", "--journal", "nowhere.db"], root, secret_scan)
    assert by_option.exit_code == 1 and "given by --journal" in by_option.stderr
    for command in (["resume", "r-x", "--yes"], ["rollback", "r-x", "--yes"]):
        result = invoke(command, root, secret_scan)
        assert result.exit_code == 1 and "beside wizsync.yaml in the current folder" in result.stderr, result.output


def test_log_file_lines_name_the_run_or_say_there_was_none(checkout: tuple[Path, str], secret_scan: Any) -> None:
    root, run_id = checkout
    invoke(["--log-file", "show.log", "show", run_id, "--manifest", "ops/wizsync.yaml"], root, secret_scan)
    lines = (root / "show.log").read_text().splitlines()
    # show records no run of its own: every line says so rather than naming a wrong one
    assert lines and all(re.search(r" run=- ", line) for line in lines), lines
