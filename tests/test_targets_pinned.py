"""Targets are pinned: a key that points at the wrong organization is refused before any dry-run or
apply. Duplicated key values offline; keys of one organization (a staging key in a production
variable, one tenant's key in another's) by the chatbot ids they see; keys swapped after a good
run by what the journal pinned at first use (re-pinned only with --repin); the manifest's own
`expect` pin; and `validate --check-keys` says what it proved."""

from __future__ import annotations

import json
from pathlib import Path

from apply_fleet import Cli, ids_of, query, write_manifest

from wizsync.fleet.pinning import decide

APPLY = ("apply", "wizsync.yaml", "--env", "production", "--yes", "--allow-deletes")
PLAN = ("plan", "wizsync.yaml", "--env", "production")


def _writes(emulator) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    total = emulator.stats()["total"]
    return total["dryRuns"], total["applies"]


def test_the_same_key_value_for_two_targets_is_refused_offline_naming_both(emulator, secret_scan, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator)
    keys = emulator.key_env
    for variable, value, both in (
        ("WIZCHAT_GLOBEX_PRODUCTION_KEY", keys["WIZCHAT_GLOBEX_STAGING_KEY"], ("tenants.globex.keys.staging", "tenants.globex.keys.production")),
        ("WIZCHAT_GLOBEX_PRODUCTION_KEY", keys["WIZCHAT_ACME_PRODUCTION_KEY"], ("tenants.acme.keys.production", "tenants.globex.keys.production")),
    ):
        cli = Cli(secret_scan, tmp_path, emulator, {variable: value})
        for args in (APPLY, PLAN, ("validate", "wizsync.yaml")):
            proc = cli.run(*args)
            assert proc.returncode == 1, (args, proc.stderr)
            assert "the same API key value" in proc.stderr and all(b in proc.stderr for b in both), proc.stderr
            assert "Traceback" not in proc.stderr
    assert emulator.stats()["total"]["requests"] == 0  # offline: not even a listing


def test_a_staging_key_in_a_production_variable_is_refused_by_the_chatbots_it_sees(emulator, secret_scan, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator)
    # Another key of globex's staging organization: not the same value, the same organization.
    second = emulator.add_key("org_globex_staging", label="globex-staging-2")
    secret_scan.register("second staging key", second)
    cli = Cli(secret_scan, tmp_path, emulator, {"WIZCHAT_GLOBEX_PRODUCTION_KEY": second})
    for args in (APPLY, PLAN):
        proc = cli.run(*args)
        assert proc.returncode == 1, proc.stderr
        assert "wrong target" in proc.stderr and "globex/production: sees the same chatbot(s) as globex/staging" in proc.stderr, proc.stderr
        assert "--repin globex/production" in proc.stderr and "Traceback" not in proc.stderr
    assert _writes(emulator) == (0, 0)  # not one dry-run, not one apply
    run = cli.last_run()
    assert run["status"] == "failed" and query(cli.journal, "SELECT * FROM pins") == []  # nothing pinned

    checked = cli.run("validate", "wizsync.yaml", "--check-keys")
    assert checked.returncode == 1 and "sees the same chatbot(s) as globex/staging" in checked.stderr, checked.stderr


def test_keys_swapped_after_a_good_run_are_refused_until_re_pinned(emulator, secret_scan, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator)
    good = Cli(secret_scan, tmp_path, emulator)
    first = good.run(*PLAN)
    assert first.returncode == 0, first.stderr
    pinned = query(good.journal, "SELECT target, COUNT(*) AS n FROM pins GROUP BY target ORDER BY target")
    assert {r["target"]: r["n"] for r in pinned} == {
        "acme/production": 20, "acme/staging": 20, "globex/production": 19, "globex/staging": 19,
        "initech/production": 21, "initech/staging": 21,
    }
    proved = good.run("validate", "wizsync.yaml", "--check-keys")
    assert proved.returncode == 0 and "acme/production: sees 20 of its 20 pinned chatbot(s)" in proved.stdout, proved.stderr

    keys = emulator.key_env
    swapped = Cli(secret_scan, tmp_path, emulator, {"WIZCHAT_ACME_PRODUCTION_KEY": keys["WIZCHAT_GLOBEX_PRODUCTION_KEY"],
                                                    "WIZCHAT_GLOBEX_PRODUCTION_KEY": keys["WIZCHAT_ACME_PRODUCTION_KEY"]})
    before = _writes(emulator)
    for args in (APPLY, PLAN, ("validate", "wizsync.yaml", "--check-keys")):
        proc = swapped.run(*args)
        assert proc.returncode == 1, (args, proc.stderr)
        for target, other in (("acme/production", "globex/production"), ("globex/production", "acme/production")):
            assert f"{target}: shares none of the" in proc.stderr, proc.stderr
            assert f"what it sees now is pinned to {other}: swapped keys?" in proc.stderr, proc.stderr
    assert _writes(emulator) == before  # zero dry-runs, zero applies

    # Re-pinning is explicit, per target; then the swap is what is pinned, and the right keys are refused.
    repinned = swapped.run(*PLAN, "--repin", "acme/production", "--repin", "globex/production")
    assert "wrong target" not in repinned.stderr and "plan production: 60 chatbots" in repinned.stderr, repinned.stderr
    events = query(good.journal, "SELECT json_extract(data, '$.target') AS t FROM events WHERE kind = 'target.repinned'")
    assert sorted(e["t"] for e in events) == ["acme/production", "globex/production"]
    back = good.run(*PLAN)
    assert back.returncode == 1 and "acme/production: shares none of the" in back.stderr, back.stderr
    bad = swapped.run(*PLAN, "--repin", "nobody/production")
    assert bad.returncode in (1, 2) and "--repin 'nobody/production': no such target" in bad.stderr, bad.stderr


