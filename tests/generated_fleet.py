"""A generated fleet for the reliability tests: N chatbots over K tenants, bound by id, one file source.

Each chatbot is seeded with ``core.temperature`` 0.3; the manifest's file source
(``bot.yaml``) asks for 0.5 with the chatbot's own name, so an apply changes every
one of them by exactly one effective apply (revision + 1). Mirrors
bench/fleetgen.py (kept separate: the test suite does not import bench/).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ENV = "staging"
BOT_DOC = "spec:\n  core: {name: '${chatbot}', model: gpt-4o, temperature: 0.5}\n  telemetry: {enabled: true, sampleRate: 0.25}\n"
WANT_TEMPERATURE = 0.5


def tenant(k: int) -> str:
    return f"t{k}"


def label(k: int) -> str:
    return f"{tenant(k)}/{ENV}"


def env_name(k: int) -> str:
    return f"WIZCHAT_T{k}_STAGING_KEY"


def chatbot_id(k: int, i: int) -> str:
    return f"cb_t{k}_{i:04d}"


def name(k: int, i: int) -> str:
    return f"t{k}-bot-{i:04d}"


def members(n: int, k: int) -> list[tuple[int, int]]:
    """(tenant index, chatbot index) of every chatbot, tenants interleaved."""
    return [(i % k, i // k) for i in range(n)]


def seed(n: int, k: int) -> dict[str, Any]:
    orgs = []
    for t in range(k):
        bots = [i for tt, i in members(n, k) if tt == t]
        orgs.append({
            "name": f"{tenant(t)}-{ENV}", "tenant": tenant(t), "environment": ENV,
            "keys": [{"label": label(t), "envName": env_name(t)}],
            "chatbots": [{"name": f"bot-{i:04d}", "id": chatbot_id(t, i),
                          "config": {"core": {"name": f"bot-{i:04d}", "model": "gpt-4o", "temperature": 0.3},
                                     "telemetry": {"enabled": True, "sampleRate": 0.5}}} for i in bots],
        })
    return {"keySeed": f"generated-{n}-{k}", "organizations": orgs}


def manifest(base_url: str, n: int, k: int, *, extra: str = "") -> str:
    lines = ["version: 1", "environments:", f'  {ENV}: {{baseUrl: "{base_url}"}}', "tenants:"]
    lines += [f"  {tenant(t)}: {{keys: {{{ENV}: {{env: {env_name(t)}}}}}}}" for t in range(k)]
    lines += ["defaults:", "  sections: [core, telemetry]", "  source: {file: bot.yaml}", "chatbots:"]
    lines += [f"  - {{name: {name(t, i)}, tenant: {tenant(t)}, ids: {{{ENV}: {chatbot_id(t, i)}}}}}" for t, i in members(n, k)]
    return "\n".join(lines) + "\n" + extra


def write(directory: Path, base_url: str, n: int, k: int, **kw: Any) -> Path:
    (directory / "bot.yaml").write_text(BOT_DOC)
    path = directory / "wizsync.yaml"
    path.write_text(manifest(base_url, n, k, **kw))
    return path


def write_seed(path: Path, n: int, k: int) -> Path:
    path.write_text(json.dumps(seed(n, k)))  # JSON is YAML: `--seed FILE` reads it
    return path
