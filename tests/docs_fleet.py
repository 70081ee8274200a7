"""A small real fleet for the docs tests: a manifest against a live emulator, and the CLI as a process.

Production of tenants acme and globex (demo seed), promoted from staging,
with a production overlay carrying a ``${secret:...}`` header. One chatbot
gets a domain ending in ``.unverified`` so its apply fails (422), and the
caller may force 429s on a key: the journal then has applied, failed and
throttled rows to query.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
SECRET_NAME = "DOCS_MCP_TOKEN"
SECRET_VALUE = "docs-secret-value-7f3a91c2"

MANIFEST = """\
version: 1
environments:
  staging: {{baseUrl: "{base}"}}
  production: {{baseUrl: "{base}", protected: true, vars: {{region: eu}}}}
tenants:
  acme:
    keys: {{staging: {{env: WIZCHAT_ACME_STAGING_KEY}}, production: {{env: WIZCHAT_ACME_PRODUCTION_KEY}}}}
  globex:
    keys: {{staging: {{env: WIZCHAT_GLOBEX_STAGING_KEY}}, production: {{env: WIZCHAT_GLOBEX_PRODUCTION_KEY}}}}
defaults:
  source: {{environment: staging}}
  sections: [core, telemetry, mcpServers]
overlays:
  production:
    spec:
      telemetry: {{sampleRate: 0.1}}
      mcpServers:
        - name: search
          url: https://mcp.${{region}}.example/search
          headers: {{Authorization: "Bearer ${{secret:{secret}}}"}}
chatbots:
  - name: support-billing
    tenant: acme
    wave: canary
  - name: support-returns
    tenant: acme
    sections: [core, telemetry, mcpServers, domains]
    overrides:
      production: {{spec: {{domains: [{{hostname: help.acme.unverified, primary: false}}]}}}}
  - name: support-shipping
    tenant: acme
  - name: support-account
    tenant: globex
  - name: support-technical
    tenant: globex
rollout:
  waves: [canary, default]
  batches: [1, "100%"]
  maxFailures: 5
  concurrency: 4
"""


def write_manifest(directory: Path, base_url: str) -> Path:
    path = directory / "wizsync.yaml"
    path.write_text(MANIFEST.format(base=base_url, secret=SECRET_NAME), encoding="utf-8")
    return path


def cli_env(key_env: dict[str, str], **extra: str) -> dict[str, str]:
    """The process environment of a wizsync run: keys, the secret, none of the developer's WIZSYNC_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WIZSYNC_")}
    env.update(key_env)
    env[SECRET_NAME] = SECRET_VALUE
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def wizsync(args: list[str], env: dict[str, str], cwd: Path, *, process: bool = False) -> subprocess.CompletedProcess[str]:
    """``wizsync ARGS`` with exactly ``env``: in-process (tests/inprocess.py), or the installed script with ``process=True``."""
    if process:
        return subprocess.run([str(BIN / "wizsync"), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)
    from inprocess import run_in_process

    return run_in_process(args, cwd=cwd, env=env)[0]
