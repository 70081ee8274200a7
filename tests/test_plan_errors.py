"""`wizsync plan` (a real process) when some chatbots fail on the server: the others are still planned,
each failure shows the server's error (not an internal one), the run is journaled as failed with
each item's error code, and the exit code is 1."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from wizchat_management import WizChatClient
from wizchat_management.emulator import EmulatorServer

MANIFEST = """\
version: 1
environments:
  staging: {{baseUrl: "{base}"}}
tenants:
  acme:
    keys: {{staging: {{env: WIZCHAT_ACME_STAGING_KEY}}}}
  globex:
    keys: {{staging: {{env: WIZCHAT_GLOBEX_STAGING_KEY}}}}
defaults:
  sections: [core]
chatbots:
  - name: good
    tenant: acme
    ids: {{staging: {good}}}
    source: {{self: true}}
    overrides: {{staging: {{spec: {{core: {{temperature: 0.6}}}}}}}}
  - name: gone
    tenant: acme
    ids: {{staging: cb_does_not_exist}}
    source: {{file: bot.yaml}}
  - name: wrong-tenant
    tenant: globex
    ids: {{staging: {good}}}
    source: {{file: bot.yaml}}
"""


def test_failed_chatbots_are_reported_with_the_server_error_and_the_rest_is_planned(
    emulator: EmulatorServer, fast_backoff: None, secret_scan: Any, tmp_path: Path
) -> None:
    emu = emulator
    secret_scan.register_all(emu.keys)
    good = next(c.id for c in WizChatClient(emu.keys["acme/staging"], base_url=emu.base_url).list_chatbots())
    (tmp_path / "bot.yaml").write_text("spec:\n  core: {temperature: 0.4}\n")
    (tmp_path / "wizsync.yaml").write_text(MANIFEST.format(base=emu.base_url, good=good))
    journal = tmp_path / "journal.db"
    secret_scan.watch_journal(journal)

    proc = secret_scan.run(["plan", "wizsync.yaml", "--env", "staging", "--json", "--journal", str(journal)],
                           cwd=tmp_path, env=emu.key_env)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "failed"
    chatbots = {c["name"]: c for c in doc["chatbots"]}
    assert chatbots["acme/good"]["error"] is None
    assert chatbots["acme/good"]["summary"]["update"] == 1
    # a chatbot of another tenant is not visible with this tenant's key: 404, never retried
    for name in ("acme/gone", "globex/wrong-tenant"):
        error = chatbots[name]["error"]
        assert error["code"] == "not_found", error
    # (the key's one listing is the wrong-target proof, sent before any dry-run)
    dry_runs = [r for r in emu.requests(key="globex/staging") if r["path"].endswith("/apply")]
    assert len(dry_runs) == 1, dry_runs

    conn = sqlite3.connect(journal)
    try:
        items = dict(conn.execute("SELECT name, state || ':' || COALESCE(error_code, '') FROM items WHERE run_id = ?",
                                  (doc["run_id"],)).fetchall())
        run_status = conn.execute("SELECT status FROM runs WHERE id = ?", (doc["run_id"],)).fetchone()[0]
        failed_events = conn.execute(
            "SELECT item, data FROM events WHERE run_id = ? AND kind = 'request.failed'", (doc["run_id"],)
        ).fetchall()
    finally:
        conn.close()
    assert run_status == "failed"
    assert items["acme/gone"] == "failed:not_found" and items["globex/wrong-tenant"] == "failed:not_found"
    assert items["acme/good"].startswith("planned")
    assert sorted(item for item, _ in failed_events) == ["acme/gone", "globex/wrong-tenant"]
    assert all(json.loads(data)["error_kind"] == "permanent" for _, data in failed_events)
