"""The emulator as the servers wizsync has never seen (issue 10 §2), and wizsync against each.

- the three limiter kinds and the organization-wide limit, as a state model
  (fake clock, no HTTP);
- how a refusal is told over real HTTP: X-RateLimit-* or not, Retry-After
  as seconds, an HTTP-date or not at all; the same settings from a seed file;
- the fault that applies a write and then loses its answer;
- `wizsync plan` (a real process) against each mode, small fleets at high
  rates: every chatbot planned, and 429s a small share of the requests
  (the old limiter drew one 429 per good request from a server without
  headers). Wall time is the bench's business (bench/rate_limit_floor.py).
"""

from __future__ import annotations

import email.utils
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from wizchat_management import WizChatApiError, WizChatClient, WizChatConnectionError
from wizchat_management._retry_after import parse_retry_after
from wizchat_management.emulator import EmulatorProcess, EmulatorServer
from wizchat_management.emulator.ratelimit import RateLimiter, Telling
from wizchat_management.emulator.seed import SeedError, build_seed
from wizchat_management.emulator.server import make_context


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def allowed_at(limiter: RateLimiter, clock: Clock, times: list[float], label: str = "k", org: str | None = None) -> str:
    out = ""
    for t in times:
        clock.now = t
        out += "+" if limiter.acquire(label, org).allowed else "-"
    return out


# -- the state model ----------------------------------------------------------


def test_token_bucket_refills_continuously() -> None:
    clock = Clock()
    limiter = RateLimiter(2, 2, clock=clock)
    # burst of 2, then one every 0.5 s
    assert allowed_at(limiter, clock, [100.0, 100.0, 100.0, 100.4, 100.5, 100.6, 101.0]) == "++--+-+"


def test_fixed_window_allows_burst_per_aligned_window_and_carries_nothing_over() -> None:
    clock = Clock()
    limiter = RateLimiter(2, 2, limiter="fixed-window", clock=clock)  # 2 per 1 s window
    assert allowed_at(limiter, clock, [100.1, 100.2, 100.3, 100.99, 101.0, 101.01, 101.02]) == "++--++-"
    clock.now = 101.5
    d = limiter.acquire("k")
    assert not d.allowed and d.retry_after_ms == 500  # until the window ends


def test_sliding_window_log_counts_any_trailing_window() -> None:
    clock = Clock()
    limiter = RateLimiter(2, 2, limiter="sliding-window", clock=clock)  # 2 in any 1 s
    # a fixed window would allow 100.9, 101.0, 101.1 (a new window at 101.0)
    assert allowed_at(limiter, clock, [100.5, 100.9, 101.0, 101.1, 101.5, 101.6]) == "++--+-"
    clock.now = 101.7
    d = limiter.acquire("k")
    assert not d.allowed and abs(d.retry_after_ms - 200) <= 1  # until 100.9 leaves the window


def test_an_organization_limit_is_shared_by_all_its_keys() -> None:
    clock = Clock()
    limiter = RateLimiter(10, 10, org_rate=1, org_burst=2, clock=clock)
    assert allowed_at(limiter, clock, [100.0], "a", "org_1") == "+"
    assert allowed_at(limiter, clock, [100.0], "b", "org_1") == "+"
    assert allowed_at(limiter, clock, [100.0], "c", "org_1") == "-"  # the org's burst is used up
    assert allowed_at(limiter, clock, [100.0], "d", "org_2") == "+"  # another organization
    # A refusal costs nothing: the key's own allowance was not taken.
    assert limiter.peek("c", "org_1").remaining == 0
    limiter.set_org("org_1", None, None)
    limiter.set_org_default(None, None)
    assert allowed_at(limiter, clock, [100.0], "c", "org_1") == "+"


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="limiter must be one of"):
        RateLimiter(1, 1, limiter="leaky")
    with pytest.raises(ValueError, match="retry_after must be one of"):
        Telling(retry_after="minutes")


