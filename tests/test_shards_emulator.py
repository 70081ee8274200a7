"""`--shard I/N` against the emulator: four shards together are one unsharded run.

Two emulators start from the same seed (seven tenants of 8, 6, 5, 4, 3, 2 and 1
chatbots; four tenants bound by id, three discovered). One takes a plain
`apply`, the other `apply --shard I/4` for I = 1..4, each shard with its own
journal. Then: the same chatbots reached the same states, the exports of both
fleets are byte-identical, no key was called by two shards (the emulator's
request log), and `show`/`runs` over the four journals add up to the
unsharded run. Bad `--shard` values are usage errors before any request.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from wizchat_management.emulator import EmulatorServer
from wizsync.cli import cli

ENV = "staging"
CHILD = Path(__file__).parent / "helpers" / "journal_child.py"
SIZES = {"t0": 8, "t1": 6, "t2": 5, "t3": 4, "t4": 3, "t5": 2, "t6": 1}
DISCOVERED = {"t4": 3, "t5": 2, "t6": 1}  # tenant → shardWeight (its expected size)
BOT = "spec:\n  core: {name: '${chatbot}', model: gpt-4o, temperature: 0.5}\n  telemetry: {enabled: true, sampleRate: 0.25}\n"


def bot_name(tenant: str, i: int) -> str:
    # Discovered tenants share chatbot names: a chatbot's address must not depend on which
    # other tenants the same process happens to load.
    return f"bot-{i}" if tenant in DISCOVERED else f"{tenant}-bot-{i}"


def seed() -> dict[str, Any]:
    orgs = []
    for tenant, size in SIZES.items():
        orgs.append({
            "name": f"{tenant}-{ENV}", "tenant": tenant, "environment": ENV,
            "keys": [{"label": f"{tenant}/{ENV}", "envName": f"WIZCHAT_{tenant.upper()}_STAGING_KEY"}],
            "chatbots": [{"name": bot_name(tenant, i), "id": f"cb_{tenant}_{i}",
                          "config": {"core": {"name": bot_name(tenant, i), "model": "gpt-4o", "temperature": 0.3},
                                     "telemetry": {"enabled": True, "sampleRate": 0.5}}} for i in range(size)],
        })
    return {"keySeed": "shards-test", "organizations": orgs}


def manifest(base_url: str, failing: tuple[str, ...] = ()) -> str:
    """``failing``: chatbots given an unverifiable domain, so that their apply fails (a 422)."""
    lines = ["version: 1", "environments:", f'  {ENV}: {{baseUrl: "{base_url}"}}', "tenants:"]
    lines += [f"  {t}: {{keys: {{{ENV}: {{env: WIZCHAT_{t.upper()}_STAGING_KEY}}}}}}" for t in SIZES]
    lines += ["defaults:", "  sections: [core, telemetry]", "  source: {file: bot.yaml}", "rollout:",
              "  batches: [1, '50%', '100%']", "  maxFailures: 1", "chatbots:"]
    for tenant, size in SIZES.items():
        if tenant in DISCOVERED:
            lines.append(f"  - {{discover: {{tenant: {tenant}, shardWeight: {DISCOVERED[tenant]}}}}}")
        else:
            for i in range(size):
                fail = (", sections: [core, telemetry, domains], overrides: {staging: {spec: {domains: "
                        f"[{{hostname: {tenant}.unverified, primary: false}}]}}}}}}") if f"{tenant}-bot-{i}" in failing else ""
                lines.append(f"  - {{name: {tenant}-bot-{i}, tenant: {tenant}, ids: {{{ENV}: cb_{tenant}_{i}}}{fail}}}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def fleets(tmp_path: Path) -> Iterator[tuple[EmulatorServer, Path, EmulatorServer, Path]]:
    with EmulatorServer(seed=seed()) as plain, EmulatorServer(seed=seed()) as sharded:
        dirs = []
        for name, emu in (("plain", plain), ("sharded", sharded)):
            d = tmp_path / name
            d.mkdir()
            (d / "bot.yaml").write_text(BOT)
            (d / "wizsync.yaml").write_text(manifest(emu.base_url))
            dirs.append(d)
        yield plain, dirs[0], sharded, dirs[1]


def invoke(scan: Any, emu: EmulatorServer, args: list[str], env: dict[str, str] | None = None) -> Result:
    scan.register_all(emu.keys)
    result = CliRunner().invoke(cli, args, env={**emu.key_env, "NO_COLOR": "1", "JOB_COMPLETION_INDEX": None, **(env or {})})
    scan.record(f"wizsync {' '.join(args[:2])} stdout", result.stdout)
    scan.record(f"wizsync {' '.join(args[:2])} stderr", result.stderr)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def api_keys_called(emu: EmulatorServer, since: int) -> set[str]:
    return {r["key"] for r in emu.requests()[since:] if r["path"].startswith("/api/")}


def items(journal: Path) -> dict[tuple[str, str], tuple[str, str, int | None]]:
    """(tenant, chatbot id) → (name, state, revision after), from the journal's one apply run."""
    import sqlite3

    conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        (run_id,) = conn.execute("SELECT id FROM runs WHERE command = 'apply'").fetchone()
        rows = conn.execute("SELECT tenant, chatbot_id, name, state, revision_after FROM items WHERE run_id = ?", [run_id])
        return {(t, c): (n, s, r) for t, c, n, s, r in rows}
    finally:
        conn.close()


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_four_shards_equal_one_unsharded_run(
    fleets: tuple[EmulatorServer, Path, EmulatorServer, Path], secret_scan: Any
) -> None:
    plain, plain_dir, sharded, sharded_dir = fleets
    manifest_a, manifest_b = str(plain_dir / "wizsync.yaml"), str(sharded_dir / "wizsync.yaml")

    result = invoke(secret_scan, plain, ["apply", manifest_a, "--env", ENV, "--yes"])
    assert result.exit_code == 0, result.output
    unsharded = items(plain_dir / ".wizsync" / "journal.db")
    assert len(unsharded) == sum(SIZES.values())
    assert {state for _, state, _ in unsharded.values()} == {"applied"}

    merged: dict[tuple[str, str], tuple[str, str, int | None]] = {}
    called: dict[int, set[str]] = {}
    recorded: dict[int, set[str]] = {}
    for i in (1, 2, 3, 4):
        before = len(sharded.requests())
        result = invoke(secret_scan, sharded, ["apply", manifest_b, "--env", ENV, "--yes", "--shard", f"{i}/4"])
        assert result.exit_code == 0, result.output
        assert f"shard {i}/4" in result.stdout
        journal = sharded_dir / ".wizsync" / f"journal-shard-{i}-of-4.db"
        secret_scan.watch_journal(journal)
        mine = items(journal)
        assert not set(mine) & set(merged), "a chatbot in two shards"
        merged.update(mine)
        called[i] = api_keys_called(sharded, before)
        recorded[i] = {f"{tenant}/{ENV}" for tenant, _ in mine}
        assert called[i] == recorded[i], "a shard called a key it does not own"
    assert not (sharded_dir / ".wizsync" / "journal.db").exists()

    # Same chatbots, same states, same revisions; no key in two shards; the split balanced.
    assert merged == unsharded
    assert sorted(k for keys in called.values() for k in keys) == sorted(f"{t}/{ENV}" for t in SIZES)
    sizes = sorted(sum(SIZES[k.split("/")[0]] for k in keys) for keys in called.values())
    assert sizes == [7, 7, 7, 8]  # 8 | 6+1 | 5+2 | 4+3: largest first, into the lightest shard

    # Same final state: the exports of both fleets are byte-identical.
    assert invoke(secret_scan, plain, ["export", manifest_a, "--env", ENV, "--out", str(plain_dir / "out")]).exit_code == 0
    for i in (1, 2, 3, 4):
        result = invoke(secret_scan, sharded, ["export", manifest_b, "--env", ENV, "--out", str(sharded_dir / "out"),
                                               "--shard", f"{i}/4"])
        assert result.exit_code == 0, result.output
    secret_scan.watch(plain_dir / "out")
    secret_scan.watch(sharded_dir / "out")
    assert tree(plain_dir / "out") == tree(sharded_dir / "out")
    assert len(tree(plain_dir / "out")) == sum(SIZES.values())

    # The merged views add up to the unsharded run.
    glob = str(sharded_dir / ".wizsync" / "journal-shard-*.db")
    result = invoke(secret_scan, sharded, ["show", "--journal", glob, "--json", "--check"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    fleet = doc["fleet"]
    assert fleet["ok"] and fleet["problems"] == [] and fleet["shards"] == 4 and fleet["status"] == "completed"
    assert fleet["counts"] == {"applied": len(unsharded)} and fleet["total"] == len(unsharded)
    assert fleet["failure_budget"] == {"failed": 0, "max_failures": 1, "budget": 1, "exceeded": False}
    assert sorted(r["run"]["options"]["shard"]["index"] for r in doc["runs"]) == [1, 2, 3, 4]
    assert sorted(c["chatbot_id"] for r in doc["runs"] for c in r["chatbots"]) == sorted(c for _, c in unsharded)

    result = invoke(secret_scan, sharded, ["runs", "--journal", glob])
    assert result.exit_code == 0, result.output
    assert "Fleet: apply 'staging', 4 shard(s), 4 run(s): completed" in result.stdout
    assert f"applied {len(unsharded)}  ({len(unsharded)} chatbots)" in result.stdout
    assert "Fleet check: ok" in result.stdout

    # An unquoted glob, expanded by the shell, is named for what it is.
    journals = sorted(str(p) for p in (sharded_dir / ".wizsync").glob("journal-shard-*.db"))
    result = invoke(secret_scan, sharded, ["show", "--journal", *journals])
    assert result.exit_code == 1 and f"{journals[1]!r} is a file, not a run id: quote the glob" in result.stderr

    # Three of four shards are not the fleet: the check says which one is missing.
    shard_1 = str(sharded_dir / ".wizsync" / "journal-shard-1-of-4.db")
    result = invoke(secret_scan, sharded, ["show", "--journal", shard_1, "--journal", glob.replace("*", "[23]-of-4"),
                                           "--check"])
    assert result.exit_code == 1
    assert "no run of shard 4/4" in result.stdout and "check failed: no run of shard 4/4" in result.stderr


def test_plan_by_shard_index_from_the_indexed_job(
    fleets: tuple[EmulatorServer, Path, EmulatorServer, Path], secret_scan: Any
) -> None:
    _, _, emu, d = fleets
    before = len(emu.requests())
    result = invoke(secret_scan, emu, ["plan", str(d / "wizsync.yaml"), "--env", ENV, "--shard", "auto/4", "--json"],
                    env={"JOB_COMPLETION_INDEX": "2"})
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["shard"] == {"index": 3, "count": 4, "keys": ["t2/staging", "t5/staging"], "fleet_keys": 7}
    assert sorted({c["tenant"] for c in doc["chatbots"]}) == ["t2", "t5"]
    assert api_keys_called(emu, before) == {"t2/staging", "t5/staging"}
    assert (d / ".wizsync" / "journal-shard-3-of-4.db").is_file()

    # More shards than keys: the empty shard succeeds with nothing to do and sends nothing.
    before = len(emu.requests())
    result = invoke(secret_scan, emu, ["plan", str(d / "wizsync.yaml"), "--env", ENV, "--shard", "8/8"])
    assert result.exit_code == 0, result.output
    assert "Shard 8/8: 0 of 7 key(s) (no key: nothing to do)" in result.stdout
    assert api_keys_called(emu, before) == set()

    # A selection that matches no entry is still an error in every shard, before any request.
    result = invoke(secret_scan, emu, ["plan", str(d / "wizsync.yaml"), "--env", ENV, "--shard", "8/8",
                                       "--select", "tenant=nobody"])
    assert result.exit_code == 1 and "no chatbot of 'staging' matches the selection" in result.stderr
    assert api_keys_called(emu, before) == set()

    # One a discover entry might match is known only after listing: each shard finds what it finds,
    # and the merged view says that no shard found anything.
    for i in (1, 2):
        result = invoke(secret_scan, emu, ["plan", str(d / "wizsync.yaml"), "--env", ENV, "--shard", f"{i}/2",
                                           "--chatbot", "no-such-bot"])
        assert result.exit_code == 0, result.output
    result = invoke(secret_scan, emu, ["show", "--journal", str(d / ".wizsync" / "journal-shard-*-of-2.db"), "--check"])
    assert result.exit_code == 1
    assert "no chatbot in any run: the selection matched nothing" in result.stderr


def test_resume_keeps_to_its_shard(fleets: tuple[EmulatorServer, Path, EmulatorServer, Path], secret_scan: Any) -> None:
    _, _, emu, d = fleets
    manifest_path = str(d / "wizsync.yaml")
    result = invoke(secret_scan, emu, ["apply", manifest_path, "--env", ENV, "--yes", "--shard", "1/4", "--json"])
    assert result.exit_code == 0, result.output
    run_id = json.loads(result.stdout)["run_id"]
    journal_1 = str(d / ".wizsync" / "journal-shard-1-of-4.db")
    secret_scan.watch_journal(journal_1)

    before = len(emu.requests())
    result = invoke(secret_scan, emu, ["resume", run_id, "--journal", journal_1, "--shard", "2/4"])
    assert result.exit_code == 1
    assert f"run {run_id} is shard 1/4, not 2/4" in result.stderr
    result = invoke(secret_scan, emu, ["resume", run_id, "--shard", "2/4"], env={})
    assert result.exit_code == 1 and "no journal at" in result.stderr  # cwd has no shard-2 journal
    assert api_keys_called(emu, before) == set()

    result = invoke(secret_scan, emu, ["resume", run_id, "--journal", journal_1, "--shard", "1/4"])
    assert result.exit_code == 0, result.output
    assert "nothing to resume" in result.stderr


def test_plans_and_rollbacks_keep_to_their_shard(
    fleets: tuple[EmulatorServer, Path, EmulatorServer, Path], secret_scan: Any
) -> None:
    _, _, emu, d = fleets
    manifest_path = str(d / "wizsync.yaml")
    journal_2 = d / ".wizsync" / "journal-shard-2-of-4.db"
    secret_scan.watch_journal(journal_2)
    result = invoke(secret_scan, emu, ["plan", manifest_path, "--env", ENV, "--shard", "2/4", "--json"])
    assert result.exit_code == 0, result.output
    plan_id = json.loads(result.stdout)["run_id"]
    keys = set(json.loads(result.stdout)["shard"]["keys"])

    # A plan of shard 2 applies as shard 2 only: another shard (or none) is refused before any request.
    before = len(emu.requests())
    for other in (["--shard", "3/4", "--journal", str(journal_2)], ["--journal", str(journal_2)]):
        result = invoke(secret_scan, emu, ["apply", manifest_path, "--env", ENV, "--yes", "--plan", plan_id, *other])
        assert result.exit_code == 1
        assert f"plan run {plan_id} planned shard 2/4, not" in result.stderr, result.stderr
    assert api_keys_called(emu, before) == set()
    result = invoke(secret_scan, emu, ["apply", manifest_path, "--env", ENV, "--yes", "--shard", "2/4",
                                       "--plan", plan_id, "--json"])
    assert result.exit_code == 0, result.output
    apply_id = json.loads(result.stdout)["run_id"]
    assert api_keys_called(emu, before) == keys

    # The rollback of a shard's run reads and restores that shard's keys only.
    before = len(emu.requests())
    result = invoke(secret_scan, emu, ["rollback", apply_id, "--journal", str(journal_2), "--yes", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["run"]["options"]["shard"]["keys"] == sorted(keys)
    assert {c["tenant"] for c in doc["chatbots"]} == {k.split("/")[0] for k in keys}
    assert api_keys_called(emu, before) == keys


def test_the_fleet_check_holds_the_fleet_to_its_budget(
    fleets: tuple[EmulatorServer, Path, EmulatorServer, Path], secret_scan: Any
) -> None:
    """maxFailures: 1, one failed chatbot in each of two shards: each shard is within its budget (it does
    not halt: every batch runs, the run ends 'failed'), the fleet is not."""
    _, _, emu, d = fleets
    (d / "wizsync.yaml").write_text(manifest(emu.base_url, failing=("t0-bot-3", "t1-bot-2")))
    for i in (1, 2, 3, 4):
        result = invoke(secret_scan, emu, ["apply", str(d / "wizsync.yaml"), "--env", ENV, "--yes", "--shard", f"{i}/4"])
        assert result.exit_code == (1 if i in (1, 2) else 0), result.output
        assert "halted" not in result.stdout
        secret_scan.watch_journal(d / ".wizsync" / f"journal-shard-{i}-of-4.db")
    glob = str(d / ".wizsync" / "journal-shard-*-of-4.db")
    result = invoke(secret_scan, emu, ["show", "--journal", glob, "--check"])
    assert result.exit_code == 1
    assert "failure budget: 2 failed, 1 allowed (maxFailures 1 of 29 chatbots): EXCEEDED" in result.stdout
    assert "t0-bot-3 (t0, cb_t0_3, batch" in result.stdout and "t1-bot-2 (t1, cb_t1_2, batch" in result.stdout
    assert "Fleet: apply 'staging', 4 shard(s), 4 run(s): failed" in result.stdout
    assert "check failed: status failed; the fleet's failure budget is exceeded" in result.stderr
    result = invoke(secret_scan, emu, ["show", "--journal", glob, "--json"])
    assert result.exit_code == 0  # without --check the view is only a view
    fleet = json.loads(result.stdout)["fleet"]
    assert fleet["status"] == "failed" and not fleet["ok"] and fleet["problems"] == []
    assert fleet["failure_budget"] == {"failed": 2, "max_failures": 1, "budget": 1, "exceeded": True}
    assert fleet["counts"] == {"applied": 27, "failed": 2}


def test_shards_side_by_side_never_lock_each_other_out(
    fleets: tuple[EmulatorServer, Path, EmulatorServer, Path], secret_scan: Any, tmp_path: Path
) -> None:
    """The run lock is per target: while a process holds shard 1's tenant (t0), shard 2 runs; shard 1 is refused."""
    _, _, emu, d = fleets
    holder = subprocess.Popen(
        [sys.executable, str(CHILD), "lock", str(tmp_path / "elsewhere.db"), "r20261201-000000-aaaa", ENV, emu.base_url, "t0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        result = invoke(secret_scan, emu, ["apply", str(d / "wizsync.yaml"), "--env", ENV, "--yes", "--shard", "2/4"])
        assert result.exit_code == 0, result.output
        before = len(emu.requests())
        result = invoke(secret_scan, emu, ["apply", str(d / "wizsync.yaml"), "--env", ENV, "--yes", "--shard", "1/4"])
        assert result.exit_code == 1
        assert "tenant 't0' in 'staging'" in result.stderr and "r20261201-000000-aaaa" in result.stderr
        assert api_keys_called(emu, before) == set()
    finally:
        holder.kill()
        holder.wait()
    secret_scan.watch_journal(d / ".wizsync" / "journal-shard-2-of-4.db")


BAD_SHARDS = {
    "zero": ("0/4", "the shard must be between 1 and 4"),
    "past-the-end": ("5/4", "the shard must be between 1 and 4"),
    "no-shards": ("1/0", "the number of shards must be between 1"),
    "not-a-fraction": ("two", "is not I/N or auto/N"),
    "auto-unset": ("auto/4", "JOB_COMPLETION_INDEX (set by a Kubernetes Indexed Job), which is not set"),
}


@pytest.fixture(scope="module")
def one_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmulatorServer, Path]]:
    with EmulatorServer(seed=seed()) as emu:
        d = tmp_path_factory.mktemp("bad-shards")
        (d / "bot.yaml").write_text(BOT)
        (d / "wizsync.yaml").write_text(manifest(emu.base_url))
        yield emu, d


@pytest.mark.parametrize("command", ["plan", "apply", "export", "resume"])
@pytest.mark.parametrize("case", sorted(BAD_SHARDS))
def test_bad_shards_are_usage_errors_before_any_request(
    command: str, case: str, one_fleet: tuple[EmulatorServer, Path], secret_scan: Any
) -> None:
    emu, d = one_fleet
    value, message = BAD_SHARDS[case]
    args = {
        "plan": ["plan", str(d / "wizsync.yaml"), "--env", ENV],
        "apply": ["apply", str(d / "wizsync.yaml"), "--env", ENV, "--yes"],
        "export": ["export", str(d / "wizsync.yaml"), "--env", ENV, "--out", str(d / "out")],
        "resume": ["resume", "r20261201-000000-abcd", "--journal", str(d / "j.db")],
    }[command]
    before = len(emu.requests())
    result = invoke(secret_scan, emu, [*args, "--shard", value])
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--shard'" in result.stderr and message in result.stderr
    assert "Traceback" not in result.output
    assert api_keys_called(emu, before) == set()
    assert not (d / ".wizsync").exists() and not (d / "out").exists()
