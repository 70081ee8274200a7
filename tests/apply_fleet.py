"""Shared scaffolding for the apply/resume/rollback tests: a 60-chatbot promotion fleet on a demo emulator.

The demo seed has 60 chatbots per environment over 3 tenants (acme 20, globex 19, initech 21).
The manifest promotes staging → production (protected) with a production overlay
(``telemetry.sampleRate: 0.25``), three waves (``canary`` → ``early`` → ``default``) whose
explicit entries are written LAST in the file, so a correct wave order is visible, and batches
``1, 10%, 100%`` (sizes 1, 6, 53). The promotion deletes production-only domains, so the
tests pass ``--allow-deletes`` unless they test the refusal.

The CLI always runs as a real process (``python -m wizsync.cli``), its output kept by the
``secret_scan`` fixture so that no key or secret value may show anywhere.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from secret_scan import SecretScan, wizsync_env

from wizchat_management import WizChatClient
from wizchat_management.emulator import EmulatorServer

TENANTS = ("acme", "globex", "initech")
SAMPLE_RATE = 0.25  # the production overlay: a value no demo chatbot has
CANARY = ("initech", "knowledge-base", "kb-canary")  # (tenant, chatbot name, logical name)
EARLY = (("globex", "store-locator", "globex-early-1"), ("acme", "order-tracker", "acme-early-2"))


def address(entry: tuple[str, str, str]) -> str:
    """The journal/JSON name of an explicit entry (tenant, chatbot name, logical name): tenant/logical."""
    return f"{entry[0]}/{entry[2]}"


WAVE_OF = {address(CANARY): "canary", **{address(e): "early" for e in EARLY}}
WAVE_RANK = {"canary": 0, "early": 1, "default": 2}


def ids_of(emu: EmulatorServer, tenant: str, name: str) -> dict[str, str]:
    out = {}
    for env in ("staging", "production"):
        cb = emu.state.chatbot_by_name(f"org_{tenant}_{env}", name)
        assert cb is not None, (tenant, env, name)
        out[env] = cb.id
    return out


def _entry(emu: EmulatorServer, tenant: str, name: str, logical: str, wave: str | None, override: str = "") -> str:
    ids = ids_of(emu, tenant, name)
    lines = [
        f"  - name: {logical}",
        f"    tenant: {tenant}",
        f"    ids: {{staging: {ids['staging']}, production: {ids['production']}}}",
    ]
    if wave:
        lines.append(f"    wave: {wave}")
    if override:
        lines.append(f"    overrides: {{production: {override}}}")
    return "\n".join(lines) + "\n"


def write_manifest(
    directory: Path,
    emu: EmulatorServer,
    *,
    overrides: Mapping[tuple[str, str], str] | None = None,
    max_failures: int | str = 0,
    overlay_extra: str = "",
    protected: bool = True,
    allow_unknown: Sequence[str] = (),
) -> Path:
    """The promotion manifest; ``overrides[(tenant, name)]`` = a flow-YAML production override.

    ``allow_unknown``: document paths the manifest's ``allowUnknown`` lets through strict authoring.
    """
    overrides = dict(overrides or {})
    base = emu.base_url
    text = [
        "version: 1",
        *([f"allowUnknown: {json.dumps(list(allow_unknown))}"] if allow_unknown else []),
        "environments:",
        f"  staging: {{baseUrl: \"{base}\"}}",
        f"  production: {{baseUrl: \"{base}\", protected: {'true' if protected else 'false'}}}",
        "tenants:",
    ]
    for t in TENANTS:
        up = t.upper()
        text.append(f"  {t}:")
        text.append(f"    keys: {{staging: {{env: WIZCHAT_{up}_STAGING_KEY}}, production: {{env: WIZCHAT_{up}_PRODUCTION_KEY}}}}")
    text += [
        "defaults:",
        "  source: {environment: staging}",
        "overlays:",
        "  production:",
        "    spec:",
        f"      telemetry: {{sampleRate: {SAMPLE_RATE}}}",
    ]
    if overlay_extra:
        text.append(overlay_extra.rstrip("\n"))
    text.append("chatbots:")
    body = "\n".join(text) + "\n"
    # Chatbots that need an override get an explicit entry (default wave) before the discover rules.
    for (tenant, name), override in overrides.items():
        body += _entry(emu, tenant, name, f"{tenant}-{name}", None, override)
    for t in TENANTS:
        body += f"  - discover: {{tenant: {t}}}\n"
    for tenant, name, logical in EARLY:
        body += _entry(emu, tenant, name, logical, "early")
    body += _entry(emu, CANARY[0], CANARY[1], CANARY[2], "canary")
    body += (
        "rollout:\n"
        "  waves: [canary, early, default]\n"
        "  batches: [1, \"10%\", \"100%\"]\n"
        f"  maxFailures: {json.dumps(max_failures)}\n"
    )
    path = directory / "wizsync.yaml"
    path.write_text(body)
    return path


class Cli:
    """``wizsync`` as a real process in ``cwd`` with the emulator's keys in its environment."""

    def __init__(self, scan: SecretScan, cwd: Path, emu: EmulatorServer, extra_env: Mapping[str, str] | None = None) -> None:
        self.scan, self.cwd = scan, cwd
        self.env = {**emu.key_env, **(extra_env or {})}
        scan.register_all({f"key {k}": v for k, v in emu.key_env.items()})
        scan.watch_journal(cwd / ".wizsync" / "journal.db")

    @property
    def journal(self) -> Path:
        return self.cwd / ".wizsync" / "journal.db"

    def run(self, *args: str, timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess[str]:
        kw.setdefault("stdin", subprocess.DEVNULL)
        return self.scan.run(list(args), cwd=self.cwd, env=self.env, timeout=timeout, **kw)

    def json(self, *args: str) -> dict[str, Any]:
        proc = self.run(*args, "--json")
        assert proc.stdout, proc.stderr
        return json.loads(proc.stdout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "wizsync.cli", *args], cwd=self.cwd, env=wizsync_env(self.env),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def collect(self, proc: subprocess.Popen[str], label: str, timeout: float = 60) -> tuple[int, str, str]:
        out, err = proc.communicate(timeout=timeout)
        self.scan.record(f"{label} stdout", out)
        self.scan.record(f"{label} stderr", err)
        return proc.returncode, out, err

    def kill9(self, proc: subprocess.Popen[str], label: str) -> None:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        self.collect(proc, label)

    def apply(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.run("apply", "wizsync.yaml", "--env", "production", "--yes", *extra)

    def show(self, run_id: str) -> dict[str, Any]:
        return self.json("show", run_id)

    def last_run(self) -> dict[str, Any]:
        runs = self.json("runs")["runs"]
        assert runs, "no run in the journal"
        return runs[0]


def wait_for_run(cli: Cli, proc: subprocess.Popen[str], timeout: float = 20) -> str:
    """The id of the run ``proc`` started, read from the journal as soon as it is there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cli.journal.exists():
            rows = query(cli.journal, "SELECT id FROM runs WHERE pid = ? ORDER BY started_at DESC", [proc.pid])
            if rows:
                return str(rows[0]["id"])
        assert proc.poll() is None, f"the run ended before it was journaled: {proc.communicate()}"
        time.sleep(0.02)
    raise AssertionError("the run never showed up in the journal")


def wait_until(predicate: Any, timeout: float = 20, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def query(journal: Path, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, list(params))]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    finally:
        conn.close()


def integrity(journal: Path) -> str:
    conn = sqlite3.connect(journal, timeout=10)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def strip_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_none(v) for v in value]
    return value


def clients(emu: EmulatorServer, env: str) -> dict[str, WizChatClient]:
    return {t: WizChatClient(emu.key_env[f"WIZCHAT_{t.upper()}_{env.upper()}_KEY"], base_url=emu.base_url) for t in TENANTS}


def live(emu: EmulatorServer, env: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(tenant, chatbot name) → {"spec": spec without nulls, "revision": n}, read with get_config."""
    out = {}
    for tenant, client in clients(emu, env).items():
        with client:
            for cb in emu.state.list_chatbots(f"org_{tenant}_{env}"):
                doc = client.get_config(cb.id).model_dump(mode="json", by_alias=True)
                out[(tenant, cb.name)] = {"spec": strip_none(doc["spec"]), "revision": doc["metadata"]["revision"]}
    return out


def promoted(staging_spec: Mapping[str, Any]) -> dict[str, Any]:
    """What production must hold after the promotion: staging's config plus the overlay."""
    spec = json.loads(json.dumps(staging_spec))
    spec.setdefault("telemetry", {})["sampleRate"] = SAMPLE_RATE
    return spec


def applies_by_key(emu: EmulatorServer) -> dict[str, int]:
    return {label: s.get("applies", 0) for label, s in emu.stats()["keys"].items()}