def test_seed_files_set_the_same_options() -> None:
    doc = {
        "limits": {"rate": 3, "burst": 3, "limiter": "sliding-window", "rateHeaders": False,
                   "retryAfter": "http-date", "orgRate": 5},
        "organizations": [{"name": "acme", "rate": 4, "burst": 4, "keys": [{"label": "acme/k"}]},
                          {"name": "globex", "keys": [{"label": "globex/k"}]}],
    }
    ctx = make_context(seed=doc)
    try:
        described = ctx.limiter.describe()
        assert described["global"] == {"rate": 3.0, "burst": 3}
        assert described["limiter"] == "sliding-window"
        assert described["rateHeaders"] is False and described["retryAfter"] == "http-date"
        assert described["org"] == {"rate": 5.0, "burst": 5}
        assert described["orgs"] == {"org_acme": {"rate": 4.0, "burst": 4}}
    finally:
        ctx.state.close()
    # the command line wins over the seed
    ctx = make_context(seed=doc, limiter="fixed-window", retry_after="none", rate_headers=True)
    try:
        assert ctx.limiter.describe()["limiter"] == "fixed-window"
        assert ctx.limiter.telling == Telling(rate_headers=True, retry_after="none")
    finally:
        ctx.state.close()


def test_bad_limits_in_a_seed_are_named() -> None:
    doc = {"limits": {"limiter": "leaky", "retryAfter": 3, "rateHeaders": "no", "orgBurst": 2, "speed": 1},
           "organizations": [{"name": "acme", "rate": -1}]}
    with pytest.raises(SeedError) as info:
        build_seed(doc)
    text = str(info.value)
    for expected in ("limits.limiter", "limits.retryAfter", "limits.rateHeaders", "limits.orgBurst: needs orgRate",
                     "limits.speed: unknown setting", "organizations[0].rate"):
        assert expected in text, text


# -- over HTTP --------------------------------------------------------------------


def _seed(keys_per_org: int = 1) -> dict[str, Any]:
    return {"organizations": [{"name": "acme", "keys": [{"label": f"acme/{i}"} for i in range(keys_per_org)],
                               "chatbots": [{"name": "bot", "id": "cb_bot"}]}]}


def _hammer(emu: EmulatorServer, label: str = "acme/0", n: int = 3) -> list[httpx.Response]:
    with httpx.Client(base_url=emu.base_url, headers={"Authorization": f"Bearer {emu.keys[label]}"}) as http:
        return [http.get("/api/v1/chatbots/cb_bot") for _ in range(n)]


def test_no_rate_headers_and_no_retry_after_is_a_bare_429() -> None:
    with EmulatorServer(seed=_seed(), rate=0.5, burst=1, limiter="fixed-window", rate_headers=False,
                        retry_after="none") as emu:
        first, second, _ = _hammer(emu)
    assert first.status_code == 200 and second.status_code == 429
    for r in (first, second):
        assert not [h for h in r.headers if h.lower().startswith("x-ratelimit")]
    assert "retry-after" not in second.headers
    assert second.json()["error"]["details"] is None
    assert second.json()["error"]["code"] == "rate_limited"


def test_retry_after_as_an_http_date() -> None:
    with EmulatorServer(seed=_seed(), rate=0.2, burst=1, retry_after="http-date") as emu:
        before = time.time()
        _, refused, _ = _hammer(emu)
    assert refused.status_code == 429
    value = refused.headers["retry-after"]
    assert email.utils.parsedate_to_datetime(value).tzname() == "UTC" and value.endswith(" GMT")
    wait = parse_retry_after(value, now=before)
    assert wait is not None and 4.0 <= wait <= 6.5  # 5 s to the next token, in whole seconds, never early
    assert "x-ratelimit-limit" in refused.headers  # rate headers are a separate switch


def test_an_organization_limit_throttles_its_keys_together() -> None:
    with EmulatorServer(seed=_seed(keys_per_org=2), org_rate=0.5, org_burst=2) as emu:
        a = _hammer(emu, "acme/0", 2)
        b = _hammer(emu, "acme/1", 1)
    assert [r.status_code for r in a] == [200, 200]
    assert b[0].status_code == 429  # the other key's requests used the organization's allowance


