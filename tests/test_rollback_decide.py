"""Rollback's decision as a table: what the run changed (the one "may have applied" rule's
operations) and the snapshot taken before it → the document that restores it, and what cannot
be restored. No HTTP, no SQLite; test_apply_rollback.py and test_rollback_*.py prove the
restored documents against the emulator.
"""

from __future__ import annotations

from typing import Any

import pytest

from wizchat_management.models import Operation
from wizsync.rollback.restore import Loss, restore_document

SECRET_HEADER = {"Authorization": "<redacted>"}
SNAPSHOT = {
    "apiVersion": "wizchat.com/v1",
    "kind": "ChatbotConfig",
    "spec": {
        "core": {"name": "Support", "temperature": 0.2},
        "security": {"allowedOrigins": ["https://acme.example"], "webhookSecret": "<redacted>"},
        "mcpServers": [{"name": "search", "url": "https://mcp.example/s", "headers": SECRET_HEADER},
                       {"name": "docs", "url": "https://mcp.example/d"}],
        "domains": [{"hostname": "acme.example"}],
    },
}
UNTOUCHED = dict.fromkeys(("core", "security", "telemetry", "domains", "mcpServers", "skills"))


def op(kind: str, section: str, key: str | None = None, *paths: str) -> Operation:
    return Operation.model_validate({"op": kind, "section": section, "key": key,
                                     "changes": [{"path": p, "before": None, "after": 1} for p in paths] or None})


def spec(**sections: Any) -> dict[str, Any]:
    return {**UNTOUCHED, **sections}


def lost(field: str, why: str) -> Loss:
    return Loss("acme-support", field, why)


DELETED_WITH_SECRETS = ("deleted by run r1; it carried write-only secrets, so it cannot be re-created: "
                        "re-add it with its secrets")
SECRET_CHANGED = "changed by run r1; secret values are write-only and cannot be restored"

ROWS: dict[str, tuple[list[Operation], dict[str, Any], dict[str, Any], list[Loss]]] = {
    "nothing changed: every section unmanaged": ([], SNAPSHOT, spec(), []),
    "an object section comes back whole; others stay unmanaged": (
        [op("update", "core", None, "temperature")], SNAPSHOT, spec(core={"name": "Support", "temperature": 0.2}), []),
    "a key the run added to an object section is removed (null)": (
        [op("update", "core", None, "instructions", "limits.maxTokens")], SNAPSHOT,
        spec(core={"name": "Support", "temperature": 0.2, "instructions": None, "limits": None}), []),
    "an array section comes back whole (prune removes what the run created)": (
        [op("create", "domains", "new.example")], SNAPSHOT, spec(domains=[{"hostname": "acme.example"}]), []),
    "an item the run deleted comes back": (
        [op("delete", "mcpServers", "docs")], SNAPSHOT,
        spec(mcpServers=SNAPSHOT["spec"]["mcpServers"]), []),
    "an item the run deleted that carried secrets cannot be re-created": (
        [op("delete", "mcpServers", "search")], SNAPSHOT,
        spec(mcpServers=[{"name": "docs", "url": "https://mcp.example/d"}]),
        [lost("mcpServers[search]", DELETED_WITH_SECRETS)]),
    "a secret the run changed is named, the rest of the section restored": (
        [op("update", "security", None, "webhookSecret", "allowedOrigins")], SNAPSHOT,
        spec(security={"allowedOrigins": ["https://acme.example"], "webhookSecret": "<redacted>"}),
        [lost("security.webhookSecret", SECRET_CHANGED)]),
    "an item's secret header the run changed is named with the item": (
        [op("update", "mcpServers", "search", "headers.Authorization", "url")], SNAPSHOT,
        spec(mcpServers=SNAPSHOT["spec"]["mcpServers"]), [lost("mcpServers[search].headers.Authorization", SECRET_CHANGED)]),
    "a section the snapshot did not have is given as it was: absent": (
        [op("create", "skills", "faq")], SNAPSHOT, spec(), []),
    "a created secret is not a loss (there was no old value)": (
        [op("create", "mcpServers", "new", "headers.Authorization")], SNAPSHOT,
        spec(mcpServers=SNAPSHOT["spec"]["mcpServers"]), []),
    "a snapshot without apiVersion or kind gets the defaults": (
        [op("update", "core", None, "name")], {"spec": {"core": {"name": "Support"}}}, spec(core={"name": "Support"}), []),
}


@pytest.mark.parametrize(("ops", "snapshot", "expected_spec", "expected_losses"), ROWS.values(), ids=ROWS.keys())
def test_restore_document(ops: list[Operation], snapshot: dict[str, Any], expected_spec: dict[str, Any],
                          expected_losses: list[Loss]) -> None:
    doc, losses = restore_document("acme-support", ops, snapshot, "r1")
    assert doc == {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig", "spec": expected_spec}
    assert losses == expected_losses
