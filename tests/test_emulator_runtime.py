"""Emulator policies and ways to run it: token buckets (fake clock), seeded faults, seed files,
SQLite persistence across a kill -9, and the command line."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from wizchat_management import WizChatClient
from wizchat_management.emulator import EmulatorProcess, EmulatorServer
from wizchat_management.emulator.cli import emulator_command
from wizchat_management.emulator.demo import demo_seed_document
from wizchat_management.emulator.faults import FaultInjector, FaultSettings
from wizchat_management.emulator.ratelimit import RateLimiter
from wizchat_management.emulator.seed import SeedError, build_seed


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_token_bucket_burst_refill_and_exact_wait() -> None:
    clock = Clock()
    rl = RateLimiter(rate=2, burst=3, clock=clock)
    assert [rl.acquire("k").allowed for _ in range(4)] == [True, True, True, False]
    refused = rl.acquire("k")
    assert refused.retry_after_ms == 500 and refused.retry_after_s == 1 and refused.remaining == 0
    assert refused.reset == pytest.approx(1.5)
    clock.t += 0.25
    assert rl.acquire("k").retry_after_ms == 250
    clock.t += 0.25
    ok = rl.acquire("k")
    assert ok.allowed and ok.limit == 3
    assert rl.acquire("other").allowed  # one bucket per key
    rl.set_key("k", None, None, unlimited=True)
    assert all(rl.acquire("k").allowed for _ in range(100))
    rl.set_key("slow", 0.1, 1)
    rl.acquire("slow")
    assert rl.acquire("slow").retry_after_s == 10


def test_faults_are_reproducible_and_forced_429s_expire() -> None:
    def run() -> list[str | None]:
        f = FaultInjector(FaultSettings(error_rate=0.3, drop_rate=0.2, seed=7))
        return [f.decide().action for _ in range(50)]

    first = run()
    assert first == run() and {"drop", None} <= set(first) and ({"500", "503"} & set(first))
    clock = Clock()
    f = FaultInjector(clock=clock)
    f.force_429("a", count=2)
    assert [f.forced_429("b"), f.forced_429("a"), f.forced_429("a"), f.forced_429("a")] == [None, 1000, 1000, None]
    f.force_429(None, seconds=3)
    assert f.forced_429("anyone") == 3000
    clock.t += 3
    assert f.forced_429("anyone") is None


def test_demo_seed_is_deterministic_and_realistic() -> None:
    doc = demo_seed_document()
    assert doc == demo_seed_document()
    seeded = build_seed(doc)
    assert len(seeded.orgs) == 6 and 110 <= len(seeded.chatbots) <= 130
    assert {k.env_name for k in seeded.keys} == {
        f"WIZCHAT_{t}_{e}_KEY" for t in ("ACME", "GLOBEX", "INITECH") for e in ("STAGING", "PRODUCTION")
    }
    assert all(k.key.startswith("wpk_live_" if "production" in k.label else "wpk_test_") for k in seeded.keys)
    assert build_seed(doc).key_map() == seeded.key_map()
    configs = [c.config for c in seeded.chatbots]
    for section in ("mcpServers", "skills", "domains"):
        assert any(c[section] for c in configs), section


def test_seed_file_errors_are_clear() -> None:
    bad = {"organizations": [
        {"name": "a", "keys": [{"scopes": ["nope"], "burst": 0, "key": "secret"}],
         "chatbots": [{"name": "x", "config": {"core": {"temperature": 9}}}, {"name": "x"}]},
    ]}
    with pytest.raises(SeedError) as e:
        build_seed(bad)
    msg = str(e.value)
    for fragment in ("organizations[0].keys[0].scopes", "organizations[0].keys[0].burst",
                     "organizations[0].keys[0].key", "chatbots[0].config.core.temperature",
                     "chatbots[1].name: duplicate"):
        assert fragment in msg


def test_seed_file_with_given_keys_scopes_and_limits(tmp_path: Path) -> None:
    seed = {"organizations": [{
        "name": "solo", "environment": "production",
        "keys": [{"label": "ro", "key": "wpk_live_" + "r" * 30, "scopes": ["chatbots:read"], "rate": 1, "burst": 1},
                 {"label": "gen", "envName": "SOLO_KEY"}],
        "chatbots": [{"name": "helper", "config": {"skills": [{"name": "s"}],
                                                   "security": {"webhookSecret": "whsec_x"}}}],
    }]}
    path = tmp_path / "seed.yaml"
    path.write_text(yaml.safe_dump(seed))
    with EmulatorServer(seed=str(path)) as emu:
        assert emu.keys["ro"] == "wpk_live_" + "r" * 30 and emu.keys["gen"].startswith("wpk_live_")
        with WizChatClient(emu.keys["ro"], base_url=emu.base_url) as c:
            [bot] = c.list_chatbots()
            assert bot.name == "helper"
            with pytest.raises(Exception) as e:
                c.get_chatbot(bot.id)  # burst 1: the second request is limited
            assert getattr(e.value, "status", None) == 429
        with WizChatClient(emu.keys["gen"], base_url=emu.base_url) as c:
            skills = c.get_config(bot.id).spec.skills
            assert skills[0].enabled is True  # defaults filled in on seeding


def test_state_survives_kill_9_and_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "emu.db")
    with EmulatorProcess(["--seed", "demo", "--state", db]) as first:
        key = first.keys["acme/staging"]
        with WizChatClient(key, base_url=first.base_url) as c:
            bot = c.list_chatbots()[3]
            doc = c.get_config(bot.id)
            doc.spec.core = {**doc.spec.core, "welcomeMessage": "Persisted!"}
            assert c.apply_config(bot.id, doc).revision == 1
        first.kill()
    with EmulatorProcess(["--seed", "demo", "--state", db]) as second:
        assert second.keys["acme/staging"] == key
        with WizChatClient(key, base_url=second.base_url) as c:
            assert c.get_chatbot(bot.id).revision == 1
            assert c.get_config(bot.id).spec.core["welcomeMessage"] == "Persisted!"
            assert len(c.list_chatbots()) == 20  # not seeded twice


def test_cli_refuses_remote_hosts_and_writes_keys_privately(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(emulator_command, ["--host", "0.0.0.0", "--seed", "demo"])
    assert r.exit_code != 0 and "--allow-remote" in r.output and "Traceback" not in r.output
    r = runner.invoke(emulator_command, ["--seed", str(tmp_path / "missing.yaml")])
    assert r.exit_code != 0 and "cannot read seed file" in r.output
    keys = tmp_path / "keys.env"
    with EmulatorProcess(["--seed", "demo", "--keys-out", str(keys)]) as proc:
        text = keys.read_text()
        env = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
        assert env["WIZCHAT_ACME_STAGING_KEY"] == proc.keys["acme/staging"]
        assert stat.S_IMODE(os.stat(keys).st_mode) == 0o600
        log = proc.admin.requests()
        assert all(e["key"] is None or "/" in e["key"] for e in log)


def test_admin_api_needs_the_token(emulator: Any) -> None:
    import httpx

    for method, path in (("GET", "/stats"), ("POST", "/reset"), ("PUT", "/faults"), ("GET", "/keys")):
        r = httpx.request(method, emulator.base_url + "/_emulator" + path, headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    key = emulator.keys["acme/staging"]
    r = httpx.get(emulator.base_url + "/_emulator/stats", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 401  # an API key is not the admin token


def test_admin_reset_restores_the_seed(emulator: Any) -> None:
    with WizChatClient(emulator.keys["acme/staging"], base_url=emulator.base_url) as c:
        bot = c.list_chatbots()[0]
        c.apply_config(bot.id, {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig",
                                "spec": {"core": {"language": "pt"}}})
        assert c.get_chatbot(bot.id).revision == 1
        emulator.set_limits(rate=1, burst=1)
        emulator.reset()
        assert c.get_chatbot(bot.id).revision == 0
        assert c.get_chatbot(bot.id).revision == 0  # limits back to unlimited too
    assert emulator.stats()["total"]["requests"] == 2