def test_lose_after_apply_applies_then_drops_the_answer() -> None:
    with EmulatorServer(seed=_seed(), lose_after_apply_rate=1.0) as emu:
        client = WizChatClient(emu.keys["acme/0"], base_url=emu.base_url)
        try:
            before = client.get_config("cb_bot").metadata.revision
            doc = {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig",
                   "spec": {"core": {"name": "bot", "temperature": 0.9}}}
            client.apply_config("cb_bot", doc, dry_run=True)  # a dry run writes nothing: answered
            with pytest.raises(WizChatConnectionError):
                client.apply_config("cb_bot", doc)
            after = client.get_config("cb_bot")
        finally:
            client.close()
        assert after.metadata.revision == before + 1  # the write happened
        assert emu.stats()["total"]["applies"] == 1


def test_ignore_dry_run_is_a_gateway_that_turns_dry_runs_into_applies() -> None:
    doc = {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig", "spec": {"core": {"name": "bot", "temperature": 0.9}}}
    with EmulatorProcess(["--seed", "demo", "--ignore-dry-run"]) as emu:
        label = "acme/staging"
        with WizChatClient(emu.keys[label], base_url=emu.base_url) as client:
            bot = client.list_chatbots()[0].id
            before = client.get_config(bot).metadata.revision
            with pytest.raises(WizChatApiError) as info:
                client.apply_config(bot, doc, dry_run=True)
            assert info.value.code == "dry_run_applied"
            assert client.get_config(bot).metadata.revision == before + 1  # carried out
            emu.set_faults(ignore_dry_run=False)  # the admin API switches it off again
            client.apply_config(bot, {**doc, "spec": {"core": {"name": "bot", "temperature": 0.1}}}, dry_run=True)
            assert client.get_config(bot).metadata.revision == before + 1
        assert emu.stats()["total"]["applies"] == 1 and emu.stats()["total"]["dryRuns"] == 1


def test_the_emulator_command_takes_the_options() -> None:
    from click.testing import CliRunner

    from wizchat_management.emulator.cli import emulator_command

    result = CliRunner().invoke(emulator_command, ["--limiter", "leaky"])
    assert result.exit_code == 2 and "leaky" in result.output
    result = CliRunner().invoke(emulator_command, ["--org-burst", "3"])
    assert result.exit_code == 1 and "--org-burst needs --org-rate" in result.output
    result = CliRunner().invoke(emulator_command, ["--help"])
    for option in ("--limiter", "--no-rate-headers", "--retry-after", "--org-rate", "--lose-after-apply-rate",
                   "--ignore-dry-run"):
        assert option in result.output


# -- wizsync against each mode ---------------------------------------------------

TENANTS = ("t1", "t2")  # one organization each, with one key
PER_TENANT = 60
RATE, BURST = 20.0, 5


def _fleet_seed(per_tenant: int = PER_TENANT) -> dict[str, Any]:
    def bots(t: str) -> list[dict[str, Any]]:
        return [{"name": f"{t}-bot-{i:03d}", "id": f"cb_{t}_{i:03d}",
                 "config": {"core": {"name": f"{t}-bot-{i:03d}", "temperature": 0.3}}} for i in range(per_tenant)]

    def key(t: str) -> dict[str, Any]:
        return {"label": f"{t}/staging", "envName": f"WIZCHAT_{t.upper()}_STAGING_KEY"}

    return {"organizations": [{"name": f"{t}-staging", "tenant": t, "environment": "staging", "keys": [key(t)],
                               "chatbots": bots(t)} for t in TENANTS]}


def _manifest(base: str, per_tenant: int = PER_TENANT) -> str:
    lines = ["version: 1", "environments:", f'  staging: {{baseUrl: "{base}"}}', "tenants:"]
    lines += [f"  {t}: {{keys: {{staging: {{env: WIZCHAT_{t.upper()}_STAGING_KEY}}}}}}" for t in TENANTS]
    lines += ["defaults:", "  sections: [core]", "  source: {file: bot.yaml}", "chatbots:"]
    lines += [f"  - {{name: {t}-bot-{i:03d}, tenant: {t}, ids: {{staging: cb_{t}_{i:03d}}}}}"
              for i in range(per_tenant) for t in TENANTS]
    return "\n".join(lines) + "\n"


MODES = {
    "token-bucket+headers": (dict(rate=RATE, burst=BURST), 0.02),
    "token-bucket, no headers": (dict(rate=RATE, burst=BURST, rate_headers=False), 0.12),
    # Windows that send X-RateLimit-*: told apart from a bucket at the first 429, then waited out
    # whole, where reading them as a bucket drew a 429 per window until the headers were
    # distrusted and the key paced blind (the log says which). How many 429s that costs is what
    # was in flight with the first, which a loaded machine's slow answers make many: what is
    # bounded is the windows a key is refused in (_refused_windows).
    "fixed-window+headers": (dict(rate=RATE, burst=BURST, limiter="fixed-window"), None),
    "sliding-window+headers": (dict(rate=RATE, burst=BURST, limiter="sliding-window"), None),
    "fixed-window, bare 429": (dict(rate=RATE, burst=BURST, limiter="fixed-window", rate_headers=False,
                                    retry_after="none"), 0.12),
    "sliding-window, http-date": (dict(rate=RATE, burst=BURST, limiter="sliding-window", rate_headers=False,
                                       retry_after="http-date"), 0.12),
    # wizsync refuses two tenants whose keys are of one organization (docs/safety.md, "Wrong
    # target"), so here each organization has one key and its org limit is the tighter one.
    "org-shared limit": (dict(rate=2 * RATE, burst=2 * BURST, org_rate=RATE, org_burst=BURST), 0.12),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_wizsync_plan_completes_with_few_429s_against(mode: str, secret_scan: Any, tmp_path: Path) -> None:
    options, max_share = MODES[mode]
    _plan_against(mode, options, max_share, secret_scan, tmp_path)


def _refused_windows(arrivals: list[float], window: float) -> int:
    """How many windows a key's 429s (their arrival times) fall in: one starts at a 429 a window after the last's start."""
    starts: list[float] = []
    for at in sorted(arrivals):
        if not starts or at - starts[-1] > window + 0.005:  # (``at`` is to the ms)
            starts.append(at)
    return len(starts)


def test_refused_windows_groups_429s_by_the_window_they_fall_in() -> None:
    assert _refused_windows([], 0.25) == 0
    assert _refused_windows([10.0, 10.01, 10.2, 10.25], 0.25) == 1  # the first and what was in flight with it
    assert _refused_windows([10.0, 10.3, 10.31], 0.25) == 2  # a window met at its end, then the next
    assert _refused_windows([10.0, 10.3, 10.6, 10.9], 0.25) == 4  # a 429 per window: read as a bucket's


def _plan_against(mode: str, options: dict[str, Any], max_share: float | None, secret_scan: Any,
                  tmp_path: Path) -> None:
    with EmulatorServer(seed=_fleet_seed(), **options) as emu:
        secret_scan.register_all(emu.keys)
        (tmp_path / "bot.yaml").write_text("spec:\n  core: {name: '${chatbot}', temperature: 0.5}\n")
        (tmp_path / "wizsync.yaml").write_text(_manifest(emu.base_url))
        journal = tmp_path / "journal.db"
        secret_scan.watch_journal(journal)
        log = tmp_path / "wizsync.log"
        proc = secret_scan.run(["--log-file", str(log), "plan", "wizsync.yaml", "--env", "staging", "--json",
                                "--journal", str(journal)], cwd=tmp_path, env=emu.key_env, timeout=120)
        stats = emu.stats()
        refused_at = {label: [r["at"] for r in emu.requests(key=label) if r["status"] == 429] for label in emu.keys}
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    assert doc["status"] == "completed"
    assert len(doc["chatbots"]) == len(TENANTS) * PER_TENANT
    assert all(c["error"] is None for c in doc["chatbots"])
    total = stats["total"]
    assert total["dryRuns"] == len(TENANTS) * PER_TENANT
    if max_share is not None:
        share = total["rateLimited"] / total["requests"]
        assert share <= max_share, f"{mode}: {total['rateLimited']} 429s of {total['requests']} requests"
    else:
        # Refused in the window that told it apart, and in the one before where a key met its
        # first window a moment before its end (nothing then tells a window from a bucket).
        windows = {label: _refused_windows(at, BURST / RATE) for label, at in refused_at.items()}
        assert all(1 <= n <= 2 for n in windows.values()), (mode, windows, refused_at)
    # wizsync counts what the server counted
    assert sum(k["throttled"] for k in doc["keys"].values()) == total["rateLimited"]
    if mode.endswith("window+headers"):
        text = log.read_text()
        # A fixed window's 429 waits for its end: told apart. A sliding log's first burst sent
        # slower than its window (a loaded machine) is refused until its oldest request leaves,
        # as a bucket would be: paced by its headers as one, which the bound above holds to.
        if mode.startswith("fixed"):
            for t in TENANTS:
                assert f"{t}/staging: the rate-limit headers describe a window" in text, text[-3000:]
        assert "paced blind" not in text, text[-3000:]
    secret_scan.check()


SHARED_TENANTS = ("s1", "s2", "s3", "s4")
SHARED_PER_TENANT = 40  # 8 s at 5/s: each key learns the limit in its first seconds


# Slow enough that a loaded machine's client still sends faster than each key's limit (at 20/s a
# busy client may never reach it and so never learn it).
SHARED_MODES = {
    "token-bucket, no headers": dict(rate=5.0, burst=2, rate_headers=False),
    "sliding-window, http-date": dict(rate=5.0, burst=2, limiter="sliding-window", rate_headers=False,
                                      retry_after="http-date"),
}


@pytest.mark.parametrize("mode", list(SHARED_MODES))
def test_the_keys_of_one_server_learn_its_limit_together(mode: str, secret_scan: Any, tmp_path: Path) -> None:
    """Four keys of one server, a limit of its own each, no X-RateLimit-* headers. Alone each key
    pays two 429s to learn its limit (docs/rate-limits.md); sharing one climb, each pays its first
    and the climbing key one or two more: fewer than two per key, over real HTTP."""
    global TENANTS
    saved, TENANTS = TENANTS, SHARED_TENANTS
    try:
        with EmulatorServer(seed=_fleet_seed(SHARED_PER_TENANT), **SHARED_MODES[mode]) as emu:
            secret_scan.register_all(emu.keys)
            (tmp_path / "bot.yaml").write_text("spec:\n  core: {name: '${chatbot}', temperature: 0.5}\n")
            (tmp_path / "wizsync.yaml").write_text(_manifest(emu.base_url, SHARED_PER_TENANT))
            proc = secret_scan.run(["plan", "wizsync.yaml", "--env", "staging", "--json", "--journal",
                                    str(tmp_path / "journal.db")], cwd=tmp_path, env=emu.key_env, timeout=120)
            stats = emu.stats()
    finally:
        TENANTS = saved
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    assert doc["status"] == "completed" and len(doc["chatbots"]) == len(SHARED_TENANTS) * SHARED_PER_TENANT
    per_key = sorted(k["throttled"] for k in doc["keys"].values())
    assert sum(per_key) == stats["total"]["rateLimited"]
    assert all(n >= 1 for n in per_key)  # each key still finds there is a limit (sharing spares none that)
    # Alone, two each at least; shared, one each and one or two more on the climbing key. Fewer
    # than two per key is the claim; the margin is for a loaded machine's jitter.
    assert sum(per_key) < 2 * len(SHARED_TENANTS), per_key
