"""The docs pages hang together: the index links every page, links resolve, and the CI recipe runs real options.

The workflow in docs/ci.md is docs/examples/wizsync.yml verbatim, is valid
YAML with plan and apply jobs, and every ``wizsync`` command line in it (and
in the page) parses against the click command tree, so a renamed option
breaks this test rather than someone's pipeline.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import yaml

from wizsync.cli import cli

DOCS = Path(__file__).resolve().parent.parent / "docs"
COMMANDS = cli.list_commands(click.Context(cli))
PAGES = ["manifest.md", "cli.md", "journal.md", "json.md", "plan-files.md", "rate-limits.md", "safety.md", "ci.md", "shards.md", "architecture.md"]


def test_index_links_every_page_and_every_relative_link_resolves() -> None:
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    for page in PAGES:
        assert f"]({page})" in index, f"docs/README.md does not link {page}"
    for page in ["README.md", *PAGES]:
        text = (DOCS / page).read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            assert (DOCS / target).exists(), f"{page}: broken link {target}"


def _wizsync_lines(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0] if " # " in line else line
        match = re.search(r"(?:^|run: |\s)(wizsync (?:--log-file \S+ )?[a-z]+\b[^>|&]*)", line.strip())
        if match and "$(" not in match.group(1):
            command = match.group(1).strip().rstrip("`")
            words = command.split()
            name = words[3] if words[1] == "--log-file" else words[1]
            if name in COMMANDS:  # skip prose such as "wizsync in GitHub Actions"
                out.append(command)
    return out


def _parses(command: str) -> None:
    args = shlex.split(command)[1:]
    root = click.Context(cli, info_name="wizsync", **cli.context_settings)
    if args[:1] == ["--log-file"]:
        args = args[2:]
    sub = cli.get_command(root, args[0])
    assert sub is not None, f"{command}: no command {args[0]!r}"
    sub.make_context(args[0], args[1:], parent=root)


def test_ci_recipe_is_the_example_workflow_and_its_commands_parse() -> None:
    page = (DOCS / "ci.md").read_text(encoding="utf-8")
    workflow = (DOCS / "examples" / "wizsync.yml").read_text(encoding="utf-8")
    assert f"```yaml\n{workflow}```" in page, "docs/ci.md must embed docs/examples/wizsync.yml verbatim"
    data = yaml.safe_load(workflow)
    assert set(data["jobs"]) == {"plan", "apply"}
    runs = "\n".join(step.get("run", "") for job in data["jobs"].values() for step in job["steps"])
    assert "--detailed-exitcode" in runs and "apply wizsync.yaml --env production --yes" in runs
    commands = _wizsync_lines(runs) + _wizsync_lines(page)
    assert any(c.startswith("wizsync plan") for c in commands) and any(c.startswith("wizsync apply") for c in commands)
    for command in commands:
        try:
            _parses(command)
        except click.UsageError as exc:
            raise AssertionError(f"{command}: {exc.format_message()}") from None


def test_manifest_reference_names_every_key_of_the_schema() -> None:
    from pydantic import BaseModel

    from wizsync.manifest import model

    page = (DOCS / "manifest.md").read_text(encoding="utf-8")
    missing = []
    for obj in vars(model).values():
        if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__module__ == model.__name__:
            for name, field in obj.model_fields.items():
                key = field.alias or name
                if f"`{key}`" not in page:
                    missing.append(f"{obj.__name__}.{key}")
    assert not missing, f"docs/manifest.md does not document: {', '.join(missing)}"
