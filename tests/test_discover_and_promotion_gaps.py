"""A `discover` that matches nothing is an error naming the pattern and what exists; a promotion
lists the chatbots only its source or only its target has (all at once), before any apply."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from wizchat_management.emulator import EmulatorServer
from wizsync.cli import cli


def _org(env: str, names: list[str]) -> dict[str, Any]:
    return {
        "name": f"acme-{env}", "tenant": "acme", "environment": env,
        "keys": [{"label": f"acme/{env}", "envName": f"WIZCHAT_ACME_{env.upper()}_KEY"}],
        "chatbots": [{"name": n, "config": {"core": {"name": n, "temperature": 0.4 if env == "staging" else 0.6}}}
                     for n in names],
    }


def seed(staging: list[str], production: list[str]) -> dict[str, Any]:
    return {"keySeed": "promotion-gaps", "organizations": [_org("staging", staging), _org("production", production)]}


MANIFEST = """\
version: 1
environments:
  staging: {{baseUrl: "{base}"}}
  production: {{baseUrl: "{base}"}}
tenants:
  acme:
    keys:
      staging: {{env: WIZCHAT_ACME_STAGING_KEY}}
      production: {{env: WIZCHAT_ACME_PRODUCTION_KEY}}
defaults:
  sections: [core]
chatbots:
  - discover: {{tenant: acme, match: "{match}"}}
    source: {{environment: staging}}
"""


def plan(emu: EmulatorServer, tmp: Path, scan: Any, match: str, *args: str) -> Any:
    (tmp / "wizsync.yaml").write_text(MANIFEST.format(base=emu.base_url, match=match))
    result = CliRunner().invoke(
        cli, ["plan", str(tmp / "wizsync.yaml"), "--env", "production", "--journal", str(tmp / "j.db"), *args],
        env=emu.key_env, catch_exceptions=False,
    )
    scan.record("plan output", result.output)
    return result


def test_a_discover_matching_nothing_names_the_pattern_and_the_closest_names(tmp_path: Path, secret_scan: Any) -> None:
    with EmulatorServer(seed=seed(["support-billing", "support-returns", "sales"], ["support-billing", "support-returns", "sales"])) as emu:
        secret_scan.register_all(emu.keys)
        result = plan(emu, tmp_path, secret_scan, "suport-*")
    assert result.exit_code == 1
    line = next(i for i, t in enumerate((tmp_path / "wizsync.yaml").read_text().splitlines(), 1) if "suport-*" in t)
    assert f"wizsync.yaml:{line}: chatbots[0].discover.match: discover: no chatbot of tenant 'acme' in 'production' matches 'suport-*'" in result.stderr
    assert "3 chatbot(s) listed; closest: support-billing, support-returns" in result.stderr
    assert "docs/manifest.md" in result.stderr


def test_a_promotion_lists_both_sides_strays_and_refuses_targets_without_a_source(tmp_path: Path, secret_scan: Any) -> None:
    with EmulatorServer(seed=seed(["a-new", "b", "c", "e-new"], ["b", "c", "d-old", "f-old"])) as emu:
        secret_scan.register_all(emu.keys)
        result = plan(emu, tmp_path, secret_scan, "*")
        assert result.exit_code == 1
        assert ("2 chatbot(s) exist only in 'production' (no chatbot of that name in 'staging'): d-old, f-old; "
                "only in 'staging' (not promoted): a-new, e-new") in result.stderr
        # Leaving the production-only ones out: the plan runs and still says what is not promoted.
        result = plan(emu, tmp_path, secret_scan, "*", "--chatbot", "b", "--chatbot", "c", "--chatbot", "a-new", "--json")
        assert result.exit_code == 0, result.output
        assert [c["name"] for c in json.loads(result.stdout)["chatbots"]] == ["acme/b", "acme/c"]  # addresses: tenant/name
        assert "1 chatbot(s) exist only in 'staging' and are not promoted (create them in 'production' first): a-new" in result.stderr
