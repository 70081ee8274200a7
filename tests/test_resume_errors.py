"""A chatbot whose result cannot be journaled stops the run with that reason: the run ends
`failed` with the journal's refusal as its error, not a misleading `halted` that shows the
previous attempt's error as if it were this one's."""

from __future__ import annotations

from pathlib import Path

from apply_fleet import Cli, write_manifest

BOT = ("acme", "support-returns")
NAME = f"{BOT[0]}-{BOT[1]}"
TOKEN = "resume-secret-4c1e9a77d0"


def test_a_refused_journal_write_during_resume_fails_the_run_with_its_reason(emulator, secret_scan, tmp_path: Path) -> None:
    secret_scan.register("PROMPT_TOKEN", TOKEN)
    write_manifest(tmp_path, emulator, overrides={BOT: "{spec: {domains: [{hostname: x.unverified}]}}"}, protected=False)
    cli = Cli(secret_scan, tmp_path, emulator, extra_env={"PROMPT_TOKEN": TOKEN})
    assert cli.apply("--allow-deletes", "--chatbot", NAME).returncode == 1
    run_id = cli.last_run()["id"]

    # A secret in a field the server shows in plain: its plan cannot be journaled.
    write_manifest(tmp_path, emulator, overrides={BOT: "{spec: {core: {systemPrompt: 'use ${secret:PROMPT_TOKEN}'}}}"}, protected=False)
    proc = cli.run("resume", run_id, "--yes", "--force")
    assert proc.returncode == 1
    assert "contains the value of a secret" in proc.stderr, proc.stderr
    assert "halted" not in proc.stderr
    run = cli.show(run_id)
    assert run["status"] == "failed" and "secret" in (run["run"]["error"] or "")
