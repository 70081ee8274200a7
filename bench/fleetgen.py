"""A generated fleet for the benches: an emulator seed and the manifest that targets it.

N chatbots spread round-robin over K tenants (one organization and one key
each, environment ``staging``). Every chatbot is seeded with temperature 0.3
and a telemetry rate; the manifest's file source asks for 0.5, so a plan
shows one update per chatbot and an apply changes every one of them.
Chatbots are bound by id (no ``list_chatbots``): one request per chatbot
in a plan, exactly what the floor formula counts.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV = "staging"

BOT_DOC = """\
spec:
  core:
    name: "${chatbot}"
    model: gpt-4o
    temperature: 0.5
    systemPrompt: "You help customers of ${tenant}. Be brief."
  telemetry: {enabled: true, sampleRate: 0.25}
  skills:
    - name: escalate
      instructions: "Hand over to a human when asked."
"""


def tenant_name(k: int) -> str:
    return f"t{k:03d}"


def chatbot_id(k: int, i: int) -> str:
    return f"cb_{tenant_name(k)}_{i:05d}"


def key_env(k: int) -> str:
    return f"WIZCHAT_{tenant_name(k).upper()}_{ENV.upper()}_KEY"


def key_label(k: int) -> str:
    return f"{tenant_name(k)}/{ENV}"


def split(n: int, k: int) -> list[int]:
    """Chatbots per tenant, round-robin (the first ones get one more)."""
    return [n // k + (1 if t < n % k else 0) for t in range(k)]


def seed(n: int, k: int, *, rate: float | None = None, burst: int | None = None) -> dict[str, Any]:
    orgs = []
    for t, count in enumerate(split(n, k)):
        key: dict[str, Any] = {"label": key_label(t), "envName": key_env(t)}
        if rate is not None:
            key.update(rate=rate, burst=burst)
        orgs.append({
            "name": f"{tenant_name(t)}-{ENV}", "tenant": tenant_name(t), "environment": ENV, "keys": [key],
            "chatbots": [{"name": f"bot-{i:05d}", "id": chatbot_id(t, i), "config": {
                "core": {"name": f"bot-{i:05d}", "model": "gpt-4o", "temperature": 0.3,
                         "systemPrompt": f"You help customers of {tenant_name(t)}. Be brief."},
                "telemetry": {"enabled": True, "sampleRate": 0.5},
                "skills": [{"name": "escalate", "instructions": "Hand over to a human when asked."}],
            }} for i in range(count)],
        })
    return {"keySeed": f"bench-{n}-{k}", "organizations": orgs}


def manifest(base_url: str, n: int, k: int, *, concurrency: int | None = None, discover: bool = False) -> str:
    """Chatbots bound by id with a file source; or with ``discover``, one discover rule per tenant,
    each chatbot its own live config (``self``) with an override: list + get_config + dry-run."""
    lines = ["version: 1", "environments:", f'  {ENV}: {{baseUrl: "{base_url}"}}', "tenants:"]
    for t in range(k):
        lines.append(f"  {tenant_name(t)}: {{keys: {{{ENV}: {{env: {key_env(t)}}}}}}}")
    lines += ["defaults:", "  sections: [core, telemetry, skills]", "  source: {file: bot.yaml}"]
    if concurrency is not None:
        lines += ["rollout:", f"  concurrency: {concurrency}"]
    lines.append("chatbots:")
    if discover:
        for t in range(k):
            lines += [f"  - discover: {{tenant: {tenant_name(t)}}}", "    source: {self: true}",
                      f"    overrides: {{{ENV}: {{spec: {{core: {{temperature: 0.5}}}}}}}}"]
        return "\n".join(lines) + "\n"
    counts = split(n, k)
    # Interleave tenants as a real manifest grouped by customer would not: neither helps nor hurts
    # wizsync (per-key queues), and it is the fair order for the baselines' shared pool.
    for i in range(max(counts, default=0)):
        for t in range(k):
            if i < counts[t]:
                lines.append(f"  - {{name: {tenant_name(t)}-bot-{i:05d}, tenant: {tenant_name(t)}, "
                             f"ids: {{{ENV}: {chatbot_id(t, i)}}}}}")
    return "\n".join(lines) + "\n"


def targets(n: int, k: int) -> list[tuple[int, str]]:
    """(tenant index, chatbot id) in manifest order."""
    counts = split(n, k)
    return [(t, chatbot_id(t, i)) for i in range(max(counts, default=0)) for t in range(k) if i < counts[t]]


def write_workspace(root: Path, base_url: str, n: int, k: int, **kw: Any) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "bot.yaml").write_text(BOT_DOC)
    path = root / "wizsync.yaml"
    path.write_text(manifest(base_url, n, k, **kw))
    return path


def write_seed(path: Path, n: int, k: int, **kw: Any) -> Path:
    path.write_text(json.dumps(seed(n, k, **kw)))  # JSON is YAML: the emulator's --seed reads it
    return path


@dataclass
class ProcResult:
    returncode: int
    wall: float
    cpu: float  # user + system seconds of the child alone (os.wait4)
    max_rss_mb: float  # the child's own peak RSS (VmHWM; see run_cli)
    stdout: str
    stderr: str
    started: float = 0.0  # perf_counter at spawn and at exit
    ended: float = 0.0


_compiled: list[bool] = []


def byte_compile() -> None:
    """Byte-compile wizsync and the SDK once, as ``pip install`` does at install time.

    From a source checkout with ``PYTHONDONTWRITEBYTECODE=1`` (an editable
    install, a CI image) every CLI run would compile ~100 modules afresh,
    ~0.15 s of CPU before its first request that no installed wizsync pays.
    The ``__pycache__`` folders this writes are git-ignored.
    """
    if _compiled:
        return
    import compileall

    import wizchat_management
    import wizsync

    for package in (wizsync, wizchat_management):
        compileall.compile_dir(str(Path(package.__file__).parent), quiet=1)
    _compiled.append(True)


# Runs ``wizsync.cli`` as ``python -m`` would, and writes the process's own peak RSS (VmHWM, kB)
# at exit to the file named by BENCH_HWM_OUT.
_CLI_WITH_HWM = """\
import atexit, os, runpy
def _hwm(path=os.environ.pop("BENCH_HWM_OUT")):
    with open("/proc/self/status") as status:
        kb = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(path, "w") as out:
        out.write(kb)
