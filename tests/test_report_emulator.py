"""The report layer over a real server plan: the emulator's dry-run, rendered as diff and --json."""

from __future__ import annotations

import copy
import io
import json

from report_fixtures import CONTROL_RE, SECRET

from wizchat_management import WizChatClient
from wizsync.report.diff import diff_lines, print_diffs
from wizsync.report.jsonout import dumps, plan_document
from wizsync.report.model import ChatbotReport
from wizsync.report.terminal import make_console


def test_emulator_dry_run_renders_keyed_masked_diff(emulator):
    with WizChatClient(emulator.keys["acme/staging"], base_url=emulator.base_url) as client:
        bot = client.list_chatbots()[0]
        live = client.get_config(bot.id).model_dump(mode="json", exclude_none=True)
        masked = copy.deepcopy(live)
        spec = masked["spec"]
        spec["core"]["temperature"] = 1.1
        spec["core"]["systemPrompt"] = live["spec"]["core"]["systemPrompt"] + "\nAlways cite the invoice id."
        spec["mcpServers"] = [
            {"name": "billing", "url": "https://mcp.acme.example/billing",
             "headers": {"Authorization": "Bearer <secret:BILLING_TOKEN>"}}
        ]
        removed = spec["skills"].pop()["name"]
        sent = copy.deepcopy(masked)
        sent["spec"]["mcpServers"][0]["headers"]["Authorization"] = f"Bearer {SECRET}"
        result = client.apply_config(bot.id, sent, dry_run=True)

    report = ChatbotReport(bot.name, "acme", bot.id, result, desired=masked)
    lines = diff_lines(report, forbidden={SECRET})
    assert lines[0] == f"{bot.name} (acme, {bot.id}): 1 to create, 1 to update, 1 to delete, " + (
        f"{result.plan.summary.noop} unchanged"
    )
    assert "      ~ temperature: 0.2 → 1.1" in lines
    assert any(ln.startswith("      ~ systemPrompt: ") and "(+1 -0 lines)" in ln and "(2 lines, " in ln for ln in lines)
    assert "    + billing" in lines
    assert '        + headers.Authorization: "Bearer <secret:BILLING_TOKEN>"' in lines
    assert f"    - {removed}" in lines
    assert not any(ln.strip().startswith("+ name:") for ln in lines)  # the key is on the item line

    out = io.StringIO()
    print_diffs(make_console(out, color=False), [report], forbidden={SECRET})
    doc_text = dumps(plan_document([report], run_id="r", environment="staging", forbidden={SECRET}))
    for text in (out.getvalue(), doc_text):
        assert SECRET not in text
    assert not CONTROL_RE.search(out.getvalue())
    ops = json.loads(doc_text)["chatbots"][0]["operations"]
    assert {"op": "delete", "section": "skills", "key": removed, "changes": None} in ops
