"""The deterministic ``--seed demo`` data set, as a seed document (see seed.py).

3 tenants (acme, globex, initech) × staging and production organizations ×
about 20 chatbots. A chatbot has the same name in a tenant's staging and
production organizations (promotion matches by name); production differs a
little from staging so a promotion plans real changes. Nothing here triggers
a 422. Keys: ``WIZCHAT_<TENANT>_<ENV>_KEY``, labels ``<tenant>/<env>``.
"""

from __future__ import annotations

import random
from typing import Any

TENANTS: dict[str, dict[str, Any]] = {
    "acme": {"domain": "acme.com", "brand": "Acme", "count": 20, "language": "en"},
    "globex": {"domain": "globex.io", "brand": "Globex", "count": 19, "language": "de"},
    "initech": {"domain": "initech.dev", "brand": "Initech", "count": 21, "language": "fr"},
}
ENVIRONMENTS = ("staging", "production")
DEMO_KEY_SEED = "wizchat-emulator-demo-2026"

# Purpose -> (description, topic). The first ones match `support-*`.
BOTS: list[tuple[str, str]] = [
    ("support-billing", "Answers invoice, payment and refund questions"),
    ("support-returns", "Guides customers through returns and exchanges"),
    ("support-shipping", "Tracks parcels and explains delivery options"),
    ("support-technical", "First-line technical troubleshooting"),
    ("support-account", "Login, password and profile help"),
    ("support-warranty", "Warranty claims and repairs"),
    ("sales-assistant", "Qualifies leads and books demos"),
    ("sales-enterprise", "Enterprise pricing and procurement questions"),
    ("onboarding-guide", "Walks new customers through setup"),
    ("hr-helpdesk", "Employee questions about leave, payroll and benefits"),
    ("it-helpdesk", "Internal IT requests and incident intake"),
    ("docs-search", "Searches the product documentation"),
    ("faq-bot", "Frequently asked questions"),
    ("marketing-campaigns", "Answers questions about current promotions"),
    ("partner-portal", "Helps resellers and partners"),
    ("developer-relations", "API and SDK questions from developers"),
    ("status-updates", "Service status and incident updates"),
    ("feedback-collector", "Collects product feedback and NPS"),
    ("store-locator", "Finds the nearest store and opening hours"),
    ("order-tracker", "Order status and changes"),
    ("knowledge-base", "Internal knowledge base assistant"),
    ("compliance-advisor", "Policy and compliance questions"),
]
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "claude-haiku-4", "mistral-large"]
WELCOME = {
    "en": ["Hi! How can I help you today?", "Hello, what can I do for you?", "Welcome! Ask me anything."],
    "de": ["Hallo! Wie kann ich helfen?", "Guten Tag, was kann ich für Sie tun?", "Willkommen! Fragen Sie mich."],
    "fr": ["Bonjour ! Comment puis-je vous aider ?", "Salut, que puis-je faire pour vous ?", "Bienvenue !"],
}
MCP_CATALOG = [
    ("crm", "/mcp/crm", ["lookup_customer", "update_contact", "create_ticket"]),
    ("orders", "/mcp/orders", ["get_order", "cancel_order"]),
    ("kb", "/mcp/kb", ["search_articles"]),
    ("calendar", "/mcp/calendar", ["find_slot", "book_meeting"]),
    ("billing", "/mcp/billing", ["get_invoice", "issue_refund"]),
]
SKILL_CATALOG = [
    ("escalate-to-human", "Hand the conversation to an agent", "When the user asks for a human, summarise and escalate.", ["agent", "human", "escalate"]),
    ("collect-email", "Ask for the user's email", "Politely ask for an email address before creating a ticket.", ["ticket", "contact"]),
    ("refund-policy", "Explain the refund policy", "Quote the 30-day refund policy; never promise exceptions.", ["refund", "money back"]),
    ("order-lookup", "Look up an order", "Ask for the order number, then call get_order.", ["order", "where is my"]),
    ("book-demo", "Book a product demo", "Offer three slots from find_slot and book the chosen one.", ["demo", "meeting"]),
    ("tone-formal", "Formal tone", "Use a formal register and full sentences.", []),
    ("gdpr-request", "Handle data requests", "For access or deletion requests, open a privacy ticket.", ["gdpr", "delete my data"]),
]


