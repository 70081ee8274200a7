"""With --json, every exit prints ONE JSON document on stdout with an `error` object (docs/json.md).

Over the bad-input corpora: every bad command line of test_bad_cli_input.py and every broken
manifest of tests/data/bad_manifests (through `validate --json` and `plan --json`). Whatever
failed, and however early (click's own usage errors included), stdout is exactly one JSON
document whose `error` names the code, the message stderr shows, and the file and line where
the message has them; the exit code is unchanged.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from test_bad_cli_input import CASES as CLI_CASES
from test_bad_cli_input import api_requests, live, workspace  # noqa: F401 - fixtures
from test_bad_input_no_requests import corpus, environment_of  # noqa: F401 - fixture
from test_manifest_corpus import CASES as MANIFEST_CASES
from test_manifest_corpus import CLEAN_ENV, expected
from wizchat_management.emulator import EmulatorServer
from wizsync.cli import cli

ERROR_KEYS = {"code", "message", "file", "line", "key"}


def one_document(stdout: str) -> dict[str, Any]:
    """stdout parses as exactly one JSON value (json.loads refuses trailing data)."""
    doc = json.loads(stdout)
    assert isinstance(doc, dict), stdout
    return doc


def check_error(doc: dict[str, Any], stderr: str, exit_code: int) -> dict[str, Any]:
    error = doc["error"]
    assert isinstance(error, dict) and ERROR_KEYS <= set(error), doc
    assert error["code"] and error["message"], doc
    # The same paragraph as on stderr (without click's "Error: ").
    assert error["message"].split(" (")[0][:60] in stderr, (error["message"], stderr)
    if doc.get("schema") == "wizsync.error/v1":
        assert doc["exit_code"] == exit_code
    return error


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_bad_command_line_with_json_prints_one_error_document(
    case: str, live: EmulatorServer, workspace: dict[str, Any], secret_scan: Any  # noqa: F811
) -> None:
    template, code, fragment = CLI_CASES[case]
    args = [a.format(root=workspace["root"], plan_run=workspace["plan_run"]) for a in template] + ["--json"]
    secret_scan.register_all(live.keys)
    before = api_requests(live)
    result = CliRunner().invoke(cli, args, env={**live.key_env, "NO_COLOR": "1"})
    secret_scan.record(f"{case} --json stdout", result.stdout)
    secret_scan.record(f"{case} --json stderr", result.stderr)
    assert result.exit_code == code, (result.exit_code, result.output)
    doc = one_document(result.stdout)
    error = check_error(doc, result.stderr, code)
    assert fragment in error["message"], error
    assert error["code"] == ("usage_error" if code == 2 else error["code"])
    assert code != 2 or doc["schema"] == "wizsync.error/v1"
    assert api_requests(live) == before


def test_click_usage_errors_and_environment_json_are_covered(secret_scan: Any, tmp_path: Path) -> None:
    """Errors click raises itself (a missing argument, an unknown option), and WIZSYNC_PLAN_AS_JSON=1."""
    runner = CliRunner()
    for args, env in ((["plan", "--json"], {}), (["plan", "m.yaml", "--env", "x", "--bogus", "--json"], {}),
                      (["plan", str(tmp_path / "nope.yaml"), "--env", "x"], {"WIZSYNC_PLAN_AS_JSON": "1"})):
        result = runner.invoke(cli, args, env=env)
        secret_scan.record(f"{args} output", result.output)
        assert result.exit_code in (1, 2), result.output
        doc = one_document(result.stdout)
        assert doc["schema"] == "wizsync.error/v1" and doc["command"] == "plan", doc
        check_error(doc, result.stderr, result.exit_code)
    # No --json: nothing on stdout.
    result = runner.invoke(cli, ["plan", "--bogus"])
    assert result.exit_code == 2 and result.stdout == ""


def _location(case: Path) -> tuple[str, int | None]:
    """(file name, line) that the case's expected message names."""
    first = expected(case)[0]
    match = re.match(r"([^:]*):(\d+):", first)
    if not match:
        return case.name, None
    return (match.group(1) or case.name), int(match.group(2))


@pytest.mark.parametrize("case", MANIFEST_CASES, ids=[c.stem for c in MANIFEST_CASES])
def test_bad_manifest_with_json_prints_one_located_error(
    case: Path, corpus: Path, live: EmulatorServer, secret_scan: Any  # noqa: F811
) -> None:
    # The corpus copy points every environment at the emulator (same lines): plan sends nothing.
    copy = corpus / case.name
    before = api_requests(live)
    env = {**CLEAN_ENV, **{k: v for k, v in live.key_env.items() if k not in CLEAN_ENV}}
    for args in (["validate", str(copy), "--json"], ["plan", str(copy), "--env", environment_of(case), "--json"]):
        result = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
        secret_scan.record(f"{args[0]} {case.stem} output", result.output)
        assert result.exit_code == 1, (args, result.output)
        doc = one_document(result.stdout)
        error = check_error(doc, result.stderr, result.exit_code)
        assert error["code"] == "manifest_error", (args, error)
        name, line = _location(case)
        assert error["file"] and Path(error["file"]).name == Path(name).name, (error, name)
        if line is not None:
            assert error["line"] == line, (error, line)
    assert api_requests(live) == before


def test_json_error_document_from_a_real_process(secret_scan: Any, tmp_path: Path) -> None:
    case = next(c for c in MANIFEST_CASES if c.stem == "01_yaml_syntax")
    proc = subprocess.run([sys.executable, "-m", "wizsync.cli", "plan", str(case), "--env", "production", "--json"],
                          capture_output=True, text=True, timeout=60, env=CLEAN_ENV, cwd=tmp_path)
    secret_scan.record("real plan stdout", proc.stdout)
    secret_scan.record("real plan stderr", proc.stderr)
    assert proc.returncode == 1
    doc = one_document(proc.stdout)
    assert doc["schema"] == "wizsync.error/v1" and doc["error"]["code"] == "manifest_error"
    assert doc["error"]["file"].endswith("01_yaml_syntax.yaml") and doc["error"]["line"]
