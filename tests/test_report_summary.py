"""Fleet totals, deletes listed one by one, per-key counts and the apply-time floor."""

from __future__ import annotations

import pytest
from report_fixtures import CONTROL_RE, acme_report, globex_report, noop_plan

from wizsync.report.model import ChatbotReport
from wizsync.report.summary import (
    DeleteRef,
    compute_totals,
    count_apply_requests,
    estimate_apply,
    render_summary,
)


@pytest.mark.parametrize(
    "requests, rates, bursts, floor",
    [
        ({}, {}, {}, 0.0),
        ({"a": 100}, {"a": 10}, {"a": 20}, 8.0),  # (100 - 20) / 10
        ({"a": 15}, {"a": 10}, {"a": 20}, 0.0),  # fits in the burst
        ({"a": 100, "b": 300}, {"a": 10, "b": 10}, {"a": 20, "b": 20}, 28.0),  # keys in parallel: the max
        ({"a": 100, "b": 300}, {"a": 10, "b": 50}, {"a": 0, "b": 0}, 10.0),  # slow key dominates
        ({"a": 7}, {"a": 0.5}, {}, 14.0),  # missing burst counts as 0
        ({"a": 100, "b": 50}, {"a": 10}, {"a": 0}, 10.0),  # unknown rate for b: excluded
    ],
)
def test_estimate_floor_table(requests, rates, bursts, floor):
    assert estimate_apply(requests, rates, bursts).floor_seconds == pytest.approx(floor)


def test_estimate_names_keys_without_a_known_rate():
    est = estimate_apply({"a": 100, "b": 50, "c": 0}, {"a": 10, "b": 0}, {"a": 20})
    assert est.requests == 150
    assert est.by_key == {"a": 8.0}
    assert est.unknown == ("b",)  # c sends nothing, so its rate does not matter


def test_totals_and_deletes_across_chatbots():
    reports = [
        acme_report(),
        globex_report(),
        ChatbotReport("calm", "acme", "cb_5", noop_plan(4)),
        ChatbotReport("broken", "acme", "cb_6", error={"code": "unauthorized", "message": "bad key"}),
    ]
    t = compute_totals(reports)
    assert t.as_dict() == {
        "chatbots": 4,
        "chatbots_with_changes": 2,
        "errors": 1,
        "failed": 0,
        "create": 1,
        "update": 2,
        "delete": 2,
        "noop": 9,
    }
    assert count_apply_requests(reports) == {"acme": 2, "globex": 2}
    assert count_apply_requests(reports, per_chatbot=3, label_of=lambda r: f"{r.tenant}/prod") == {
        "acme/prod": 3,
        "globex/prod": 3,
    }


def test_rendered_summary_lists_every_delete_counts_and_estimate():
    reports = [globex_report(), acme_report()]
    from wizsync.report.summary import list_deletes

    deletes = list_deletes(reports)
    assert deletes == [
        DeleteRef("acme-support", "acme", "domains", "old.acme.example"),
        DeleteRef("globex-bot", "globex", "mcpServers", "legacy"),
    ]
    keys = {"globex": {"requests": 30, "throttled": 2, "retries": 1}, "acme": {"requests": 24}}
    est = estimate_apply({"acme": 2, "globex": 2}, {"acme": 10, "globex": 10}, {"acme": 0, "globex": 0})
    text = render_summary(compute_totals(reports), deletes, keys, est).plain
    lines = text.splitlines()
    assert lines[0] == (
        "Plan: 2 chatbots, 2 with changes: 1 to create, 2 to update, 2 to delete, 5 unchanged"
    )
    assert "Deletes (2), review before apply:" in lines
    assert "  - acme-support (acme) domains old.acme.example" in lines
    assert "  - globex-bot (globex) mcpServers legacy" in lines
    assert "  acme    24 requests, 0 throttled (429), 0 retries" in lines
    assert "  globex  30 requests, 2 throttled (429), 1 retries" in lines
    assert lines[-1] == (
        "Estimate: apply needs ~4 requests; at the known rate limits it will take ≥ 0.2 s (floor)"
    )
    assert not CONTROL_RE.search(text)


def test_long_estimates_read_in_minutes():
    est = estimate_apply({"a": 3020}, {"a": 10}, {"a": 20})
    text = render_summary(compute_totals([]), estimate=est).plain
    assert "≥ 5 min 00 s (floor)" in text


def test_full_plan_report_diffs_then_summary():
    from wizsync.report.summary import render_report

    reports = [acme_report(), ChatbotReport("calm", "acme", "cb_5", noop_plan(4))]
    full = render_report(reports).plain.splitlines()
    assert full[0].startswith("acme-support (acme, cb_123): 1 to create")
    assert "calm (acme, cb_5): 0 to create, 0 to update, 0 to delete, 4 unchanged" in full
    assert full[-2:] == ["Deletes (1), review before apply:", "  - acme-support (acme) domains old.acme.example"]
    assert any(ln.startswith("Plan: 2 chatbots, 1 with changes") for ln in full)
    short = render_report(reports, only_changes=True).plain
    assert "calm" not in short and "Plan: 2 chatbots, 1 with changes" in short
