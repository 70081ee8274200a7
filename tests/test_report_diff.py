"""The per-chatbot diff a person reads before apply: keyed, elided, masked, coloured only on a TTY."""

from __future__ import annotations

import io

from report_fixtures import (
    API_KEY,
    CONTROL_RE,
    PROMPT_AFTER,
    SECRET,
    acme_report,
    globex_report,
    noop_plan,
)
from rich.console import Console

from wizchat_management.models import ApplyResult, Plan
from wizsync.report.diff import diff_lines, print_diffs, render_diff, render_diffs
from wizsync.report.model import ChatbotReport
from wizsync.report.terminal import color_enabled, make_console


def test_realistic_plan_reads_like_an_infrastructure_tool():
    lines = diff_lines(acme_report())
    assert lines[0] == "acme-support (acme, cb_123): 1 to create, 2 to update, 1 to delete, 3 unchanged"
    body = "\n".join(lines)
    # Object section: one ~ block, each field path before → after; + for added, - for removed.
    assert "  ~ core" in lines
    assert "      ~ temperature: 0.7 → 0.2" in lines
    assert '      + language: "de"' in lines
    assert '      - welcomeMessage: "Hi!"' in lines
    # Array sections: section header, then + ~ - keyed by item, in the server's execution order.
    assert lines.index("  domains") < lines.index("  mcpServers")
    assert "    - old.acme.example" in lines
    assert "    + search" in lines
    assert '        + url: "https://mcp.eu.acme.example/search"' in lines
    assert "    ~ docs" in lines
    assert "        ~ enabled: true → false" in lines
    # noop items and sections are only counted in the header.
    assert "security" not in body and "telemetry" not in body and "faq" not in body


def test_create_shows_server_listed_fields_when_given():
    plan = Plan.model_validate(
        {
            "summary": {"create": 1, "update": 0, "delete": 0, "noop": 0},
            "operations": [
                {
                    "op": "create",
                    "section": "skills",
                    "key": "refunds",
                    "changes": [
                        {"path": "description", "before": None, "after": "Refund policy"},
                        {"path": "triggers", "before": None, "after": ["refund", "money back"]},
                    ],
                }
            ],
        }
    )
    lines = diff_lines(ChatbotReport("b", "t", None, plan))
    assert lines[0] == "b (t): 1 to create, 0 to update, 0 to delete, 0 unchanged"
    assert lines[1:] == [
        "  skills",
        "    + refunds",
        '        + description: "Refund policy"',
        '        + triggers: ["refund", "money back"]',
    ]


def test_noop_chatbot_is_one_line_and_errors_say_why():
    assert diff_lines(ChatbotReport("quiet", "acme", "cb_1", noop_plan(5))) == [
        "quiet (acme, cb_1): 0 to create, 0 to update, 0 to delete, 5 unchanged"
    ]
    err = ChatbotReport("gone", "acme", "cb_404", error={"code": "not_found", "message": "chatbot cb_404 not found"})
    assert diff_lines(err) == ["gone (acme, cb_404): error not_found: chatbot cb_404 not found"]


def test_failed_apply_operation_is_shown():
    res = ApplyResult.model_validate(
        {
            "dryRun": False,
            "applied": [],
            "revision": 4,
            "failed": {
                "op": "create",
                "section": "mcpServers",
                "key": "x",
                "code": "mcp_unreachable",
                "message": "x.unreachable did not answer",
            },
            "plan": {
                "summary": {"create": 1, "update": 0, "delete": 0, "noop": 0},
                "operations": [{"op": "create", "section": "mcpServers", "key": "x", "changes": None}],
            },
        }
    )
    lines = diff_lines(ChatbotReport("b", "t", "cb_2", res, state="failed"))
    assert lines[0].endswith("[failed, rev 4]")
    assert lines[-1] == "  ! failed to create mcpServers x: mcp_unreachable: x.unreachable did not answer"


