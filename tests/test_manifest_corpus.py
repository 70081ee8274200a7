"""Every broken manifest of tests/data/bad_manifests fails `wizsync validate` the way a user needs:
exit 1, one paragraph naming file, line and key (the case's `# expect:` fragments), no traceback,
no key value echoed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from wizsync.cli import cli

CASES = sorted((Path(__file__).parent / "data" / "bad_manifests").glob("[0-9]*.yaml"))
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("WIZSYNC_TEST_NEVER_SET")}


def expected(case: Path) -> list[str]:
    first = case.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{case.name}: first line must be '# expect: fragment | fragment'"
    return [part.strip() for part in first[len("# expect: "):].split("|")]


def check(case: Path, code: int, stderr: str, stdout: str) -> None:
    assert code == 1, (case.name, stdout, stderr)
    assert "Traceback" not in stderr + stdout
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"not one paragraph: {stderr!r}"
    message = lines[0]
    assert message.startswith("Error: ")
    fragments = expected(case)
    named = fragments[0].split(":", 1)[0] or case.name  # ":12: key" → the case file; "files/x.yaml:6: key" → that file
    assert named in message, message
    for fragment in fragments:
        assert fragment in message, f"{case.name}: {fragment!r} not in {message!r}"
    assert "wpk_live_abc" not in message and "wpk_test_abc" not in message and "not-a-keyref" not in message


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_bad_manifest_fails_with_located_message(case: Path, secret_scan: Any) -> None:
    result = CliRunner().invoke(cli, ["validate", str(case)], env=CLEAN_ENV, catch_exceptions=False)
    secret_scan.record(f"validate {case.stem} output", result.output)
    check(case, result.exit_code, result.stderr, result.stdout)


@pytest.mark.parametrize("name", ["01_yaml_syntax", "19_missing_secret", "25_inline_key", "42_file_source_undefined_var"])
def test_bad_manifest_as_real_process(name: str, secret_scan: Any) -> None:
    case = next(c for c in CASES if c.stem == name)
    proc = subprocess.run(
        [sys.executable, "-m", "wizsync.cli", "validate", case.name],
        cwd=case.parent, env=CLEAN_ENV, capture_output=True, text=True, timeout=60,
    )
    secret_scan.record(f"validate {name} stdout", proc.stdout)
    secret_scan.record(f"validate {name} stderr", proc.stderr)
    check(case, proc.returncode, proc.stderr, proc.stdout)
