"""Bad command lines and bad files around the manifest: run ids that do not exist or are of the
wrong kind, a journal that is not SQLite, paths of the wrong kind, bad --batches/--max-failures
values. Each one: a clear message, a non-zero exit (2 for usage errors, 1 otherwise), no
traceback, and not one API request.

Extends test_bad_input_no_requests.py (manifest corpus through plan/apply, --env/--select/
--chatbot/--concurrency of plan and export) to apply, resume, rollback, show and runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from wizchat_management.emulator import EmulatorServer
from wizsync.cli import cli

MANIFEST = """\
version: 1
environments:
  staging: {{baseUrl: "{base}"}}
  production: {{baseUrl: "{base}"}}
tenants:
  acme:
    keys: {{staging: {{env: WIZCHAT_ACME_STAGING_KEY}}, production: {{env: WIZCHAT_ACME_PRODUCTION_KEY}}}}
chatbots:
  - discover: {{tenant: acme, match: "support-*"}}
    source: {{self: true}}
"""


@pytest.fixture(scope="module")
def live() -> Iterator[EmulatorServer]:
    with EmulatorServer(seed="demo") as emu:
        yield emu


@pytest.fixture(scope="module")
def workspace(live: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A manifest, a journal holding one staging plan run, and files of the wrong kind."""
    root = tmp_path_factory.mktemp("badcli")
    (root / "wizsync.yaml").write_text(MANIFEST.format(base=live.base_url))
    (root / "garbage.db").write_text("not a database, just text\n" * 10)
    (root / "a-dir").mkdir()
    (root / "a-file").write_text("x\n")
    result = CliRunner().invoke(cli, ["plan", str(root / "wizsync.yaml"), "--env", "staging", "--json",
                                      "--journal", str(root / "journal.db")], env={**live.key_env, "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return {"root": root, "plan_run": json.loads(result.stdout)["run_id"]}


def api_requests(emu: EmulatorServer) -> int:
    return sum(1 for r in emu.requests() if r["path"].startswith("/api/"))


# name -> (args with {root} and {plan_run} placeholders, exit code, fragment of the message)
CASES: dict[str, tuple[list[str], int, str]] = {
    "resume-no-journal": (["resume", "r-nope", "--journal", "{root}/missing.db"], 1, "no journal at"),
    "show-no-journal": (["show", "r-nope", "--journal", "{root}/missing.db"], 1, "no journal at"),
    "runs-no-journal": (["runs", "--journal", "{root}/missing.db"], 1, "no journal at"),
    "resume-unknown-run": (["resume", "r-nope", "--journal", "{root}/journal.db", "--yes"], 1, "r-nope"),
    "show-unknown-run": (["show", "r-nope", "--journal", "{root}/journal.db"], 1, "r-nope"),
    "rollback-unknown-run": (["rollback", "r-nope", "--journal", "{root}/journal.db", "--yes"], 1, "r-nope"),
    "resume-a-plan-run": (["resume", "{plan_run}", "--journal", "{root}/journal.db", "--yes"], 1, "plan"),
    "rollback-a-plan-run": (["rollback", "{plan_run}", "--journal", "{root}/journal.db", "--yes"], 1, "plan"),
    "runs-garbage-journal": (["runs", "--journal", "{root}/garbage.db"], 1, "is damaged (file is not a database)"),
    "show-garbage-journal": (["show", "x", "--journal", "{root}/garbage.db"], 1, "is damaged (file is not a database)"),
    "plan-garbage-journal": (["plan", "{root}/wizsync.yaml", "--env", "staging", "--journal", "{root}/garbage.db"], 1,
                             "is damaged (file is not a database)"),
    "apply-garbage-journal": (["apply", "{root}/wizsync.yaml", "--env", "staging", "--yes", "--journal",
                               "{root}/garbage.db"], 1, "is damaged (file is not a database)"),
    "plan-journal-is-a-dir": (["plan", "{root}/wizsync.yaml", "--env", "staging", "--journal", "{root}/a-dir"], 2,
                              "is a directory"),
    "plan-manifest-missing": (["plan", "{root}/nope.yaml", "--env", "staging"], 1, "file not found"),
    "plan-manifest-is-a-dir": (["plan", "{root}/a-dir", "--env", "staging"], 2, "is a directory"),
    "validate-manifest-missing": (["validate", "{root}/nope.yaml"], 1, "file not found"),
    "export-out-is-a-file": (["export", "{root}/wizsync.yaml", "--env", "staging", "--out", "{root}/a-file"], 2,
                             "is a file"),
    "apply-batches-zero": (["apply", "{root}/wizsync.yaml", "--env", "staging", "--yes", "--batches", "0"], 2,
                           "must be at least 1"),
    "apply-batches-text": (["apply", "{root}/wizsync.yaml", "--env", "staging", "--yes", "--batches", "abc"], 2,
                           "neither a count"),
    "apply-batches-negative": (["apply", "{root}/wizsync.yaml", "--env", "staging", "--yes", "--batches", "10%,-5"], 2,
                               "must be at least 1"),
    "apply-max-failures-negative": (["apply", "{root}/wizsync.yaml", "--env", "staging", "--yes", "--max-failures", "-1"],
                                    2, "0 or more"),
    "apply-max-failures-over-100": (["apply", "{root}/wizsync.yaml", "--env", "staging", "--yes", "--max-failures",
                                     "150%"], 2, "[0%, 100%]"),
    "apply-zero-concurrency": (["apply", "{root}/wizsync.yaml", "--env", "staging", "--yes", "--concurrency", "0"], 2,
                               "--concurrency"),
    "apply-unknown-env": (["apply", "{root}/wizsync.yaml", "--env", "prod", "--yes"], 2, "unknown environment 'prod'"),
    "apply-plan-unknown-run": (["apply", "{root}/wizsync.yaml", "--env", "staging", "--yes", "--plan", "r-nope",
                                "--journal", "{root}/journal.db"], 1, "r-nope"),
    "apply-plan-other-env": (["apply", "{root}/wizsync.yaml", "--env", "production", "--yes", "--plan", "{plan_run}",
                              "--journal", "{root}/journal.db"], 1, "planned environment 'staging'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_command_line_fails_clearly_before_any_request(
    case: str, live: EmulatorServer, workspace: dict[str, Any], secret_scan: Any
) -> None:
    template, code, fragment = CASES[case]
    args = [a.format(root=workspace["root"], plan_run=workspace["plan_run"]) for a in template]
    secret_scan.register_all(live.keys)
    before = api_requests(live)
    result = CliRunner().invoke(cli, args, env={**live.key_env, "NO_COLOR": "1"})
    secret_scan.record(f"{case} stdout", result.stdout)
    secret_scan.record(f"{case} stderr", result.stderr)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: "), result.stderr
    assert fragment in result.stderr, result.stderr
    assert api_requests(live) == before, f"{case}: sent {api_requests(live) - before} request(s)"


def test_bad_command_lines_as_real_processes(live: EmulatorServer, workspace: dict[str, Any], secret_scan: Any) -> None:
    secret_scan.register_all(live.keys)
    root = workspace["root"]
    secret_scan.watch_journal(root / "journal.db")
    before = api_requests(live)
    for case in ("apply-plan-unknown-run", "rollback-a-plan-run", "runs-garbage-journal", "apply-batches-text"):
        template, code, fragment = CASES[case]
        args = [a.format(root=root, plan_run=workspace["plan_run"]) for a in template]
        proc = secret_scan.run(args, cwd=root, env=live.key_env)
        assert proc.returncode == code, (case, proc.stderr)
        assert fragment in proc.stderr and "Traceback" not in proc.stderr, (case, proc.stderr)
    assert api_requests(live) == before
