"""The confirmation prompt shows the per-section summary and every delete before it asks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docs_fleet import cli_env, write_manifest
from wizchat_management.emulator import EmulatorServer
from wizchat_management.models import Operation
from wizsync.apply.batches import ApplyOptions
from wizsync.engine import run
from wizsync.report.prompt import confirmation_preview
from wizsync.run.flows import RefusedError, apply_run
from wizsync.fleet.session import open_session


def test_preview_counts_sections_and_names_every_delete() -> None:
    def op(kind: str, section: str, key: str | None = None) -> Operation:
        return Operation.model_validate({"op": kind, "section": section, "key": key})

    ops = {
        "acme/a": [op("update", "core"), op("delete", "domains", "old.example"), op("noop", "skills", "x")],
        "acme/b": [op("update", "core"), op("create", "mcpServers", "search")],
    }
    text = confirmation_preview(ops, ["acme/a: domains[old.example]"])
    assert text.splitlines() == [
        "Changes by section:",
        "  core        2 chatbot(s): 2 update",
        "  domains     1 chatbot(s): 1 delete",
        "  mcpServers  1 chatbot(s): 1 create",
        "Deletes (1):",
        "  - acme/a: domains[old.example]",
    ]
    assert confirmation_preview({"acme/a": [op("noop", "core")]}, []) == "Nothing to change."


def test_apply_asks_with_the_summary_and_deletes_and_sends_nothing_when_refused(secret_scan: Any, tmp_path: Path, monkeypatch: Any) -> None:
    with EmulatorServer(seed="demo") as emu:
        secret_scan.register_all(emu.keys)
        manifest = write_manifest(tmp_path, emu.base_url)
        for name, value in cli_env(emu.key_env).items():
            monkeypatch.setenv(name, value)
        asked: list[str] = []

        def confirm(question: str) -> bool:
            asked.append(question)
            return False

        session = open_session(manifest, "production", journal=tmp_path / "j.db")
        revisions = lambda: {cb_id: cb.revision for cb_id, cb in emu.state.chatbots.items()}  # noqa: E731
        before = revisions()
        try:
            run(apply_run(session, ApplyOptions(allow_deletes=True), confirm=confirm))
        except RefusedError as exc:
            assert "not confirmed" in str(exc)
        else:
            raise AssertionError("a refused confirmation must refuse the run")
        assert revisions() == before  # nothing applied
    secret_scan.record("question", "\n".join(asked))
    assert len(asked) == 1
    question = asked[0]
    assert question.startswith("Changes by section:"), question
    assert question.rstrip().endswith("?") and "Apply " in question.splitlines()[-1]
    assert "  mcpServers  5 chatbot(s): 5 create" in question.splitlines()
