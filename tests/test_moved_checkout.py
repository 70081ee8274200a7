"""A checkout that moved (a downloaded CI artifact): resume and rollback still find its manifest.

The journal records the manifest relative to its own folder when both live in one checkout,
and `resume`/`rollback` take `--manifest PATH` when the journal lives elsewhere.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

from docs_fleet import cli_env, wizsync, write_manifest
from wizchat_management.emulator import EmulatorServer


def _run_ids(journal: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(journal) as db:
        return db.execute("SELECT id, command, manifest_path FROM runs ORDER BY started_at").fetchall()


def test_resume_and_rollback_after_the_checkout_moved(secret_scan: Any, tmp_path: Path) -> None:
    old, new = tmp_path / "old" / "ckout", tmp_path / "new" / "ckout"
    old.mkdir(parents=True)
    elsewhere = tmp_path / "var" / "journal.db"
    with EmulatorServer(seed="demo") as emu:
        secret_scan.register_all(emu.keys)
        write_manifest(old, emu.base_url)
        env = cli_env(emu.key_env, NO_COLOR="1")
        procs = []
        # One apply with the journal beside the manifest, one with it outside the checkout.
        first = wizsync(["apply", "wizsync.yaml", "--env", "production", "--yes"], env, old)
        second = wizsync(["apply", "wizsync.yaml", "--env", "production", "--yes", "--journal", str(elsewhere)], env, old)
        procs += [first, second]
        assert first.returncode == 1 and second.returncode == 1  # the fleet has a chatbot whose apply fails (422)
        (run_id, _, stored), = _run_ids(old / ".wizsync" / "journal.db")
        assert stored == "../wizsync.yaml"  # relative to the journal's folder: moves with the checkout
        (other_id, _, other_stored), = _run_ids(elsewhere)
        assert Path(other_stored).is_absolute()
        new.parent.mkdir()
        shutil.move(str(old), str(new))

        resumed = wizsync(["resume", run_id, "--yes"], env, new)
        procs.append(resumed)
        assert "cannot be read now" not in resumed.stderr, resumed.stderr
        assert f"Run {run_id}" in resumed.stdout, resumed.stdout + resumed.stderr

        lost = wizsync(["resume", other_id, "--yes", "--journal", str(elsewhere)], env, new)
        procs.append(lost)
        assert lost.returncode == 1 and "pass --manifest PATH" in lost.stderr, lost.stderr
        found = wizsync(["resume", other_id, "--yes", "--journal", str(elsewhere), "--manifest", "wizsync.yaml"], env, new)
        procs.append(found)
        assert f"Run {other_id}" in found.stdout, found.stdout + found.stderr

        rolled = wizsync(["rollback", run_id, "--yes"], env, new)
        procs.append(rolled)
        assert rolled.returncode == 0, rolled.stdout + rolled.stderr
        ids = _run_ids(new / ".wizsync" / "journal.db")
        assert ids[-1][1] == "rollback" and ids[-1][2] == "../wizsync.yaml"
    for n, proc in enumerate(procs):
        secret_scan.record(f"proc {n} stdout", proc.stdout)
        secret_scan.record(f"proc {n} stderr", proc.stderr)
