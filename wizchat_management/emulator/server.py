"""Ways to run the emulator from Python: in-process (a uvicorn thread) or as a real subprocess.

    with EmulatorServer(seed="demo") as emu:                 # http://127.0.0.1:<ephemeral port>
        client = WizChatClient(emu.keys["acme/staging"], base_url=emu.base_url)
        emu.set_faults(error_rate=0.1); emu.set_limits(rate=5, burst=10, key="acme/staging")

    with EmulatorProcess(["--seed", "demo", "--state", path]) as proc:   # kill -9 / restart tests
        proc.base_url, proc.admin_token, proc.keys, proc.kill()
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from .app import EmulatorContext, create_app
from .faults import FaultInjector, FaultSettings
from .ratelimit import RateLimiter, Telling
from .seed import load_seed_file
from .state import EmulatorState

__all__ = ["EmulatorAdmin", "EmulatorProcess", "EmulatorServer", "make_context", "serve"]


def make_context(
    *,
    seed: str | dict[str, Any] | None = "demo",
    state_path: str | None = None,
    rate: float | None = None,
    burst: int | None = None,
    latency_ms: float = 0.0,
    jitter_ms: float = 0.0,
    error_rate: float = 0.0,
    drop_rate: float = 0.0,
    fault_seed: int = 0,
    admin_token: str | None = None,
    limiter: str | None = None,
    rate_headers: bool | None = None,
    retry_after: str | None = None,
    org_rate: float | None = None,
    org_burst: int | None = None,
    lose_after_apply_rate: float = 0.0,
    ignore_dry_run: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> EmulatorContext:
    """Build the state, limiter and faults; seed only an empty state (a --state file keeps its data).

    The rate-limit settings (``rate`` … ``org_burst``) left at None come from
    the seed's ``limits`` block, else the defaults (unlimited token bucket
    that tells everything).
    """
    from .admin import reseed
    from .seed import build_seed

    initial_seed: Any = seed
    if isinstance(seed, str) and seed != "demo":
        initial_seed = load_seed_file(seed)
    block: dict[str, Any] = {}
    if isinstance(initial_seed, dict):
        block = build_seed(initial_seed).limits  # validated (a SeedError names the problem)
    if rate is None and burst is None and "rate" in block:
        rate, burst = block["rate"], block.get("burst")
    if org_rate is None and org_burst is None and "orgRate" in block:
        org_rate, org_burst = block["orgRate"], block.get("orgBurst")
    telling = Telling(
        rate_headers=rate_headers if rate_headers is not None else bool(block.get("rateHeaders", True)),
        retry_after=retry_after or str(block.get("retryAfter", "seconds")),
    )
    kind = limiter or str(block.get("limiter", "token-bucket"))
    ctx = EmulatorContext(
        state=EmulatorState(state_path),
        limiter=RateLimiter(rate, burst, limiter=kind, org_rate=org_rate, org_burst=org_burst, telling=telling,
                            clock=clock),
        faults=FaultInjector(
            FaultSettings(latency_ms, jitter_ms, error_rate, drop_rate, fault_seed,
                          lose_after_apply_rate=lose_after_apply_rate, ignore_dry_run=ignore_dry_run), clock=clock
        ),
        admin_token=admin_token or "wza_" + secrets.token_urlsafe(24),
        initial_seed=initial_seed,
        initial_limits=(rate, burst),
        initial_rate_config={"limiter": kind, "telling": telling, "org": (org_rate, org_burst)},
    )
    if not ctx.state.orgs:
        reseed(ctx, initial_seed, replace=False)
    elif isinstance(initial_seed, dict):
        ctx.sync_org_limits(build_seed(initial_seed).org_limits)
    ctx.sync_key_limits()
    return ctx


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only
    # when the proto says TCP; without it every answer waits ~40 ms on delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def uvicorn_server(ctx: EmulatorContext, sock: socket.socket) -> Any:
    import uvicorn

    config = uvicorn.Config(
        create_app(ctx),
        log_level="warning",
        access_log=False,
        lifespan="off",
        backlog=2048,
        timeout_keep_alive=30,
        server_header=False,
    )
    return uvicorn.Server(config)


def serve(ctx: EmulatorContext, sock: socket.socket) -> None:
    """Serve in the foreground until SIGINT/SIGTERM (the command line's path)."""
    uvicorn_server(ctx, sock).run(sockets=[sock])


class EmulatorAdmin:
    """A small client of the admin API; works against any emulator (thread or subprocess)."""

    def __init__(self, base_url: str, admin_token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url + "/_emulator", headers={"Authorization": f"Bearer {admin_token}"}, timeout=30
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        r = self._http.request(method, path, **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"emulator admin {method} {path}: {r.status_code} {r.text}")
        return r.json()

    def reset(self) -> None:
        self._call("POST", "/reset")

    def seed(self, document: dict[str, Any] | str = "demo", *, replace: bool = False) -> dict[str, str]:
        body = {"demo": True} if document == "demo" else document
        return self._call("POST", "/seed", json=body, params={"replace": "true"} if replace else None)["keys"]  # type: ignore[no-any-return]

    def keys(self) -> dict[str, str]:
        return {k["label"]: k["key"] for k in self._call("GET", "/keys")["keys"]}

    def key_env(self) -> dict[str, str]:
        """``{WIZCHAT_ACME_STAGING_KEY: key, ...}`` for the keys that have an env name."""
        return {k["envName"]: k["key"] for k in self._call("GET", "/keys")["keys"] if k["envName"]}

    def add_key(self, org: str, *, scopes: Sequence[str] | None = None, label: str | None = None,
                rate: float | None = None, burst: int | None = None) -> str:
        body: dict[str, Any] = {"org": org, "label": label, "rate": rate, "burst": burst}
        if scopes is not None:
            body["scopes"] = list(scopes)
        return self._call("POST", "/keys", json=body)["key"]  # type: ignore[no-any-return]

    def set_limits(self, rate: float | None = None, burst: int | None = None, *, key: str | None = None,
                   unlimited: bool = False) -> dict[str, Any]:
        """Global limit (``key=None``; rate=None means unlimited) or one key's (by label)."""
        if key is None:
            body: dict[str, Any] = {"global": None if rate is None else {"rate": rate, "burst": burst}}
        else:
            body = {"keys": {key: {"rate": rate, "burst": burst, "unlimited": unlimited}}}
        return self._call("PUT", "/limits", json=body)  # type: ignore[no-any-return]

    def set_faults(self, *, latency_ms: float | None = None, jitter_ms: float | None = None,
                   error_rate: float | None = None, drop_rate: float | None = None, seed: int | None = None,
                   lose_after_apply_rate: float | None = None, ignore_dry_run: bool | None = None,
                   clear: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"clear": clear}
        for name, value in (("latencyMs", latency_ms), ("jitterMs", jitter_ms), ("errorRate", error_rate),
                            ("dropRate", drop_rate), ("seed", seed), ("loseAfterApplyRate", lose_after_apply_rate),
                            ("ignoreDryRun", ignore_dry_run)):
            if value is not None:
                body[name] = value
        return self._call("PUT", "/faults", json=body)  # type: ignore[no-any-return]

    def force_429(self, key: str | None = None, *, count: int | None = None,
                  seconds: float | None = None) -> dict[str, Any]:
        """The next ``count`` requests of key label ``key`` (None: every key), or all for ``seconds``, get 429."""
        return self._call("PUT", "/faults", json={"force429": {"key": key, "count": count, "seconds": seconds}})  # type: ignore[no-any-return]

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/stats")  # type: ignore[no-any-return]

    def requests(self, limit: int | None = None, key: str | None = None) -> list[dict[str, Any]]:
        params = {k: v for k, v in (("limit", limit), ("key", key)) if v is not None}
        return self._call("GET", "/requests", params=params)["requests"]  # type: ignore[no-any-return]


class _AdminMixin:
    admin: EmulatorAdmin

    def reset(self) -> None:
        self.admin.reset()

    def set_faults(self, **kw: Any) -> dict[str, Any]:
        return self.admin.set_faults(**kw)

    def force_429(self, key: str | None = None, *, count: int | None = None, seconds: float | None = None) -> Any:
        return self.admin.force_429(key, count=count, seconds=seconds)

    def set_limits(self, rate: float | None = None, burst: int | None = None, *, key: str | None = None,
                   unlimited: bool = False) -> dict[str, Any]:
        return self.admin.set_limits(rate, burst, key=key, unlimited=unlimited)

    def stats(self) -> dict[str, Any]:
        return self.admin.stats()

    def requests(self, limit: int | None = None, key: str | None = None) -> list[dict[str, Any]]:
        return self.admin.requests(limit, key)

    def add_key(self, org: str, *, scopes: Sequence[str] | None = None, label: str | None = None,
                rate: float | None = None, burst: int | None = None) -> str:
        return self.admin.add_key(org, scopes=scopes, label=label, rate=rate, burst=burst)


class EmulatorServer(_AdminMixin):
    """The emulator served by uvicorn in a background thread on 127.0.0.1:<ephemeral port>.

    Attributes once started: ``base_url``, ``admin_token``, ``keys`` (label -> key,
    e.g. ``keys["acme/staging"]``), ``key_env`` (``WIZCHAT_ACME_STAGING_KEY`` -> key),
    ``state`` (the live EmulatorState, for white-box assertions), ``ctx`` and ``admin``.
    """

    def __init__(
        self,
        seed: str | dict[str, Any] | None = "demo",
        *,
        rate: float | None = None,
        burst: int | None = None,
        latency_ms: float = 0.0,
        jitter_ms: float = 0.0,
        error_rate: float = 0.0,
        drop_rate: float = 0.0,
        fault_seed: int = 0,
        state_path: str | os.PathLike[str] | None = None,
        admin_token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        limiter: str | None = None,
        rate_headers: bool | None = None,
        retry_after: str | None = None,
        org_rate: float | None = None,
        org_burst: int | None = None,
        lose_after_apply_rate: float = 0.0,
        ignore_dry_run: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ctx = make_context(
            seed=seed, state_path=os.fspath(state_path) if state_path else None, rate=rate, burst=burst,
            latency_ms=latency_ms, jitter_ms=jitter_ms, error_rate=error_rate, drop_rate=drop_rate,
            fault_seed=fault_seed, admin_token=admin_token, limiter=limiter, rate_headers=rate_headers,
            retry_after=retry_after, org_rate=org_rate, org_burst=org_burst,
            lose_after_apply_rate=lose_after_apply_rate, ignore_dry_run=ignore_dry_run, clock=clock,
        )
        self.host, self._port = host, port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    @property
    def state(self) -> EmulatorState:
        return self.ctx.state

    @property
    def admin_token(self) -> str:
        return self.ctx.admin_token

    @property
    def keys(self) -> dict[str, str]:
        return {k.label: k.key for k in self.ctx.state.keys.values()}

    @property
    def key_env(self) -> dict[str, str]:
        return {k.env_name: k.key for k in self.ctx.state.keys.values() if k.env_name}

    def start(self) -> EmulatorServer:
        sock = bind_socket(self.host, self._port)
        port = sock.getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.base_url = f"http://{host}:{port}"
        self._server = uvicorn_server(self.ctx, sock)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"wizchat-emulator-{port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the emulator did not start")
            time.sleep(0.005)
        self.admin = EmulatorAdmin(self.base_url, self.admin_token)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            # Answers in flight get a second to finish; after that uvicorn stops waiting for them (an
            # answer held back by injected latency would otherwise keep the server up for its full delay).
            self._thread.join(timeout=1)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout=10)
        if getattr(self, "admin", None) is not None:
            self.admin.close()
        self.ctx.state.close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmulatorProcess(_AdminMixin):
    """``python -m wizchat_management.emulator`` as a real subprocess on an ephemeral port.

    ``args`` are extra command-line flags (e.g. ``["--seed", "demo", "--state", path]``).
    """

    def __init__(self, args: Sequence[str] = ("--seed", "demo"), *, admin_token: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.args = list(args)
        self.admin_token = admin_token or "wza_" + secrets.token_urlsafe(24)
        self.env = env
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""

    def start(self, timeout: float = 30) -> EmulatorProcess:
        cmd = [sys.executable, "-m", "wizchat_management.emulator", "--port", "0",
               "--admin-token", self.admin_token, *self.args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=self.env, stdin=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            if "listening on " in line:
                self.base_url = line.split("listening on ", 1)[1].strip()
                break
        if not self.base_url:
            self.kill()
            raise RuntimeError("the emulator subprocess did not start:\n" + "".join(seen))
        # Keep draining its output so the child never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()
        self.admin = EmulatorAdmin(self.base_url, self.admin_token)
        return self

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for _ in self.proc.stdout:
            pass

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def keys(self) -> dict[str, str]:
        return self.admin.keys()

    @property
    def key_env(self) -> dict[str, str]:
        return self.admin.key_env()

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        if getattr(self, "admin", None) is not None:
            self.admin.close()

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
