"""Bad input never reaches the API: every broken manifest of tests/data/bad_manifests, pointed at a live
emulator, fails `wizsync plan` (and `apply`, when registered) with exit 1 and one paragraph naming
file, line and key — and the emulator's request log shows not one API request. Bad command-line
arguments are usage errors (exit 2), also before any request.

The corpus cases default to https://www.wizchat.com; a temporary copy points each environment at
the emulator on the same line, so the `# expect:` line numbers still hold.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from wizchat_management.emulator import EmulatorServer
from wizsync.cli import cli

CORPUS = Path(__file__).parent / "data" / "bad_manifests"
CASES = sorted(CORPUS.glob("[0-9]*.yaml"))
CLEAN_ENV = {"WIZSYNC_TEST_NEVER_SET_KEY": None, "WIZSYNC_TEST_NEVER_SET_SECRET": None, "NO_COLOR": "1"}
COMMANDS = ["plan", "apply"]
# A few through apply (when it exists): syntax, a missing secret, an unreadable key file, a rendered-invalid field.
APPLY_CASES = {"01_yaml_syntax", "19_missing_secret", "22_unreadable_key_file", "47_rendered_invalid_field"}
_ENV_LINE = re.compile(r"^(  (?:staging|production): \{)(.*)$")


def expected(case: Path) -> list[str]:
    first = case.read_text().splitlines()[0]
    assert first.startswith("# expect: ")
    return [part.strip() for part in first[len("# expect: "):].split("|")]


def environment_of(case: Path) -> str:
    """The environment the case is broken for (validate checks all; plan only the one it targets)."""
    return "staging" if "staging" in case.read_text().splitlines()[0] else "production"


def point_at(text: str, base_url: str) -> str:
    """Give every environment the emulator's baseUrl, on the same line (line numbers unchanged)."""
    out = []
    for line in text.splitlines(keepends=True):
        match = _ENV_LINE.match(line.rstrip("\n"))
        if match and "baseurl" not in line.lower():
            rest = match.group(2)
            line = f'{match.group(1)}baseUrl: "{base_url}"{"" if rest.startswith("}") else ", "}{rest}\n'
        out.append(line)
    return "".join(out)


@pytest.fixture(scope="module")
def live() -> Iterator[EmulatorServer]:
    with EmulatorServer(seed="demo") as emu:
        yield emu


