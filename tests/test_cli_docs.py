"""docs/cli.md and every ``--help`` stay complete and current (the sqlite-utils pattern).

- docs/cli.md is what scripts/gen_cli_docs.py renders from the click tree now;
- every command and every option of it appears in its section of docs/cli.md;
- every ``--help`` has a usage line, a one-line summary, its options and an
  ``Examples:`` block of 2-3 command lines;
- the documented shell-completion command works.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from wizsync.cli import COMMANDS as COMMAND_TABLE
from wizsync.cli import cli

ROOT = Path(__file__).resolve().parent.parent
CLI_MD = ROOT / "docs" / "cli.md"
# The installed console script (completion keys off its program name).
WIZSYNC = [str(Path(sys.executable).parent / "wizsync")]

ROOT_CTX = click.Context(cli, info_name="wizsync", **cli.context_settings)
COMMANDS = cli.list_commands(ROOT_CTX)


def _env() -> dict[str, str]:
    # The developer's own WIZSYNC_* settings must not change what is checked.
    return {k: v for k, v in os.environ.items() if not k.startswith("WIZSYNC_") and k != "NO_COLOR"}


def _section(text: str, name: str) -> str:
    """The part of docs/cli.md under ``## wizsync <name>`` (up to the next ``## ``)."""
    heading = f"wizsync {name}" if name else "wizsync"
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"docs/cli.md has no '## wizsync {name}' section: run python scripts/gen_cli_docs.py"
    return match.group(1)


def _options(cmd: click.Command) -> list[click.Option]:
    ctx = click.Context(cmd, info_name="x", parent=ROOT_CTX)
    help_names = set(ctx.help_option_names)
    return [p for p in cmd.get_params(ctx) if isinstance(p, click.Option) and not set(p.opts) <= help_names]


def test_cli_md_is_what_the_generator_renders_now(tmp_path: Path) -> None:
    out = tmp_path / "cli.md"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_cli_docs.py"), "--output", str(out)],
                          capture_output=True, text=True, env=_env(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert CLI_MD.read_text(encoding="utf-8") == out.read_text(encoding="utf-8"), (
        "docs/cli.md is stale: run python scripts/gen_cli_docs.py and commit the result"
    )


def test_every_command_and_option_is_in_cli_md() -> None:
    text = CLI_MD.read_text(encoding="utf-8")
    assert COMMANDS, "the wizsync group has no commands"
    missing = []
    for name in COMMANDS:
        cmd = cli.get_command(ROOT_CTX, name)
        assert cmd is not None
        section = _section(text, name)
        for option in _options(cmd):
            for spelling in [*option.opts, *option.secondary_opts]:
                if f"`{spelling}`" not in section:
                    missing.append(f"{name} {spelling}")
    for option in _options(cli):
        for spelling in option.opts:
            if f"`{spelling}`" not in _section(text, ""):
                missing.append(f"(global) {spelling}")
    assert not missing, f"undocumented in docs/cli.md: {', '.join(missing)}"


@pytest.mark.parametrize("name", ["", *COMMANDS])
def test_help_has_summary_options_and_examples(name: str, secret_scan: object) -> None:
    args = [name, "--help"] if name else ["--help"]
    result = CliRunner().invoke(cli, args, prog_name="wizsync", env={"COLUMNS": "100"}, terminal_width=100)
    secret_scan.record(f"{name} --help", result.output)  # type: ignore[attr-defined]
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"Usage: {'wizsync ' + name if name else 'wizsync'} "), lines[0]
    # The one-line summary: first text after the usage line, a single sentence.
    summary = next(line.strip() for line in lines[1:] if line.strip())
    assert summary.endswith("."), f"{name or 'wizsync'}: summary {summary!r} should be one sentence"
    assert len(summary) <= 100, f"{name or 'wizsync'}: summary is longer than one line"
    # Options: every option of the command is listed under "Options:".
    options_at = lines.index("Options:")
    options_text = "\n".join(lines[options_at:])
    cmd = cli.get_command(ROOT_CTX, name) if name else cli
    assert cmd is not None
    for option in _options(cmd):
        for spelling in option.opts:
            assert re.search(rf"(^|[ ,/]){re.escape(spelling)}\b", options_text, re.M), f"{name}: {spelling} not in --help"
    # Examples: a block of 2-3 runnable command lines.
    assert "  Examples:" in lines, f"{name or 'wizsync'}: --help has no 'Examples:' block"
    start = lines.index("  Examples:") + 1
    block = []
    for line in lines[start:]:
        if not line.strip():
            break
        block.append(line.strip())
    commands = [line for line in block if re.match(r"^(wizsync|python|\$)\b", line)]
    assert 2 <= len(commands) <= 3, f"{name or 'wizsync'}: {len(commands)} examples: {block}"
    assert commands == block, f"{name or 'wizsync'}: every line of Examples: should be a command: {block}"


def test_installed_entry_point_lists_every_documented_command() -> None:
    proc = subprocess.run([*WIZSYNC, "--help"], capture_output=True, text=True, env=_env())
    assert proc.returncode == 0, proc.stderr
    listed = re.findall(r"^  ([a-z][a-z-]*)\s{2,}", proc.stdout.split("Commands:")[1], re.M)
    assert listed == COMMANDS
    text = CLI_MD.read_text(encoding="utf-8")
    for name in listed:
        assert f"[`{name}`](#wizsync-{name})" in text


def test_group_help_lists_each_commands_own_summary_and_imports_none_of_them(secret_scan: object) -> None:
    """``wizsync --help`` lists the summaries of wizsync/cli.py's table, each the command's own first
    sentence, without importing a command (or the HTTP, model, journal and web stacks they use)."""
    for name in COMMANDS:
        cmd = cli.get_command(ROOT_CTX, name)
        assert cmd is not None and cmd.get_short_help_str(10**6) == COMMAND_TABLE[name][1], (
            f"{name}: the summary in wizsync/cli.py's COMMANDS is not the command's own first sentence"
        )
    probe = (
        "import sys\nfrom wizsync.cli import main\nsys.argv = ['wizsync', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\nprint('MODULES', *sorted(sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=_env())
    secret_scan.record("--help stdout", proc.stdout)  # type: ignore[attr-defined]
    assert proc.returncode == 0, proc.stderr
    assert "Commands:" in proc.stdout
    loaded = set(proc.stdout.split("MODULES", 1)[1].split())
    heavy = {spec.split(":")[0] for spec, _ in COMMAND_TABLE.values()} | {
        "httpx", "aiohttp", "pydantic", "wizchat_management.models", "rich", "sqlite3", "yaml",
        "jsonschema_rs", "starlette", "uvicorn",
    }
    assert sorted(heavy & loaded) == []


def test_documented_shell_completion_works() -> None:
    env = {**_env(), "_WIZSYNC_COMPLETE": "bash_source"}
    proc = subprocess.run([*WIZSYNC], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "_wizsync_completion" in proc.stdout and "complete " in proc.stdout
    assert "_WIZSYNC_COMPLETE=bash_source wizsync" in CLI_MD.read_text(encoding="utf-8")
    # And it completes: the subcommands after "wizsync ap".
    env = {**_env(), "_WIZSYNC_COMPLETE": "bash_complete", "COMP_WORDS": "wizsync ap", "COMP_CWORD": "1"}
    proc = subprocess.run([*WIZSYNC], capture_output=True, text=True, env=env)
    assert "plain,apply" in proc.stdout.splitlines(), proc.stdout
