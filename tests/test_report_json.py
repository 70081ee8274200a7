"""The --json document: stable shape, same input → same bytes, secrets masked."""

from __future__ import annotations

import json

from report_fixtures import API_KEY, SECRET, acme_desired, acme_report, acme_result, globex_report

from wizchat_management.models import FailedOperation, Plan
from wizsync.report.jsonout import build_document, dumps, plan_document
from wizsync.report.model import ChatbotReport
from wizsync.report.summary import estimate_apply

TOP_KEYS = [
    "schema",
    "command",
    "run_id",
    "environment",
    "status",
    "run",
    "chatbots",
    "totals",
    "deletes",
    "keys",
    "estimate",
    "error",  # null on success: every --json document has it (docs/json.md)
]
CHATBOT_KEYS = [
    "name",
    "tenant",
    "chatbot_id",
    "state",
    "batch",
    "revision",
    "summary",
    "operations",
    "failed",
    "error",
]


def _doc(reports, keys):
    est = estimate_apply({"acme": 2, "globex": 2}, {"acme": 10.0, "globex": 10.0}, {"acme": 0, "globex": 0})
    return plan_document(reports, run_id="r_1", environment="production", keys=keys, estimate=est)


def test_plan_json_shape_and_round_trip():
    keys = {"globex": {"requests": 3, "throttled": 1, "retries": 1}, "acme": {"requests": 5}}
    doc = _doc([globex_report(), acme_report()], keys)
    text = dumps(doc)
    assert json.loads(text) == doc
    assert list(doc) == TOP_KEYS
    assert doc["schema"] == "wizsync.report/v1" and doc["command"] == "plan" and doc["status"] == "completed"
    assert doc["error"] is None
    assert [c["name"] for c in doc["chatbots"]] == ["acme-support", "globex-bot"]
    acme = doc["chatbots"][0]
    assert list(acme) == CHATBOT_KEYS
    assert acme["summary"] == {"create": 1, "update": 2, "delete": 1, "noop": 3}
    assert acme["revision"] == 7 and acme["error"] is None and acme["failed"] is None
    # Every operation, noop included, with enum values as plain strings.
    assert [(o["op"], o["section"], o["key"]) for o in acme["operations"]] == [
        ("update", "core", None),
        ("noop", "security", None),
        ("noop", "telemetry", None),
        ("delete", "domains", "old.acme.example"),
        ("create", "mcpServers", "search"),
        ("update", "mcpServers", "docs"),
        ("noop", "skills", "faq"),
    ]
    docs_change = acme["operations"][5]["changes"][0]
    assert docs_change == {
        "path": "headers.Authorization",
        "before": "<redacted>",
        "after": "Bearer <secret:ACME_DOCS_TOKEN>",
    }
    assert doc["totals"]["delete"] == 2 and doc["totals"]["chatbots_with_changes"] == 2
    assert doc["deletes"] == [
        {"chatbot": "acme-support", "tenant": "acme", "section": "domains", "key": "old.acme.example"},
        {"chatbot": "globex-bot", "tenant": "globex", "section": "mcpServers", "key": "legacy"},
    ]
    assert doc["keys"] == {
        "acme": {"requests": 5, "throttled": 0, "retries": 0},
        "globex": {"requests": 3, "throttled": 1, "retries": 1},
    }
    assert doc["estimate"] == {"requests": 4, "floor_seconds": 0.2, "by_key": {"acme": 0.2, "globex": 0.2}, "unknown": []}