def test_long_and_multiline_values_are_elided():
    long_before, long_after = "a" * 150, "The new welcome message " + "b" * 200 + " END"
    plan = Plan.model_validate(
        {
            "summary": {"create": 0, "update": 1, "delete": 0, "noop": 0},
            "operations": [
                {
                    "op": "update",
                    "section": "core",
                    "key": None,
                    "changes": [{"path": "welcomeMessage", "before": long_before, "after": long_after}],
                }
            ],
        }
    )
    line = diff_lines(ChatbotReport("b", "t", None, plan))[-1]
    assert "(150 chars)" in line and f"({len(long_after)} chars)" in line
    assert '"The new welcome' in line and 'END"' in line and "…" in line
    assert len(line) < 200  # neither value printed whole
    # A system prompt edit: first line, line and char counts, and the line delta; no other prompt line.
    prompt_line = next(ln for ln in diff_lines(acme_report()) if "systemPrompt" in ln)
    assert "(4 lines, " in prompt_line and "(3 lines, " in prompt_line
    assert "(+2 -1 lines)" in prompt_line
    assert "billing@acme.example" not in prompt_line
    assert f"{len(PROMPT_AFTER)} chars" in prompt_line


def test_secret_reference_replaces_redacted_where_the_masked_document_has_it():
    lines = diff_lines(acme_report())
    assert '        + headers.Authorization: "Bearer <secret:ACME_MCP_TOKEN>"' in lines
    assert '        ~ headers.Authorization: <redacted> → "Bearer <secret:ACME_DOCS_TOKEN>"' in lines
    # Without the masked document, the server's placeholder stays.
    bare = diff_lines(acme_report(desired=None))
    assert "        ~ headers.Authorization: <redacted> → <redacted>" in bare


def test_forbidden_values_never_printed_anywhere_in_a_diff():
    # A resolved secret leaked into a non-secret field by the server, into a long
    # value across the elision point, into a dict value, and into an item key.
    plan = Plan.model_validate(
        {
            "summary": {"create": 1, "update": 1, "delete": 0, "noop": 0},
            "operations": [
                {
                    "op": "update",
                    "section": "core",
                    "key": None,
                    "changes": [
                        {"path": "systemPrompt", "before": None, "after": f"token is {SECRET}"},
                        {"path": "welcomeMessage", "before": "x" * 40 + SECRET + "y" * 40, "after": "hi"},
                        {"path": "extra", "before": None, "after": {"auth": SECRET, "k": API_KEY}},
                        {"path": "multi", "before": "a\nb", "after": f"{SECRET}\nline two"},
                    ],
                },
                {"op": "create", "section": "skills", "key": f"skill-{SECRET}", "changes": None},
            ],
        }
    )
    report = ChatbotReport("b", "t", None, plan)
    forbidden = {SECRET, API_KEY}
    plain = "\n".join(diff_lines(report, forbidden=forbidden))
    buf = io.StringIO()
    Console(file=buf, force_terminal=True, color_system="truecolor", width=300).print(
        render_diff(report, forbidden=forbidden)
    )
    for out in (plain, buf.getvalue()):
        for fragment in (SECRET, API_KEY, "TOPSECRET", SECRET[:12], SECRET[-12:]):
            assert fragment not in out
        assert "***" in out
    assert "token is ***" in plain


def test_colour_on_a_terminal_and_none_otherwise(monkeypatch):
    reports = [acme_report(), globex_report()]
    buf = io.StringIO()
    coloured = Console(file=buf, force_terminal=True, color_system="standard", width=200)
    print_diffs(coloured, reports)
    out = buf.getvalue()
    assert "\x1b[32m    + search" in out  # green +
    assert "\x1b[33m  ~ core" in out  # yellow ~
    assert "\x1b[31m    - legacy" in out  # red -

    for env in ({}, {"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"}):
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        plain = io.StringIO()
        print_diffs(make_console(plain, color=False), reports)
        text = plain.getvalue()
        assert "acme-support (acme, cb_123)" in text and "globex-bot (globex, cb_900)" in text
        assert not CONTROL_RE.search(text), repr(text)
        assert text.splitlines() == render_diffs(reports).plain.splitlines()


