"""Live progress on a TTY (rich), one plain line per event in CI or when piped."""

from __future__ import annotations

import io
import re
from datetime import datetime

from report_fixtures import CONTROL_RE
from rich.console import Console

from wizsync.report.progress import KeyState, PlainReporter, RichReporter, make_reporter

ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _drive(r) -> None:
    r.start(3, {"acme": 2, "globex": 1}, batches=2, title="apply")
    r.batch_started(1, 1)
    r.item_done("acme-support", "acme", "applied", "(rev 7) 0.31s")
    r.keys({"acme": KeyState(5, 2, 1)})
    r.batch_started(2, 2)
    r.item_done("acme-sales", "acme", "failed", "mcp_unreachable: x.unreachable")
    r.keys({"acme": KeyState(5, 2, 1), "globex": KeyState(2, 0, 3)})
    r.item_done("globex-bot", "globex", "unchanged")
    r.message("halting: failure budget 0 exceeded")
    r.finish()


def test_tty_progress_shows_done_total_429s_retries_per_tenant():
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, color_system="standard", width=140)
    reporter = make_reporter(console=console)
    assert isinstance(reporter, RichReporter)
    _drive(reporter)
    raw = buf.getvalue()
    assert "\x1b[" in raw  # a live display, drawn with terminal sequences
    # The final frame: strip SGR/cursor codes and read the rows it left on screen.
    final = ANSI_RE.sub("", raw).split("\r")[-1]
    run_row = next(ln for ln in final.splitlines() if ln.startswith("apply batch 2/2"))
    assert "3/3" in run_row and "429s 2" in run_row and "retries 4" in run_row
    acme_row = next(ln for ln in final.splitlines() if ln.strip().startswith("acme "))
    assert "2/2" in acme_row and "429s 2" in acme_row and "retries 1" in acme_row
    globex_row = next(ln for ln in final.splitlines() if ln.strip().startswith("globex "))
    assert "1/1" in globex_row and "retries 3" in globex_row
    text = ANSI_RE.sub("", raw)
    # Failures and messages are printed above the bars; the summary after them.
    assert "batch 2/2 acme-sales failed mcp_unreachable: x.unreachable" in text
    assert "halting: failure budget 0 exceeded" in text
    assert "done: 3/3 chatbots (applied 1, failed 1, unchanged 1)" in text
    assert "acme-support applied" not in text  # successes stay in the bars unless -v


def test_plain_progress_is_one_clean_line_per_event():
    buf = io.StringIO()
    reporter = make_reporter(buf, tty=False)
    assert isinstance(reporter, PlainReporter)
    reporter.now = lambda: datetime(2026, 1, 1, 12, 0, 1)
    _drive(reporter)
    out = buf.getvalue()
    assert not CONTROL_RE.search(out), repr(out)
    assert out.splitlines() == [
        "[12:00:01] apply: 3 chatbots, 2 tenants, 2 batches",
        "[12:00:01] batch 1/2 started: 1 chatbots",
        "[12:00:01] batch 1/2 acme-support applied (rev 7) 0.31s",
        "[12:00:01] batch 2/2 started: 2 chatbots",
        "[12:00:01] batch 2/2 acme-sales failed mcp_unreachable: x.unreachable",
        "[12:00:01] batch 2/2 globex-bot unchanged",
        "[12:00:01] halting: failure budget 0 exceeded",
        out.splitlines()[7],
        "[12:00:01] keys: acme 5 requests, 2 throttled (429), 1 retries; globex 2 requests, 0 throttled (429), 3 retries",
    ]
    assert re.fullmatch(
        r"\[12:00:01\] done: 3/3 chatbots \(applied 1, failed 1, unchanged 1\) in \d+\.\ds", out.splitlines()[7]
    )


def test_plain_progress_escapes_hostile_names_and_quiet_keeps_only_what_matters():
    buf = io.StringIO()
    reporter = make_reporter(buf, tty=False, quiet=True)
    reporter.start(2, ["t"])
    reporter.keys({"t": KeyState(1, 0, 0)})
    reporter.item_done("ok-bot", "t", "applied")
    reporter.item_done("evil\x1b[2J\rbot", "t", "failed", "boom\x07")
    reporter.finish()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 1 and "evil\\x1b[2J\\rbot failed boom\\x07" in lines[0]
    assert not CONTROL_RE.search(buf.getvalue())


class _FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_make_reporter_picks_live_only_on_a_tty():
    assert isinstance(make_reporter(io.StringIO()), PlainReporter)  # piped / CI
    assert isinstance(make_reporter(_FakeTTY()), RichReporter)
    assert isinstance(make_reporter(_FakeTTY(), quiet=True), PlainReporter)
    assert isinstance(make_reporter(_FakeTTY(), tty=False), PlainReporter)
    # On a TTY with colour off: bars still drawn, but no colour (SGR colour) codes.
    tty = _FakeTTY()
    r = make_reporter(tty, color=False)
    _drive(r)
    assert "3/3" in tty.getvalue()
    assert not re.search(r"\x1b\[(3\d|9\d|1;3\d)m", tty.getvalue())