def test_same_input_same_bytes_whatever_the_arrival_order():
    # Concurrent plans finish in any order, and dicts arrive in any key order.
    desired_a = acme_desired()
    desired_b = json.loads(json.dumps(acme_desired()))
    desired_b["spec"] = dict(reversed(list(desired_b["spec"].items())))
    plan = Plan.model_validate(
        {
            "summary": {"create": 0, "update": 1, "delete": 0, "noop": 0},
            "operations": [
                {
                    "op": "update",
                    "section": "core",
                    "key": None,
                    "changes": [{"path": "extra", "before": {"b": 1, "a": [2, {"z": 1, "y": 2}]}, "after": None}],
                }
            ],
        }
    )
    plan_b = Plan.model_validate(
        {
            "summary": {"create": 0, "update": 1, "delete": 0, "noop": 0},
            "operations": [
                {
                    "op": "update",
                    "section": "core",
                    "key": None,
                    "changes": [{"path": "extra", "before": {"a": [2, {"y": 2, "z": 1}], "b": 1}, "after": None}],
                }
            ],
        }
    )
    keys_a = {"acme": {"requests": 5, "retries": 0, "throttled": 0}, "globex": {"requests": 1}}
    keys_b = {"globex": {"requests": 1}, "acme": {"throttled": 0, "requests": 5, "retries": 0}}
    one = dumps(_doc([acme_report(desired=desired_a), globex_report(), ChatbotReport("z", "acme", None, plan)], keys_a))
    two = dumps(_doc([ChatbotReport("z", "acme", None, plan_b), globex_report(), acme_report(desired=desired_b)], keys_b))
    assert one == two
    assert one.isascii() and one.endswith("}\n")


def test_forbidden_values_never_reach_the_json():
    plan = Plan.model_validate(
        {
            "summary": {"create": 0, "update": 1, "delete": 0, "noop": 0},
            "operations": [
                {
                    "op": "update",
                    "section": "core",
                    "key": None,
                    "changes": [{"path": "systemPrompt", "before": None, "after": f"use {SECRET}"}],
                }
            ],
        }
    )
    reports = [
        ChatbotReport("b", "t", None, plan),
        ChatbotReport("c", "t", None, error={"code": "unauthorized", "message": f"key {API_KEY} rejected"}),
    ]
    text = dumps(build_document("apply", reports, run_id="r", status="halted", forbidden=[SECRET, API_KEY]))
    assert SECRET not in text and API_KEY not in text
    doc = json.loads(text)
    assert doc["command"] == "apply" and doc["status"] == "halted"
    assert doc["chatbots"][0]["operations"][0]["changes"][0]["after"] == "use ***"
    assert doc["chatbots"][1]["error"] == {"code": "unauthorized", "message": "key *** rejected"}


def test_show_from_journal_rows_without_operations():
    # `show` has journal rows: summary, state, batch, revision, no server answer.
    rows = [
        ChatbotReport("a", "acme", "cb_1", summary={"create": 0, "update": 2, "delete": 0, "noop": 4}, state="applied", batch=1, revision=8),
        ChatbotReport("b", "acme", "cb_2", summary={"noop": 6}, state="unchanged", batch=2, revision=3),
    ]
    doc = build_document(
        "show", rows, run_id="r_9", environment="staging", status="completed", run={"started": "2026-01-01T00:00:00Z", "command": "apply"}
    )
    assert list(doc["run"]) == ["command", "started"]
    assert [(c["state"], c["batch"], c["revision"], c["operations"]) for c in doc["chatbots"]] == [
        ("applied", 1, 8, []),
        ("unchanged", 2, 3, []),
    ]
    assert doc["chatbots"][1]["summary"] == {"create": 0, "update": 0, "delete": 0, "noop": 6}
    assert doc["totals"]["update"] == 2 and doc["totals"]["chatbots_with_changes"] == 1
    assert doc["estimate"] is None and doc["keys"] == {}
    assert json.loads(dumps(doc)) == doc


def test_apply_result_with_failure_is_reported():
    res = acme_result(dry_run=False).model_copy(
        update={
            "failed": FailedOperation.model_validate(
                {"op": "create", "section": "mcpServers", "key": "search", "code": "mcp_unreachable", "message": "down"}
            )
        }
    )
    entry = build_document("apply", [acme_report(result=res, state="failed")])["chatbots"][0]
    assert entry["failed"] == {
        "op": "create",
        "section": "mcpServers",
        "key": "search",
        "code": "mcp_unreachable",
        "message": "down",
    }
    assert entry["state"] == "failed"
