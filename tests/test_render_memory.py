"""What a fleet's documents and manifest keep while a run waits (issue 14 §3), as a user sees it.

Documents wait for their dry-run packed, and the manifest's line index is rebuilt only when an
error needs a line: the rendered documents, their hashes and every located error must be what
they were when all of it was held.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from wizsync.manifest import ManifestError, load_manifest, resolve_targets
from wizsync.render import check_manifest, document_hash, render_target

MANIFEST = """\
version: 1
environments:
  staging: {}
tenants:
  acme:
    keys: {staging: {env: K1}}
defaults:
  sections: [core, skills]
  source: {file: bot.yaml}
overlays:
  staging:
    spec:
      core: {systemPrompt: "Key ${secret:OVERLAY_TOKEN}"}
chatbots:
  - name: bot
    tenant: acme
    ids: {staging: cb_1}
  - name: other
    tenant: acme
    ids: {staging: cb_2}
    overrides:
      staging: {spec: {core: {name: "${nope}"}}}
"""
SOURCE = """\
spec:
  core: {name: "Zürich ${chatbot}", temperature: 1.0, model: m, welcomeMessage: "Grüezi"}
  skills:
    - {name: b, instructions: "second"}
    - {name: a, instructions: "first"}
"""


@pytest.fixture
def manifest_path(tmp_path: Path) -> Path:
    (tmp_path / "bot.yaml").write_text(SOURCE)
    (tmp_path / "wizsync.yaml").write_text(MANIFEST)
    return tmp_path / "wizsync.yaml"


def test_a_waiting_document_comes_back_as_rendered(manifest_path: Path) -> None:
    manifest = load_manifest(manifest_path)
    bot = resolve_targets(manifest, "staging", chatbots=["bot"]).targets[0]
    doc = render_target(manifest, bot)
    core = doc.masked["spec"]["core"]
    # Key order as written (render's YAML and the diffs show it), types as written (1.0 stays a float).
    assert list(core) == ["name", "temperature", "model", "welcomeMessage", "systemPrompt"]
    assert core["name"] == "Zürich bot" and core["temperature"] == 1.0 and isinstance(core["temperature"], float)
    assert [s["name"] for s in doc.masked["spec"]["skills"]] == ["b", "a"]
    assert doc.hash == document_hash(doc.masked)

    # Each render is its own: changing what one hands out changes no other render of the chatbot.
    doc.masked["spec"]["core"]["name"] = "changed"
    again = render_target(manifest, bot)
    assert again.masked["spec"]["core"]["name"] == "Zürich bot"
    assert again.hash == doc.hash
    body = again.resolve({"OVERLAY_TOKEN": "tok"})
    assert body["spec"]["core"]["systemPrompt"] == "Key tok"
    assert again.masked["spec"]["core"]["systemPrompt"] == "Key <secret:OVERLAY_TOKEN>"


def test_errors_after_loading_still_name_file_line_and_key(manifest_path: Path) -> None:
    manifest = load_manifest(manifest_path)
    report = check_manifest(manifest, ["staging"], environ={"K1": "wpk_test_x"})
    texts = sorted(str(e) for e in report.errors)
    lines = MANIFEST.splitlines()
    secret_line = next(i for i, text in enumerate(lines, 1) if "OVERLAY_TOKEN" in text)
    override_line = next(i for i, text in enumerate(lines, 1) if "${nope}" in text)
    assert any(t.startswith(f"{manifest_path}:{secret_line}: overlays.staging.spec.core.systemPrompt: ")
               and "secret OVERLAY_TOKEN is not set" in t for t in texts), texts
    assert any(t.startswith(f"{manifest_path}:{override_line}: chatbots[1].overrides.staging.spec.core.name: ")
               and "undefined variable 'nope'" in t for t in texts), texts

    # A file changed on disk after loading does not move the lines of the manifest that was loaded.
    manifest_path.write_text("# moved\n" * 5 + MANIFEST)
    with pytest.raises(ManifestError) as info:
        raise manifest.error(("chatbots", 1, "overrides"), "probe")
    assert str(info.value).startswith(f"{manifest_path}:{override_line - 1}: chatbots[1].overrides: probe")


EQUIVALENT = [
    MANIFEST,
    "a: 1\nb: [1.5, true, null, ~, 2026-01-02, '3', 0x1f, .inf]\nc: {d: !!str 5, e: \"x\\ty\"}\n",
    "a: &base {k: 1}\nb: {<<: *base, j: 2}\nc: *base\n",  # anchors and merge keys: the composing way
    "---\n- 1\n- [a, {b: c}]\n",
    "",
]


@pytest.mark.parametrize("text", EQUIVALENT)
def test_a_manifest_reads_the_same_without_a_node_tree(text: str) -> None:
    from wizsync.manifest.yaml_marks import load_located_yaml, load_plain_yaml

    assert load_plain_yaml(text, "m.yaml") == load_located_yaml(text, "m.yaml").data


@pytest.mark.parametrize("text", ["a: 1\nb:\n  c: 2\n  c: 3\n", "a: [1\n", "a: 1\n---\nb: 2\n", "a: *nope\n"])
def test_bad_yaml_is_refused_the_same_way(text: str) -> None:
    from wizsync.manifest.yaml_marks import load_located_yaml, load_plain_yaml

    with pytest.raises(ManifestError) as plain:
        load_plain_yaml(text, "m.yaml")
    with pytest.raises(ManifestError) as composed:
        load_located_yaml(text, "m.yaml")
    assert str(plain.value) == str(composed.value)