def test_the_manifests_expect_pin_is_checked_on_first_use(emulator, secret_scan, tmp_path: Path) -> None:
    path = write_manifest(tmp_path, emulator)
    acme = ids_of(emulator, "acme", "order-tracker")["production"]
    globex = ids_of(emulator, "globex", "store-locator")["production"]
    text = path.read_text()
    pin = "    keys: {staging: {env: WIZCHAT_GLOBEX_STAGING_KEY}, production: {env: WIZCHAT_GLOBEX_PRODUCTION_KEY}}\n"
    assert pin in text
    path.write_text(text.replace(pin, pin + f"    expect: {{production: {{chatbots: [{globex}]}}}}\n"))
    keys = emulator.key_env
    wrong = Cli(secret_scan, tmp_path, emulator, {"WIZCHAT_GLOBEX_PRODUCTION_KEY": keys["WIZCHAT_INITECH_PRODUCTION_KEY"],
                                                  "WIZCHAT_INITECH_PRODUCTION_KEY": keys["WIZCHAT_GLOBEX_PRODUCTION_KEY"]})
    proc = wrong.run(*APPLY)  # a fresh journal: trust on first use alone would have pinned the swap
    assert proc.returncode == 1, proc.stderr
    assert f"globex/production: does not see chatbot(s) the manifest expects ({globex}" in proc.stderr, proc.stderr
    assert _writes(emulator) == (0, 0)

    right = Cli(secret_scan, tmp_path, emulator)
    checked = right.run("validate", "wizsync.yaml", "--check-keys")
    assert checked.returncode == 0, checked.stderr
    assert "globex/production: not pinned yet" in checked.stdout and "all 1 the manifest expects" in checked.stdout
    path.write_text(path.read_text().replace(f"chatbots: [{globex}]", f"chatbots: [{acme}]"))
    assert "does not see chatbot(s) the manifest expects" in right.run("validate", "wizsync.yaml", "--check-keys").stderr


def test_decide_trusts_gradual_change_and_refuses_losing_most() -> None:
    known = {"a/prod": {f"cb_{i}": "2026-11-01T00:00:00.000Z" for i in range(10)}}
    churn = frozenset({f"cb_{i}" for i in range(2, 12)})  # 2 gone, 2 new
    ok = decide({"a/prod": churn}, known, {})
    assert ok.ok and ok.record == {"a/prod": churn} and "+2 new, -2 gone" in ok.proved["a/prod"]
    most_lost = decide({"a/prod": frozenset({"cb_0", "cb_1", "cb_2", "cb_x"})}, known, {})
    assert not most_lost.ok and "lost most of its pinned chatbots: 3 of 10" in most_lost.problems["a/prod"][0]
    assert most_lost.record == {}
    first = decide({"b/prod": frozenset({"cb_b"})}, known, {})
    assert first.ok and first.proved["b/prod"].startswith("first use")


def test_a_key_whose_proof_fails_fails_only_its_chatbots_and_the_proof_listing_is_reused(emulator, secret_scan,
                                                                                        tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator)
    cli = Cli(secret_scan, tmp_path, emulator)
    # globex's production key is throttled far past the longest wait wizsync accepts: its listing
    # fails, so its target cannot be proved; the other tenants are proved and planned.
    emulator.force_429("globex/production", seconds=600)
    doc = cli.json(*PLAN, "--json")
    assert doc["status"] == "failed"
    by_tenant: dict[str, set[str]] = {}
    for chatbot in doc["chatbots"]:
        by_tenant.setdefault(chatbot["tenant"], set()).add("failed" if chatbot["error"] else "planned")
    assert by_tenant == {"acme": {"planned"}, "globex": {"failed"}, "initech": {"planned"}}, by_tenant
    globex = [c for c in doc["chatbots"] if c["tenant"] == "globex"]
    assert all("proving the target globex/production" in c["error"]["message"] for c in globex), globex[0]
    assert "tenants.globex.keys" not in json.dumps(globex)  # a server failure, not the manifest's key line
    # One listing per production key: what proved the target also bound the chatbots.
    for tenant in ("acme", "initech"):
        listings = [r for r in emulator.requests(key=f"{tenant}/production")
                    if r["method"] == "GET" and r["path"].rstrip("/").endswith("/chatbots")]
        assert len(listings) == 1, (tenant, listings)
    assert query(cli.journal, "SELECT DISTINCT target FROM pins ORDER BY target") == [
        {"target": "acme/production"}, {"target": "acme/staging"}, {"target": "globex/staging"},
        {"target": "initech/production"}, {"target": "initech/staging"}]


def test_a_rollback_with_a_key_it_cannot_prove_is_refused_before_any_apply(emulator, secret_scan, tmp_path: Path) -> None:
    write_manifest(tmp_path, emulator, protected=False)
    cli = Cli(secret_scan, tmp_path, emulator)
    assert cli.apply("--allow-deletes").returncode == 0
    run_id = cli.last_run()["id"]
    applies = emulator.stats()["total"]["applies"]
    # A rollback restores from snapshots, not through fleet loading: an unproven key must stop it.
    emulator.force_429("globex/production", seconds=600)
    back = cli.run("rollback", run_id, "--yes")
    assert back.returncode == 1, back.stderr
    assert "a rollback needs every target proved" in back.stderr and "globex/production" in back.stderr, back.stderr
    assert "Traceback" not in back.stderr
    assert emulator.stats()["total"]["applies"] == applies  # nothing restored anywhere
