"""`plan --format markdown`: the pull-request comment / job summary, pinned by a snapshot, and bounded.

The snapshot (tests/data/snapshots/plan.md) is the reviewed text: a change to the format shows
up as a diff of that file in the pull request that makes it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from report_fixtures import SECRET, acme_report, globex_report
from wizsync.report.markdown import GITHUB_COMMENT_LIMIT, render_markdown
from wizsync.report.summary import Estimate

SNAPSHOT = Path(__file__).parent / "data" / "snapshots" / "plan.md"
KEYS = {"acme/production": {"requests": 12, "throttled": 2, "retries": 1}, "globex/production": {"requests": 3}}


def _reports() -> list:
    return [globex_report(), acme_report(), acme_report(name="acme-sales", chatbot_id="cb_124",
                                                        error={"code": "not_found", "message": "no chatbot cb_124"})]


def test_markdown_matches_the_snapshot_and_calls_out_deletes() -> None:
    text = render_markdown(_reports(), environment="production", run_id="r20261201-120000-ab12", keys=KEYS,
                           estimate=Estimate(requests=10, floor_seconds=1.5), forbidden=[SECRET])
    assert text == SNAPSHOT.read_text(encoding="utf-8")
    assert "### :warning: Deletes (2)" in text and "`globex-bot` (globex): mcpServers `legacy`" in text
    assert "<details><summary><code>acme-support</code>" in text
    assert SECRET not in text


def test_a_large_fleet_is_truncated_under_githubs_limit_with_a_note() -> None:
    base = acme_report()
    reports = [replace(base, name=f"acme-bot-{i:04d}", chatbot_id=f"cb_{i}") for i in range(3000)]
    text = render_markdown(reports, environment="production", run_id="r1")
    assert len(text) <= GITHUB_COMMENT_LIMIT
    assert "**Truncated**" in text and "more changed chatbot(s) not shown" in text
    assert "3000 chatbots, **3000 with changes**" in text  # the counts still cover every chatbot
    shown = text.count("<details><summary><code>acme-bot-")
    assert 0 < shown < 3000 and f"{3000 - shown} more changed chatbot(s)" in text
    # 3000 deletes alone would overflow: as many as fit, and the number left out
    assert "- **and " in text and " more deletes**" in text


def _spooled(reports: list, forbidden: list) -> str:
    import random

    from wizsync.report.markdown import render_parts
    from wizsync.report.spool import MARKDOWN, ReportSpool

    landed = list(reports)
    random.Random(14).shuffle(landed)  # dry-runs land in any order; the summary's order is the report's
    with ReportSpool(MARKDOWN, forbidden) as spool:
        for r in landed:
            spool.add(r)
        return render_parts(spool.markdown_parts(), environment="production", run_id="r20261201-120000-ab12", keys=KEYS,
                            estimate=Estimate(requests=10, floor_seconds=1.5), forbidden=forbidden)


def test_the_summary_from_spooled_rows_is_the_text_of_the_whole_one() -> None:
    # `plan --format markdown` renders from a spool of rows, not from every report: same text.
    assert _spooled(_reports(), [SECRET]) == SNAPSHOT.read_text(encoding="utf-8")
    base = acme_report()
    big = [replace(base, name=f"acme-bot-{i:04d}", chatbot_id=f"cb_{i}") for i in range(3000)]
    big += [replace(base, name=f"acme-bad-{i}", chatbot_id=f"cb_x{i}", error={"code": "not_found", "message": f"no {SECRET}"})
            for i in range(3)]
    text = _spooled(big, [SECRET])
    assert text == render_markdown(big, environment="production", run_id="r20261201-120000-ab12", keys=KEYS,
                                   estimate=Estimate(requests=10, floor_seconds=1.5), forbidden=[SECRET])
    assert "**Truncated**" in text and "### Could not be planned (3)" in text and SECRET not in text
