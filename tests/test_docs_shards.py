"""docs/shards.md stands on its own: its three recipes are the files of docs/examples verbatim, they are
what they claim (a GitHub Actions matrix over `strategy.matrix.shard`, a Kubernetes Indexed Job whose
completions equal N of `--shard auto/N`), and every wizsync command in them and in the page parses."""

from __future__ import annotations

import re
import shlex

import click
import pytest
import yaml
from test_docs_pages import DOCS, _parses, _wizsync_lines

from wizsync.cli import cli

PAGE = (DOCS / "shards.md").read_text(encoding="utf-8")
EXAMPLES = ["wizsync-shards.yml", "wizsync-shards-job.yaml", "wizsync-shards-check.yaml"]


def _check(command: str) -> None:
    try:
        _parses(command)
    except click.UsageError as exc:
        raise AssertionError(f"{command}: {exc.format_message()}") from None


def test_the_page_embeds_every_example_verbatim() -> None:
    for name in EXAMPLES:
        text = (DOCS / "examples" / name).read_text(encoding="utf-8")
        assert f"```yaml\n{text}```" in PAGE, f"docs/shards.md must embed docs/examples/{name} verbatim"
        assert f"](examples/{name})" in PAGE


def test_the_github_matrix_runs_every_shard_then_checks_the_fleet() -> None:
    workflow = yaml.safe_load((DOCS / "examples" / "wizsync-shards.yml").read_text(encoding="utf-8"))
    plan, apply, fleet = workflow["jobs"]["plan"], workflow["jobs"]["apply"], workflow["jobs"]["fleet"]
    shards = apply["strategy"]["matrix"]["shard"]
    assert shards == list(range(1, len(shards) + 1)) and apply["strategy"]["fail-fast"] is False
    assert plan["strategy"]["matrix"]["shard"] == shards
    runs = [step["run"] for job in (plan, apply) for step in job["steps"] if "wizsync " in step.get("run", "")]
    for job in ("plan", "apply"):
        assert any(f"wizsync {job} " in r and f"--shard ${{{{ matrix.shard }}}}/{len(shards)}" in r for r in runs), runs
    assert fleet["needs"] == "apply" and fleet["if"].startswith("always()")
    checks = [step["run"] for step in fleet["steps"] if "wizsync show" in step.get("run", "")]
    assert checks and all("--check" in c for c in checks)
    for command in _wizsync_lines("\n".join(r.replace("${{ matrix.shard }}", "1") for r in runs + checks)):
        _check(command)


def test_the_indexed_job_takes_its_shard_from_the_completion_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "0")  # as Kubernetes sets it in the first pod
    job = yaml.safe_load((DOCS / "examples" / "wizsync-shards-job.yaml").read_text(encoding="utf-8"))
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    # One failed shard must not terminate the others (what the Job-wide backoffLimit does).
    assert spec["backoffLimitPerIndex"] == 0 and "backoffLimit" not in spec
    args = spec["template"]["spec"]["containers"][0]["args"]
    n = int(re.fullmatch(r"auto/(\d+)", args[args.index("--shard") + 1]).group(1))  # type: ignore[union-attr]
    assert spec["completions"] == n
    _check(shlex.join(["wizsync", *args]))
    check = yaml.safe_load((DOCS / "examples" / "wizsync-shards-check.yaml").read_text(encoding="utf-8"))
    check_args = check["spec"]["template"]["spec"]["containers"][0]["args"]
    assert check_args[0] == "show" and "--check" in check_args and f"-of-{n}.db" in " ".join(check_args)
    _check(shlex.join(["wizsync", *check_args]))


def test_every_command_of_the_page_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "2")
    commands = _wizsync_lines(PAGE.replace("${{ matrix.shard }}", "1"))
    assert any("--shard auto/4" in c for c in commands) and any(c.startswith("wizsync show") for c in commands)
    for command in commands:
        _check(command)
    assert cli.get_command(click.Context(cli), "show") is not None
