"""What a machine-readable run loads: `wizsync plan --json` draws nothing, so it imports no terminal renderer.

rich and pygments are for people at a terminal (the live progress, the text
report); httpx's own command-line client would bring them too. A CI job asking
for JSON pays for none of them before its first request or after its last;
nor for the retry machinery (tenacity) while no request needs a retry.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import generated_fleet as fleet
from secret_scan import wizsync_env

from wizchat_management.emulator import EmulatorServer

# Runs the CLI exactly as `python -m wizsync.cli` does, then lists (on stderr) the modules the
# process holds at exit: a name set to None in sys.modules is one that was kept from importing.
PROBE = (
    "import atexit, runpy, sys\n"
    "atexit.register(lambda: print('MODULES', *sorted(k for k, v in sys.modules.items() if v is not None),"
    " file=sys.stderr))\n"
    "sys.argv = ['wizsync', *sys.argv[1:]]\n"
    "runpy.run_module('wizsync.cli', run_name='__main__')\n"
)


def test_a_json_plan_imports_no_terminal_renderer(secret_scan: Any, tmp_path: Path) -> None:
    with EmulatorServer(seed=fleet.seed(6, 2)) as emu:
        secret_scan.register_all(emu.keys)
        fleet.write(tmp_path, emu.base_url, 6, 2)
        args = ["plan", "wizsync.yaml", "--env", fleet.ENV, "--journal", str(tmp_path / "journal.db"), "--json"]
        proc = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=tmp_path, env=wizsync_env(emu.key_env),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    secret_scan.record("plan --json stdout", proc.stdout)
    secret_scan.record("plan --json stderr", proc.stderr)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    assert doc["status"] == "completed" and len(doc["chatbots"]) == 6
    loaded = set(proc.stderr.split("MODULES", 1)[1].split())
    assert "aiohttp" in loaded  # the probe sees the run's imports (the default HTTP backend)
    renderers = {m for m in loaded if m.split(".")[0] in ("rich", "pygments")} | ({"httpx._main"} & loaded)
    assert sorted(renderers) == []
    assert doc["keys"] and not any(k["retries"] for k in doc["keys"].values()) and "tenacity" not in loaded
