"""Hostile input is refused cheaply (issue 11 §4): YAML alias bombs, huge files, file sources
outside the manifest's folder, and API keys that are more than one printable token.

The CI recipe plans every pull request, so a manifest may be written by anyone: nothing in
it may cost the runner its memory, read the rest of the machine, or print a key.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from wizchat_management import AsyncWizChatClient, WizChatClient, WizChatConnectionError
from wizchat_management.emulator import EmulatorServer
from wizsync.cli import cli
from wizsync.manifest import ManifestError, load_manifest
from wizsync.manifest import yaml_marks
from wizsync.manifest.loader import MAX_FILE_BYTES
from wizsync.manifest.yaml_marks import load_located_yaml


def bomb(levels: int = 9, width: int = 9) -> str:
    """The "billion laughs": ``width ** levels`` strings from a few KB of text."""
    lines = ["version: 1", f"l0: &l0 [{', '.join(['ha-' * 80] * width)}]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    lines += ["environments: {staging: {}}", "tenants: {acme: {keys: {staging: {env: K}}}}", f"chatbots: *l{levels}"]
    return "\n".join(lines) + "\n"


# Runs in a child process: imports first, then limits of its own (CPU and address space
# above what the imports took), then one load_manifest, measured from inside.
CHILD = textwrap.dedent("""\
    import json, resource, sys, time
    from wizsync.manifest import ManifestError, load_manifest

    def vm_bytes():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))

    resource.setrlimit(resource.RLIMIT_AS, (vm_bytes() + 100 * 1024 * 1024, resource.RLIM_INFINITY))
    used = resource.getrusage(resource.RUSAGE_SELF)
    resource.setrlimit(resource.RLIMIT_CPU, (int(used.ru_utime + used.ru_stime) + 5, resource.RLIM_INFINITY))
    cpu0, rss0 = time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        load_manifest(sys.argv[1])
        message = None
    except ManifestError as exc:
        message = str(exc)
    print(json.dumps({"message": message, "cpu": time.process_time() - cpu0,
                      "rss_growth_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0}))
""")


def test_a_3kb_alias_bomb_is_refused_in_well_under_a_second_and_100_mb(tmp_path: Path) -> None:
    path = tmp_path / "wizsync.yaml"
    path.write_text(bomb())
    assert 2500 < path.stat().st_size < 4096  # the 3 KB
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr  # not killed by its CPU or memory limit
    result = json.loads(proc.stdout)
    assert result["message"] is not None, "the bomb was loaded"
    assert "refused: its aliases expand to more than 1,000,000 values" in result["message"]
    assert "billion laughs" in result["message"] and str(path) in result["message"]
    assert result["cpu"] < 1.0, result
    assert result["rss_growth_kb"] < 100 * 1024, result


def test_the_bomb_through_the_cli_is_a_clear_error(tmp_path: Path, secret_scan: Any) -> None:
    (tmp_path / "wizsync.yaml").write_text(bomb())
    for command in (["validate", "wizsync.yaml"], ["plan", "wizsync.yaml", "--env", "staging"]):
        proc = secret_scan.run(command, cwd=tmp_path, env={"K": "wpk_test_" + "k" * 24}, timeout=60)
        assert proc.returncode == 1, proc.stderr
        assert "wizsync.yaml:" in proc.stderr and "refused: its aliases expand" in proc.stderr
        assert "Traceback" not in proc.stderr and "ha-ha" not in proc.stderr


def test_aliases_are_bounded_in_count_and_may_not_contain_themselves(monkeypatch: pytest.MonkeyPatch) -> None:
    shared = "base: &b {tier: gold, wave: canary}\n" + "".join(f"e{i}: {{<<: *b, n: {i}}}\n" for i in range(12))
    assert load_located_yaml(shared, "f").data["e11"] == {"tier": "gold", "wave": "canary", "n": 11}  # anchors are fine
    monkeypatch.setattr(yaml_marks, "MAX_ALIASES", 10)
    with pytest.raises(ManifestError, match=r"refused: it uses 12 aliases \(at most 10\)"):
        load_located_yaml(shared, "f")
    with pytest.raises(ManifestError, match=r"f:2: refused: an alias refers to a node that contains it"):
        load_located_yaml("a: 1\nb: &loop {c: [*loop]}\n", "f")


def test_a_file_larger_than_the_cap_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "wizsync.yaml"
    with path.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk, and never read whole
    with pytest.raises(ManifestError, match=f"refused: the file is larger than {MAX_FILE_BYTES:,} bytes"):
        load_manifest(path)


def test_yaml_errors_do_not_quote_the_file(tmp_path: Path) -> None:
    for text in ("a: *hunter2-secret\n", 'a: "hunter2\\q-secret"\n', "a: !hunter2-secret x\n"):
        with pytest.raises(ManifestError) as info:
            load_located_yaml(text, "f")
        assert "hunter2" not in str(info.value) and "f:1: invalid YAML" in str(info.value)
    with pytest.raises(ManifestError, match=r"did not find expected ',' or '\]'"):  # punctuation is kept
        load_located_yaml("a: [b\n", "f")


# -- file sources stay inside the manifest's folder tree -------------------------------------

SHADOW = "root:$6$hostile-salt$SHADOWHASHSHADOWHASH:19000:0:99999:7:::\n"
SOURCE_MANIFEST = """\
version: 1
environments: {{staging: {{}}}}
tenants: {{acme: {{keys: {{staging: {{env: K}}}}}}}}
{extra}chatbots:
  - name: bot
    tenant: acme
    ids: {{staging: cb_1}}
    source: {{file: {source}}}
"""


def source_case(root: Path, source: str, extra: str = "") -> Path:
    work = root / "repo"
    (work / "configs").mkdir(parents=True, exist_ok=True)
    (work / "configs" / "ok.yaml").write_text("spec: {core: {temperature: 0.4}}\n")
    (root / "outside").mkdir(exist_ok=True)
    (root / "outside" / "shadow").write_text(SHADOW)
    (root / "outside" / "bot.yaml").write_text("spec: {core: {temperature: 0.5}}\n")
    (work / "wizsync.yaml").write_text(SOURCE_MANIFEST.format(source=source, extra=extra))
    return work


@pytest.mark.parametrize(
    "source, through",
    [("../outside/shadow", ""), ("ABSOLUTE", ""), ("configs/link", " through a symlink"), ("configs/../../outside/bot.yaml", "")],
)
def test_a_file_source_outside_the_manifest_folder_is_refused_unread(
    source: str, through: str, tmp_path: Path, secret_scan: Any
) -> None:
    secret_scan.register("the shadow file's hash", "SHADOWHASHSHADOWHASH")
    source = str(tmp_path / "outside" / "shadow") if source == "ABSOLUTE" else source
    work = source_case(tmp_path, source)
    (work / "configs" / "link").symlink_to(tmp_path / "outside" / "shadow")
    for command in (["validate", "wizsync.yaml"], ["render", "wizsync.yaml", "--env", "staging"]):
        proc = secret_scan.run(command, cwd=work, env={"K": "wpk_test_" + "k" * 24})
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert f"wizsync.yaml:8: chatbots[0].source.file: refused: source file '{source}' is outside the manifest's folder{through}" in proc.stderr
        assert "fileRoots" in proc.stderr and "Traceback" not in proc.stderr and "root:" not in proc.stderr


def test_file_roots_allow_a_folder_and_symlinks_inside_the_tree_are_fine(tmp_path: Path, secret_scan: Any) -> None:
    work = source_case(tmp_path, "../outside/bot.yaml", extra="fileRoots: [../outside]\n")
    proc = secret_scan.run(["render", "wizsync.yaml", "--env", "staging"], cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert "temperature: 0.5" in proc.stdout

    (work / "configs" / "alias.yaml").symlink_to(work / "configs" / "ok.yaml")
    (work / "wizsync.yaml").write_text(SOURCE_MANIFEST.format(source="configs/alias.yaml", extra=""))
    proc = secret_scan.run(["render", "wizsync.yaml", "--env", "staging"], cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert "temperature: 0.4" in proc.stdout


# -- API keys: one printable token, never echoed --------------------------------------------

KEY_MANIFEST = """\
version: 1
environments:
  staging: {{baseUrl: "{base}"}}
tenants:
  acme:
    keys: {{staging: {key}}}
chatbots:
  - discover: {{tenant: acme, match: "support-*"}}
    source: {{self: true}}
"""
COMMANDS = [
    ["validate", "wizsync.yaml", "--check-keys"],
    ["export", "wizsync.yaml", "--env", "staging", "--out", "out"],
    ["render", "wizsync.yaml", "--env", "staging", "--online"],
    ["plan", "wizsync.yaml", "--env", "staging"],
]


@pytest.fixture(scope="module")
def emu() -> Any:
    with EmulatorServer(seed="demo") as server:
        yield server


def api_requests(emu: EmulatorServer) -> int:
    return sum(1 for r in emu.requests() if r["path"].startswith("/api/"))


@pytest.mark.parametrize(
    "where, value, problem",
    [
        ("file", "{key}\n# the acme staging key, rotated monthly\n", "holds 2 lines"),
        ("env", "{key}\nsecond-line", "holds 2 lines"),
        ("env", "{key} {key}", "holds whitespace (character"),
        ("file", "{key}\x00", "holds a control character (character"),
        ("env", "{key}\u00e9", "holds a non-ASCII character (character"),
    ],
)
def test_a_key_that_is_more_than_one_token_is_refused_naming_its_source_never_its_value(
    where: str, value: str, problem: str, emu: EmulatorServer, tmp_path: Path, secret_scan: Any
) -> None:
    key = emu.keys["acme/staging"]
    value = value.format(key=key)
    secret_scan.register_all(emu.keys)
    secret_scan.register("the malformed key", value.strip())
    env: dict[str, str] = {}
    if where == "file":
        (tmp_path / "acme.key").write_text(value)
        ref, named = "{file: acme.key}", "key file 'acme.key'"
    else:
        env["ACME_KEY"] = value
        ref, named = "{env: ACME_KEY}", "environment variable ACME_KEY"
    (tmp_path / "wizsync.yaml").write_text(KEY_MANIFEST.format(base=emu.base_url, key=ref))
    secret_scan.watch(tmp_path / "out")
    secret_scan.watch_journal(tmp_path / ".wizsync" / "journal.db")
    before = api_requests(emu)
    for command in COMMANDS:
        args = [str(tmp_path / a) if a in ("wizsync.yaml", "out") else a for a in command]
        result = CliRunner().invoke(cli, args, env=env)
        secret_scan.record(f"wizsync {command[0]} stdout", result.stdout)
        secret_scan.record(f"wizsync {command[0]} stderr", result.stderr)
        assert result.exit_code == 1, (command, result.output)
        assert f"refused: {named} (the API key of tenant 'acme' in 'staging') {problem}" in result.stderr, result.stderr
        assert "wizsync.yaml:6: tenants.acme.keys.staging." in result.stderr
        assert "Traceback" not in result.output and key[:12] not in result.output
    assert api_requests(emu) == before  # refused before a single request


def test_the_sdk_never_puts_a_header_value_in_an_exception() -> None:
    key = "wpk_live_" + "s" * 32
    with pytest.raises(ValueError) as info:
        WizChatClient(key + "\n# comment")
    assert key not in str(info.value) and "character 42 of 51" in str(info.value)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.LocalProtocolError(f"Illegal header value b'{request.headers['Authorization']}'")

    client = WizChatClient(key, http_client=httpx.Client(transport=httpx.MockTransport(refuse)))
    with pytest.raises(WizChatConnectionError) as raised:
        client.list_chatbots()
    error = raised.value
    assert key not in str(error) and "headers (their values are not shown)" in str(error)
    assert error.__cause__ is None and error.__suppress_context__  # no traceback shows the original either

    async def run_async() -> WizChatConnectionError:
        transport = httpx.MockTransport(refuse)
        async with AsyncWizChatClient(key, http_client=httpx.AsyncClient(transport=transport)) as aclient:
            try:
                await aclient.list_chatbots()
            except WizChatConnectionError as exc:
                return exc
        raise AssertionError("no error")

    import asyncio

    async_error = asyncio.run(run_async())
    assert key not in str(async_error) and async_error.__cause__ is None


def test_docs_manifest_names_every_manifest_key() -> None:
    from pydantic import BaseModel

    from wizsync.manifest.model import Manifest

    text = (Path(__file__).resolve().parent.parent / "docs" / "manifest.md").read_text()
    seen: set[type[BaseModel]] = set()
    missing: list[str] = []

    def visit(model: type[BaseModel], prefix: str) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, field in model.model_fields.items():
            key = field.alias or name
            if f"`{key}`" not in text:
                missing.append(prefix + key)
            for inner in _models(field.annotation):
                visit(inner, f"{prefix}{key}.")

    visit(Manifest, "")
    assert missing == []
    assert "`fileRoots`" in text and "symlink" in text


def _models(annotation: Any) -> list[Any]:
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models(arg)]