def _config(tenant: str, info: dict[str, Any], name: str, description: str, env: str) -> dict[str, Any]:
    base = random.Random(f"{tenant}/{name}")  # shared by both environments
    prod = random.Random(f"{tenant}/{name}/production")  # production's small differences
    lang = info["language"] if base.random() < 0.7 else "en"
    title = f"{info['brand']} {name.replace('-', ' ').title()}"
    core: dict[str, Any] = {
        "name": name,
        "description": f"{description} for {info['brand']}.",
        "model": base.choice(MODELS),
        "systemPrompt": f"You are {title}, the {info['brand']} assistant. {description}. Be concise and accurate.",
        "temperature": round(base.choice([0.2, 0.3, 0.5, 0.7, 0.9]), 1),
        "welcomeMessage": base.choice(WELCOME[lang]),
        "language": lang,
    }
    sub = name.split("-")[-1]
    host_env = "" if env == "production" else "staging."
    security: dict[str, Any] = {
        "allowedOrigins": [f"https://{host_env}{info['domain']}", f"https://www.{host_env}{info['domain']}"],
        "requireAuth": name.startswith(("hr-", "it-", "knowledge", "compliance")),
        "rateLimitPerMinute": base.choice([30, 60, 120, 300]),
        "webhookSecret": f"whsec_{tenant}_{env}_{sub}_" + "".join(base.choice("abcdef0123456789") for _ in range(16)),
    }
    telemetry: dict[str, Any] = {
        "enabled": base.random() < 0.8,
        "sampleRate": base.choice([0.1, 0.25, 0.5, 1.0]),
        "exportUrl": f"https://otel.{info['domain']}/v1/traces",
    }
    mcp = []
    for mname, path, tools in base.sample(MCP_CATALOG, base.randint(0, 3)):
        server: dict[str, Any] = {
            "name": mname,
            "url": f"https://mcp.{info['domain']}{path}",
            "transport": base.choice(["http", "sse"]),
            "enabled": True,
            "headers": {"Authorization": f"Bearer mcp_{tenant}_{env}_{mname}_token"},
            "allowedTools": tools if base.random() < 0.7 else None,
        }
        if base.random() < 0.3:
            server["headers"]["X-Api-Version"] = "2026-01"
        mcp.append(server)
    skills = []
    for sname, sdesc, instr, triggers in base.sample(SKILL_CATALOG, base.randint(1, 4)):
        skills.append({"name": sname, "description": sdesc, "instructions": instr, "enabled": True, "triggers": triggers})
    domains = []
    if base.random() < 0.4:
        domains.append({"hostname": f"{sub}.chat.{host_env}{info['domain']}", "primary": True})
        if base.random() < 0.5:
            domains.append({"hostname": f"{sub}-help.{host_env}{info['domain']}", "primary": False})

    if env == "production":
        # A little drift between environments, so a promotion plans real changes.
        roll = prod.random()
        if roll < 0.25:
            core["temperature"] = round(max(0.0, core["temperature"] - 0.1), 1)
        elif roll < 0.45:
            core["welcomeMessage"] = core["welcomeMessage"].rstrip("!.?") + "."
        elif roll < 0.6 and len(skills) > 1:
            skills.pop()  # the newest skill has not reached production yet
        elif roll < 0.7:
            telemetry["sampleRate"] = 0.05
        elif roll < 0.8 and mcp:
            mcp[0]["allowedTools"] = None
        elif roll < 0.85:
            core["model"] = "gpt-4o" if core["model"] != "gpt-4o" else "gpt-4o-mini"
    return {"core": core, "security": security, "telemetry": telemetry, "mcpServers": mcp, "skills": skills, "domains": domains}


def demo_seed_document() -> dict[str, Any]:
    """The demo data set in the seed-file format (deterministic: same output every call)."""
    orgs = []
    for tenant, info in TENANTS.items():
        for env in ENVIRONMENTS:
            bots = []
            for i, (name, description) in enumerate(BOTS[: info["count"]]):
                created = f"2026-0{1 + i % 3}-{10 + i:02d}T09:{i:02d}:00Z"
                bots.append(
                    {
                        "name": name,
                        "description": f"{description} for {info['brand']}.",
                        "status": "paused" if name == "marketing-campaigns" and env == "staging" else "active",
                        "createdAt": created,
                        "updatedAt": created,
                        "config": _config(tenant, info, name, description, env),
                    }
                )
            orgs.append(
                {
                    "name": f"{tenant}-{env}",
                    "id": f"org_{tenant}_{env}",
                    "tenant": tenant,
                    "environment": env,
                    "keys": [{"label": f"{tenant}/{env}", "envName": f"WIZCHAT_{tenant.upper()}_{env.upper()}_KEY"}],
                    "chatbots": bots,
                }
            )
    return {"keySeed": DEMO_KEY_SEED, "organizations": orgs}
