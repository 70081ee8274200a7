"""Realistic plans for the report-layer tests, built by hand from the generated models."""

from __future__ import annotations

import re

from wizchat_management.models import ApplyResult, Plan
from wizsync.report.model import ChatbotReport

# Any C0 control except newline, DEL, C1 controls: none may reach plain output.
CONTROL_RE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")

SECRET = "sk-live-TOPSECRET-9f8e7d6c5b4a"  # a resolved ${secret:...}: must never be printed
API_KEY = "wpk_live_abcdefghijklmnopqrstuvwx"

PROMPT_BEFORE = "You are Acme's support assistant.\nBe concise.\nNever share internal URLs."
PROMPT_AFTER = (
    "You are Acme's support assistant.\nBe concise and friendly.\nNever share internal URLs.\n"
    "Escalate billing questions to billing@acme.example."
)


def acme_result(dry_run: bool = True) -> ApplyResult:
    return ApplyResult.model_validate(
        {
            "dryRun": dry_run,
            "applied": [],
            "failed": None,
            "revision": 7,
            "plan": {
                "summary": {"create": 1, "update": 2, "delete": 1, "noop": 3},
                "operations": [
                    {
                        "op": "update",
                        "section": "core",
                        "key": None,
                        "changes": [
                            {"path": "temperature", "before": 0.7, "after": 0.2},
                            {"path": "systemPrompt", "before": PROMPT_BEFORE, "after": PROMPT_AFTER},
                            {"path": "language", "before": None, "after": "de"},
                            {"path": "welcomeMessage", "before": "Hi!", "after": None},
                        ],
                    },
                    {"op": "noop", "section": "security", "key": None, "changes": None},
                    {"op": "noop", "section": "telemetry", "key": None, "changes": None},
                    {"op": "delete", "section": "domains", "key": "old.acme.example", "changes": None},
                    {"op": "create", "section": "mcpServers", "key": "search", "changes": None},
                    {
                        "op": "update",
                        "section": "mcpServers",
                        "key": "docs",
                        "changes": [
                            {"path": "headers.Authorization", "before": "<redacted>", "after": "<redacted>"},
                            {"path": "enabled", "before": True, "after": False},
                        ],
                    },
                    {"op": "noop", "section": "skills", "key": "faq", "changes": None},
                ],
            },
        }
    )


def acme_desired() -> dict:
    """The masked rendered document: secrets as <secret:NAME>."""
    return {
        "apiVersion": "wizchat.com/v1",
        "kind": "ChatbotConfig",
        "spec": {
            "core": {"name": "acme-support", "temperature": 0.2, "systemPrompt": PROMPT_AFTER, "language": "de"},
            "mcpServers": [
                {
                    "name": "search",
                    "url": "https://mcp.eu.acme.example/search",
                    "transport": "http",
                    "headers": {"Authorization": "Bearer <secret:ACME_MCP_TOKEN>"},
                },
                {
                    "name": "docs",
                    "url": "https://mcp.eu.acme.example/docs",
                    "enabled": False,
                    "headers": {"Authorization": "Bearer <secret:ACME_DOCS_TOKEN>"},
                },
            ],
            "domains": [{"hostname": "chat.acme.example", "primary": True}],
        },
    }


def acme_report(**kw) -> ChatbotReport:
    return ChatbotReport(
        name=kw.pop("name", "acme-support"),
        tenant=kw.pop("tenant", "acme"),
        chatbot_id=kw.pop("chatbot_id", "cb_123"),
        result=kw.pop("result", acme_result()),
        desired=kw.pop("desired", acme_desired()),
        **kw,
    )


def noop_plan(n: int = 4) -> Plan:
    ops = [{"op": "noop", "section": s, "key": None, "changes": None} for s in ("core", "security", "telemetry")]
    ops += [{"op": "noop", "section": "skills", "key": f"s{i}", "changes": None} for i in range(n - 3)]
    return Plan.model_validate({"summary": {"create": 0, "update": 0, "delete": 0, "noop": n}, "operations": ops})


def globex_report() -> ChatbotReport:
    plan = Plan.model_validate(
        {
            "summary": {"create": 0, "update": 0, "delete": 1, "noop": 2},
            "operations": [
                {"op": "noop", "section": "core", "key": None, "changes": None},
                {"op": "noop", "section": "mcpServers", "key": "search", "changes": None},
                {"op": "delete", "section": "mcpServers", "key": "legacy", "changes": None},
            ],
        }
    )
    return ChatbotReport("globex-bot", "globex", "cb_900", plan)