class _FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_decision_honours_no_color_flag_env_and_tty():
    tty = _FakeTTY()
    assert color_enabled(tty, env={}) is True
    assert color_enabled(tty, no_color=True, env={}) is False
    assert color_enabled(tty, env={"NO_COLOR": "1"}) is False
    assert color_enabled(tty, env={"NO_COLOR": ""}) is True  # no-color.org: set *and non-empty*
    assert color_enabled(tty, env={"TERM": "dumb"}) is False
    assert color_enabled(io.StringIO(), env={}) is False  # piped / CI
    # Even a console on a real-looking TTY prints no escapes when colour is off.
    print_diffs(make_console(tty, color=color_enabled(tty, env={"NO_COLOR": "1"})), [acme_report()])
    assert not CONTROL_RE.search(tty.getvalue())


def test_hostile_server_data_cannot_drive_the_terminal():
    plan = Plan.model_validate(
        {
            "summary": {"create": 1, "update": 1, "delete": 0, "noop": 0},
            "operations": [
                {
                    "op": "update",
                    "section": "core",
                    "key": None,
                    "changes": [{"path": "name\x1b[2J", "before": "ok\x07", "after": "evil\x1b]0;title\x07\u202e"}],
                },
                {"op": "create", "section": "skills", "key": "x\r\x1b[31mfake", "changes": None},
            ],
        }
    )
    report = ChatbotReport("bot\x1b[1m", "t\x9b", None, plan)
    plain = "\n".join(diff_lines(report))
    assert not CONTROL_RE.search(plain)
    assert "\u202e" not in plain
    assert "\\x1b[2J" in plain and "\\u202e" in plain  # shown, visibly escaped
    buf = io.StringIO()
    Console(file=buf, force_terminal=True, color_system="standard", width=300).print(render_diff(report))
    # Only rich's own SGR sequences remain on the coloured output.
    assert "\x1b[2J" not in buf.getvalue() and "\x1b]0;" not in buf.getvalue() and "\r" not in buf.getvalue()


def test_a_rendered_manifest_document_masks_its_secret_in_the_diff(tmp_path):
    # The real render pipeline's masked document drives the <secret:NAME> display,
    # and the resolved value (what the request carries) is forbidden everywhere.
    from wizsync.manifest import load_manifest, resolve_targets
    from wizsync.render import render_target
    from wizsync.render.secrets import forbidden_values

    (tmp_path / "bot.yaml").write_text(
        "apiVersion: wizchat.com/v1\nkind: ChatbotConfig\nspec:\n"
        "  core: {name: Bot, systemPrompt: 'Hello ${secret:BOT_TOKEN}'}\n"
        "  mcpServers:\n"
        "    - {name: search, url: 'https://mcp.example/s', headers: {Authorization: 'Bearer ${secret:BOT_TOKEN}'}}\n"
    )
    (tmp_path / "wizsync.yaml").write_text(
        "version: 1\nenvironments: {production: {}}\n"
        "tenants: {acme: {keys: {production: {env: WIZCHAT_ACME_KEY}}}}\n"
        "defaults: {sections: [core, mcpServers]}\n"
        "chatbots:\n  - {name: bot, tenant: acme, ids: {production: cb_1}, source: {file: bot.yaml}}\n"
    )
    manifest = load_manifest(tmp_path / "wizsync.yaml")
    (target,) = resolve_targets(manifest, "production").bind({})
    rendered = render_target(manifest, target)
    environ = {"BOT_TOKEN": SECRET}
    body = rendered.resolve(environ)
    assert SECRET in body["spec"]["core"]["systemPrompt"]  # what the server receives...
    # ...and what a careless server echoes back in a plan.
    plan = Plan.model_validate(
        {
            "summary": {"create": 1, "update": 1, "delete": 0, "noop": 0},
            "operations": [
                {
                    "op": "update",
                    "section": "core",
                    "key": None,
                    "changes": [{"path": "systemPrompt", "before": "Hi", "after": body["spec"]["core"]["systemPrompt"]}],
                },
                {"op": "create", "section": "mcpServers", "key": "search", "changes": None},
            ],
        }
    )
    report = ChatbotReport(target.name, target.tenant, target.chatbot_id, plan, desired=rendered.masked)
    lines = diff_lines(report, forbidden=forbidden_values(rendered.secret_names, environ, ["wpk_live_x" * 3]))
    assert '      ~ systemPrompt: "Hi" → "Hello <secret:BOT_TOKEN>"' in lines
    assert '        + headers.Authorization: "Bearer <secret:BOT_TOKEN>"' in lines
    assert SECRET not in "\n".join(lines)
