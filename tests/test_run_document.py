"""A run's JSON document is built from typed journal records: a 422's detail and what the server kept."""

from __future__ import annotations

from pathlib import Path

from wizchat_management.models import Operation, OperationKind, Section

from wizsync.commands.runview import run_document
from wizsync.journal import Journal

CREATE_DOMAIN = {"op": "create", "section": "domains", "key": "help.acme.unverified", "changes": None}
UPDATE_CORE = {"op": "update", "section": "core", "key": None,
               "changes": [{"path": "systemPrompt", "before": "Hi", "after": "Hello"}]}


def test_a_partial_failure_reads_back_as_operations_and_reaches_the_document(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with Journal.open(path) as journal:
        run_id = journal.start_run("apply", "production", "/srv/wizsync.yaml", "sha256:m", {})
        journal.add_items(run_id, [{"name": "acme/support", "tenant": "acme", "chatbot_id": "cb_1", "batch": 0}])
        journal.update_item(run_id, "acme/support", state="planned", plan_ops=[UPDATE_CORE, CREATE_DOMAIN])
        journal.mark_applying(run_id, "acme/support")
        journal.record_result(run_id, "acme/support", "failed", applied_ops=[UPDATE_CORE], revision_after=8,
                              error_code="domain_verification_failed", error_message="DNS record missing",
                              error_section="domains", error_key="help.acme.unverified")
        journal.finish_run(run_id, "halted")

        record = journal.item(run_id, "acme/support")
        assert [(o.op, o.section, o.key) for o in record.planned_operations] == [
            (OperationKind.update, Section.core, None),
            (OperationKind.create, Section.domains, "help.acme.unverified"),
        ]
        assert record.applied_operations == [Operation.model_validate(UPDATE_CORE)]

        (entry,) = run_document(journal, path, run_id)["chatbots"]
    assert entry["applied_ops"] == [UPDATE_CORE]
    assert entry["failed"] == {"op": "create", "section": "domains", "key": "help.acme.unverified",
                               "code": "domain_verification_failed", "message": "DNS record missing"}
    assert entry["state"] == "failed" and entry["revision"] == 8


def test_an_item_with_nothing_applied_says_null_not_an_empty_list(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with Journal.open(path) as journal:
        run_id = journal.start_run("apply", "production", "/srv/wizsync.yaml", "sha256:m", {})
        journal.add_items(run_id, [{"name": "acme/a", "tenant": "acme"}])
        journal.record_result(run_id, "acme/a", "skipped", error_code="not_selected")
        journal.finish_run(run_id, "completed")
        (entry,) = run_document(journal, path, run_id)["chatbots"]
    assert entry["applied_ops"] is None and entry["failed"] is None
    assert entry["error"] == {"code": "not_selected", "message": ""}
