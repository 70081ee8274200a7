"""Check that wizsync and the emulator speak exactly ``openapi.json``, through Prism.

Prism (https://docs.stoplight.io/docs/prism) runs as a validating proxy
between wizsync and the emulator: every request wizsync sends and every
answer the emulator gives is checked against the contract. The script runs
the main job through it (plan, apply in batches, rollback of that apply) on
the demo fleet and fails if Prism reported any violation.

    python scripts/prism_check.py                  # npx fetches @stoplight/prism-cli@5
    python scripts/prism_check.py other.json       # against another copy of the contract
    PRISM=/path/to/node_modules/.bin/prism python scripts/prism_check.py

Needs Node.js (npx) the first time; everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from wizchat_management.emulator import EmulatorServer
from wizsync.demo import DEMO_SECRET, manifest_text

ROOT = Path(__file__).resolve().parent.parent
# Prism's log line for a contract violation, e.g. "[VALIDATOR] ✖ error Violation: response.body ..."
VIOLATION = re.compile(r"violation", re.IGNORECASE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prism_command() -> list[str]:
    explicit = os.environ.get("PRISM")
    if explicit:
        return [explicit]
    if shutil.which("npx") is None:
        sys.exit("prism_check: needs Node.js (npx), or PRISM=/path/to/prism")
    return ["npx", "--yes", "@stoplight/prism-cli@5"]


def wait_until_up(url: str, key: str, proc: subprocess.Popen[str], seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"prism_check: Prism exited early ({proc.returncode})")
        try:
            httpx.get(url + "/api/v1/chatbots", headers={"Authorization": f"Bearer {key}"}, timeout=2.0)
            return
        except httpx.HTTPError:
            time.sleep(0.5)
    sys.exit("prism_check: Prism did not start in time")


def wizsync(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "wizsync.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    print(f"wizsync {' '.join(args[:3])} ... -> exit {proc.returncode}")
    return proc


def main(argv: list[str]) -> int:
    spec = Path(argv[0]) if argv else ROOT / "openapi.json"
    with EmulatorServer(seed="demo") as emu, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        port = free_port()
        proxy_url = f"http://127.0.0.1:{port}"
        log_path = work / "prism.log"
        with log_path.open("w") as log:
            prism = subprocess.Popen(
                [*prism_command(), "proxy", str(spec), emu.base_url,
                 "--host", "127.0.0.1", "--port", str(port)],
                stdout=log, stderr=subprocess.STDOUT, text=True,
                start_new_session=True,  # npx runs prism as its child: the group is stopped as one
            )
        try:
            wait_until_up(proxy_url, emu.keys["acme/staging"], prism)
            manifest = work / "wizsync.yaml"
            paths = {"state": "emulator.db", "keys": "keys.env", "manifest": "wizsync.yaml", "journal": "journal.db"}
            manifest.write_text(manifest_text(proxy_url, port, paths))
            env = {k: v for k, v in os.environ.items() if not k.startswith("WIZSYNC_")}
            env.update(emu.key_env)
            env[DEMO_SECRET] = "prism-check-token"
            journal = ["--journal", str(work / "journal.db")]
            steps = [
                ["plan", str(manifest), "--env", "production", *journal],
                ["apply", str(manifest), "--env", "production", "--yes", "--json", *journal],
            ]
            failed = False
            applied_run = None
            for args in steps:
                proc = wizsync(args, env, work)
                failed |= proc.returncode != 0
                if args[0] == "apply" and proc.returncode == 0:
                    applied_run = json.loads(proc.stdout)["run_id"]
            if applied_run:
                failed |= wizsync(["rollback", applied_run, "--yes", *journal], env, work).returncode != 0
        finally:
            # Terminating npx alone left its node child (prism) listening after the script ended.
            os.killpg(prism.pid, signal.SIGTERM)
            prism.wait(timeout=30)
        violations = [line for line in log_path.read_text().splitlines() if VIOLATION.search(line)]
        for line in violations[:50]:
            print(line)
        print(f"prism_check: {len(violations)} violation(s)" + ("; a wizsync step failed" if failed else ""))
        return 1 if violations or failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
