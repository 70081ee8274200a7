"""The sqlite-utils queries of docs/journal.md, run as written against the journal of a real apply.

One apply (a real ``wizsync`` process against the emulator) with a 422 partial
failure and two forced 429s; then every ``sqlite-utils`` line of the page's
bash blocks runs through bash, and the ones users lean on most are checked
against what the run did: states, the failed chatbot's error, 429s per key.
The same run checks ``--log-file`` (events, no key, no secret) and the
``WIZSYNC_JOURNAL`` variable.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from docs_fleet import SECRET_VALUE, cli_env, wizsync, write_manifest
from wizchat_management.emulator import EmulatorServer

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "journal.md"


def _page_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if "sqlite-utils" in line and not line.startswith("RUN=")]


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    work = tmp_path_factory.mktemp("docs-run")
    with EmulatorServer(seed="demo") as emu:
        manifest = write_manifest(work, emu.base_url)
        journal = work / "ops" / "journal.db"
        env = cli_env(emu.key_env, WIZSYNC_JOURNAL=str(journal))
        emu.force_429("acme/production", count=2)
        proc = wizsync(["--log-file", "logs/apply.log", "apply", str(manifest), "--env", "production", "--yes"], env, work)
        stats = emu.stats()
    yield work, journal, env, proc, stats


def _bash(command: str, work: Path, env: dict[str, str], journal: Path, run_id: str) -> str:
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=work, timeout=60,
                          env={**env, "J": str(journal), "RUN": run_id})
    assert proc.returncode == 0, f"{command}\n{proc.stderr}"
    return proc.stdout


def _json(command: str, *args: Any) -> list[dict[str, Any]]:
    # The page's table form, as JSON: drop --table so the rows can be compared.
    assert command.endswith("--table") or "--table" in command, command
    out = _bash(command.replace(" --table", ""), *args)
    return json.loads(out) if out.strip() else []


def _find(commands: list[str], needle: str) -> str:
    hits = [c for c in commands if needle in c]
    assert len(hits) == 1, f"docs/journal.md should have one query with {needle!r}: {hits}"
    return hits[0]


def test_the_run_went_to_the_journal_named_by_wizsync_journal(real_run: Any) -> None:
    work, journal, _env, proc, _stats = real_run
    assert proc.returncode == 1, proc.stderr  # one chatbot failed on purpose
    assert journal.is_file()
    assert not (work / ".wizsync" / "journal.db").exists()
    assert "support-returns" in proc.stdout and "domain_verification_failed" in proc.stdout


def test_every_documented_query_runs_and_the_key_ones_answer_right(real_run: Any) -> None:
    work, journal, env, _proc, stats = real_run
    page = PAGE.read_text(encoding="utf-8")
    latest = re.search(r"^RUN=\$\((.*)\)$", page, re.M)
    assert latest, "docs/journal.md sets RUN=$(sqlite-utils ...)"
    run_id = _bash(latest.group(1), work, env, journal, "").strip()
    assert re.fullmatch(r"r\d{8}-\d{6}-[0-9a-f]{4}", run_id), run_id
    args = (work, env, journal, run_id)

    commands = _page_commands()
    assert len(commands) >= 8
    for command in commands:
        _bash(command, *args)

    states = _json(_find(commands, "count(*) as n from items"), *args)
    assert {r["state"]: r["n"] for r in states} == {"applied": 4, "failed": 1}

    failed = _json(_find(commands, "state = 'failed'"), *args)
    assert [(r["name"], r["error_code"], r["error_section"], r["error_key"]) for r in failed] == [
        ("acme/support-returns", "domain_verification_failed", "domains", "help.acme.unverified")
    ]

    per_tenant = _json(_find(commands, "group by tenant"), *args)
    assert [r["tenant"] for r in per_tenant] == ["acme", "globex"]
    assert all(r["requests"] > 0 for r in per_tenant)

    throttled = _json(_find(commands, "kind = 'request.throttled'"), *args)
    counted = {r["key"]: r["throttled"] for r in throttled}
    assert counted == {"acme/production": 2}
    assert stats["keys"]["acme/production"]["rateLimited"] == 2  # what the emulator answered


def test_log_file_has_the_events_and_no_key_or_secret(real_run: Any) -> None:
    work, _journal, env, _proc, _stats = real_run
    log = (work / "logs" / "apply.log").read_text(encoding="utf-8")
    run_id = re.search(r"run (r[0-9a-z-]+): apply 'production' started", log).group(1)  # type: ignore[union-attr]
    # Every line names the run (a failed CI job's log says what to show or resume), the first ones too.
    lines = log.splitlines()
    assert lines and all(f" run={run_id} " in line for line in lines), [line for line in lines if run_id not in line]
    assert "apply production: 5 chatbot(s), 2 tenant(s), 2 batch(es)" in log
    assert re.search(r"INFO +run=\S+ batch 1/2 started: 1 chatbot\(s\)", log)
    assert re.search(r"INFO +run=\S+ acme/support-billing \(acme\): applied", log)
    assert re.search(r"WARNING +run=\S+ acme/support-returns \(acme\): failed .*domain_verification_failed", log)
    assert log.rstrip().endswith("exit 1")
    keys = [v for k, v in env.items() if k.startswith("WIZCHAT_")]
    assert keys
    for value in [*keys, SECRET_VALUE]:
        assert value not in log
    assert "wpk_" not in log
