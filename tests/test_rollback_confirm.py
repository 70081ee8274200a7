"""`wizsync rollback` of a protected environment without --yes and without a terminal refuses before
it starts: no rollback run is recorded (it used to leave an `interrupted` rollback run that `show`
offered to resume)."""

from __future__ import annotations

from pathlib import Path

from apply_fleet import Cli, write_manifest

BOT = ("acme", "support-returns")
NAME = f"{BOT[0]}-{BOT[1]}"


def test_rollback_refused_for_lack_of_a_terminal_records_no_run(emulator, secret_scan, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator, overrides={BOT: "{spec: {core: {temperature: 0.42}}}"})  # production protected
    cli = Cli(secret_scan, tmp_path, emulator)
    assert cli.apply("--allow-deletes", "--chatbot", NAME).returncode == 0
    run_id = cli.last_run()["id"]

    refused = cli.run("rollback", run_id)
    assert refused.returncode == 1
    assert "no terminal to confirm on" in refused.stderr and "--yes" in refused.stderr
    runs = cli.json("runs")["runs"]
    assert [r["id"] for r in runs] == [run_id]
