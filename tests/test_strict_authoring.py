"""What the user writes is checked against openapi.json offline, every problem at once, each
with file:line:key; `allowUnknown` is the one way to write a field newer than this wizsync."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from wizsync.cli import cli

MANIFEST = """\
version: 1
environments:
  staging: {{baseUrl: "http://127.0.0.1:9"}}
tenants:
  acme:
    keys:
      staging: {{env: WIZCHAT_ACME_STAGING_KEY}}
{extra}overlays:
  staging:
    spec:
      core: {{{core}}}
chatbots:
  - name: from-file
    tenant: acme
    ids: {{staging: cb_file}}
    source: {{file: bot.yaml}}
  - name: live
    tenant: acme
    ids: {{staging: cb_live}}
    source: {{self: true}}
    overrides:
      staging:
        spec:
          mcpServers:
            - {{name: search, transport: {transport}}}
"""
SOURCE = """\
apiVersion: wizchat.com/v1
kind: ChatbotConfig
spec:
  core: {{name: "${{chatbot}}"}}
  security: {{rateLimitPerMinute: {rpm}}}
"""
ENV = {"WIZCHAT_ACME_STAGING_KEY": "wpk_test_" + "x" * 32}


def write(tmp: Path, *, core: str = "temperature: 0.5", transport: str = "http", rpm: str = "60", extra: str = "") -> Path:
    (tmp / "bot.yaml").write_text(SOURCE.format(rpm=rpm))
    (tmp / "wizsync.yaml").write_text(MANIFEST.format(core=core, transport=transport, extra=extra))
    return tmp / "wizsync.yaml"


def validate(path: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["validate", str(path), *args], env=ENV, catch_exceptions=False)


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_a_valid_manifest_passes(tmp_path: Path, secret_scan: Any) -> None:
    result = validate(write(tmp_path))
    secret_scan.record("validate output", result.output)
    assert result.exit_code == 0, result.output


def test_a_typo_in_core_fails_offline_with_a_did_you_mean(tmp_path: Path, secret_scan: Any) -> None:
    manifest = write(tmp_path, core="temprature: 0.5")
    result = validate(manifest)
    secret_scan.record("validate output", result.output)
    assert result.exit_code == 1
    line = line_of(manifest, "temprature")
    assert f"wizsync.yaml:{line}: overlays.staging.spec.core.temprature: unknown key 'temprature'" in result.stderr
    assert "Did you mean 'temperature'?" in result.stderr
    assert "docs/manifest.md" in result.stderr


def test_a_wrong_type_fails_offline_with_the_manifest_line(tmp_path: Path, secret_scan: Any) -> None:
    manifest = write(tmp_path, core="temperature: hot")
    result = validate(manifest, "--json")
    secret_scan.record("validate output", result.output)
    assert result.exit_code == 1
    (error,) = json.loads(result.stdout)["errors"]
    assert error["line"] == line_of(manifest, "temperature: hot")
    assert error["key"] == "overlays.staging.spec.core.temperature"
    assert "must be a number" in error["message"] and "hot" not in error["message"]


def test_three_typos_give_three_errors_human_and_json(tmp_path: Path, secret_scan: Any) -> None:
    manifest = write(tmp_path, core="temprature: 0.5", transport="websocket", rpm="lots")
    human = validate(manifest)
    machine = validate(manifest, "--json")
    secret_scan.record("validate output", human.output + machine.output)
    assert human.exit_code == machine.exit_code == 1
    keys = [e["key"] for e in json.loads(machine.stdout)["errors"]]
    assert sorted(keys) == [
        "chatbots[1].overrides.staging.spec.mcpServers[0].transport",
        "overlays.staging.spec.core.temprature",
        "spec.security.rateLimitPerMinute",
    ]
    assert human.stderr.count("Error: ") == 3 and "3 problems found." in human.stderr
    assert f"bot.yaml:{line_of(tmp_path / 'bot.yaml', 'rateLimitPerMinute')}: spec.security.rateLimitPerMinute" in human.stderr
    assert "must be 'http' or 'sse'" in human.stderr


def test_plan_refuses_the_same_errors_before_any_request(tmp_path: Path, secret_scan: Any) -> None:
    # The base URL is a closed port: an attempted request would fail differently.
    manifest = write(tmp_path, core="temprature: 0.5", transport="websocket")
    result = CliRunner().invoke(cli, ["plan", str(manifest), "--env", "staging", "--journal", str(tmp_path / "j.db")],
                                env=ENV, catch_exceptions=False)
    secret_scan.record("plan output", result.output)
    assert result.exit_code == 1
    assert "unknown key 'temprature'" in result.stderr and "must be 'http' or 'sse'" in result.stderr
    assert "2 problems found." in result.stderr


def test_allow_unknown_lets_a_newer_field_through_and_nothing_else(tmp_path: Path, secret_scan: Any) -> None:
    manifest = write(tmp_path, core="avatarUrl: https://cdn.example/a.png, temprature: 0.5",
                     extra="allowUnknown: [spec.core.avatarUrl]\n")
    result = validate(manifest, "--json")
    secret_scan.record("validate output", result.output)
    assert [e["key"] for e in json.loads(result.stdout)["errors"]] == ["overlays.staging.spec.core.temprature"]
    rendered = CliRunner().invoke(cli, ["render", str(manifest), "--env", "staging", "--chatbot", "from-file"],
                                  env=ENV, catch_exceptions=False)
    assert rendered.exit_code == 1  # the typo still fails
    manifest = write(tmp_path, core="avatarUrl: https://cdn.example/a.png", extra="allowUnknown: [spec.core.avatarUrl]\n")
    rendered = CliRunner().invoke(cli, ["render", str(manifest), "--env", "staging", "--chatbot", "from-file"],
                                  env=ENV, catch_exceptions=False)
    secret_scan.record("render output", rendered.output)
    assert rendered.exit_code == 0, rendered.output
    assert "avatarUrl: https://cdn.example/a.png" in rendered.stdout


def test_an_allow_unknown_entry_is_a_document_path(tmp_path: Path, secret_scan: Any) -> None:
    manifest = write(tmp_path, extra="allowUnknown: [core.avatarUrl]\n")
    result = validate(manifest)
    secret_scan.record("validate output", result.output)
    assert result.exit_code == 1
    assert f"wizsync.yaml:{line_of(manifest, 'allowUnknown')}: allowUnknown" in result.stderr
    assert "write spec.core.avatarUrl" in result.stderr


def test_manifest_schema_and_reference_errors_are_all_listed(tmp_path: Path, secret_scan: Any) -> None:
    manifest = write(tmp_path)
    text = manifest.read_text().replace("    tenant: acme\n    ids: {staging: cb_file}", "    tenant: acme\n    lables: {a: b}\n    ids: {stagin: cb_file}")
    text = text.replace("source: {self: true}", "source: {self: true}\n    wave: nope")
    manifest.write_text(text.replace("environments:", "environment: {}\nenvironments:"))
    result = validate(manifest, "--json")
    secret_scan.record("validate output", result.output)
    keys = [e["key"] for e in json.loads(result.stdout)["errors"]]
    assert keys == ["environment", "chatbots[0].lables"]  # schema errors first: references need a valid schema
    manifest.write_text(text)
    result = validate(manifest, "--json")
    keys = [e["key"] for e in json.loads(result.stdout)["errors"]]
    assert keys == ["chatbots[0].lables"]
    manifest.write_text(text.replace("    lables: {a: b}\n", ""))
    result = validate(manifest, "--json")
    keys = [e["key"] for e in json.loads(result.stdout)["errors"]]
    assert keys == ["chatbots[0].ids.stagin", "chatbots[1].wave"]


def test_every_bad_template_of_a_document_is_reported(tmp_path: Path, secret_scan: Any) -> None:
    manifest = write(tmp_path, core="temperature: '${temp}', model: '${modl}', temprature: 1")
    result = validate(manifest, "--json")
    secret_scan.record("validate output", result.output)
    errors = json.loads(result.stdout)["errors"]
    assert sorted(e["key"] for e in errors) == [
        "overlays.staging.spec.core.model", "overlays.staging.spec.core.temperature", "overlays.staging.spec.core.temprature",
    ]
    assert sum("undefined variable" in e["message"] for e in errors) == 2
