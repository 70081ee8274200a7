"""Fixed cost of a run: client CPU from process start to the first request, and from the last answer to exit.

bench/rate_limit_floor.py measures these ends in wall time, from the
emulator's side; on a shared machine wall time is noise. This measures them
in CPU time, which holds under load: `wizsync plan --json` runs as a child
whose HTTP client (aiohttp, the default backend) notes its own process time
when the first request is sent and when the last answer has been read; the
total comes from ``os.wait4``. No rate limit (the emulator answers at once,
L=0), the shapes of ``rate_limit_floor.py --wide``, each run on a fresh journal.

    before = CPU at the first request (interpreter start, imports, manifest,
             offline check, journal, engine)
    after  = total CPU − CPU at the last answer (the last outcomes, the report,
             the journal's close, interpreter teardown)

    python bench/fixed_cost.py              # 4 x 250, 40 x 25, 200 x 5; 5 runs each (~1 min)
    python bench/fixed_cost.py --runs 9 --shape 40x25
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fleetgen  # noqa: E402

from wizchat_management.emulator import EmulatorProcess  # noqa: E402

SHAPES = {"4x250": (1000, 4), "40x25": (1000, 40), "200x5": (1000, 200)}

# The child: `python -m wizsync.cli ARGS`, with aiohttp's ClientSession._request noting the process
# time of the first send and of the last answer (patched as aiohttp.client is first imported).
PROBE = r"""
import atexit, importlib.abc, importlib.util, json, os, runpy, sys, time
seen = {"first": None, "last": None, "requests": 0}
def patch(module):
    send = module.ClientSession._request
    async def _request(self, *args, **kwargs):
        if seen["first"] is None:
            seen["first"] = time.process_time()
        seen["requests"] += 1
        try:
            return await send(self, *args, **kwargs)
        finally:
            seen["last"] = time.process_time()
    module.ClientSession._request = _request
class Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "aiohttp.client":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        load = spec.loader.exec_module
        def exec_module(module):
            load(module)
            patch(module)
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, Hook())
def note():
    with open(os.environ["FIXED_COST_OUT"], "w") as f:
        json.dump(seen, f)
atexit.register(note)
sys.argv = ["wizsync", *sys.argv[1:]]
runpy.run_module("wizsync.cli", run_name="__main__")
"""


def one_run(work: Path, env: dict[str, str], manifest: str) -> dict[str, float]:
    journal = work / "journal.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{journal}{suffix}").unlink(missing_ok=True)
    out = work / ".fixed-cost.json"
    args = ["plan", manifest, "--env", fleetgen.ENV, "--journal", str(journal), "--json"]
    with open(work / ".bench.out", "w") as fo, open(work / ".bench.err", "w") as fe:
        proc = subprocess.Popen([sys.executable, "-c", PROBE, *args], cwd=work, env={**env, "FIXED_COST_OUT": str(out)},
                                stdin=subprocess.DEVNULL, stdout=fo, stderr=fe)
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"wizsync plan failed:\n{(work / '.bench.err').read_text()[-3000:]}")
    seen = json.loads(out.read_text())
    total = usage.ru_utime + usage.ru_stime
    return {"before_s": seen["first"], "after_s": total - seen["last"], "cpu_s": total, "requests": seen["requests"]}


def shape_row(label: str, n: int, keys: int, runs: int) -> dict[str, Any]:
    fleetgen.byte_compile()
    with tempfile.TemporaryDirectory(prefix="wizsync-fixed-") as tmp:
        work = Path(tmp)
        seed = fleetgen.write_seed(work / "seed.json", n, keys)
        with EmulatorProcess(["--seed", str(seed)]) as emu:
            manifest = fleetgen.write_workspace(work, emu.base_url, n, keys)
            env = fleetgen.base_env(emu.key_env)
            samples = [one_run(work, env, manifest.name) for _ in range(runs)]
    row: dict[str, Any] = {"shape": f"{keys} keys x {n // keys}", "runs": runs, "requests": samples[0]["requests"]}
    for field in ("before_s", "after_s", "cpu_s"):
        values = [s[field] for s in samples]
        row[f"{field[:-2]}_min_s"] = round(min(values), 3)
        row[f"{field[:-2]}_median_s"] = round(statistics.median(values), 3)
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="runs per shape (default 5): min and median are shown")
    p.add_argument("--shape", action="append", choices=sorted(SHAPES), help="only these shapes (repeatable)")
    o = p.parse_args()
    rows = [shape_row(label, *SHAPES[label], o.runs) for label in (o.shape or list(SHAPES))]
    print(json.dumps({"bench": "fixed_cost", "load_average": round(os.getloadavg()[0], 2), "rows": rows}, indent=2))
    cols = ["shape", "runs", "requests", "before_min_s", "before_median_s", "after_min_s", "after_median_s",
            "cpu_min_s", "cpu_median_s"]
    print(file=sys.stderr)
    print(fleetgen.table(rows, cols), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
