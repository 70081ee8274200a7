"""Behind a proxy: wizsync goes through the one the environment names, as curl and the SDK do.

An explicit HTTP transport (both backends) ignores ``HTTPS_PROXY`` unless told,
so a run on a machine that reaches the API only through a corporate proxy
would fail to connect. The proxy here is real (tests/forward_proxy.py) and,
like a corporate one, resolves the API's host name itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from forward_proxy import ForwardProxy
from wizchat_management.emulator import EmulatorServer
from wizsync.engine.transport import UnsupportedProxy, proxy_for

API = "https://api.wizchat.io"


@pytest.mark.parametrize(
    ("url", "environ", "expected"),
    [
        (API, {}, None),
        (API, {"HTTPS_PROXY": "http://proxy:3128"}, "http://proxy:3128"),
        (API, {"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:2"}, "http://lower:1"),
        (API, {"HTTP_PROXY": "http://proxy:3128"}, None),  # the scheme's own variable, or ALL_PROXY
        (API, {"ALL_PROXY": "http://all:1"}, "http://all:1"),
        (API, {"HTTPS_PROXY": "http://p:1", "ALL_PROXY": "http://all:1"}, "http://p:1"),
        (API, {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "api.wizchat.io"}, None),
        (API, {"HTTPS_PROXY": "http://p:1", "NO_PROXY": ".wizchat.io"}, None),
        (API, {"HTTPS_PROXY": "http://p:1", "no_proxy": "other.example, wizchat.io"}, None),
        (API, {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "*"}, None),
        (API, {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "other.example"}, "http://p:1"),
        (API, {"HTTPS_PROXY": ""}, None),
        ("http://api.test:8080", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "api.test:8080"}, None),
        ("http://api.test:8080", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "api.test:9090"}, "http://p:1"),
        # Loopback never goes through a proxy: the emulator and `wizsync demo` work behind one.
        ("http://127.0.0.1:8080", {"HTTP_PROXY": "http://p:1"}, None),
        ("http://localhost:8080", {"ALL_PROXY": "http://p:1"}, None),
        ("http://[::1]:8080", {"HTTP_PROXY": "http://p:1"}, None),
    ],
)
def test_the_proxy_for_a_url_follows_the_environment(url: str, environ: dict[str, str], expected: str | None) -> None:
    assert proxy_for(url, environ) == expected


def test_a_proxy_wizsync_cannot_use_is_refused_without_showing_its_password() -> None:
    with pytest.raises(UnsupportedProxy) as caught:
        proxy_for(API, {"ALL_PROXY": "socks5://user:hunter2@127.0.0.1:1080"})
    assert "socks5" in str(caught.value) and "hunter2" not in str(caught.value)
    assert "NO_PROXY=api.wizchat.io" in str(caught.value)


BOTS = [f"bot-{i}" for i in range(3)]


def _seed() -> dict[str, Any]:
    return {"organizations": [{
        "name": "acme-staging", "tenant": "acme", "environment": "staging",
        "keys": [{"label": "acme/staging", "envName": "WIZCHAT_ACME_STAGING_KEY"}],
        "chatbots": [{"name": b, "id": f"cb_{b}", "config": {"core": {"name": b, "temperature": 0.3}}} for b in BOTS],
    }]}


def _fleet(tmp_path: Path, base_url: str) -> None:
    (tmp_path / "bot.yaml").write_text("spec:\n  core: {name: '${chatbot}', temperature: 0.5}\n")
    lines = ["version: 1", "environments:", f'  staging: {{baseUrl: "{base_url}"}}',
             "tenants:", "  acme: {keys: {staging: {env: WIZCHAT_ACME_STAGING_KEY}}}",
             "defaults:", "  sections: [core]", "  source: {file: bot.yaml}", "chatbots:"]
    lines += [f"  - {{name: {b}, tenant: acme, ids: {{staging: cb_{b}}}}}" for b in BOTS]
    (tmp_path / "wizsync.yaml").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("backend", ["aiohttp", "httpx"])
def test_plan_goes_through_the_proxy_the_environment_names(backend: str, secret_scan: Any, tmp_path: Path) -> None:
    with EmulatorServer(seed=_seed()) as emu, ForwardProxy(int(emu.base_url.rsplit(":", 1)[1])) as proxy:
        secret_scan.register_all(emu.keys)
        port = emu.base_url.rsplit(":", 1)[1]
        # A name only the proxy knows how to reach: a direct connection could not resolve it.
        _fleet(tmp_path, f"http://wizchat.test:{port}")
        proc = secret_scan.run(["plan", "wizsync.yaml", "--env", "staging", "--json", "--http-backend", backend],
                               cwd=tmp_path, env={**emu.key_env, "HTTP_PROXY": proxy.url})
        served = emu.stats()["total"]["requests"]
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    assert doc["status"] == "completed" and len(doc["chatbots"]) == len(BOTS)
    assert served > 0 and len(proxy.seen) == served, "every request the emulator answered came through the proxy"
    assert {host for _, host, _ in proxy.seen} == {"wizchat.test"}
    secret_scan.check()


def test_loopback_is_never_proxied_and_a_socks_proxy_is_refused_before_any_request(secret_scan: Any,
                                                                                     tmp_path: Path) -> None:
    with EmulatorServer(seed=_seed()) as emu, ForwardProxy(int(emu.base_url.rsplit(":", 1)[1])) as proxy:
        secret_scan.register_all(emu.keys)
        _fleet(tmp_path, emu.base_url)
        direct = secret_scan.run(["plan", "wizsync.yaml", "--env", "staging", "--json"],
                                 cwd=tmp_path, env={**emu.key_env, "HTTP_PROXY": proxy.url})
        assert direct.returncode == 0, direct.stderr[-2000:]
        assert proxy.seen == [], "the emulator on 127.0.0.1 is reached directly, whatever HTTP_PROXY says"

        port = emu.base_url.rsplit(":", 1)[1]
        _fleet(tmp_path, f"http://wizchat.test:{port}")
        before = emu.stats()["total"]["requests"]
        socks = secret_scan.run(["plan", "wizsync.yaml", "--env", "staging"], cwd=tmp_path,
                                env={**emu.key_env, "ALL_PROXY": "socks5://ops:hunter2@127.0.0.1:1"})
        after = emu.stats()["total"]["requests"]
    assert socks.returncode == 1
    assert "socks5" in socks.stderr and "NO_PROXY=wizchat.test" in socks.stderr
    assert "hunter2" not in socks.stdout + socks.stderr and "Traceback" not in socks.stderr
    assert after == before, "no request was sent"
    secret_scan.check()
