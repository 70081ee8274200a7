"""Check that wizsync and the emulator speak exactly ``openapi.json``, through Prism.

Prism (https://docs.stoplight.io/docs/prism) runs as a validating proxy
between wizsync and the emulator: every request wizsync sends and every
answer the emulator gives is checked against the contract. The script runs
the main job through it (plan, apply in batches, rollback of that apply) on
the demo fleet and fails if Prism reported any violation.

    python scripts/prism_check.py                  # npx fetches @stoplight/prism-cli@5
    python scripts/prism_check.py other.json       # against another copy of the contract
    python scripts/prism_check.py --mock 10        # a server we did not write (below)
    PRISM=/path/to/node_modules/.bin/prism python scripts/prism_check.py

``--mock N`` puts Prism in wizsync's way as the server itself instead: ``prism
mock --dynamic`` answers every request with random data the contract allows
(fields it names only as ``additionalProperties``, sections and item kinds of
any name, enormous counts, a partial failure in every apply, a listing that
may be empty, a dry-run answered as an apply, which stops the run:
docs/safety.md). A server no one here wrote, whose every answer is legal:
``plan``, ``apply --yes --allow-deletes`` and ``export`` each run N times
against it, each with a journal of its own (the listing changes on every
call, so a second run on the same journal is refused as a wrong target, as
it should be). The check fails if any run ends in a traceback, an exit code
other than 0 or 1, or output that holds the API key, or if Prism saw a
request the contract does not allow.

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


MOCK_MANIFEST = """\
version: 1
environments:
  staging: {{baseUrl: "{base_url}"}}
tenants:
  acme:
    keys:
      staging: {{env: WIZCHAT_ACME_STAGING_KEY}}
chatbots:
  - discover: {{tenant: acme, match: "*"}}
    source: {{self: true}}
"""
MOCK_KEY = "wpk_test_" + "5" * 32  # Prism checks that a bearer token is sent, not which


def start_prism(args: list[str], work: Path) -> tuple[subprocess.Popen[str], Path, str]:
    port = free_port()
    log_path = work / "prism.log"
    with log_path.open("w") as log:
        prism = subprocess.Popen(
            [*prism_command(), *args, "--host", "127.0.0.1", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,  # npx runs prism as its child: the group is stopped as one
        )
    return prism, log_path, f"http://127.0.0.1:{port}"


def stop_prism(prism: subprocess.Popen[str]) -> None:
    # Terminating npx alone left its node child (prism) listening after the script ended.
    os.killpg(prism.pid, signal.SIGTERM)
    prism.wait(timeout=30)


def violations_in(log_path: Path) -> list[str]:
    return [line for line in log_path.read_text().splitlines() if VIOLATION.search(line)]


def mock(spec: Path, runs: int) -> int:
    """wizsync against ``prism mock --dynamic``: random answers the contract allows (the docstring)."""
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        prism, log_path, url = start_prism(["mock", "--dynamic", str(spec)], work)
        try:
            wait_until_up(url, MOCK_KEY, prism)
            manifest = work / "wizsync.yaml"
            manifest.write_text(MOCK_MANIFEST.format(base_url=url))
            env = {k: v for k, v in os.environ.items() if not k.startswith(("WIZSYNC_", "WIZCHAT_"))}
            env["WIZCHAT_ACME_STAGING_KEY"] = MOCK_KEY
            exits: dict[str, list[int]] = {}
            for i in range(runs):
                for args in (["plan", str(manifest), "--env", "staging"],
                             ["apply", str(manifest), "--env", "staging", "--yes", "--allow-deletes"],
                             ["export", str(manifest), "--env", "staging", "--out", str(work / f"export-{i}")]):
                    journal = ["--journal", str(work / f"journal-{args[0]}-{i}.db")] if args[0] != "export" else []
                    proc = wizsync([*args, *journal], env, work)
                    exits.setdefault(args[0], []).append(proc.returncode)
                    out = proc.stdout + proc.stderr
                    if proc.returncode == 1:  # the server's random answer is the reason: say which
                        lines = proc.stderr.strip().splitlines() or [""]
                        said = [ln for ln in lines if "Error" in ln or "failed" in ln] or lines
                        print("    " + said[-1][:200])
                    if "Traceback (most recent call last)" in out:
                        problems.append(f"wizsync {args[0]} (run {i + 1}) ended in a traceback:\n{out[-2000:]}")
                    elif proc.returncode not in (0, 1):
                        problems.append(f"wizsync {args[0]} (run {i + 1}) exited {proc.returncode}:\n{out[-2000:]}")
                    if MOCK_KEY in out:
                        problems.append(f"wizsync {args[0]} (run {i + 1}) printed the API key")
            for command, codes in exits.items():
                print(f"prism_check --mock: {command}: exits {codes}")
        finally:
            stop_prism(prism)
        violations = violations_in(log_path)
    for line in violations[:50]:
        print(line)
    for problem in problems:
        print(problem)
    print(f"prism_check --mock: {len(violations)} request violation(s), {len(problems)} problem(s) in {3 * runs} runs")
    return 1 if violations or problems else 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--mock"]:
        if len(argv) < 2 or not argv[1].isdigit() or int(argv[1]) < 1:
            sys.exit("prism_check: --mock takes a number of runs, e.g. --mock 10")
        return mock(Path(argv[2]) if len(argv) > 2 else ROOT / "openapi.json", int(argv[1]))
    spec = Path(argv[0]) if argv else ROOT / "openapi.json"
    with EmulatorServer(seed="demo") as emu, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        prism, log_path, proxy_url = start_prism(["proxy", str(spec), emu.base_url], work)
        port = int(proxy_url.rsplit(":", 1)[1])
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
            stop_prism(prism)
        violations = violations_in(log_path)
        for line in violations[:50]:
            print(line)
        print(f"prism_check: {len(violations)} violation(s)" + ("; a wizsync step failed" if failed else ""))
        return 1 if violations or failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
