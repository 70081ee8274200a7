"""A plan's report streams: rows are spooled as each dry-run lands and read back one at a time.

The report of a 10,000-chatbot plan used to be built whole in memory (every ApplyResult, then the
document, then its text). Now the server's answers are dropped once recorded, and the JSON and
text reports come from the spool with the same bytes as before.
"""

from __future__ import annotations

import gc
import io
import json
from pathlib import Path
from typing import Any, Iterator

from rich.console import Console

from docs_fleet import cli_env, write_manifest
from report_fixtures import SECRET, acme_desired, acme_report, acme_result, globex_report

from wizchat_management.emulator import EmulatorServer
from wizchat_management.models import ApplyResult
from wizsync.engine import run
from wizsync.run.plan_run import run_plan
from wizsync.report.jsonout import build_document, dumps, stream_document
from wizsync.report.model import ChatbotReport
from wizsync.report.spool import JSON, TEXT, ReportSpool
from wizsync.report.summary import print_report, render_report
from wizsync.fleet.session import open_session


def _reports() -> list[ChatbotReport]:
    failed = ChatbotReport(name="acme/broken", tenant="acme", error={"code": "render_error", "message": f"bad {SECRET}"})
    return [globex_report(), acme_report(), failed, ChatbotReport(name="acme/again", tenant="acme", chatbot_id="cb_9",
                                                                   result=acme_result(), desired=acme_desired())]


def test_the_streamed_json_document_has_the_bytes_of_the_whole_one() -> None:
    reports = _reports()
    kw: dict[str, Any] = dict(run_id="r1", environment="production", status="failed", keys={"acme/production": {"requests": 3}},
                              forbidden=[SECRET], error={"code": "chatbots_failed", "message": "1 chatbot(s) could not be planned"})
    with ReportSpool(JSON, [SECRET]) as spool:
        for r in reports:
            spool.add(r)
        streamed = "".join(stream_document("plan", spool.entries(), spool.totals, spool.deletes, **kw))
    assert streamed == dumps(build_document("plan", reports, **kw))
    assert SECRET not in streamed
    with ReportSpool(JSON) as empty:
        assert "".join(stream_document("plan", empty.entries(), empty.totals, empty.deletes)) == dumps(build_document("plan", []))


def test_the_streamed_text_report_prints_what_the_whole_one_did() -> None:
    reports = _reports()
    with ReportSpool(TEXT, [SECRET]) as spool:
        for r in reports:
            spool.add(r)
        for only_changes, only_failures in ((False, False), (True, False), (True, True)):
            whole, streamed = io.StringIO(), io.StringIO()
            Console(file=whole, width=100, color_system=None).print(
                render_report(reports, None, None, [SECRET], only_changes=only_changes, only_failures=only_failures))
            print_report(Console(file=streamed, width=100, color_system=None),
                         spool.lines(only_changes=only_changes, only_problems=only_failures), spool.totals,
                         spool.deletes, None, None, [SECRET])
            assert streamed.getvalue() == whole.getvalue(), (only_changes, only_failures)


def test_the_document_is_written_before_every_row_is_read() -> None:
    rows_read = []

    def rows() -> Iterator[str]:
        for i in range(3):
            rows_read.append(i)
            yield json.dumps({"name": f"bot-{i}"}, indent=2)

    with ReportSpool(JSON) as spool:
        chunks = stream_document("plan", rows(), spool.totals, spool.deletes)
        first = next(chunks)
        assert rows_read == [0] and '"chatbots": [' in first and '"bot-0"' in first
        rest = "".join(chunks)
    assert rows_read == [0, 1, 2]
    assert [c["name"] for c in json.loads(first + rest)["chatbots"]] == ["bot-0", "bot-1", "bot-2"]


def test_a_plan_keeps_no_server_answer_once_it_is_journaled_and_spooled(secret_scan: Any, tmp_path: Path, monkeypatch: Any) -> None:
    # Other test modules of the same worker may hold ApplyResults of their own (tables built at
    # collection): what counts is that the plan leaves none beyond them.
    gc.collect()
    before = {id(o) for o in gc.get_objects() if isinstance(o, ApplyResult)}
    with EmulatorServer(seed="demo") as emu:
        secret_scan.register_all(emu.keys)
        manifest = write_manifest(tmp_path, emu.base_url)
        for name, value in cli_env(emu.key_env).items():
            monkeypatch.setenv(name, value)
        session = open_session(manifest, "production", journal=tmp_path / "j.db")
        result = run(run_plan(session, report=JSON, keep_outcomes=False))
    assert result.spool is not None
    try:
        gc.collect()
        # Nothing holds a dry-run's answer any more: the rows are in the journal and in the spool.
        kept = [o for o in gc.get_objects() if isinstance(o, ApplyResult) and id(o) not in before]
        assert result.outcomes == [] and kept == [], f"{len(kept)} server answer(s) still held after the plan"
        doc = json.loads("".join(stream_document("plan", result.spool.entries(), result.spool.totals, result.spool.deletes)))
        journaled = {r.name: r for r in session.open_journal().items(result.run_id)}
        assert sorted(c["name"] for c in doc["chatbots"]) == sorted(journaled) and len(journaled) == 5
        for c in doc["chatbots"]:
            assert c["summary"] == journaled[c["name"]].plan_summary
        assert doc["totals"]["chatbots"] == 5 and doc["totals"]["chatbots_with_changes"] == result.changed
    finally:
        result.spool.close()
    secret_scan.record("streamed plan", json.dumps(doc))


def test_a_markdown_plan_is_the_summary_of_its_reports_and_keeps_no_server_answer(
        secret_scan: Any, tmp_path: Path, monkeypatch: Any) -> None:
    from docs_fleet import SECRET_VALUE, wizsync
    from wizsync.report.markdown import render_markdown, render_parts
    from wizsync.report.model import plan_report
    from wizsync.report.spool import MARKDOWN

    with EmulatorServer(seed="demo") as emu:
        secret_scan.register_all(emu.keys)
        manifest = write_manifest(tmp_path, emu.base_url)
        env = cli_env(emu.key_env, NO_COLOR="1")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        session = open_session(manifest, "production", journal=tmp_path / "j.db")
        result = run(run_plan(session, report=MARKDOWN, keep_outcomes=True))
        assert result.spool is not None
        try:
            kw: dict[str, Any] = dict(environment="production", run_id=result.run_id, keys=result.stats,
                                      estimate=result.estimate, forbidden=result.forbidden)
            streamed = render_parts(result.spool.markdown_parts(), **kw)
            assert streamed == render_markdown([plan_report(o) for o in result.outcomes], **kw)
        finally:
            result.spool.close()
        cli = wizsync(["plan", "wizsync.yaml", "--env", "production", "--format", "markdown"], env, tmp_path)
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.startswith("## wizsync plan: `production`\n\n5 chatbots, ") and "### Changed chatbots" in cli.stdout
    assert SECRET_VALUE not in streamed + cli.stdout
    secret_scan.record("markdown plan", streamed)
    secret_scan.record("markdown cli", cli.stdout + cli.stderr)