@pytest.fixture(scope="module")
def corpus(live: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    shutil.copytree(CORPUS / "files", root / "files")
    for case in CASES:
        (root / case.name).write_text(point_at(case.read_text(), live.base_url))
    return root


def api_requests(emu: EmulatorServer) -> list[dict[str, Any]]:
    return [r for r in emu.requests() if r["path"].startswith("/api/")]


def check_message(case: Path, code: int, stderr: str, stdout: str) -> None:
    assert code == 1, (case.name, stdout, stderr)
    assert "Traceback" not in stdout + stderr
    message = stderr.strip()
    assert message.startswith("Error: ") and "\n\n" not in message, message  # one paragraph
    named = expected(case)[0].split(":", 1)[0] or case.name
    assert named in message, message
    for fragment in expected(case):
        assert fragment in message, f"{case.name}: {fragment!r} not in {message!r}"
    assert "not-a-real-key" not in message  # the dummy key file's content


def test_the_copies_point_at_the_emulator(corpus: Path, live: EmulatorServer) -> None:
    pointed = [c for c in corpus.glob("[0-9]*.yaml") if live.base_url in c.read_text()]
    assert len(pointed) >= 45  # all but the cases broken before (or in) the environments block
    for case in CASES:
        assert len((corpus / case.name).read_text().splitlines()) == len(case.read_text().splitlines())


PARAMS = [(cmd, c) for cmd in COMMANDS for c in CASES if cmd == "plan" or c.stem in APPLY_CASES]


@pytest.mark.parametrize(("command", "case"), PARAMS, ids=[f"{cmd}-{c.stem}" for cmd, c in PARAMS])
def test_bad_manifest_fails_before_any_request(
    command: str, case: Path, corpus: Path, live: EmulatorServer, secret_scan: Any
) -> None:
    before = len(api_requests(live))
    copy = corpus / case.name
    args = [command, str(copy), "--env", environment_of(case), "--journal", str(corpus / "journal.db")]
    if command == "apply":
        args.append("--yes")
    result = CliRunner().invoke(cli, args, env=CLEAN_ENV)
    secret_scan.record(f"{command} {case.stem} stdout", result.stdout)
    secret_scan.record(f"{command} {case.stem} stderr", result.stderr)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    check_message(copy, result.exit_code, result.stderr, result.stdout)
    assert len(api_requests(live)) == before, api_requests(live)[before:]


@pytest.mark.parametrize("name", ["01_yaml_syntax", "19_missing_secret", "23_missing_key_file", "47_rendered_invalid_field"])
def test_bad_manifest_as_a_real_process(name: str, corpus: Path, live: EmulatorServer, secret_scan: Any) -> None:
    before = len(api_requests(live))
    case = corpus / f"{name}.yaml"
    proc = secret_scan.run(["plan", case.name, "--env", environment_of(case)], cwd=corpus)
    check_message(case, proc.returncode, proc.stderr, proc.stdout)
    assert len(api_requests(live)) == before


GOOD_MANIFEST = """\
version: 1
environments:
  staging: {{baseUrl: "{base}"}}
tenants:
  acme:
    keys: {{staging: {{env: WIZCHAT_ACME_STAGING_KEY}}}}
chatbots:
  - discover: {{tenant: acme}}
    source: {{self: true}}
"""

USAGE_CASES = {
    "unknown-env": (["--env", "prod"], "unknown environment 'prod'"),
    "missing-env": ([], "Missing option '--env'"),
    "bad-select-term": (["--env", "staging", "--select", "tier=="], "bad selector term"),
    "empty-select-term": (["--env", "staging", "--select", "tier=gold,,wave=x"], "empty term"),
    "empty-chatbot": (["--env", "staging", "--chatbot", " "], "empty --chatbot"),
    "zero-concurrency": (["--env", "staging", "--concurrency", "0"], "--concurrency"),
    "text-concurrency": (["--env", "staging", "--concurrency", "many"], "--concurrency"),
    "unknown-option": (["--env", "staging", "--frobnicate"], "No such option"),
}


@pytest.mark.parametrize("command", ["plan", "export"])
@pytest.mark.parametrize("case", sorted(USAGE_CASES))
def test_bad_arguments_are_usage_errors_before_any_request(
    command: str, case: str, live: EmulatorServer, tmp_path: Path, secret_scan: Any
) -> None:
    secret_scan.register_all(live.keys)
    (tmp_path / "wizsync.yaml").write_text(GOOD_MANIFEST.format(base=live.base_url))
    args, fragment = USAGE_CASES[case]
    extra = ["--journal", str(tmp_path / "j.db")] if command == "plan" else ["--out", str(tmp_path / "out")]
    before = len(api_requests(live))
    result = CliRunner().invoke(cli, [command, str(tmp_path / "wizsync.yaml"), *extra, *args],
                                env={**live.key_env, "NO_COLOR": "1"})
    secret_scan.record(f"{command} {case} output", result.output)
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert fragment in result.stderr
    assert "Traceback" not in result.output
    assert len(api_requests(live)) == before
    assert not (tmp_path / "out").exists()


def test_bad_arguments_as_a_real_process(live: EmulatorServer, tmp_path: Path, secret_scan: Any) -> None:
    secret_scan.register_all(live.keys)
    (tmp_path / "wizsync.yaml").write_text(GOOD_MANIFEST.format(base=live.base_url))
    before = len(api_requests(live))
    proc = secret_scan.run(["plan", "wizsync.yaml", "--env", "prod"], cwd=tmp_path, env=live.key_env)
    assert proc.returncode == 2, proc.stderr
    assert "unknown environment 'prod' (known: staging)" in proc.stderr and "Traceback" not in proc.stderr
    assert len(api_requests(live)) == before