atexit.register(_hwm)
runpy.run_module("wizsync.cli", run_name="__main__", alter_sys=True)
"""


def run_cli(args: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 1800) -> ProcResult:
    """``python -m wizsync.cli ARGS`` as a child: its own CPU from ``wait4``, its own peak RSS from VmHWM.

    wait4 gives the CPU of exactly that child (RUSAGE_CHILDREN would add up every
    child so far). Its ``ru_maxrss`` is not the child's own: Linux keeps a process's
    high-water mark across fork and execve (the largest of every address space it
    had), so a child of a bench process holding 130 MB reports at least 130 MB.
    ``VmHWM`` (proc(5)) is the peak of the child's own address space since its exec,
    written by the child as it exits. wizsync runs byte-compiled, as installed
    (``byte_compile``).
    """
    byte_compile()
    out, err, hwm = cwd / ".bench.out", cwd / ".bench.err", cwd / ".bench.hwm"
    hwm.unlink(missing_ok=True)
    with open(out, "w") as fo, open(err, "w") as fe:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", _CLI_WITH_HWM, *args], cwd=cwd,
                                env={**env, "BENCH_HWM_OUT": str(hwm)}, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    # Killed before its exit handlers ran: only the inflated figure is left.
    max_rss_mb = int(hwm.read_text()) / 1024 if hwm.exists() else usage.ru_maxrss / 1024
    return ProcResult(proc.returncode, wall, usage.ru_utime + usage.ru_stime, max_rss_mb,
                      out.read_text(), err.read_text(), start, start + wall)


def self_usage() -> tuple[float, float]:
    """(CPU seconds, peak RSS MB) of this process so far."""
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime, u.ru_maxrss / 1024


def base_env(keys: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WIZCHAT_")}
    env.update(keys)
    env["NO_COLOR"] = "1"
    return env


def stats_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per key label: requests and 429s the emulator saw between two ``stats()``."""
    out: dict[str, dict[str, int]] = {}
    for label, a in after["keys"].items():
        b = before["keys"].get(label, {})
        out[label] = {
            "requests": a.get("requests", 0) - b.get("requests", 0),
            "rate_limited": a.get("rateLimited", 0) - b.get("rateLimited", 0),
        }
    return out


def floor_seconds(per_key: dict[str, dict[str, int]], rate: float | None, burst: int | None) -> float:
    """docs/rate-limits.md, "The floor": max over keys of (requests_k − B) / R, counting only the requests the
    server let through (a 429 costs no token)."""
    if not rate:
        return 0.0
    return max((max(0, s["requests"] - s["rate_limited"] - (burst or 0)) / rate for s in per_key.values()), default=0.0)


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


class Window:
    """When the emulator saw the first and the last API request of a phase, from outside.

    A thread polls the emulator's stats every ``every`` seconds; the window is
    first change → last change (resolution ``every``), i.e. the request phase
    without process start-up, manifest loading and the final report.
    """

    def __init__(self, emu: Any, every: float = 0.05) -> None:
        import threading

        self._emu, self._every = emu, every
        self._stop = threading.Event()
        self.first: float | None = None
        self.last: float | None = None
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        seen = self._emu.stats()["total"]["requests"]
        while not self._stop.is_set():
            now = self._emu.stats()["total"]["requests"]
            t = time.perf_counter()
            if now != seen:
                if self.first is None:
                    self.first = t - self._every / 2  # the change happened within the last interval
                self.last = t - self._every / 2
                seen = now
            self._stop.wait(self._every)

    def __enter__(self) -> Window:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def seconds(self) -> float | None:
        return None if self.first is None or self.last is None else self.last - self.first
